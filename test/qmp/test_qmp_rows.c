/* test/qmp/test_qmp_rows.c - every row of states/qmp_conn.def taken and
 * faulted, with the QMP client driven directly, in-process.
 *
 * The client runs on exec_fake's manual scheduler and virtual-clock loop
 * against the scripted QEMU (test/fakes/qmp_peer_fake.h), reached four ways:
 * its unix path; a unix path that appears late (connect retries); one that
 * never appears (the setup deadline); TCP (a name resolution first). The
 * owner sends query-status at once (held until READY), add-fd with an fd
 * once ready (refused at once over TCP), remove-fd after it, and closes when
 * all are answered.
 *
 * Each way runs clean, then again with, at every turn of the loop (before
 * it, or after it and before its events are dispatched): the owner's close,
 * a close twice, a close with the clock jumping, its cancel, QEMU's death,
 * the deadline passing; a fault at every action dispatch; every answer of
 * QEMU failed, withheld, cut by its death and not JSON, each of those again
 * with a close and a cancel at every turn; and a fault at every action of
 * each run in which QEMU died or answered so. After each run (the invariants in the
 * .def's header): done exactly once; every command called back once; no
 * protocol hole; no uv handle, fd or allocated byte left; a run the owner's
 * close reached ends CLOSED (rc 0) unless cancelled; a failure names what
 * QEMU said or did. Rows not taken nor marked FSM_UNREACHABLE fail the test.
 *
 * test_qmp_rows [--rows FILE]: FILE gets the rows taken ("qmp_conn STATE
 * EVENT" lines) for the suite's row coverage (test/CMakeLists.txt). To see
 * one run's dispatches: QMP_ROWS_PLAN="way act turn after fault point
 * answer", as a failure prints it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
/* libasan's (Debian ships no header for it): bytes malloc'ed and not freed */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#include "fsm/fsm.h"
#include "qmp/qmp.h"
#include "test/fakes/backend_fake.h"
#include "test/fakes/exec_fake.h"
#include "test/fakes/qmp_peer_fake.h"
#include "test/qmp/qmp_testutil.h"

#define SETUP_MS 1000
#define LATE_RETRIES 2       /* the late path appears after this many retries */
#define LATE_TURNS 8         /* the late path: acts up to this turn (then it is unix) */

enum way { W_UNIX, W_LATE, W_NOWHERE, W_TCP, W_N };
static const char *const way_name[W_N] = { "unix", "late unix", "no socket", "tcp" };

enum act { A_NONE, A_CLOSE, A_CLOSE_TWICE, A_CLOSE_JUMP, A_CANCEL, A_KILL, A_JUMP, A_N };
static const char *const act_name[A_N] = { "-", "close", "close twice", "close, clock jumps",
                                           "cancel", "QEMU dies", "clock jumps" };

struct plan {
    enum way way;
    enum act act;
    unsigned turn;           /* 0: right after open */
    bool after;              /* after the turn's io, before its dispatches */
    uint64_t fail_seq;       /* an injected fault (FSM_FAULT) */
    unsigned point;          /* a scripted answer of QEMU */
    enum fb_answer answer;
};

#define NCMD 3
enum { C_STATUS, C_ADD_FD, C_REMOVE_FD };
static bool warming;                 /* a first run: libuv and libc keep what they set up */
static const char *const cmd_name[NCMD] = { "query-status", "add-fd", "remove-fd" };

/* One run. */
static struct run {
    struct plan plan;
    struct io_sched sched;
    struct fake_backend fb;
    struct qmp_peer qemu;
    struct qmp_conn *c;
    int fd;                          /* passed with add-fd */
    bool done, acted, closed, cancelled, killed;
    unsigned done_calls;
    int done_rc;
    char done_msg[LS_ERRBUF_LEN];
    bool sent[NCMD];
    int submit_rc[NCMD];
    unsigned calls[NCMD];
    int rc[NCMD];
    char msg[NCMD][LS_ERRBUF_LEN];
    /* from the trace */
    bool hole, shutdown_ok;
    bool failed_before_close;        /* an action failed before the close's row */
    bool fault_on_teardown;          /* the fault hit a FAIL or CANCEL row: an error came first */
    uint64_t action_seq[128];        /* dispatches of rows whose action can fail */
    int action_row[128];             /* their rows */
    unsigned nactions, turns, retries;
    char trace[4096];
    char problem[512];
} R;

static const struct fsm_def *def;
static bool *taken;
static unsigned runs, broken;

/* ---- the peer's addresses ------------------------------------------------- */

static int tcp_lfd = -1, tcp_port;
static char late_path[80];

static int tcp_listen(void)
{
    if (tcp_lfd >= 0)
        return 0;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    tcp_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (tcp_lfd < 0 || bind(tcp_lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(tcp_lfd, QP_MAX_CONNS) < 0 || getsockname(tcp_lfd, (struct sockaddr *)&a, &len) < 0)
        return -errno;
    tcp_port = ntohs(a.sin_port);
    return 0;
}

static void tcp_drain(void)
{
    int fd;
    while (tcp_lfd >= 0 && (fd = accept4(tcp_lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(fd);
}

/* QEMU dies: its connections, its socket and what waited to be accepted. */
static void kill_qemu(void)
{
    qmp_peer_kill(&R.qemu);
    qmp_peer_close(&R.qemu);
    if (R.plan.way == W_TCP) {
        tcp_drain();
        close(tcp_lfd);   /* a connect now is refused; the next run listens again */
        tcp_lfd = -1;
    }
    R.killed = true;
}

/* Bytes allocated, process-wide: ASan counts every thread's. Without ASan
 * (glibc counts the main arena only, and the resolver's thread has its
 * own) runs are not weighed. */
static size_t heap_bytes(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return 0;
#endif
}

/* ---- the owner ---------------------------------------------------------------- */

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    if (R.problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(R.problem, sizeof(R.problem), fmt, ap);
    va_end(ap);
}

static void owner_close(void)
{
    if (!R.done) {
        R.closed = true;
        qmp_conn_close(R.c);
    }
}

static void maybe_close(void)
{
    for (int i = 0; i < NCMD; i++)
        if (R.sent[i] && !R.calls[i])
            return;
    owner_close();
}

static void send_cmd(int i, struct qmp_args *args);

static void cmd_cb(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    int i = (int)(intptr_t)data;
    R.calls[i]++;
    R.rc[i] = r->rc;
    snprintf(R.msg[i], sizeof(R.msg[i]), "%s", r->rc ? r->err->msg : "");
    long long set, fd;
    if (i == C_ADD_FD && r->rc == 0 && qmp_reply_add_fd(r, &set, &fd) == 0) {
        struct qmp_args *a = qmp_args_new();
        qmp_args_int(a, "fdset-id", set);
        send_cmd(C_REMOVE_FD, a);
    }
    maybe_close();
}

static void send_cmd(int i, struct qmp_args *args)
{
    int rc = i == C_ADD_FD ? qmp_add_fd(R.c, R.fd, -1, NULL, cmd_cb, (void *)(intptr_t)i)
                           : qmp_exec(R.c, cmd_name[i], args, cmd_cb, (void *)(intptr_t)i);
    R.sent[i] = rc == 0;   /* refused (the connection is ending): no callback */
    R.submit_rc[i] = rc;
}

static void on_ready(struct qmp_conn *c, void *data) { send_cmd(C_ADD_FD, NULL); }

static void on_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    R.done = true;
    R.done_calls++;
    R.done_rc = rc;
    snprintf(R.done_msg, sizeof(R.done_msg), "%s", err && err->msg[0] ? err->msg : "");
}

static void act_now(void)
{
    if (R.acted || R.done)
        return;
    R.acted = true;
    switch (R.plan.act) {
    case A_CLOSE:
        owner_close();
        break;
    case A_CLOSE_TWICE:
        owner_close();
        qmp_conn_close(R.c);
        break;
    case A_CLOSE_JUMP:
        owner_close();
        fake_exec_jump();
        break;
    case A_CANCEL:
        R.cancelled = true;
        fsm_cancel(qmp_conn_fsm(R.c), -ECANCELED);
        break;
    case A_KILL:
        kill_qemu();
        break;
    case A_JUMP:
        fake_exec_jump();
        break;
    default:
        break;
    }
}

static void on_turn(unsigned n, bool after, void *data)
{
    R.turns = n;
    if (R.plan.act && n == R.plan.turn && after == R.plan.after)
        act_now();
}

/* ---- the trace ------------------------------------------------------------------ */

static bool fsm_trace_stderr_on;

static void capture(const struct fsm_trace_rec *r, void *data)
{
    if (fsm_trace_stderr_on)
        fsm_trace_stderr(r, NULL);
    if (r->seq == 0 || r->m->def != def)
        return;
    int s = -1, e = -1;
    for (int i = 0; i < def->nstates; i++)
        if (strcmp(def->state_names[i], r->state) == 0)
            s = i;
    for (int i = 0; i < def->nevents; i++)
        if (strcmp(def->event_names[i], r->event) == 0)
            e = i;
    const struct fsm_row *row = s >= 0 && e >= 0 ? fsm_def_lookup(def, s, e) : NULL;
    size_t u = strlen(R.trace);
    snprintf(R.trace + u, sizeof(R.trace) - u, " %llu:%s.%s/%s(%d)>%s",
             (unsigned long long)r->seq, r->state, r->event, r->action, r->rc, r->next);
    if (r->hole || !row) {
        R.hole = true;
        return;
    }
    if (r->faulted)
        R.fault_on_teardown = strcmp(r->event, "FAIL") == 0 || strcmp(r->event, "CANCEL") == 0;
    taken[row - def->rows] = true;
    if (row->kind == FSM_CELL_ROW && !fsm_row_nofail(def, row) &&
        R.nactions < sizeof(R.action_seq) / sizeof(R.action_seq[0])) {
        R.action_row[R.nactions] = (int)(row - def->rows);
        R.action_seq[R.nactions++] = r->seq;
    }
    if (r->rc < 0 && !R.shutdown_ok)
        R.failed_before_close = true;
    if (strcmp(r->action, "qmp_conn_shutdown") == 0 && r->rc == 0)
        R.shutdown_ok = true;
    /* counted in retries, not turns: a 2 ms retry may also fire in real time */
    if (R.plan.way == W_LATE && strcmp(r->event, "RETRY") == 0 && ++R.retries == LATE_RETRIES &&
        symlink("qmp.sock", late_path) < 0)
        problem("symlink %s: %s", late_path, strerror(errno));
}

/* ---- the invariants ------------------------------------------------------------ */

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

/* What a failure QEMU caused must say. */
static bool names_qemu(const char *m)
{
    return has(m, "QEMU") || has(m, "QMP peer") || has(m, "connect to QMP") ||
           has(m, "could not connect to QMP") || has(m, "scripted failure");
}

static void check(void)
{
    const struct plan *p = &R.plan;
    const char *pt = p->point ? R.fb.point_name[p->point] : "";
    if (R.done_calls != 1)
        return problem("done was called %u times", R.done_calls);
    if (R.hole)
        return problem("a dispatch hit a (state, event) with no row");
    for (int i = 0; i < NCMD; i++) {
        if (R.sent[i] && R.calls[i] != 1)
            return problem("'%s' was called back %u times", cmd_name[i], R.calls[i]);
        /* -EREMOTEIO is QEMU's answer to that command, never a lost one */
        if (R.rc[i] == -EREMOTEIO && has(R.msg[i], "got no reply"))
            return problem("'%s' got no reply, yet reports QEMU's refusal: %s", cmd_name[i],
                           R.msg[i]);
    }
    if (R.done_rc == 0 && !R.closed)
        return problem("done with rc 0 but the owner never closed");
    if (R.done_rc < 0 && !R.done_msg[0])
        return problem("failed (rc %d) without a reason", R.done_rc);
    if (R.shutdown_ok && !R.failed_before_close && !R.cancelled && R.done_rc != 0)
        return problem("the owner's close was taken first, yet it ended rc %d: %s", R.done_rc,
                       R.done_msg);
    /* what ended it, when nothing else raced it */
    bool alone = p->act == A_NONE;
    if (p->way == W_TCP && R.submit_rc[C_ADD_FD] && R.submit_rc[C_ADD_FD] != -EOPNOTSUPP)
        return problem("add-fd over TCP: refused with %d, not -EOPNOTSUPP", R.submit_rc[C_ADD_FD]);
    if (alone && !p->point && !p->fail_seq && p->way != W_NOWHERE)
        for (int i = 0; i < (p->way == W_TCP ? 1 : NCMD); i++)
            if (!R.sent[i] || R.rc[i] != 0)
                return problem("a clean run: '%s' %s (rc %d: %s)", cmd_name[i],
                               R.sent[i] ? "failed" : "was never sent", R.rc[i], R.msg[i]);
    if (p->fail_seq && alone && !R.fault_on_teardown && R.done_rc != -EIO)
        return problem("the injected fault is not what done reports (rc %d: %s)", R.done_rc,
                       R.done_msg);
    if (p->way == W_NOWHERE && !p->fail_seq && alone &&
        (R.done_rc != -ETIMEDOUT || !has(R.done_msg, "could not connect to QMP") ||
         !has(R.done_msg, "No such file")))
        return problem("no socket: expected the setup deadline naming ENOENT, got rc %d: %s",
                       R.done_rc, R.done_msg);
    if (!p->point && !p->fail_seq && p->way != W_NOWHERE &&
        (p->act == A_NONE || p->act == A_CLOSE || p->act == A_CLOSE_TWICE ||
         p->act == A_CLOSE_JUMP) && R.done_rc != 0)
        return problem("a close with nothing failing ended rc %d: %s", R.done_rc, R.done_msg);
    if (p->act == A_JUMP && !p->point && !p->fail_seq && R.done_rc &&
        (R.done_rc != -ETIMEDOUT || !has(R.done_msg, "within")))
        return problem("the clock jumping ended it with rc %d: %s", R.done_rc, R.done_msg);
    if ((R.killed || p->answer == FB_CLOSE) && R.done_rc < 0 && !p->fail_seq &&
        !R.cancelled && !names_qemu(R.done_msg) && !has(R.done_msg, "within"))
        return problem("QEMU died, but the error does not say so: %s", R.done_msg);
    if (!p->point || !alone || p->fail_seq)
        return;
    if (p->answer == FB_GARBAGE) {
        if (R.done_rc != -EPROTO || !has(R.done_msg, "sent invalid JSON"))
            return problem("QEMU sent garbage: expected -EPROTO naming it, got rc %d: %s",
                           R.done_rc, R.done_msg);
        return;
    }
    bool cmd = !has(pt, "greeting") && !has(pt, "capabilities");
    const char *what = pt + 4;   /* "qmp.X" */
    if (p->answer == FB_FAIL && cmd) {
        for (int i = 0; i < NCMD; i++)
            if (strcmp(cmd_name[i], what) == 0 &&
                (R.rc[i] != -EREMOTEIO || !has(R.msg[i], "scripted failure of")))
                return problem("'%s' refused by QEMU: its callback got rc %d: %s", what, R.rc[i],
                               R.msg[i]);
        if (R.done_rc != 0)
            return problem("a refused command ended the connection: rc %d: %s", R.done_rc,
                           R.done_msg);
    } else if (p->answer == FB_FAIL) {
        const char *want = has(pt, "greeting") ? "without sending a greeting"
                                               : "scripted failure of qmp_capabilities";
        if (R.done_rc >= 0 || !has(R.done_msg, want))
            return problem("QEMU refused %s: expected \"%s\", got rc %d: %s", what, want,
                           R.done_rc, R.done_msg);
    } else if (p->answer == FB_NEVER && !cmd) {
        if (R.done_rc != -ETIMEDOUT || !has(R.done_msg, "within"))
            return problem("QEMU never answered %s: expected the setup deadline, got rc %d: %s",
                           what, R.done_rc, R.done_msg);
    } else if (p->answer == FB_NEVER) {
        for (int i = 0; i < NCMD; i++)
            if (strcmp(cmd_name[i], what) == 0 &&
                (R.rc[i] != -ETIMEDOUT || !has(R.msg[i], "no reply to QMP command")))
                return problem("'%s' never answered: its callback got rc %d: %s", what, R.rc[i],
                               R.msg[i]);
    }
}

/* ---- one run ------------------------------------------------------------------- */

static void describe(const struct plan *p, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s", way_name[p->way]);
    if (p->act)
        n += snprintf(buf + n, len - (size_t)n, ", %s %s turn %u", act_name[p->act],
                      p->after ? "after" : "before", p->turn);
    if (p->fail_seq)
        n += snprintf(buf + n, len - (size_t)n, ", fault at dispatch %llu",
                      (unsigned long long)p->fail_seq);
    if (p->point)
        snprintf(buf + n, len - (size_t)n, ", QEMU's %s %s", R.fb.point_name[p->point],
                 p->answer == FB_FAIL    ? "fails"
                 : p->answer == FB_NEVER ? "never comes"
                 : p->answer == FB_CLOSE ? "dies half-way"
                                         : "is not JSON");
}

static void run(const struct plan *p)
{
    memset(&R, 0, sizeof(R));
    R.plan = *p;
    R.fd = -1;
    runs++;
    fsm_reset_counters();
    fsm_strict = false;
    if (p->fail_seq)
        fsm_fault_add(p->fail_seq, -EIO);
    fake_backend_init(&R.fb);
    if (p->point)
        R.fb.answer[p->point] = p->answer;
    fake_exec_sched_init(&R.sched, FAKE_EXEC_FIFO);
    if (qmp_peer_prepare() < 0 || tcp_listen() < 0 || qmp_peer_open(&R.qemu, &R.fb, "running") < 0)
        fail_msg("the scripted QEMU cannot listen");
    if (p->way == W_TCP)
        R.qemu.lfd = tcp_lfd;
    snprintf(late_path, sizeof(late_path), "%.*s/late.sock",
             (int)(strrchr(R.qemu.path, '/') - R.qemu.path), R.qemu.path);
    unlink(late_path);
    fake_exec_use_loop(&R.sched);
    fake_exec_on_idle(qmp_peer_step, &R.qemu);
    fake_exec_on_loop_turn(on_turn, NULL);
    R.sched.sched.trace = capture;

    R.fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int fds = count_open_fds();
    size_t heap = heap_bytes();
    /* no socket: the deadline (1 ms) comes before the first retry (2 ms),
     * so the run is the same whatever real time passes */
    struct qmp_conn_opts o = { .name = "qmp[rows]",
                               .setup_timeout_ms = p->way == W_NOWHERE ? 1 : SETUP_MS,
                               .retry_connect = p->way == W_LATE || p->way == W_NOWHERE,
                               .ready = on_ready, .done = on_done };
    int rc = p->way == W_TCP ? qmp_conn_open_tcp(&R.sched, "127.0.0.1", tcp_port, &o, &R.c)
             : qmp_conn_open_unix(&R.sched, p->way == W_UNIX ? R.qemu.path : late_path, &o, &R.c);
    if (rc < 0)
        fail_msg("qmp_conn_open: %s", strerror(-rc));
    send_cmd(C_STATUS, NULL);
    if (p->act && p->turn == 0)
        act_now();
    fake_exec_run(&R.sched);
    /* a second done, or a handle still closing, would show here */
    fake_exec_run(&R.sched);
    if (fake_exec_loop_handles())
        problem("%u uv handles left open", fake_exec_loop_handles());
    else if (!fsm_sched_idle(&R.sched.sched) || R.sched.sched.nlive)
        problem("%u machines still live after done", R.sched.sched.nlive);
    else if (p->fail_seq && !fsm_fault_fired() && !p->act)
        problem("the armed fault never fired");
    check();
    fsm_sched_destroy(&R.sched.sched);
    qmp_peer_close(&R.qemu);
    tcp_drain();
    unlink(late_path);
    if (tcp_listen() < 0)   /* again, if QEMU died: counted as before */
        problem("cannot listen on TCP again");
    int fds_after = count_open_fds();
    size_t heap_after = heap_bytes();
    if (fds_after != fds)
        problem("%d fds leaked", fds_after - fds);
    if (heap_after > heap && !warming)
        problem("%zu bytes still allocated", heap_after - heap);
    close(R.fd);
    if (!R.problem[0])
        return;
    broken++;
    char what[256];
    describe(p, what, sizeof(what));
    fprintf(stderr, "qmp_conn rows: %s: %s\n  done rc %d: %s\n  trace:%s\n"
            "  again: QMP_ROWS_PLAN=\"%d %d %u %d %llu %u %d\"\n", what, R.problem, R.done_rc,
            R.done_msg, R.trace, p->way, p->act, p->turn, p->after,
            (unsigned long long)p->fail_seq, p->point, p->answer);
}

/* ---- the walk -------------------------------------------------------------------- */

/* Every act at every turn of the run p makes (its turns counted first). */
static void acts_at_every_turn(const struct plan *p, enum act first, enum act last)
{
    run(p);
    unsigned turns = R.turns;
    /* once connected, the late path is the unix one, walked whole */
    if (p->way == W_LATE && turns > LATE_TURNS)
        turns = LATE_TURNS;
    for (unsigned n = 0; n <= turns; n++)
        for (int after = 0; after < (n ? 2 : 1); after++)
            for (enum act a = first; a <= last; a++) {
                struct plan q = *p;
                q.act = a;
                q.turn = n;
                q.after = after;
                run(&q);
            }
}

/* The run p, then a fault at the first dispatch of every row with an
 * action it takes: a failure at each row of its path (rows only a death or
 * a refusal reaches too; a retry repeated is one row). */
static void faults_on(const struct plan *p)
{
    run(p);
    uint64_t seqs[128];
    int rows[128];
    unsigned n = R.nactions;
    memcpy(seqs, R.action_seq, sizeof(seqs));
    memcpy(rows, R.action_row, sizeof(rows));
    for (unsigned i = 0; i < n; i++) {
        bool again = false;
        for (unsigned j = 0; j < i; j++)
            again |= rows[j] == rows[i];
        if (again)
            continue;
        struct plan q = *p;
        q.fail_seq = seqs[i];
        run(&q);
    }
}

static void walk_way(enum way w)
{
    struct plan clean = { .way = w };
    /* What libuv and libc set up once and keep (the loop's watcher array,
     * the threadpool and the resolver on the first name resolution) is not
     * a run's leak: each way's clean run goes once unweighed, then again. */
    warming = true;
    run(&clean);
    warming = false;
    run(&clean);
    uint64_t seqs[128];
    unsigned nseq = R.nactions, npoints = R.fb.npoints;
    unsigned turns = w == W_LATE && R.turns > LATE_TURNS ? LATE_TURNS : R.turns;
    memcpy(seqs, R.action_seq, sizeof(seqs));
    acts_at_every_turn(&clean, A_CLOSE, A_N - 1);
    /* QEMU dying at every turn, and a failure on every row after it */
    for (unsigned n = 0; n <= turns && w != W_NOWHERE; n++)
        for (int after = 0; after < (n ? 2 : 1); after++)
            faults_on(&(struct plan){ .way = w, .act = A_KILL, .turn = n, .after = after });
    for (unsigned i = 0; i < nseq; i++) {
        struct plan p = { .way = w, .fail_seq = seqs[i] };
        run(&p);
        /* the owner closing on the failure's path */
        acts_at_every_turn(&p, A_CLOSE, A_CLOSE);
    }
    if (w == W_LATE)
        return;   /* QEMU's answers: as on the unix path */
    for (unsigned pt = 1; pt <= npoints; pt++)
        for (enum fb_answer a = FB_FAIL; a <= FB_GARBAGE; a++) {
            struct plan p = { .way = w, .point = pt, .answer = a };
            acts_at_every_turn(&p, A_CLOSE, A_CANCEL);
            faults_on(&p);
        }
}

static const char *rows_file;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);   /* the fake's virtual clock skips ahead */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_every_row(void **state)
{
    (void)state;
    def = fsm_def_find("qmp_conn");
    assert_non_null(def);
    taken = calloc((size_t)def->nrows, sizeof(bool));
    assert_non_null(taken);
    const char *one = getenv("QMP_ROWS_PLAN");
    if (one) {
        struct plan p = { 0 };
        unsigned v[7] = { 0 };
        if (sscanf(one, "%u %u %u %u %u %u %u", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6]) != 7)
            fail_msg("QMP_ROWS_PLAN: 7 numbers");
        p = (struct plan){ .way = v[0], .act = v[1], .turn = v[2], .after = v[3],
                           .fail_seq = v[4], .point = v[5], .answer = v[6] };
        fsm_trace_stderr_on = true;
        run(&p);
        free(taken);
        return;
    }
    for (enum way w = 0; w < W_N; w++) {
        unsigned before = runs;
        double t = now_s();
        walk_way(w);
        printf("qmp_conn rows: %-9s %5u runs, %.2f s\n", way_name[w], runs - before, now_s() - t);
    }
    FILE *f = rows_file ? fopen(rows_file, "w") : NULL;
    unsigned n = 0, missing = 0;
    for (int r = 0; r < def->nrows; r++) {
        const struct fsm_row *row = &def->rows[r];
        const char *st = row->state < 0 ? "ANY" : def->state_names[row->state];
        const char *ev = def->event_names[row->event];
        bool marked = false;
        for (int i = 0; i < def->nunreachable; i++)
            marked |= def->unreachable[i].state == row->state &&
                      def->unreachable[i].event == row->event;
        if (taken[r]) {
            n++;
            if (f)
                fprintf(f, "qmp_conn %s %s\n", st, ev);
        } else if (!marked) {
            missing++;
            printf("  NOT TAKEN (and not marked FSM_UNREACHABLE): qmp_conn: %s + %s (%s:%d)\n",
                   st, ev, def->file, row->line);
        }
        if (taken[r] && marked)
            printf("  TAKEN BUT MARKED FSM_UNREACHABLE: qmp_conn: %s + %s\n", st, ev);
        missing += taken[r] && marked;
    }
    if (f)
        fclose(f);
    printf("qmp_conn rows: %u of %d taken, %u runs, %u broke an invariant\n", n, def->nrows,
           runs, broken);
    free(taken);
    assert_int_equal(broken, 0);
    assert_int_equal(missing, 0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 2 && strcmp(argv[1], "--rows") == 0)
        rows_file = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
