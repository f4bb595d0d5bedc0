/* bench/bench_colo_disk.c - what COLO disk replication costs a guest's disk.
 *
 * One private sim daemon, two HVM guests (stand-in device models), each with
 * a 64 MiB raw disk served by its block QEMU (Debian's QEMU 7.2). The guest's
 * vCPU owes one 64 KiB disk write per memory write; a burst of N vCPU writes
 * replayed at once on the paused guest owes N disk writes, and the time the
 * daemon's disk writer (qemu-io over QMP, in order) takes to make them all
 * gives the disk's throughput:
 *   plain       guest C's disk alone (the baseline);
 *   replicated  guest A's, whose block QEMU is a COLO primary (its quorum's
 *               children.1 a replication NBD client) with B's a COLO
 *               secondary exporting over a unix socket (the QMP sequence of
 *               states/colo_disk.def, libxl's order);
 * in turn, R rounds each, medians.
 * Then xen-colo-do-checkpoint on each side, N times, with W disk writes of
 * the guest between two (the secondary empties its active and hidden
 * images at each): medians and p90s. Ratios against the plain leg.
 * Benchmarks do not assert: the exit status is 0 unless a run could not run.
 *
 * The checkpoint loop writes, then checkpoints the primary, then the
 * secondary, never overlapping: QEMU 7.2's secondary aborts ("First cluster
 * in emptied image is in use") when primary writes reach it during its
 * xen-colo-do-checkpoint.
 *
 *   bench_colo_disk [--burst N] [--rounds R] [--checkpoints N] [--writes W]
 *   (LOCKSTEP_SIMD: the daemon binary)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "lockstep/sim.h"

#define DISK_MIB 64
#define BLOCK 65536u

struct guest {
    uint32_t dom;
    char image[512];
    struct ls_sim_disks d;        /* its block QEMU's sockets */
};

static void guest_make(struct bench_host *h, struct guest *g, const char *dir, const char *name,
                       uint64_t seed)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    snprintf(g->image, sizeof(g->image), "%s/%s.raw", dir, name);
    FILE *f = fopen(g->image, "w");
    if (!f || ftruncate(fileno(f), (off_t)DISK_MIB << 20) < 0)
        bench_die("%s: %s", g->image, strerror(errno));
    fclose(f);
    struct ls_sim_create_args ca = { .type = LS_GUEST_HVM, .vcpus = 1, .memory_kib = 16384,
                                     .seed = seed, .populate = true,
                                     .device_model = LS_DM_STANDIN };
    if (ls_sim_create(h->be, &ca, &g->dom, &e) < 0 ||
        ls_domain_pause(h->ctx, g->dom, &e) < 0 ||
        ls_sim_attach_disk(h->be, g->dom, g->image, LS_SIM_DISK_RAW, &e) < 0 ||
        ls_sim_get_disks(h->be, g->dom, &g->d, &e) < 0)
        bench_die("guest %s: %s", name, e.msg);
}

/* One QMP command (a JSON object's text) on a fresh connection. */
static void qmp(const char *sock, const char *msg)
{
    struct bench_qmp_mini *m = malloc(sizeof(*m));
    if (!m)
        bench_die("out of memory");
    int rc = bench_mini_open(m, sock, 5000);
    if (rc == 0)
        rc = bench_mini_exec(m, msg, strlen(msg));
    /* HMP prints its errors into "return": drive_add answers "OK" or "". */
    if (rc == 0 && strstr(msg, "human-monitor-command") && !strstr(m->buf, "\"return\": \"\"") &&
        !strstr(m->buf, "\"return\": \"OK"))
        rc = -EREMOTEIO;
    bench_mini_close(m);
    free(m);
    if (rc < 0)
        bench_die("%s through %s: %s", msg, sock, strerror(-rc));
}

/* The guest owes n disk writes at once (n vCPU writes replayed on the paused
 * guest, one disk write each): writes per second until all are in QEMU. */
static double disk_rate(struct bench_host *h, struct guest *g, unsigned n)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_disks cfg = { .every = 1, .block = BLOCK }, d;
    struct ls_sim_workload w;
    if (ls_sim_set_disks(h->be, g->dom, &cfg, &e) < 0 ||
        ls_sim_get_workload(h->be, g->dom, &w, &e) < 0)
        bench_die("guest %u's disk: %s", g->dom, e.msg);
    w = (struct ls_sim_workload){ .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 3,
                                  .writes = w.writes + n };
    uint64_t t0 = bench_now_ns();
    if (ls_sim_set_workload(h->be, g->dom, &w, &e) < 0)
        bench_die("guest %u's writes: %s", g->dom, e.msg);
    do {
        usleep(2000);
        if (ls_sim_get_disks(h->be, g->dom, &d, &e) < 0)
            bench_die("disk stats: %s", e.msg);
        if (bench_now_ns() - t0 > 120 * 1000000000ull)
            bench_die("guest %u: %" PRIu64 " of %" PRIu64 " disk writes in 120 s", g->dom,
                      d.written, d.owed);
    } while (d.written < d.owed);
    uint64_t t1 = bench_now_ns();
    if (d.failed)
        bench_die("QEMU refused %u disk writes: %s", d.failed, d.last_error);
    return n / ((double)(t1 - t0) / 1e9);
}

static void replicate(const struct guest *pri, const struct guest *sec, const char *dir)
{
    char cmd[2400], nbd[560], active[560], hidden[560];
    snprintf(nbd, sizeof(nbd), "%s/nbd.sock", dir);
    snprintf(active, sizeof(active), "%s/active.qcow2", dir);
    snprintf(hidden, sizeof(hidden), "%s/hidden.qcow2", dir);
    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s %dM && qemu-img create -q -f qcow2 "
             "%s %dM", active, DISK_MIB, hidden, DISK_MIB);
    if (system(cmd) != 0)
        bench_die("%s failed", cmd);
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"human-monitor-command\", \"arguments\": "
             "{\"command-line\": \"drive_add buddy if=none,id=lsdisk0-top,driver=replication,"
             "mode=secondary,top-id=lsdisk0-top,file.driver=qcow2,file.file.filename=%s,"
             "file.backing.driver=qcow2,file.backing.file.filename=%s,"
             "file.backing.backing=lsdisk0\"}}", active, hidden);
    qmp(sec->d.qmp_path, cmd);
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"nbd-server-start\", \"arguments\": {\"addr\": "
             "{\"type\": \"unix\", \"data\": {\"path\": \"%s\"}}}}", nbd);
    qmp(sec->d.qmp_path, cmd);
    qmp(sec->d.qmp_path, "{\"execute\": \"nbd-server-add\", \"arguments\": {\"device\": "
        "\"lsdisk0\", \"writable\": true}}");
    qmp(sec->d.qmp_path, "{\"execute\": \"xen-set-replication\", \"arguments\": "
        "{\"enable\": true, \"primary\": false}}");
    snprintf(cmd, sizeof(cmd), "{\"execute\": \"human-monitor-command\", \"arguments\": "
             "{\"command-line\": \"drive_add -n buddy driver=replication,mode=primary,"
             "file.driver=nbd,file.server.type=unix,file.server.path=%s,file.export=lsdisk0,"
             "node-name=lsdisk0-nbd\"}}", nbd);
    qmp(pri->d.qmp_path, cmd);
    qmp(pri->d.qmp_path, "{\"execute\": \"x-blockdev-change\", \"arguments\": {\"parent\": "
        "\"lsdisk0\", \"node\": \"lsdisk0-nbd\"}}");
    qmp(pri->d.qmp_path, "{\"execute\": \"xen-set-replication\", \"arguments\": "
        "{\"enable\": true, \"primary\": true}}");
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double p90_ms(const uint64_t *sorted, unsigned n)
{
    return n ? (double)sorted[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1] / 1e6 : 0;
}

int main(int argc, char **argv)
{
    bench_prog = "bench_colo_disk";
    unsigned burst = 300, rounds = 3, checkpoints = 200, writes = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--burst") == 0)
            burst = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--checkpoints") == 0)
            checkpoints = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--writes") == 0)
            writes = (unsigned)atoi(argv[i + 1]);
        else
            bench_die("usage: bench_colo_disk [--burst N] [--rounds R] [--checkpoints N] "
                      "[--writes W]");
    }
    if (burst < 1 || rounds < 1 || rounds > 100 || checkpoints < 1 || checkpoints > 100000)
        bench_die("--burst >= 1, --rounds 1..100, --checkpoints 1..100000");
    char dir[512];
    bench_workdir(dir, sizeof(dir), "colo-disk");
    struct bench_host h;
    bench_host_open(&h, dir);
    struct guest a = { 0 }, b = { 0 }, c = { 0 };
    guest_make(&h, &a, dir, "primary", 7);
    guest_make(&h, &b, dir, "secondary", 8);
    guest_make(&h, &c, dir, "plain", 7);
    replicate(&a, &b, dir);
    /* The same bursts on the plain guest and on the replicated one, in turn. */
    double *pr = calloc(rounds, sizeof(*pr)), *rr = calloc(rounds, sizeof(*rr));
    if (!pr || !rr)
        bench_die("out of memory");
    for (unsigned i = 0; i < rounds; i++) {
        pr[i] = disk_rate(&h, &c, burst);
        rr[i] = disk_rate(&h, &a, burst);
    }
    double plain = median(pr, rounds), repl = median(rr, rounds);
    printf("disk writes of %u KiB through QEMU (qemu-io over QMP), bursts of %u, median of %u:\n",
           BLOCK / 1024, burst, rounds);
    printf("  plain        %8.0f writes/s  %7.1f MiB/s\n", plain, plain * BLOCK / 1048576.0);
    printf("  replicated   %8.0f writes/s  %7.1f MiB/s   ratio %.2f (target >= 0.7)\n", repl,
           repl * BLOCK / 1048576.0, plain > 0 ? repl / plain : 0);
    free(pr);
    free(rr);

    /* xen-colo-do-checkpoint per side, W guest writes before each. */
    uint64_t *pns = calloc(checkpoints, sizeof(*pns)), *sns = calloc(checkpoints, sizeof(*sns));
    struct bench_qmp_mini *pm = malloc(sizeof(*pm)), *sm = malloc(sizeof(*sm));
    if (!pns || !sns || !pm || !sm)
        bench_die("out of memory");
    static const char ckpt[] = "{\"execute\": \"xen-colo-do-checkpoint\"}";
    if (bench_mini_open(pm, a.d.qmp_path, 5000) < 0 || bench_mini_open(sm, b.d.qmp_path, 5000) < 0)
        bench_die("QMP to the block QEMUs");
    for (unsigned i = 0; i < checkpoints; i++) {
        for (unsigned w = 0; w < writes; w++) {
            char line[200];
            int n = snprintf(line, sizeof(line), "{\"execute\": \"human-monitor-command\", "
                             "\"arguments\": {\"command-line\": \"qemu-io lsdisk0 \\\"write -P "
                             "0x%02x %u %u\\\"\"}}", 1 + (i + w) % 255,
                             ((i * 7 + w * 13) % (DISK_MIB * 16)) * BLOCK, BLOCK);
            if (bench_mini_exec(pm, line, (size_t)n) < 0)
                bench_die("a guest write through QMP");
        }
        uint64_t t0 = bench_now_ns();
        int rc = bench_mini_exec(pm, ckpt, sizeof(ckpt) - 1);
        uint64_t t1 = bench_now_ns();
        if (rc == 0)
            rc = bench_mini_exec(sm, ckpt, sizeof(ckpt) - 1);
        uint64_t t2 = bench_now_ns();
        if (rc < 0)
            bench_die("xen-colo-do-checkpoint %u: %s", i, strerror(-rc));
        pns[i] = t1 - t0;
        sns[i] = t2 - t1;
    }
    bench_mini_close(pm);
    bench_mini_close(sm);
    double pmed = bench_median_ms(pns, checkpoints), smed = bench_median_ms(sns, checkpoints);
    printf("xen-colo-do-checkpoint, %u checkpoints, %u writes of %u KiB before each:\n",
           checkpoints, writes, BLOCK / 1024);
    printf("  primary      median %6.3f ms  p90 %6.3f ms\n", pmed, p90_ms(pns, checkpoints));
    printf("  secondary    median %6.3f ms  p90 %6.3f ms  (%.1fx the primary's)\n", smed,
           p90_ms(sns, checkpoints), pmed > 0 ? smed / pmed : 0);
    free(pns);
    free(sns);
    free(pm);
    free(sm);
    struct ls_errbuf e;
    ls_err_clear(&e);
    ls_domain_destroy(h.ctx, a.dom, &e);
    ls_domain_destroy(h.ctx, b.dom, &e);
    ls_domain_destroy(h.ctx, c.dom, &e);
    bench_host_close(&h, true);
    bench_remove_tree(dir);
    return 0;
}
