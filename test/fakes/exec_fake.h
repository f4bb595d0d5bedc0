/* test/fakes/exec_fake.h - blocking work and helper threads, one step at a time.
 *
 * The io/exec.h seam for tests: io_work_start()'s functions and io_helper's
 * task run on real threads (so the role's own blocking code runs unchanged),
 * but only one thread ever runs at a time. The test's thread hands the baton
 * to a worker and gets it back when the worker finishes, waits for a
 * helper-call reply, or hangs in a backend call scripted to never answer
 * (fake_exec_hang). With the engine's scheduler stepped by hand (no kick),
 * a whole role runs deterministically: fake_exec_run() alternates "drain the
 * event queue" and "advance one worker".
 *
 * Order: workers are advanced oldest first (FAKE_EXEC_FIFO) or newest first
 * (FAKE_EXEC_LIFO), so two completions racing in a real run come in either
 * order. A hung call returns -ECANCELED once its work or helper is cancelled,
 * or -ETIMEDOUT when nothing else can move (a backend's own timeout).
 */
#ifndef LOCKSTEP_TEST_FAKES_EXEC_FAKE_H
#define LOCKSTEP_TEST_FAKES_EXEC_FAKE_H

#include <stdbool.h>

#include "io/exec.h"
#include "io/sched_uv.h"

enum fake_exec_order { FAKE_EXEC_FIFO, FAKE_EXEC_LIFO };

extern const struct io_exec_ops fake_exec_ops;

/* A manual scheduler on the fake executor: no loop, no kick. */
void fake_exec_sched_init(struct io_sched *s, enum fake_exec_order order);
/* Drain the queue and advance workers until nothing can move. */
void fake_exec_run(struct io_sched *s);
/* Called when only hung backend calls remain, before they time out; returns
 * true if it moved something (an owner's cancel). NULL: none. */
void fake_exec_on_stuck(bool (*fn)(void *data), void *data);
/* Called before each step that advances a worker (n from 1), so a test can
 * post an owner's cancel that lands before that completion. NULL: none. */
void fake_exec_on_step(void (*fn)(unsigned n, void *data), void *data);
/* Called after each dispatch (fsm_sched_step), e.g. to post an owner's
 * cancel once what the dispatch queued is in. NULL: none. Reset by
 * fake_exec_sched_init. */
void fake_exec_after_dispatch(void (*fn)(void *data), void *data);
/* Steps taken so far in this run (reset by fake_exec_sched_init). */
unsigned fake_exec_steps(void);
/* With on, io_work functions run on the test's thread when their turn
 * comes, without a thread of their own (much cheaper); only for runs in
 * which no backend call hangs (a hang there times out at once). Helpers
 * always get their thread: they wait for their callbacks' answers. */
void fake_exec_inline_work(bool on);
/* A libuv loop for s (one, reused by every run): roles whose QMP
 * connections need uv handles (qmp/). fake_exec_run() then also runs it
 * without blocking, and calls the idle hook (a scripted peer's turn:
 * test/fakes/qmp_peer_fake.h) whenever nothing else moves. Its clock is
 * virtual: when only timers remain, time jumps to the earliest one, so a
 * 30 s command deadline passes in microseconds. Handles still open once a
 * run is over are the run's leak (fake_exec_loop_handles). */
void fake_exec_use_loop(struct io_sched *s);
/* Returns true if it moved something (read, wrote, accepted, closed). */
void fake_exec_on_idle(bool (*fn)(void *data), void *data);
/* Called before (after false) and after (after true) each turn of the loop
 * (a uv_run, then the idle hook), n from 1 (reset by fake_exec_sched_init):
 * a test posts an owner's close or cancel there, kills the peer, or jumps
 * the clock, so it races what that turn brings. NULL: none. */
void fake_exec_on_loop_turn(void (*fn)(unsigned n, bool after, void *data), void *data);
/* Jump the virtual clock to the loop's earliest timer and run what is due
 * (from a turn hook: a deadline passing just as io posted). False: none. */
bool fake_exec_jump(void);
/* Handles (timers, polls) still open on the loop, 0 without one. */
unsigned fake_exec_loop_handles(void);

/* With on, a worker's poll() that would block parks it until one of its
 * fds is ready; when nothing else can move, the one whose timeout is the
 * earliest returns 0 (timed out), after a real wait if it watches a pipe (a
 * child process's). For roles that talk to each other in-process over
 * sockets: each side's wait is the other's turn. Work then needs threads
 * (fake_exec_inline_work(false)): inline work polls for real. */
void fake_exec_park_polls(bool on);

/* Workers neither finished nor reported (0 after a clean run). */
unsigned fake_exec_live(void);

/* After a broken run: cancel every worker, let each finish, free them all
 * without reporting (nothing is posted). */
void fake_exec_reset(void);

/* Worker side (a fake backend call scripted to hang): wait until cancelled
 * (-ECANCELED) or until nothing else can move (-ETIMEDOUT). */
int fake_exec_hang(void);
/* Worker side: the cancel fd of the work or helper calling (or -1). */
int fake_exec_cancel_fd(void);

#endif
