/* states/save.h - the save role (see save.def, stream_tx.def, memtask.def). */
#ifndef LOCKSTEP_STATES_SAVE_H
#define LOCKSTEP_STATES_SAVE_H

#include "states/op.h"
#include "states/devmodel.h"
#include "states/memtask.h"

#define FSM_PREFIX SAVE
#define FSM_DEF_FILE "states/save.def"
#include "fsm/gen_enums.h"

#define FSM_PREFIX STREAM_TX
#define FSM_DEF_FILE "states/stream_tx.def"
#include "fsm/gen_enums.h"

/* A buffer written whole to an fd on the threadpool (io/work.h). */
struct write_job {
    int fd;
    const uint8_t *buf;
    size_t len;
    const char *what;              /* "libxl header", for errors */
};
int write_job_run(void *arg, int cancel_fd, struct ls_errbuf *err);

struct save_role {
    struct ls_op op;               /* first: the API's handle */
    struct fsm m;                  /* save.def */
    struct fsm stx;                /* stream_tx.def */
    struct memtask mem;            /* memtask.def */
    struct fsm_join tasks;
    struct ls_save_opts opts;
    /* from the backend */
    struct ls_domain_info info;
    char *config_json;
    /* the libxl layer's bytes */
    uint8_t *head, *tail;
    struct write_job head_job, tail_job;
    uint8_t *dm_state;             /* device model state for EMULATOR_CONTEXT */
    size_t dm_len;
    /* An HVM domain's real QEMU (asked with the domain info): its state is
     * saved over QMP by dm_save; dm_cont lets it run again afterwards. */
    struct ls_dm_info dm;
    bool dm_qemu;                  /* a live QEMU: no stand-in state */
    struct dm_task dm_save, dm_cont;
    struct fsm_join dm_save_join, dm_cont_join;
    /* The latest precopy_policy arguments: copied here by the thread before
     * it posts CB_PRECOPY_POLICY, so the event never points into its stack. */
    struct ls_precopy_stats precopy;
    uint64_t round_start_ns, sent_ns, sent_pages;   /* the pre-copy's measured rate */
    /* A checkpointed stream (colo_primary.def uses this struct as its
     * libxl-layer context; its own machine m is not run then): stream_tx
     * writes each checkpoint's libxl part (ckpt) and the control records the
     * parent puts in `control`, and tells ckpt_to by these events. */
    struct fsm *ckpt_to;
    int ckpt_written_ev, control_written_ev;
    uint8_t *ckpt;
    struct write_job ckpt_job;
    uint8_t control[16];
    struct write_job control_job;
};

/* An HVM domain's QEMU, from the backend (r->info and r->opts.domid set):
 * fills r->dm and r->dm_qemu; a QEMU that died is an error naming how.
 * Blocking (threadpool). Used by save.def and colo_primary.def. */
int save_probe_dm(struct ls_backend *be, struct save_role *r, struct ls_errbuf *err);

/* A save's result for its owner: the device model it stopped and left
 * stopped (a save that succeeded; a failed one lets its own run again):
 * true with *dm its QEMU, else false. A migration lets it run again when
 * the source copy resumes (migrate_send's CONTINUING_DM). */
bool save_left_dm_stopped(const struct ls_op *save, struct ls_dm_info *dm);

/* Start a save; the role reports through op->done. */
int save_role_start(struct ls_ctx *ctx, const struct ls_save_opts *opts, ls_op_done_fn *done,
                    void *data, struct ls_op **out, struct ls_errbuf *err);

#endif
