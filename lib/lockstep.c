/* lib/lockstep.c - the public API: contexts and operations. */
#include <errno.h>
#include <stdlib.h>

#include "backends/sim/sim.h"
#include "backends/xen/xen.h"
#include "lib/op.h"

int ls_ctx_new(struct ls_ctx **out, uv_loop_t *loop, enum ls_backend_kind kind,
               struct ls_errbuf *err)
{
    struct ls_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return ls_err(err, -ENOMEM, "out of memory");
    c->loop = loop;
    if (kind == LS_BACKEND_AUTO)
        kind = ls_xen_available() ? LS_BACKEND_XEN : LS_BACKEND_SIM;
    int rc = kind == LS_BACKEND_XEN ? ls_xen_open(&c->be, err) : ls_sim_open(&c->be, err);
    if (rc < 0) {
        free(c);
        return rc;
    }
    rc = io_sched_init(&c->sched, loop);
    if (rc < 0) {
        c->be->ops->close(c->be);
        free(c);
        return ls_err(err, rc, "cannot set up the event loop: %s", uv_strerror(rc));
    }
    if (getenv("LOCKSTEP_TRACE"))
        c->sched.sched.trace = fsm_trace_stderr;
    *out = c;
    return 0;
}

