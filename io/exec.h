/* io/exec.h - where io/work.c and io/helper.c run blocking code: the seam.
 *
 * An io_sched whose `exec` is NULL (production) runs io_work_start()'s
 * functions on libuv's threadpool and each io_helper on a thread of its own,
 * with completions handed to the loop. A test sets `exec` to an ops table
 * (test/fakes/exec_fake.c) that runs the same functions one step at a time
 * under a manual scheduler, so a role runs in-process and deterministically.
 * Each op has the contract of the io_ function of the same name.
 */
#ifndef LOCKSTEP_IO_EXEC_H
#define LOCKSTEP_IO_EXEC_H

#include "io/helper.h"
#include "io/work.h"

struct io_exec_ops {
    int (*work_start)(struct fsm *m, int ev, io_work_fn *fn, void *arg, const char *what);
    void (*work_abandon)(struct fsm *m);
    void (*work_interrupt)(struct fsm *m);
    /* h is zeroed, with h->exec set, before helper_start is called. */
    int (*helper_start)(struct io_helper *h, struct fsm *owner, int finished_ev,
                        io_helper_fn *fn, void *arg);
    int (*helper_call)(struct io_helper *h, struct fsm *target, int ev, void *arg,
                       int cancel_value);
    void (*helper_reply)(struct io_helper *h, int value);
    void (*helper_cancel)(struct io_helper *h);
    int (*helper_release)(struct fsm *m, void *helper);
};

/* On the loop thread: a work's fn returned rc (err its reason): post ev (or
 * fn's event, IO_WORK_EV_FROM_FN) with arg, or record the error and post
 * FAIL. Every executor delivers through this, so a fake's completions are
 * the production ones. */
void io_work_deliver(struct fsm *m, int ev, int rc, const struct ls_errbuf *err, void *arg);

/* The ops of the scheduler m runs on, or NULL for libuv. */
const struct io_exec_ops *io_exec_of(const struct fsm *m);

#endif
