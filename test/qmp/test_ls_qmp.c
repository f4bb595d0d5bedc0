/* test/qmp/test_ls_qmp.c - lockstep/qmp.h, the public QMP calls, against a
 * real QEMU (-S, q35, TCG), on a sim context's loop (a private daemon): the
 * greeting and negotiation, a reply's value as JSON text, arguments given as
 * JSON text, QEMU's error with its class, bad arguments refused at the call,
 * pending commands cancelled by a close, and a socket nobody listens on.
 * About 1 s. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lockstep/lockstep.h"
#include "lockstep/qmp.h"
#include "test/qmp/qemu_peer.h"
#include "test/sim/simtest.h"

struct state {
    bool ready, closed;
    int ready_rc, closed_rc, closed_calls;
    char closed_msg[LS_ERRBUF_LEN];
};

struct reply {
    int calls, rc;
    char json[4096], msg[LS_ERRBUF_LEN];
};

static void on_ready(struct ls_qmp *q, int rc, const char *msg, void *data)
{
    struct state *s = data;
    s->ready = true;
    s->ready_rc = rc;
}

static void on_closed(struct ls_qmp *q, int rc, const char *msg, void *data)
{
    struct state *s = data;
    s->closed = true;
    s->closed_calls++;
    s->closed_rc = rc;
    snprintf(s->closed_msg, sizeof(s->closed_msg), "%s", msg ? msg : "");
}

static void on_reply(struct ls_qmp *q, int rc, const char *ret, const char *msg, void *data)
{
    struct reply *r = data;
    r->calls++;
    r->rc = rc;
    snprintf(r->json, sizeof(r->json), "%s", ret ? ret : "");
    snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
    if (rc == 0)
        assert_non_null(ret);
    else
        assert_null(ret);
}

static void run_until(uv_loop_t *loop, const bool *flag)
{
    for (int i = 0; i < 20000 && !*flag; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_true(*flag);
}

static void run_until_calls(uv_loop_t *loop, const struct reply *r)
{
    for (int i = 0; i < 20000 && !r->calls; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(r->calls, 1);
}

static void test_public_qmp(void **unused)
{
    struct simtest_env env = { 0 };
    simtest_env_init(&env, 0);
    struct qemu_peer qemu;
    assert_int_equal(qemu_peer_start(&qemu, NULL), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ls_ctx *ctx;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_ctx_new(&ctx, &loop, LS_BACKEND_SIM, &e), 0);

    struct state st = { 0 };
    struct ls_qmp_opts o = { .retry_connect = true, .setup_timeout_ms = 20000,
                             .ready = on_ready, .closed = on_closed, .data = &st };
    struct ls_qmp *q;
    assert_int_equal(ls_qmp_open(ctx, qemu.sock, &o, &q, &e), 0);
    assert_false(st.ready);   /* never from inside the call */
    run_until(&loop, &st.ready);
    assert_int_equal(st.ready_rc, 0);

    struct reply r = { 0 };
    assert_int_equal(ls_qmp_exec(q, "query-status", NULL, on_reply, &r, &e), 0);
    run_until_calls(&loop, &r);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.json, "\"status\":\"prelaunch\""));   /* -S */
    assert_non_null(strstr(r.json, "\"running\":false"));

    /* Arguments as JSON text; a string value back as JSON text. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(ls_qmp_exec(q, "qom-get", "{\"path\": \"/machine\", \"property\": \"type\"}",
                                 on_reply, &r, &e),
                     0);
    run_until_calls(&loop, &r);
    assert_int_equal(r.rc, 0);
    assert_memory_equal(r.json, "\"pc-q35-", 8);
    assert_int_equal(r.json[strlen(r.json) - 1], '"');

    memset(&r, 0, sizeof(r));
    assert_int_equal(ls_qmp_exec(q, "no-such-command", NULL, on_reply, &r, &e), 0);
    run_until_calls(&loop, &r);
    assert_int_equal(r.rc, -EREMOTEIO);
    assert_non_null(strstr(r.msg, "CommandNotFound"));

    /* Refused at the call: no callback. */
    memset(&r, 0, sizeof(r));
    ls_err_clear(&e);
    assert_int_equal(ls_qmp_exec(q, "query-status", "[1]", on_reply, &r, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "JSON object"));
    ls_err_clear(&e);
    assert_int_equal(ls_qmp_exec(q, "query-status", "{\"a\":", on_reply, &r, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "not JSON"));

    /* A close fails what is pending, then closed (rc 0) once. */
    struct reply pend[3] = { 0 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(ls_qmp_exec(q, "query-status", NULL, on_reply, &pend[i], &e), 0);
    ls_qmp_close(q);
    run_until(&loop, &st.closed);
    assert_int_equal(st.closed_rc, 0);
    assert_int_equal(st.closed_calls, 1);
    assert_int_equal(r.calls, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pend[i].calls, 1);
        assert_int_equal(pend[i].rc, -ECANCELED);
    }

    /* Nobody listens: closed with the reason. */
    char nosock[160];
    snprintf(nosock, sizeof(nosock), "%s/none.sock", env.rundir);
    struct state st2 = { 0 };
    struct ls_qmp_opts o2 = { .ready = on_ready, .closed = on_closed, .data = &st2 };
    assert_int_equal(ls_qmp_open(ctx, nosock, &o2, &q, &e), 0);
    run_until(&loop, &st2.closed);
    assert_false(st2.ready);
    assert_true(st2.closed_rc < 0);
    assert_non_null(strstr(st2.closed_msg, "none.sock"));

    ls_ctx_free(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    qemu_peer_stop(&qemu);
    simtest_env_fini(&env);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_qmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
