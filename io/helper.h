/* io/helper.h - the memory task's thread, and its callbacks as events.
 *
 * This is lockstep's libxl-save-helper: the backend's blocking memory task
 * (xc_domain_save / xc_domain_restore, or the sim's) runs on a thread of its
 * own and owns the stream fd meanwhile. Each callback it makes (suspend,
 * precopy_policy, checkpoint, static_data_done, ...) becomes an event posted
 * to a machine on the loop; the thread blocks until an action answers with
 * io_helper_reply(). When the task returns, `finished_ev` is posted to the
 * owner with the task's rc.
 *
 * Cancel: io_helper_cancel() signals cancel_fd (the task's I/O polls it) and
 * answers a pending or future callback with its cancel value, so the thread
 * always comes back. The owner must not free the helper before
 * io_helper_release() has completed (it joins the thread, closes the handle,
 * then calls fsm_undo_complete on the machine given).
 */
#ifndef LOCKSTEP_IO_HELPER_H
#define LOCKSTEP_IO_HELPER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "fsm/fsm.h"
#include "io/fdio.h"
#include "lockstep/errbuf.h"

struct io_helper;
struct io_exec_ops;
typedef int io_helper_fn(struct io_helper *h, void *arg, struct ls_errbuf *err);

struct io_helper {
    const struct io_exec_ops *exec;   /* NULL: a real thread (io/exec.h) */
    /* loop side */
    uv_async_t async;
    struct fsm *owner;
    int finished_ev;
    bool started, joined, finished_posted, call_posted;
    struct fsm *release_m;    /* machine whose undo waits for the close */
    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    struct fsm *call_target;
    int call_ev, call_reply, call_cancel_value;
    void *call_arg;
    bool call_pending, call_answered, cancelled, finished;
    int rc;
    struct ls_errbuf err;
    /* thread side */
    io_helper_fn *fn;
    void *arg;
    int cancel_fd;            /* eventfd; readable once cancelled */
    /* progress, written by the thread, read by anyone */
    _Atomic uint64_t progress_done, progress_total;
    /* when the count first and last moved (CLOCK_MONOTONIC ns), and the count
     * at the first move: the task times its own page phase, so that nobody
     * has to sample it (a 1 ms sampler in each process cost a 4 GiB save
     * to a restore over a unix socket about 8% of its rate on two cores) */
    _Atomic uint64_t moved_first_ns, moved_first_done, moved_last_ns;
};

/* Start fn(h, arg) on a new thread. Returns 0 or a negative errno. */
int io_helper_start(struct io_helper *h, uv_loop_t *loop, struct fsm *owner, int finished_ev,
                    io_helper_fn *fn, void *arg);

/* Thread side: post ev (arg) to target on the loop and wait for the reply.
 * Returns the reply, or cancel_value if the helper is or gets cancelled. */
int io_helper_call(struct io_helper *h, struct fsm *target, int ev, void *arg, int cancel_value);

/* Loop side: answer the pending callback. */
void io_helper_reply(struct io_helper *h, int value);

/* Loop side: make the task stop as soon as it can. Idempotent. */
void io_helper_cancel(struct io_helper *h);

/* Thread side, lock-free: record progress. */
static inline void io_helper_progress(struct io_helper *h, uint64_t done, uint64_t total)
{
    if (done != atomic_load_explicit(&h->progress_done, memory_order_relaxed)) {
        uint64_t now = io_monotonic_ns();
        if (atomic_load_explicit(&h->moved_first_ns, memory_order_relaxed) == 0) {
            atomic_store_explicit(&h->moved_first_done, done, memory_order_relaxed);
            atomic_store_explicit(&h->moved_first_ns, now, memory_order_relaxed);
        }
        atomic_store_explicit(&h->moved_last_ns, now, memory_order_relaxed);
    }
    atomic_store_explicit(&h->progress_done, done, memory_order_relaxed);
    atomic_store_explicit(&h->progress_total, total, memory_order_relaxed);
}

/* Loop side: the task's result once finished_ev has been posted. */
static inline int io_helper_rc(const struct io_helper *h) { return h->rc; }
static inline const struct ls_errbuf *io_helper_err(const struct io_helper *h) { return &h->err; }

/* Loop side, as an async undo: cancel, join the thread and close the handle;
 * returns FSM_UNDO_PENDING and later calls fsm_undo_complete(m). */
int io_helper_release(struct fsm *m, void *helper);

#endif
