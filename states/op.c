/* states/op.c - the end of an operation, reported to its owner. */
#include "states/op.h"

void op_finish(struct ls_op *op, int rc, const char *msg)
{
    op->finished = true;
    op->ctx->live_ops--;
    struct ls_backend *be = op->ctx->be;
    if (op->ctx->live_ops == 0 && be->ops->release_deferred)
        be->ops->release_deferred(be);
    if (op->done)
        op->done(op, rc, rc ? msg : NULL, op->data);
}

void op_free(struct ls_op *op)
{
    if (op && op->free_role)
        op->free_role(op);
}
