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
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/xen/xen_internal.h"

struct seen {
    char order[64];            /* S static_data_done, C checkpoint, R restore_results */
    int checkpoint_answer;
    uint64_t store, console;
    int cancel_fd;             /* an eventfd the "table" cancels through */
    int cancel_at_checkpoint;  /* at this checkpoint callback (1-based), cancel as the
                                  table does: signal, and answer with the cancel value */
    int checkpoints;
};

static void mark(struct seen *s, char c)
{
    size_t n = strlen(s->order);
    if (n + 1 < sizeof(s->order))
        s->order[n] = c;
}

static int cb_sdd(unsigned missing, void *data) { (void)missing; mark(data, 'S'); return 0; }
static void cancel(int fd)
{
    uint64_t one = 1;
    assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static int cb_checkpoint(void *data)
{
    struct seen *s = data;
    mark(s, 'C');
    if (++s->checkpoints == s->cancel_at_checkpoint) {
        cancel(s->cancel_fd);
        return LS_CHECKPOINT_ERROR;   /* io_helper_call's cancel value */
    }
    return s->checkpoint_answer;
}
static void cb_results(uint64_t store, uint64_t console, void *data)
{
    struct seen *s = data;
    mark(s, 'R');
    s->store = store;
    s->console = console;
}

/* Run the relay with the fake helper playing the steps given; the stream is
 * a socketpair, and cancel_after_ms > 0 cancels from another thread then. */
struct canceller { int fd; unsigned ms; };
static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    usleep(c->ms * 1000u);
    cancel(c->fd);
    return NULL;
}

static int run_opts(enum ls_stream_type type, int answer, int cancel_at, unsigned cancel_after_ms,
                    struct seen *s, struct xen_restore_result *res, struct ls_errbuf *e, va_list ap)
{
    static struct xen_backend x;
    snprintf(x.helper, sizeof(x.helper), "%s", FAKE_HELPER);
    char *argv[16] = { "fake_helper" };
    for (int i = 1; i < 15 && (argv[i] = va_arg(ap, char *)) != NULL; i++)
        ;
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);   /* the stream */
    memset(s, 0, sizeof(*s));
    s->checkpoint_answer = answer;
    s->cancel_at_checkpoint = cancel_at;
    s->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(s->cancel_fd >= 0);
    struct canceller cl = { s->cancel_fd, cancel_after_ms };
    pthread_t t;
    if (cancel_after_ms)
        assert_int_equal(pthread_create(&t, NULL, cancel_later, &cl), 0);
    struct ls_restore_params p = { .domid = 7, .io_fd = fds[0], .send_back_fd = -1,
                                   .stream_type = type, .cancel_fd = s->cancel_fd };
    struct ls_restore_callbacks cb = { .static_data_done = cb_sdd, .checkpoint = cb_checkpoint,
                                       .restore_results = cb_results, .data = s };
    ls_err_clear(e);
    int rc = xen_restore_relay(&x, argv, &p, &cb, res, e);
    if (cancel_after_ms)
        pthread_join(t, NULL);
    close(fds[0]);
    close(fds[1]);
    close(s->cancel_fd);
    return rc;
}

static int run(enum ls_stream_type type, int answer, struct seen *s,
               struct xen_restore_result *res, struct ls_errbuf *e, ...)
{
    va_list ap;
    va_start(ap, e);
    int rc = run_opts(type, answer, 0, 0, s, res, e, ap);
    va_end(ap);
    return rc;
}

static int run_cancel(int cancel_at, unsigned cancel_after_ms, struct seen *s,
                      struct xen_restore_result *res, struct ls_errbuf *e, ...)
{
    va_list ap;
    va_start(ap, e);
    int rc = run_opts(LS_STREAM_REMUS, 1, cancel_at, cancel_after_ms, s, res, e, ap);
    va_end(ap);
    return rc;
}

static void test_plain_restore(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    assert_int_equal(run(LS_STREAM_PLAIN, 1, &s, &res, &e, "sdd", "results", "done:0", (const char *)NULL), 0);
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
                 "done:5", (const char *)NULL);
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
                 (const char *)NULL);
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
                 "log:Failed to read Record Header from stream", "results", "done:0", (const char *)NULL);
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
                 "ckpt", "results", "done:0", (const char *)NULL);
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
    int rc = run(LS_STREAM_REMUS, 0, &s, &res, &e, "ckpt", "done:71", (const char *)NULL);
    assert_int_equal(rc, -71);
    assert_string_equal(s.order, "C");
    assert_int_equal(res.checkpoints, 0);
}

static void test_helper_killed_by_a_signal(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run(LS_STREAM_REMUS, 1, &s, &res, &e, "sdd", "ckpt",
                 "log:xc: Failed to map guest page 0x42", "crash", (const char *)NULL);
    assert_int_equal(rc, -EPIPE);
    assert_string_equal(s.order, "SCR");
    assert_false(res.broken);
    assert_non_null(strstr(e.msg, "lockstep-xen-helper died of signal 11"));
    /* what libxc said through it before it died goes along */
    assert_non_null(strstr(e.msg, "the last it said: \"xc: Failed to map guest page 0x42\""));
}

/* The table fails over (its reader saw the link end) while libxc waits on
 * the next checkpoint's callback: answered FAILOVER, not killed, so libxc
 * completes the domain from checkpoint 1 for the copy to take over. */
static void test_remus_cancel_in_a_checkpoint_completes_the_domain(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run_cancel(2, 0, &s, &res, &e, "sdd", "ckpt", "ckpt=2", "results", "done:0", (const char *)NULL);
    assert_int_equal(rc, -ECANCELED);
    assert_true(res.broken);   /* announce it */
    assert_int_equal(res.checkpoints, 1);
    assert_int_equal(res.store_mfn, 0x1111);
    assert_non_null(strstr(e.msg, "holds that checkpoint whole"));
}

/* ... or while libxc is blocked reading the stream (a silent link): the
 * socket's reading side is shut, libxc sees the end and completes. */
static void test_remus_cancel_in_a_read_completes_the_domain(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run_cancel(0, 300, &s, &res, &e, "sdd", "ckpt", "read",
                        "log:Failed to read Record Header", "results", "done:0", (const char *)NULL);
    assert_int_equal(rc, -ECANCELED);
    assert_true(res.broken);
    assert_int_equal(res.checkpoints, 1);
}

/* Before the first whole checkpoint there is nothing to keep: killed. */
static void test_cancel_before_a_checkpoint_kills(void **state)
{
    struct seen s;
    struct xen_restore_result res;
    struct ls_errbuf e;
    int rc = run_cancel(1, 0, &s, &res, &e, "sdd", "ckpt=0", "done:71", (const char *)NULL);
    assert_true(rc < 0);   /* killed (-ECANCELED), or libxc's own failure if it ended first */
    assert_false(res.broken);
    assert_int_equal(res.checkpoints, 0);
}

/* ---- the guard ------------------------------------------------------------ */

static struct xen_backend gx;
static char guard_log_path[64];

static int guard_setup(void **state)
{
    memset(&gx, 0, sizeof(gx));
    pthread_mutex_init(&gx.lock, NULL);
    snprintf(gx.helper, sizeof(gx.helper), "%s", FAKE_HELPER);
    snprintf(guard_log_path, sizeof(guard_log_path), "/tmp/lsguard.XXXXXX");
    int fd = mkstemp(guard_log_path);
    assert_true(fd >= 0);
    close(fd);
    setenv("FAKE_GUARD_LOG", guard_log_path, 1);
    unsetenv("FAKE_GUARD_START");
    return 0;
}

static int guard_teardown(void **state)
{
    while (gx.guards) {
        struct xen_guard *g = gx.guards;
        gx.guards = g->next;
        xen_guard_release(g->pid, g->wfd);
        free(g);
    }
    unlink(guard_log_path);
    pthread_mutex_destroy(&gx.lock);
    return 0;
}

/* Lockstep dies: its end of every guard's socket closes; the guards finish. */
static void lockstep_dies(void)
{
    while (gx.guards) {
        struct xen_guard *g = gx.guards;
        gx.guards = g->next;
        close(g->wfd);
        while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        free(g);
    }
}

static const char *guard_said(void)
{
    static char buf[512];
    FILE *f = fopen(guard_log_path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A checkpointed domain is armed and disarmed at every checkpoint: one
 * guard process does it all, and acts on the last arming when lockstep dies. */
static void test_guard_kept_across_checkpoints(void **state)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(xen_set_guard(&gx.be, 9, LS_GUARD_RESUME, &e), 0);
        xen_guard_disarm(&gx, 9);
    }
    assert_int_equal(xen_set_guard(&gx.be, 9, LS_GUARD_DESTROY, &e), 0);
    lockstep_dies();
    assert_string_equal(guard_said(), "start 9 resume\nfired destroy\n");
}

static void test_guard_disarmed_does_nothing(void **state)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(xen_set_guard(&gx.be, 9, LS_GUARD_RESUME, &e), 0);
    xen_guard_disarm(&gx, 9);
    lockstep_dies();
    assert_string_equal(guard_said(), "start 9 resume\nexit disarmed\n");
}

static void test_guard_none_releases(void **state)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(xen_set_guard(&gx.be, 9, LS_GUARD_DESTROY, &e), 0);
    assert_int_equal(xen_set_guard(&gx.be, 9, LS_GUARD_NONE, &e), 0);
    assert_null(gx.guards);
    assert_string_equal(guard_said(), "start 9 destroy\nreleased\n");
}

/* A guard that dies at its start is an error that says so, not a domain
 * left unguarded in silence (seen once under emulation). */
static void test_guard_dead_at_start_is_an_error(void **state)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    setenv("FAKE_GUARD_START", "crash", 1);
    int rc = xen_set_guard(&gx.be, 9, LS_GUARD_RESUME, &e);
    assert_int_equal(rc, -EIO);
    assert_null(gx.guards);
    assert_non_null(strstr(e.msg, "domain 9: its guard"));
    assert_non_null(strstr(e.msg, "died of signal 11"));
    assert_non_null(strstr(e.msg, "before it was ready"));
}

/* A kept guard that died since is replaced at the next arming. */
static void test_guard_replaced_when_gone(void **state)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(xen_set_guard(&gx.be, 9, LS_GUARD_RESUME, &e), 0);
    xen_guard_disarm(&gx, 9);
    pid_t first = gx.guards->pid;
    kill(first, SIGKILL);
    siginfo_t si;   /* dead, and left for the backend to reap */
    while (waitid(P_PID, (id_t)first, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    assert_int_equal(xen_set_guard(&gx.be, 9, LS_GUARD_RESUME, &e), 0);
    assert_non_null(gx.guards);
    assert_true(gx.guards->pid != first && gx.guards->pid > 0);
    lockstep_dies();
    assert_string_equal(guard_said(), "start 9 resume\nstart 9 resume\nfired resume\n");
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
        cmocka_unit_test(test_remus_cancel_in_a_checkpoint_completes_the_domain),
        cmocka_unit_test(test_remus_cancel_in_a_read_completes_the_domain),
        cmocka_unit_test(test_cancel_before_a_checkpoint_kills),
        cmocka_unit_test_setup_teardown(test_guard_kept_across_checkpoints, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_guard_disarmed_does_nothing, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_guard_none_releases, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_guard_dead_at_start_is_an_error, guard_setup, guard_teardown),
        cmocka_unit_test_setup_teardown(test_guard_replaced_when_gone, guard_setup, guard_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
