/* test/colo/test_colo_disk.c - COLO disk replication (states/colo_disk.def)
 * between two real QEMUs, as the roles drive it.
 *
 * Each QEMU holds the guest's disk as the sim does (a quorum drive lsdisk0
 * over a raw file); colo_disk jobs run on the QMP monitor the roles use, and
 * the "guest" writes through a second monitor with qemu-io, block k at a
 * place and with a pattern that follow from the seed. A model of the
 * primary's disk is kept here; after every checkpoint the secondary's view
 * (lsdisk0-top) is read against it. qemu-io prints its verdicts on QEMU's
 * stdout, which is block-buffered into the log: the logs are read after
 * each QEMU quit, and the sequence of verdicts (offset, passed or not) must
 * be exactly the one expected, negative controls included (the secondary
 * does not see a primary write before its checkpoint).
 *
 * Every dispatch of colo_disk is written to rows/test_colo_disk.rows for
 * the suite's row coverage. Cost under ASan on this 2-core VM at load 10:
 * 2 x 100 checkpoints 13 s, 30 failover samples 37 s (two QEMUs each), the
 * scripted sweep about 15 s, two sim guests' own writes replicated over 20
 * checkpoints 7 s; CD_ONLY=NAME runs one test, CD_SEED=N one
 * failover sample.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/sim/sim.h"
#include "lockstep/sim.h"
#include "states/colo_disk.h"
#include "test/sim/simtest.h"
#include "test/qmp/qemu_peer.h"
#include "test/qmp/qmp_testutil.h"

#define BLOCK      65536u
#define NBLOCKS    64u                    /* a 4 MiB disk */
#define DISK_BYTES (BLOCK * NBLOCKS)
#define CHECKPOINTS 100
#define WRITES_PER_INTERVAL 2

static FILE *rows;
static int injected_rc;   /* the rc of the dispatch the engine faulted (0: skipped) */

static void trace_rows(const struct fsm_trace_rec *r, void *data)
{
    (void)data;
    if (r->faulted && strcmp(r->machine, "colo_disk") == 0) {
        /* (A fault in its QMP connection's own machine must end the job too.) */
        injected_rc = r->rc;
        if (getenv("CD_DEBUG"))
            fsm_trace_stderr(r, NULL);
    }
    if (rows && strcmp(r->machine, "colo_disk") == 0)
        fprintf(rows, "colo_disk %s %s\n", r->state, r->event);
}

/* One side: its QEMU, and the test's own monitor on it (the "guest"). */
struct side {
    struct qemu_peer q;
    struct tconn guest;
    char dir[32], disk[160];
    /* verdicts expected in its log, in order: offset, and whether the read passes */
    struct { uint64_t off; bool ok; } want[4096];
    unsigned nwant;
};

struct pair {
    struct tloop l;
    struct side pri, sec;
    struct colo_disk_cfg cfg;
    uint8_t model[NBLOCKS];        /* the primary's disk, block by block (a pattern) */
    uint8_t at_checkpoint[NBLOCKS];/* the model at the last checkpoint */
    uint64_t seed, writes;
    unsigned fresh[64], nfresh;    /* blocks written since the last checkpoint */
};

static int free_tcp_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0)
        return -1;
    close(s);
    return ntohs(a.sin_port);
}

static void side_start(struct pair *p, struct side *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/lscd.XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->disk, sizeof(s->disk), "%s/disk0.raw", s->dir);
    FILE *f = fopen(s->disk, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), DISK_BYTES), 0);
    fclose(f);
    char drive[400];
    /* The sim's disk: libxl's primary drive, on both sides. */
    snprintf(drive, sizeof(drive), "if=none,id=lsdisk0,driver=quorum,read-pattern=fifo,"
             "vote-threshold=1,children.0.driver=raw,children.0.file.filename=%s", s->disk);
    const char *extra[] = { "-drive", drive, NULL };
    struct qemu_peer_opts o = { .two_monitors = true, .extra = extra };
    assert_int_equal(qemu_peer_start(&s->q, &o), 0);
    assert_int_equal(tconn_open(&s->guest, &p->l, s->q.sock2, 20000), 0);
    assert_true(tloop_run_until(&p->l, &s->guest.ready, 20000));
}

static void hmp(struct pair *p, struct side *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hmp(struct pair *p, struct side *s, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    struct treply r = { 0 };
    assert_int_equal(qmp_hmp(s->guest.c, line, treply_cb, &r), 0);
    assert_true(tloop_run_until(&p->l, &r.called, 10000));
    if (r.rc != 0)
        fail_msg("%s: %s", line, r.msg);
}

/* The guest's view of its disk: a read of block b that must (ok) or must not
 * find pattern pat; the verdict is checked in the log later. */
static void expect_read(struct pair *p, struct side *s, const char *drive, unsigned b, uint8_t pat,
                        bool ok)
{
    assert_true(s->nwant < sizeof(s->want) / sizeof(s->want[0]));
    s->want[s->nwant].off = (uint64_t)b * BLOCK;
    s->want[s->nwant++].ok = ok;
    hmp(p, s, "qemu-io %s \"read -P 0x%02x %u %u\"", drive, pat, b * BLOCK, BLOCK);
}

struct job {
    struct colo_disk_task t;
    bool done;
    char state[24];
    char err[LS_ERRBUF_LEN];
};

static void job_done(struct fsm *m, int rc)
{
    struct job *j = (struct job *)m->owner;   /* t is j's first member */
    (void)rc;
    j->done = true;
}

/* Run one colo_disk job to its end; returns its final state's name in j. */
static const char *run_job(struct pair *p, struct side *s, struct job *j, int ev)
{
    memset(j, 0, sizeof(*j));
    colo_disk_init(&j->t, &p->l.sched.sched, 7, s->q.sock, s->q.log, &p->cfg, job_done);
    fsm_post(&j->t.m, ev, 0, NULL);
    assert_true(tloop_run_until(&p->l, &j->done, 30000));
    snprintf(j->state, sizeof(j->state), "%s", fsm_state_name(&j->t.m));
    snprintf(j->err, sizeof(j->err), "%s", fsm_errmsg(&j->t.m));
    return j->state;
}

static void job_ok(struct pair *p, struct side *s, int ev)
{
    struct job j;
    const char *st = run_job(p, s, &j, ev);
    if (strcmp(st, "DONE") != 0)
        fail_msg("job %d on %s ended %s: %s", ev, s == &p->pri ? "primary" : "secondary", st,
                 j.err);
}

/* Write k of the guest: a block and a pattern (1..255) from the seed. */
static void guest_write(struct pair *p)
{
    uint64_t k = ++p->writes;
    uint64_t x = p->seed * 0x9e3779b97f4a7c15ull + k * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    unsigned b = (unsigned)(x % NBLOCKS);
    uint8_t pat = (uint8_t)(1 + k % 255);
    hmp(p, &p->pri, "qemu-io lsdisk0 \"write -P 0x%02x %u %u\"", pat, b * BLOCK, BLOCK);
    /* Negative control: the replica's view keeps the old data until the checkpoint. */
    expect_read(p, &p->sec, "lsdisk0-top", b, pat, p->at_checkpoint[b] == pat);
    p->model[b] = pat;
    if (p->nfresh < 64)
        p->fresh[p->nfresh++] = b;
}

static void checkpoint(struct pair *p)
{
    /* libxl: the primary's before its resume, the secondary's at its preresume. */
    job_ok(p, &p->pri, COLO_DISK_E_CHECKPOINT);
    job_ok(p, &p->sec, COLO_DISK_E_CHECKPOINT);
    memcpy(p->at_checkpoint, p->model, sizeof(p->model));
}

static void query_sound(struct pair *p, struct side *s)
{
    struct job j;
    const char *st = run_job(p, s, &j, COLO_DISK_E_QUERY);
    if (strcmp(st, "DONE") != 0)
        fail_msg("replication status on %s: %s %s %s", s == &p->pri ? "primary" : "secondary",
                 st, j.t.broken, j.err);
}

static void pair_start(struct pair *p, bool tcp, uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    p->seed = seed;
    tloop_init(&p->l);
    p->l.sched.sched.trace = trace_rows;
    side_start(p, &p->pri);
    side_start(p, &p->sec);
    p->cfg.ndisks = 1;
    snprintf(p->cfg.image_dir, sizeof(p->cfg.image_dir), "%s", p->sec.q.dir);
    p->cfg.nbd.tcp = tcp;
    if (tcp) {
        snprintf(p->cfg.nbd.host, sizeof(p->cfg.nbd.host), "127.0.0.1");
        p->cfg.nbd.port = free_tcp_port();
        assert_true(p->cfg.nbd.port > 0);
    } else {
        snprintf(p->cfg.nbd.path, sizeof(p->cfg.nbd.path), "%s/nbd.sock", p->sec.q.dir);
    }
    /* libxl's order: the secondary exports, then the primary connects. */
    job_ok(p, &p->sec, COLO_DISK_E_SETUP_SECONDARY);
    job_ok(p, &p->pri, COLO_DISK_E_SETUP_PRIMARY);
}

/* Until pid has exited (its stdout flushed): reaped here if it is ours, or a
 * zombie or gone if it is another's (the sim daemon's block QEMU). */
static void wait_exited(pid_t pid)
{
    for (int i = 0; i < 5000; i++) {
        char path[64], st[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        bool gone = !f || !fgets(st, sizeof(st), f) || strstr(st, ") Z ");
        if (f)
            fclose(f);
        if (gone || waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(1000);
    }
}

/* Quit a side's QEMU (its stdout is flushed), then check its verdicts. */
static void side_finish(struct pair *p, struct side *s, bool quit)
{
    if (quit && s->guest.c) {
        struct treply r = { 0 };
        if (qmp_exec(s->guest.c, "quit", NULL, treply_cb, &r) == 0)
            tloop_run_until(&p->l, &r.called, 10000);
    }
    if (s->guest.c)
        tconn_close(&s->guest, &p->l);
    if (quit)
        wait_exited(s->q.pid);
    /* A QEMU killed takes its buffered stdout with it: no verdicts to read. */
    FILE *f = quit ? fopen(s->q.log, "r") : NULL;
    assert_true(f || !quit);
    char line[512];
    unsigned i = 0;
    unsigned long long failed_at = ~0ull;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long long off;
        bool ok;
        /* A failed verification prints its line, then the read's own. */
        if (sscanf(line, "read %*u/%*u bytes at offset %llu", &off) == 1) {
            if (failed_at == off) {
                failed_at = ~0ull;
                continue;
            }
            ok = true;
        } else if (sscanf(line, "Pattern verification failed at offset %llu", &off) == 1) {
            ok = false;
            failed_at = off;
        } else {
            continue;
        }
        if (i >= s->nwant)
            fail_msg("%s: an unexpected verdict: %s", s->q.log, line);
        if (s->want[i].off != off || s->want[i].ok != ok)
            fail_msg("%s: read %u of block at %llu %s, expected the read at %llu to %s", s->q.log,
                     i, off, ok ? "passed" : "failed", (unsigned long long)s->want[i].off,
                     s->want[i].ok ? "pass" : "fail");
        i++;
    }
    if (f) {
        fclose(f);
        assert_int_equal(i, s->nwant);
    }
    qemu_peer_stop(&s->q);
    unlink(s->disk);
    rmdir(s->dir);
}

static void pair_finish(struct pair *p)
{
    side_finish(p, &p->pri, p->pri.q.pid > 0);
    side_finish(p, &p->sec, p->sec.q.pid > 0);
    assert_int_equal(tloop_fini(&p->l), 0);
}

/* The secondary's whole view against the model at the last checkpoint. */
static void check_replica(struct pair *p, const char *drive)
{
    for (unsigned b = 0; b < NBLOCKS; b++)
        expect_read(p, &p->sec, drive, b, p->at_checkpoint[b], true);
}

/* CHECKPOINTS checkpoints with the guest writing; the replica equals the
 * primary at each, and a write of its own is gone after the next. */
static void run_checkpoints(bool tcp)
{
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_start(p, tcp, tcp ? 2 : 1);
    for (unsigned c = 1; c <= CHECKPOINTS; c++) {
        for (unsigned w = 0; w < WRITES_PER_INTERVAL; w++)
            guest_write(p);
        if (c % 7 == 0) {
            /* The replica writes a block of its own between checkpoints. */
            unsigned b = (c * 13) % NBLOCKS;
            uint8_t own = p->at_checkpoint[b] == 0xee ? 0xdd : 0xee;
            hmp(p, &p->sec, "qemu-io lsdisk0-top \"write -P 0x%02x %u %u\"", own, b * BLOCK,
                BLOCK);
            expect_read(p, &p->sec, "lsdisk0-top", b, own, true);
            checkpoint(p);
            expect_read(p, &p->sec, "lsdisk0-top", b, p->at_checkpoint[b], true);
        } else {
            checkpoint(p);
        }
        /* After the checkpoint the blocks just written read as the primary's. */
        for (unsigned i = 0; i < p->nfresh; i++)
            expect_read(p, &p->sec, "lsdisk0-top", p->fresh[i], p->model[p->fresh[i]], true);
        p->nfresh = 0;
        query_sound(p, &p->pri);
        query_sound(p, &p->sec);
    }
    check_replica(p, "lsdisk0-top");
    /* libxl's orderly teardown; 7.2 refuses the secondary's stop (recipe 3c). */
    job_ok(p, &p->pri, COLO_DISK_E_TEARDOWN_PRIMARY);
    struct job j;
    assert_string_equal(run_job(p, &p->sec, &j, COLO_DISK_E_TEARDOWN_SECONDARY), "DONE");
    if (j.t.note[0])
        assert_non_null(strstr(j.t.note, "Backup job was cancelled unexpectedly"));
    pair_finish(p);
    free(p);
}

static void test_checkpoints_unix(void **state) { run_checkpoints(false); }
static void test_checkpoints_tcp(void **state) { run_checkpoints(true); }

/* Where a failover sample stops the primary. */
enum fail_at {
    FAIL_MID_INTERVAL,   /* its guest wrote since the last checkpoint */
    FAIL_HALF_CHECKPOINT,/* its do-checkpoint done, the secondary's not: not a checkpoint */
    FAIL_AT_CHECKPOINT,  /* right after a whole checkpoint */
    FAIL_REPLICA_WROTE,  /* the replica's guest wrote a block of its own since */
    FAIL_LOCKSTEP_ONLY,  /* only its lockstep died: its QEMU lives and writes on */
    FAIL_AT_MAX_,
};

/* One sample: the primary is lost at a seeded point; the secondary takes
 * over with the primary's disk at the last whole checkpoint (plus what its
 * own guest wrote since), and its guest writes on. */
static void run_failover(unsigned seed)
{
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    enum fail_at at = (enum fail_at)(seed % FAIL_AT_MAX_);
    pair_start(p, (seed / FAIL_AT_MAX_) % 2, seed);
    unsigned cps = 1 + seed % 3;
    for (unsigned c = 0; c < cps; c++) {
        guest_write(p);
        checkpoint(p);
    }
    uint8_t own = 0;
    unsigned own_b = (seed * 5) % NBLOCKS;
    if (at == FAIL_HALF_CHECKPOINT) {
        guest_write(p);
        job_ok(p, &p->pri, COLO_DISK_E_CHECKPOINT);   /* the secondary's never comes */
    } else if (at == FAIL_REPLICA_WROTE) {
        own = p->at_checkpoint[own_b] == 0xee ? 0xdd : 0xee;
        hmp(p, &p->sec, "qemu-io lsdisk0-top \"write -P 0x%02x %u %u\"", own, own_b * BLOCK,
            BLOCK);
        expect_read(p, &p->sec, "lsdisk0-top", own_b, own, true);
        guest_write(p);
    } else if (at != FAIL_AT_CHECKPOINT) {
        guest_write(p);   /* after the last checkpoint: must not survive */
    }
    if (at != FAIL_LOCKSTEP_ONLY)
        side_finish(p, &p->pri, false);   /* SIGKILL: the primary's host is gone */
    job_ok(p, &p->sec, COLO_DISK_E_FAILOVER);
    if (at == FAIL_LOCKSTEP_ONLY) {
        /* The orphan primary writes on: none of it may reach the survivor. */
        unsigned b = (seed * 11) % NBLOCKS;
        hmp(p, &p->pri, "qemu-io lsdisk0 \"write -P 0x99 %u %u\"", b * BLOCK, BLOCK);
        side_finish(p, &p->pri, true);
    }
    for (unsigned b = 0; b < NBLOCKS; b++)
        expect_read(p, &p->sec, "lsdisk0-top", b,
                    own && b == own_b ? own : p->at_checkpoint[b], true);
    /* The survivor's guest goes on writing its disk (its view: the top;
     * QEMU commits the active and hidden images into lsdisk0 by an internal
     * job that query-block-jobs does not list, so when lsdisk0 alone holds
     * a write is not observable here). */
    hmp(p, &p->sec, "qemu-io lsdisk0-top \"write -P 0x5c 0 %u\"", BLOCK);
    expect_read(p, &p->sec, "lsdisk0-top", 0, 0x5c, true);
    side_finish(p, &p->sec, true);
    assert_int_equal(tloop_fini(&p->l), 0);
    free(p);
}

/* FAILOVER_SAMPLES seeded samples: each stop point 6 times, over unix and
 * TCP, after 1 to 3 checkpoints. */
#define FAILOVER_SAMPLES 30
static void test_failover(void **state)
{
    for (unsigned seed = 1; seed <= FAILOVER_SAMPLES; seed++) {
        if (getenv("CD_SEED") && (unsigned)atoi(getenv("CD_SEED")) != seed)
            continue;
        fprintf(stderr, "failover sample %u\n", seed);
        run_failover(seed);
    }
}

/* The secondary's QEMU killed: the primary's guest runs on, replication is
 * reported broken, the primary drops its NBD client and its disk is intact. */
static void test_secondary_lost(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    pair_start(p, false, 9);
    for (unsigned c = 0; c < 3; c++) {
        guest_write(p);
        checkpoint(p);
    }
    side_finish(p, &p->sec, false);
    hmp(p, &p->pri, "qemu-io lsdisk0 \"write -P 0x33 %u %u\"", 3 * BLOCK, BLOCK);
    p->model[3] = 0x33;
    struct job j;
    assert_string_equal(run_job(p, &p->pri, &j, COLO_DISK_E_QUERY), "BROKEN");
    assert_true(colo_disk_broken(&j.t));
    assert_string_equal(j.t.broken, "I/O error occurred");
    job_ok(p, &p->pri, COLO_DISK_E_TEARDOWN_PRIMARY);
    hmp(p, &p->pri, "qemu-io lsdisk0 \"write -P 0x22 %u %u\"", 5 * BLOCK, BLOCK);
    p->model[5] = 0x22;
    for (unsigned b = 0; b < NBLOCKS; b++)
        expect_read(p, &p->pri, "lsdisk0", b, p->model[b], true);
    side_finish(p, &p->pri, true);
    assert_int_equal(tloop_fini(&p->l), 0);
    free(p);
}

/* Errors are rows with QEMU's reason: no NBD server to connect to; a dead QEMU. */
static void test_errors(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->seed = 1;
    tloop_init(&p->l);
    p->l.sched.sched.trace = trace_rows;
    side_start(p, &p->pri);
    p->cfg.ndisks = 1;
    snprintf(p->cfg.nbd.path, sizeof(p->cfg.nbd.path), "%s/nobody.sock", p->pri.q.dir);
    struct job j;
    assert_string_equal(run_job(p, &p->pri, &j, COLO_DISK_E_SETUP_PRIMARY), "FAILED");
    assert_non_null(strstr(j.err, "drive_add"));
    assert_non_null(strstr(j.err, "nobody.sock"));
    /* A second disk the QEMU does not have. */
    p->cfg.ndisks = 2;
    snprintf(p->cfg.image_dir, sizeof(p->cfg.image_dir), "%s", p->pri.q.dir);
    assert_string_equal(run_job(p, &p->pri, &j, COLO_DISK_E_SETUP_SECONDARY), "FAILED");
    assert_non_null(strstr(j.err, "no drive lsdisk1"));
    p->cfg.ndisks = 1;
    side_finish(p, &p->pri, false);
    assert_string_equal(run_job(p, &p->pri, &j, COLO_DISK_E_CHECKPOINT), "FAILED");
    assert_non_null(strstr(j.err, "xen-colo-do-checkpoint"));
    assert_int_equal(tloop_fini(&p->l), 0);
    free(p);
}


/* ---- the sim's guests: their own disk writes, replicated ----------------------- */

/* Two sim HVM guests whose disks are drives of their block QEMUs: the
 * primary's vCPU writes its disk (disk write j: ls_sim_disk_write_at of its
 * seed), colo_disk replicates it to the secondary's, and after every
 * checkpoint of both (the guest paused, as a suspend leaves it) the
 * secondary's view holds exactly the primary's first K / every writes. */
static void test_sim_guests(void **state)
{
    /* simtest_setup/teardown: its daemon (and so its QEMUs) ends even when
     * an assertion ends the test early. */
    struct ls_backend *be = simtest_open();
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    tloop_init(&p->l);
    p->l.sched.sched.trace = trace_rows;
    char dir[] = "/tmp/lscds.XXXXXX", img[2][64];
    assert_non_null(mkdtemp(dir));
    struct side *sides[2] = { &p->pri, &p->sec };
    uint32_t dom[2];
    struct ls_errbuf e;
    ls_err_clear(&e);
    for (int i = 0; i < 2; i++) {
        snprintf(img[i], sizeof(img[i]), "%s/%s.raw", dir, i ? "sec" : "pri");
        FILE *f = fopen(img[i], "w");
        assert_non_null(f);
        assert_int_equal(ftruncate(fileno(f), DISK_BYTES), 0);
        fclose(f);
        struct ls_sim_create_args a = { .type = LS_GUEST_HVM, .memory_kib = 8192, .vcpus = 1,
                                        .seed = 21 + (uint64_t)i, .populate = true,
                                        .device_model = LS_DM_STANDIN };
        struct ls_sim_disks d;
        if (ls_sim_create(be, &a, &dom[i], &e) < 0 || be->ops->pause(be, dom[i], &e) < 0 ||
            ls_sim_attach_disk(be, dom[i], img[i], LS_SIM_DISK_RAW, &e) < 0 ||
            ls_sim_get_disks(be, dom[i], &d, &e) < 0)
            fail_msg("guest %d: %s", i, e.msg);
        sides[i]->q.pid = d.pid;
        snprintf(sides[i]->q.sock, sizeof(sides[i]->q.sock), "%s", d.qmp_path);
        snprintf(sides[i]->q.log, sizeof(sides[i]->q.log), "%.127s", d.log_path);
    }
    p->cfg.ndisks = 1;
    snprintf(p->cfg.image_dir, sizeof(p->cfg.image_dir), "%s", dir);
    snprintf(p->cfg.nbd.path, sizeof(p->cfg.nbd.path), "%s/nbd.sock", dir);
    job_ok(p, &p->sec, COLO_DISK_E_SETUP_SECONDARY);
    job_ok(p, &p->pri, COLO_DISK_E_SETUP_PRIMARY);
    struct ls_sim_disks cfg = { .every = 2, .block = 4096 }, d;
    assert_int_equal(ls_sim_set_disks(be, dom[0], &cfg, &e), 0);
    uint64_t k = 0;
    for (unsigned c = 0; c < 20; c++) {
        k += 30;   /* the guest's vCPU writes: 15 disk writes owed */
        struct ls_sim_workload w = { .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 21, .writes = k };
        assert_int_equal(ls_sim_set_workload(be, dom[0], &w, &e), 0);
        for (int i = 0; i < 10000 && (d = (ls_sim_get_disks(be, dom[0], &d, &e), d)).written <
                                         k / 2; i++)
            usleep(1000);
        assert_int_equal(d.written, k / 2);
        assert_int_equal(d.failed, 0);
        checkpoint(p);
        query_sound(p, &p->pri);
    }
    /* The secondary's view against the primary's writes, computed from its seed. */
    uint8_t want[DISK_BYTES / 4096] = { 0 };
    uint64_t sizes[1] = { DISK_BYTES };
    for (uint64_t j = 0; j < k / 2; j++) {
        unsigned disk;
        uint64_t off;
        uint8_t fill;
        ls_sim_disk_write_at(21, j, 4096, 1, sizes, &disk, &off, &fill);
        want[off / 4096] = fill;
    }
    assert_int_equal(tconn_open(&p->sec.guest, &p->l, p->sec.q.sock, 20000), 0);
    assert_true(tloop_run_until(&p->l, &p->sec.guest.ready, 20000));
    for (unsigned b = 0; b < DISK_BYTES / 4096; b++) {
        p->sec.want[p->sec.nwant].off = (uint64_t)b * 4096;
        p->sec.want[p->sec.nwant++].ok = true;
        hmp(p, &p->sec, "qemu-io lsdisk0-top \"read -P 0x%02x %u 4096\"", want[b], b * 4096);
    }
    side_finish(p, &p->sec, true);   /* quits the secondary's block QEMU, reads its verdicts */
    for (int i = 0; i < 2; i++)
        assert_int_equal(be->ops->destroy(be, dom[i], &e), 0);
    be->ops->close(be);
    assert_int_equal(tloop_fini(&p->l), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(p);
}

/* ---- every row: a scripted QMP peer refusing or hanging up at each step ---- */

enum peer_fault { PEER_OK, PEER_REFUSE, PEER_CLOSE };
struct script {
    unsigned at;                   /* the command (1-based) the fault hits */
    enum peer_fault how;
    unsigned seen;
};

static void script_disk(struct fake_peer *fp, int fd)
{
    struct script *sc = fp->arg;
    if (fp_handshake(fp, fd) < 0)
        return;
    long long id;
    while ((id = fp_read_cmd(fp, fd)) >= 0) {
        char reply[512];
        if (++sc->seen == sc->at && sc->how == PEER_CLOSE)
            return;   /* QEMU died on it */
        if (sc->seen == sc->at && sc->how == PEER_REFUSE)
            snprintf(reply, sizeof(reply), "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                     "\"injected refusal\"}, \"id\": %lld}\r\n", id);
        else if (strstr(fp->last_cmd, "\"query-block\""))
            snprintf(reply, sizeof(reply), "{\"return\": [{\"device\": \"lsdisk0\", \"inserted\": "
                     "{\"image\": {\"virtual-size\": %u}}}], \"id\": %lld}\r\n", DISK_BYTES, id);
        else if (strstr(fp->last_cmd, "\"query-xen-replication-status\""))
            snprintf(reply, sizeof(reply), "{\"return\": {\"error\": false}, \"id\": %lld}\r\n", id);
        else if (strstr(fp->last_cmd, "\"human-monitor-command\""))
            snprintf(reply, sizeof(reply), "{\"return\": \"\", \"id\": %lld}\r\n", id);
        else
            snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %lld}\r\n", id);
        if (fp_send(fp, fd, reply) < 0)
            return;
    }
}

/* One job against the scripted peer; its final state. */
static const char *peer_job(struct tloop *l, const struct colo_disk_cfg *cfg, int ev,
                            struct script *sc, struct job *j)
{
    struct fake_peer fp;
    assert_int_equal(fake_peer_start(&fp, script_disk, sc), 0);
    memset(j, 0, sizeof(*j));
    colo_disk_init(&j->t, &l->sched.sched, 7, fp.path, NULL, cfg, job_done);
    fsm_post(&j->t.m, ev, 0, NULL);
    assert_true(tloop_run_until(l, &j->done, 30000));
    snprintf(j->state, sizeof(j->state), "%s", fsm_state_name(&j->t.m));
    snprintf(j->err, sizeof(j->err), "%s", fsm_errmsg(&j->t.m));
    fake_peer_stop(&fp);
    return j->state;
}

static void test_every_step_fails(void **state)
{
    static const int jobs[] = { COLO_DISK_E_SETUP_SECONDARY, COLO_DISK_E_SETUP_PRIMARY,
                                COLO_DISK_E_CHECKPOINT, COLO_DISK_E_QUERY,
                                COLO_DISK_E_TEARDOWN_PRIMARY, COLO_DISK_E_TEARDOWN_SECONDARY,
                                COLO_DISK_E_FAILOVER };
    struct tloop l;
    tloop_init(&l);
    l.sched.sched.trace = trace_rows;
    int fds = count_open_fds();
    struct colo_disk_cfg cfg = { .ndisks = 2 };
    char dir[] = "/tmp/lscdf.XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(cfg.image_dir, sizeof(cfg.image_dir), "%s", dir);
    snprintf(cfg.nbd.path, sizeof(cfg.nbd.path), "%s/nbd.sock", dir);
    struct job *j = calloc(1, sizeof(*j));
    assert_non_null(j);
    unsigned runs = 0;
    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        /* query-block knows one disk: a second one fails the secondary's setup. */
        cfg.ndisks = jobs[i] == COLO_DISK_E_SETUP_SECONDARY ? 1 : 2;
        for (int how = PEER_REFUSE; how <= PEER_CLOSE; how++) {
            for (unsigned at = 1;; at++, runs++) {
                struct script sc = { .at = at, .how = (enum peer_fault)how };
                const char *st = peer_job(&l, &cfg, jobs[i], &sc, j);
                if (sc.seen < at) {   /* the job ended before the fault: a clean run */
                    assert_string_equal(st, jobs[i] == COLO_DISK_E_QUERY ? "DONE" : "DONE");
                    break;
                }
                if (jobs[i] == COLO_DISK_E_TEARDOWN_SECONDARY && at == 1 && how == PEER_REFUSE) {
                    /* 7.2's refusal of a secondary stop: noted, the teardown goes on. */
                    assert_string_equal(st, "DONE");
                    assert_non_null(strstr(j->t.note, "injected refusal"));
                    continue;
                }
                if (strcmp(st, "FAILED") != 0)
                    fail_msg("job %d, fault %d at command %u: ended %s", jobs[i], how, at, st);
                assert_non_null(strstr(j->err, how == PEER_REFUSE ? "injected refusal"
                                                                  : "QEMU is gone"));
            }
        }
        /* An action failing at each dispatch (the engine's fault hook). */
        struct script clean = { 0 };
        fsm_reset_counters();
        assert_string_equal(peer_job(&l, &cfg, jobs[i], &clean, j), "DONE");
        uint64_t n = fsm_dispatch_count();
        for (uint64_t k = 1; k <= n; k++, runs++) {
            struct script sc = { 0 };
            fsm_reset_counters();
            fsm_fault_arm(k, -EIO);
            injected_rc = 0;
            const char *st = peer_job(&l, &cfg, jobs[i], &sc, j);
            /* A fault skipped (fsm_nop, FSM_NOFAIL) lets the job end well. */
            if (fsm_fault_fired() && injected_rc < 0 && strcmp(st, "FAILED") != 0)
                fail_msg("job %d, fault at dispatch %llu: ended %s", jobs[i],
                         (unsigned long long)k, st);
        }
        fsm_reset_counters();
    }
    free(j);
    char img[300];
    for (unsigned n = 0; n < 2; n++) {
        snprintf(img, sizeof(img), "%s/lsdisk%u-active.qcow2", dir, n);
        unlink(img);
        snprintf(img, sizeof(img), "%s/lsdisk%u-hidden.qcow2", dir, n);
        unlink(img);
    }
    rmdir(dir);
    assert_int_equal(count_open_fds(), fds);
    assert_int_equal(tloop_fini(&l), 0);
    printf("colo_disk: %u scripted runs, every one ended\n", runs);
}

int main(void)
{
    const char *dir = getenv("LOCKSTEP_ROWS_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/test_colo_disk.rows", dir ? dir : ".");
    rows = fopen(path, "w");
    if (getenv("CD_ONLY"))   /* one test by name, when looking into it */
        cmocka_set_test_filter(getenv("CD_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoints_unix),
        cmocka_unit_test(test_checkpoints_tcp),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_secondary_lost),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_every_step_fails),
        cmocka_unit_test_setup_teardown(test_sim_guests, simtest_setup, simtest_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rows)
        fclose(rows);
    return rc;
}
