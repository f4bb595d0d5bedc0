/* backends/sim/guest.h - one simulated domain, as the sim daemon holds it.
 *
 * The daemon is the hypervisor: it owns each domain's memory (a sparse memfd
 * plus a one-byte-per-pfn frame-info memfd, see proto.h), its vCPU and
 * platform state, and its run state. Everything here is single-threaded
 * daemon code; errors go to an ls_errbuf whose text becomes the error reply.
 */
#ifndef LOCKSTEP_BACKENDS_SIM_GUEST_H
#define LOCKSTEP_BACKENDS_SIM_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "backends/sim/devmodel.h"
#include "backends/sim/proto.h"
#include "lockstep/errbuf.h"

struct sim_blob {
    uint8_t *data;
    uint32_t len;          /* 0 = absent */
};

struct sim_pv_vcpu {
    struct sim_blob basic, extended, xsave, msrs;
};

#define SIM_NR_PARAMS 64u  /* >= HVM_NR_PARAMS; checked in guest.c */

struct sim_vcpu;           /* the running guest's vCPU and log-dirty (dirty.h) */

struct sim_domain {
    uint32_t domid;
    char name[SIMP_NAME_LEN];
    enum ls_guest_type type;
    unsigned vcpus;            /* 0 = not known yet (restore target) */
    uint64_t memory_kib;       /* configured RAM, 0 = not known yet */
    uint64_t p2m_size;
    bool paused;               /* toolstack pause count > 0 */
    bool suspended;            /* shut down with reason "suspend" */
    int mem_fd;
    bool memory_from_pool;     /* mem_fd came allocated from the daemon's pool */
    int finfo_fd;
    uint8_t *finfo;            /* the daemon's own mapping of the frame info */
    struct sim_pv_vcpu *pv;    /* SIMP_MAX_VCPUS entries */
    struct sim_blob shared_info, tsc, hvm_context, cpuid, msr, pv_info, p2m_frames, config;
    uint64_t params[SIM_NR_PARAMS];
    struct sim_vcpu *vcpu;     /* NULL until a workload or log-dirty is asked for */
    uint64_t guard_client;     /* client id holding the guard (simd.c), 0 = none */
    unsigned guard;            /* enum simp_guard */
    struct sim_dm dm;          /* an HVM domain's QEMU (simd.c starts and ends it) */
    struct sim_dm standby;     /* a QEMU waiting (-incoming defer) to replace it */
    unsigned dm_gen;           /* standbys started so far: each gets its own directory */
    unsigned dm_loads;         /* device states taken by DM_LOAD */
    struct sim_disks *disks;   /* NULL until a disk is attached (disk.h) */
    struct sim_dm blk;         /* the QEMU that serves the disks (disk.h), once one is */
    uint64_t seed;             /* the creation seed (the disks' writes follow it) */
};

/* Builds a domain: memory, frame info, and (populate) deterministic content
 * from c->seed. A restore target (no populate) is empty and paused. */
int sim_domain_create(struct sim_domain *d, uint32_t domid, const struct simp_create *c,
                      struct ls_errbuf *e);
void sim_domain_free(struct sim_domain *d);

enum ls_run_state sim_domain_state(const struct sim_domain *d);
uint64_t sim_domain_populated(const struct sim_domain *d);
/* True for a page the guest's own vCPU writes: populated RAM holding data, not
 * a page table, the PV p2m list, start_info, a ring or an HVM special page. */
bool sim_domain_is_data_page(const struct sim_domain *d, uint64_t pfn);
void sim_domain_info(const struct sim_domain *d, struct simp_dominfo *out);

/* 64 hex characters over type, vcpus, every populated page (pfn, type,
 * bytes), vCPU blobs, shared info, TSC, HVM context and params, policies. */
int sim_domain_digest(const struct sim_domain *d, char hex[65], struct ls_errbuf *e);

/* GET/SET of one state kind (enum simp_kind). GET output is malloc'd. */
int sim_domain_get(const struct sim_domain *d, unsigned kind, unsigned index,
                   uint8_t **out, uint32_t *len, struct ls_errbuf *e);
int sim_domain_set(struct sim_domain *d, unsigned kind, unsigned index,
                   const uint8_t *in, uint32_t len, struct ls_errbuf *e);

#endif
