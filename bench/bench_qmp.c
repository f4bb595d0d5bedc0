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
 * The lockstep client is lockstep/qmp.h's, on a sim context's loop (the
 * daemon scripts/bench.sh starts); the QEMU is started here, as a toolstack
 * would start one.
 * Not a test: it prints numbers. Build without sanitizers to measure.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "lockstep/qmp.h"

extern char **environ;

struct result {
    const char *name;
    unsigned n;
    uint64_t total_ns;
    double median_us, p99_us;
};

static void summarise(struct result *r, uint64_t *lat, unsigned n, uint64_t total_ns)
{
    qsort(lat, n, sizeof(*lat), bench_cmp_u64);
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

/* ---- the QEMU ------------------------------------------------------------------------ */

/* A headless QEMU that never runs a guest (-S), with two QMP monitors in a
 * directory of its own; its output goes to dir/qemu.log. */
struct qemu {
    pid_t pid;
    char dir[64], sock[96], sock2[96];
};

static int qemu_start(struct qemu *q)
{
    char log[96], mon1[128], mon2[128];
    bench_workdir(q->dir, sizeof(q->dir), "qmp");
    snprintf(q->sock, sizeof(q->sock), "%s/qmp.sock", q->dir);
    snprintf(q->sock2, sizeof(q->sock2), "%s/qmp2.sock", q->dir);
    snprintf(log, sizeof(log), "%s/qemu.log", q->dir);
    snprintf(mon1, sizeof(mon1), "unix:%s,server=on,wait=off", q->sock);
    snprintf(mon2, sizeof(mon2), "unix:%s,server=on,wait=off", q->sock2);
    char *argv[] = { "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-nodefaults",
                     "-no-user-config", "-display", "none", "-S", "-qmp", mon1, "-qmp", mon2,
                     NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawnp(&q->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        q->pid = 0;
        bench_remove_tree(q->dir);
    }
    return -rc;
}

static void qemu_stop(struct qemu *q)
{
    if (q->pid <= 0)
        return;
    kill(q->pid, SIGKILL);
    waitpid(q->pid, NULL, 0);
    q->pid = 0;
    bench_remove_tree(q->dir);
}

/* The brief's minimal command, and the exact bytes the lockstep client sends
 * one at a time (id 1 every time, no newline). */
static const char cmd_plain[] = "{\"execute\":\"query-status\"}\n";
static const char cmd_same[] = "{\"execute\":\"query-status\",\"id\":1}";

static int mini_run(struct bench_qmp_mini *m, const char *cmd, unsigned n, uint64_t *lat,
                    struct result *r)
{
    size_t len = strlen(cmd);
    uint64_t start = bench_now_ns();
    for (unsigned i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        int rc = bench_mini_exec(m, cmd, len);
        if (rc < 0)
            return rc;
        lat[i] = bench_now_ns() - t0;
    }
    summarise(r, lat, n, bench_now_ns() - start);
    return 0;
}

/* ---- the lockstep client ------------------------------------------------------------ */

struct run {
    uv_loop_t *loop;
    struct ls_qmp *q;
    unsigned n, issued, done, depth;
    uint64_t *lat;
    uint64_t *sent_at;      /* by issue index */
    int rc;
    char err[LS_ERRBUF_LEN];
    bool ready, closed;
    uint64_t ready_ns;
};

static void run_fail(struct run *x, int rc, const char *msg)
{
    if (!x->rc) {
        x->rc = rc;
        snprintf(x->err, sizeof(x->err), "%s", msg ? msg : strerror(-rc));
    }
}

static void run_cb(struct ls_qmp *q, int rc, const char *ret, const char *msg, void *data);

static void run_issue(struct run *x)
{
    unsigned i = x->issued++;
    struct ls_errbuf e;
    ls_err_clear(&e);
    x->sent_at[i] = bench_now_ns();
    int rc = ls_qmp_exec(x->q, "query-status", NULL, run_cb, (void *)(uintptr_t)i, &e);
    if (rc < 0)
        run_fail(x, rc, e.msg);
}

static struct run *cur_run;

static void run_cb(struct ls_qmp *q, int rc, const char *ret, const char *msg, void *data)
{
    struct run *x = cur_run;
    unsigned i = (unsigned)(uintptr_t)data;
    x->lat[x->done++] = bench_now_ns() - x->sent_at[i];
    if (rc)
        run_fail(x, rc, msg);
    if (x->issued < x->n && !x->rc)
        run_issue(x);
}

static int lock_run(struct run *x, unsigned n, unsigned depth, struct result *r)
{
    x->n = n;
    x->issued = x->done = 0;
    x->depth = depth;
    cur_run = x;
    uint64_t start = bench_now_ns();
    for (unsigned i = 0; i < depth && i < n; i++)
        run_issue(x);
    while (x->done < x->issued && !x->rc)
        uv_run(x->loop, UV_RUN_ONCE);
    if (x->rc) {
        fprintf(stderr, "bench_qmp: %s\n", x->err);
        return x->rc;
    }
    summarise(r, x->lat, n, bench_now_ns() - start);
    return 0;
}

static void on_ready(struct ls_qmp *q, int rc, const char *msg, void *data)
{
    struct run *x = data;
    x->ready = true;
    x->ready_ns = bench_now_ns();
}

static void on_closed(struct ls_qmp *q, int rc, const char *msg, void *data)
{
    struct run *x = data;
    x->closed = true;
    x->q = NULL;
    if (rc)
        run_fail(x, rc, msg);
}

static int open_conn(struct run *x, struct ls_ctx *ctx, const char *path)
{
    struct ls_qmp_opts o = { .retry_connect = true, .setup_timeout_ms = 20000,
                             .ready = on_ready, .closed = on_closed, .data = x };
    struct ls_errbuf e;
    ls_err_clear(&e);
    x->ready = x->closed = false;
    int rc = ls_qmp_open(ctx, path, &o, &x->q, &e);
    if (rc < 0) {
        run_fail(x, rc, e.msg);
        return rc;
    }
    while (!x->ready && !x->closed)
        uv_run(x->loop, UV_RUN_ONCE);
    return x->ready ? 0 : (x->rc ? x->rc : -EIO);
}

static void close_conn(struct run *x)
{
    if (x->q)
        ls_qmp_close(x->q);
    while (!x->closed)
        uv_run(x->loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
    bench_prog = "bench_qmp";
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
    if (n < 100)
        n = 100;
    signal(SIGPIPE, SIG_IGN);
    struct bench_host h;
    bench_host_open(&h, NULL);
    struct run x = { .loop = &h.loop, .closed = true };
    x.lat = calloc(n, sizeof(uint64_t));
    x.sent_at = calloc(n, sizeof(uint64_t));
    uint64_t *mlat = calloc(n, sizeof(uint64_t));
    struct qemu q = { 0 };
    struct bench_qmp_mini m = { .fd = -1 };
    int rc = 0;
    if (!x.lat || !x.sent_at || !mlat)
        bench_die("out of memory");

    /* Spawn -> ready. */
    uint64_t spawn[5];
    for (unsigned i = 0; i < 5; i++) {
        uint64_t t0 = bench_now_ns();
        if ((rc = qemu_start(&q)) < 0) {
            run_fail(&x, rc, "starting qemu-system-x86_64");
            goto out;
        }
        if ((rc = open_conn(&x, h.ctx, q.sock)) < 0)
            goto out;
        spawn[i] = x.ready_ns - t0;
        if (i < 4) {
            close_conn(&x);
            qemu_stop(&q);
        }
    }
    qsort(spawn, 5, sizeof(spawn[0]), bench_cmp_u64);
    printf("qemu-system-x86_64 q35 -S: spawn -> QMP ready (greeting + capabilities), 5 runs: "
           "median %.1f ms, min %.1f ms, max %.1f ms\n",
           spawn[2] / 1e6, spawn[0] / 1e6, spawn[4] / 1e6);

    if ((rc = bench_mini_open(&m, q.sock2, 5000)) < 0) {
        run_fail(&x, rc, "minimal client: connecting");
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
            run_fail(&x, rc, "minimal client");
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
    bench_mini_close(&m);
    if (!x.closed)
        close_conn(&x);
    qemu_stop(&q);
    bench_host_close(&h, false);
    free(x.lat);
    free(x.sent_at);
    free(mlat);
    if (rc < 0)
        fprintf(stderr, "bench_qmp: failed: %s\n", x.err[0] ? x.err : strerror(-rc));
    return rc < 0;
}
