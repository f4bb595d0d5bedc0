/* lib/domain.c - domain control for toolstacks, on the context's backend. */
#include <errno.h>
#include <string.h>

#include "backends/sim/sim.h"
#include "backends/xen/xen.h"
#include "lib/op.h"
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
    return ls_sim_find(ctx->be, name, domid, err);
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

const char *ls_guest_type_name(enum ls_guest_type t)
{
    switch (t) {
    case LS_GUEST_PV: return "pv";
    case LS_GUEST_HVM: return "hvm";
    case LS_GUEST_PVH: return "pvh";
    default: return "unset";
    }
}

const char *ls_run_state_name(enum ls_run_state s)
{
    switch (s) {
    case LS_RUN_RUNNING: return "running";
    case LS_RUN_PAUSED: return "paused";
    case LS_RUN_SUSPENDED: return "suspended";
    case LS_RUN_SHUTDOWN: return "shutdown";
    case LS_RUN_DYING: return "dying";
    default: return "unknown";
    }
}

const char *ls_ctx_backend_name(struct ls_ctx *ctx) { return ctx->be->ops->name; }
