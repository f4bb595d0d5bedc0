/* test/fsm/ping.c - actions of the engine tests' machine. */
#include <errno.h>
#include <string.h>

#include "test/fsm/ping.h"

#define FSM_PREFIX PING
#define FSM_DEF_FILE "test/fsm/ping.def"
#include "fsm/gen_table.h"

static struct ping_ctx *ctx(struct fsm *m) { return m->owner; }

static int ping_send(struct fsm *m, const struct fsm_ev *ev)
{
    ctx(m)->sent++;
    if (ctx(m)->send_rc)
        return fsm_fail(m, ctx(m)->send_rc, "ping: send refused");
    return 0;
}

static int ping_arm_deadline(struct fsm *m, const struct fsm_ev *ev)
{
    ctx(m)->armed++;
    return 0;
}

static int ping_store_rtt(struct fsm *m, const struct fsm_ev *ev)
{
    ctx(m)->rtt_stored++;
    return 0;
}

static int ping_set_timedout(struct fsm *m, const struct fsm_ev *ev)
{
    ctx(m)->timedout++;
    /* The failure is the outcome, not an action error: record it, go FAILED. */
    fsm_fail(m, -ETIMEDOUT, "ping: no PONG before the deadline");
    return 0;
}

static int ping_log_failure(struct fsm *m, const struct fsm_ev *ev)
{
    ctx(m)->failures_logged++;
    return 0;
}
