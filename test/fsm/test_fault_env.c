/* test/fsm/test_fault_env.c - FSM_FAULT is read only by a build with the hooks.
 *
 * Built twice from the engine's own source: once as the test build is
 * (LOCKSTEP_FAULT_HOOKS), once without it, as a release build is. With
 * FSM_FAULT=1:5 in the environment the first must fail the ping's first
 * dispatch with -EIO; the second must run the ping to completion untouched.
 * No loop, no process: a few milliseconds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "test/fsm/ping.h"

extern const struct fsm_def ping_fsm_def;
/* The engine's registry of machines, which this build does not link. */
const struct fsm_def *const fsm_all_defs[] = { &ping_fsm_def, NULL };
const size_t fsm_all_defs_count = 1;

static void done_cb(struct fsm *m, int rc)
{
    struct ping_ctx *c = m->owner;
    c->done_calls++;
    c->done_rc = rc;
}

int main(void)
{
    setenv("FSM_FAULT", "1:5", 1);
    struct fsm_sched s;
    fsm_sched_init(&s);
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &s, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_post(&m, PING_E_WRITTEN, 0, NULL);
    fsm_post(&m, PING_E_PONG, 0, NULL);
    fsm_sched_run(&s);
    fsm_sched_destroy(&s);
#ifdef LOCKSTEP_FAULT_HOOKS
    const int want_rc = -EIO;
    const bool want_fired = true;
    const char *build = "hooked";
#else
    const int want_rc = 0;
    const bool want_fired = false;
    const char *build = "release";
#endif
    bool ok = c.done_calls == 1 && c.done_rc == want_rc && fsm_fault_fired() == want_fired;
    printf("%s %s build, FSM_FAULT=1:5: done %d time(s), rc %d, fault %s\n", ok ? "ok  " : "FAIL",
           build, c.done_calls, c.done_rc, fsm_fault_fired() ? "fired" : "not fired");
    return ok ? 0 : 1;
}
