/* states/memtask.h - the memory task machine (see memtask.def). */
#ifndef LOCKSTEP_STATES_MEMTASK_H
#define LOCKSTEP_STATES_MEMTASK_H

#include "io/helper.h"

#define FSM_PREFIX MEMTASK
#define FSM_DEF_FILE "states/memtask.def"
#include "fsm/gen_enums.h"

struct memtask {
    struct fsm m;
    struct io_helper helper;
    io_helper_fn *fn;          /* the backend's save_memory/restore_memory wrapper */
    void *arg;
    struct fsm *notify;        /* told notify_ev on success (the stream machine) */
    int notify_ev;
};

/* Initialise in AWAIT_HANDOFF; post MEMTASK_E_HANDOFF to start the thread. */
void memtask_init(struct memtask *t, struct fsm_sched *sched, const char *name,
                  io_helper_fn *fn, void *arg, struct fsm *notify, int notify_ev);

#endif
