/* lib/ops.c - the operations toolstacks start: each is a role of states/. */
#include "lockstep/lockstep.h"
#include "states/migrate.h"
#include "states/restore.h"
#include "states/save.h"

int ls_save_start(struct ls_ctx *ctx, const struct ls_save_opts *opts, ls_op_done_fn *done,
                  void *data, struct ls_op **out, struct ls_errbuf *err)
{
    return save_role_start(ctx, opts, done, data, out, err);
}

int ls_restore_start(struct ls_ctx *ctx, const struct ls_restore_opts *opts,
                     ls_op_done_fn *done, void *data, struct ls_op **out,
                     struct ls_errbuf *err)
{
    return restore_role_start(ctx, opts, done, data, out, err);
}

int ls_migrate_start(struct ls_ctx *ctx, const struct ls_migrate_opts *opts,
                     ls_op_done_fn *done, void *data, struct ls_op **out,
                     struct ls_errbuf *err)
{
    return migrate_send_start(ctx, opts, done, data, out, err);
}

int ls_migrate_receive_start(struct ls_ctx *ctx, const struct ls_migrate_receive_opts *opts,
                             ls_op_done_fn *done, void *data, struct ls_op **out,
                             struct ls_errbuf *err)
{
    return migrate_receive_start(ctx, opts, done, data, out, err);
}

int ls_tls_check_creds(const struct ls_tls_opts *o, bool receiver, struct ls_errbuf *err)
{
    return mig_tls_check_creds(o, receiver, err);
}
