/* bench/bench_colo.c - what a real QEMU adds to a COLO checkpoint.
 *
 * Two COLO runs in one process on one private sim daemon, the primary and the
 * secondary roles joined by a unix socketpair (both channels on one socket),
 * each of an HVM guest dirtying its memory at the same rate:
 *   stand-in  the guest made with --no-device-model: its EMULATOR_CONTEXT is
 *             lockstep's stand-in, no process (the baseline);
 *   QEMU      the same guest with Debian's QEMU 7.2, let run: at every
 *             checkpoint the primary stops it and saves its device state
 *             over QMP, then conts it; the secondary's QEMU takes the state
 *             (a standby started in the interval) and is let run.
 * Per checkpoint (the first, a live migration, left out): the primary's
 * downtime (its guest's suspend to resume, including the secondary's
 * acknowledgements) and the checkpoint's cost (the time between two
 * checkpoints beyond the interval); for QEMU also the primary's QMP time.
 * Medians and p90s, and the QEMU run's over the stand-in's as ratios.
 * Benchmarks do not assert: the exit status is 0 unless a run could not run.
 *
 *   bench_colo [--checkpoints N] [--interval MS] [--dirty-rate PAGES/S]
 *   (LOCKSTEP_SIMD: the daemon binary)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "lockstep/colo.h"

struct leg {
    const char *name;
    unsigned want;                 /* checkpoints, then an orderly stop */
    unsigned n;                    /* checkpoints the primary reported */
    uint64_t *pause, *cycle, *qmp; /* per checkpoint after the first */
    uint64_t last_ns;
    int ops_left;                  /* roles still running */
    int prc, src;
    char perr[256], serr[256];
    struct ls_op *primary;
};

static void on_primary_checkpoint(struct ls_op *op, const struct ls_colo_checkpoint *c, void *data)
{
    struct leg *l = data;
    uint64_t now = bench_now_ns();
    struct ls_colo_dm_state dm;
    if (c->number >= 2 && l->n < l->want) {
        l->pause[l->n] = c->pause_ns;
        l->cycle[l->n] = now - l->last_ns;
        l->qmp[l->n] = ls_colo_dm_state(op, &dm) == 0 ? dm.ns : 0;
        l->n++;
    }
    l->last_ns = now;
    if (l->n == l->want)
        ls_op_cancel(op);
}

static void on_done(struct ls_op *op, int rc, const char *errmsg, void *data)
{
    struct leg *l = data;
    bool primary = op == l->primary;
    /* The primary's orderly stop ends it with 0; the secondary's copy is
     * destroyed then, its outcome "stopped", also 0. */
    snprintf(primary ? l->perr : l->serr, sizeof(l->perr), "%s", errmsg ? errmsg : "");
    *(primary ? &l->prc : &l->src) = rc;
    l->ops_left--;
}

/* The guest's QEMU runs (the sim starts it with -S): then its device state
 * changes between checkpoints and the primary's stop and cont have work. */
static void cont_qemu(struct ls_ctx *ctx, uint32_t domid)
{
    struct ls_dm_info dm;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_domain_dm_info(ctx, domid, &dm, &e) < 0)
        bench_die("dm info: %s", e.msg);
    struct bench_qmp_mini m;
    static const char cont[] = "{\"execute\": \"cont\"}\n";
    int rc = bench_mini_open(&m, dm.qmp_path, 5000);
    if (rc == 0)
        rc = bench_mini_exec(&m, cont, sizeof(cont) - 1);
    bench_mini_close(&m);
    if (rc < 0)
        bench_die("cont through %s: %s", dm.qmp_path, strerror(-rc));
}

static void run_leg(struct bench_host *h, struct leg *l, enum ls_device_model dmk,
                    unsigned interval_ms, uint64_t rate)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_create_args ca = { .type = LS_GUEST_HVM, .vcpus = 1, .memory_kib = 16384,
                                     .seed = 7, .populate = true, .device_model = dmk };
    uint32_t dom;
    if (ls_sim_create(h->be, &ca, &dom, &e) < 0)
        bench_die("creating the %s guest: %s", l->name, e.msg);
    struct ls_sim_workload w = { .rate = rate, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 3 };
    if (ls_sim_set_workload(h->be, dom, &w, &e) < 0)
        bench_die("its workload: %s", e.msg);
    if (dmk == LS_DM_QEMU)
        cont_qemu(h->ctx, dom);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        bench_die("socketpair: %s", strerror(errno));
    struct ls_colo_secondary_opts so = { .recv_fd = sv[1], .send_fd = sv[1],
                                         .mode = LS_COLO_MODE_COLO, .cb_data = l };
    struct ls_colo_primary_opts po = { .domid = dom, .send_fd = sv[0], .recv_fd = sv[0],
                                       .mode = LS_COLO_MODE_COLO, .interval_ms = interval_ms,
                                       .on_checkpoint = on_primary_checkpoint, .cb_data = l };
    struct ls_op *sop;
    if (ls_colo_secondary_start(h->ctx, &so, on_done, l, &sop, &e) < 0 ||
        ls_colo_primary_start(h->ctx, &po, on_done, l, &l->primary, &e) < 0)
        bench_die("starting the %s run: %s", l->name, e.msg);
    l->ops_left = 2;
    l->last_ns = bench_now_ns();
    while (l->ops_left > 0)
        uv_run(&h->loop, UV_RUN_ONCE);
    if (l->prc < 0 || l->src < 0 || l->n < l->want)
        bench_die("the %s run ended after %u checkpoints: primary %s / secondary %s", l->name,
                  l->n, l->perr, l->serr);
    ls_op_free(l->primary);
    ls_op_free(sop);
    close(sv[0]);
    close(sv[1]);
    ls_domain_destroy(h->ctx, dom, &e);
}

static double p90_ms(uint64_t *ns, unsigned n)   /* after bench_median_ms sorted ns */
{
    return n ? (double)ns[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1] / 1e6 : 0;
}

int main(int argc, char **argv)
{
    unsigned want = 20, interval_ms = 500;
    uint64_t rate = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--checkpoints") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            want = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--interval") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            interval_ms = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dirty-rate") && i + 1 < argc && atoi(argv[i + 1]) >= 0)
            rate = (uint64_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_colo [--checkpoints N] [--interval MS] "
                    "[--dirty-rate PAGES/S]\n");
            return 2;
        }
    }
    bench_prog = "bench_colo";
    if (!getenv("LOCKSTEP_SIMD"))
        bench_die("LOCKSTEP_SIMD is not set (scripts/bench.sh sets it)");
    signal(SIGPIPE, SIG_IGN);
    char work[64], run[96];
    bench_workdir(work, sizeof(work), "colo");
    snprintf(run, sizeof(run), "%s/run", work);
    setenv("LOCKSTEP_SIMD_IDLE_EXIT", "5", 1);
    struct bench_host h;
    bench_host_open(&h, run);

    struct leg legs[2] = { { .name = "stand-in" }, { .name = "QEMU" } };
    for (int i = 0; i < 2; i++) {
        struct leg *l = &legs[i];
        l->want = want;
        l->pause = calloc(want, sizeof(uint64_t));
        l->cycle = calloc(want, sizeof(uint64_t));
        l->qmp = calloc(want, sizeof(uint64_t));
        if (!l->pause || !l->cycle || !l->qmp)
            bench_die("out of memory");
        run_leg(&h, l, i ? LS_DM_QEMU : LS_DM_STANDIN, interval_ms, rate);
    }
    printf("COLO checkpoints of a 16 MiB HVM guest at %llu dirty pages/s, every %u ms, %u "
           "each (after the first), medians (p90)\n", (unsigned long long)rate, interval_ms, want);
    double pause[2], cost[2];
    for (int i = 0; i < 2; i++) {
        struct leg *l = &legs[i];
        for (unsigned k = 0; k < l->n; k++)   /* the cycle beyond the interval */
            l->cycle[k] = l->cycle[k] > interval_ms * 1000000ull
                              ? l->cycle[k] - interval_ms * 1000000ull : 0;
        pause[i] = bench_median_ms(l->pause, l->n);
        double pp = p90_ms(l->pause, l->n);
        cost[i] = bench_median_ms(l->cycle, l->n);
        double cp = p90_ms(l->cycle, l->n);
        printf("  %-9s downtime (suspend -> resume) %7.2f ms (%7.2f)   checkpoint cost %7.2f ms "
               "(%7.2f)%s\n", l->name, pause[i], pp, cost[i], cp, i ? "" : "  (baseline)");
    }
    double q = bench_median_ms(legs[1].qmp, legs[1].n);
    printf("  QEMU over stand-in: downtime x%.2f, checkpoint cost x%.2f; the device state "
           "adds %.2f ms of downtime, of it %.2f ms the primary's QMP (stop, save, cont)\n",
           pause[1] / (pause[0] > 0 ? pause[0] : 1), cost[1] / (cost[0] > 0 ? cost[0] : 1),
           pause[1] - pause[0], q);
    for (int i = 0; i < 2; i++) {
        free(legs[i].pause);
        free(legs[i].cycle);
        free(legs[i].qmp);
    }
    bench_host_close(&h, true);
    bench_remove_tree(work);
    return 0;
}
