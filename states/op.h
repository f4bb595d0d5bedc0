/* states/op.h - what every operation (save, restore, ...) shares with the API (lib/). */
#ifndef LOCKSTEP_STATES_OP_H
#define LOCKSTEP_STATES_OP_H

#include <uv.h>

#include "backends/backend.h"
#include "fsm/fsm.h"
#include "io/helper.h"
#include "io/sched_uv.h"
#include "lockstep/lockstep.h"

struct colo_common;

struct ls_ctx {
    uv_loop_t *loop;
    struct io_sched sched;
    struct ls_backend *be;
    unsigned live_ops;
};

struct ls_op {
    struct ls_ctx *ctx;
    struct fsm *root;              /* the role's top machine */
    struct io_helper *progress_of; /* the memory task's helper, for progress */
    uint32_t domid;
    char digest[65];               /* the domain's digest at the consistent point, or "" */
    ls_op_done_fn *done;
    void *data;
    void (*free_role)(struct ls_op *op);
    bool finished;
    struct ls_op *child;           /* a migration's save or restore: progress comes from it */
    struct ls_precopy_progress precopy;
    uint64_t suspended_ns, resumed_ns;
    enum ls_migrate_outcome outcome;
    struct colo_common *colo;      /* a COLO role's outcome and statistics, else NULL */
};

/* The role's top machine finished: report to the owner (called from the
 * machine's done callback, so never inline in a start call). */
void op_finish(struct ls_op *op, int rc, const char *msg);
/* Free a finished operation (ls_op_free). */
void op_free(struct ls_op *op);

#endif
