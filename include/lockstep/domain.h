/* lockstep/domain.h - the domains lockstep works on, whichever the backend.
 *
 * A context's backend (see ls_ctx_new) is the hypervisor: real Xen, or the
 * simulated one (lockstep/sim.h). These calls BLOCK for one round trip to it
 * (a hypercall, a xenstore read, a request to the sim daemon): call them
 * before starting operations or from a worker thread, not from a callback on
 * a busy loop. Errors are negative errno values with the reason in err;
 * -ESRCH names an unknown domain.
 */
#ifndef LOCKSTEP_DOMAIN_H
#define LOCKSTEP_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep/errbuf.h"
#include "lockstep/version.h"

LS_BEGIN_DECLS

struct ls_ctx;

enum ls_guest_type {
    LS_GUEST_UNSET = 0,  /* restore target whose type the stream will decide */
    LS_GUEST_PV    = 1,  /* libxc domain header type 1 */
    LS_GUEST_HVM   = 2,  /* libxc domain header type 2, with a device model */
    LS_GUEST_PVH   = 3,  /* libxc domain header type 2, no device model */
};

enum ls_run_state {
    LS_RUN_RUNNING   = 0,
    LS_RUN_PAUSED    = 1,
    LS_RUN_SUSPENDED = 2,  /* shut down with reason "suspend"; resumable */
    LS_RUN_SHUTDOWN  = 3,
    LS_RUN_DYING     = 4,
};

struct ls_domain_info {
    uint32_t domid;
    enum ls_guest_type type;
    enum ls_run_state state;
    unsigned vcpus;
    uint64_t memory_kib;       /* populated RAM */
    uint64_t p2m_size;         /* one past the highest pfn the domain may use */
    char name[64];
};

/* The device model of an HVM domain: libxl's QEMU, which holds the guest's
 * emulated devices (their state travels in the stream's EMULATOR_CONTEXT).
 * LS_DM_QEMU (the zero value, so a zeroed request means it) runs a real
 * qemu-system-x86_64 beside every HVM domain; LS_DM_STANDIN has none and
 * writes lockstep's in-process stand-in state instead (hosts without QEMU).
 * PV and PVH domains have no device model whatever is asked. */
enum ls_device_model {
    LS_DM_QEMU    = 0,
    LS_DM_STANDIN = 1,
};

struct ls_dm_info {
    bool present;              /* a QEMU was started for the domain */
    bool alive;                /* false: it died (see exit_status): the domain's
                                  device model is gone */
    int pid;
    int exit_status;           /* once !alive: the raw wait status */
    bool incoming;             /* started on a restored device state (-incoming) */
    /* xen-load-devices-state into this running QEMU is safe (a COLO secondary
     * needs it). Debian's QEMU 7.2 aborts on it, so it is false unless the
     * domain was configured with it (never probed: a probe would crash it). */
    bool load_state_in_place;
    unsigned loads;            /* device states it took since the domain began (a COLO
                                  secondary's checkpoints, a migration's one) */
    int standby_pid;           /* a standby QEMU waiting to take the next state, or 0 */
    char qmp_path[112];        /* its QMP unix socket */
    char log_path[256];        /* its stdout and stderr */
    char qemu[256];            /* the binary */
};

/* Type, run state and size of one domain. */
LS_API int ls_domain_info(struct ls_ctx *ctx, uint32_t domid, struct ls_domain_info *out,
                          struct ls_errbuf *err);

/* The domain of this name (Xen: xenstore's /local/domain/N/name). */
LS_API int ls_domain_find(struct ls_ctx *ctx, const char *name, uint32_t *domid, struct ls_errbuf *err);

/* The domain's device model; present false for a domain without one.
 * -EOPNOTSUPP on a backend that does not supervise device models (xen). */
LS_API int ls_domain_dm_info(struct ls_ctx *ctx, uint32_t domid, struct ls_dm_info *out,
                             struct ls_errbuf *err);
/* A standby QEMU for the domain's next device state (backend.h,
 * dm_prepare_standby): started in the background; returns at once. */
LS_API int ls_domain_dm_prepare_standby(struct ls_ctx *ctx, uint32_t domid, const char *qemu,
                                        struct ls_errbuf *err);
/* The domain's device model takes the device state in state_fd (backend.h,
 * dm_load_checkpoint): on return a QEMU paused with it is the domain's. */
LS_API int ls_domain_dm_load(struct ls_ctx *ctx, uint32_t domid, int state_fd, struct ls_errbuf *err);
/* "exited with status 1", "killed by signal 9 (Killed)", or "running". */
LS_API const char *ls_dm_status_text(const struct ls_dm_info *dm, char *buf, size_t len);

/* Destroy a domain (xl destroy): its memory and device model are gone. */
LS_API int ls_domain_destroy(struct ls_ctx *ctx, uint32_t domid, struct ls_errbuf *err);

/* xl pause / xl unpause. */
LS_API int ls_domain_pause(struct ls_ctx *ctx, uint32_t domid, struct ls_errbuf *err);
LS_API int ls_domain_unpause(struct ls_ctx *ctx, uint32_t domid, struct ls_errbuf *err);

/* Run a suspended guest again (xc_domain_resume). fast: the guest sees its
 * suspend as cancelled (what a failed save does); otherwise it resumes as
 * after a checkpoint. */
LS_API int ls_domain_resume(struct ls_ctx *ctx, uint32_t domid, bool fast, struct ls_errbuf *err);

/* The digest (hex SHA-256) of a domain's memory, vCPU and device state: two
 * domains with the same digest hold the same guest. The sim backend only;
 * Xen: -EOPNOTSUPP. */
LS_API int ls_domain_digest(struct ls_ctx *ctx, uint32_t domid, char hex[65], struct ls_errbuf *err);

/* "pv", "hvm", "pvh", "unset"; "running", "paused", "suspended", ... */
LS_API const char *ls_guest_type_name(enum ls_guest_type t);
LS_API const char *ls_run_state_name(enum ls_run_state s);

/* The context's backend: "sim" or "xen". */
LS_API const char *ls_ctx_backend_name(struct ls_ctx *ctx);

LS_END_DECLS

#endif
