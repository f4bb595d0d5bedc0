/* lib/domain.c - domain control for toolstacks, on the context's backend. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backends/sim/sim.h"
#include "backends/xen/xen.h"
#include "states/op.h"
#include "lockstep/domain.h"

int ls_domain_info(struct ls_ctx *ctx, uint32_t domid, struct ls_domain_info *out,
                   struct ls_errbuf *err)
{
    return ctx->be->ops->domain_info(ctx->be, domid, out, err);
}

int ls_domain_find(struct ls_ctx *ctx, const char *name, uint32_t *domid, struct ls_errbuf *err)
{
    if (strcmp(ctx->be->ops->name, "xen") == 0)
        return ls_xen_find(ctx->be, name, domid, err);
    return sim_find_domain(ctx->be, name, domid, err);
}

int ls_domain_destroy(struct ls_ctx *ctx, uint32_t domid, struct ls_errbuf *err)
{
    return ctx->be->ops->destroy(ctx->be, domid, err);
}

int ls_domain_pause(struct ls_ctx *ctx, uint32_t domid, struct ls_errbuf *err)
{
    return ctx->be->ops->pause(ctx->be, domid, err);
}

int ls_domain_unpause(struct ls_ctx *ctx, uint32_t domid, struct ls_errbuf *err)
{
    return ctx->be->ops->unpause(ctx->be, domid, err);
}

int ls_domain_resume(struct ls_ctx *ctx, uint32_t domid, bool fast, struct ls_errbuf *err)
{
    return ctx->be->ops->resume(ctx->be, domid, fast, err);
}

int ls_domain_digest(struct ls_ctx *ctx, uint32_t domid, char hex[65], struct ls_errbuf *err)
{
    if (!ctx->be->ops->digest)
        return ls_err(err, -EOPNOTSUPP, "the %s backend has no domain digest",
                      ctx->be->ops->name);
    return ctx->be->ops->digest(ctx->be, domid, hex, err);
}

int ls_domain_dm_info(struct ls_ctx *ctx, uint32_t domid, struct ls_dm_info *out,
                      struct ls_errbuf *err)
{
    if (!ctx->be->ops->dm_info)
        return ls_err(err, -EOPNOTSUPP, "the %s backend does not supervise device models",
                      ctx->be->ops->name);
    return ctx->be->ops->dm_info(ctx->be, domid, out, err);
}

int ls_domain_dm_prepare_standby(struct ls_ctx *ctx, uint32_t domid, const char *qemu,
                                 struct ls_errbuf *err)
{
    if (!ctx->be->ops->dm_prepare_standby)
        return ls_err(err, -EOPNOTSUPP, "the %s backend keeps no standby device models",
                      ctx->be->ops->name);
    return ctx->be->ops->dm_prepare_standby(ctx->be, domid, qemu, err);
}

int ls_domain_dm_load(struct ls_ctx *ctx, uint32_t domid, int state_fd, struct ls_errbuf *err)
{
    if (!ctx->be->ops->dm_load_checkpoint)
        return ls_err(err, -EOPNOTSUPP, "the %s backend cannot load a device state into a "
                      "domain's device model", ctx->be->ops->name);
    return ctx->be->ops->dm_load_checkpoint(ctx->be, domid, state_fd, err);
}

const char *ls_dm_status_text(const struct ls_dm_info *dm, char *buf, size_t len)
{
    return backend_dm_status_text(dm, buf, len);
}

const char *ls_guest_type_name(enum ls_guest_type t) { return backend_guest_type_name(t); }

const char *ls_run_state_name(enum ls_run_state s) { return backend_run_state_name(s); }

const char *ls_ctx_backend_name(struct ls_ctx *ctx) { return ctx->be->ops->name; }
