/* io/sched_uv.h - run an fsm scheduler on a libuv loop.
 *
 * fsm_post() from the loop thread kicks an idle handle; the queue is drained
 * on the next loop iteration, never inside the poster. Other threads must not
 * call fsm_post(): they use io/helper.h or io/work.h, which hand completions
 * to the loop thread first.
 */
#ifndef LOCKSTEP_IO_SCHED_UV_H
#define LOCKSTEP_IO_SCHED_UV_H

#include <uv.h>

#include "fsm/fsm.h"

struct io_exec_ops;

struct io_sched {
    struct fsm_sched sched;
    uv_loop_t *loop;
    /* NULL: blocking work runs on libuv (io/exec.h; tests put a fake here) */
    const struct io_exec_ops *exec;
    uv_idle_t idle;
    bool closing;
};

/* Returns 0 or a negative uv error. */
int io_sched_init(struct io_sched *s, uv_loop_t *loop);
/* Closes the idle handle (the loop must run once more to finish the close). */
void io_sched_close(struct io_sched *s);
/* The same, and done(arg) once libuv no longer holds the handle: memory
 * holding s may be freed only then. */
void io_sched_close_then(struct io_sched *s, void (*done)(void *), void *arg);

#endif
