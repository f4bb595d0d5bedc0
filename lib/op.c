/* lib/op.c - operations and contexts, independent of the backend chosen. */
#include <errno.h>
#include <stdlib.h>

#include "states/op.h"

/* libuv holds the context's idle handle until its close callback has run:
 * the context is freed then, not before (valgrind saw uv_run read it after
 * a free; ASan cannot see into an uninstrumented libuv). */
static void ctx_closed(void *ctx)
{
    free(ctx);
}

void ls_ctx_free(struct ls_ctx *ctx)
{
    if (!ctx)
        return;
    io_sched_close_then(&ctx->sched, ctx_closed, ctx);   /* frees ctx on the loop, later */
    fsm_sched_destroy(&ctx->sched.sched);
    ctx->be->ops->close(ctx->be);
    ctx->be = NULL;
}

struct ls_backend *ls_ctx_backend(struct ls_ctx *ctx) { return ctx->be; }

void ls_op_cancel(struct ls_op *op)
{
    if (!op->finished)
        fsm_cancel(op->root, -ECANCELED);
}

void ls_op_free(struct ls_op *op) { op_free(op); }

void ls_op_progress(const struct ls_op *op, uint64_t *done_bytes, uint64_t *total_bytes)
{
    *done_bytes = *total_bytes = 0;
    if (op->child)
        op = op->child;
    if (op->progress_of) {
        *done_bytes = atomic_load(&op->progress_of->progress_done);
        *total_bytes = atomic_load(&op->progress_of->progress_total);
    }
}

void ls_op_page_phase(const struct ls_op *op, struct ls_page_phase *out)
{
    *out = (struct ls_page_phase){ 0 };
    if (op->child)
        op = op->child;
    const struct io_helper *h = op->progress_of;
    if (!h || atomic_load(&h->moved_first_ns) == 0)
        return;
    out->first_ns = atomic_load(&h->moved_first_ns);
    out->last_ns = atomic_load(&h->moved_last_ns);
    out->bytes = atomic_load(&h->progress_done) - atomic_load(&h->moved_first_done);
}

uint32_t ls_op_domid(const struct ls_op *op) { return op->domid; }

const char *ls_op_digest(const struct ls_op *op) { return op->digest; }

void ls_op_precopy(const struct ls_op *op, struct ls_precopy_progress *out)
{
    *out = op->child ? op->child->precopy : op->precopy;
}

uint64_t ls_op_suspended_ns(const struct ls_op *op) { return op->suspended_ns; }
uint64_t ls_op_resumed_ns(const struct ls_op *op) { return op->resumed_ns; }
enum ls_migrate_outcome ls_op_migrate_outcome(const struct ls_op *op) { return op->outcome; }

const char *ls_migrate_outcome_text(enum ls_migrate_outcome o)
{
    switch (o) {
    case LS_MIGRATE_DESTINATION_RUNS:
        return "the guest runs at the destination; the source copy was destroyed";
    case LS_MIGRATE_SOURCE_LEFT:
        return "the guest runs at the destination; the source copy could not be destroyed "
               "and is left suspended";
    case LS_MIGRATE_RUNS_UNCONFIRMED:
        return "the guest runs here, but the sender did not receive the confirmation: "
               "its copy is left suspended there and must be destroyed, not resumed";
    case LS_MIGRATE_SOURCE_RUNS:
        return "the guest runs at the source; the destination has no copy";
    case LS_MIGRATE_SOURCE_SUSPENDED:
        return "the guest could not be resumed: it is suspended at the source; the "
               "destination has no copy";
    case LS_MIGRATE_UNCONFIRMED:
        return "the go-ahead was sent but never confirmed: the guest is left suspended "
               "here and not resumed; the destination runs it if the go-ahead arrived, "
               "otherwise it destroyed its copy";
    case LS_MIGRATE_NOT_RECEIVED:
        return "no copy of the guest here (none was started; any partial copy was "
               "destroyed): the guest stays with the sender";
    default:
        return "the migration has not finished";
    }
}
