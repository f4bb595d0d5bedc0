/* states/colo.h - the COLO/Remus roles (colo_primary.def, colo_secondary.def).
 *
 * Each role runs the libxl-layer machine of its sibling role (stream_tx of
 * save.def, stream_rx of restore.def) and the memory task, with a struct
 * save_role / restore_role as their context (its own machine is not run):
 * the same writer, reader and task, gaining checkpoint states, not copies.
 */
#ifndef LOCKSTEP_STATES_COLO_H
#define LOCKSTEP_STATES_COLO_H

#include <stdatomic.h>

#include "lockstep/colo.h"
#include "states/colo_disk.h"
#include "states/colo_proxy.h"
#include "states/restore.h"
#include "states/save.h"

#define FSM_PREFIX COLO_PRIMARY
#define FSM_DEF_FILE "states/colo_primary.def"
#include "fsm/gen_enums.h"

#define FSM_PREFIX COLO_SECONDARY
#define FSM_DEF_FILE "states/colo_secondary.def"
#include "fsm/gen_enums.h"

/* libxl's defaults (spec 4.1): COLO checkpoints at least every 5 s (output
 * divergence asks for the rest), Remus every 200 ms. */
#define COLO_DEFAULT_INTERVAL_MS  5000u
#define REMUS_DEFAULT_INTERVAL_MS 200u
#define COLO_DEFAULT_TIMEOUT_MS   10000u

/* What both roles share: outcome and statistics for the API. */
struct colo_common {
    enum ls_colo_role role;
    unsigned checkpoints;          /* complete checkpoints */
    struct ls_colo_checkpoint last;
    struct ls_colo_dm_state dm;    /* the last checkpoint's device state (HVM) */
    int trigger_fd, stop_fd;       /* eventfds: a checkpoint now / stop in order (primary) */
    bool is_secondary;
    struct colo_proxy *proxy;      /* the network output (colo_proxy.def) */
    unsigned ck_periodic, ck_divergence, ck_manual;   /* primary: checkpoints by cause */
    struct ls_colo_disk_stats disk;   /* the disks' replication (colo_disk.def) */
};

/* A role's disks (colo_disk.def): one job at a time, each a join of its own
 * (DISK_DONE / DISK_FAILED in the role's table). */
struct colo_disks {
    struct colo_disk_cfg cfg;      /* cfg.ndisks 0: none replicated */
    struct ls_disk_info info;      /* the QEMU serving them */
    struct colo_disk_task task;
    struct fsm_join join;
    int job;                       /* the job in flight or last run (COLO_DISK_E_*) */
    bool set_up;                   /* the setup ended well and no teardown ran since */
    uint64_t job_start_ns;
    /* secondary */
    char files[LS_COLO_DISKS_MAX][256];
    unsigned formats[LS_COLO_DISKS_MAX];
    bool made_dir;                 /* image_dir is ours to remove */
};

struct colo_primary_role {
    struct ls_op op;               /* first: the API's handle */
    struct fsm m;                  /* colo_primary.def */
    struct ls_colo_primary_opts opts;
    struct colo_common c;
    struct save_role sv;           /* stream_tx + memtask context (sv.m is not run) */
    struct ls_precopy_stats precopy;
    uint64_t suspend_start_ns, bytes_at_last;
    unsigned interval_ms;
    /* A real QEMU (sv.dm_qemu): its jobs use sv.dm_save / sv.dm_cont. */
    struct fsm_join *dm_join;      /* the job in flight, for a cancel */
    struct dm_link dm_link;        /* one QMP connection to our QEMU for all its jobs */
    bool dm_stopped;               /* a checkpoint stopped it and no cont was asked since */
    uint64_t dm_save_start_ns, dm_cont_start_ns;   /* this checkpoint's jobs (0: no cont) */
    struct ls_dm_info dm_end;      /* our QEMU as the settle found it (dm_end_known) */
    bool dm_end_known, dm_end_told;
    struct colo_proxy proxy;       /* colo_proxy.def, joined from PROXY_STARTING on */
    struct fsm_join proxy_join;
    int proxy_start_ev;
    struct colo_disks disks;
    atomic_bool hold_suspend;      /* test builds: a suspend awaits its PROXY_FAILED row */
};

struct colo_secondary_role {
    struct ls_op op;
    struct fsm m;                  /* colo_secondary.def */
    struct ls_colo_secondary_opts opts;
    struct colo_common c;
    struct restore_role rs;        /* stream_rx + memtask context (rs.m is not run) */
    uint64_t suspend_start_ns;
    char fence_out[512];           /* the fencing command's last words */
    /* The last applied checkpoint's EMULATOR_CONTEXT (a copy: the reader's
     * buffer already holds the next one while a checkpoint streams in), and
     * the checkpoint whose state our real QEMU holds (0: none yet). */
    uint8_t *applied_dm;
    size_t applied_dm_len;
    unsigned dm_loaded_at;
    uint64_t dm_load_ns, dm_cont_start_ns;   /* this checkpoint's load, and its cont's start */
    uint64_t dm_load_start_ns;
    /* A real QEMU takes each checkpoint's state in a standby QEMU, over one
     * QMP connection (dm_link) opened to it while our guest ran, and kept
     * for its cont once it is our device model (devmodel LOAD_LINKED). */
    struct dm_link dm_link;
    struct dm_task dm_load;
    struct fsm_join dm_load_join;
    struct ls_dm_info standby;     /* the standby as last asked (write_resumed, the load) */
    int load_fd;                   /* the state for the next LOAD_LINKED, or -1 */
    unsigned dm_load_at;           /* the checkpoint the last LOAD_LINKED was for */
    bool load_failed;              /* a LOAD_LINKED failed: the outcome tells its QEMU's end */
    bool link_up;                  /* dm_link is set up with the standby as the load begins */
    uint64_t bytes_at_last;        /* the memory task's page bytes at the last report */
    struct ls_dm_info dm_end;      /* our QEMU as the destroy found it (dm_end_known) */
    bool dm_end_known;
    struct ls_errbuf io_err;       /* a work's failure it reports as an event */
    struct colo_proxy proxy;       /* colo_proxy.def, joined from PROXY_STARTING on */
    struct fsm_join proxy_join;
    int proxy_start_ev;
    const struct ls_colo_net_opts *net;   /* until the proxy is initialised */
    struct colo_disks disks;
};

/* The role behind an op (NULL if op is not a COLO role). */
struct colo_common *colo_common_of(struct ls_op *op);

/* net: the guest's network output, disks: its disks (lockstep/colo.h), NULL
 * for none; their strings are copied. */
int colo_primary_role_start(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                            const struct ls_colo_net_opts *net,
                            const struct ls_colo_disk_opts *disks, ls_op_done_fn *done,
                            void *data, struct ls_op **out, struct ls_errbuf *err);
int colo_secondary_role_start(struct ls_ctx *ctx, const struct ls_colo_secondary_opts *opts,
                              const struct ls_colo_net_opts *net,
                              const struct ls_colo_disk_opts *disks, ls_op_done_fn *done,
                              void *data, struct ls_op **out, struct ls_errbuf *err);

/* Shared by both roles' disk steps (colo_primary.c). */
int colo_disks_configure(struct colo_disks *d, struct colo_common *c,
                         const struct ls_colo_disk_opts *o, bool secondary,
                         struct ls_errbuf *err);
/* Start job on d's QEMU (domid's): its end is ev_ok / ev_fail in m; with
 * no disks, ev_ok at once. */
int colo_disks_job(struct colo_disks *d, struct fsm *m, uint32_t domid, int job, int ev_ok,
                   int ev_fail);
/* A job that ends replication (teardown, failover): run once after a setup
 * that ended well; otherwise nothing to undo, ev_ok at once. */
int colo_disks_end_job(struct colo_disks *d, struct fsm *m, uint32_t domid, int job, int ev_ok,
                       int ev_fail);
/* The job that just ended: its time and (failed) its reason into c->disk. */
void colo_disks_ended(struct colo_disks *d, struct colo_common *c, bool ok);

/* libxl CHECKPOINT_STATE(id): 16 bytes (header, id, padding). */
void colo_state_record(uint8_t out[16], uint32_t id);
/* Read one CHECKPOINT_STATE record from fd and check it is `want`. Errors
 * name the peer and what came instead; -ENODATA: the peer closed. */
int colo_read_state(int fd, uint32_t want, int cancel_fd, const char *peer,
                    struct ls_errbuf *err);

#endif
