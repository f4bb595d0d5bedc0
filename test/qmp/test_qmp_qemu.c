/* test/qmp/test_qmp_qemu.c - the QMP client against a real QEMU.
 *
 * Each test starts its own headless QEMU (-S, q35, TCG) in a private temp dir
 * and the fixture's teardown kills and reaps it by pid, also when the test
 * failed. Each test ends by closing the connection, closing the loop
 * (uv_loop_close() == 0) and checking that no fd leaked.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#include "test/qmp/qemu_peer.h"
#include "test/qmp/qmp_testutil.h"

struct fix {
    struct qemu_peer q;
    struct tloop l;
    struct tconn t;
    bool loop_live;
};

static int teardown(void **state)
{
    struct fix *f = *state;
    if (!f)
        return 0;
    if (f->loop_live) {
        if (f->t.c && !f->t.done)
            tconn_close(&f->t, &f->l);
        tloop_fini(&f->l);
    }
    qemu_peer_stop(&f->q);
    free(f);
    return 0;
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f || qemu_peer_start(&f->q, NULL) < 0) {
        free(f);
        return -1;
    }
    tloop_init(&f->l);
    f->loop_live = true;
    *state = f;
    if (tconn_open(&f->t, &f->l, f->q.sock, 20000) < 0 ||
        !tloop_run_until(&f->l, &f->t.ready, TEST_HANG_MS)) {
        fprintf(stderr, "QEMU did not become ready: %s\n", f->t.done_msg);
        /* cmocka skips teardown when setup fails: clean up here. */
        teardown(state);
        *state = NULL;
        return -1;
    }
    return 0;
}

/* Close, drain, check the loop is empty and nothing leaked. */
static void finish(struct fix *f)
{
    assert_true(tconn_close(&f->t, &f->l));
    assert_int_equal(f->t.done_rc, 0);
    f->loop_live = false;
    assert_int_equal(tloop_fini(&f->l), 0);
    assert_int_equal(count_open_fds(), f->l.fds_at_start);
}

static void wait_reply(struct fix *f, struct treply *r)
{
    assert_true(tloop_run_until(&f->l, &r->called, TEST_HANG_MS));
}

/* ---- tests ------------------------------------------------------------------- */

static void test_capabilities_and_status(void **state)
{
    struct fix *f = *state;
    assert_true(qmp_conn_is_ready(f->t.c));
    assert_string_equal(qmp_conn_state(f->t.c), "READY");
    assert_true(strlen(f->t.version) >= 5);   /* e.g. 7.2.22 */
    struct treply r = { .pick = "status" };
    assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, treply_cb, &r), 0);
    assert_false(r.called);   /* never inline */
    wait_reply(f, &r);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.str, "prelaunch");
    finish(f);
}

struct order {
    int n, bad;
    uint64_t last_id;
};

static void order_cb(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct order *o = data;
    if (r->rc != 0 || r->id <= o->last_id)
        o->bad++;
    o->last_id = r->id;
    o->n++;
}

static void test_pipelined_100(void **state)
{
    struct fix *f = *state;
    struct order o = { 0 };
    for (int i = 0; i < 100; i++)
        assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, order_cb, &o), 0);
    struct qmp_stats st;
    qmp_conn_get_stats(f->t.c, &st);
    assert_int_equal(st.pending, 100);
    uint64_t before = st.replies;
    bool all = false;
    for (int i = 0; i < 2000 && !all; i++) {
        uv_run(&f->l.loop, UV_RUN_ONCE);
        all = o.n == 100;
    }
    assert_int_equal(o.n, 100);
    assert_int_equal(o.bad, 0);
    assert_int_equal(o.last_id, 100);   /* ids are the smallest free: 1..100 */
    qmp_conn_get_stats(f->t.c, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.replies - before, 100);
    finish(f);
}

struct evlog {
    char seq[256];
    int all, prefix, once, late;
    long long secs;
    int once_id;
    bool stop_seen;
};

static void ev_named(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    struct evlog *l = data;
    strncat(l->seq, ev->name, sizeof(l->seq) - strlen(l->seq) - 2);
    strcat(l->seq, " ");
    l->secs = ev->seconds;
    if (strcmp(ev->name, "STOP") == 0)
        l->stop_seen = true;
}

static void ev_all(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    ((struct evlog *)data)->all++;
}

static void ev_prefix(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    ((struct evlog *)data)->prefix++;
}

static void ev_late(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    ((struct evlog *)data)->late++;
}

/* Unsubscribes itself and subscribes another, which starts with the next event. */
static void ev_once(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    struct evlog *l = data;
    l->once++;
    assert_int_equal(qmp_unsubscribe(c, l->once_id), 0);
    assert_true(qmp_subscribe(c, "*", ev_late, l) > 0);
}

static void test_events_stop_resume(void **state)
{
    struct fix *f = *state;
    struct evlog l = { .seq = "" };
    assert_true(qmp_subscribe(f->t.c, "STOP", ev_named, &l) > 0);
    assert_true(qmp_subscribe(f->t.c, "RESUME", ev_named, &l) > 0);
    assert_true(qmp_subscribe(f->t.c, NULL, ev_all, &l) > 0);
    assert_true(qmp_subscribe(f->t.c, "RES*", ev_prefix, &l) > 0);
    l.once_id = qmp_subscribe(f->t.c, "*", ev_once, &l);
    assert_true(l.once_id > 0);
    struct treply cont = { 0 }, stop = { 0 };
    assert_int_equal(qmp_exec(f->t.c, "cont", NULL, treply_cb, &cont), 0);
    assert_int_equal(qmp_exec(f->t.c, "stop", NULL, treply_cb, &stop), 0);
    assert_true(tloop_run_until(&f->l, &l.stop_seen, TEST_HANG_MS));
    wait_reply(f, &stop);
    assert_int_equal(cont.rc, 0);
    assert_int_equal(stop.rc, 0);
    assert_string_equal(l.seq, "RESUME STOP ");
    assert_int_equal(l.all, 2);
    assert_int_equal(l.prefix, 1);
    assert_int_equal(l.once, 1);
    assert_int_equal(l.late, 1);   /* STOP only: it was born during RESUME */
    assert_true(l.secs > 1000000000);
    assert_int_equal(qmp_unsubscribe(f->t.c, l.once_id), -ENOENT);
    finish(f);
}

static void test_schema_in_full(void **state)
{
    struct fix *f = *state;
    struct treply r = { 0 };
    assert_int_equal(qmp_exec(f->t.c, "query-qmp-schema", NULL, treply_cb, &r), 0);
    wait_reply(f, &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.ret_array_len > 500);
    struct qmp_stats st;
    qmp_conn_get_stats(f->t.c, &st);
    fprintf(stderr, "query-qmp-schema: %zu entries, largest message %zu bytes\n",
            r.ret_array_len, st.max_msg_bytes);
    assert_true(st.max_msg_bytes > 100 * 1024);
    finish(f);
}

static void test_error_replies(void **state)
{
    struct fix *f = *state;
    struct treply r = { 0 }, bad = { 0 }, ok = { 0 };
    assert_int_equal(qmp_exec(f->t.c, "no-such-command", NULL, treply_cb, &r), 0);
    struct qmp_args *a = qmp_args_new();
    qmp_args_int(a, "bogus", 1);
    assert_int_equal(qmp_exec(f->t.c, "query-status", a, treply_cb, &bad), 0);
    assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, treply_cb, &ok), 0);
    wait_reply(f, &ok);
    assert_int_equal(r.rc, -EREMOTEIO);
    assert_string_equal(r.err_class, "CommandNotFound");
    assert_non_null(strstr(r.err_desc, "no-such-command"));
    assert_non_null(strstr(r.msg, "'no-such-command' failed: CommandNotFound"));
    assert_int_equal(bad.rc, -EREMOTEIO);
    assert_string_equal(bad.err_class, "GenericError");
    assert_non_null(strstr(bad.err_desc, "bogus"));
    assert_int_equal(ok.rc, 0);
    finish(f);
}

static void test_hmp_error(void **state)
{
    struct fix *f = *state;
    struct treply r = { 0 }, info = { 0 };
    assert_int_equal(qmp_hmp(f->t.c, "drive_add -n buddy driver=bogus", treply_cb, &r), 0);
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "command-line", "info status");
    struct qmp_exec_opts o = { .flags = QMP_EXEC_HMP_OUTPUT_OK };
    assert_int_equal(qmp_exec_ex(f->t.c, "human-monitor-command", a, &o, treply_cb, &info), 0);
    wait_reply(f, &info);
    assert_int_equal(r.rc, -EREMOTEIO);
    assert_string_equal(r.err_class, "HMPError");
    assert_non_null(strstr(r.err_desc, "node-name"));
    assert_non_null(strstr(r.msg, "human-monitor-command failed: "));
    assert_null(strchr(r.msg, '\r'));   /* the trailing CR LF is trimmed from the reason */
    assert_int_equal(info.rc, 0);
    assert_non_null(strstr(info.ret_json, "VM status"));
    finish(f);
}

static void test_fd_passing(void **state)
{
    struct fix *f = *state;
    char path[200];
    snprintf(path, sizeof(path), "%s/dm-state.bin", f->q.dir);
    /* QEMU opens /dev/fdset/N write-only and only hands out an fd whose
     * access mode matches (an O_RDWR fd gives EACCES). */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);

    struct treply add = { .fdset_id = -1, .fd = -1 };
    assert_int_equal(qmp_add_fd(f->t.c, fd, -1, "lockstep-test", treply_cb, &add), 0);
    wait_reply(f, &add);
    if (add.rc)
        fprintf(stderr, "add-fd: %s\n", add.msg);
    assert_int_equal(add.rc, 0);
    assert_true(add.fdset_id >= 0);
    assert_true(add.fd >= 0);

    char fdset[64];
    snprintf(fdset, sizeof(fdset), "/dev/fdset/%lld", add.fdset_id);
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "filename", fdset);
    qmp_args_bool(a, "live", false);
    struct treply save = { 0 };
    assert_int_equal(qmp_exec(f->t.c, "xen-save-devices-state", a, treply_cb, &save), 0);
    wait_reply(f, &save);
    if (save.rc)
        fprintf(stderr, "xen-save-devices-state: %s\n", save.msg);
    assert_int_equal(save.rc, 0);

    char head[4] = { 0 };
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(rfd >= 0);
    assert_int_equal(pread(rfd, head, 4, 0), 4);
    off_t size = lseek(rfd, 0, SEEK_END);
    close(rfd);
    assert_memory_equal(head, "QEVM", 4);
    fprintf(stderr, "xen-save-devices-state into %s: %lld bytes\n", fdset, (long long)size);
    assert_true(size > 1000);

    a = qmp_args_new();
    qmp_args_int(a, "fdset-id", add.fdset_id);
    struct treply rm = { 0 };
    assert_int_equal(qmp_exec(f->t.c, "remove-fd", a, treply_cb, &rm), 0);

    /* getfd / closefd: the named-fd flavour. */
    struct treply get = { 0 }, cl = { 0 }, cl2 = { 0 };
    assert_int_equal(qmp_getfd(f->t.c, fd, "lsfd", treply_cb, &get), 0);
    a = qmp_args_new();
    qmp_args_str(a, "fdname", "lsfd");
    assert_int_equal(qmp_exec(f->t.c, "closefd", a, treply_cb, &cl), 0);
    a = qmp_args_new();
    qmp_args_str(a, "fdname", "lsfd");
    assert_int_equal(qmp_exec(f->t.c, "closefd", a, treply_cb, &cl2), 0);
    wait_reply(f, &cl2);
    assert_int_equal(rm.rc, 0);
    assert_int_equal(get.rc, 0);
    assert_int_equal(cl.rc, 0);
    assert_int_equal(cl2.rc, -EREMOTEIO);   /* already closed: proves getfd really sent it */
    struct qmp_stats st;
    qmp_conn_get_stats(f->t.c, &st);
    assert_int_equal(st.fds_sent, 2);
    close(fd);
    finish(f);
}

static void test_dead_qemu_fails_pending(void **state)
{
    struct fix *f = *state;
    struct treply r[10];
    memset(r, 0, sizeof(r));
    kill(f->q.pid, SIGSTOP);   /* commands stay unanswered */
    for (int i = 0; i < 10; i++)
        assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, treply_cb, &r[i]), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&f->l.loop, UV_RUN_NOWAIT);
    kill(f->q.pid, SIGKILL);
    qemu_peer_wait(&f->q);
    assert_true(tloop_run_until(&f->l, &f->t.done, TEST_HANG_MS));
    for (int i = 0; i < 10; i++) {
        if (r[i].rc != -ECONNRESET)
            fprintf(stderr, "command %d: %s\n", i, r[i].msg);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].rc, -ECONNRESET);
        assert_non_null(strstr(r[i].msg, "got no reply: QEMU "));
    }
    assert_int_equal(f->t.done_rc, -ECONNRESET);
    assert_non_null(strstr(f->t.done_msg, "10 commands were awaiting replies"));
    f->loop_live = false;
    assert_int_equal(tloop_fini(&f->l), 0);
    assert_int_equal(count_open_fds(), f->l.fds_at_start);
}

struct reenter {
    struct treply r;
    int exec_rc;
};

static void reenter_cb(struct qmp_conn *c, const struct qmp_reply *rep, void *data)
{
    struct reenter *x = data;
    treply_cb(c, rep, &x->r);
    x->exec_rc = qmp_exec(c, "query-status", NULL, treply_cb, &x->r);
}

static void test_close_cancels_pending(void **state)
{
    struct fix *f = *state;
    kill(f->q.pid, SIGSTOP);
    struct reenter x = { 0 };
    struct treply r[4];
    memset(r, 0, sizeof(r));
    assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, reenter_cb, &x), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, treply_cb, &r[i]), 0);
    qmp_conn_close(f->t.c);
    qmp_conn_close(f->t.c);   /* idempotent */
    assert_false(x.r.called);
    assert_true(tloop_run_until(&f->l, &f->t.done, TEST_HANG_MS));
    assert_int_equal(f->t.done_rc, 0);
    assert_int_equal(x.r.calls, 1);
    assert_int_equal(x.r.rc, -ECANCELED);
    assert_int_equal(x.exec_rc, -ESHUTDOWN);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].rc, -ECANCELED);
    }
    kill(f->q.pid, SIGCONT);
    f->loop_live = false;
    assert_int_equal(tloop_fini(&f->l), 0);
    assert_int_equal(count_open_fds(), f->l.fds_at_start);
}

static void test_timeout_then_late_reply(void **state)
{
    struct fix *f = *state;
    kill(f->q.pid, SIGSTOP);
    struct treply slow = { 0 }, next = { 0 };
    struct qmp_exec_opts o = { .timeout_ms = 100 };
    assert_int_equal(qmp_exec_ex(f->t.c, "query-status", NULL, &o, treply_cb, &slow), 0);
    wait_reply(f, &slow);
    assert_int_equal(slow.rc, -ETIMEDOUT);
    assert_non_null(strstr(slow.msg, "within 100 ms"));
    kill(f->q.pid, SIGCONT);
    assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, treply_cb, &next), 0);
    wait_reply(f, &next);
    assert_int_equal(next.rc, 0);
    assert_int_equal(slow.calls, 1);
    /* The timed-out id stayed reserved until its late reply was dropped. */
    assert_int_equal(slow.id, 1);
    assert_int_equal(next.id, 2);
    struct qmp_stats st;
    qmp_conn_get_stats(f->t.c, &st);
    assert_int_equal(st.late_replies, 1);
    struct treply again = { 0 };
    assert_int_equal(qmp_exec(f->t.c, "query-status", NULL, treply_cb, &again), 0);
    wait_reply(f, &again);
    assert_int_equal(again.rc, 0);
    assert_int_equal(again.id, 1);
    finish(f);
}

/* TCP: the first monitor on 127.0.0.1:port, a unix one to know it is up. */
static void test_tcp(void **state)
{
    (void)state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
    int port = ntohs(sin.sin_port);
    close(s);

    struct fix f = { 0 };
    struct qemu_peer_opts qo = { .two_monitors = true, .tcp_port = port };
    assert_int_equal(qemu_peer_start(&f.q, &qo), 0);
    tloop_init(&f.l);
    struct tconn u;
    assert_int_equal(tconn_open(&u, &f.l, f.q.sock2, 20000), 0);
    bool up = tloop_run_until(&f.l, &u.ready, TEST_HANG_MS);
    if (up)
        tconn_close(&u, &f.l);

    struct qmp_conn_opts o = { .setup_timeout_ms = 5000 };
    memset(&f.t, 0, sizeof(f.t));
    o.done = NULL;
    struct tconn *t = &f.t;
    int rc = qmp_conn_open_tcp(&f.l.sched, "127.0.0.1", port, &o, &t->c);
    struct treply r = { .pick = "status" };
    int exec_rc = rc == 0 ? qmp_exec(t->c, "query-status", NULL, treply_cb, &r) : rc;
    struct ls_errbuf eb = { 0 };
    struct qmp_exec_opts xo = { .send_fd = true, .fd = 0, .err = &eb };
    int fd_rc = rc == 0 ? qmp_exec_ex(t->c, "getfd", NULL, &xo, treply_cb, &r) : rc;
    bool got = rc == 0 && tloop_run_until(&f.l, &r.called, TEST_HANG_MS);
    if (rc == 0)
        qmp_conn_close(t->c);
    for (int i = 0; i < 100; i++)
        uv_run(&f.l.loop, UV_RUN_NOWAIT);
    int close_rc = tloop_fini(&f.l);
    qemu_peer_stop(&f.q);

    assert_true(up);
    assert_int_equal(rc, 0);
    assert_int_equal(exec_rc, 0);
    assert_int_equal(fd_rc, -EOPNOTSUPP);
    assert_non_null(strstr(eb.msg, "is TCP"));
    assert_true(got);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.str, "prelaunch");
    assert_int_equal(r.calls, 1);
    assert_int_equal(close_rc, 0);
    assert_int_equal(count_open_fds(), f.l.fds_at_start);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capabilities_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_100, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_stop_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_in_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hmp_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_passing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_qemu_fails_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_then_late_reply, setup, teardown),
        cmocka_unit_test(test_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
