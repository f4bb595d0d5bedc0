/* bench/bench_stream.c - save/restore throughput against each destination.
 *
 * For each guest size, creates one sim domain (its content generation is not
 * timed), then saves it with the public API (ls_save_start, keep_domain so
 * the same guest serves every leg) to:
 *   null  /dev/null: target >= 50 GB/s effective, <= 2 write syscalls per
 *         1024-page batch (pages go from guest memory to the fd uncopied);
 *   shm   an existing file on tmpfs: >= 0.9 of a plain write() loop of the
 *         same byte count in 4 MiB chunks;
 *   unix, tcp  a restore (ls_restore_start) in another process over a unix
 *         socket / loopback TCP: >= 0.8 of a plain two-process copy of the
 *         same bytes in 4 MiB chunks over the same kind of socket;
 * and the streaming machinery's peak RSS, excluding the guest memory it maps,
 * <= 64 MiB and flat from the smallest to the largest guest.
 *
 * Two times are reported per leg: the whole operation (ls_save_start to the
 * last done callback, which includes suspending the guest, the libxl records
 * and, for restores, creating the new domain) and the page phase (from the
 * first to the last move of the memory task's progress, as the task itself
 * timed them: ls_op_page_phase). Syscalls per batch in the page phase come
 * from a sampler that reads /proc/self/io every 20 ms while progress moves.
 * (The phase was once sampled every millisecond from each process's loop;
 * on two cores those wakeups cost the memory tasks ~8% of a unix-socket
 * leg's rate.) The sim's digests of the saved and the restored guest are
 * taken after the timing (no_digest, then ls_domain_digest): a Xen host has
 * no such digest, and it costs the sim daemon ~0.12 s per GiB, which would
 * be half of a 1 GiB save's time here. The daemon's log times them (make
 * bench prints them).
 *
 * Syscalls are counted from /proc/self/io (syscw for the saver, syscr for the
 * receiver), which covers every thread of the process. Peak RSS is VmHWM,
 * reset before each leg through /proc/self/clear_refs; "excl. guest" is the
 * peak of RssAnon + RssFile sampled every 20 ms: guest memory is a memfd
 * (shmem) mapping and shows up only in RssShmem.
 *
 * The sim leaves a new guest's zero pages as holes in its memfd; they are
 * written before timing (see bench_guest_populate), since a Xen guest's populated
 * pages are real frames. The /dev/null leg runs three times and keeps the
 * best page phase: it lasts milliseconds.
 *
 * Benchmarks do not assert: the exit status is 0 unless the benchmark itself
 * could not run (bad arguments, no daemon).
 *
 * Internal modes (the receiving processes of the socket legs, re-executed
 * from /proc/self/exe): `--child restore` and `--child sink` read the stream
 * on standard input and report one line on standard output.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common.h"

extern char **environ;

#define PAGE 4096u
#define BATCH_PAGES 1024u
#define CHUNK (4u << 20)            /* the baselines' write and read size */
#define MIB (1024.0 * 1024.0)
#define GB 1e9
#define TICK_MS 20                  /* syscall and RSS sampling (the page phase is timed by the task) */
#define RSS_EVERY_MS 20             /* RSS sampling */

#define NULL_RUNS 3                 /* the /dev/null leg is short: best of this many */
#define LEG_RUNS 5                  /* the other legs: best of this many, each side */
#define POOL_SETTLE_MS 30000        /* longest wait for the daemon's pool refills */
#define TARGET_NULL_GBPS 50.0
#define TARGET_NULL_SYSCALLS 2.0
#define TARGET_SHM_RATIO 0.9
#define TARGET_SOCK_RATIO 0.8
#define TARGET_RSS_MIB 64.0
#define FLAT_MIB 4.0                /* "flat": grows by less than this from smallest to largest */

static const char *prog = "bench_stream";
static char self_exe[4096];

/* ---- clocks and /proc ------------------------------------------------------ */

static uint64_t syscalls_now(bool writes)
{
    return bench_proc_field("/proc/self/io", writes ? "syscw" : "syscr");
}

/* RSS without shmem mappings (the guest's memfd), in KiB. */
static uint64_t rss_nonguest_kib(void)
{
    return bench_proc_field("/proc/self/status", "RssAnon") +
           bench_proc_field("/proc/self/status", "RssFile");
}

static uint64_t hwm_kib(void)
{
    return bench_proc_field("/proc/self/status", "VmHWM");
}

/* Peak RSS restarts from the current RSS (Linux >= 4.0). */
static void hwm_reset(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "5", 1) < 0) {
            /* an older kernel: the peak then covers the whole process */
        }
        close(fd);
    }
}

static uint64_t minflt_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_minflt;
}

struct bench {
    struct bench_host host;
    struct ls_ctx *ctx;       /* host's */
    struct ls_backend *be;
    int dpid;
    uint32_t domid;
    char saved_digest[80];
    uint64_t pages;
    const char *shm_dir;
    bool huge_pages;          /* the daemon backs guest memory with 2 MiB pages */
};

/* Bytes the guest's memfd really holds (holes are not allocated), or -1. The
 * memfd comes as a save's does, from the daemon's MAP (its name says nothing:
 * one from the daemon's memory pool was made before the domain was). */
static int64_t guest_allocated(struct bench *b, uint32_t domid)
{
    struct ls_sim_memory m;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_map_memory(b->be, domid, false, &m, &e) < 0)
        return -1;
    struct stat st;
    int64_t bytes = fstat(m.fd, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
    ls_sim_unmap_memory(&m);
    return bytes;
}


/* ---- sampling an operation's progress -------------------------------------- */

/* Observations of one operation, from its loop, for the syscalls made
 * between the first and the last observation that saw progress move (the
 * page phase's own times come from ls_op_page_phase). A 20 ms timer
 * suffices when the page phase lasts hundreds of milliseconds; for /dev/null
 * it lasts a few, so that leg spins (an idle handle: the loop thread polls
 * on the second core while the memory task writes). */
struct sampler {
    struct ls_op *op;
    uv_timer_t timer;
    uv_idle_t idle;
    bool spin;
    bool writes;                 /* count syscw (saver) or syscr (receiver) */
    bool seen;
    uint64_t d_first, s_first;
    uint64_t d_last, s_last;
    uint64_t peak_nonguest_kib;
    uint64_t next_rss_ns;
};

static void sampler_rss(struct sampler *s)
{
    uint64_t r = rss_nonguest_kib();
    if (r > s->peak_nonguest_kib)
        s->peak_nonguest_kib = r;
}

static void sampler_observe(struct sampler *s)
{
    uint64_t t = bench_now_ns();
    if (t >= s->next_rss_ns) {
        sampler_rss(s);
        s->next_rss_ns = t + RSS_EVERY_MS * 1000000u;
    }
    if (!s->op)
        return;
    uint64_t done, total;
    ls_op_progress(s->op, &done, &total);
    if (done == 0)
        return;
    if (!s->seen) {
        s->seen = true;
        s->d_first = s->d_last = done;
        s->s_first = s->s_last = syscalls_now(s->writes);
    } else if (done > s->d_last) {
        s->d_last = done;
        s->s_last = syscalls_now(s->writes);
    }
}

static void sampler_tick(uv_timer_t *t) { sampler_observe(t->data); }
static void sampler_spin(uv_idle_t *i) { sampler_observe(i->data); }

static void sampler_start(struct sampler *s, uv_loop_t *loop, bool writes, bool spin)
{
    memset(s, 0, sizeof(*s));
    s->writes = writes;
    s->spin = spin;
    sampler_rss(s);
    if (spin) {
        uv_idle_init(loop, &s->idle);
        s->idle.data = s;
        uv_idle_start(&s->idle, sampler_spin);
    } else {
        uv_timer_init(loop, &s->timer);
        s->timer.data = s;
        uv_timer_start(&s->timer, sampler_tick, TICK_MS, TICK_MS);
    }
}

/* Called from the done callback: a last observation, then stop. */
static void sampler_stop(struct sampler *s)
{
    sampler_observe(s);
    sampler_rss(s);
    if (s->spin) {
        uv_idle_stop(&s->idle);
        uv_close((uv_handle_t *)&s->idle, NULL);
    } else {
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, NULL);
    }
}

/* ---- running one operation ---------------------------------------------- */

struct oprun {
    struct sampler smp;
    struct ls_op *op;
    bool done;
    int rc;
    char msg[LS_ERRBUF_LEN];
    uint64_t t_done;
};

static void oprun_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct oprun *o = data;
    o->t_done = bench_now_ns();
    o->done = true;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
    sampler_stop(&o->smp);
}

/* ---- the report line between a child and the parent ------------------------ */

struct child_report {
    int rc;
    uint64_t t_done, t_first, d_first, s_first, t_last, d_last, s_last;
    uint64_t s_start, s_end;         /* syscr over the whole operation */
    uint64_t bytes;                  /* sink: bytes read */
    uint64_t hwm_kib, nonguest_kib;
    uint64_t faults;                 /* minor page faults during the operation */
    double cpu_s;
    char digest[80];
    char msg[LS_ERRBUF_LEN];
};

static int report_write(int fd, const struct child_report *r)
{
    char line[LS_ERRBUF_LEN + 1024];
    int n = snprintf(line, sizeof(line),
                     "result rc=%d t_done=%" PRIu64 " t_first=%" PRIu64 " d_first=%" PRIu64
                     " s_first=%" PRIu64 " t_last=%" PRIu64 " d_last=%" PRIu64 " s_last=%" PRIu64
                     " s_start=%" PRIu64 " s_end=%" PRIu64 " bytes=%" PRIu64 " hwm_kib=%" PRIu64
                      " nonguest_kib=%" PRIu64 " faults=%" PRIu64 " cpu_s=%.6f digest=%s msg=%s\n",
                     r->rc, r->t_done, r->t_first, r->d_first, r->s_first, r->t_last, r->d_last,
                     r->s_last, r->s_start, r->s_end, r->bytes, r->hwm_kib, r->nonguest_kib,
                     r->faults, r->cpu_s, r->digest[0] ? r->digest : "-", r->msg);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = (int)strlen(line);
    return write(fd, line, (size_t)n) == n ? 0 : -errno;
}

static uint64_t kv_u64(const char *line, const char *key)
{
    char k[32];
    snprintf(k, sizeof(k), " %s=", key);
    const char *p = strstr(line, k);
    return p ? strtoull(p + strlen(k), NULL, 10) : 0;
}

static int report_parse(const char *line, struct child_report *r)
{
    memset(r, 0, sizeof(*r));
    if (strncmp(line, "result ", 7) != 0)
        return -EINVAL;
    const char *p = strstr(line, " rc=");
    r->rc = p ? atoi(p + 4) : -EIO;
    r->t_done = kv_u64(line, "t_done");
    r->t_first = kv_u64(line, "t_first");
    r->d_first = kv_u64(line, "d_first");
    r->s_first = kv_u64(line, "s_first");
    r->t_last = kv_u64(line, "t_last");
    r->d_last = kv_u64(line, "d_last");
    r->s_last = kv_u64(line, "s_last");
    r->s_start = kv_u64(line, "s_start");
    r->s_end = kv_u64(line, "s_end");
    r->bytes = kv_u64(line, "bytes");
    r->hwm_kib = kv_u64(line, "hwm_kib");
    r->nonguest_kib = kv_u64(line, "nonguest_kib");
    r->faults = kv_u64(line, "faults");
    if ((p = strstr(line, " cpu_s=")))
        r->cpu_s = strtod(p + 7, NULL);
    if ((p = strstr(line, " digest="))) {
        sscanf(p + 8, "%79s", r->digest);
        if (strcmp(r->digest, "-") == 0)
            r->digest[0] = '\0';
    }
    if ((p = strstr(line, " msg="))) {
        snprintf(r->msg, sizeof(r->msg), "%s", p + 5);
        r->msg[strcspn(r->msg, "\n")] = '\0';
    }
    return 0;
}

/* ---- child modes ---------------------------------------------------------- */

/* Restore the stream on stdin into a new sim domain, report, destroy it. */
static int child_restore(void)
{
    struct child_report rep;
    memset(&rep, 0, sizeof(rep));
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ls_errbuf err;
    ls_err_clear(&err);
    struct ls_ctx *ctx = NULL;
    int rc = ls_ctx_new(&ctx, &loop, LS_BACKEND_SIM, &err);
    if (rc < 0) {
        rep.rc = rc;
        snprintf(rep.msg, sizeof(rep.msg), "%s", err.msg);
        report_write(STDOUT_FILENO, &rep);
        uv_loop_close(&loop);
        return 1;
    }
    struct oprun o;
    memset(&o, 0, sizeof(o));
    sampler_start(&o.smp, &loop, false, false);
    rep.s_start = syscalls_now(false);
    uint64_t flt0 = minflt_self();
    struct ls_restore_opts ro = { .fd = STDIN_FILENO, .unpause = false, .no_digest = true };
    rc = ls_restore_start(ctx, &ro, oprun_done, &o, &o.op, &err);
    if (rc < 0) {
        sampler_stop(&o.smp);
        o.rc = rc;
        snprintf(o.msg, sizeof(o.msg), "%s", err.msg);
    } else {
        o.smp.op = o.op;
        if (write(STDOUT_FILENO, "ready\n", 6) != 6)
            ls_op_cancel(o.op);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    rep.s_end = syscalls_now(false);
    rep.faults = minflt_self() - flt0;
    rep.rc = o.rc;
    rep.t_done = o.t_done;
    /* first and last page: the task's own times; syscalls: the sampler's */
    struct ls_page_phase ph = { 0 };
    if (o.op)
        ls_op_page_phase(o.op, &ph);
    rep.t_first = ph.first_ns;
    rep.t_last = ph.last_ns;
    rep.d_first = o.smp.d_first;
    rep.s_first = o.smp.s_first;
    rep.d_last = o.smp.d_last;
    rep.s_last = o.smp.s_last;
    rep.hwm_kib = hwm_kib();
    rep.nonguest_kib = o.smp.peak_nonguest_kib;
    rep.cpu_s = bench_cpu_self_s();
    snprintf(rep.msg, sizeof(rep.msg), "%s", o.msg);
    if (o.op && o.rc == 0) {
        /* The sim's digest, taken after the timing (see the header). */
        char hex[65];
        struct ls_errbuf derr;
        ls_err_clear(&derr);
        if (ls_domain_digest(ctx, ls_op_domid(o.op), hex, &derr) == 0)
            snprintf(rep.digest, sizeof(rep.digest), "%s", hex);
        else
            fprintf(stderr, "%s: restore child: digest of domain %u: %s\n", prog,
                    ls_op_domid(o.op), derr.msg);
        ls_err_clear(&derr);
        if (ls_domain_destroy(ctx, ls_op_domid(o.op), &derr) < 0)
            fprintf(stderr, "%s: restore child: destroying domain %u: %s\n", prog,
                    ls_op_domid(o.op), derr.msg);
    }
    /* Reported after the destroy, so the parent's next leg has the memory back. */
    report_write(STDOUT_FILENO, &rep);
    if (o.op)
        ls_op_free(o.op);
    ls_ctx_free(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

/* The baseline's reader: read stdin into a 4 MiB buffer until EOF. */
static int child_sink(void)
{
    struct child_report rep;
    memset(&rep, 0, sizeof(rep));
    char *buf = malloc(CHUNK);
    if (!buf) {
        rep.rc = -ENOMEM;
        report_write(STDOUT_FILENO, &rep);
        return 1;
    }
    memset(buf, 0x5a, CHUNK);   /* fault it in before the clock starts */
    rep.s_start = syscalls_now(false);
    if (write(STDOUT_FILENO, "ready\n", 6) != 6) {
        free(buf);
        return 1;
    }
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rep.rc = -errno;
            snprintf(rep.msg, sizeof(rep.msg), "read: %s", strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (rep.bytes == 0)
            rep.t_first = bench_now_ns();
        rep.bytes += (uint64_t)n;
    }
    rep.t_done = bench_now_ns();
    rep.s_end = syscalls_now(false);
    rep.hwm_kib = hwm_kib();
    rep.nonguest_kib = rss_nonguest_kib();
    rep.cpu_s = bench_cpu_self_s();
    free(buf);
    report_write(STDOUT_FILENO, &rep);
    return 0;
}

/* The guest-memory reader: splice stdin into the memory file on fd 3, a
 * sink domain's (socket_once makes it): the memory a receiving guest gets
 * from the daemon (2 MiB pages with lockstep-simd --huge-pages, from its
 * pool when it has one), its frames made real before the clock starts,
 * through a 1 MiB pipe: the kernel's own path from a socket into guest
 * memory, none of lockstep's records around it. (Into 4 KiB pages this path
 * ran at 5.6-5.9 GB/s where lockstep's receiver, into 2 MiB pages, ran at 7-8.) */
#define SINK_FD 3
static int child_memfd_sink(void)
{
    struct child_report rep;
    memset(&rep, 0, sizeof(rep));
    int mfd = SINK_FD;
    int stage[2] = { -1, -1 };
    if (pipe2(stage, O_CLOEXEC) < 0) {
        rep.rc = -errno;
        snprintf(rep.msg, sizeof(rep.msg), "pipe: %s", strerror(errno));
        report_write(STDOUT_FILENO, &rep);
        return 1;
    }
    (void)fcntl(stage[1], F_SETPIPE_SZ, 1 << 20);
    int stage_size = fcntl(stage[1], F_GETPIPE_SZ);
    rep.s_start = syscalls_now(false);
    if (write(STDOUT_FILENO, "ready\n", 6) != 6)
        return 1;
    loff_t at = 0;
    for (;;) {
        ssize_t n = splice(STDIN_FILENO, NULL, stage[1], NULL, (size_t)stage_size, SPLICE_F_MOVE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0) {
                rep.rc = -errno;
                snprintf(rep.msg, sizeof(rep.msg), "splice: %s", strerror(errno));
            }
            break;
        }
        if (rep.bytes == 0)
            rep.t_first = bench_now_ns();
        for (ssize_t left = n; left > 0;) {
            ssize_t w = splice(stage[0], NULL, mfd, &at, (size_t)left, SPLICE_F_MOVE);
            if (w <= 0 && !(w < 0 && errno == EINTR)) {
                rep.rc = w < 0 ? -errno : -EIO;
                snprintf(rep.msg, sizeof(rep.msg), "splice into guest memory: %s", strerror(-rep.rc));
                break;
            }
            if (w > 0)
                left -= w;
        }
        if (rep.rc < 0)
            break;
        rep.bytes += (uint64_t)n;
    }
    rep.t_done = bench_now_ns();
    rep.s_end = syscalls_now(false);
    rep.cpu_s = bench_cpu_self_s();
    report_write(STDOUT_FILENO, &rep);
    close(stage[0]);
    close(stage[1]);
    close(mfd);
    return 0;
}

/* ---- spawning a receiver ------------------------------------------------ */

struct child {
    pid_t pid;
    int report_fd;
    struct rusage ru;
};

/* Run `self --child MODE` with stdin = in_fd, stdout = a report pipe and
 * (sink_fd >= 0) fd SINK_FD = sink_fd, and wait for its "ready" line. */
static int child_spawn(struct child *c, const char *mode, int in_fd, int sink_fd, char *errmsg,
                       size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(errmsg, errlen, "pipe: %s", strerror(errno));
        return -errno;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    if (sink_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, sink_fd, SINK_FD);
    char *argv[] = { (char *)prog, (char *)"--child", (char *)mode, NULL };
    int rc = posix_spawn(&c->pid, self_exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        snprintf(errmsg, errlen, "spawning %.300s --child %s: %s", self_exe, mode, strerror(rc));
        return -rc;
    }
    c->report_fd = p[0];
    char line[16];
    size_t got = 0;
    while (got < 6) {
        ssize_t n = read(c->report_fd, line + got, 6 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != 6 || memcmp(line, "ready\n", 6) != 0) {
        /* It failed before the stream: its report says why. */
        char rest[LS_ERRBUF_LEN + 1024];
        memcpy(rest, line, got);
        ssize_t n = read(c->report_fd, rest + got, sizeof(rest) - 1 - got);
        rest[got + (n > 0 ? (size_t)n : 0)] = '\0';
        struct child_report r;
        if (report_parse(rest, &r) == 0 && r.msg[0])
            snprintf(errmsg, errlen, "receiver failed to start: %s", r.msg);
        else
            snprintf(errmsg, errlen, "receiver failed to start");
        close(c->report_fd);
        waitpid(c->pid, NULL, 0);
        return -EIO;
    }
    return 0;
}

/* Read the child's report and reap it. */
static int child_finish(struct child *c, struct child_report *r)
{
    char buf[LS_ERRBUF_LEN + 1024];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(c->report_fd, buf + got, sizeof(buf) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof(buf) - 1)
            break;
    }
    buf[got] = '\0';
    close(c->report_fd);
    int status = 0;
    while (wait4(c->pid, &status, 0, &c->ru) < 0 && errno == EINTR)
        ;
    if (report_parse(buf, r) < 0) {
        memset(r, 0, sizeof(*r));
        r->rc = -EIO;
        snprintf(r->msg, sizeof(r->msg), "receiver exited (status 0x%x) without a report", status);
        return -EIO;
    }
    return 0;
}

/* ---- sockets -------------------------------------------------------------- */

enum sock_kind { SOCK_UNIX_KIND, SOCK_TCP_KIND };

/* fds[0] the writer's end, fds[1] the reader's. */
static int sock_pair(enum sock_kind k, int fds[2], char *errmsg, size_t errlen)
{
    if (k == SOCK_UNIX_KIND) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
            snprintf(errmsg, errlen, "socketpair: %s", strerror(errno));
            return -errno;
        }
        return 0;
    }
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    int c = -1, s = -1;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0 ||
        (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        (s = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        int e = errno;
        snprintf(errmsg, errlen, "TCP loopback connection on 127.0.0.1: %s", strerror(e));
        if (c >= 0)
            close(c);
        if (l >= 0)
            close(l);
        return -e;
    }
    close(l);
    fds[0] = c;
    fds[1] = s;
    return 0;
}

/* ---- results ---------------------------------------------------------------- */

enum leg { LEG_NULL, LEG_SHM, LEG_UNIX, LEG_TCP, LEG_COUNT };
static const char *const leg_names[LEG_COUNT] = { "null", "shm", "unix", "tcp" };
static const char *const leg_titles[LEG_COUNT] = { "/dev/null", "tmpfs file", "unix socket",
                                                   "TCP loopback" };

struct proc_mem {
    bool have;
    double hwm_mib, nonguest_mib, cpu_s;
    double faults_per_page;      /* minor page faults per guest page */
};

struct leg_result {
    bool ran, ok;
    char err[LS_ERRBUF_LEN + 64];
    uint64_t stream_bytes;
    double op_s;                 /* whole operation */
    double phase_s;              /* page phase */
    uint64_t phase_bytes;        /* guest bytes moved in it */
    double sys_per_batch_op, sys_per_batch_phase;     /* saver's write syscalls */
    double rsys_per_batch_op, rsys_per_batch_phase;   /* receiver's read syscalls */
    double base_gbps;            /* the named baseline (null: the absolute target) */
    double base_s;
    uint64_t base_writes;
    double guest_src_gbps;       /* shm: the write loop from the guest's own memory, */
    double guest_sendfile_gbps;  /* and a sendfile loop from its memfd */
    struct proc_mem saver, receiver, base_receiver;
    bool digest_checked, digest_match;
    int64_t guest_alloc_before, guest_alloc_after;   /* daemon memfd bytes, -1 unknown */
    int runs;                    /* LEG_RUNS legs: each run's page phase GB/s and */
    double run_phase_gbps[LEG_RUNS], run_base_gbps[LEG_RUNS];
    int run_pooled[LEG_RUNS];    /* its receiver's memory: 1 from the daemon's pool, 0 fresh, -1 unknown */
    /* Socket legs: where the whole operation's time went, seconds from the
     * save's start: the receiver's first and last observed page progress
     * and its done, and the saver's done. */
    double recv_first_s, recv_last_s, recv_done_s, save_done_s;
};

struct size_result {
    uint64_t memory_kib, pages, batches;
    double gen_s;
    double prefault_s;           /* < 0: not done */
    int64_t alloc_before_prefault;
    char prefault_err[256];
    struct leg_result leg[LEG_COUNT];
};

static double gbps(uint64_t bytes, double s) { return s > 0 ? (double)bytes / s / GB : 0; }

/* ---- the saver ------------------------------------------------------------ */


/* Save the bench domain to fd (keeping the domain), filling the saver's part
 * of res. t0 is returned for legs that time beyond the save. */
static int save_to(struct bench *b, int fd, struct size_result *sr, struct leg_result *res,
                   bool spin, uint64_t *t0_out, uint64_t *t_done_out)
{
    struct oprun o;
    memset(&o, 0, sizeof(o));
    res->guest_alloc_before = guest_allocated(b, b->domid);
    hwm_reset();
    double cpu0 = bench_cpu_self_s();
    uint64_t flt0 = minflt_self();
    sampler_start(&o.smp, &b->host.loop, true, spin);
    struct ls_errbuf err;
    ls_err_clear(&err);
    struct ls_save_opts so = { .domid = b->domid, .fd = fd, .format = LS_FORMAT_XL,
                               .keep_domain = true, .no_digest = true };
    uint64_t s0 = syscalls_now(true);
    uint64_t w0 = bench_proc_field("/proc/self/io", "wchar");
    uint64_t t0 = bench_now_ns();
    int rc = ls_save_start(b->ctx, &so, oprun_done, &o, &o.op, &err);
    if (rc < 0) {
        sampler_stop(&o.smp);
        uv_run(&b->host.loop, UV_RUN_DEFAULT);
        snprintf(res->err, sizeof(res->err), "ls_save_start: %s", err.msg);
        return rc;
    }
    o.smp.op = o.op;
    uv_run(&b->host.loop, UV_RUN_DEFAULT);
    uint64_t s1 = syscalls_now(true);
    /* The stream's size, give or take the few bytes of requests to the daemon. */
    res->stream_bytes = bench_proc_field("/proc/self/io", "wchar") - w0;
    res->saver.have = true;
    res->saver.hwm_mib = (double)hwm_kib() / 1024.0;
    res->saver.nonguest_mib = (double)o.smp.peak_nonguest_kib / 1024.0;
    res->saver.cpu_s = bench_cpu_self_s() - cpu0;
    res->saver.faults_per_page = (double)(minflt_self() - flt0) / (double)sr->pages;
    res->guest_alloc_after = guest_allocated(b, b->domid);
    struct ls_page_phase ph;
    ls_op_page_phase(o.op, &ph);
    ls_op_free(o.op);
    if (o.rc < 0) {
        snprintf(res->err, sizeof(res->err), "save failed: %s", o.msg);
        return o.rc;
    }
    res->op_s = (double)(o.t_done - t0) / 1e9;
    res->sys_per_batch_op = (double)(s1 - s0) / (double)sr->batches;
    if (ph.last_ns > ph.first_ns) {
        res->phase_s = (double)(ph.last_ns - ph.first_ns) / 1e9;
        res->phase_bytes = ph.bytes;
    }
    /* Syscalls per batch over the sampler's window; when that window saw less
     * than half the phase (a /dev/null phase can end inside one observation,
     * whose progress and syscall reads then straddle every batch), the whole
     * operation's count instead: an upper bound, never a flattering 0. */
    if (o.smp.seen && o.smp.d_last > o.smp.d_first &&
        2 * (o.smp.d_last - o.smp.d_first) >= res->phase_bytes) {
        double batches = (double)(o.smp.d_last - o.smp.d_first) / PAGE / BATCH_PAGES;
        res->sys_per_batch_phase = (double)(o.smp.s_last - o.smp.s_first) / batches;
    } else {
        res->sys_per_batch_phase = res->sys_per_batch_op;
    }
    if (t0_out)
        *t0_out = t0;
    if (t_done_out)
        *t_done_out = o.t_done;
    return 0;
}

/* A plain write() loop of `bytes` in 4 MiB chunks from one buffer, filled
 * before the clock starts; seconds, or < 0. The buffer is mapped and unmapped
 * here so that it never counts in the saver's RSS during lockstep's legs. */
static double write_loop(int fd, uint64_t bytes, uint64_t *writes, char *errmsg, size_t errlen)
{
    /* cppcheck-suppress invalidFunctionArg ; fd -1 is what MAP_ANONYMOUS asks for */
    char *chunk = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (chunk == MAP_FAILED) {
        snprintf(errmsg, errlen, "baseline buffer: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < CHUNK; i++)
        chunk[i] = (char)(i * 131u + 7u);   /* non-zero, faulted in */
    double s = -1;
    uint64_t n = 0, left = bytes;
    uint64_t t0 = bench_now_ns();
    while (left > 0) {
        size_t want = left > CHUNK ? CHUNK : (size_t)left;
        ssize_t w = write(fd, chunk, want);
        n++;
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(errmsg, errlen, "baseline write: %s", w < 0 ? strerror(errno) : "wrote 0");
            goto out;
        }
        left -= (uint64_t)w;
    }
    s = (double)(bench_now_ns() - t0) / 1e9;
    if (writes)
        *writes = n;
out:
    munmap(chunk, CHUNK);
    return s;
}

/* The write loop again, but from the guest's own memory (its populated runs,
 * mapped and populated before the clock starts) instead of one 4 MiB buffer
 * that stays in the cache: what any saver that must read the guest could do
 * at best here. GB/s, or 0 when it could not run. */
static double guest_write_loop(struct bench *b, int fd, uint64_t bytes, bool use_sendfile)
{
    struct ls_sim_memory m;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_map_memory(b->be, b->domid, false, &m, &e) < 0)
        return 0;
    uint64_t n;
    for (uint64_t pfn = 0; !use_sendfile && bench_next_run(&m, &pfn, &n, UINT64_MAX); pfn += n)
        (void)madvise(m.mem + pfn * PAGE, n * PAGE, MADV_POPULATE_READ);
    uint64_t left = bytes, t0 = bench_now_ns();
    bool ok = true;
    while (ok && left > 0) {
        uint64_t before = left;
        for (uint64_t pfn = 0; ok && left > 0 && bench_next_run(&m, &pfn, &n, CHUNK / PAGE);
             pfn += n) {
            size_t want = n * PAGE < left ? n * PAGE : (size_t)left;
            off_t at = (off_t)(pfn * PAGE);
            ssize_t w = use_sendfile ? sendfile(fd, m.fd, &at, want)
                                     : write(fd, m.mem + pfn * PAGE, want);
            ok = w > 0 || (w < 0 && errno == EINTR);
            if (w > 0)
                left -= (uint64_t)w;
        }
        ok = ok && left < before;
    }
    double s = (double)(bench_now_ns() - t0) / 1e9;
    ls_sim_unmap_memory(&m);
    return ok ? gbps(bytes, s) : 0;
}

/* Guest bytes per second in the page phase; 0 when it was too short to see. */
static double leg_phase_rate(const struct leg_result *r)
{
    return r->phase_s > 0 ? (double)r->phase_bytes / r->phase_s : 0;
}

static void leg_null(struct bench *b, struct size_result *sr, struct leg_result *res)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(res->err, sizeof(res->err), "/dev/null: %s", strerror(errno));
        return;
    }
    res->ran = true;
    /* The page phase lasts milliseconds here: one preemption of either thread
     * by anything else on the machine shows. Best of NULL_RUNS by page phase. */
    int ok = 0;
    for (int i = 0; i < NULL_RUNS; i++) {
        struct leg_result one;
        memset(&one, 0, sizeof(one));
        if (save_to(b, fd, sr, &one, true, NULL, NULL) < 0) {
            snprintf(res->err, sizeof(res->err), "%s", one.err);
            ok = -1;
            break;
        }
        if (i == 0 || leg_phase_rate(&one) > leg_phase_rate(res))
            *res = one;
        res->ran = true;
    }
    if (ok == 0) {
        /* For information: the plain loop to /dev/null costs only its syscalls. */
        char e[128];
        res->base_s = write_loop(fd, sr->pages * PAGE, &res->base_writes, e, sizeof(e));
        res->base_gbps = TARGET_NULL_GBPS;
        res->ok = true;
    }
    close(fd);
}

/* The tmpfs leg's destination: one existing file, allocated once before the
 * runs (the leg's words: "an existing file on tmpfs") and written over from
 * offset 0 by every contender, so that none of them pays for fresh pages and
 * none gets pages another one just freed (here, fresh memory costs several
 * times the copy into it, and which pages were freed last decides it). */
static int shm_open_existing(struct bench *b, struct size_result *sr, struct leg_result *res)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/lockstep-bench-%d.xl", b->shm_dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(res->err, sizeof(res->err), "opening %.300s: %s", path, strerror(errno));
        return -1;
    }
    /* the stream: each page and its pfn word, and the records around them */
    off_t size = (off_t)(sr->pages * (PAGE + 8) + (16u << 20));
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_blocks * 512 < size && fallocate(fd, 0, 0, size) < 0) {
        snprintf(res->err, sizeof(res->err), "allocating %.300s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void shm_remove(struct bench *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/lockstep-bench-%d.xl", b->shm_dir, (int)getpid());
    unlink(path);   /* the guest's size again in RAM: gone before the next leg */
}

static void shm_once(struct bench *b, struct size_result *sr, struct leg_result *res)
{
    int fd = shm_open_existing(b, sr, res);
    if (fd < 0)
        return;
    res->ran = true;
    int rc = save_to(b, fd, sr, res, false, NULL, NULL);
    off_t end = lseek(fd, 0, SEEK_CUR);   /* written from 0: the stream's length */
    if (rc == 0 && end > 0)
        res->stream_bytes = (uint64_t)end;
    close(fd);
    if (rc < 0)
        return;

    if ((fd = shm_open_existing(b, sr, res)) < 0)
        return;
    res->base_s = write_loop(fd, res->stream_bytes, &res->base_writes, res->err,
                             sizeof(res->err));
    close(fd);
    if (res->base_s < 0)
        return;
    if ((fd = shm_open_existing(b, sr, res)) >= 0) {
        res->guest_src_gbps = guest_write_loop(b, fd, res->stream_bytes, false);
        close(fd);
    }
    if ((fd = shm_open_existing(b, sr, res)) >= 0) {
        res->guest_sendfile_gbps = guest_write_loop(b, fd, res->stream_bytes, true);
        close(fd);
    }
    res->err[0] = '\0';
    res->base_gbps = gbps(res->stream_bytes, res->base_s);
    res->ok = true;
}

static void proc_mem_from_child(struct proc_mem *m, const struct child_report *r,
                                const struct child *c, uint64_t pages)
{
    m->have = true;
    m->faults_per_page = (double)r->faults / (double)pages;
    m->hwm_mib = (double)(r->hwm_kib ? r->hwm_kib : (uint64_t)c->ru.ru_maxrss) / 1024.0;
    m->nonguest_mib = (double)r->nonguest_kib / 1024.0;
    m->cpu_s = r->cpu_s;
}

/* The saved guest's digest, untimed. keep_domain resumed the guest, but it
 * has no workload (no dirty rate): nothing in it changed since its suspend,
 * which the restores' digests matching this one confirms. Only once the
 * receiver is done: the daemon serves one request at a time, and a digest
 * (~0.12 s per GiB) would hold up the receiver's last requests. */
static void take_saved_digest(struct bench *b)
{
    char hex[65];
    struct ls_errbuf err;
    ls_err_clear(&err);
    b->saved_digest[0] = '\0';
    if (ls_domain_digest(b->ctx, b->domid, hex, &err) == 0)
        snprintf(b->saved_digest, sizeof(b->saved_digest), "%s", hex);
    else
        fprintf(stderr, "bench: digest of the saved guest: %s\n", err.msg);
}

/* A PV domain with room for bytes, its frames made real, mapped writable:
 * the memory the memfd-sink child receives into. */
static int sink_domain(struct bench *b, uint64_t bytes, uint32_t *domid, struct ls_sim_memory *m)
{
    struct ls_sim_create_args a = { .type = LS_GUEST_PV, .vcpus = 1,
                                    .memory_kib = (bytes + PAGE - 1) / PAGE * (PAGE / 1024),
                                    .seed = 1, .name = "bench-sink", .populate = true,
                                    .device_model = LS_DM_STANDIN };
    struct ls_errbuf e;
    char why[256];
    ls_err_clear(&e);
    int rc = ls_sim_create(b->be, &a, domid, &e);
    if (rc == 0 && (rc = bench_guest_populate(b->be, *domid, why, sizeof(why))) == 0)
        rc = ls_sim_map_memory(b->be, *domid, true, m, &e);
    return rc;
}

static void sink_domain_free(struct bench *b, uint32_t domid, struct ls_sim_memory *m)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (m->fd >= 0)
        ls_sim_unmap_memory(m);
    if (domid)
        ls_domain_destroy(b->ctx, domid, &e);
}

static void socket_once(struct bench *b, struct size_result *sr, struct leg_result *res,
                        enum sock_kind kind)
{
    int fds[2];
    if (sock_pair(kind, fds, res->err, sizeof(res->err)) < 0)
        return;
    struct child c;
    memset(&c, 0, sizeof(c));
    int rc = child_spawn(&c, "restore", fds[1], -1, res->err, sizeof(res->err));
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        return;
    }
    res->ran = true;
    uint64_t t0 = 0, t_save_done = 0;
    rc = save_to(b, fds[0], sr, res, false, &t0, &t_save_done);
    close(fds[0]);
    struct child_report r;
    int crc = child_finish(&c, &r);
    proc_mem_from_child(&res->receiver, &r, &c, sr->pages);
    if (rc < 0)
        return;
    take_saved_digest(b);
    if (crc < 0 || r.rc < 0) {
        snprintf(res->err, sizeof(res->err), "restore failed: %s", r.msg);
        return;
    }
    res->digest_checked = true;
    res->digest_match = r.digest[0] && b->saved_digest[0] && strcmp(r.digest, b->saved_digest) == 0;
    /* Whole operation: until both ends are done. */
    uint64_t t_end = r.t_done > t_save_done ? r.t_done : t_save_done;
    res->op_s = (double)(t_end - t0) / 1e9;
    res->recv_first_s = (double)(r.t_first - t0) / 1e9;
    res->recv_last_s = (double)(r.t_last - t0) / 1e9;
    res->recv_done_s = (double)(r.t_done - t0) / 1e9;
    res->save_done_s = (double)(t_save_done - t0) / 1e9;
    res->rsys_per_batch_op = (double)(r.s_end - r.s_start) / (double)sr->batches;
    if (r.d_last > r.d_first) {
        double batches = (double)(r.d_last - r.d_first) / PAGE / BATCH_PAGES;
        res->rsys_per_batch_phase = (double)(r.s_last - r.s_first) / batches;
    }

    /* The baseline: same byte count, 4 MiB writes from a buffer, 4 MiB reads. */
    int bfds[2];
    if (sock_pair(kind, bfds, res->err, sizeof(res->err)) < 0)
        return;
    struct child bc;
    memset(&bc, 0, sizeof(bc));
    rc = child_spawn(&bc, "sink", bfds[1], -1, res->err, sizeof(res->err));
    close(bfds[1]);
    if (rc < 0) {
        close(bfds[0]);
        return;
    }
    uint64_t bytes = res->stream_bytes;
    uint64_t bt0 = bench_now_ns();
    double ws = write_loop(bfds[0], bytes, &res->base_writes, res->err, sizeof(res->err));
    close(bfds[0]);
    struct child_report br;
    crc = child_finish(&bc, &br);
    proc_mem_from_child(&res->base_receiver, &br, &bc, sr->pages);
    if (ws < 0)
        return;
    if (crc < 0 || br.rc < 0 || br.bytes != bytes) {
        snprintf(res->err, sizeof(res->err), "baseline reader: %s (read %" PRIu64 " of %" PRIu64 " bytes)",
                 br.msg, br.bytes, bytes);
        return;
    }
    res->base_s = (double)(br.t_done - bt0) / 1e9;
    res->base_gbps = gbps(bytes, res->base_s);
    res->ok = true;

    /* For information: the kernel's own path for guest memory, sendfile from
     * the guest's memfd into the socket, splice into another memfd. */
    if (sock_pair(kind, bfds, res->err, sizeof(res->err)) < 0)
        return;
    uint32_t sink = 0;
    struct ls_sim_memory sm = { .fd = -1 };
    memset(&bc, 0, sizeof(bc));
    rc = sink_domain(b, bytes, &sink, &sm);
    if (rc == 0)
        rc = child_spawn(&bc, "memfd-sink", bfds[1], sm.fd, res->err, sizeof(res->err));
    close(bfds[1]);
    if (rc < 0) {
        close(bfds[0]);
        sink_domain_free(b, sink, &sm);
        res->err[0] = '\0';
        return;
    }
    bt0 = bench_now_ns();
    double g = guest_write_loop(b, bfds[0], bytes, true);
    close(bfds[0]);
    crc = child_finish(&bc, &br);
    sink_domain_free(b, sink, &sm);
    if (g > 0 && crc == 0 && br.rc == 0 && br.bytes == bytes)
        res->guest_sendfile_gbps = gbps(bytes, (double)(br.t_done - bt0) / 1e9);
}

static double leg_gbps_phase(const struct leg_result *r);

/* Waits until the daemon's memory pool has no refill running (a destroyed
 * domain's memory being allocated again in the background), so that no leg
 * times it; returns how many memfds domains have taken from the pool so far,
 * or -1 when the daemon cannot say. */
static int64_t pool_settle(struct bench *b)
{
    struct ls_sim_pool_status ps;
    return bench_pool_settle(&b->host, &ps) == 0 ? (int64_t)ps.taken : -1;
}

/* Load from anything else on this shared 2-core machine swings a run by up
 * to 10x, lockstep's and its baseline's alike. Each leg runs LEG_RUNS times,
 * lockstep then its baseline back to back, and keeps the best of each side
 * (lockstep's by page phase). */
static void leg_repeated(struct bench *b, struct size_result *sr, struct leg_result *res,
                         enum leg l)
{
    for (int i = 0; i < LEG_RUNS; i++) {
        struct leg_result one;
        memset(&one, 0, sizeof(one));
        int64_t taken_before = pool_settle(b);
        if (l == LEG_SHM)
            shm_once(b, sr, &one);
        else
            socket_once(b, sr, &one, l == LEG_UNIX ? SOCK_UNIX_KIND : SOCK_TCP_KIND);
        struct ls_sim_pool_status ps;
        struct ls_errbuf pe;
        ls_err_clear(&pe);
        int pooled = taken_before >= 0 && ls_sim_pool_status(b->be, &ps, &pe) == 0
                         ? (int64_t)ps.taken > taken_before : -1;
        if (!one.ran || !one.ok) {
            *res = one;   /* a failed run is the leg's result */
            return;
        }
        struct leg_result best = *res;
        if (i == 0 || leg_phase_rate(&one) > leg_phase_rate(&best)) {
            *res = one;
            if (i > 0 && best.base_gbps > one.base_gbps) {
                res->base_gbps = best.base_gbps;
                res->base_s = best.base_s;
                res->base_writes = best.base_writes;
                res->base_receiver = best.base_receiver;
            }
        } else if (one.base_gbps > best.base_gbps) {
            res->base_gbps = one.base_gbps;
            res->base_s = one.base_s;
            res->base_writes = one.base_writes;
            res->base_receiver = one.base_receiver;
        }
        if (best.guest_src_gbps > res->guest_src_gbps)
            res->guest_src_gbps = best.guest_src_gbps;
        if (best.guest_sendfile_gbps > res->guest_sendfile_gbps)
            res->guest_sendfile_gbps = best.guest_sendfile_gbps;
        memcpy(res->run_phase_gbps, best.run_phase_gbps, sizeof(best.run_phase_gbps));
        memcpy(res->run_base_gbps, best.run_base_gbps, sizeof(best.run_base_gbps));
        memcpy(res->run_pooled, best.run_pooled, sizeof(best.run_pooled));
        res->run_phase_gbps[i] = leg_gbps_phase(&one);
        res->run_base_gbps[i] = one.base_gbps;
        res->run_pooled[i] = pooled;
        res->runs = i + 1;
    }
}

/* ---- output ----------------------------------------------------------------- */

static const char *verdict(bool pass) { return pass ? "PASS" : "MISS"; }

/* Rates count the stream's bytes (guest pages + 8 bytes of pfn word per page
 * + the records around them), as the baselines do. */
static double leg_gbps_op(const struct leg_result *r)
{
    return gbps(r->stream_bytes, r->op_s);
}

static double leg_gbps_phase(const struct leg_result *r)
{
    /* progress counts guest page bytes; the pfn words ride along (8 per page) */
    return r->phase_s > 0 ? (double)r->phase_bytes * (PAGE + 8) / PAGE / r->phase_s / GB : 0;
}

static double ratio(double v, const struct leg_result *r)
{
    return r->base_gbps > 0 ? v / r->base_gbps : 0;
}

static bool leg_pass(enum leg l, const struct leg_result *r, double v, double sys)
{
    switch (l) {
    case LEG_NULL: return v >= TARGET_NULL_GBPS && sys <= TARGET_NULL_SYSCALLS;
    case LEG_SHM: return ratio(v, r) >= TARGET_SHM_RATIO;
    default: return ratio(v, r) >= TARGET_SOCK_RATIO && r->digest_match;
    }
}

static const char *target_text(enum leg l)
{
    switch (l) {
    case LEG_NULL: return ">=50 GB/s, <=2 sysc";
    case LEG_SHM: return ">=0.9 x write loop";
    default: return ">=0.8 x 2-proc copy";
    }
}

/* The guest's unallocated pages before the prefault. In 2 MiB pages a hole
 * lies inside an allocated page and the memfd holds more than the guest's
 * pages (the special pages' 2 MiB page): none are left then. */
static double hole_mib(const struct size_result *sr)
{
    int64_t holes = (int64_t)(sr->pages * PAGE) - sr->alloc_before_prefault;
    return holes > 0 ? (double)holes / MIB : 0.0;
}

static void print_size_header(const struct size_result *sr)
{
    printf("\n== %.0f MiB guest: %" PRIu64 " pages in %" PRIu64 " batches of <= %u "
           "(content generated in %.2f s, untimed) ==\n",
           (double)sr->memory_kib / 1024.0, sr->pages, sr->batches, BATCH_PAGES, sr->gen_s);
    if (sr->alloc_before_prefault < 0)
        printf("   (the daemon's memfds are not visible here: no prefault, no allocation figures)\n");
    else if (sr->prefault_s >= 0)
        printf("   prefault: the sim left %.1f MiB of the guest's zero pages as memfd holes; written "
               "(allocated) before timing in %.2f s (--no-prefault: leave them, the first leg that reads "
               "them allocates them)\n", hole_mib(sr), sr->prefault_s);
    else if (sr->prefault_err[0])
        printf("   prefault not done (%s): the first leg that reads the guest allocates its holes\n",
               sr->prefault_err);
    else
        printf("   no prefault: %.1f MiB of the guest's zero pages are memfd holes, allocated by the "
               "first leg that reads them\n", hole_mib(sr));
}

static void print_leg(enum leg l, const struct size_result *sr)
{
    const struct leg_result *r = &sr->leg[l];
    if (!r->ran || !r->ok) {
        printf("  %-13s FAILED: %s\n", leg_titles[l], r->err[0] ? r->err : "did not run");
        return;
    }
    double pages = (double)sr->pages;
    double op = leg_gbps_op(r), ph = leg_gbps_phase(r);
    double ph_pages = (double)r->phase_bytes / PAGE;
    bool seen = r->phase_s > 0 && ph_pages > 0;
    char phase[128] = "page phase too short to observe";
    if (seen)
        snprintf(phase, sizeof(phase), "page phase %7.2f GB/s %7.1f ns/page %5.2f sysc/batch",
                 ph, r->phase_s * 1e9 / ph_pages, r->sys_per_batch_phase);
    printf("  %-13s whole op %7.2f GB/s %7.1f ns/page %5.2f sysc/batch | %s%s\n", leg_titles[l],
           op, r->op_s * 1e9 / pages, r->sys_per_batch_op, phase,
           l == LEG_NULL ? " (best of 3 saves)" : "");
    if (l == LEG_NULL)
        printf("  %-13s baseline: the target, 50 GB/s (a plain 4 MiB write loop to /dev/null: "
               "%" PRIu64 " writes in %.1f us)\n", "", r->base_writes, r->base_s * 1e6);
    else if (l == LEG_SHM)
    {
        printf("  %-13s baseline: write() loop, %" PRIu64 " x 4 MiB to a tmpfs file: %.2f GB/s "
               "(%.3f s); stream %" PRIu64 " bytes\n", "", r->base_writes, r->base_gbps,
               r->base_s, r->stream_bytes);
        if (r->guest_src_gbps > 0 && r->guest_sendfile_gbps > 0)
            printf("  %-13s from the guest's own memory instead of one buffer that stays in the "
                   "cache: the write loop (mapping populated before timing) %.2f GB/s (%.3f of the "
                   "baseline), a 4 MiB sendfile loop from its memfd %.2f GB/s (%.3f); lockstep's "
                   "page phase is %.3f of the faster of the two\n", "", r->guest_src_gbps,
                   r->guest_src_gbps / r->base_gbps, r->guest_sendfile_gbps,
                   r->guest_sendfile_gbps / r->base_gbps,
                   leg_gbps_phase(r) / (r->guest_src_gbps > r->guest_sendfile_gbps
                                            ? r->guest_src_gbps : r->guest_sendfile_gbps));
    }
    else {
        printf("  %-13s baseline: two-process copy, %" PRIu64 " x 4 MiB writes/reads: %.2f GB/s "
               "(%.3f s); receiver read syscalls/batch: whole op %.2f, page phase %.2f; "
               "digest %s\n", "", r->base_writes, r->base_gbps, r->base_s,
               r->rsys_per_batch_op, r->rsys_per_batch_phase,
               r->digest_match ? "matches the saved one" : "DIFFERS from the saved one");
        if (r->guest_sendfile_gbps > 0)
            printf("  %-13s the kernel's path for guest memory (sendfile from the guest's memfd, "
                   "splice into allocated memory of the receiving guest's page size, no records): %.2f GB/s = %.3f of the baseline; "
                   "lockstep's page phase is %.3f of it\n", "", r->guest_sendfile_gbps,
                   r->guest_sendfile_gbps / r->base_gbps, leg_gbps_phase(r) / r->guest_sendfile_gbps);
    }
    if (r->runs > 1) {
        printf("  %-13s %d runs, each lockstep then its baseline (best of each kept): page phase", "",
               r->runs);
        for (int i = 0; i < r->runs; i++)
            printf("%s %.2f", i ? "," : "", r->run_phase_gbps[i]);
        printf(" GB/s; baseline");
        for (int i = 0; i < r->runs; i++)
            printf("%s %.2f", i ? "," : "", r->run_base_gbps[i]);
        printf(" GB/s\n");
        if (l == LEG_UNIX || l == LEG_TCP) {
            printf("  %-13s receiving domain's memory, by run:", "");
            for (int i = 0; i < r->runs; i++)
                printf("%s %s", i ? "," : "", r->run_pooled[i] > 0 ? "from the daemon's pool"
                                              : r->run_pooled[i] == 0 ? "fresh" : "unknown");
            printf("\n");
            printf("  %-13s the kept run, ms from the save's start: receiver's first page %.1f, "
                   "last page %.1f, done %.1f; saver done %.1f\n", "", r->recv_first_s * 1e3,
                   r->recv_last_s * 1e3, r->recv_done_s * 1e3, r->save_done_s * 1e3);
        }
    }
    printf("  %-13s ratio: whole op %.3f, page phase %.3f; target %s: whole op %s, "
           "page phase %s\n", "", ratio(op, r), ratio(ph, r), target_text(l),
           verdict(leg_pass(l, r, op, r->sys_per_batch_op)),
           seen ? verdict(leg_pass(l, r, ph, r->sys_per_batch_phase)) : "n/a");
    printf("  %-13s peak RSS: saver %.1f MiB (excl. guest mapping %.1f MiB), cpu %.2f s, "
           "%.3f page faults/page", "", r->saver.hwm_mib, r->saver.nonguest_mib, r->saver.cpu_s,
           r->saver.faults_per_page);
    if (r->receiver.have)
        printf("; receiver %.1f MiB (excl. guest mapping %.1f MiB), cpu %.2f s, "
               "%.3f page faults/page; baseline reader %.1f MiB", r->receiver.hwm_mib,
               r->receiver.nonguest_mib, r->receiver.cpu_s, r->receiver.faults_per_page,
               r->base_receiver.hwm_mib);
    printf("\n");
    if (r->guest_alloc_before >= 0 && r->guest_alloc_after >= 0)
        printf("  %-13s guest memfd in the daemon: %.1f MiB allocated before the save, %.1f MiB "
               "after (populated: %.1f MiB)\n", "", (double)r->guest_alloc_before / MIB,
               (double)r->guest_alloc_after / MIB, (double)sr->pages * PAGE / MIB);
    printf("\n");
    fflush(stdout);
}

static void print_summary(const struct size_result *srs, size_t n)
{
    printf("\n== summary (GB = 1e9 bytes; ratio = lockstep / baseline measured in the same run) ==\n");
    printf("%-6s %-13s %8s %8s %8s %8s %7s %7s %7s %7s  %-20s %-5s %-5s %9s %9s\n",
           "guest", "destination", "op GB/s", "ph GB/s", "op ns/pg", "ph ns/pg", "sysc/b",
           "base", "op rat", "ph rat", "target", "op", "phase", "saverRSS", "recvRSS");
    for (size_t i = 0; i < n; i++) {
        const struct size_result *sr = &srs[i];
        for (int l = 0; l < LEG_COUNT; l++) {
            const struct leg_result *r = &sr->leg[l];
            char guest[16];
            snprintf(guest, sizeof(guest), "%.0fG", (double)sr->memory_kib / (1024.0 * 1024.0));
            if ((double)sr->memory_kib < 1024.0 * 1024.0)
                snprintf(guest, sizeof(guest), "%.0fM", (double)sr->memory_kib / 1024.0);
            if (!r->ran || !r->ok) {
                if (r->ran || r->err[0])
                    printf("%-6s %-13s FAILED: %s\n", guest, leg_titles[l], r->err);
                continue;
            }
            double op = leg_gbps_op(r), ph = leg_gbps_phase(r);
            double ph_pages = (double)r->phase_bytes / PAGE;
            bool seen = r->phase_s > 0 && ph_pages > 0;
            char recv[16] = "-", ph_rate[16] = "n/a", ph_ns[16] = "n/a", ph_sys[16] = "n/a",
                 ph_ratio[16] = "n/a";
            if (r->receiver.have)
                snprintf(recv, sizeof(recv), "%.1f", r->receiver.nonguest_mib);
            if (seen) {
                snprintf(ph_rate, sizeof(ph_rate), "%.2f", ph);
                snprintf(ph_ns, sizeof(ph_ns), "%.1f", r->phase_s * 1e9 / ph_pages);
                snprintf(ph_sys, sizeof(ph_sys), "%.2f", r->sys_per_batch_phase);
                snprintf(ph_ratio, sizeof(ph_ratio), "%.3f", ratio(ph, r));
            }
            printf("%-6s %-13s %8.2f %8s %8.1f %8s %7s %7.2f %7.3f %7s  %-20s %-5s %-5s "
                   "%9.1f %9s\n",
                   guest, leg_titles[l], op, ph_rate, r->op_s * 1e9 / (double)sr->pages, ph_ns,
                   ph_sys, r->base_gbps, ratio(op, r), ph_ratio, target_text(l),
                   verdict(leg_pass((enum leg)l, r, op, r->sys_per_batch_op)),
                   seen ? verdict(leg_pass((enum leg)l, r, ph, r->sys_per_batch_phase)) : "n/a",
                   r->saver.nonguest_mib, recv);
        }
    }
    printf("(op = whole operation, ph = page phase; sysc/b = saver write syscalls per 1024-page "
           "batch in the page phase; base = baseline GB/s, for /dev/null the 50 GB/s target;\n"
           " saverRSS/recvRSS = peak RSS excluding the guest mapping (RssAnon+RssFile), MiB)\n");

    /* Streaming machinery RSS: <= 64 MiB above the guest, flat across sizes. */
    printf("\n== peak RSS of the streaming machinery, excluding the guest's memfd mapping "
           "(target <= %.0f MiB, flat: grows < %.0f MiB from the smallest to the largest guest) ==\n",
           TARGET_RSS_MIB, FLAT_MIB);
    for (int l = 0; l < LEG_COUNT; l++) {
        for (int side = 0; side < 2; side++) {
            double lo = -1, hi = -1, max = 0;
            bool any = false;
            bool ran = false;
            for (size_t i = 0; i < n; i++)
                ran |= srs[i].leg[l].ran && (side ? srs[i].leg[l].receiver.have : srs[i].leg[l].saver.have);
            if (!ran)
                continue;
            printf("  %-13s %-9s", leg_titles[l], side ? "receiver" : "saver");
            for (size_t i = 0; i < n; i++) {
                const struct leg_result *r = &srs[i].leg[l];
                const struct proc_mem *m = side ? &r->receiver : &r->saver;
                if (!r->ran || !m->have) {
                    printf(" %10s", "-");
                    continue;
                }
                any = true;
                printf(" %6.1f MiB", m->nonguest_mib);
                if (lo < 0)
                    lo = m->nonguest_mib;
                hi = m->nonguest_mib;
                if (m->nonguest_mib > max)
                    max = m->nonguest_mib;
            }
            if (any)
                printf("   <= %.0f MiB: %s, flat: %s (%+.1f MiB)", TARGET_RSS_MIB,
                       verdict(max <= TARGET_RSS_MIB),
                       n > 1 ? verdict(hi - lo < FLAT_MIB) : "n/a", hi - lo);
            printf("\n");
        }
    }
}

/* ---- main ------------------------------------------------------------------- */


static void memcpy_reference(void)
{
    size_t len = 256u << 20;
    char *a = malloc(len), *b = malloc(len);
    if (!a || !b) {
        free(a);
        free(b);
        return;
    }
    memset(a, 1, len);
    memset(b, 2, len);
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < 4; i++)
        memcpy(i % 2 ? a : b, i % 2 ? b : a, len);
    double s = (double)(bench_now_ns() - t0) / 1e9;
    printf("machine: %ld cores; memcpy of 256 MiB buffers: %.1f GB/s\n",
           sysconf(_SC_NPROCESSORS_ONLN), 4.0 * (double)len / s / GB);
    free(a);
    free(b);
}

static const char usage[] =
"Usage: bench_stream [--sizes 1G,4G] [--type hvm|pv] [--legs null,shm,unix,tcp]\n"
"                    [--shm-dir /dev/shm] [--no-prefault]\n"
"Saves a sim domain of each size to each destination and prints GB/s, ns per page,\n"
"syscalls per 1024-page batch, the ratio to a baseline measured in the same run,\n"
"PASS/MISS against the targets and peak RSS. Always exits 0 once it has run.\n";

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        if (strcmp(argv[2], "restore") == 0)
            return child_restore();
        if (strcmp(argv[2], "memfd-sink") == 0)
            return child_memfd_sink();
        if (strcmp(argv[2], "sink") == 0)
            return child_sink();
        return 2;
    }
    const char *sizes = "1G,4G", *legs = "null,shm,unix,tcp";
    bool prefault = true;
    struct bench b;
    memset(&b, 0, sizeof(b));
    b.shm_dir = "/dev/shm";
    enum ls_guest_type type = LS_GUEST_HVM;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            sizes = argv[++i];
        else if (strcmp(argv[i], "--legs") == 0 && i + 1 < argc)
            legs = argv[++i];
        else if (strcmp(argv[i], "--no-prefault") == 0)
            prefault = false;
        else if (strcmp(argv[i], "--shm-dir") == 0 && i + 1 < argc)
            b.shm_dir = argv[++i];
        else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "hvm") == 0)
                type = LS_GUEST_HVM;
            else if (strcmp(argv[i], "pv") == 0)
                type = LS_GUEST_PV;
            else {
                fprintf(stderr, "%s: --type: '%s' is not hvm or pv\n%s", prog, argv[i], usage);
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n%s", prog, argv[i], usage);
            return 2;
        }
    }
    bool want[LEG_COUNT] = { false };
    {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", legs);
        for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int l;
            for (l = 0; l < LEG_COUNT && strcmp(t, leg_names[l]) != 0; l++)
                ;
            if (l == LEG_COUNT) {
                fprintf(stderr, "%s: --legs: unknown leg '%s' (null, shm, unix, tcp)\n", prog, t);
                return 2;
            }
            want[l] = true;
        }
    }
    struct size_result srs[8];
    size_t nsizes = 0;
    memset(srs, 0, sizeof(srs));
    {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", sizes);
        uint64_t bytes;
        for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (nsizes == sizeof(srs) / sizeof(srs[0]) ||
                ls_parse_size(t, &bytes) < 0 || bytes < (1u << 20) || bytes % 4096) {
                fprintf(stderr, "%s: --sizes: '%s' is not a size like 256M or 4G (at most 8)\n",
                        prog, t);
                return 2;
            }
            srs[nsizes++].memory_kib = bytes >> 10;
        }
    }
    ssize_t sl = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (sl <= 0) {
        fprintf(stderr, "%s: cannot find my own executable: %s\n", prog, strerror(errno));
        return 1;
    }
    self_exe[sl] = '\0';

    bench_prog = prog;
    bench_host_open(&b.host, NULL);
    b.ctx = b.host.ctx;
    b.be = b.host.be;
    struct ls_errbuf err;
    ls_err_clear(&err);
    int dpid = 0;
    char rundir[4096] = "";
    ls_sim_rundir(rundir, sizeof(rundir));
    if (ls_sim_daemon_pid(b.be, &dpid, &err) == 0)
        b.dpid = dpid;
    if (dpid)
        printf("sim daemon pid %d, rundir %s\n", dpid, rundir);
    struct ls_sim_pool_status backing;
    if (ls_sim_pool_status(b.be, &backing, &err) == 0) {
        b.huge_pages = backing.huge_pages;
        printf("guest memory: %s\n", backing.huge_pages
               ? "2 MiB pages (lockstep-simd --huge-pages, as Xen backs HVM guests with superpages)"
               : "4 KiB pages (memfds; LOCKSTEP_SIMD_HUGE_PAGES=1 for 2 MiB pages)");
    }
    memcpy_reference();

    for (size_t i = 0; i < nsizes; i++) {
        struct size_result *sr = &srs[i];
        char name[64];
        snprintf(name, sizeof(name), "bench-%d-%zu", (int)getpid(), i);
        struct ls_sim_create_args a = { .type = type, .vcpus = 2, .memory_kib = sr->memory_kib,
                                        .seed = 7 + i, .name = name, .populate = true,
                                        /* the stream's cost, not QEMU's start-up */
                                        .device_model = LS_DM_STANDIN };
        uint64_t t0 = bench_now_ns();
        ls_err_clear(&err);
        if (ls_sim_create(b.be, &a, &b.domid, &err) < 0) {
            fprintf(stderr, "%s: creating a %" PRIu64 " KiB sim domain: %s\n", prog,
                    sr->memory_kib, err.msg);
            continue;
        }
        sr->gen_s = (double)(bench_now_ns() - t0) / 1e9;
        struct ls_domain_info info;
        if (ls_domain_info(b.ctx, b.domid, &info, &err) < 0) {
            fprintf(stderr, "%s: domain %u: %s\n", prog, b.domid, err.msg);
            ls_domain_destroy(b.ctx, b.domid, &err);
            continue;
        }
        sr->pages = info.memory_kib / 4;
        sr->batches = (sr->pages + BATCH_PAGES - 1) / BATCH_PAGES;
        sr->prefault_s = -1;
        sr->alloc_before_prefault = guest_allocated(&b, b.domid);
        if (prefault) {
            t0 = bench_now_ns();
            if (bench_guest_populate(b.be, b.domid, sr->prefault_err, sizeof(sr->prefault_err)) == 0)
                sr->prefault_s = (double)(bench_now_ns() - t0) / 1e9;
        }
        print_size_header(sr);
        for (int l = 0; l < LEG_COUNT; l++) {
            if (!want[l])
                continue;
            switch (l) {
            case LEG_NULL: leg_null(&b, sr, &sr->leg[l]); break;
            default: leg_repeated(&b, sr, &sr->leg[l], (enum leg)l); break;
            }
            if (l == LEG_SHM)
                shm_remove(&b);
            print_leg((enum leg)l, sr);
        }
        ls_err_clear(&err);
        if (ls_domain_destroy(b.ctx, b.domid, &err) < 0)
            fprintf(stderr, "%s: destroying domain %u: %s\n", prog, b.domid, err.msg);
    }
    print_summary(srs, nsizes);

    bench_host_close(&b.host, false);
    return 0;
}
