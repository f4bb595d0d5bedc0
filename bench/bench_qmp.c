/* bench/bench_qmp.c - QMP client latency and rate against a real QEMU.
 *
 * Starts a headless QEMU with two QMP monitors, then in the same run:
 *   - spawn -> QMP ready (greeting + qmp_capabilities answered), 5 spawns;
 *   - a minimal blocking client on monitor 2: write the command, read up to
 *     the newline, nothing else; once with the plain {"execute":"query-status"}
 *     and once with the exact bytes lockstep sends ({"execute":...,"id":1}):
 *     QEMU 7.2 reads its monitor one byte per main-loop iteration, so request
 *     length alone moves its latency by ~10 us a byte, and only the same
 *     bytes measure the client;
 *   - the lockstep client on monitor 1, one command at a time;
 *   - the lockstep client pipelined 64 deep.
 * Each phase runs N query-status (default 10000; argv[1] overrides). The
 * minimal and one-at-a-time phases alternate twice, and ratios use the
 * totals of both rounds so a noisy moment does not decide them.
 * Not a test: it prints numbers. Build without sanitizers to measure.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "test/qmp/qemu_peer.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct result {
    const char *name;
    unsigned n;
    uint64_t total_ns;
    double median_us, p99_us;
};

static void summarise(struct result *r, uint64_t *lat, unsigned n, uint64_t total_ns)
{
    qsort(lat, n, sizeof(*lat), cmp_u64);
    r->n = n;
    r->total_ns = total_ns;
    r->median_us = lat[n / 2] / 1000.0;
    r->p99_us = lat[(n * 99) / 100] / 1000.0;
}

static void print_result(const struct result *r)
{
    printf("  %-34s %6u cmds  %9.0f cmd/s  median %7.1f us  p99 %7.1f us\n", r->name, r->n,
           r->n / (r->total_ns / 1e9), r->median_us, r->p99_us);
}

/* ---- the minimal blocking client ------------------------------------------------- */

struct mini {
    int fd;
    char buf[1 << 16];
    size_t len;
};

static int mini_line(struct mini *m)
{
    for (;;) {
        char *nl = memchr(m->buf, '\n', m->len);
        if (nl) {
            size_t n = (size_t)(nl - m->buf) + 1;
            int ok = memmem(m->buf, n, "\"return\"", 8) != NULL;
            memmove(m->buf, nl + 1, m->len - n);
            m->len -= n;
            return ok ? 0 : -EPROTO;
        }
        if (m->len == sizeof(m->buf))
            return -EMSGSIZE;
        ssize_t k = read(m->fd, m->buf + m->len, sizeof(m->buf) - m->len);
        if (k <= 0)
            return k == 0 ? -ECONNRESET : -errno;
        m->len += (size_t)k;
    }
}

static int mini_open(struct mini *m, const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    m->len = 0;
    for (int i = 0; i < 5000; i++) {
        m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(m->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
            break;
        close(m->fd);
        m->fd = -1;
        usleep(1000);
    }
    if (m->fd < 0)
        return -ENOENT;
    /* The greeting has no "return": read it by hand. */
    char *nl;
    while (!(nl = memchr(m->buf, '\n', m->len))) {
        ssize_t k = read(m->fd, m->buf + m->len, sizeof(m->buf) - m->len);
        if (k <= 0)
            return -ECONNRESET;
        m->len += (size_t)k;
    }
    m->len -= (size_t)(nl + 1 - m->buf);
    memmove(m->buf, nl + 1, m->len);
    const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
    if (write(m->fd, caps, sizeof(caps) - 1) != (ssize_t)sizeof(caps) - 1)
        return -EIO;
    return mini_line(m);
}

/* The brief's minimal command, and the exact bytes the lockstep client sends
 * one at a time (id 1 every time, no newline). */
static const char cmd_plain[] = "{\"execute\":\"query-status\"}\n";
static const char cmd_same[] = "{\"execute\":\"query-status\",\"id\":1}";

static int mini_run(struct mini *m, const char *cmd, unsigned n, uint64_t *lat, struct result *r)
{
    size_t len = strlen(cmd);
    uint64_t start = now_ns();
    for (unsigned i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        if (write(m->fd, cmd, len) != (ssize_t)len)
            return -EIO;
        int rc = mini_line(m);
        if (rc < 0)
            return rc;
        lat[i] = now_ns() - t0;
    }
    summarise(r, lat, n, now_ns() - start);
    return 0;
}

/* ---- the lockstep client ------------------------------------------------------------ */

struct run {
    uv_loop_t *loop;
    struct qmp_conn *c;
    unsigned n, issued, done, depth;
    uint64_t *lat;
    uint64_t *sent_at;      /* by issue index */
    int rc;
    char err[LS_ERRBUF_LEN];
    bool ready, closed;
    uint64_t ready_ns;
};

static void run_cb(struct qmp_conn *c, const struct qmp_reply *r, void *data);

static void run_issue(struct run *x)
{
    unsigned i = x->issued++;
    x->sent_at[i] = now_ns();
    int rc = qmp_exec(x->c, "query-status", NULL, run_cb, (void *)(uintptr_t)i);
    if (rc < 0 && !x->rc) {
        x->rc = rc;
        snprintf(x->err, sizeof(x->err), "qmp_exec: %s", strerror(-rc));
    }
}

static struct run *cur_run;

static void run_cb(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct run *x = cur_run;
    unsigned i = (unsigned)(uintptr_t)data;
    x->lat[x->done++] = now_ns() - x->sent_at[i];
    if (r->rc && !x->rc) {
        x->rc = r->rc;
        snprintf(x->err, sizeof(x->err), "%s", r->err->msg);
    }
    if (x->issued < x->n && !x->rc)
        run_issue(x);
}

static int lock_run(struct run *x, unsigned n, unsigned depth, struct result *r)
{
    x->n = n;
    x->issued = x->done = 0;
    x->depth = depth;
    cur_run = x;
    uint64_t start = now_ns();
    for (unsigned i = 0; i < depth && i < n; i++)
        run_issue(x);
    while (x->done < x->issued && !x->rc)
        uv_run(x->loop, UV_RUN_ONCE);
    if (x->rc) {
        fprintf(stderr, "bench_qmp: %s\n", x->err);
        return x->rc;
    }
    summarise(r, x->lat, n, now_ns() - start);
    return 0;
}

static void on_ready(struct qmp_conn *c, void *data)
{
    struct run *x = data;
    x->ready = true;
    x->ready_ns = now_ns();
}

static void on_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct run *x = data;
    x->closed = true;
    x->c = NULL;
    if (rc && !x->rc) {
        x->rc = rc;
        snprintf(x->err, sizeof(x->err), "%s", err->msg);
    }
}

static int open_conn(struct run *x, struct io_sched *s, const char *path)
{
    struct qmp_conn_opts o = { .retry_connect = true, .setup_timeout_ms = 20000,
                               .ready = on_ready, .done = on_done, .data = x };
    x->ready = x->closed = false;
    int rc = qmp_conn_open_unix(s, path, &o, &x->c);
    if (rc < 0)
        return rc;
    while (!x->ready && !x->closed)
        uv_run(x->loop, UV_RUN_ONCE);
    return x->ready ? 0 : (x->rc ? x->rc : -EIO);
}

static void close_conn(struct run *x)
{
    if (x->c)
        qmp_conn_close(x->c);
    while (!x->closed)
        uv_run(x->loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
    if (n < 100)
        n = 100;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct io_sched sched;
    io_sched_init(&sched, &loop);
    struct run x = { .loop = &loop };
    x.lat = calloc(n, sizeof(uint64_t));
    x.sent_at = calloc(n, sizeof(uint64_t));
    uint64_t *mlat = calloc(n, sizeof(uint64_t));
    struct qemu_peer q = { 0 };
    struct mini m = { .fd = -1 };
    int rc = 0;
    if (!x.lat || !x.sent_at || !mlat) {
        free(x.lat);
        free(x.sent_at);
        free(mlat);
        return 1;
    }

    /* Spawn -> ready. */
    uint64_t spawn[5];
    for (unsigned i = 0; i < 5; i++) {
        struct qemu_peer_opts qo = { .two_monitors = true };
        uint64_t t0 = now_ns();
        if ((rc = qemu_peer_start(&q, &qo)) < 0 || (rc = open_conn(&x, &sched, q.sock)) < 0)
            goto out;
        spawn[i] = x.ready_ns - t0;
        if (i < 4) {
            close_conn(&x);
            qemu_peer_stop(&q);
        }
    }
    qsort(spawn, 5, sizeof(spawn[0]), cmp_u64);
    printf("qemu-system-x86_64 q35 -S: spawn -> QMP ready (greeting + capabilities), 5 runs: "
           "median %.1f ms, min %.1f ms, max %.1f ms\n",
           spawn[2] / 1e6, spawn[0] / 1e6, spawn[4] / 1e6);

    if ((rc = mini_open(&m, q.sock2)) < 0) {
        fprintf(stderr, "bench_qmp: minimal client: %s\n", strerror(-rc));
        goto out;
    }
    struct result warm;
    if ((rc = mini_run(&m, cmd_plain, n / 10, mlat, &warm)) < 0 ||
        (rc = lock_run(&x, n / 10, 1, &warm)) < 0)
        goto out;

    /* Two rounds, interleaved, so drift on a shared machine hits all alike. */
    struct result plain[2], same[2], one[2], pipe;
    for (int round = 0; round < 2; round++) {
        plain[round].name = "minimal client, plain command";
        same[round].name = "minimal client, lockstep's bytes";
        one[round].name = "lockstep, one at a time";
        if ((rc = mini_run(&m, cmd_plain, n, mlat, &plain[round])) < 0 ||
            (rc = mini_run(&m, cmd_same, n, mlat, &same[round])) < 0) {
            fprintf(stderr, "bench_qmp: minimal client: %s\n", strerror(-rc));
            goto out;
        }
        if ((rc = lock_run(&x, n, 1, &one[round])) < 0)
            goto out;
    }
    pipe.name = "lockstep, pipelined 64 deep";
    if ((rc = lock_run(&x, n, 64, &pipe)) < 0)
        goto out;

    printf("query-status against one QEMU (TCG, %u per phase):\n", n);
    for (int round = 0; round < 2; round++) {
        print_result(&plain[round]);
        print_result(&same[round]);
        print_result(&one[round]);
    }
    print_result(&pipe);
#define RATE2(r) (2.0 * n / (((r)[0].total_ns + (r)[1].total_ns) / 1e9))
    double plain_rate = RATE2(plain), same_rate = RATE2(same), one_rate = RATE2(one);
    double pipe_rate = n / (pipe.total_ns / 1e9);
    printf("ratio one-at-a-time / minimal with the same bytes:  %.3f (target >= 0.9)\n",
           one_rate / same_rate);
    printf("ratio one-at-a-time / minimal with the plain command: %.3f "
           "(QEMU reads 1 byte per loop: %zu vs %zu bytes)\n", one_rate / plain_rate,
           sizeof(cmd_same) - 1, sizeof(cmd_plain) - 1);
    printf("ratio pipelined-64 / minimal with the same bytes:   %.3f\n", pipe_rate / same_rate);

out:
    if (m.fd >= 0)
        close(m.fd);
    if (x.c)
        close_conn(&x);
    qemu_peer_stop(&q);
    io_sched_close(&sched);
    uv_run(&loop, UV_RUN_DEFAULT);
    int lc = uv_loop_close(&loop);
    fsm_sched_destroy(&sched.sched);
    free(x.lat);
    free(x.sent_at);
    free(mlat);
    if (rc < 0)
        fprintf(stderr, "bench_qmp: failed: %s\n", x.err[0] ? x.err : strerror(-rc));
    return rc < 0 || lc != 0;
}
