/* test/states/test_roles_trace.c - the main paths of save and restore, as traces.
 *
 * QP/C style: each test runs one role on the fakes and asserts the exact
 * sequence of dispatches (machine:STATE.EVENT/action>NEXT, with (rc) after an
 * action that failed, which keeps its state; "*" is an FSM_ANY row) and
 * the backend calls it made, so a change in order or in a row shows here
 * first.
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

/* The opening every save takes: its tasks start, the memory task runs. */
#define SAVE_TASKS_RUNNING \
    "save:IDLE.START/save_query_domain>AWAIT_DOMAIN_INFO " \
    "save:AWAIT_DOMAIN_INFO.DOMAIN_INFO/save_start_tasks>STREAMING " \
    "stream_tx:IDLE.START/stx_write_head>WRITING_HEAD " \
    "stream_tx:WRITING_HEAD.WRITTEN/stx_hand_off>AWAIT_MEMORY " \
    "memtask:AWAIT_HANDOFF.HANDOFF/memtask_start_thread>RUNNING "

/* From the guest suspended to a save that succeeded. */
#define SAVE_SUSPENDED_TO_DONE \
    "save:SUSPENDING.GUEST_SUSPENDED/save_answer_suspended>STREAMING_SUSPENDED " \
    "memtask:RUNNING.FINISHED/memtask_take_result>DONE " \
    "stream_tx:AWAIT_MEMORY.MEMORY_DONE/stx_write_tail>WRITING_TAIL " \
    "stream_tx:WRITING_TAIL.WRITTEN/fsm_nop>DONE " \
    "save:STREAMING_SUSPENDED.TASKS_DONE/save_finish_domain>FINISHING " \
    "save:FINISHING.FINISHED/save_dm_cont_kept>CONTINUING_KEPT_DM " \
    "save:CONTINUING_KEPT_DM.DM_CONTINUED/fsm_nop>DONE"

/* An HVM save with a QEMU, up to its stop: connected, negotiated, queried. */
#define SAVE_QEMU_STOPPING \
    "save:IDLE.START/save_query_domain>AWAIT_DOMAIN_INFO " \
    "save:AWAIT_DOMAIN_INFO.DOMAIN_INFO/save_start_tasks>STREAMING " \
    "stream_tx:IDLE.START/stx_write_head>WRITING_HEAD " \
    "stream_tx:WRITING_HEAD.WRITTEN/stx_hand_off>AWAIT_MEMORY " \
    "memtask:AWAIT_HANDOFF.HANDOFF/memtask_start_thread>RUNNING " \
    "save:STREAMING.CB_SWITCH_LOGDIRTY/save_answer_logdirty>STREAMING " \
    "save:STREAMING.CB_SUSPEND/save_suspend_guest>SUSPENDING " \
    "save:SUSPENDING.GUEST_SUSPENDED_QEMU/save_dm_save>SAVING_DEVICE_MODEL " \
    "devmodel:IDLE.SAVE/dm_query_status>QUERYING " \
    "qmp_conn:IDLE.START/qmp_conn_begin>CONNECTING " \
    "qmp_conn:CONNECTING.CONNECTED/qmp_conn_start_reading>AWAIT_GREETING " \
    "qmp_conn:AWAIT_GREETING.GREETING/qmp_conn_negotiate>NEGOTIATING " \
    "qmp_conn:NEGOTIATING.NEGOTIATED/qmp_conn_go_ready>READY " \
    "devmodel:QUERYING.STATUS/dm_stop>STOPPING "

/* From the memory task's end to the device model's start. */
#define RESTORE_MEMORY_IN \
    "restore:STREAMING.CB_STATIC_DATA_DONE/rst_answer_static_data>STREAMING " \
    "restore:STREAMING.CB_RESTORE_RESULTS/rst_store_results>STREAMING " \
    "memtask:RUNNING.FINISHED/memtask_take_result>DONE " \
    "stream_rx:AWAIT_MEMORY.MEMORY_DONE/srx_read_tail>READING_TAIL " \
    "stream_rx:READING_TAIL.END/fsm_nop>DONE " \
    "restore:STREAMING.TASKS_DONE/rst_start_dm>STARTING_DM "

/* The opening every restore takes: headers read, domain made, memory task runs. */
#define RESTORE_TASKS_RUNNING \
    "restore:IDLE.START/rst_start_tasks>READING_HEADERS " \
    "stream_rx:IDLE.START/srx_read_headers>READING_HEADERS " \
    "stream_rx:READING_HEADERS.HEADERS_READ/srx_report_config>AWAIT_DOMAIN " \
    "restore:READING_HEADERS.CONFIG_READ/rst_create_domain>CREATING_DOMAIN " \
    "restore:CREATING_DOMAIN.DOMAIN_CREATED/rst_start_standby>STARTING_STANDBY " \
    "restore:STARTING_STANDBY.DM_STANDBY_STARTED/rst_release_reader>STREAMING " \
    "stream_rx:AWAIT_DOMAIN.DOMAIN_READY/srx_read_records>READING_RECORDS " \
    "stream_rx:READING_RECORDS.LIBXC_CONTEXT/srx_hand_off>AWAIT_MEMORY " \
    "memtask:AWAIT_HANDOFF.HANDOFF/memtask_start_thread>RUNNING "

static struct enum_trace t;

static void run(const struct enum_scenario *sc, unsigned point, enum fb_answer answer)
{
    enum_trace_run(sc, point, answer, &t);
    if (getenv("TRACE_PRINT"))   /* to write a new expectation */
        printf("TRACE %s\nPOINTS %s\n", t.trace, t.points);
    if (t.problem[0])
        fail_msg("%s: %s (rc %d: %s)", sc->name, t.problem, t.rc, t.msg);
}

static void test_save_pv_happy(void **state)
{
    (void)state;
    run(&enum_save_pv, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_string_equal(t.trace,
                        SAVE_TASKS_RUNNING
                        "save:STREAMING.CB_SUSPEND/save_suspend_guest>SUSPENDING "
                        SAVE_SUSPENDED_TO_DONE);
    assert_string_equal(t.points, "domain_info get_config_json save_memory suspend digest save_memory.last_pass destroy");
}

static void test_save_suspend_fails(void **state)
{
    (void)state;
    run(&enum_save_pv, 4, FB_FAIL);   /* domain_info, get_config_json, save_memory, suspend */
    assert_int_equal(t.rc, -5);
    assert_string_equal(t.trace,
                        SAVE_TASKS_RUNNING
                        "save:STREAMING.CB_SUSPEND/save_suspend_guest>SUSPENDING "
                        "save:SUSPENDING.FAIL/save_cancel_tasks>AWAIT_TASKS_THEN_RESUME "
                        "stream_tx:*.CANCEL/fsm_nop>FAILED "
                        "memtask:*.CANCEL/fsm_nop>FAILED "
                        "save:AWAIT_TASKS_THEN_RESUME.TASKS_FAILED/save_resume_guest>RESUMING "
                        "save:RESUMING.GUEST_RESUMED/save_dm_cont>CONTINUING_DM "
                        "save:CONTINUING_DM.DM_CONTINUED/fsm_nop>FAILED");
    assert_string_equal(t.points, "domain_info get_config_json save_memory suspend resume");
}

static void test_save_live_keep_happy(void **state)
{
    (void)state;
    run(&enum_save_pv_live_keep, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_string_equal(t.trace,
                        SAVE_TASKS_RUNNING
                        "save:STREAMING.CB_PRECOPY_POLICY/save_answer_precopy>STREAMING "
                        "save:STREAMING.CB_PRECOPY_POLICY/save_answer_precopy>STREAMING "
                        "save:STREAMING.CB_PRECOPY_POLICY/save_answer_precopy>STREAMING "
                        "save:STREAMING.CB_PRECOPY_POLICY/save_answer_precopy>STREAMING "
                        "save:STREAMING.CB_SUSPEND/save_suspend_guest>SUSPENDING "
                        SAVE_SUSPENDED_TO_DONE);
}

static void test_restore_happy(void **state)
{
    (void)state;
    run(&enum_restore_libxl, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_string_equal(t.trace,
                        RESTORE_TASKS_RUNNING
                        RESTORE_MEMORY_IN
                        "restore:STARTING_DM.DM_STARTED/rst_check_dm>CHECKING_DM "
                        "restore:CHECKING_DM.DM_LOADED/rst_cont_dm>CONTINUING_DM "
                        "restore:CONTINUING_DM.DM_CONTINUED/rst_finish_domain>FINISHING "
                        "restore:FINISHING.FINISHED/fsm_nop>DONE");
    assert_string_equal(t.points, "create_for_restore domain_info restore_memory restore_memory.pages domain_info digest unpause");
}

static void test_restore_memory_fails(void **state)
{
    (void)state;
    run(&enum_restore_libxl, 3, FB_FAIL);   /* create_for_restore, domain_info (standby?), restore_memory */
    assert_int_equal(t.rc, -5);
    assert_string_equal(t.trace,
                        RESTORE_TASKS_RUNNING
                        "memtask:RUNNING.FINISHED/memtask_take_result(-5)>RUNNING "
                        "memtask:*.FAIL/fsm_nop>FAILED "
                        "stream_rx:*.CANCEL/fsm_nop>FAILED "
                        "restore:STREAMING.TASKS_FAILED/rst_destroy_domain>DESTROYING "
                        "restore:DESTROYING.DOMAIN_DESTROYED/fsm_nop>FAILED");
    assert_string_equal(t.points, "create_for_restore domain_info restore_memory destroy");
}

static void test_restore_qemu_happy(void **state)
{
    (void)state;
    run(&enum_restore_hvm_qemu, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_string_equal(t.trace,
                        RESTORE_TASKS_RUNNING
                        RESTORE_MEMORY_IN
                        "restore:STARTING_DM.DM_STARTED/rst_check_dm>CHECKING_DM "
                        "devmodel:IDLE.CHECK/dm_query_status>CHECKING_INCOMING "
                        "qmp_conn:IDLE.START/qmp_conn_begin>CONNECTING "
                        "qmp_conn:CONNECTING.CONNECTED/qmp_conn_start_reading>AWAIT_GREETING "
                        "qmp_conn:AWAIT_GREETING.GREETING/qmp_conn_negotiate>NEGOTIATING "
                        "qmp_conn:NEGOTIATING.NEGOTIATED/qmp_conn_go_ready>READY "
                        "devmodel:CHECKING_INCOMING.STATUS/dm_check_incoming>CHECKING_INCOMING "
                        "devmodel:CHECKING_INCOMING.STATUS/dm_check_incoming>CHECKING_INCOMING "
                        "devmodel:CHECKING_INCOMING.LOADED/fsm_nop>DONE "
                        "qmp_conn:READY.CLOSE/qmp_conn_shutdown>CLOSING "
                        "qmp_conn:CLOSING.HANDLES_CLOSED/fsm_nop>CLOSED "
                        "restore:CHECKING_DM.DM_LOADED/rst_cont_dm>CONTINUING_DM "
                        "devmodel:IDLE.CONT/dm_cont>CONTINUING "
                        "qmp_conn:IDLE.START/qmp_conn_begin>CONNECTING "
                        "qmp_conn:CONNECTING.CONNECTED/qmp_conn_start_reading>AWAIT_GREETING "
                        "qmp_conn:AWAIT_GREETING.GREETING/qmp_conn_negotiate>NEGOTIATING "
                        "qmp_conn:NEGOTIATING.NEGOTIATED/qmp_conn_go_ready>READY "
                        "devmodel:CONTINUING.CONTINUED/fsm_nop>DONE "
                        "qmp_conn:READY.CLOSE/qmp_conn_shutdown>CLOSING "
                        "qmp_conn:CLOSING.HANDLES_CLOSED/fsm_nop>CLOSED "
                        "restore:CONTINUING_DM.DM_CONTINUED/rst_finish_domain>FINISHING "
                        "restore:FINISHING.FINISHED/fsm_nop>DONE");
    assert_string_equal(t.points, "create_for_restore domain_info restore_memory restore_memory.pages domain_info dm_start_incoming dm_info qmp.greeting qmp.qmp_capabilities qmp.query-status qmp.query-status qmp.greeting qmp.qmp_capabilities qmp.cont digest unpause");
}

static void test_save_qemu_hangs_on_stop(void **state)
{
    (void)state;
    run(&enum_save_hvm_qemu, 10, FB_NEVER);   /* 10: qmp.stop */
    /* The stop's deadline passes (the clock is virtual), the guest runs
     * again, and the cont finds QEMU still hung: the error says which. */
    assert_int_equal(t.rc, -ETIMEDOUT);
    assert_non_null(strstr(t.msg, "stop failed"));
    assert_string_equal(t.trace,
                        SAVE_QEMU_STOPPING
                        "devmodel:STOPPING.QMP_ERROR/dm_qmp_error(-110)>STOPPING "
                        "devmodel:*.FAIL/fsm_nop>FAILED "
                        "qmp_conn:READY.CLOSE/qmp_conn_shutdown>CLOSING "
                        "qmp_conn:CLOSING.HANDLES_CLOSED/fsm_nop>CLOSED "
                        "save:SAVING_DEVICE_MODEL.DM_FAILED/save_cancel_tasks>AWAIT_TASKS_THEN_RESUME "
                        "stream_tx:*.CANCEL/fsm_nop>FAILED "
                        "memtask:*.CANCEL/fsm_nop>FAILED "
                        "save:AWAIT_TASKS_THEN_RESUME.TASKS_FAILED/save_resume_guest>RESUMING "
                        "save:RESUMING.GUEST_RESUMED/save_dm_cont>CONTINUING_DM "
                        "devmodel:IDLE.CONT/dm_cont>CONTINUING "
                        "qmp_conn:IDLE.START/qmp_conn_begin>CONNECTING "
                        "qmp_conn:CONNECTING.CONNECTED/qmp_conn_start_reading>AWAIT_GREETING "
                        "qmp_conn:AWAIT_GREETING.TIMEOUT/qmp_conn_time_out>FAILED "
                        "devmodel:CONTINUING.QMP_ERROR/dm_qmp_error(-110)>CONTINUING "
                        "devmodel:*.FAIL/fsm_nop>FAILED "
                        "save:CONTINUING_DM.DM_CONT_FAILED/save_dm_cont_failed>FAILED");
    assert_string_equal(t.points, "domain_info dm_info get_config_json save_memory suspend digest qmp.greeting qmp.qmp_capabilities qmp.query-status qmp.stop resume");
}

static void test_save_qemu_dies_mid_reply(void **state)
{
    (void)state;
    run(&enum_save_hvm_qemu, 12, FB_CLOSE);   /* 12: qmp.xen-save-devices-state */
    /* QEMU dies half-way through its reply: the save says so, the guest
     * runs again (the cont finds no QEMU). */
    assert_int_equal(t.rc, -ECONNRESET);
    assert_non_null(strstr(t.msg, "died"));
    assert_string_equal(t.trace,
                        SAVE_QEMU_STOPPING
                        "devmodel:STOPPING.STOPPED/dm_add_fd>ADDING_FD "
                        "devmodel:ADDING_FD.FD_ADDED/dm_save_state>SAVING "
                        "qmp_conn:READY.PEER_CLOSED/qmp_conn_peer_gone>FAILED "
                        "devmodel:SAVING.QMP_ERROR/dm_qmp_error(-104)>SAVING "
                        "devmodel:*.FAIL/fsm_nop>FAILED "
                        "save:SAVING_DEVICE_MODEL.DM_FAILED/save_cancel_tasks>AWAIT_TASKS_THEN_RESUME "
                        "stream_tx:*.CANCEL/fsm_nop>FAILED "
                        "memtask:*.CANCEL/fsm_nop>FAILED "
                        "save:AWAIT_TASKS_THEN_RESUME.TASKS_FAILED/save_resume_guest>RESUMING "
                        "save:RESUMING.GUEST_RESUMED/save_dm_cont>CONTINUING_DM "
                        "devmodel:IDLE.CONT/dm_cont>CONTINUING "
                        "qmp_conn:IDLE.START/qmp_conn_begin(-2)>IDLE "
                        "qmp_conn:*.FAIL/qmp_conn_abort>FAILED "
                        "devmodel:CONTINUING.QMP_ERROR/dm_qmp_error(-2)>CONTINUING "
                        "devmodel:*.FAIL/fsm_nop>FAILED "
                        "save:CONTINUING_DM.DM_CONT_FAILED/save_dm_cont_failed>FAILED");
    assert_string_equal(t.points, "domain_info dm_info get_config_json save_memory suspend digest qmp.greeting qmp.qmp_capabilities qmp.query-status qmp.stop qmp.add-fd qmp.xen-save-devices-state resume");
}

static void test_receive_go(void **state)
{
    (void)state;
    run(&enum_rcv_go, 0, FB_OK);
    assert_int_equal(t.rc, 0);
    assert_string_equal(t.trace,
                        "migrate_receive:IDLE.START/rcv_write_banner>WRITING_BANNER "
                        "migrate_receive:WRITING_BANNER.WRITTEN/rcv_start_restore>RESTORING "
                        RESTORE_TASKS_RUNNING
                        RESTORE_MEMORY_IN
                        "restore:STARTING_DM.DM_STARTED/rst_check_dm>CHECKING_DM "
                        "restore:CHECKING_DM.DM_LOADED/rst_cont_dm>CONTINUING_DM "
                        "restore:CONTINUING_DM.DM_CONTINUED/rst_finish_domain>FINISHING "
                        "restore:FINISHING.FINISHED/fsm_nop>DONE "
                        "migrate_receive:RESTORING.RESTORE_DONE/rcv_write_received>WRITING_RECEIVED "
                        "migrate_receive:WRITING_RECEIVED.WRITTEN/rcv_await_go>AWAIT_GO "
                        "migrate_receive:AWAIT_GO.GUEST_STARTED/rcv_write_report>REPORTING "
                        "migrate_receive:REPORTING.WRITTEN/rcv_outcome_runs>DONE");
    assert_string_equal(t.points, "create_for_restore domain_info restore_memory restore_memory.pages domain_info digest unpause");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_pv_happy),
        cmocka_unit_test(test_save_suspend_fails),
        cmocka_unit_test(test_save_live_keep_happy),
        cmocka_unit_test(test_restore_happy),
        cmocka_unit_test(test_restore_memory_fails),
        cmocka_unit_test(test_restore_qemu_happy),
        cmocka_unit_test(test_save_qemu_hangs_on_stop),
        cmocka_unit_test(test_save_qemu_dies_mid_reply),
        cmocka_unit_test(test_receive_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
