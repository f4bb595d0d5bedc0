/* backends/sim/sim_internal.h - shared by the sim client's files only. */
#ifndef LOCKSTEP_BACKENDS_SIM_SIM_INTERNAL_H
#define LOCKSTEP_BACKENDS_SIM_SIM_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "backends/backend.h"
#include "backends/sim/proto.h"
#include "lockstep/errbuf.h"

struct sim_map;
#define SIM_RETIRED_MAX 8

struct sim_backend {
    struct ls_backend base;        /* first: ls_backend* <-> sim_backend* */
    pthread_mutex_t lock;          /* one request in flight on fd */
    /* Guest mappings of finished memory tasks, unmapped once no operation
     * runs (sim_release_deferred), never inside one (see sim_retire_map). */
    pthread_mutex_t retired_lock;
    struct sim_map *retired[SIM_RETIRED_MAX];
    unsigned nretired;
    int fd;                        /* -1 until (re)connected */
    int daemon_pid;
    char rundir[PATH_MAX];
    char sock_path[108];
};

static inline struct sim_backend *sim_of(struct ls_backend *be)
{
    return (struct sim_backend *)be;
}

/* One request/response. *reply (may be NULL to discard) is malloc'd;
 * received fds go to fds[0..*nfds) (extra ones are closed). */
int sim_rpc(struct sim_backend *sb, unsigned op, uint32_t domid, unsigned kind, unsigned index,
            const void *payload, uint32_t len, uint8_t **reply, uint32_t *rlen,
            int *fds, int maxfds, int *nfds, struct ls_errbuf *e);

int sim_get(struct sim_backend *sb, uint32_t domid, unsigned kind, unsigned index,
            uint8_t **out, uint32_t *len, struct ls_errbuf *e);
int sim_set(struct sim_backend *sb, uint32_t domid, unsigned kind, unsigned index,
            const void *in, uint32_t len, struct ls_errbuf *e);
int sim_info(struct sim_backend *sb, uint32_t domid, struct ls_domain_info *out,
             struct ls_errbuf *e);

/* A domain's memory and frame info mapped into this process. */
struct sim_map {
    uint8_t *mem;                  /* p2m_size pages */
    uint8_t *finfo;                /* p2m_size bytes, SIMP_FRAME_ABSENT or a page type */
    uint64_t p2m_size;
    int mem_fd;                    /* the memory's memfd: save sends pages from it and
                                      restore splices into it, never touching the mapping */
};
int sim_map_domain(struct sim_backend *sb, uint32_t domid, bool writable, struct sim_map *m,
                   struct ls_errbuf *e);
void sim_unmap_domain(struct sim_map *m);
/* Map every populated page of the domain into m->mem at once (advice:
 * MADV_POPULATE_READ or _WRITE), a run of pfns per call, holes left alone:
 * for copies through the mapping that would otherwise take a page fault per
 * page. */
void sim_map_populate(struct sim_map *m, int advice);
/* The end of a memory task: the mapping is unmapped later, by a thread,
 * once no operation runs (sim_release_deferred) or the backend closes. */
void sim_retire_map(struct sim_backend *sb, struct sim_map *m);
void sim_release_deferred(struct ls_backend *be);

/* Log-dirty (enum simp_logdirty_op). For CLEAN/PEEK, *bitmap (malloc'd, may
 * be NULL to discard) gets (p2m_size + 63) / 64 words and *dirty the count. */
int sim_logdirty_op(struct sim_backend *sb, uint32_t domid, unsigned op, uint64_t **bitmap,
                    uint64_t *dirty, struct ls_errbuf *e);

int sim_save_memory(struct ls_backend *be, const struct ls_save_params *p,
                    const struct ls_save_callbacks *cb, struct ls_errbuf *e);
int sim_restore_memory(struct ls_backend *be, const struct ls_restore_params *p,
                       const struct ls_restore_callbacks *cb, struct ls_errbuf *e);

#endif
