/* test/sim/test_simd_service.c - lockstep-simd as a local root service.
 *
 * It serves its own uid only, by the kernel's word (SO_PEERCRED), even when
 * the socket's and directory's modes would let another uid in, and its
 * clients talk only to a daemon of their own uid; a request is
 * bounded in size (per op, and over all clients) and a client in rate, and
 * a refused request leaves the daemon serving; and it starts with known
 * limits, not those of the process that started it (a daemon started under
 * `ulimit -v` still creates an HVM domain with its QEMU, or, where no process
 * may lift a hard limit, refuses to start and says why). About 10 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/sim/proto.h"
#include "backends/sim/sim.h"
#include "simtest.h"

static struct ls_backend *open_be(void)
{
    return simtest_open();
}

static void sim_list_ok(struct ls_backend *be)
{
    struct ls_domain_info *v = NULL;
    size_t n = 0;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_list(be, &v, &n, &e) < 0)
        fail_msg("the daemon no longer serves: %s", e.msg);
    free(v);
}

static struct simp_hdr req(unsigned op, uint32_t len)
{
    return (struct simp_hdr){ .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = (uint16_t)op,
                              .len = len };
}

/* ---- only our uid ------------------------------------------------------------ */

/* Another uid is refused by SO_PEERCRED even with every mode opened to it:
 * its first request gets the reason, then the daemon hangs up, and serves on. */
static void test_other_uid_refused(void **state)
{
    struct simtest_env *t = *state;
    if (geteuid() != 0)
        skip();   /* needs to become another uid */
    struct ls_backend *be = open_be();
    sim_list_ok(be);
    int pid = simtest_daemon_pid(t);
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/simd.sock", t->rundir);
    assert_int_equal(chmod(t->rundir, 0755), 0);
    assert_int_equal(chmod(sock, 0666), 0);

    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(p[0]);
        char out[512] = "";
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0) {
            snprintf(out, sizeof(out), "setresuid: %s", strerror(errno));
        } else {
            int fd = simtest_raw_connect(t);
            struct simp_hdr hello = req(SIMP_OP_HELLO, 0), r;
            char msg[400];
            if (fd < 0)
                snprintf(out, sizeof(out), "connect: %s", strerror(-fd));
            else if (simp_send(fd, &hello, NULL, NULL, 0) < 0 ||
                     simtest_raw_reply(fd, &r, msg, sizeof(msg)) < 0)
                snprintf(out, sizeof(out), "no reply");
            else
                snprintf(out, sizeof(out), "status %d: %s; closed %d", r.status, msg,
                         simtest_conn_closed(fd));
        }
        (void)!write(p[1], out, strlen(out));
        _exit(0);
    }
    close(p[1]);
    char got[512] = "";
    ssize_t n = read(p[0], got, sizeof(got) - 1);
    got[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int st;
    waitpid(child, &st, 0);
    char want[64];
    snprintf(want, sizeof(want), "status %d: ", -EACCES);
    if (!strstr(got, want) || !strstr(got, "uid 65534") || !strstr(got, "closed 1"))
        fail_msg("uid 65534 was not refused as it should be: %s", got);
    assert_int_equal(simtest_daemon_pid(t), pid);
    sim_list_ok(be);
    be->ops->close(be);
}

/* And the client's side: a socket at the daemon's path that another uid
 * listens on (in a run directory others can write) is refused by the client
 * by SO_PEERCRED, before it sends a byte, and no daemon is started for it. */
static void test_client_refuses_other_uid(void **state)
{
    struct simtest_env *t = *state;
    if (geteuid() != 0)
        skip();   /* needs another uid to listen */
    assert_int_equal(chmod(t->rundir, 0777), 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    assert_true((size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%.*s/simd.sock",
                                 (int)sizeof(a.sun_path) - 10, t->rundir) < sizeof(a.sun_path));
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(p[0]);
        char c = 'l';   /* listening */
        int fd = -1;
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            c = 'u';
        else if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
                 bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0)
            c = 'b';
        (void)!write(p[1], &c, 1);
        int cfd = -1;
        if (c == 'l' && fd >= 0)
            cfd = accept(fd, NULL, NULL);
        struct timeval tv = { .tv_sec = 10 };
        setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char b;
        c = cfd < 0 ? 'a' : recv(cfd, &b, 1, 0) == 0 ? 'h' : 'r';   /* hung up, or a request */
        (void)!write(p[1], &c, 1);
        _exit(0);
    }
    close(p[1]);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    if (c != 'l')
        fail_msg("uid 65534 could not listen at %s (%c)", a.sun_path, c);
    struct ls_backend *be = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_open(&be, &e), -EACCES);
    assert_null(be);
    if (!strstr(e.msg, "runs as uid 65534") || !strstr(e.msg, "refused"))
        fail_msg("the refusal does not say why: %s", e.msg);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    int st;
    waitpid(child, &st, 0);
    if (c != 'h')
        fail_msg("the client %s", c == 'r' ? "sent a request to another uid's socket"
                                          : "never connected");
    assert_false(simtest_file_exists(t, "simd.pid"));   /* no daemon started in its place */
    unlink(a.sun_path);
}

/* ---- size and rate ------------------------------------------------------------ */

static void expect_refused(const struct simtest_env *t, struct simp_hdr h, const char *needle)
{
    int fd = simtest_raw_connect(t);
    assert_true(fd >= 0);
    struct simp_hdr r;
    char msg[400];
    assert_int_equal(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
    assert_int_equal(simtest_raw_reply(fd, &r, msg, sizeof(msg)), 0);
    assert_int_equal(r.status, -E2BIG);
    if (!strstr(msg, needle))
        fail_msg("refusal '%s' lacks '%s'", msg, needle);
    assert_true(simtest_conn_closed(fd));
    close(fd);
}

/* A payload over its op's limit is refused at the header (nothing of it is
 * allocated or read); so is one that would pass the bound on what all
 * clients together have the daemon buffer; the daemon serves on. */
static void test_oversized_requests(void **state)
{
    struct simtest_env *t = *state;
    struct ls_backend *be = open_be();
    sim_list_ok(be);
    int pid = simtest_daemon_pid(t);
    expect_refused(t, req(SIMP_OP_INFO, 8192), "limit of info");
    expect_refused(t, req(SIMP_OP_CREATE, 1u << 20), "limit of create");
    expect_refused(t, req(SIMP_OP_SET, SIMP_MAX_PAYLOAD + 1), "limit of set");
    /* Four clients each announce 16 MiB and send none of it: 64 MiB held;
     * a fifth is refused, and once they go, the room is back. */
    int held[4];
    for (int i = 0; i < 4; i++) {
        held[i] = simtest_raw_connect(t);
        struct simp_hdr h = req(SIMP_OP_SET, SIMP_MAX_PAYLOAD);
        assert_int_equal(send(held[i], &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
    }
    /* Two round trips: the daemon accepts them by the first at the latest
     * and has read their headers by the second. */
    sim_list_ok(be);
    sim_list_ok(be);
    expect_refused(t, req(SIMP_OP_SET, 4096), "busy");
    for (int i = 0; i < 4; i++)
        close(held[i]);
    sim_list_ok(be);   /* the same for their hang-ups */
    sim_list_ok(be);
    int fd = simtest_raw_connect(t);
    struct simp_hdr h = req(SIMP_OP_SET, 16), r;
    char msg[400];
    assert_int_equal(simp_send(fd, &h, "0123456789abcdef", NULL, 0), 0);
    assert_int_equal(simtest_raw_reply(fd, &r, msg, sizeof(msg)), 0);
    assert_int_not_equal(r.status, -E2BIG);   /* read and judged on its merits */
    close(fd);
    assert_int_equal(simtest_daemon_pid(t), pid);
    sim_list_ok(be);
    be->ops->close(be);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the daemon binary (LOCKSTEP_SIMD, or `binary`) on t's directory with
 * extra arguments, in a child under an optional address-space limit (soft
 * only, as `ulimit -S -v` sets it, or soft and hard, as `ulimit -v`). Returns
 * the starter's exit status; what it printed goes to out. */
static int run_daemon(const struct simtest_env *t, const char *binary, rlim_t as_limit,
                      bool hard, const char *arg1, const char *arg2, char *out, size_t outlen)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        dup2(p[1], 2);
        close(p[0]);
        if (as_limit) {
            struct rlimit r;
            getrlimit(RLIMIT_AS, &r);
            r.rlim_cur = as_limit;
            if (hard)
                r.rlim_max = as_limit;
            if (setrlimit(RLIMIT_AS, &r) < 0)
                _exit(3);
        }
        const char *bin = binary ? binary : getenv("LOCKSTEP_SIMD");
        execl(bin, bin, "--rundir", t->rundir, "--idle-exit", "60", arg1, arg2, (char *)NULL);
        _exit(4);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < outlen && (n = read(p[0], out + got, outlen - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(p[0]);
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void start_daemon(const struct simtest_env *t, const char *binary, rlim_t as_limit,
                         const char *arg1, const char *arg2)
{
    char out[1024];
    int rc = run_daemon(t, binary, as_limit, false, arg1, arg2, out, sizeof(out));
    if (rc != 0)
        fail_msg("the daemon did not start (status %d): %s", rc, out);
}

/* A client's requests are answered at most at the daemon's rate after a
 * burst: 400 pipelined HELLOs at --request-rate 1000 (a burst of 100) take
 * at least 0.3 s. The bound is from below, so a loaded host cannot fail it. */
static void test_request_rate(void **state)
{
    struct simtest_env *t = *state;
    start_daemon(t, NULL, 0, "--request-rate", "1000");
    int fd = simtest_raw_connect(t);
    assert_true(fd >= 0);
    enum { N = 400 };
    double t0 = mono_s();
    for (int i = 0; i < N; i++) {
        struct simp_hdr h = req(SIMP_OP_HELLO, 0);
        assert_int_equal(send(fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
    }
    for (int i = 0; i < N; i++) {
        struct simp_hdr r;
        char msg[128];
        assert_int_equal(simtest_raw_reply(fd, &r, msg, sizeof(msg)), 0);
        assert_int_equal(r.status, 0);
    }
    double took = mono_s() - t0;
    close(fd);
    if ((double)N > 100 + 1000 * took + 1)
        fail_msg("%d requests answered in %.3f s: over 1000/s after a burst of 100", N, took);
}

/* ---- known limits ---------------------------------------------------------------- */

static void create_hvm_512m(void)
{
    struct ls_backend *be = open_be();
    struct ls_sim_create_args a = { .type = LS_GUEST_HVM, .memory_kib = 512 * 1024, .vcpus = 1,
                                    .seed = 1, .name = "under-ulimit", .populate = true,
                                    .device_model = LS_DM_QEMU };
    struct ls_errbuf e;
    ls_err_clear(&e);
    uint32_t id = 0;
    if (ls_sim_create(be, &a, &id, &e) < 0)
        fail_msg("HVM create on a daemon started under ulimit -v: %s", e.msg);
    ls_err_clear(&e);
    assert_int_equal(be->ops->destroy(be, id, &e), 0);
    be->ops->close(be);
}

/* The daemon under the limit: in a sanitizer build the same code built
 * without the sanitizers, whose shadow memory alone would not fit. */
static const char *plain_daemon(void)
{
    const char *plain = getenv("LOCKSTEP_SIMD_PLAIN");
    if (!plain || !*plain)
        return NULL;
    setenv("LOCKSTEP_SIMD", plain, 1);   /* a restart on demand takes the same binary */
    return plain;
}

/* Started under a soft 400 MB address-space limit (ulimit -S -v 409600), the
 * daemon lifts it and maps a 512 MiB HVM guest and starts its QEMU. */
static void test_started_under_soft_ulimit(void **state)
{
    struct simtest_env *t = *state;
    start_daemon(t, plain_daemon(), (rlim_t)400 << 20, NULL, NULL);
    create_hvm_512m();
}

/* Under a hard limit (ulimit -v 409600): a daemon that may lift it
 * (CAP_SYS_RESOURCE, as root on a host) does, and serves the HVM guest;
 * one that may not refuses to start and says why, rather than serve every
 * later caller under its starter's limit. */
static void test_started_under_hard_ulimit(void **state)
{
    struct simtest_env *t = *state;
    char out[1024];
    int rc = run_daemon(t, plain_daemon(), (rlim_t)400 << 20, true, NULL, NULL, out,
                        sizeof(out));
    struct rlimit r, lifted = { RLIM_INFINITY, RLIM_INFINITY };
    getrlimit(RLIMIT_AS, &r);
    pid_t c = fork();
    if (c == 0) {   /* can a process lift a hard limit here? */
        struct rlimit low = { (rlim_t)1 << 40, (rlim_t)1 << 40 };
        _exit(setrlimit(RLIMIT_AS, &low) == 0 && setrlimit(RLIMIT_AS, &lifted) == 0 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    bool can_lift = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    print_message("CAP_SYS_RESOURCE: %s; the daemon: status %d %s\n", can_lift ? "yes" : "no",
                  rc, out);
    if (can_lift) {
        assert_int_equal(rc, 0);
        create_hvm_512m();
        return;
    }
    assert_int_equal(rc, 1);
    if (!strstr(out, "cannot lift") || !strstr(out, "address space limit of 419430400"))
        fail_msg("the refusal does not say why: %s", out);
    assert_false(simtest_file_exists(t, "simd.sock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_other_uid_refused, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_client_refuses_other_uid, simtest_setup,
                                        simtest_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_requests, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_request_rate, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_started_under_soft_ulimit, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_started_under_hard_ulimit, simtest_setup, simtest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
