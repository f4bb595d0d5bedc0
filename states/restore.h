/* states/restore.h - the restore role (restore.def, stream_rx.def, memtask.def). */
#ifndef LOCKSTEP_STATES_RESTORE_H
#define LOCKSTEP_STATES_RESTORE_H

#include "states/op.h"
#include "states/devmodel.h"
#include "states/memtask.h"
#include "io/stream_rules.h"

#define FSM_PREFIX RESTORE
#define FSM_DEF_FILE "states/restore.def"
#include "fsm/gen_enums.h"

#define FSM_PREFIX STREAM_RX
#define FSM_DEF_FILE "states/stream_rx.def"
#include "fsm/gen_enums.h"

struct restore_role {
    struct ls_op op;               /* first: the API's handle */
    struct fsm m;                  /* restore.def */
    struct fsm srx;                /* stream_rx.def */
    struct memtask mem;            /* memtask.def */
    struct fsm_join tasks;
    struct ls_restore_opts opts;
    /* what the reader found */
    uint64_t offset;               /* bytes of the stream consumed by the libxl layer's reads */
    bool xl_format;
    struct libxl_rules lx;         /* the stream rules for the libxl records (io/stream_rules.h) */
    char *config_json;             /* from the xl header, or NULL */
    struct ls_domain_config config;
    uint8_t *emulator_context;     /* EMULATOR_CONTEXT blob (after the 8-byte emulator header) */
    size_t emulator_context_len;
    uint32_t emulator_id;
    bool seen_xenstore_data;
    /* what the backend reported */
    uint32_t domid;
    bool domain_created;           /* a domain to tear down on failure (created or given) */
    bool given_missing;            /* opts.domid does not exist */
    bool given_adopted;            /* opts.domid fits: the restore went into it (it is the
                                      toolstack's: released on failure, never destroyed) */
    uint64_t store_gfn, console_gfn;
    unsigned static_data_missing;
    /* the device model: a QEMU started on EMULATOR_CONTEXT (spec 3.2 step 5) */
    struct ls_dm_info dm;
    bool dm_qemu;
    bool dm_started;               /* this restore started (or tried to start) the domain's
                                      QEMU: a given domain's is stopped on failure */
    bool standby;                  /* a standby QEMU was started for the device state */
    struct dm_task dm_check, dm_cont;
    struct fsm_join dm_check_join, dm_cont_join;
    struct fsm_join *dm_join;      /* the one in progress, for a cancel */
    /* A checkpointed stream (colo_secondary.def uses this struct as its
     * libxl-layer context; its own machine m is not run then): stream_rx
     * reads a checkpoint's libxl part or a control record on request and
     * tells ckpt_to by these events. */
    struct fsm *ckpt_to;
    int config_read_ev, ckpt_read_ev, control_new_ev, control_end_ev;
    uint32_t control_type, control_id;   /* the last control record read */
};

int restore_role_start(struct ls_ctx *ctx, const struct ls_restore_opts *opts,
                       ls_op_done_fn *done, void *data, struct ls_op **out,
                       struct ls_errbuf *err);

/* Parse an xl JSON config into what domain creation needs. */
int restore_parse_config(const char *json, struct ls_domain_config *cfg, struct ls_errbuf *err);

#endif
