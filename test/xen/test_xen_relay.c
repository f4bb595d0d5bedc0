/* test/xen/test_xen_relay.c - the Xen backend's restore relay against a
 * scripted lockstep-xen-helper (test/xen/fake_helper.c) speaking
 * helper_proto.h: the callbacks the tables get, in order, for a plain
 * restore, for a Remus stream that ends in order, and for one that breaks
 * after whole checkpoints (libxc then completes the domain and returns
 * success; the relay makes it the task failing, so the secondary fails over
 * instead of taking it for the primary's orderly end); and a helper that
 * dies of a signal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/xen/xen_internal.h"

struct seen {
    char order[64];            /* S static_data_done, C checkpoint, R restore_results */
    int checkpoint_answer;
    uint64_t store, console;
};

static void mark(struct seen *s, char c)
{
    size_t n = strlen(s->order);
    if (n + 1 < sizeof(s->order))
        s->order[n] = c;
}

static int cb_sdd(unsigned missing, void *data) { (void)missing; mark(data, 'S'); return 0; }
static int cb_checkpoint(void *data)
{
    struct seen *s = data;
    mark(s, 'C');
    return s->checkpoint_answer;
}
static void cb_results(uint64_t store, uint64_t console, void *data)
{
    struct seen *s = data;
    mark(s, 'R');
    s->store = store;
    s->console = console;
}

/* Run the relay with the fake helper playing `steps`. */
static int run(enum ls_stream_type type, int answer, struct seen *s,
               struct xen_restore_result *res, struct ls_errbuf *e, ...)
{
    static struct xen_backend x;
    snprintf(x.helper, sizeof(x.helper), "%s", FAKE_HELPER);
    char *argv[16] = { "fake_helper" };
    va_list ap;
    va_start(ap, e);
    for (int i = 1; i < 15 && (argv[i] = va_arg(ap, char *)) != NULL; i++)
        ;
    va_end(ap);
    int fds[2];
    assert_int_equal(pipe(fds), 0);   /* the stream: the fake reads none of it */
    memset(s, 0, sizeof(*s));
    s->checkpoint_answer = answer;
    struct ls_restore_params p = { .domid = 7, .io_fd = fds[0], .send_back_fd = -1,
                                   .stream_type = type, .cancel_fd = -1 };
    struct ls_restore_callbacks cb = { .static_data_done = cb_sdd, .checkpoint = cb_checkpoint,
                                       .restore_results = cb_results, .data = s };
    ls_err_clear(e);
    int rc = xen_restore_relay(&x, argv, &p, &cb, res, e);
    close(fds[0]);
    close(fds[1]);
    return rc;
}

static void test_plain_restore(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    assert_int_equal(run(LS_STREAM_PLAIN, 1, &s, &res, &e, "sdd", "results", "done:0", NULL), 0);
    assert_string_equal(s.order, "SR");
    assert_int_equal(s.store, 11);
    assert_int_equal(res.store_mfn, 0x1111);
    assert_int_equal(res.console_mfn, 0x2222);
    assert_false(res.broken);
}

static void test_plain_failure_keeps_libxc_words(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run(LS_STREAM_PLAIN, 1, &s, &res, &e, "sdd", "log:Failed to read Record Header",
                 "done:5", NULL);
    assert_int_equal(rc, -5);
    assert_non_null(strstr(e.msg, "xc_domain_restore of domain 7 failed"));
    assert_false(res.broken);
}

/* Each answered checkpoint is applied by libxc at once: a restore_results
 * follows it; the END's own restore_results (no error logged) is the end. */
static void test_remus_orderly_end(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run(LS_STREAM_REMUS, 1, &s, &res, &e, "sdd", "ckpt", "ckpt", "results", "done:0",
                 NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(s.order, "SCRCRR");
    assert_int_equal(s.store, 11);   /* the real one, at the end */
    assert_int_equal(res.checkpoints, 2);
    assert_false(res.broken);
}

/* The primary is lost after two checkpoints: libxc logs the failed read,
 * completes the domain from checkpoint 2 and reports success. */
static void test_remus_broken_stream_fails_the_task(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run(LS_STREAM_REMUS, 1, &s, &res, &e, "sdd", "ckpt", "ckpt",
                 "log:Failed to read Record Header from stream", "results", "done:0", NULL);
    assert_int_equal(rc, -EPIPE);
    assert_string_equal(s.order, "SCRCR");   /* not the end's restore_results */
    assert_true(res.broken);
    assert_int_equal(res.checkpoints, 2);
    assert_int_equal(res.store_mfn, 0x1111);   /* for the announcement */
    assert_non_null(strstr(e.msg, "broke after checkpoint 2"));
    assert_non_null(strstr(e.msg, "Failed to read Record Header"));
}

/* An error logged before a later checkpoint is not the stream breaking. */
static void test_remus_error_before_a_checkpoint(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run(LS_STREAM_REMUS, 1, &s, &res, &e, "sdd", "ckpt", "log:a warning-ish error",
                 "ckpt", "results", "done:0", NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(s.order, "SCRCRR");
    assert_false(res.broken);
}

/* A checkpoint answered with an error or a failover is not applied. */
static void test_remus_refused_checkpoint(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run(LS_STREAM_REMUS, 0, &s, &res, &e, "ckpt", "done:71", NULL);
    assert_int_equal(rc, -71);
    assert_string_equal(s.order, "C");
    assert_int_equal(res.checkpoints, 0);
}

static void test_helper_killed_by_a_signal(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run(LS_STREAM_REMUS, 1, &s, &res, &e, "sdd", "ckpt", "crash", NULL);
    assert_int_equal(rc, -EPIPE);
    assert_string_equal(s.order, "SCR");
    assert_false(res.broken);
    assert_non_null(strstr(e.msg, "lockstep-xen-helper died of signal 11"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_restore),
        cmocka_unit_test(test_plain_failure_keeps_libxc_words),
        cmocka_unit_test(test_remus_orderly_end),
        cmocka_unit_test(test_remus_broken_stream_fails_the_task),
        cmocka_unit_test(test_remus_error_before_a_checkpoint),
        cmocka_unit_test(test_remus_refused_checkpoint),
        cmocka_unit_test(test_helper_killed_by_a_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
