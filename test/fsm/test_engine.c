/* test/fsm/test_engine.c - the engine's rules, stepped by hand.
 *
 * Each test drives machines with a manual scheduler (no loop) and asserts the
 * exact trace, so ordering, first-error, join and teardown rules are pinned.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "test/fsm/pair.h"
#include "test/fsm/ping.h"

extern const struct fsm_def ping_fsm_def;
extern const struct fsm_def pair_fsm_def;

/* The trace as "machine:STATE.EVENT>NEXT" tokens, space separated. */
static char trace_buf[4096];

static void capture(const struct fsm_trace_rec *r, void *data)
{
    (void)data;
    if (r->seq == 0)
        return;   /* dropped late posts are not dispatches */
    char one[160];
    snprintf(one, sizeof(one), "%s%s:%s.%s>%s%s", trace_buf[0] ? " " : "", r->instance,
             r->state, r->event, r->next, r->hole ? "!" : r->ignored ? "~" : "");
    strncat(trace_buf, one, sizeof(trace_buf) - strlen(trace_buf) - 1);
}

static struct fsm_sched sched;

static void done_cb(struct fsm *m, int rc)
{
    struct ping_ctx *c = m->owner;
    c->done_calls++;
    c->done_rc = rc;
}

static int setup(void **state)
{
    (void)state;
    fsm_reset_counters();
    fsm_strict = false;
    trace_buf[0] = '\0';
    fsm_sched_init(&sched);
    sched.trace = capture;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_true(fsm_sched_idle(&sched));
    assert_int_equal(sched.nlive, 0);
    fsm_sched_destroy(&sched);
    return 0;
}

static void test_happy_path_trace(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_post(&m, PING_E_WRITTEN, 0, NULL);
    fsm_post(&m, PING_E_PONG, 0, NULL);
    fsm_sched_run(&sched);
    assert_string_equal(trace_buf, "p:IDLE.START>SENDING p:SENDING.WRITTEN>WAITING p:WAITING.PONG>DONE");
    assert_int_equal(c.done_calls, 1);
    assert_int_equal(c.done_rc, 0);
    assert_int_equal(fsm_rc(&m), 0);
}

static void test_post_never_dispatches_inline(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    assert_int_equal(c.sent, 0);
    assert_int_equal(m.state, PING_S_IDLE);
    assert_true(fsm_sched_step(&sched));
    assert_int_equal(c.sent, 1);
    fsm_post(&m, PING_E_CANCEL, 0, NULL);
    fsm_post(&m, PING_E_WRITTEN, 0, NULL);
    fsm_sched_run(&sched);
    assert_int_equal(c.done_calls, 1);
}

static void test_fifo_across_machines(void **state)
{
    struct ping_ctx ca = { 0 }, cb = { 0 };
    struct fsm a, b;
    fsm_init(&a, &ping_fsm_def, &sched, done_cb, &ca, "a");
    fsm_init(&b, &ping_fsm_def, &sched, done_cb, &cb, "b");
    fsm_post(&b, PING_E_START, 0, NULL);
    fsm_post(&a, PING_E_START, 0, NULL);
    fsm_post(&b, PING_E_WRITTEN, 0, NULL);
    fsm_post(&a, PING_E_CANCEL, 0, NULL);
    fsm_post(&b, PING_E_TIMEOUT, 0, NULL);
    fsm_sched_run(&sched);
    assert_string_equal(trace_buf,
        "b:IDLE.START>SENDING a:IDLE.START>SENDING b:SENDING.WRITTEN>WAITING "
        "a:SENDING.CANCEL>ABORTING b:WAITING.TIMEOUT>FAILED");
    /* a waits in ABORTING for its write: not final, no done yet. */
    assert_int_equal(ca.done_calls, 0);
    assert_int_equal(cb.done_calls, 1);
    assert_int_equal(cb.done_rc, -ETIMEDOUT);
    fsm_post(&a, PING_E_WRITTEN, 0, NULL);
    fsm_sched_run(&sched);
    assert_int_equal(ca.done_calls, 1);
    assert_int_equal(ca.done_rc, -ECANCELED);
}

static void test_ignore_is_traced_and_stays(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_post(&m, PING_E_WRITTEN, 0, NULL);
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_sched_run(&sched);
    assert_string_equal(trace_buf,
        "p:IDLE.START>SENDING p:SENDING.WRITTEN>WAITING p:WAITING.START>WAITING~");
    assert_int_equal(c.sent, 1);
    fsm_post(&m, PING_E_PONG, 0, NULL);
    fsm_sched_run(&sched);
}

static void test_invalid_pair_becomes_eproto_fail(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_PONG, 0, NULL);   /* PONG in IDLE: no row */
    fsm_sched_run(&sched);
    assert_string_equal(trace_buf, "p:IDLE.PONG>IDLE! p:IDLE.FAIL>FAILED");
    assert_int_equal(fsm_hole_count(), 1);
    assert_int_equal(c.failures_logged, 1);
    assert_int_equal(c.done_rc, -EPROTO);
    assert_non_null(strstr(fsm_errmsg(&m), "PONG is not expected in state IDLE"));
}

static void test_action_error_first_error_wins(void **state)
{
    struct ping_ctx c = { .send_rc = -EPIPE };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_sched_run(&sched);
    /* The engine stays in IDLE and posts FAIL; FAIL's row leads to FAILED. */
    assert_string_equal(trace_buf, "p:IDLE.START>IDLE p:IDLE.FAIL>FAILED");
    assert_int_equal(c.done_rc, -EPIPE);
    assert_string_equal(fsm_errmsg(&m), "ping: send refused");
    /* A later error does not replace the first. */
    fsm_fail(&m, -EIO, "later");
    assert_int_equal(fsm_rc(&m), -EPIPE);
}

static void test_final_purges_queue_and_drops_late_posts(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_CANCEL, 0, NULL);
    fsm_post(&m, PING_E_START, 0, NULL);   /* queued behind CANCEL: purged */
    fsm_sched_run(&sched);
    assert_string_equal(trace_buf, "p:IDLE.CANCEL>FAILED");
    assert_int_equal(c.sent, 0);
    fsm_post(&m, PING_E_START, 0, NULL);   /* after done: dropped */
    assert_true(fsm_sched_idle(&sched));
    assert_int_equal(c.done_calls, 1);
}

static int undo_record(struct fsm *m, void *obj)
{
    struct ping_ctx *c = m->owner;
    strncat(c->order, obj, sizeof(c->order) - strlen(c->order) - 1);
    return 0;
}

static int undo_async(struct fsm *m, void *obj)
{
    undo_record(m, obj);
    return FSM_UNDO_PENDING;
}

static void test_cleanup_lifo_then_done_once_later(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    assert_int_equal(fsm_defer(&m, undo_record, "a", "a"), 0);
    assert_int_equal(fsm_defer(&m, undo_async, "b", "b"), 0);
    assert_int_equal(fsm_defer(&m, undo_record, "c", "c"), 0);
    assert_int_equal(fsm_defer(&m, undo_record, "x", "x"), 0);
    assert_true(fsm_undo_forget(&m, "x"));
    fsm_post(&m, PING_E_CANCEL, 0, NULL);
    assert_true(fsm_sched_step(&sched));   /* enters FAILED: runs c, then b goes async */
    assert_string_equal(c.order, "cb");
    assert_int_equal(c.done_calls, 0);
    fsm_sched_run(&sched);
    assert_int_equal(c.done_calls, 0);     /* b still pending: a must wait */
    assert_string_equal(c.order, "cb");
    fsm_undo_complete(&m);
    fsm_sched_run(&sched);
    assert_string_equal(c.order, "cba");
    assert_int_equal(c.done_calls, 1);
}

static void test_done_not_called_inside_final_dispatch(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_CANCEL, 0, NULL);
    assert_true(fsm_sched_step(&sched));
    assert_true(fsm_is_final(&m));
    assert_int_equal(c.done_calls, 0);
    assert_true(fsm_sched_step(&sched));
    assert_int_equal(c.done_calls, 1);
    assert_false(fsm_sched_step(&sched));
}

static void pair_done(struct fsm *m, int rc)
{
    (void)m;
    (void)rc;
}

static void test_join_first_error_cancels_siblings_one_event(void **state)
{
    struct ping_ctx c0 = { 0 }, c1 = { 0 };
    struct fsm k0, k1, parent;
    struct pair_ctx pc = { .children = { &k0, &k1 } };
    fsm_init(&k0, &ping_fsm_def, &sched, done_cb, &c0, "k0");
    fsm_init(&k1, &ping_fsm_def, &sched, done_cb, &c1, "k1");
    fsm_init(&parent, &pair_fsm_def, &sched, pair_done, &pc, "par");
    fsm_post(&parent, PAIR_E_START, 0, NULL);
    fsm_post(&k0, PING_E_START, 0, NULL);
    fsm_post(&k1, PING_E_START, 0, NULL);
    fsm_sched_run(&sched);
    /* k1 is waiting for its write; k0 times out and fails. */
    fsm_post(&k0, PING_E_WRITTEN, 0, NULL);
    fsm_post(&k0, PING_E_TIMEOUT, 0, NULL);
    fsm_sched_run(&sched);
    /* k1 was cancelled but is ABORTING until its write ends: no join event yet. */
    assert_int_equal(k1.state, PING_S_ABORTING);
    assert_int_equal(pc.events, 0);
    assert_false(fsm_is_final(&parent));
    fsm_post(&k1, PING_E_WRITTEN, 0, NULL);
    fsm_sched_run(&sched);
    assert_int_equal(pc.events, 1);
    assert_int_equal(pc.last_event, PAIR_E_CHILDREN_FAILED);
    assert_int_equal(parent.state, PAIR_S_FAILED);
    /* The parent carries the first child's error. */
    assert_int_equal(fsm_rc(&parent), -ETIMEDOUT);
    assert_int_equal(c1.done_rc, -ECANCELED);
}

static void test_join_all_ok(void **state)
{
    struct ping_ctx c0 = { 0 }, c1 = { 0 };
    struct fsm k0, k1, parent;
    struct pair_ctx pc = { .children = { &k0, &k1 } };
    fsm_init(&k0, &ping_fsm_def, &sched, done_cb, &c0, "k0");
    fsm_init(&k1, &ping_fsm_def, &sched, done_cb, &c1, "k1");
    fsm_init(&parent, &pair_fsm_def, &sched, pair_done, &pc, "par");
    fsm_post(&parent, PAIR_E_START, 0, NULL);
    for (int i = 0; i < 2; i++) {
        struct fsm *k = i ? &k1 : &k0;
        fsm_post(k, PING_E_START, 0, NULL);
        fsm_post(k, PING_E_WRITTEN, 0, NULL);
        fsm_post(k, PING_E_PONG, 0, NULL);
    }
    fsm_sched_run(&sched);
    assert_int_equal(pc.events, 1);
    assert_int_equal(pc.last_event, PAIR_E_CHILDREN_OK);
    assert_int_equal(parent.state, PAIR_S_DONE);
}

/* The parent's action on the join's report fails; it cancels the (finished)
 * join to await it, and must get the report again rather than wait forever. */
static void test_join_report_again_after_failed_action(void **state)
{
    struct ping_ctx c0 = { 0 }, c1 = { 0 };
    struct fsm k0, k1, parent;
    struct pair_ctx pc = { .children = { &k0, &k1 } };
    fsm_fault_arm(8, -EIO);   /* par START, 2 x (START WRITTEN PONG), then the report */
    fsm_init(&k0, &ping_fsm_def, &sched, done_cb, &c0, "k0");
    fsm_init(&k1, &ping_fsm_def, &sched, done_cb, &c1, "k1");
    fsm_init(&parent, &pair_fsm_def, &sched, pair_done, &pc, "par");
    fsm_post(&parent, PAIR_E_START, 0, NULL);
    for (int i = 0; i < 2; i++) {
        struct fsm *k = i ? &k1 : &k0;
        fsm_post(k, PING_E_START, 0, NULL);
        fsm_post(k, PING_E_WRITTEN, 0, NULL);
        fsm_post(k, PING_E_PONG, 0, NULL);
    }
    fsm_sched_run(&sched);
    assert_true(fsm_fault_fired());
    assert_non_null(strstr(trace_buf, "par:JOINING.CHILDREN_OK>JOINING par:JOINING.FAIL>AWAIT_JOIN "
                                      "par:AWAIT_JOIN.CHILDREN_FAILED>FAILED"));
    assert_int_equal(pc.events, 1);
    assert_int_equal(parent.state, PAIR_S_FAILED);
    assert_int_equal(fsm_rc(&parent), -EIO);
}

static void test_join_children_done_before_arm(void **state)
{
    struct ping_ctx c0 = { 0 };
    struct fsm k0, parent;
    struct pair_ctx pc = { 0 };
    fsm_init(&k0, &ping_fsm_def, &sched, done_cb, &c0, "k0");
    fsm_init(&parent, &pair_fsm_def, &sched, pair_done, &pc, "par");
    struct fsm_join j;
    fsm_join_begin(&j, &parent, PAIR_E_CHILDREN_OK, PAIR_E_CHILDREN_FAILED);
    fsm_join_add(&j, &k0);
    fsm_post(&k0, PING_E_CANCEL, 0, NULL);
    fsm_sched_run(&sched);
    /* The sentinel holds the report until arm. */
    assert_true(fsm_sched_idle(&sched));
    parent.state = PAIR_S_JOINING;   /* as if START had run */
    fsm_join_arm(&j);
    fsm_sched_run(&sched);
    assert_int_equal(pc.events, 1);
    assert_int_equal(pc.last_event, PAIR_E_CHILDREN_FAILED);
    assert_int_equal(fsm_rc(&parent), -ECANCELED);
}

static void test_fault_injection_fires_at_seq(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_fault_arm(2, -EIO);
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_post(&m, PING_E_WRITTEN, 0, NULL);
    fsm_sched_run(&sched);
    assert_true(fsm_fault_fired());
    assert_int_equal(c.armed, 0);           /* the action did not run */
    assert_int_equal(c.done_rc, -EIO);
    assert_non_null(strstr(fsm_errmsg(&m), "injected fault at dispatch 2"));
}

static void test_fault_on_teardown_row_still_finishes(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_fault_arm(1, -EIO);
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_CANCEL, 0, NULL);
    fsm_sched_run(&sched);
    assert_true(fsm_fault_fired());
    assert_int_equal(m.state, PING_S_FAILED);
    assert_int_equal(c.done_calls, 1);
}

/* A cancel armed at a dispatch lets its action run, then cancels: the
 * machine takes its CANCEL row from the state it reached. */
static void test_injected_cancel_follows_the_dispatch(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_fault_arm(1, FSM_FAULT_CANCEL);
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_sched_run(&sched);
    assert_true(fsm_fault_fired());
    assert_string_equal(trace_buf, "p:IDLE.START>SENDING p:SENDING.CANCEL>ABORTING");
    fsm_post(&m, PING_E_WRITTEN, 0, NULL);
    fsm_sched_run(&sched);
    assert_int_equal(m.state, PING_S_FAILED);
    assert_int_equal(c.done_rc, -ECANCELED);
    assert_non_null(strstr(fsm_errmsg(&m), "cancelled in state SENDING"));
}

/* Two faults: the second lands on the failure path the first opened. */
static void test_two_faults_second_on_failure_path(void **state)
{
    struct ping_ctx c = { 0 };
    struct fsm m;
    fsm_fault_arm(2, -EIO);
    fsm_fault_add(3, -ENOSPC);
    fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
    fsm_post(&m, PING_E_START, 0, NULL);
    fsm_post(&m, PING_E_WRITTEN, 0, NULL);
    fsm_sched_run(&sched);
    /* 2: WRITTEN faulted, stays SENDING; 3: its FAIL faulted, still taken. */
    assert_string_equal(trace_buf,
                        "p:IDLE.START>SENDING p:SENDING.WRITTEN>SENDING p:SENDING.FAIL>FAILED");
    assert_int_equal(c.done_calls, 1);
    assert_int_equal(c.done_rc, -EIO);   /* the first error is kept */
}

/* An injected cancel on a child reaches the top of its join tree, as an
 * owner's cancel (SIGINT) would. */
static void test_injected_cancel_reaches_the_join_root(void **state)
{
    struct ping_ctx c0 = { 0 }, c1 = { 0 };
    struct fsm k0, k1, parent;
    struct pair_ctx pc = { .children = { &k0, &k1 } };
    fsm_fault_arm(2, FSM_FAULT_CANCEL);   /* par START, then k0 START */
    fsm_init(&k0, &ping_fsm_def, &sched, done_cb, &c0, "k0");
    fsm_init(&k1, &ping_fsm_def, &sched, done_cb, &c1, "k1");
    fsm_init(&parent, &pair_fsm_def, &sched, pair_done, &pc, "par");
    fsm_post(&parent, PAIR_E_START, 0, NULL);
    fsm_post(&k0, PING_E_START, 0, NULL);
    fsm_sched_run(&sched);
    assert_true(fsm_fault_fired());
    assert_string_equal(trace_buf, "par:IDLE.START>JOINING k0:IDLE.START>SENDING "
                                   "par:JOINING.CANCEL>FAILED");
    assert_int_equal(k0.state, PING_S_SENDING);   /* the child itself ran on */
    assert_int_equal(fsm_rc(&parent), -ECANCELED);
    assert_non_null(strstr(fsm_errmsg(&parent), "cancelled in state JOINING"));
    fsm_post(&k0, PING_E_CANCEL, 0, NULL);
    fsm_post(&k1, PING_E_CANCEL, 0, NULL);
    fsm_post(&k0, PING_E_WRITTEN, 0, NULL);
    fsm_sched_run(&sched);
    assert_true(fsm_is_done(&k0) && fsm_is_done(&k1));
}

/* In a state that is already tearing down (FAIL ignored), a failing action
 * still takes its row: the join's report must not be lost to it. */
static void test_failed_action_while_tearing_down_takes_its_row(void **state)
{
    struct ping_ctx c0 = { 0 }, c1 = { 0 };
    struct fsm k0, k1, parent;
    struct pair_ctx pc = { .children = { &k0, &k1 } };
    fsm_fault_arm(5, -EIO);   /* par START, par FAIL, k0 CANCEL, k1 CANCEL, the report */
    fsm_init(&k0, &ping_fsm_def, &sched, done_cb, &c0, "k0");
    fsm_init(&k1, &ping_fsm_def, &sched, done_cb, &c1, "k1");
    fsm_init(&parent, &pair_fsm_def, &sched, pair_done, &pc, "par");
    fsm_post(&parent, PAIR_E_START, 0, NULL);
    fsm_post(&parent, PAIR_E_FAIL, -ENOSPC, NULL);
    fsm_sched_run(&sched);
    assert_true(fsm_fault_fired());
    assert_string_equal(trace_buf, "par:IDLE.START>JOINING par:JOINING.FAIL>AWAIT_JOIN "
                                   "k0:IDLE.CANCEL>FAILED k1:IDLE.CANCEL>FAILED "
                                   "par:AWAIT_JOIN.CHILDREN_FAILED>FAILED");
    assert_true(fsm_is_done(&parent));
    assert_int_equal(fsm_rc(&parent), -ENOSPC);   /* the first error is kept */
}

/* An event id the machine's table does not define (one of another machine)
 * stops the process at the post, naming machine and id, before it is queued. */
static void test_post_of_an_undefined_event_aborts(void **state)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        struct ping_ctx c = { 0 };
        struct fsm m;
        fsm_init(&m, &ping_fsm_def, &sched, done_cb, &c, "p");
        fsm_post(&m, PING_E__COUNT + 3, 0, NULL);
        _exit(0);   /* not reached */
    }
    close(pipefd[1]);
    char out[512] = "";
    ssize_t n = read(pipefd[0], out, sizeof(out) - 1);
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_true(n > 0);
    assert_non_null(strstr(out, "event id 9 posted to machine ping, whose table has events 0..5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_happy_path_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_never_dispatches_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_across_machines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_is_traced_and_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_pair_becomes_eproto_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_error_first_error_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_purges_queue_and_drops_late_posts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_lifo_then_done_once_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_not_called_inside_final_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_first_error_cancels_siblings_one_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_all_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_children_done_before_arm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_report_again_after_failed_action, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_injection_fires_at_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_on_teardown_row_still_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_cancel_follows_the_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_faults_second_on_failure_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_cancel_reaches_the_join_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_action_while_tearing_down_takes_its_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_of_an_undefined_event_aborts, setup, teardown),
    };
    return cmocka_run_group_tests_name("fsm engine", tests, NULL, NULL);
}
