/* test/states/test_colo_trace.c - a COLO and a Remus pair's main paths, as traces.
 *
 * The scenarios of roles_colo.c run once: clean (two checkpoints, the
 * second on demand or at the interval, then an orderly stop), and with the
 * primary's host dying after the first checkpoint (the secondary fences it
 * and takes over, or keeps its copy paused when fencing fails). Each test
 * asserts the outcome of both roles, the backend calls in order, and the
 * rows of the protocol's spine in order (the two roles interleave, so the
 * whole trace is asserted only through these).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "test/states/roles.h"

static struct enum_trace t;

static void run(const struct enum_scenario *sc, unsigned point, enum fb_answer answer)
{
    enum_trace_run(sc, point, answer, &t);
    if (getenv("TRACE"))
        printf("trace: %s\npoints: %s\nrc %d: %s\nrc2 %d: %s\nproblem: %s\n", t.trace, t.points,
               t.rc, t.msg, t.rc2, t.msg2, t.problem);
    assert_string_equal(t.problem, "");
}

/* Each of want's space-separated tokens appears in the trace, in order. */
static void assert_in_order(const char *want)
{
    const char *at = t.trace;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", want);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        const char *found = strstr(at, tok);
        if (!found)
            fail_msg("trace lacks %s after: ...%.200s", tok, at > t.trace ? at - 1 : at);
        at = found + strlen(tok);
    }
}

/* Checkpoint 1 (the migration), checkpoint 2 on demand, then the primary
 * stops in order: the secondary destroys its copy, the primary's guest runs. */
static void test_colo_pv_two_checkpoints_then_stop(void **state)
{
    run(&enum_colo_pv, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.rc2, 0);
    assert_string_equal(t.points,
        "domain_info get_config_json set_guard create_for_restore save_memory "
        "save_memory.round save_memory.round save_memory.round set_guard suspend "
        "save_memory.checkpoint restore_memory restore_memory.apply resume domain_info unpause "
        "set_guard suspend set_guard suspend save_memory.checkpoint restore_memory.apply resume "
        "domain_info resume set_guard destroy domain_info set_guard");
    assert_in_order(
        "colo_secondary:IDLE.START/colo_s_write_banner>WRITING_BANNER "
        "colo_primary:AWAIT_BANNER.BANNER/colo_p_start_tasks>MIGRATING "
        "colo_primary:MIGRATING.CB_SUSPEND/colo_p_suspend>SUSPENDING_ALONE "
        "colo_primary:SENDING.CB_CHECKPOINT/colo_p_write_checkpoint>WRITING_CHECKPOINT "
        "colo_secondary:RECEIVING_FIRST.CB_CHECKPOINT/colo_s_read_checkpoint>READING_FIRST_CHECKPOINT "
        "colo_secondary:APPLYING_FIRST.CB_RESTORE_RESULTS/colo_s_report>REPORTING "
        "colo_secondary:APPLIED.CB_POSTCOPY/colo_s_disk_checkpoint>DISK_CHECKPOINTING "
        "colo_secondary:DISK_CHECKPOINTING.DISK_DONE/colo_s_write_ready>WRITING_READY "
        "colo_primary:AWAIT_SVM_READY.SVM_READY/colo_p_proxy_checkpoint>PROXY_RELEASING "
        "colo_primary:DISK_CHECKPOINTING.DISK_DONE/colo_p_disk_resume>RESUMING "
        "colo_secondary:STARTING_GUEST.GUEST_STARTED/colo_s_write_resumed>WRITING_RESUMED "
        "colo_primary:AWAIT_SVM_RESUMED.SVM_RESUMED/colo_p_checkpoint_done>PROTECTED "
        "colo_primary:WAITING.TRIGGERED/colo_p_write_new>WRITING_NEW "
        "colo_secondary:AWAIT_NEW.NEW/colo_s_answer_wait>AWAIT_SUSPEND "
        "colo_secondary:SUSPENDING.GUEST_SUSPENDED/colo_s_disk_query>DISK_QUERYING "
        "colo_secondary:DISK_QUERYING.DISK_DONE/colo_s_disk_queried>PROXY_MARKING "
        "colo_primary:AWAIT_SVM_SUSPENDED.SVM_SUSPENDED/colo_p_disk_query>DISK_QUERYING "
        "colo_primary:DISK_QUERYING.DISK_DONE/colo_p_answer_suspend>SENDING "
        "colo_secondary:RECEIVING.CB_CHECKPOINT/colo_s_read_checkpoint>READING_CHECKPOINT "
        "colo_secondary:APPLYING.CB_RESTORE_RESULTS/colo_s_report>REPORTING "
        "colo_primary:AWAIT_SVM_RESUMED.SVM_RESUMED/colo_p_checkpoint_done>PROTECTED "
        "colo_primary:PROTECTED.CANCEL/colo_p_request_stop>PROTECTED "
        "colo_primary:WAITING.STOP_REQUESTED/colo_p_write_stop>WRITING_STOP "
        "colo_secondary:AWAIT_NEW.STOP_ANNOUNCED/colo_s_end_replication>AWAIT_TASKS_STOPPED "
        "colo_secondary:DESTROYING_STOPPED.DOMAIN_DESTROYED/colo_s_outcome_stopped>STOPPED "
        "colo_primary:DISK_TEARING_DOWN_STOPPED.DISK_DONE/colo_p_outcome_stopped>STOPPED");
}

/* Remus: the secondary only stores checkpoints (never started, no back
 * words but the banner); the stop's END is applied like a checkpoint. */
static void test_remus_hvm(void **state)
{
    run(&enum_remus_hvm, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.rc2, 0);
    assert_null(strstr(t.points, "unpause"));
    assert_in_order(
        "colo_primary:MIGRATING.CB_SWITCH_LOGDIRTY/colo_p_answer_logdirty>MIGRATING "
        "colo_primary:SENDING.CB_POSTCOPY/colo_p_resume>REMUS_RESUMING "
        "colo_primary:REMUS_RESUMED.CB_CHECKPOINT/colo_p_write_checkpoint>REMUS_WRITING "
        "colo_primary:REMUS_WAITING.INTERVAL/colo_p_answer_checkpoint>REMUS_RUNNING "
        "colo_secondary:APPLIED.CB_CHECKPOINT/colo_s_read_checkpoint>READING_CHECKPOINT "
        "colo_primary:REMUS_WAITING.STOP_REQUESTED/colo_p_write_stop>WRITING_STOP "
        "colo_secondary:APPLIED.CB_RESTORE_RESULTS/colo_s_end_remus>AWAIT_TASKS_STOPPED "
        "colo_secondary:DESTROYING_STOPPED.DOMAIN_DESTROYED/colo_s_outcome_stopped>STOPPED");
}

/* The primary's host dies after checkpoint 1: the secondary sees the
 * stream end, pauses its copy, fences the primary and takes over. */
static void test_host_dies(void **state)
{
    run(&enum_colo_host_dies, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_in_order(
        "colo_secondary:AWAIT_NEW.TASKS_FAILED/colo_s_pause>PAUSING "
        "colo_secondary:PAUSING.PAUSED/colo_s_fence>FENCING "
        "colo_secondary:FENCING.FENCED/colo_s_proxy_failover>PROXY_FAILING_OVER "
        "colo_secondary:DISK_FAILING_OVER.DISK_DONE/colo_s_take_over>TAKING_OVER "
        "colo_secondary:TAKING_OVER.TOOK_OVER/colo_s_outcome_active>ACTIVE");
    assert_non_null(strstr(t.points, "pause domain_info unpause set_guard"));
}

/* The same loss with a fencing command that fails: the copy stays paused,
 * its guard released, and the error says why, with the command's words. */
static void test_fence_refused(void **state)
{
    run(&enum_colo_fence_refused, 0, FB_OK);
    assert_int_equal(t.rc, -EHOSTDOWN);
    assert_non_null(strstr(t.msg, "exited with status 3: the power switch does not answer"));
    assert_non_null(strstr(t.msg, "stays paused at checkpoint 1"));
    assert_in_order(
        "colo_secondary:FENCING.FENCE_REFUSED/colo_s_keep_paused>KEEPING_PAUSED "
        "colo_secondary:KEEPING_PAUSED.KEPT/colo_s_outcome_fence_failed>FENCE_FAILED");
}

/* Remus with a network: the primary's buffer is cut and released at each
 * checkpoint before the world sees a frame. The guest sends none, and an
 * empty buffer's release once passed memmove a NULL pointer (UBSan). */
static void test_remus_net(void **state)
{
    run(&enum_remus_net, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.rc2, 0);
    assert_in_order(
        "colo_proxy:IDLE.START_REMUS/px_r_start>R_STARTING "
        "colo_proxy:R_RUNNING.CUT/px_pause>R_PAUSING_CUT "
        "colo_proxy:R_RUNNING.RELEASE/px_pause>R_PAUSING_RELEASE "
        "colo_primary:PROXY_RELEASING_REMUS.PROXY_DONE/colo_p_remus_sent>REMUS_WAITING");
    assert_non_null(strstr(t.points, "net_attach"));
}

/* COLO with a disk: the secondary sets its replica up before SVM_READY,
 * the primary its NBD client before its guest runs on, later checkpoints
 * query and checkpoint the disks, and the orderly stop tears both down. */
static void test_colo_disks(void **state)
{
    run(&enum_colo_disks, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.rc2, 0);
    assert_in_order(
        "colo_secondary:APPLIED.CB_POSTCOPY/colo_s_disk_checkpoint>DISK_CHECKPOINTING "
        "colo_disk:IDLE.SETUP_SECONDARY "
        "colo_secondary:DISK_CHECKPOINTING.DISK_DONE/colo_s_write_ready>WRITING_READY "
        "colo_disk:IDLE.SETUP_PRIMARY "
        "colo_primary:DISK_CHECKPOINTING.DISK_DONE/colo_p_disk_resume>RESUMING "
        "colo_primary:AWAIT_SVM_SUSPENDED.SVM_SUSPENDED/colo_p_disk_query>DISK_QUERYING "
        "colo_disk:IDLE.QUERY");
    const char *const later[] = {
        "colo_disk:IDLE.CHECKPOINT", "colo_disk:IDLE.TEARDOWN_SECONDARY",
        "colo_primary:SETTLING_STOPPED.SETTLED/colo_p_disk_teardown>DISK_TEARING_DOWN_STOPPED",
    };
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++)
        if (!strstr(t.trace, later[i]))
            fail_msg("trace lacks %s", later[i]);
    assert_non_null(strstr(t.points, "disk_attach"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_colo_pv_two_checkpoints_then_stop),
        cmocka_unit_test(test_remus_hvm),
        cmocka_unit_test(test_host_dies),
        cmocka_unit_test(test_fence_refused),
        cmocka_unit_test(test_remus_net),
        cmocka_unit_test(test_colo_disks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
