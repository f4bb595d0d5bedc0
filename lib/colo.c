/* lib/colo.c - the COLO/Remus API (lockstep/colo.h) over states/colo_*.c. */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "states/op.h"
#include "lockstep/colo.h"
#include "states/colo.h"

const char *ls_colo_role_name(enum ls_colo_role r)
{
    switch (r) {
    case LS_COLO_STARTING: return "starting";
    case LS_COLO_PROTECTED: return "protected";
    case LS_COLO_UNPROTECTED: return "unprotected";
    case LS_COLO_STOPPED: return "stopped";
    case LS_COLO_STANDBY: return "standby";
    case LS_COLO_ACTIVE: return "active";
    case LS_COLO_FENCE_FAILED: return "fence-failed";
    case LS_COLO_ENDED: return "ended";
    }
    return "unknown";
}

/* A backend that cannot run COLO proper says why before any role starts. */
int ls_colo_mode_supported(struct ls_ctx *ctx, enum ls_colo_mode mode, struct ls_errbuf *err)
{
    struct ls_backend *be = ls_ctx_backend(ctx);
    if (mode != LS_COLO_MODE_COLO || !be->ops->colo_refusal)
        return 0;
    return be->ops->colo_refusal(be, err);
}

int ls_colo_primary_start(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                          ls_op_done_fn *done, void *data, struct ls_op **out,
                          struct ls_errbuf *err)
{
    int rc = ls_colo_mode_supported(ctx, opts->mode, err);
    return rc < 0 ? rc : colo_primary_role_start(ctx, opts, NULL, NULL, done, data, out, err);
}

int ls_colo_primary_start_net(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                              const struct ls_colo_net_opts *net, ls_op_done_fn *done, void *data,
                              struct ls_op **out, struct ls_errbuf *err)
{
    int rc = ls_colo_mode_supported(ctx, opts->mode, err);
    return rc < 0 ? rc : colo_primary_role_start(ctx, opts, net, NULL, done, data, out, err);
}

int ls_colo_secondary_start(struct ls_ctx *ctx, const struct ls_colo_secondary_opts *opts,
                            ls_op_done_fn *done, void *data, struct ls_op **out,
                            struct ls_errbuf *err)
{
    int rc = ls_colo_mode_supported(ctx, opts->mode, err);
    return rc < 0 ? rc : colo_secondary_role_start(ctx, opts, NULL, NULL, done, data, out, err);
}

int ls_colo_secondary_start_net(struct ls_ctx *ctx, const struct ls_colo_secondary_opts *opts,
                                const struct ls_colo_net_opts *net, ls_op_done_fn *done,
                                void *data, struct ls_op **out, struct ls_errbuf *err)
{
    int rc = ls_colo_mode_supported(ctx, opts->mode, err);
    return rc < 0 ? rc : colo_secondary_role_start(ctx, opts, net, NULL, done, data, out, err);
}

int ls_colo_primary_start_disks(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                                const struct ls_colo_net_opts *net,
                                const struct ls_colo_disk_opts *disks, ls_op_done_fn *done,
                                void *data, struct ls_op **out, struct ls_errbuf *err)
{
    int rc = ls_colo_mode_supported(ctx, opts->mode, err);
    return rc < 0 ? rc : colo_primary_role_start(ctx, opts, net, disks, done, data, out, err);
}

int ls_colo_secondary_start_disks(struct ls_ctx *ctx, const struct ls_colo_secondary_opts *opts,
                                  const struct ls_colo_net_opts *net,
                                  const struct ls_colo_disk_opts *disks, ls_op_done_fn *done,
                                  void *data, struct ls_op **out, struct ls_errbuf *err)
{
    int rc = ls_colo_mode_supported(ctx, opts->mode, err);
    return rc < 0 ? rc : colo_secondary_role_start(ctx, opts, net, disks, done, data, out, err);
}

const char *ls_colo_disk_state_name(enum ls_colo_disk_state s)
{
    switch (s) {
    case LS_COLO_DISK_NONE: return "none";
    case LS_COLO_DISK_STARTING: return "starting";
    case LS_COLO_DISK_REPLICATING: return "replicating";
    case LS_COLO_DISK_BROKEN: return "broken";
    case LS_COLO_DISK_FAILED_OVER: return "failed-over";
    case LS_COLO_DISK_STOPPED: return "stopped";
    case LS_COLO_DISK_FAILED: return "failed";
    }
    return "unknown";
}

int ls_colo_disk_stats(const struct ls_op *op, struct ls_colo_disk_stats *st)
{
    if (!op->colo)
        return -EINVAL;
    *st = op->colo->disk;
    return 0;
}

int ls_colo_net_stats(const struct ls_op *op, struct ls_colo_net_stats *st)
{
    if (!op->colo || !op->colo->proxy)
        return -EINVAL;
    *st = (struct ls_colo_net_stats){ 0 };
    colo_proxy_stats(op->colo->proxy, st);
    st->checkpoints_periodic = op->colo->ck_periodic;
    st->checkpoints_divergence = op->colo->ck_divergence;
    st->checkpoints_manual = op->colo->ck_manual;
    return 0;
}

int ls_colo_checkpoint(struct ls_op *op)
{
    if (!op->colo || op->colo->is_secondary)
        return -EINVAL;
    if (op->finished)
        return -ESRCH;
    uint64_t one = 1;
    return write(op->colo->trigger_fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

int ls_colo_failover(struct ls_op *op)
{
    if (!op->colo || !op->colo->is_secondary)
        return -EINVAL;
    if (op->finished)
        return -ESRCH;
    fsm_post(op->root, COLO_SECONDARY_E_FAILOVER, 0, NULL);
    return 0;
}

enum ls_colo_role ls_op_colo_role(const struct ls_op *op)
{
    return op->colo ? op->colo->role : LS_COLO_ENDED;
}

int ls_colo_dm_state(const struct ls_op *op, struct ls_colo_dm_state *out)
{
    if (!op->colo)
        return -EINVAL;
    if (!op->colo->dm.digest[0])
        return -ENOENT;
    *out = op->colo->dm;
    return 0;
}
