/* states/memtask.c - actions of the memory task machine. */
#include "states/memtask.h"

#include <errno.h>
#include <string.h>

#include "io/work.h"

#define FSM_PREFIX MEMTASK
#define FSM_DEF_FILE "states/memtask.def"
#include "fsm/gen_table.h"

void memtask_init(struct memtask *t, struct fsm_sched *sched, const char *name,
                  io_helper_fn *fn, void *arg, struct fsm *notify, int notify_ev)
{
    fsm_init(&t->m, &memtask_fsm_def, sched, NULL, t, "%s", name);
    t->fn = fn;
    t->arg = arg;
    t->notify = notify;
    t->notify_ev = notify_ev;
}

static int memtask_start_thread(struct fsm *m, const struct fsm_ev *ev)
{
    struct memtask *t = m->owner;
    int rc = io_helper_start(&t->helper, io_loop_of(m), m, MEMTASK_E_FINISHED, t->fn, t->arg);
    /* Registered even when the start failed: release closes what start opened. */
    int drc = fsm_defer(m, io_helper_release, &t->helper, "memory task thread");
    if (rc < 0)
        return fsm_fail(m, rc, "%s: cannot start the memory task thread: %s", m->name,
                        strerror(-rc));
    return drc;
}

static int memtask_take_result(struct fsm *m, const struct fsm_ev *ev)
{
    struct memtask *t = m->owner;
    if (ev->rc < 0) {
        fsm_fail_from(m, io_helper_err(&t->helper));
        return ev->rc;
    }
    fsm_post(t->notify, t->notify_ev, 0, NULL);
    return 0;
}
