/* lib/op.c - operations and contexts, independent of the backend chosen. */
#include <errno.h>
#include <stdlib.h>

#include "lib/op.h"

void ls_ctx_free(struct ls_ctx *ctx)
{
    if (!ctx)
        return;
    io_sched_close(&ctx->sched);
    fsm_sched_destroy(&ctx->sched.sched);
    ctx->be->ops->close(ctx->be);
    free(ctx);
}

struct ls_backend *ls_ctx_backend(struct ls_ctx *ctx) { return ctx->be; }

void ls_op_finish(struct ls_op *op, int rc, const char *msg)
{
    op->finished = true;
    op->ctx->live_ops--;
    if (op->done)
        op->done(op, rc, rc ? msg : NULL, op->data);
}

void ls_op_cancel(struct ls_op *op)
{
    if (!op->finished)
        fsm_cancel(op->root, -ECANCELED);
}

void ls_op_free(struct ls_op *op)
{
    if (op && op->free_role)
        op->free_role(op);
}

void ls_op_progress(const struct ls_op *op, uint64_t *done_bytes, uint64_t *total_bytes)
{
    *done_bytes = *total_bytes = 0;
    if (op->progress_of) {
        *done_bytes = atomic_load(&op->progress_of->progress_done);
        *total_bytes = atomic_load(&op->progress_of->progress_total);
    }
}

uint32_t ls_op_domid(const struct ls_op *op) { return op->domid; }

const char *ls_op_digest(const struct ls_op *op) { return op->digest; }
