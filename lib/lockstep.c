/* lib/lockstep.c - the public API: contexts and operations. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/sim/sim.h"
#include "backends/xen/xen.h"
#include "io/size.h"
#include "states/op.h"

/* FSM_STOP=SEQ: the process stops itself (SIGSTOP) right after dispatch SEQ,
 * so a test can kill it, break its connections or kill its host at exactly
 * that point, then let it go on or not. Seen through the trace hook, which
 * every dispatch passes, traced or not. */
static uint64_t stop_after;

static void trace_and_stop(const struct fsm_trace_rec *rec, void *data)
{
    if (data)
        fsm_trace_stderr(rec, NULL);
    if (stop_after && rec->seq == stop_after) {
        fflush(stderr);
        raise(SIGSTOP);
    }
}

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
#ifdef LOCKSTEP_FAULT_HOOKS
    const char *stop = getenv("FSM_STOP");
    stop_after = stop && *stop ? strtoull(stop, NULL, 10) : 0;
#endif
    if (getenv("LOCKSTEP_TRACE") || stop_after) {
        c->sched.sched.trace = trace_and_stop;
        c->sched.sched.trace_data = getenv("LOCKSTEP_TRACE") ? c : NULL;
    }
    *out = c;
    return 0;
}


int ls_parse_size(const char *s, uint64_t *bytes)
{
    return io_parse_size(s, bytes);
}
