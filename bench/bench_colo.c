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
 * Both runs go at once, their checkpoints asked (ls_colo_checkpoint) in
 * rounds, one every interval: the stand-in's, then the QEMU's, never two at a
 * time, so that the machine's load falls on both alike. Per checkpoint (the first, a live migration, left out): the
 * primary's downtime (its guest's suspend to resume, including the
 * secondary's acknowledgements) and the checkpoint's time (asked to the
 * secondary's SVM_RESUMED); for QEMU also the primary's QMP time. Medians
 * and p90s, and the QEMU run's over the stand-in's as ratios: the device
 * state's share of the downtime is the difference of the two.
 * Benchmarks do not assert: the exit status is 0 unless a run could not run.
 *
 * The guests' network output (issue 16), PV guests sending a frame every 10
 * writes, through QEMU 7.2's colo-compare as lockstep runs it (the primary's
 * proxy, the secondary's relay), against a third guest of the same workload
 * whose frames this process forwards straight to a world of its own, in the
 * same run: frames per second and the latency of each released frame (its
 * arrival less the moment its write was due by the guest's pace, which all
 * guests start together once the replica runs), at 2,000 and 100,000 frames
 * per second offered; then the checkpoints divergence causes per second at
 * 0, 0.1% and 1% nondeterministic frames (libxl's 5 s interval).
 *
 *   bench_colo [--checkpoints N] [--interval MS] [--dirty-rate PAGES/S]
 *              [--net-only | --no-net] [--net-seconds N]
 *              (LOCKSTEP_SIMD: the daemon binary)
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "lockstep/colo.h"

struct leg {
    const char *name;
    unsigned want;                 /* checkpoints, then an orderly stop */
    unsigned n;                    /* checkpoints the primary reported */
    uint64_t *pause, *cycle, *qmp; /* per checkpoint after the first */
    uint64_t *spause, *sdm;        /* the secondary's: its guest's pause, its device-state time */
    unsigned sn;                   /* secondary pauses recorded */
    uint64_t last_ns;
    int ops_left;                  /* roles still running */
    int prc, src;
    char perr[256], serr[256];
    struct ls_op *primary, *secondary;
    uint32_t dom;
    int sv[2];
    uint64_t trig_ns;              /* when its checkpoint was asked; 0: none in flight */
    struct leg *then;              /* the leg asked right after this one's checkpoint */
};

/* A checkpoint of l, asked now (ls_colo_checkpoint). */
static void ask(struct leg *l)
{
    l->trig_ns = bench_now_ns();
    if (ls_colo_checkpoint(l->primary) < 0)
        bench_die("asking the %s leg for a checkpoint", l->name);
}

static bool wants(const struct leg *l)
{
    return l->ops_left == 2 && l->n < l->want && l->last_ns && !l->trig_ns;
}

/* Every interval a round: the stand-in's checkpoint, then at once the QEMU's
 * (on_primary_checkpoint), never two at a time, so that a load that changes
 * over the run falls on both alike; the QEMU leg's standby QEMU then starts
 * in the interval, away from either's checkpoint. */
static void on_round(uv_timer_t *t)
{
    struct leg *legs = t->data;
    if (legs[0].trig_ns || legs[1].trig_ns)
        return;   /* the last round is still on: the next tick */
    if (wants(&legs[0]))
        ask(&legs[0]);
    else if (wants(&legs[1]))
        ask(&legs[1]);
}

static void on_primary_checkpoint(struct ls_op *op, const struct ls_colo_checkpoint *c, void *data)
{
    struct leg *l = data;
    uint64_t now = bench_now_ns();
    struct ls_colo_dm_state dm;
    if (c->number >= 2 && l->n < l->want) {
        l->pause[l->n] = c->pause_ns;
        l->cycle[l->n] = l->trig_ns ? now - l->trig_ns : 0;
        l->qmp[l->n] = ls_colo_dm_state(op, &dm) == 0 ? dm.ns : 0;
        /* The secondary wrote SVM_RESUMED once its QEMU ran: its time is in. */
        l->sdm[l->n] = ls_colo_dm_state(l->secondary, &dm) == 0 ? dm.ns : 0;
        l->n++;
    }
    l->last_ns = now;
    l->trig_ns = 0;
    if (l->then && c->number >= 2 && wants(l->then))
        ask(l->then);
    if (l->n == l->want)
        ls_op_cancel(op);
}

/* The secondary's report of checkpoint N carries its guest's pause at
 * checkpoint N - 1 (the guest starts after the report): kept from N - 1 = 2. */
static void on_secondary_checkpoint(struct ls_op *op, const struct ls_colo_checkpoint *c,
                                    void *data)
{
    struct leg *l = data;
    if (c->number >= 3 && l->sn < l->want)
        l->spause[l->sn++] = c->pause_ns;
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

/* Start a leg's guest and its two roles; leg_end() collects them. */
static void leg_start(struct bench_host *h, struct leg *l, enum ls_device_model dmk,
                      uint64_t rate)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_create_args ca = { .type = LS_GUEST_HVM, .vcpus = 1, .memory_kib = 16384,
                                     .seed = 7, .populate = true, .device_model = dmk };
    if (ls_sim_create(h->be, &ca, &l->dom, &e) < 0)
        bench_die("creating the %s guest: %s", l->name, e.msg);
    struct ls_sim_workload w = { .rate = rate, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 3 };
    if (ls_sim_set_workload(h->be, l->dom, &w, &e) < 0)
        bench_die("its workload: %s", e.msg);
    if (dmk == LS_DM_QEMU)
        cont_qemu(h->ctx, l->dom);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->sv) < 0)
        bench_die("socketpair: %s", strerror(errno));
    struct ls_colo_secondary_opts so = { .recv_fd = l->sv[1], .send_fd = l->sv[1],
                                         .mode = LS_COLO_MODE_COLO, .cb_data = l,
                                         .on_checkpoint = on_secondary_checkpoint };
    struct ls_colo_primary_opts po = { .domid = l->dom, .send_fd = l->sv[0],
                                       .recv_fd = l->sv[0], .mode = LS_COLO_MODE_COLO,
                                       .interval_ms = 3600000,   /* on_turn asks them */
                                       .on_checkpoint = on_primary_checkpoint, .cb_data = l };
    if (ls_colo_secondary_start(h->ctx, &so, on_done, l, &l->secondary, &e) < 0 ||
        ls_colo_primary_start(h->ctx, &po, on_done, l, &l->primary, &e) < 0)
        bench_die("starting the %s run: %s", l->name, e.msg);
    l->ops_left = 2;
}

static void leg_end(struct bench_host *h, struct leg *l)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (l->prc < 0 || l->src < 0 || l->n < l->want)
        bench_die("the %s run ended after %u checkpoints: primary %s / secondary %s", l->name,
                  l->n, l->perr, l->serr);
    ls_op_free(l->primary);
    ls_op_free(l->secondary);
    close(l->sv[0]);
    close(l->sv[1]);
    ls_domain_destroy(h->ctx, l->dom, &e);
}

/* ---- the network output (issue 16): colo-compare against frames sent straight on ---- */

#define NET_EVERY 10u            /* a frame every 10 writes */
#define NET_MAX_FRAMES (1u << 21)

/* The world: a SOCK_SEQPACKET listener whose frames a thread timestamps by seq. */
struct world {
    char path[100];
    int lfd;
    pthread_t thread;
    uint64_t *arrival;           /* [seq]: CLOCK_MONOTONIC ns, 0 = not seen */
    _Atomic uint64_t frames, dups;
    atomic_bool stop;
};

static void *world_main(void *arg)
{
    struct world *w = arg;
    struct pollfd p[8] = { { .fd = w->lfd, .events = POLLIN } };
    int n = 1;
    while (!atomic_load(&w->stop)) {
        if (poll(p, (nfds_t)n, 50) <= 0)
            continue;
        if (p[0].revents && n < 8) {
            int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
        }
        for (int i = 1; i < n; i++) {
            if (!p[i].revents)
                continue;
            uint8_t f[256];
            struct ls_sim_frame fr;
            ssize_t r = recv(p[i].fd, f, sizeof(f), MSG_DONTWAIT);
            uint64_t now = bench_now_ns();
            if (r <= 0) {
                if (r == 0)
                    p[i].fd = -p[i].fd - 1;   /* closed: poll ignores it from now on */
                continue;
            }
            if (ls_sim_frame_parse(f, (size_t)r, &fr) == 0 && fr.seq < NET_MAX_FRAMES) {
                if (w->arrival[fr.seq])
                    atomic_fetch_add(&w->dups, 1);
                else
                    w->arrival[fr.seq] = now;
                atomic_fetch_add(&w->frames, 1);
            }
        }
    }
    for (int i = 1; i < n; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    return NULL;
}

static void world_open(struct world *w, const char *dir, const char *name)
{
    memset(w, 0, sizeof(*w));
    if ((size_t)snprintf(w->path, sizeof(w->path), "%s/%s.sock", dir, name) >= sizeof(w->path))
        bench_die("the world's socket path under %s is too long", dir);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", w->path);
    w->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (w->lfd < 0 || bind(w->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(w->lfd, 8) < 0)
        bench_die("the world socket %s: %s", w->path, strerror(errno));
    w->arrival = calloc(NET_MAX_FRAMES, sizeof(uint64_t));
    if (!w->arrival || pthread_create(&w->thread, NULL, world_main, w) != 0)
        bench_die("the world's reader");
}

static void world_close(struct world *w)
{
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    close(w->lfd);
    unlink(w->path);
    free(w->arrival);
}

/* A guest whose frames are not replicated: this process forwards them straight
 * from its network to the world (the baseline path). */
struct direct {
    int in, out;
    pthread_t thread;
    atomic_bool stop;
};

static void *direct_main(void *arg)
{
    struct direct *d = arg;
    while (!atomic_load(&d->stop)) {
        struct pollfd p = { .fd = d->in, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
            continue;
        uint8_t f[256];
        ssize_t r = recv(d->in, f, sizeof(f), 0);
        if (r <= 0)
            break;
        if (send(d->out, f, (size_t)r, MSG_NOSIGNAL) != r)
            break;
    }
    return NULL;
}

struct net_leg {
    const char *name;
    unsigned ppm, ms, interval_ms;
    uint64_t rate;               /* writes/s: rate / NET_EVERY frames/s */
    /* results */
    struct ls_colo_net_stats st;
    double secs;
    uint64_t ns_set;             /* when the guests' writing started (their pace's origin) */
    int ops_left, prc, src;
    char perr[256], serr[256];
    struct ls_op *primary;
    struct ls_backend *be;
    uint64_t nondet;             /* nondeterministic frames both guests sent */
    uint32_t replica;
    bool replica_seen;
};

static void net_on_done(struct ls_op *op, int rc, const char *errmsg, void *data)
{
    struct net_leg *l = data;
    bool primary = op == l->primary;
    snprintf(primary ? l->perr : l->serr, sizeof(l->perr), "%s", errmsg ? errmsg : "");
    *(primary ? &l->prc : &l->src) = rc;
    l->ops_left--;
}

/* The replica's network and workload, as the primary's guest's (same seed), at
 * rate 0 until the measured window starts. */
static void net_on_secondary_checkpoint(struct ls_op *op, const struct ls_colo_checkpoint *c,
                                        void *data)
{
    struct net_leg *l = data;
    if (c->number != 1)
        return;
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_net n = { .every = NET_EVERY, .nondet_ppm = l->ppm };
    struct ls_sim_workload w = { .rate = 0, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 11 };
    if (ls_sim_set_net(l->be, c->domid, &n, &e) < 0 || ls_sim_set_workload(l->be, c->domid, &w, &e) < 0)
        bench_die("the replica's network and workload: %s", e.msg);
    l->replica = c->domid;
    l->replica_seen = true;
}

static uint32_t net_guest(struct bench_host *h, unsigned ppm)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_create_args ca = { .type = LS_GUEST_PV, .vcpus = 1, .memory_kib = 8192,
                                     .seed = 11, .populate = true };
    uint32_t dom;
    struct ls_sim_net n = { .every = NET_EVERY, .nondet_ppm = ppm };
    struct ls_sim_workload w = { .rate = 0, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 11 };
    if (ls_sim_create(h->be, &ca, &dom, &e) < 0 || ls_sim_set_net(h->be, dom, &n, &e) < 0 ||
        ls_sim_set_workload(h->be, dom, &w, &e) < 0)
        bench_die("a guest with a network: %s", e.msg);
    return dom;
}

static void set_rate(struct bench_host *h, uint32_t dom, uint64_t rate)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_workload w = { .rate = rate, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 11 };
    if (ls_sim_set_workload(h->be, dom, &w, &e) < 0)
        bench_die("a guest's rate: %s", e.msg);
}

/* Latency of each frame seen: its arrival less the moment its write was due by
 * the guest's pace (the writes started at ns_set, rate a second, and frame s
 * is write (s + 1) * NET_EVERY). Medians and p99 in *med, *p99 (ms). */
static unsigned latencies(const struct world *w, uint64_t ns_set, uint64_t rate, uint64_t upto,
                          double *med, double *p99)
{
    uint64_t *d = malloc(upto * sizeof(uint64_t));
    unsigned n = 0;
    for (uint64_t s = 0; d && s < upto; s++) {
        uint64_t due = ns_set + (uint64_t)((double)((s + 1) * NET_EVERY) * 1e9 / (double)rate);
        if (w->arrival[s])
            d[n++] = w->arrival[s] > due ? w->arrival[s] - due : 0;
    }
    *med = bench_median_ms(d, n);
    *p99 = n ? (double)d[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e6 : 0;
    free(d);
    return n;
}

/* One COLO pair of guests with a network (plus, with direct, a third guest
 * whose frames go straight to a world of their own), writing for l->ms. */
static void run_net_leg(struct bench_host *h, const char *dir, struct net_leg *l,
                        struct world *cw, struct world *dw)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    l->be = h->be;
    uint32_t dom = net_guest(h, l->ppm), plain = 0;
    struct direct d = { .in = -1, .out = -1 };
    if (dw) {
        plain = net_guest(h, 0);
        if (ls_sim_net_attach(h->be, plain, &d.in, &e) < 0)
            bench_die("attaching to a guest's network: %s", e.msg);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", dw->path);
        d.out = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (d.out < 0 || connect(d.out, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            pthread_create(&d.thread, NULL, direct_main, &d) != 0)
            bench_die("the direct path: %s", strerror(errno));
    }
    char listen[160];
    snprintf(listen, sizeof(listen), "unix:%s/relay.sock", dir);
    struct ls_colo_net_opts pn = { .world = cw->path, .listen = listen };
    struct ls_colo_net_opts sn = { .world = cw->path, .peer = listen };
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        bench_die("socketpair: %s", strerror(errno));
    struct ls_colo_secondary_opts so = { .recv_fd = sv[1], .send_fd = sv[1],
                                         .mode = LS_COLO_MODE_COLO, .cb_data = l,
                                         .on_checkpoint = net_on_secondary_checkpoint };
    struct ls_colo_primary_opts po = { .domid = dom, .send_fd = sv[0], .recv_fd = sv[0],
                                       .mode = LS_COLO_MODE_COLO, .interval_ms = l->interval_ms };
    struct ls_op *sop;
    if (ls_colo_secondary_start_net(h->ctx, &so, &sn, net_on_done, l, &sop, &e) < 0 ||
        ls_colo_primary_start_net(h->ctx, &po, &pn, net_on_done, l, &l->primary, &e) < 0)
        bench_die("starting the %s run: %s", l->name, e.msg);
    l->ops_left = 2;
    /* The window starts once the replica exists: all three guests start writing
     * at one moment, the pace's origin of every frame. */
    while (!l->replica_seen && l->ops_left == 2)
        uv_run(&h->loop, UV_RUN_ONCE);
    if (l->ops_left < 2)
        bench_die("the %s run ended before its first checkpoint: %s / %s", l->name, l->perr,
                  l->serr);
    l->ns_set = bench_now_ns();
    set_rate(h, dom, l->rate);
    set_rate(h, l->replica, l->rate);
    if (dw)
        set_rate(h, plain, l->rate);
    uint64_t t0 = bench_now_ns();
    while (l->ops_left == 2 && bench_now_ns() - t0 < (uint64_t)l->ms * 1000000u)
        uv_run(&h->loop, UV_RUN_NOWAIT), usleep(1000);
    l->secs = (double)(bench_now_ns() - t0) / 1e9;
    set_rate(h, dom, 0);
    if (dw)
        set_rate(h, plain, 0);
    struct ls_sim_net gn, rn;
    if (ls_sim_get_net(h->be, dom, &gn, &e) == 0 && ls_sim_get_net(h->be, l->replica, &rn, &e) == 0)
        l->nondet = gn.nondet + rn.nondet;
    ls_colo_net_stats(l->primary, &l->st);
    ls_op_cancel(l->primary);
    while (l->ops_left > 0)
        uv_run(&h->loop, UV_RUN_ONCE);
    if (l->prc < 0)
        bench_die("the %s run failed: primary %s / secondary %s", l->name, l->perr, l->serr);
    if (dw) {
        atomic_store(&d.stop, true);
        pthread_join(d.thread, NULL);
        close(d.in);
        close(d.out);
        ls_domain_destroy(h->ctx, plain, &e);
    }
    ls_op_free(l->primary);
    ls_op_free(sop);
    close(sv[0]);
    close(sv[1]);
    ls_domain_destroy(h->ctx, dom, &e);
}

static void run_net(struct bench_host *h, const char *work, unsigned secs)
{
    char dir[160];
    snprintf(dir, sizeof(dir), "%s/net", work);
    if (mkdir(dir, 0700) < 0)
        bench_die("mkdir %s: %s", dir, strerror(errno));
    /* 1. Frames through the comparator against the same frames straight to the
     *    world: a moderate rate for the latency, a high one for the rate. */
    static const uint64_t rates[2] = { 20000, 1000000 };   /* 2,000 and 100,000 frames/s offered */
    printf("\nCOLO network output: frames of 82 bytes (Ethernet/IPv4/UDP), deterministic, "
           "through QEMU 7.2's colo-compare (lockstep's proxy, the secondary's relay) vs "
           "straight from a guest to the world, %u s each, no checkpoint meanwhile\n", secs);
    for (int i = 0; i < 2; i++) {
        struct world cw, dw;
        world_open(&cw, dir, "compared");
        world_open(&dw, dir, "direct");
        struct net_leg l = { .name = "throughput", .ppm = 0, .ms = secs * 1000,
                             .interval_ms = 600000, .rate = rates[i] };
        run_net_leg(h, dir, &l, &cw, &dw);
        double offered = (double)rates[i] / NET_EVERY;
        uint64_t upto = (uint64_t)(offered * l.secs);
        double cm, cp, dm, dp;
        unsigned cn = latencies(&cw, l.ns_set, rates[i], upto, &cm, &cp);
        unsigned dn = latencies(&dw, l.ns_set, rates[i], upto, &dm, &dp);
        double crate = (double)cn / l.secs, drate = (double)dn / l.secs;
        printf("  offered %6.0f frames/s: compared %8.0f/s, direct %8.0f/s (x%.2f)", offered,
               crate, drate, crate / (drate > 0 ? drate : 1));
        /* A guest that cannot keep its pace (the direct path short of the offer)
         * makes the pace-based latency its own lag: then only the rates count. */
        if (drate > 0.95 * offered)
            printf("; latency median %.3f ms (p99 %.3f) vs %.3f ms (p99 %.3f): +%.3f ms per "
                   "released frame (x%.2f)", cm, cp, dm, dp, cm - dm, cm / (dm > 0 ? dm : 1));
        else
            printf("; the guests top out below the offer (their own writes), so this is the "
                   "most they send; latency not measured");
        printf("; %" PRIu64 " divergences, %" PRIu64 " twice in the world\n", l.st.divergences,
               atomic_load(&cw.dups));
        world_close(&cw);
        world_close(&dw);
    }
    /* 2. Checkpoints the comparator causes, by nondeterminism, at libxl's
     *    5 s interval (so a periodic one is rare in the window). */
    static const unsigned ppms[3] = { 0, 1000, 10000 };
    printf("COLO checkpoints caused per second, 2,000 frames/s, interval 5000 ms, %u s each\n",
           secs * 2);
    for (int i = 0; i < 3; i++) {
        struct world cw;
        world_open(&cw, dir, "world");
        struct net_leg l = { .name = "nondeterminism", .ppm = ppms[i], .ms = secs * 2000,
                             .interval_ms = 5000, .rate = 20000 };
        run_net_leg(h, dir, &l, &cw, NULL);
        double per_s = (double)l.st.checkpoints_divergence / l.secs;
        printf("  nondeterminism %5.2f%%: %6.2f checkpoints/s by divergence (%u), %u periodic; "
               "%" PRIu64 " nondeterministic frames (both guests), %.2f checkpoints each; "
               "%" PRIu64 " frames released\n", ppms[i] / 10000.0, per_s,
               l.st.checkpoints_divergence, l.st.checkpoints_periodic, l.nondet,
               l.nondet ? (double)l.st.checkpoints_divergence / (double)l.nondet : 0.0,
               l.st.released);
        world_close(&cw);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The median over rounds of the QEMU checkpoint's downtime less the stand-in's
 * just before it (ms): what the device state adds, the load of each moment
 * taken out. Before bench_median_ms sorts the arrays. */
static double paired_share_ms(const uint64_t *base, unsigned nb, const uint64_t *qemu,
                              unsigned nq)
{
    unsigned n = nb < nq ? nb : nq;
    int64_t *d = calloc(n ? n : 1, sizeof(*d));
    if (!d)
        bench_die("out of memory");
    for (unsigned k = 0; k < n; k++)
        d[k] = (int64_t)qemu[k] - (int64_t)base[k];
    qsort(d, n, sizeof(*d), cmp_i64);
    double ms = n ? (double)d[n / 2] / 1e6 : 0;
    free(d);
    return ms;
}

static double p90_ms(uint64_t *ns, unsigned n)   /* after bench_median_ms sorted ns */
{
    return n ? (double)ns[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1] / 1e6 : 0;
}

int main(int argc, char **argv)
{
    unsigned want = 20, interval_ms = 500, net_secs = 3;
    uint64_t rate = 1000;
    bool net_only = false, no_net = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--net-only")) {
            net_only = true;
            continue;
        }
        if (!strcmp(argv[i], "--no-net")) {
            no_net = true;
            continue;
        }
        if (!strcmp(argv[i], "--net-seconds") && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            net_secs = (unsigned)atoi(argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "--checkpoints") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            want = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--interval") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            interval_ms = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dirty-rate") && i + 1 < argc && atoi(argv[i + 1]) >= 0)
            rate = (uint64_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_colo [--checkpoints N] [--interval MS] "
                    "[--dirty-rate PAGES/S] [--net-only | --no-net] [--net-seconds N]\n");
            return 2;
        }
    }
    bench_prog = "bench_colo";
    /* Both roles of each pair run in this process: each holds threadpool threads
     * for its waits, and each proxy one for its pump (libuv's default 4 is one
     * role's need), so give them room before the pool starts. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
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
    for (int i = 0; i < 2 && !net_only; i++) {
        struct leg *l = &legs[i];
        l->want = want;
        l->pause = calloc(want, sizeof(uint64_t));
        l->cycle = calloc(want, sizeof(uint64_t));
        l->qmp = calloc(want, sizeof(uint64_t));
        l->spause = calloc(want, sizeof(uint64_t));
        l->sdm = calloc(want, sizeof(uint64_t));
        if (!l->pause || !l->cycle || !l->qmp || !l->spause || !l->sdm)
            bench_die("out of memory");
        leg_start(&h, l, i ? LS_DM_QEMU : LS_DM_STANDIN, rate);
    }
    uv_timer_t round;
    if (!net_only) {
        legs[0].then = &legs[1];
        uv_timer_init(&h.loop, &round);
        round.data = legs;
        uv_timer_start(&round, on_round, interval_ms, interval_ms);
        while (legs[0].ops_left > 0 || legs[1].ops_left > 0)
            uv_run(&h.loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&round, NULL);
        uv_run(&h.loop, UV_RUN_NOWAIT);
        for (int i = 0; i < 2; i++)
            leg_end(&h, &legs[i]);
    }
    if (net_only)
        goto net;
    printf("COLO checkpoints of a 16 MiB HVM guest at %llu dirty pages/s, every %u ms, %u "
           "each (after the first), medians (p90)\n", (unsigned long long)rate, interval_ms, want);
    double pause[2], cost[2], spause[2];
    double share = paired_share_ms(legs[0].pause, legs[0].n, legs[1].pause, legs[1].n);
    double sshare = paired_share_ms(legs[0].spause, legs[0].sn, legs[1].spause, legs[1].sn);
    for (int i = 0; i < 2; i++) {
        struct leg *l = &legs[i];
        pause[i] = bench_median_ms(l->pause, l->n);
        double pp = p90_ms(l->pause, l->n);
        cost[i] = bench_median_ms(l->cycle, l->n);
        double cp = p90_ms(l->cycle, l->n);
        printf("  %-9s downtime (suspend -> resume) %7.2f ms (%7.2f)   checkpoint (asked -> "
               "acknowledged) %7.2f ms (%7.2f)%s\n", l->name, pause[i], pp, cost[i], cp,
               i ? "" : "  (baseline)");
    }
    for (int i = 0; i < 2; i++) {
        struct leg *l = &legs[i];
        spause[i] = bench_median_ms(l->spause, l->sn);
        double sp = p90_ms(l->spause, l->sn);
        double sd = bench_median_ms(l->sdm, l->n);
        printf("  %-9s secondary's downtime (its guest's suspend -> start) %7.2f ms (%7.2f)   "
               "its device state (load, cont) %7.2f ms%s\n", l->name, spause[i], sp, sd,
               i ? "" : "  (baseline)");
    }
    printf("  QEMU over stand-in, secondary: downtime x%.2f; the device state's share of its "
           "downtime %.2f ms (medians' difference), %.2f ms (median of each round's "
           "difference)\n", spause[1] / (spause[0] > 0 ? spause[0] : 1), spause[1] - spause[0],
           sshare);
    double q = bench_median_ms(legs[1].qmp, legs[1].n);
    printf("  QEMU over stand-in: downtime x%.2f, checkpoint x%.2f; the device state's share "
           "of the downtime %.2f ms (medians' difference), %.2f ms (median of each round's "
           "difference) (target <= 5); the primary's QMP (stop, save, cont) %.2f ms\n",
           pause[1] / (pause[0] > 0 ? pause[0] : 1), cost[1] / (cost[0] > 0 ? cost[0] : 1),
           pause[1] - pause[0], share, q);
net:
    if (!no_net)
        run_net(&h, work, net_secs);
    for (int i = 0; i < 2; i++) {
        free(legs[i].pause);
        free(legs[i].cycle);
        free(legs[i].qmp);
        free(legs[i].spause);
        free(legs[i].sdm);
    }
    bench_host_close(&h, true);
    bench_remove_tree(work);
    return 0;
}
