/* bench/bench_dmload.c - what a device-state load costs with Debian's QEMU 7.2.
 *
 * A COLO secondary loads a new device state at every checkpoint, and a
 * migration's destination loads one in its downtime. QEMU 7.2 loads one state
 * per process, so the sim keeps a standby QEMU (-incoming defer) that takes
 * the state and replaces the domain's QEMU (backends/backend.h,
 * dm_prepare_standby / dm_load_checkpoint). Measured here, on one HVM domain
 * of a private sim daemon, with a real state (saved by another domain's QEMU):
 *   start      QEMU's own start: the daemon spawns a standby until its QMP
 *              greeting (the baseline: what a load that starts QEMU after
 *              the state arrives pays on top of the load itself);
 *   warm load  state available -> a QEMU paused with it is the domain's device
 *              model, the standby started one checkpoint interval before
 *              (--interval, 1000 ms: libxl's COLO checkpoints at least every
 *              5 s; a QEMU that has just greeted is still busy starting: a
 *              load right after its greeting took 200 ms here, not 36);
 *   cold load  the same with no standby waiting: QEMU started after the state.
 * Medians over N loads (default 20), each checked: a new pid, the load counted.
 * Benchmarks do not assert: the exit status is 0 unless one could not run.
 *
 *   bench_dmload [--loads N] [--interval MS]   (LOCKSTEP_SIMD: the daemon binary)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* The state a primary's QEMU saves (stop, xen-save-devices-state), in a file. */
static int save_state(struct ls_ctx *ctx, uint32_t domid, const char *path)
{
    struct ls_dm_info dm;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_domain_dm_info(ctx, domid, &dm, &e) < 0)
        bench_die("dm info: %s", e.msg);
    struct bench_qmp_mini m;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"xen-save-devices-state\", \"arguments\": "
             "{\"filename\": \"%s\", \"live\": false}}\n", path);
    static const char stop[] = "{\"execute\": \"stop\"}\n";
    int rc = bench_mini_open(&m, dm.qmp_path, 5000);
    if (rc == 0)
        rc = bench_mini_exec(&m, stop, sizeof(stop) - 1);
    if (rc == 0)
        rc = bench_mini_exec(&m, cmd, strlen(cmd));
    bench_mini_close(&m);
    if (rc < 0)
        bench_die("saving the device state through %s: %s", dm.qmp_path, strerror(-rc));
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        bench_die("%s: %s", path, strerror(errno));
    return sfd;
}

/* Start a standby and wait for its QMP greeting: QEMU's start (its socket
 * accepts early in its start; the greeting comes once its main loop runs). */
static uint64_t start_standby(struct ls_ctx *ctx, struct ls_backend *be, uint32_t domid)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    uint64_t t0 = bench_now_ns();
    if (ls_domain_dm_prepare_standby(ctx, domid, NULL, &e) < 0)
        bench_die("dm_prepare_standby: %s", e.msg);
    struct ls_dm_info sb;
    if (ls_sim_dm_standby_info(be, domid, &sb, &e) < 0)
        bench_die("standby info: %s", e.msg);
    if (!sb.present)
        bench_die("domain %u has no standby device model after dm_prepare_standby", domid);
    for (;;) {
        int fd = bench_connect_unix(sb.qmp_path);
        if (fd >= 0) {
            char greeting[4096];
            ssize_t got = read(fd, greeting, sizeof(greeting));
            close(fd);
            if (got > 0)
                return bench_now_ns() - t0;
        }
        if (bench_now_ns() - t0 > 20ull * 1000000000u)
            bench_die("the standby's QMP socket %s did not open within 20 s", sb.qmp_path);
        struct timespec ms = { .tv_nsec = 200000 };
        nanosleep(&ms, NULL);
    }
}

static uint64_t load(struct ls_ctx *ctx, uint32_t domid, int fd, unsigned expect_loads)
{
    struct ls_dm_info before, after;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_domain_dm_info(ctx, domid, &before, &e) < 0)
        bench_die("dm info: %s", e.msg);
    uint64_t t0 = bench_now_ns();
    if (ls_domain_dm_load(ctx, domid, fd, &e) < 0)
        bench_die("dm_load_checkpoint: %s", e.msg);
    uint64_t t = bench_now_ns() - t0;
    if (ls_domain_dm_info(ctx, domid, &after, &e) < 0)
        bench_die("dm info: %s", e.msg);
    if (after.pid == before.pid || after.loads != expect_loads || !after.alive)
        bench_die("load %u: the domain's QEMU did not change (pid %d -> %d, %u loads)", expect_loads,
            before.pid, after.pid, after.loads);
    return t;
}

int main(int argc, char **argv)
{
    unsigned loads = 20, interval_ms = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--loads") && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            loads = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--interval") && i + 1 < argc && atoi(argv[i + 1]) >= 0) {
            interval_ms = (unsigned)atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_dmload [--loads N] [--interval MS]\n");
            return 2;
        }
    }
    bench_prog = "bench_dmload";
    if (!getenv("LOCKSTEP_SIMD"))
        bench_die("LOCKSTEP_SIMD is not set (scripts/bench.sh sets it)");
    signal(SIGPIPE, SIG_IGN);
    char work[64], run[96], state[96];
    bench_workdir(work, sizeof(work), "dmload");
    snprintf(run, sizeof(run), "%s/run", work);
    snprintf(state, sizeof(state), "%s/state.bin", work);
    setenv("LOCKSTEP_SIMD_IDLE_EXIT", "5", 1);
    struct bench_host h;
    bench_host_open(&h, run);
    struct ls_ctx *ctx = h.ctx;
    struct ls_backend *be = h.be;
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_create_args ca = { .type = LS_GUEST_HVM, .vcpus = 1, .memory_kib = 16384,
                                     .seed = 9, .populate = true, .device_model = LS_DM_QEMU };
    uint32_t prim, sec;
    if (ls_sim_create(be, &ca, &prim, &e) < 0 || ls_sim_create(be, &ca, &sec, &e) < 0)
        bench_die("creating the domains: %s", e.msg);
    int fd = save_state(ctx, prim, state);
    off_t size = lseek(fd, 0, SEEK_END);

    uint64_t *start = calloc(loads, sizeof(uint64_t)), *warm = calloc(loads, sizeof(uint64_t));
    uint64_t *cold = calloc(loads, sizeof(uint64_t));
    if (!start || !warm || !cold)
        bench_die("out of memory");
    unsigned k = 0;
    for (unsigned i = 0; i < loads; i++) {
        start[i] = start_standby(ctx, be, sec);   /* the checkpoint interval */
        uint64_t left = interval_ms * 1000000ull > start[i] ? interval_ms * 1000000ull - start[i] : 0;
        usleep((useconds_t)(left / 1000));        /* the rest of the interval */
        warm[i] = load(ctx, sec, fd, ++k);        /* the checkpoint */
    }
    for (unsigned i = 0; i < loads; i++)
        cold[i] = load(ctx, sec, fd, ++k);        /* no standby: QEMU starts in the load */
    double s = bench_median_ms(start, loads), w = bench_median_ms(warm, loads), c = bench_median_ms(cold, loads);
    printf("device-state load into an HVM domain's QEMU 7.2 (%lld-byte state, %u loads each, "
           "medians; standby started %u ms before the state)\n", (long long)size, loads,
           interval_ms);
    printf("  QEMU start (standby spawn -> QMP greeting)               %7.1f ms  (baseline)\n", s);
    printf("  warm load (a standby waiting; state -> QEMU paused)       %7.1f ms  ratio %.2f of "
           "a start\n", w, w / s);
    printf("  cold load (no standby; QEMU started after the state)     %7.1f ms  ratio %.2f of "
           "a start\n", c, c / s);
    printf("  a standby takes the start out of the load: %.1f ms saved per load\n", c - w);
    close(fd);
    ls_domain_destroy(ctx, sec, &e);
    ls_domain_destroy(ctx, prim, &e);
    free(start);
    free(warm);
    free(cold);
    bench_host_close(&h, true);
    bench_remove_tree(work);
    return 0;
}
