/* test/qmp/test_qmp_hostile.c - the QMP client against scripted bad peers.
 *
 * Each peer is a unix listening socket served from a thread (fake_peer in
 * qmp_testutil.c). Every scenario must end with a clear error, and then the
 * same loop must run a good session (good_roundtrip), close with
 * uv_loop_close() == 0, and leak no fd (ASan checks memory).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include <cmocka.h>

#include "test/qmp/qmp_testutil.h"

#define MiB (1024u * 1024u)

struct scen {
    struct tloop l;
    struct fake_peer p;
    struct tconn t;
};

static void scen_start(struct scen *s, fake_script_fn *script, unsigned setup_ms)
{
    tloop_init(&s->l);
    assert_int_equal(fake_peer_start(&s->p, script, NULL), 0);
    assert_int_equal(tconn_open(&s->t, &s->l, s->p.path, setup_ms), 0);
}

static void scen_ready(struct scen *s)
{
    assert_true(tloop_run_until(&s->l, &s->t.ready, TEST_HANG_MS));
}

/* The failure is over: the peer thread ends, a good session runs on the same
 * loop, and the loop closes empty. */
static void scen_end(struct scen *s)
{
    assert_true(tconn_close(&s->t, &s->l));
    fake_peer_stop(&s->p);
    assert_true(good_roundtrip(&s->l));
    assert_int_equal(tloop_fini(&s->l), 0);
    assert_int_equal(count_open_fds(), s->l.fds_at_start);
}

static void expect_done(struct scen *s, int rc, const char *needle)
{
    assert_true(tloop_run_until(&s->l, &s->t.done, TEST_HANG_MS));
    if (s->t.done_rc != rc || !strstr(s->t.done_msg, needle))
        fprintf(stderr, "done rc %d: %s\n", s->t.done_rc, s->t.done_msg);
    assert_int_equal(s->t.done_rc, rc);
    assert_non_null(strstr(s->t.done_msg, needle));
}

static void exec_status(struct scen *s, struct treply *r)
{
    assert_int_equal(qmp_exec(s->t.c, "query-status", NULL, treply_cb, r), 0);
}

static void send_reply(struct fake_peer *p, int fd, long long id, const char *ret)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"return\": %s, \"id\": %lld}\r\n", ret, id);
    fp_send(p, fd, buf);
}

/* ---- garbage ----------------------------------------------------------------- */

static void script_garbage(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0 || fp_read_cmd(p, fd) < 0)
        return;
    fp_send(p, fd, "{\"return\": {}, \"id\": 1} \x01\x02 garbage }{ ]\r\n");
    fp_drain(p, fd);
}

static void test_garbage(void **state)
{
    struct scen s;
    struct treply r = { 0 }, r2 = { 0 };
    scen_start(&s, script_garbage, 5000);
    scen_ready(&s);
    exec_status(&s, &r);
    exec_status(&s, &r2);
    expect_done(&s, -EPROTO, "invalid JSON near stream byte");
    assert_int_equal(r.rc, 0);   /* the reply before the garbage was good */
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.rc, -EPROTO);
    assert_non_null(strstr(r2.msg, "got no reply: QMP peer unix:"));
    scen_end(&s);
}

/* ---- a peer writing one byte at a time, and several messages per write ----------- */

static void script_bytewise(struct fake_peer *p, int fd)
{
    fp_send_bytewise(p, fd, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 3, \"minor\": 2, "
                            "\"major\": 1}}, \"capabilities\": []}}\r\n", 30);
    long long id = fp_read_cmd(p, fd);
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"return\": {}, \"id\": %lld}\r\n", id);
    fp_send_bytewise(p, fd, buf, 30);
    id = fp_read_cmd(p, fd);
    snprintf(buf, sizeof(buf),
             "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n"
             "{\"return\": {\"status\": \"running\", \"n\": [1, 2.5, -3e2, true, null]}, "
             "\"id\": %lld}\r\n", id);
    fp_send_bytewise(p, fd, buf, 30);
    /* Two replies in one write, in the reverse order: matched by id. */
    long long a = fp_read_cmd(p, fd), b = fp_read_cmd(p, fd);
    snprintf(buf, sizeof(buf), "{\"return\": \"second\", \"id\": %lld}"
                               "{\"return\": \"first\", \"id\": %lld}\n", b, a);
    fp_send(p, fd, buf);
    fp_drain(p, fd);
}

static void ev_count(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    if (ev->seconds == 1 && ev->microseconds == 2 && !ev->data)
        (*(int *)data)++;
}

static void test_split_into_single_bytes(void **state)
{
    struct scen s;
    struct treply r = { .pick = "status" }, a = { 0 }, b = { 0 };
    int stops = 0;
    scen_start(&s, script_bytewise, 5000);
    exec_status(&s, &r);   /* queued before negotiation */
    assert_true(qmp_subscribe(s.t.c, "STOP", ev_count, &stops) > 0);
    scen_ready(&s);
    assert_string_equal(s.t.version, "1.2.3");
    assert_true(tloop_run_until(&s.l, &r.called, TEST_HANG_MS));
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.str, "running");
    assert_string_equal(r.ret_json, "{\"status\":\"running\",\"n\":[1,2.5,-3e2,true,null]}");
    assert_int_equal(stops, 1);
    assert_int_equal(qmp_exec(s.t.c, "one", NULL, treply_cb, &a), 0);
    assert_int_equal(qmp_exec(s.t.c, "two", NULL, treply_cb, &b), 0);
    assert_true(tloop_run_until(&s.l, &b.called, TEST_HANG_MS));
    assert_string_equal(a.ret_json, "\"first\"");
    assert_string_equal(b.ret_json, "\"second\"");
    struct qmp_stats st;
    qmp_conn_get_stats(s.t.c, &st);
    assert_int_equal(st.msgs_in, 6);
    assert_true(tconn_close(&s.t, &s.l));
    assert_int_equal(s.t.done_rc, 0);
    scen_end(&s);
}

/* ---- cut off ------------------------------------------------------------------------ */

static void script_cut_greeting(struct fake_peer *p, int fd)
{
    fp_send(p, fd, "{\"QMP\": {\"version\": {\"qemu\": ");
}

static void test_unterminated_greeting_then_close(void **state)
{
    struct scen s;
    struct treply r = { 0 };
    scen_start(&s, script_cut_greeting, 5000);
    exec_status(&s, &r);
    expect_done(&s, -ECONNRESET, "in the middle of a message (29 bytes of it received)");
    assert_int_equal(r.rc, -ECONNRESET);
    scen_end(&s);
}

static void script_cut_reply(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0 || fp_read_cmd(p, fd) < 0)
        return;
    fp_send(p, fd, "{\"return\": {\"status\": \"runn");
}

static void test_close_mid_reply(void **state)
{
    struct scen s;
    struct treply r = { 0 };
    scen_start(&s, script_cut_reply, 5000);
    scen_ready(&s);
    exec_status(&s, &r);
    expect_done(&s, -ECONNRESET, "closed the QMP socket unix:");
    assert_non_null(strstr(s.t.done_msg, "in the middle of a message"));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, -ECONNRESET);
    assert_non_null(strstr(r.msg, "'query-status' (id 1) got no reply"));
    scen_end(&s);
}

/* ---- a 64 MiB line -------------------------------------------------------------------- */

static void script_huge(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0 || fp_read_cmd(p, fd) < 0)
        return;
    fp_send(p, fd, "{\"return\": \"");
    static char chunk[MiB];
    memset(chunk, 'a', sizeof(chunk));
    for (unsigned i = 0; i < 64; i++)
        if (fp_send_bytes(p, fd, chunk, sizeof(chunk)) < 0)
            return;   /* the client hung up: that is the point */
    fp_send(p, fd, "\", \"id\": 1}\r\n");
}

struct huge_seen {
    struct treply r;
    struct qmp_stats st;
};

static void huge_cb(struct qmp_conn *c, const struct qmp_reply *rep, void *data)
{
    struct huge_seen *h = data;
    qmp_conn_get_stats(c, &h->st);
    treply_cb(c, rep, &h->r);
}

static void test_64mib_line_fails_without_buffering(void **state)
{
    struct scen s;
    struct huge_seen h = { 0 };
    scen_start(&s, script_huge, 5000);
    scen_ready(&s);
    assert_int_equal(qmp_exec(s.t.c, "query-status", NULL, huge_cb, &h), 0);
    expect_done(&s, -EMSGSIZE, "exceeds 16777216 bytes");
    assert_int_equal(h.r.rc, -EMSGSIZE);
    /* It stopped reading within one 64 KiB read of the cap. */
    assert_true(h.st.bytes_in > 16 * MiB);
    assert_true(h.st.bytes_in <= 16 * MiB + 64 * 1024 + 200);
    fake_peer_stop(&s.p);
    fprintf(stderr, "64 MiB line: client read %llu bytes, peer got %s after %zu bytes\n",
            (unsigned long long)h.st.bytes_in, strerror(s.p.send_errno), s.p.bytes_sent);
    assert_true(s.p.send_errno == EPIPE || s.p.send_errno == ECONNRESET);
    assert_true(s.p.bytes_sent < 32 * MiB);
    assert_true(good_roundtrip(&s.l));
    assert_int_equal(tloop_fini(&s.l), 0);
    assert_int_equal(count_open_fds(), s.l.fds_at_start);
}

/* ---- silence --------------------------------------------------------------------------- */

static void script_silent(struct fake_peer *p, int fd)
{
    fp_drain(p, fd);
}

static void test_no_greeting_times_out(void **state)
{
    struct scen s;
    struct treply r = { 0 };
    scen_start(&s, script_silent, 200);
    exec_status(&s, &r);
    expect_done(&s, -ETIMEDOUT, "no QMP greeting from unix:");
    assert_non_null(strstr(s.t.done_msg, "within 200 ms"));
    assert_int_equal(r.rc, -ETIMEDOUT);
    assert_non_null(strstr(r.msg, "got no reply: no QMP greeting"));
    scen_end(&s);
}

static void script_mute(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0)
        return;
    fp_drain(p, fd);
}

static void test_unanswered_command_times_out(void **state)
{
    struct scen s;
    struct treply r = { 0 }, r2 = { 0 };
    scen_start(&s, script_mute, 5000);
    scen_ready(&s);
    struct qmp_exec_opts o = { .timeout_ms = 150 };
    assert_int_equal(qmp_exec_ex(s.t.c, "query-status", NULL, &o, treply_cb, &r), 0);
    o.timeout_ms = 50;
    assert_int_equal(qmp_exec_ex(s.t.c, "stop", NULL, &o, treply_cb, &r2), 0);
    assert_true(tloop_run_until(&s.l, &r.called, TEST_HANG_MS));
    assert_true(r2.called);   /* the shorter deadline fired first */
    assert_int_equal(r.rc, -ETIMEDOUT);
    assert_non_null(strstr(r.msg, "no reply to QMP command 'query-status' (id 1)"));
    assert_non_null(strstr(r.msg, "within 150 ms"));
    assert_int_equal(r2.rc, -ETIMEDOUT);
    assert_true(qmp_conn_is_ready(s.t.c));   /* a slow command is not a dead peer */
    assert_true(tconn_close(&s.t, &s.l));
    assert_int_equal(s.t.done_rc, 0);
    scen_end(&s);
}

/* A parent machine cancels the connection: FAILED with its reason, pending
 * commands fail with it. */
static void test_cancel_through_the_machine(void **state)
{
    struct scen s;
    struct treply r = { 0 };
    scen_start(&s, script_mute, 5000);
    scen_ready(&s);
    exec_status(&s, &r);
    fsm_cancel(qmp_conn_fsm(s.t.c), -EINTR);
    expect_done(&s, -EINTR, "cancelled");
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.rc, -EINTR);
    scen_end(&s);
}

/* ---- protocol violations ------------------------------------------------------------------ */

static void script_unknown_id(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0 || fp_read_cmd(p, fd) < 0)
        return;
    send_reply(p, fd, 999, "{}");
    fp_drain(p, fd);
}

static void test_reply_with_unknown_id(void **state)
{
    struct scen s;
    struct treply r = { 0 };
    scen_start(&s, script_unknown_id, 5000);
    scen_ready(&s);
    exec_status(&s, &r);
    expect_done(&s, -EPROTO, "has id 999, which is not awaiting a reply");
    assert_int_equal(r.rc, -EPROTO);
    scen_end(&s);
}

static void script_no_id(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0 || fp_read_cmd(p, fd) < 0)
        return;
    fp_send(p, fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n");
    fp_drain(p, fd);
}

static void test_reply_without_id(void **state)
{
    struct scen s;
    struct treply r = { 0 };
    scen_start(&s, script_no_id, 5000);
    scen_ready(&s);
    exec_status(&s, &r);
    expect_done(&s, -EPROTO, "carries no id this client could have sent; its error: JSON parse");
    scen_end(&s);
}

static void script_deep(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0 || fp_read_cmd(p, fd) < 0)
        return;
    char buf[200];
    memset(buf, '[', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    fp_send(p, fd, "{\"return\": ");
    fp_send(p, fd, buf);
    fp_drain(p, fd);
}

static void test_deep_nesting(void **state)
{
    struct scen s;
    struct treply r = { 0 };
    scen_start(&s, script_deep, 5000);
    scen_ready(&s);
    exec_status(&s, &r);
    expect_done(&s, -EMSGSIZE, "nested deeper than 64 levels");
    scen_end(&s);
}

static void script_not_greeting(struct fake_peer *p, int fd)
{
    fp_send(p, fd, "{\"return\": {}}\r\n");
    fp_drain(p, fd);
}

static void test_first_message_not_a_greeting(void **state)
{
    struct scen s;
    scen_start(&s, script_not_greeting, 5000);
    expect_done(&s, -EPROTO, "did not start with a greeting");
    scen_end(&s);
}

static void script_top_level_array(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0)
        return;
    fp_send(p, fd, "[1, 2]\r\n");
    fp_drain(p, fd);
}

static void test_message_not_an_object(void **state)
{
    struct scen s;
    scen_start(&s, script_top_level_array, 5000);
    expect_done(&s, -EPROTO, "must be a JSON object");
    scen_end(&s);
}

static void script_caps_refused(struct fake_peer *p, int fd)
{
    fp_send(p, fd, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
    long long id = fp_read_cmd(p, fd);
    char buf[200];
    snprintf(buf, sizeof(buf),
             "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": %lld}\n", id);
    fp_send(p, fd, buf);
    fp_drain(p, fd);
}

static void test_capabilities_refused(void **state)
{
    struct scen s;
    scen_start(&s, script_caps_refused, 5000);
    expect_done(&s, -EREMOTEIO, "capabilities negotiation with unix:");
    assert_non_null(strstr(s.t.done_msg, "GenericError: nope"));
    scen_end(&s);
}

/* ---- connecting -------------------------------------------------------------------------- */

static void test_connect_errors(void **state)
{
    struct tloop l;
    tloop_init(&l);
    struct tconn t;
    struct qmp_conn_opts o = { .setup_timeout_ms = 5000 };
    assert_int_equal(tconn_open_opts(&t, &l, "/nonexistent/lockstep/qmp.sock", &o), 0);
    assert_true(tloop_run_until(&l, &t.done, TEST_HANG_MS));
    assert_int_equal(t.done_rc, -ENOENT);
    assert_non_null(strstr(t.done_msg, "connect to QMP socket unix:/nonexistent/lockstep/qmp.sock"));

    struct qmp_conn_opts o2 = { .setup_timeout_ms = 100, .retry_connect = true };
    assert_int_equal(tconn_open_opts(&t, &l, "/nonexistent/lockstep/qmp.sock", &o2), 0);
    assert_true(tloop_run_until(&l, &t.done, TEST_HANG_MS));
    assert_int_equal(t.done_rc, -ETIMEDOUT);
    assert_non_null(strstr(t.done_msg, "within 100 ms (last error: No such file or directory)"));

    char longpath[200];
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    struct qmp_conn *c = (void *)1;
    assert_int_equal(qmp_conn_open_unix(&l.sched, longpath, &o, &c), -ENAMETOOLONG);
    assert_null(c);
    assert_int_equal(qmp_conn_open_tcp(&l.sched, "127.0.0.1", 0, &o, &c), -EINVAL);

    /* TCP to a port nobody listens on. */
    struct qmp_conn_opts o3 = { .setup_timeout_ms = 5000 };
    memset(&t, 0, sizeof(t));
    o3.done = NULL;
    assert_int_equal(qmp_conn_open_tcp(&l.sched, "127.0.0.1", 1, &o3, &c), 0);
    struct treply r = { 0 };
    assert_int_equal(qmp_exec(c, "query-status", NULL, treply_cb, &r), 0);
    assert_true(tloop_run_until(&l, &r.called, TEST_HANG_MS));
    assert_int_equal(r.rc, -ECONNREFUSED);
    assert_non_null(strstr(r.msg, "connect to QMP tcp:127.0.0.1:1: Connection refused"));

    assert_true(good_roundtrip(&l));
    assert_int_equal(tloop_fini(&l), 0);
    assert_int_equal(count_open_fds(), l.fds_at_start);
}

/* ---- JSON escaping ------------------------------------------------------------------------- */

/* Answer with the command's own arguments, re-generated by yajl. */
static void script_echo(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0)
        return;
    long long id;
    while ((id = fp_read_cmd(p, fd)) >= 0) {
        char err[128];
        yajl_val v = yajl_tree_parse(p->last_cmd, err, sizeof(err));
        const char *path[] = { "arguments", NULL };
        yajl_val args = yajl_tree_get(v, path, yajl_t_object);
        char json[8192];
        val_to_json(args, json, sizeof(json));
        yajl_tree_free(v);
        char *reply = malloc(strlen(json) + 64);
        sprintf(reply, "{\"return\": %s, \"id\": %lld}\r\n", json[0] ? json : "null", id);
        fp_send(p, fd, reply);
        free(reply);
        /* Keep the raw bytes for the test (the thread is joined before it reads). */
        memcpy(p->rbuf + sizeof(p->rbuf) / 2, p->last_cmd, strlen(p->last_cmd) + 1);
    }
}

static const char weird[] = "quote\" backslash\\ slash/ ctl\x01\x02\x1f nl\n cr\r tab\t del\x7f "
                            "utf8 \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 end";

static void echo_cb(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct treply *t = data;
    treply_cb(c, r, t);
    const char *p1[] = { "s", NULL }, *p2[] = { "nested", "list", NULL };
    yajl_val s = yajl_tree_get(r->ret, p1, yajl_t_string);
    yajl_val l = yajl_tree_get(r->ret, p2, yajl_t_array);
    snprintf(t->str, sizeof(t->str), "%s", s ? s->u.string : "(missing)");
    t->ret_array_len = l ? l->u.array.len : 0;
}

static void test_json_escaping_round_trip(void **state)
{
    struct scen s;
    scen_start(&s, script_echo, 5000);
    scen_ready(&s);
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "s", weird);
    struct qmp_args *n = qmp_args_obj(a, "nested");
    qmp_args_int(n, "min", LLONG_MIN);
    qmp_args_int(n, "max", LLONG_MAX);
    struct qmp_args *l = qmp_args_array(n, "list");
    qmp_args_bool(l, NULL, true);
    qmp_args_null(l, NULL);
    qmp_args_double(l, NULL, 0.5);
    qmp_args_str(qmp_args_obj(l, NULL), "k\"ey", "v");
    assert_int_equal(qmp_args_error(a), 0);
    struct treply r = { 0 };
    assert_int_equal(qmp_exec(s.t.c, "echo", a, echo_cb, &r), 0);
    assert_true(tloop_run_until(&s.l, &r.called, TEST_HANG_MS));
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.str, weird);   /* both directions: our generator, our parser */
    assert_int_equal(r.ret_array_len, 4);
    assert_non_null(strstr(r.ret_json, "\"min\":-9223372036854775808"));
    assert_non_null(strstr(r.ret_json, "\"max\":9223372036854775807"));
    assert_true(tconn_close(&s.t, &s.l));
    fake_peer_stop(&s.p);

    /* What went on the wire: valid JSON, no raw control byte, escapes. */
    const char *raw = s.p.rbuf + sizeof(s.p.rbuf) / 2;
    for (const unsigned char *q = (const unsigned char *)raw; *q; q++)
        assert_true(*q >= 0x20);
    assert_non_null(strstr(raw, "quote\\\" backslash\\\\ slash/ ctl\\u0001\\u0002\\u001F "
                                "nl\\n cr\\r tab\\t"));
    assert_non_null(strstr(raw, "\"k\\\"ey\":\"v\""));
    assert_non_null(strstr(raw, "\xf0\x9f\x98\x80"));   /* UTF-8 goes through as is */
    char err[128];
    yajl_val v = yajl_tree_parse(raw, err, sizeof(err));
    assert_non_null(v);
    const char *path[] = { "arguments", "s", NULL };
    yajl_val sv = yajl_tree_get(v, path, yajl_t_string);
    assert_non_null(sv);
    assert_string_equal(sv->u.string, weird);
    const char *ex[] = { "execute", NULL };
    assert_string_equal(yajl_tree_get(v, ex, yajl_t_string)->u.string, "echo");
    yajl_tree_free(v);

    assert_true(good_roundtrip(&s.l));
    assert_int_equal(tloop_fini(&s.l), 0);
    assert_int_equal(count_open_fds(), s.l.fds_at_start);
}

static void never_cb(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    (void)r;
    (*(int *)data)++;
}

static void test_bad_arguments_fail_synchronously(void **state)
{
    struct scen s;
    scen_start(&s, fp_script_good, 5000);
    scen_ready(&s);
    int calls = 0;
    struct ls_errbuf eb = { 0 };
    struct qmp_exec_opts o = { .err = &eb };

    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "filename", "bad \xc3\x28 utf8");
    assert_int_equal(qmp_exec_ex(s.t.c, "x", a, &o, never_cb, &calls), -EILSEQ);
    assert_non_null(strstr(eb.msg, "argument 'filename' is not valid UTF-8"));

    ls_err_clear(&eb);
    a = qmp_args_new();
    qmp_args_str(qmp_args_array(a, "list"), "key-in-array", "v");
    assert_int_equal(qmp_args_error(a), -EINVAL);
    assert_int_equal(qmp_exec_ex(s.t.c, "x", a, &o, never_cb, &calls), -EINVAL);

    ls_err_clear(&eb);
    a = qmp_args_new();
    qmp_args_double(a, "d", 0.0 / 0.0);
    assert_int_equal(qmp_exec_ex(s.t.c, "x", a, &o, never_cb, &calls), -EINVAL);
    assert_non_null(strstr(eb.msg, "'d' is not a finite number"));

    a = qmp_args_new();
    qmp_args_str(a, "null-value", NULL);
    assert_int_equal(qmp_exec(s.t.c, "x", a, never_cb, &calls), -EINVAL);
    assert_int_equal(qmp_exec(s.t.c, NULL, NULL, never_cb, &calls), -EINVAL);
    assert_int_equal(qmp_exec(s.t.c, "bad \xff name", NULL, never_cb, &calls), -EILSEQ);

    /* The exact text yajl_gen makes, and the builder's output order. */
    a = qmp_args_new();
    qmp_args_str(a, "a", "x\"y\\z\x01");
    struct qmp_args *l = qmp_args_array(a, "n");
    qmp_args_int(l, NULL, 1);
    qmp_args_bool(l, NULL, false);
    qmp_args_null(l, NULL);
    qmp_args_obj(a, "empty");
    char *json;
    size_t len;
    assert_int_equal(qmp_args_to_json(a, &json, &len, NULL), 0);
    assert_string_equal(json, "{\"a\":\"x\\\"y\\\\z\\u0001\",\"n\":[1,false,null],\"empty\":{}}");
    assert_int_equal(len, strlen(json));
    free(json);
    qmp_args_free(a);

    for (int i = 0; i < 10; i++)
        uv_run(&s.l.loop, UV_RUN_NOWAIT);
    assert_int_equal(calls, 0);   /* a refused call never calls back */
    struct treply r = { 0 };
    exec_status(&s, &r);
    assert_true(tloop_run_until(&s.l, &r.called, TEST_HANG_MS));
    assert_int_equal(r.rc, 0);
    assert_true(tconn_close(&s.t, &s.l));
    assert_int_equal(s.t.done_rc, 0);
    scen_end(&s);
}

/* ---- a fault at every dispatch -------------------------------------------------- */

struct fault_outcome {
    int cmd_calls, done_calls, done_rc;
    bool ignored[64];           /* by dispatch seq: an IGNORE row (a fault cannot fire) */
    /* by dispatch seq: a fault there need not be the error reported: an
     * fsm_nop row (the fault is skipped) or a FAIL or CANCEL row (the error
     * that started the teardown came first) */
    bool moot[64];
};

static void record_trace(const struct fsm_trace_rec *rec, void *data)
{
    struct fault_outcome *o = data;
    if (rec->seq == 0 || rec->seq >= 64)
        return;
    if (rec->ignored)
        o->ignored[rec->seq] = true;
    if (strcmp(rec->action, "fsm_nop") == 0 || strcmp(rec->event, "FAIL") == 0 ||
        strcmp(rec->event, "CANCEL") == 0)
        o->moot[rec->seq] = true;
}

/* Connect to the peer, one command, close; everything bounded. */
static void fault_scenario(struct fault_outcome *o, fake_script_fn *script)
{
    struct tloop l;
    struct fake_peer p;
    struct tconn t;
    struct treply r = { 0 };
    tloop_init(&l);
    l.sched.sched.trace = record_trace;
    l.sched.sched.trace_data = o;
    assert_int_equal(fake_peer_start(&p, script, NULL), 0);
    assert_int_equal(tconn_open(&t, &l, p.path, 2000), 0);
    assert_int_equal(qmp_exec(t.c, "query-status", NULL, treply_cb, &r), 0);
    tloop_run_until(&l, &r.called, TEST_HANG_MS);
    if (script == script_garbage)
        tloop_run_until(&l, &t.done, TEST_HANG_MS);   /* let the peer's garbage fail it */
    if (!t.done)
        qmp_conn_close(t.c);
    assert_true(tloop_run_until(&l, &t.done, TEST_HANG_MS));
    for (int i = 0; i < 20; i++)
        uv_run(&l.loop, UV_RUN_NOWAIT);   /* a second done would show here */
    fake_peer_stop(&p);
    o->cmd_calls = r.calls;
    o->done_calls = t.done_calls;
    o->done_rc = t.done_rc;
    assert_int_equal(tloop_fini(&l), 0);
    assert_int_equal(count_open_fds(), l.fds_at_start);
}

/* Every dispatch of the scenario faulted in turn: each run must still call
 * the command back once and done once, with the injected error, and leave
 * an empty loop and no fd. */
static void enumerate_faults(fake_script_fn *script, int clean_rc)
{
    struct fault_outcome clean = { 0 };
    fsm_reset_counters();
    fault_scenario(&clean, script);
    uint64_t n = fsm_dispatch_count();
    assert_int_equal(clean.cmd_calls, 1);
    assert_int_equal(clean.done_rc, clean_rc);
    assert_true(n >= 5 && n < 64);
    for (uint64_t k = 1; k <= n; k++) {
        struct fault_outcome o = { 0 };
        fsm_reset_counters();
        fsm_fault_arm(k, -EIO);
        fault_scenario(&o, script);
        if (o.cmd_calls != 1 || o.done_calls != 1 || (!fsm_fault_fired() && !clean.ignored[k]))
            fprintf(stderr, "fault at dispatch %llu: command callbacks %d, done %d (rc %d), "
                    "fired %d\n", (unsigned long long)k, o.cmd_calls, o.done_calls, o.done_rc,
                    fsm_fault_fired());
        assert_int_equal(o.cmd_calls, 1);
        assert_int_equal(o.done_calls, 1);
        if (!clean.ignored[k])
            assert_true(fsm_fault_fired());
        if (!clean.ignored[k] && !clean.moot[k])
            assert_int_equal(o.done_rc, -EIO);   /* the injected error is the one reported */
        else if (clean.moot[k] && o.done_rc != -EIO)
            assert_int_equal(o.done_rc, clean.done_rc);
    }
    fsm_reset_counters();
    fprintf(stderr, "fault enumeration: %llu dispatches, each faulted once\n",
            (unsigned long long)n);
}

static void test_fault_at_every_dispatch(void **state)
{
    enumerate_faults(fp_script_good, 0);
}

/* Here the last dispatch is the FAIL row itself: skipping its action must
 * not leave the socket open (the cleanup undo closes it). */
static void test_fault_at_every_dispatch_of_a_failure(void **state)
{
    enumerate_faults(script_garbage, -EPROTO);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_split_into_single_bytes),
        cmocka_unit_test(test_unterminated_greeting_then_close),
        cmocka_unit_test(test_close_mid_reply),
        cmocka_unit_test(test_64mib_line_fails_without_buffering),
        cmocka_unit_test(test_no_greeting_times_out),
        cmocka_unit_test(test_unanswered_command_times_out),
        cmocka_unit_test(test_cancel_through_the_machine),
        cmocka_unit_test(test_reply_with_unknown_id),
        cmocka_unit_test(test_reply_without_id),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_first_message_not_a_greeting),
        cmocka_unit_test(test_message_not_an_object),
        cmocka_unit_test(test_capabilities_refused),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_json_escaping_round_trip),
        cmocka_unit_test(test_bad_arguments_fail_synchronously),
        cmocka_unit_test(test_fault_at_every_dispatch),
        cmocka_unit_test(test_fault_at_every_dispatch_of_a_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
