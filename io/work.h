/* io/work.h - run a blocking call on the libuv threadpool, report by event.
 *
 * io_work_start() queues fn(arg, err) on the threadpool. When it returns, the
 * loop thread posts `ev` (rc 0) to the machine, or records the error and
 * posts the machine's FAIL. The work is tied to the machine by an async undo:
 * if the machine reaches a final state first, its teardown signals the work's
 * cancel eventfd and waits for fn to return (then nothing is posted), so a
 * machine is never done while its work still runs, and no completion ever
 * reaches a freed machine.
 */
#ifndef LOCKSTEP_IO_WORK_H
#define LOCKSTEP_IO_WORK_H

#include <uv.h>

#include "fsm/fsm.h"
#include "lockstep/errbuf.h"

struct io_work;

/* fn runs on a worker thread. cancel_fd is readable once the owner gave up;
 * long waits poll it (io/fdio.h does). Return 0 or a negative errno and say
 * why in err. */
typedef int io_work_fn(void *arg, int cancel_fd, struct ls_errbuf *err);

/* Returns 0, or a negative errno (then nothing was queued). `what` names the
 * work in traces and errors ("write libxl header"). With ev == IO_WORK_EV_FROM_FN
 * the event posted is fn's non-negative return value: for work whose outcome
 * is one of several facts (a reader that stopped at LIBXC_CONTEXT or at END). */
#define IO_WORK_EV_FROM_FN (-1)
int io_work_start(struct fsm *m, int ev, io_work_fn *fn, void *arg, const char *what);

/* Stop waiting for every work item of m still running: each is cancelled
 * (its cancel_fd signalled) and its completion is dropped, not posted. For a
 * row leaving a state that awaited a peer (a cancelled wait for a reply). */
void io_work_abandon(struct fsm *m);

/* Interrupt every work item of m still running (its cancel_fd signalled)
 * but keep its completion: for a wait whose outcome must still be acted on
 * (a go-ahead read just as the owner cancelled has started a guest). */
void io_work_interrupt(struct fsm *m);

/* The loop a machine's scheduler runs on (its sched must be an io_sched). */
uv_loop_t *io_loop_of(struct fsm *m);

#endif
