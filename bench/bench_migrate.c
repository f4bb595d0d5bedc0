/* bench/bench_migrate.c - live migration of a sim guest over loopback TCP.
 *
 * For each leg (a dirty rate and pattern of the guest's own vCPU), a fresh
 * guest (1 GiB by default) is created on a source host (its own sim daemon),
 * its zero pages made real frames before timing (as bench_stream does), and
 * migrated with the library (ls_migrate_start, Xen's default precopy policy,
 * no digests: they are test instruments, a full read of guest memory at the
 * suspend and again before the resume) to `lockstep migrate-receive` in
 * another process on a destination host (a second daemon). Reported per leg:
 *   total      ls_migrate_start to the sender's done (banner to report);
 *   rounds     live pre-copy rounds, then the final one;
 *   pages      pages sent in all rounds; bytes: what the sender wrote
 *              (/proc/self/io wchar: records, headers and pages);
 *   MB/s       bytes / total;
 *   downtime   the source's suspend to the destination's unpause, from the
 *              two processes' CLOCK_MONOTONIC stamps;
 *   final      the final round's pages and the time they take at MB/s: the
 *              target is downtime <= that + 5 ms (+ 15 ms with a real QEMU,
 *              whose state is saved and loaded in the downtime: its start is
 *              not, the destination's standby QEMU starts with the stream);
 *   ratio      MB/s against a plain two-process copy of the same number of
 *              bytes over loopback TCP (4 MiB writes and reads), measured in
 *              the same run right after; target >= 0.8 at dirty rate 0; and
 *              against the same copy read into freshly allocated shared
 *              memory, which every receiver of a guest must populate (on a
 *              nested-virtualization VM that allocation, not the copy, is
 *              what bounds a receiver).
 * The destination's memory: a Xen host gives a new guest pages its heap
 * already holds. With LOCKSTEP_SIMD_MEMORY_POOL (scripts/bench.sh sets it),
 * the sim daemons do the same with the memory of the guests destroyed before
 * (backends/sim/mempool.h); the first migration to a host has none yet, and
 * allocates fresh memory. Rate 0 runs five times by default, which shows
 * both (each leg says which memory it had) and gives the throughput target a
 * best of five, each side, against the noise of a shared machine.
 *
 * The `tls` leg (dirty rate 0) runs the same migration over TLS 1.3
 * (tls:127.0.0.1, --tls-creds from a PKI test/tls/mkcerts.sh makes at the
 * start): the memory task seals pages into GnuTLS records on its own thread
 * (no kernel TLS, so no sendfile or splice) and the receiver opens them. Its
 * throughput is printed against the plain rate-0 legs of the same run, best
 * of each (target >= 0.7), over the whole migration and its page phase.
 *
 * Benchmarks do not assert: the exit status is 0 unless one could not run.
 *
 * The guest's device model is lockstep's in-process stand-in, so the figures
 * are the memory migration's; the `qemu` leg (dirty rate 0) gives the domain
 * its real QEMU, whose stop and state save on the source and start on the
 * state, check and cont on the destination all fall inside the downtime.
 *
 *   bench_migrate [--memory SIZE] [--legs 0,tls,0,tls,0,tls,0,0,5000,50000,hotset,qemu]
 *                 [--lockstep PATH]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <uv.h>

#include "common.h"

extern char **environ;

#define CHUNK (4u << 20)
#define DOWNTIME_SLACK_MS 5.0
#define DOWNTIME_SLACK_QEMU_MS 15.0
#define TARGET_RATIO 0.8
#define TLS_TARGET_RATIO 0.7

struct leg {
    const char *name;
    uint64_t rate;
    enum ls_sim_dirty_pattern pattern;
    unsigned hot;
    bool qemu;                 /* a real QEMU device model (else the stand-in) */
    bool tls;                  /* over TLS 1.3 (else plain TCP) */
};

static char pki[160];          /* test/tls/mkcerts.sh's output, for the tls legs */

/* ---- hosts -------------------------------------------------------------------- */

static char work[64], src_run[128], dst_run[128];
static struct bench_host src, dst;
/* Whether the hosts' guest memory is in 2 MiB pages, as their daemons say. */
static bool hosts_huge_pages;

/* Waits until the host's memory pool (LOCKSTEP_SIMD_MEMORY_POOL: the memory
 * of a destroyed guest allocated again in the background) has no refill
 * running, so that no leg times one; returns how many memory files domains
 * have taken from it so far. */
static uint32_t settle_pool(struct bench_host *h)
{
    struct ls_sim_pool_status ps = { 0 };
    if (bench_pool_settle(h, &ps) == 0)
        hosts_huge_pages = ps.huge_pages;
    return ps.taken;
}

/* ---- the receiver --------------------------------------------------------------- */

struct receiver {
    pid_t pid;
    double cpu_s;      /* its user + system time, once reaped */
    int out, err;      /* its stdout and stderr */
    int port;
};

static void spawn_receiver(const char *lockstep, bool tls, struct receiver *r)
{
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)
        bench_die("pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    posix_spawn_file_actions_adddup2(&fa, e[1], 2);
    char creds[200];
    snprintf(creds, sizeof(creds), "%s/good", pki);
    char *argv[] = { (char *)lockstep, "migrate-receive", "--listen",
                     tls ? "tls:127.0.0.1:0" : "tcp:127.0.0.1:0", "--no-digest", "--timeout",
                     "120", tls ? "--tls-creds" : NULL, creds, NULL };
    setenv("LOCKSTEP_RUNDIR", dst_run, 1);
    int rc = posix_spawn(&r->pid, lockstep, &fa, NULL, argv, environ);
    setenv("LOCKSTEP_RUNDIR", src_run, 1);   /* this process's sim calls go to the source */
    posix_spawn_file_actions_destroy(&fa);
    close(o[1]);
    close(e[1]);
    if (rc != 0)
        bench_die("cannot run %s: %s", lockstep, strerror(rc));
    r->out = o[0];
    r->err = e[0];
    char buf[512];
    size_t got = 0;
    for (;;) {
        struct pollfd p = { .fd = r->err, .events = POLLIN };
        if (poll(&p, 1, 30000) <= 0)
            bench_die("the receiver did not start listening");
        ssize_t n = read(r->err, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            bench_die("the receiver exited before listening");
        got += (size_t)n;
        buf[got] = '\0';
        char *l = strstr(buf, tls ? "listening on tls:127.0.0.1:" : "listening on tcp:127.0.0.1:");
        if (l && strchr(l, '\n')) {
            r->port = atoi(l + strlen("listening on tcp:127.0.0.1:"));
            return;
        }
    }
}

/* Waits for the receiver; returns its resumed_ns (0 if it did not resume). */
static uint64_t reap_receiver(struct receiver *r, char *outcome, size_t olen)
{
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while ((n = read(r->out, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    int st;
    struct rusage ru;
    wait4(r->pid, &st, 0, &ru);
    r->cpu_s = bench_cpu_s(&ru);
    close(r->out);
    close(r->err);
    uint64_t resumed = 0;
    char *p = strstr(buf, "resumed_ns ");
    if (p)
        resumed = strtoull(p + 11, NULL, 10);
    p = strstr(buf, "outcome ");
    snprintf(outcome, olen, "%.*s", p ? (int)strcspn(p + 8, ":") : 7, p ? p + 8 : "unknown");
    return resumed;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        bench_die("connecting to the receiver: %s", strerror(errno));
    /* as `lockstep migrate` sets up its connection (cli/cmd_migrate.c) */
    int one = 1, buf = 256 * 1024;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    return fd;
}

/* ---- the plain copy ---------------------------------------------------------------- */

/* bytes over loopback TCP from this process to a child, 4 MiB at a time.
 * fresh: the child reads into new shared memory (a memfd mapping, each 4 MiB
 * allocated just before it is read into, as the restore does) instead of
 * one reused buffer: the cost every receiver of a guest pays here. */
static double plain_copy_seconds(uint64_t bytes, bool fresh)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0)
        bench_die("plain copy: listen: %s", strerror(errno));
    /* cppcheck-suppress invalidFunctionArg ; fd -1 is what MAP_ANONYMOUS asks for */
    char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        bench_die("plain copy: mmap: %s", strerror(errno));
    memset(buf, 0x5a, CHUNK);
    pid_t child = fork();
    if (child == 0) {
        int c = accept(ls, NULL, NULL);
        ssize_t n;
        if (!fresh) {
            while ((n = read(c, buf, CHUNK)) > 0)
                ;
            _exit(0);
        }
        int mfd = memfd_create("bench-fresh", MFD_CLOEXEC);
        if (mfd < 0 || ftruncate(mfd, (off_t)bytes + CHUNK) < 0)
            _exit(1);
        char *mem = mmap(NULL, bytes + CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        if (mem == MAP_FAILED)
            _exit(1);
        for (uint64_t off = 0;;) {
            size_t want = bytes - off < CHUNK ? (size_t)(bytes - off) : CHUNK;
            if (!want)
                want = 1;
            (void)madvise(mem + off, CHUNK, MADV_POPULATE_WRITE);
            size_t got = 0;
            while (got < want && (n = read(c, mem + off + got, want - got)) > 0)
                got += (size_t)n;
            off += got;
            if (got < want)
                break;
        }
        _exit(0);
    }
    close(ls);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        bench_die("plain copy: connect: %s", strerror(errno));
    uint64_t t0 = bench_now_ns(), left = bytes;
    while (left) {
        size_t n = left > CHUNK ? CHUNK : (size_t)left;
        ssize_t w = write(fd, buf, n);
        if (w <= 0)
            bench_die("plain copy: write: %s", strerror(errno));
        left -= (uint64_t)w;
    }
    close(fd);
    waitpid(child, NULL, 0);   /* the reader has read it all */
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    munmap(buf, CHUNK);
    return secs;
}

/* ---- one leg ------------------------------------------------------------------------- */

/* The sender's progress, sampled every millisecond: when its first and its
 * last page bytes went out, to show where a leg's time went. */
struct sampler {
    uv_timer_t timer;
    struct ls_op *op;
    uint64_t first_ns, last_ns, last_done;
};

static void sample_progress(uv_timer_t *t)
{
    struct sampler *s = t->data;
    uint64_t done, total, now = bench_now_ns();
    ls_op_progress(s->op, &done, &total);
    if (done && !s->first_ns)
        s->first_ns = now;
    if (done != s->last_done) {
        s->last_done = done;
        s->last_ns = now;
    }
}

struct done_state { bool done; int rc; char msg[LS_ERRBUF_LEN]; struct sampler smp; };

static void on_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct done_state *d = data;
    uv_timer_stop(&d->smp.timer);
    uv_close((uv_handle_t *)&d->smp.timer, NULL);
    d->done = true;
    d->rc = rc;
    snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
}

/* The rate-0 legs without QEMU: the throughput target's, kept best of each side;
 * plain and TLS apart, with the best page phase rate (GB/s) of each. */
static struct {
    int runs;
    double best_secs, best_base, best_phase, best_cpu;
    uint64_t bytes;            /* what the sender wrote, the last run */
} rate0, rate0_tls;

static void run_leg(const struct leg *leg, uint64_t memory_kib, const char *lockstep)
{
    bench_host_clear(&src);
    bench_host_clear(&dst);
    settle_pool(&src);
    uint32_t dst_taken = settle_pool(&dst);
    uv_loop_t *loop = &src.loop;
    struct ls_ctx *ctx = src.ctx;
    struct ls_backend *be = src.be;
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_create_args ca = { .type = LS_GUEST_HVM, .vcpus = 2, .memory_kib = memory_kib,
                                     .seed = 42, .name = "bench", .populate = true,
                                     .device_model = leg->qemu ? LS_DM_QEMU : LS_DM_STANDIN };
    uint32_t domid;
    if (ls_sim_create(be, &ca, &domid, &e) < 0)
        bench_die("creating the guest: %s", e.msg);
    char why[256];
    if (bench_guest_populate(be, domid, why, sizeof(why)) < 0)
        bench_die("%s", why);
    struct ls_sim_workload w = { .rate = leg->rate, .pattern = leg->pattern,
                                 .hot_percent = leg->hot, .seed = 42 };
    if (ls_sim_set_workload(be, domid, &w, &e) < 0)
        bench_die("workload: %s", e.msg);
    usleep(100000);    /* the guest runs (and writes) before the migration starts */

    struct receiver r;
    spawn_receiver(lockstep, leg->tls, &r);
    int fd = connect_port(r.port);
    char creds[200];
    snprintf(creds, sizeof(creds), "%s/good", pki);
    struct ls_migrate_opts mo = { .domid = domid, .send_fd = fd, .recv_fd = fd,
                                  .timeout_ms = 120000, .no_digest = true };
    if (leg->tls)
        mo.tls = (struct ls_tls_opts){ .creds_dir = creds, .peer_name = "127.0.0.1" };
    struct done_state ds = { 0 };
    struct ls_op *op;
    uv_timer_init(loop, &ds.smp.timer);
    ds.smp.timer.data = &ds.smp;
    uv_timer_start(&ds.smp.timer, sample_progress, 1, 1);
    double cpu0 = bench_cpu_self_s();
    uint64_t w0 = bench_proc_field("/proc/self/io", "wchar"), t0 = bench_now_ns();
    if (ls_migrate_start(ctx, &mo, on_done, &ds, &op, &e) < 0)
        bench_die("migrate: %s", e.msg);
    ds.smp.op = op;   /* before the timer's first tick: that is in uv_run */
    uv_run(loop, UV_RUN_DEFAULT);
    uint64_t t1 = bench_now_ns(), bytes = bench_proc_field("/proc/self/io", "wchar") - w0;
    double send_cpu = bench_cpu_self_s() - cpu0;
    char outcome[64];
    uint64_t resumed = reap_receiver(&r, outcome, sizeof(outcome));
    close(fd);

    struct ls_precopy_progress p;
    uint64_t done_bytes, total;
    ls_op_precopy(op, &p);
    ls_op_progress(op, &done_bytes, &total);
    uint64_t suspended = ls_op_suspended_ns(op);
    double secs = (double)(t1 - t0) / 1e9;
    double mbps = (double)bytes / secs / 1e6;
    double downtime_ms = resumed > suspended ? (double)(resumed - suspended) / 1e6 : -1;
    uint64_t final_bytes = done_bytes - p.bytes_at_suspend;
    double final_ms = (double)final_bytes / ((double)bytes / secs) * 1e3;
    settle_pool(&src);   /* the source guest's memory, refilling: not in the baseline */
    bool dst_pooled = settle_pool(&dst) > dst_taken;
    double base = plain_copy_seconds(bytes, false);
    double ratio = base / secs;
    double fresh = plain_copy_seconds(bytes, true);

    struct ls_page_phase ph;
    ls_op_page_phase(op, &ph);
    double phase = ph.last_ns > ph.first_ns ? (double)ph.bytes / (double)(ph.last_ns - ph.first_ns)
                                            : 0;
    if (ds.rc == 0 && leg->rate == 0 && !leg->qemu) {
        typeof(rate0) *b = leg->tls ? &rate0_tls : &rate0;
        b->best_secs = b->runs == 0 || secs < b->best_secs ? secs : b->best_secs;
        b->best_base = b->runs == 0 || base < b->best_base ? base : b->best_base;
        b->best_phase = phase > b->best_phase ? phase : b->best_phase;
        double cpu = send_cpu + r.cpu_s;
        b->best_cpu = b->runs == 0 || cpu < b->best_cpu ? cpu : b->best_cpu;
        b->bytes = bytes;
        b->runs++;
    }
    if (ds.rc < 0)
        printf("%-10s FAILED: %s (receiver: %s)\n", leg->name, ds.msg, outcome);
    else
        printf("%-10s %7.2f s  %u+1 rounds  %8" PRIu64 " pages  %6.0f MiB  %6.0f MB/s  "
               "downtime %7.1f ms (final %6" PRIu64 " pages = %6.1f ms: %s)  ratio %.2f%s"
               "  (vs a copy into fresh memory: %.2f; destination memory: %s; ms from the start: "
               "first page %.1f, last page %.1f, done %.1f; page phase %.2f GB/s; CPU s: "
               "sender %.2f, receiver %.2f)\n",
               leg->name, secs, p.round + 1, done_bytes / 4096, (double)bytes / (1 << 20), mbps,
               downtime_ms, final_bytes / 4096, final_ms,
               downtime_ms >= 0 && downtime_ms <= final_ms + (leg->qemu ? DOWNTIME_SLACK_QEMU_MS
                                                               : DOWNTIME_SLACK_MS) ? "met" : "MISSED",
               ratio, leg->rate == 0 && !leg->qemu && !leg->tls
                          ? (ratio >= TARGET_RATIO ? " (target >= 0.8: met)" : " (target >= 0.8: MISSED)")
                          : "",
               fresh / secs, dst_pooled ? "from its pool" : "fresh",
               ds.smp.first_ns ? (double)(ds.smp.first_ns - t0) / 1e6 : -1.0,
               ds.smp.last_ns ? (double)(ds.smp.last_ns - t0) / 1e6 : -1.0, secs * 1e3, phase,
               send_cpu, r.cpu_s);
    fflush(stdout);
    ls_op_free(op);
    ls_domain_destroy(ctx, domid, &e);   /* gone already after a success */
    uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- the cipher's bound ------------------------------------------------------------- */

#define PROBE_REC 16384                  /* a full TLS record's content */
#define PROBE_MEM (64u << 20)            /* more than the caches: guest memory is RAM */
#define PROBE_RING (256u * 1024)         /* the records' side, as io/tls.c's batches */
#define PROBE_SLOT (PROBE_REC + 1 + 16)  /* content, its type byte, the tag */

static double thread_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void probe_nonce(uint8_t nonce[12], uint64_t seq)
{
    memset(nonce, 0x11, 12);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= (uint8_t)(seq >> (56 - 8 * i));
}

/* A record's header, the AEAD's additional data (RFC 8446 5.2). */
static const uint8_t probe_ad[5] = { 23, 3, 3, PROBE_SLOT >> 8, PROBE_SLOT & 0xff };

/* One record of PROBE_REC bytes from p, sequence seq, sealed at out. */
static int probe_seal(gnutls_aead_cipher_hd_t h, const uint8_t *p, uint64_t seq, uint8_t *out)
{
    static const uint8_t type = 23;   /* application data */
    giovec_t in[2] = { { (void *)p, PROBE_REC }, { (void *)&type, 1 } };
    giovec_t aad = { (void *)probe_ad, sizeof(probe_ad) };
    uint8_t nonce[12];
    size_t n = PROBE_SLOT;
    probe_nonce(nonce, seq);
    return gnutls_aead_cipher_encryptv(h, nonce, sizeof(nonce), &aad, 1, 16, in, 2, out, &n);
}

/* AES-128-GCM as TLS 1.3 applies it to a migration's records, with GnuTLS
 * (the TLS library lockstep uses; its accelerated code where the CPU has
 * AES-NI and PCLMULQDQ): sealed from 64 MiB of memory into a 256 KiB ring
 * of records, and opened from such a ring into 64 MiB; GB per second of this
 * thread's CPU time, best of three. 0 if GnuTLS refused. */
static void cipher_rates(double *seal, double *open)
{
    *seal = *open = 0;
    uint8_t key[16], nonce[12];
    memset(key, 0x42, sizeof(key));
    gnutls_datum_t k = { .data = key, .size = sizeof(key) };
    gnutls_aead_cipher_hd_t h;
    /* + 1: an opened record's type byte lands after its content */
    uint8_t *mem = malloc(PROBE_MEM + 1), *ring = malloc(PROBE_RING);
    if (!mem || !ring || gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_128_GCM, &k) < 0) {
        free(mem);
        free(ring);
        return;
    }
    memset(mem, 0x5a, PROBE_MEM);
    const unsigned slots = PROBE_RING / PROBE_SLOT, recs = PROBE_MEM / PROBE_REC;
    for (int trial = 0; trial < 3; trial++) {
        double t0 = thread_cpu_s();
        for (unsigned i = 0; i < recs; i++)
            if (probe_seal(h, mem + (size_t)i * PROBE_REC, i, ring + (size_t)(i % slots) * PROBE_SLOT) < 0)
                goto out;
        double r = (double)PROBE_MEM / (thread_cpu_s() - t0) / 1e9;
        *seal = r > *seal ? r : *seal;
        for (unsigned s = 0; s < slots; s++)   /* the ring: records 0 .. slots - 1 */
            if (probe_seal(h, mem + (size_t)s * PROBE_REC, s, ring + (size_t)s * PROBE_SLOT) < 0)
                goto out;
        t0 = thread_cpu_s();
        for (unsigned i = 0; i < recs; i++) {
            unsigned s = i % slots;
            size_t n = PROBE_REC + 1;
            probe_nonce(nonce, s);
            if (gnutls_aead_cipher_decrypt(h, nonce, sizeof(nonce), probe_ad, sizeof(probe_ad), 16,
                                           ring + (size_t)s * PROBE_SLOT, PROBE_SLOT,
                                           mem + (size_t)i * PROBE_REC, &n) < 0)
                goto out;
        }
        r = (double)PROBE_MEM / (thread_cpu_s() - t0) / 1e9;
        *open = r > *open ? r : *open;
    }
    gnutls_aead_cipher_deinit(h);
    free(mem);
    free(ring);
    return;
out:
    *seal = *open = 0;
    gnutls_aead_cipher_deinit(h);
    free(mem);
    free(ring);
}

int main(int argc, char **argv)
{
    bench_prog = "bench_migrate";
    uint64_t memory_kib = 1024 * 1024;
    const char *legs = "0,tls,0,tls,0,tls,0,0,5000,50000,hotset,qemu";
    char lockstep[4096] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
            uint64_t bytes;
            if (ls_parse_size(argv[++i], &bytes) < 0 || bytes < (1u << 20))
                bench_die("--memory: '%s' is not a size of 1M or more", argv[i]);
            memory_kib = bytes >> 10;
        } else if (!strcmp(argv[i], "--legs") && i + 1 < argc) {
            legs = argv[++i];
        } else if (!strcmp(argv[i], "--lockstep") && i + 1 < argc) {
            snprintf(lockstep, sizeof(lockstep), "%s", argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_migrate [--memory SIZE] [--legs "
                            "0,tls,0,tls,0,tls,0,0,5000,50000,hotset,qemu] [--lockstep PATH]\n");
            return 2;
        }
    }
    if (!lockstep[0]) {
        char exe[4000];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(lockstep, sizeof(lockstep), "%s/../cli/lockstep", exe);
    }
    if (access(lockstep, X_OK) < 0)
        bench_die("%s is not an executable (give --lockstep)", lockstep);
    if (!getenv("LOCKSTEP_SIMD"))
        bench_die("LOCKSTEP_SIMD is not set (scripts/bench.sh sets it)");
    signal(SIGPIPE, SIG_IGN);
    bench_workdir(work, sizeof(work), "mig");
    snprintf(src_run, sizeof(src_run), "%s/src", work);
    snprintf(dst_run, sizeof(dst_run), "%s/dst", work);
    snprintf(pki, sizeof(pki), "%s/pki", work);
    bench_host_open(&dst, dst_run);
    bench_host_open(&src, src_run);   /* last: LOCKSTEP_RUNDIR stays the source's */
    if (strstr(legs, "tls")) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "%s/test/tls/mkcerts.sh %s", LOCKSTEP_SOURCE_DIR, pki);
        if (system(cmd) != 0)
            bench_die("%s failed (certtool: gnutls-bin)", cmd);
    }

    printf("live migration of a %" PRIu64 " MiB HVM guest over loopback TCP (Xen's default "
           "policy: < 50 dirty pages or 5 rounds; no digests; device model: the stand-in, "
           "a real QEMU in the +QEMU leg)\n", memory_kib >> 10);
    char *list = strdup(legs), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        struct leg l = { .name = t, .pattern = LS_SIM_DIRTY_UNIFORM };
        char name[32];
        if (!strcmp(t, "hotset")) {
            l.rate = 50000;
            l.pattern = LS_SIM_DIRTY_HOTSET;
            l.hot = 5;
            l.name = "50000/5%";
        } else if (!strcmp(t, "qemu")) {
            l.qemu = true;
            l.name = "0/s+QEMU";
        } else if (!strcmp(t, "tls")) {
            l.tls = true;
            l.name = "0/s TLS";
        } else {
            l.rate = strtoull(t, NULL, 10);
            snprintf(name, sizeof(name), "%s/s", t);
            l.name = name;
        }
        run_leg(&l, memory_kib, lockstep);
    }
    free(list);
    printf("guest memory on both hosts: %s pages (as their daemons report)\n",
           hosts_huge_pages ? "2 MiB" : "4 KiB");
    if (rate0.runs > 1) {
        double r = rate0.best_base / rate0.best_secs;
        printf("rate 0, best of %d runs each side (load on this shared VM moves one run by up "
               "to 2x): migration %.2f s, plain copy %.2f s, ratio %.2f (target >= 0.8: %s)\n",
               rate0.runs, rate0.best_secs, rate0.best_base, r, r >= TARGET_RATIO ? "met" : "MISSED");
    }
    if (rate0.runs && rate0_tls.runs) {
        double r = rate0.best_secs / rate0_tls.best_secs;
        printf("TLS 1.3 against plain TCP, rate 0, best of %d and %d runs: migration %.2f s against "
               "%.2f s, throughput ratio %.2f (target >= %.1f: %s); page phase %.2f against %.2f "
               "GB/s, ratio %.2f; CPU of both ends %.2f against %.2f s, ratio %.2f\n",
               rate0_tls.runs, rate0.runs, rate0_tls.best_secs,
               rate0.best_secs, r, TLS_TARGET_RATIO, r >= TLS_TARGET_RATIO ? "met" : "MISSED",
               rate0_tls.best_phase, rate0.best_phase,
               rate0.best_phase > 0 ? rate0_tls.best_phase / rate0.best_phase : 0.0,
               rate0_tls.best_cpu, rate0.best_cpu,
               rate0_tls.best_cpu > 0 ? rate0.best_cpu / rate0_tls.best_cpu : 0.0);
        double seal, open;
        cipher_rates(&seal, &open);
        if (seal > 0 && open > 0) {
            /* each end passes every byte through the cipher once, on top of
             * what plain TCP costs it */
            double cipher = (double)rate0_tls.bytes / 1e9 / seal + (double)rate0_tls.bytes / 1e9 / open;
            printf("the cipher's bound: AES-128-GCM (GnuTLS, 16 KiB records) seals %.2f and opens "
                   "%.2f GB per CPU-second here, %.2f s of CPU for both ends of %.0f MiB; with plain's "
                   "%.2f s, TLS can reach %.2f of plain's throughput where CPU is the limit",
                   seal, open, cipher, (double)rate0_tls.bytes / (1 << 20), rate0.best_cpu,
                   rate0.best_cpu / (rate0.best_cpu + cipher));
            double extra = rate0_tls.best_cpu - rate0.best_cpu;
            if (extra > 0)   /* not when plain's only leg allocated fresh memory */
                printf(" (its legs took %.2f s of CPU beyond plain's, the cipher %.0f%% of that)",
                       extra, 100 * cipher / extra);
            printf("\n");
        }
    }
    bench_host_close(&src, true);
    bench_host_close(&dst, true);
    bench_remove_tree(work);
    return 0;
}
