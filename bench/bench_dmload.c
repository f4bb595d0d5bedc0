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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backends/sim/proto.h"
#include "backends/sim/sim.h"
#include "backends/sim/sim_internal.h"   /* sim_rpc: the standby's socket */
#include "lockstep/lockstep.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_dmload: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a.sun_path))
        return -1;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* One QMP command on a blocking socket; dies on an error reply. */
static void qmp(int fd, const char *msg)
{
    if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
        die("QMP write: %s", strerror(errno));
    char line[8192];
    for (;;) {
        size_t n = 0;
        while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
            n++;
        line[n] = '\0';
        if (n == 0)
            die("QEMU closed its QMP socket after %s", msg);
        if (strstr(line, "\"error\""))
            die("QEMU refused %s: %s", msg, line);
        if (strstr(line, "\"return\""))
            return;
    }
}

/* The state a primary's QEMU saves (stop, xen-save-devices-state), in a file. */
static int save_state(struct ls_ctx *ctx, uint32_t domid, const char *path)
{
    struct ls_dm_info dm;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_domain_dm_info(ctx, domid, &dm, &e) < 0)
        die("dm info: %s", e.msg);
    int fd = connect_unix(dm.qmp_path);
    if (fd < 0)
        die("connect %s: %s", dm.qmp_path, strerror(errno));
    char greeting[4096];
    if (read(fd, greeting, sizeof(greeting)) <= 0)
        die("no QMP greeting");
    qmp(fd, "{\"execute\": \"qmp_capabilities\"}\n");
    qmp(fd, "{\"execute\": \"stop\"}\n");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"xen-save-devices-state\", \"arguments\": "
             "{\"filename\": \"%s\", \"live\": false}}\n", path);
    qmp(fd, cmd);
    close(fd);
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        die("%s: %s", path, strerror(errno));
    return sfd;
}

/* Start a standby and wait for its QMP greeting: QEMU's start (its socket
 * accepts early in its start; the greeting comes once its main loop runs). */
static uint64_t start_standby(struct ls_ctx *ctx, struct ls_backend *be, uint32_t domid)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    uint64_t t0 = now_ns();
    if (ls_domain_dm_prepare_standby(ctx, domid, NULL, &e) < 0)
        die("dm_prepare_standby: %s", e.msg);
    uint8_t *r;
    uint32_t n;
    if (sim_rpc(sim_of(be), SIMP_OP_DM_INFO, domid, SIMP_DM_INFO_STANDBY, 0, NULL, 0, &r, &n,
                NULL, 0, NULL, &e) < 0 || n != sizeof(struct simp_dm_info))
        die("standby info: %s", e.msg);
    struct simp_dm_info sb;
    memcpy(&sb, r, sizeof(sb));
    free(r);
    for (;;) {
        int fd = connect_unix(sb.qmp_path);
        if (fd >= 0) {
            char greeting[4096];
            ssize_t got = read(fd, greeting, sizeof(greeting));
            close(fd);
            if (got > 0)
                return now_ns() - t0;
        }
        if (now_ns() - t0 > 20ull * 1000000000u)
            die("the standby's QMP socket %s did not open within 20 s", sb.qmp_path);
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
        die("dm info: %s", e.msg);
    uint64_t t0 = now_ns();
    if (ls_domain_dm_load(ctx, domid, fd, &e) < 0)
        die("dm_load_checkpoint: %s", e.msg);
    uint64_t t = now_ns() - t0;
    if (ls_domain_dm_info(ctx, domid, &after, &e) < 0)
        die("dm info: %s", e.msg);
    if (after.pid == before.pid || after.loads != expect_loads || !after.alive)
        die("load %u: the domain's QEMU did not change (pid %d -> %d, %u loads)", expect_loads,
            before.pid, after.pid, after.loads);
    return t;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, unsigned n)
{
    qsort(v, n, sizeof(v[0]), cmp_u64);
    return v[n / 2] / 1e6;
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
    if (!getenv("LOCKSTEP_SIMD"))
        die("LOCKSTEP_SIMD is not set (scripts/bench.sh sets it)");
    signal(SIGPIPE, SIG_IGN);
    char work[64] = "/tmp/lockstep-bench-dmload.XXXXXX", run[96], state[96];
    if (!mkdtemp(work))
        die("mkdtemp: %s", strerror(errno));
    snprintf(run, sizeof(run), "%s/run", work);
    snprintf(state, sizeof(state), "%s/state.bin", work);
    setenv("LOCKSTEP_RUNDIR", run, 1);
    setenv("LOCKSTEP_SIMD_IDLE_EXIT", "5", 1);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ls_ctx *ctx;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_ctx_new(&ctx, &loop, LS_BACKEND_SIM, &e) < 0)
        die("%s", e.msg);
    struct ls_backend *be = ls_ctx_backend(ctx);
    struct ls_sim_create_args ca = { .type = LS_GUEST_HVM, .vcpus = 1, .memory_kib = 16384,
                                     .seed = 9, .populate = true, .device_model = LS_DM_QEMU };
    uint32_t prim, sec;
    if (ls_sim_create(be, &ca, &prim, &e) < 0 || ls_sim_create(be, &ca, &sec, &e) < 0)
        die("creating the domains: %s", e.msg);
    int fd = save_state(ctx, prim, state);
    off_t size = lseek(fd, 0, SEEK_END);

    uint64_t *start = calloc(loads, sizeof(uint64_t)), *warm = calloc(loads, sizeof(uint64_t));
    uint64_t *cold = calloc(loads, sizeof(uint64_t));
    if (!start || !warm || !cold)
        die("out of memory");
    unsigned k = 0;
    for (unsigned i = 0; i < loads; i++) {
        start[i] = start_standby(ctx, be, sec);   /* the checkpoint interval */
        uint64_t left = interval_ms * 1000000ull > start[i] ? interval_ms * 1000000ull - start[i] : 0;
        usleep((useconds_t)(left / 1000));        /* the rest of the interval */
        warm[i] = load(ctx, sec, fd, ++k);        /* the checkpoint */
    }
    for (unsigned i = 0; i < loads; i++)
        cold[i] = load(ctx, sec, fd, ++k);        /* no standby: QEMU starts in the load */
    double s = median_ms(start, loads), w = median_ms(warm, loads), c = median_ms(cold, loads);
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
    be->ops->destroy(be, sec, &e);
    be->ops->destroy(be, prim, &e);
    free(start);
    free(warm);
    free(cold);
    ls_ctx_free(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    char pidpath[128], buf[32] = "";
    snprintf(pidpath, sizeof(pidpath), "%s/simd.pid", run);
    FILE *f = fopen(pidpath, "r");
    if (f && fgets(buf, sizeof(buf), f) && atoi(buf) > 0)
        kill(atoi(buf), SIGTERM);
    if (f)
        fclose(f);
    usleep(200000);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", work);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_dmload: could not remove %s\n", work);
    return 0;
}
