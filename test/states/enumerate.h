/* test/states/enumerate.h - every row of a role, failed, cancelled and failed twice.
 *
 * A scenario starts one role on the fakes (test/fakes/backend_fake.h,
 * exec_fake.h) and checks the role's invariants from the fake's state once
 * it is done. enum_scenario_walk() runs it clean, then again with:
 *   - a failure injected at the first dispatch of every (machine, state,
 *     event) the runs reach (FSM_FAULT), and a cancel after it;
 *   - every backend point failed, hung, and hung with the owner cancelling;
 *   - a second failure on every row of each of those failure paths;
 * all of it with workers advanced oldest-first and newest-first, so racing
 * completions arrive in both orders. Every run must call done exactly once,
 * hit no hole, leave no worker, fd or live machine behind, and pass the
 * scenario's check. Rows taken are accumulated for enum_report().
 */
#ifndef LOCKSTEP_TEST_STATES_ENUMERATE_H
#define LOCKSTEP_TEST_STATES_ENUMERATE_H

#include <stdbool.h>
#include <stdio.h>

#include "states/op.h"
#include "test/fakes/backend_fake.h"
#include "test/fakes/exec_fake.h"
#include "test/fakes/qmp_peer_fake.h"

struct enum_env {
    struct ls_ctx ctx;
    struct fake_backend fb;
    struct ls_op *op;
    unsigned done_calls;
    int done_rc;
    char done_msg[LS_ERRBUF_LEN + 256];
    int fd[4];                     /* the scenario's fds, closed by the walker */
    const struct fsm_def *swap_from, *swap_to;   /* a broken table variant */
    char problem[1024];            /* what the check found, "" if fine */
    int peer;                      /* the scenario's scripted peer, if any */
    bool has_qemu;                 /* qemu is open: closed by the walker */
    /* A dispatch was failed by injection (FSM_FAULT). A teardown row's
     * action still runs then, reported failed (fsm.c): a resume the table
     * counts as failed may have run, so checks of what follows it (its
     * QEMU's cont) stand down. */
    bool injected;
    struct qmp_peer qemu;          /* a domain's scripted QEMU (enum_use_qemu) */
    /* A second role of the run, its peer in-process (a COLO pair): started
     * with enum_on_done2; the owner's cancels go to op alone. */
    struct ls_op *op2;
    unsigned done_calls2;
    int done_rc2;
    char done_msg2[LS_ERRBUF_LEN + 256];
    /* Set by start: the roles talk to each other in-process
     * (fake_exec_park_polls): work runs on threads, and a wait that would
     * block is the peer's turn. */
    bool peers;
    /* Set by start: the owner's "cancel" at every point of the walk, in
     * place of ls_op_cancel (a COLO secondary's manual failover). */
    void (*owner_act)(struct ls_op *op);
    /* Set by start: the scripted QEMU's answers are walked once per (name,
     * row dispatched before it): a pair's disk jobs, each of whose answers
     * the colo_disk/ scenarios walk alone. */
    bool peer_points_once;
    /* Set by start: workers are advanced oldest-first only (the racing
     * completions' other order is left to the scenarios without it). */
    bool one_order;
};

/* Give the run a scripted QEMU (status "running", "paused", ...) on a uv
 * loop: the fake backend's domains marked qemu have it as device model. */
int enum_use_qemu(struct enum_env *env, const char *status, struct ls_errbuf *err);

struct enum_scenario {
    const char *name;              /* "save/pv" */
    /* Add the domains, open the fds (into env->fd), start the role (env->op);
     * arg is the scenario's own (below). */
    int (*start)(struct enum_env *env, const void *arg, struct ls_errbuf *err);
    /* The role's invariants: enum_problem() for each one broken. */
    void (*check)(struct enum_env *env);
    /* > 1: walk 1 in N of the second failures and cancels, picked by a
     * PRNG seeded with enum_seed and the scenario's name (the same ones
     * every run), and every one that would take a row no run took yet; to
     * keep the whole walk near 30 s of CPU. First failures are all walked. */
    unsigned sample_second;
    const void *arg;               /* what start is given: the scenario's case */
};

/* Note a broken invariant (the first one is reported). */
void enum_problem(struct enum_env *env, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The done callback scenarios pass to their role's start (enum_on_done2:
 * the second role's, env->op2). */
ls_op_done_fn enum_on_done, enum_on_done2;

struct enum_stats {
    unsigned runs, failed_runs, skipped;   /* skipped: second failures not sampled */
    unsigned points_alike;                 /* QEMU answers alike to one walked (peer_points_once) */
    unsigned row_guided;                   /* sampled out, walked for a row no run took yet */
};

/* Mixed into every scenario's sampling PRNG (with its name): 0 by default,
 * printed by the report, set by test_states_enum --seed to replay a run. */
extern uint64_t enum_seed;

/* Walk one scenario; failures are printed (each with its run's rows) and
 * counted. With swap_from/swap_to, machines of swap_from run swap_to's
 * table instead (a deliberately broken variant). */
void enum_scenario_walk(const struct enum_scenario *sc, struct enum_stats *st,
                        const struct fsm_def *swap_from, const struct fsm_def *swap_to);

/* One run for a trace test: backend point `point` (0: none) answers
 * `answer`; the dispatches as "machine:STATE.EVENT/action>NEXT" tokens. */
struct enum_trace {
    char trace[16384];
    char points[512];             /* the backend points reached, in order */
    int rc;
    char msg[LS_ERRBUF_LEN + 256];
    int rc2;                      /* the peer role's (env->op2), if any */
    char msg2[LS_ERRBUF_LEN + 256];
    char problem[1024];           /* a broken invariant, "" if none */
};
void enum_trace_run(const struct enum_scenario *sc, unsigned point, enum fb_answer answer,
                    struct enum_trace *out);

/* A row no scenario reaches yet, "machine STATE EVENT", and why. */
struct enum_deferred {
    const char *row, *why;
};

/* Print rows taken per machine, for the machines named (NULL-terminated),
 * and write every row taken as "machine STATE EVENT" lines to rows_file
 * (if not NULL). Returns the number of rows neither taken nor marked
 * unreachable in those machines. Rows in deferred (ended by a NULL row) are
 * printed as deferred, with their reason, and not counted. */
unsigned enum_report(const char *const *machines, const struct enum_deferred *deferred,
                     const char *rows_file);

#endif
