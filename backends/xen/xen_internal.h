/* backends/xen/xen_internal.h - shared by the Xen backend's files. */
#ifndef LOCKSTEP_BACKENDS_XEN_XEN_INTERNAL_H
#define LOCKSTEP_BACKENDS_XEN_XEN_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <xenctrl.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "backends/xen/xen.h"

/* A domain this backend created for a restore: what announcing it needs. */
struct xen_target {
    struct xen_target *next;
    uint32_t domid;
    enum ls_guest_type type;
    unsigned vcpus;
    uint64_t memory_kib;
    char name[64];
    char final_name[64];       /* "": none; else the name to take when unpaused */
    uint8_t uuid[16];
    int store_port, console_port;
    char *config_json;         /* the stream's xl config, or NULL */
};

/* A migration's safety net (enum ls_guard): a lockstep-xen-helper guard
 * process that resumes or destroys the domain if lockstep dies. */
struct xen_guard {
    struct xen_guard *next;
    uint32_t domid;
    pid_t pid;
    int wfd;                   /* our end of its socket: closed while armed, it fires */
};

struct xen_backend {
    struct ls_backend be;      /* first */
    xc_interface *xch;
    struct xs_handle *xsh;     /* thread-safe */
    xentoollog_logger *quiet;
    pthread_mutex_t lock;      /* guards targets and guards */
    struct xen_target *targets;
    struct xen_guard *guards;
    char helper[PATH_MAX];     /* lockstep-xen-helper */
};

static inline struct xen_backend *xen_of(struct ls_backend *be)
{
    return (struct xen_backend *)be;
}

int xen_getinfo(struct xen_backend *x, uint32_t domid, xc_dominfo_t *info, struct ls_errbuf *e);
enum ls_guest_type xen_type_of(const xc_dominfo_t *info);
char *xen_xs_read(struct xen_backend *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void xen_uuid_format(const uint8_t h[16], char out[37]);

int xen_target_add(struct xen_backend *x, uint32_t domid, const struct ls_domain_config *cfg,
                   const char *name, const uint8_t uuid[16], int store_port,
                   int console_port, struct ls_errbuf *e);
/* A copy (config_json strdup'd: free it). */
bool xen_target_get(struct xen_backend *x, uint32_t domid, struct xen_target *copy);
void xen_target_forget(struct xen_backend *x, uint32_t domid);

/* After xc_domain_restore: xenstore tree, introduce to xenstored, libxl userdata. */
int xen_announce_domain(struct xen_backend *x, uint32_t domid, uint64_t store_mfn,
                        uint64_t console_mfn, struct ls_errbuf *e);

/* xen_memtask.c */
int xen_guard_spawn(struct xen_backend *x, uint32_t domid, bool destroy, pid_t *pid, int *wfd,
                    struct ls_errbuf *e);
void xen_guard_release(pid_t pid, int wfd);
/* One of helper_proto.h's XH_GUARD_* bytes; -errno when the guard is gone. */
int xen_guard_send(int wfd, char what);
/* xen_backend.c: resumed or unpaused, the guard stays for the next arming. */
void xen_guard_disarm(struct xen_backend *x, uint32_t domid);
/* How long a new guard may take to say it is ready (seconds under emulation). */
#define XEN_GUARD_READY_MS 30000
int xen_set_guard(struct ls_backend *be, uint32_t domid, enum ls_guard guard,
                  struct ls_errbuf *e);
int xen_find_helper(char *out, size_t len, struct ls_errbuf *e);
int xen_save_memory(struct ls_backend *be, const struct ls_save_params *p,
                    const struct ls_save_callbacks *cb, struct ls_errbuf *e);
int xen_restore_memory(struct ls_backend *be, const struct ls_restore_params *p,
                       const struct ls_restore_callbacks *cb, struct ls_errbuf *e);

/* The restore's helper and its relay, without the domain's announcement (a
 * unit test runs it with a fake helper): x->helper runs with argv, its
 * callbacks reach cb. A Remus stream that broke after a whole checkpoint
 * (libxc then completes the domain from it) is the task failing (-EPIPE),
 * and so is a cancel after one (-ECANCELED: libxc is let complete the
 * domain, not killed), both with out->broken set: the domain is to be
 * announced. out has the store and console mfns either way. */
struct xen_restore_result {
    uint64_t store_mfn, console_mfn;
    unsigned checkpoints;      /* Remus: checkpoints answered (so applied) */
    bool broken;
};
int xen_restore_relay(struct xen_backend *x, char *const argv[],
                      const struct ls_restore_params *p, const struct ls_restore_callbacks *cb,
                      struct xen_restore_result *out, struct ls_errbuf *e);

#endif
