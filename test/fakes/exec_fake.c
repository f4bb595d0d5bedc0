/* test/fakes/exec_fake.c - the io/exec.h seam run one thread at a time. */
#include "test/fakes/exec_fake.h"

#include "io/fdio.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum fw_kind { FW_WORK, FW_HELPER };
enum fw_state { FW_NEW, FW_RUNNING, FW_PARKED_CALL, FW_PARKED_HANG, FW_PARKED_POLL,
                FW_FINISHED };

struct carrier;

struct fw {
    struct fw *next;
    enum fw_kind kind;
    enum fw_state st;
    struct carrier *c;             /* the thread running it, once started */
    bool started, reported, cancelled;
    int cancel_fd;
    int rc;
    struct ls_errbuf err;
    /* work */
    struct fsm *m;
    int ev;
    io_work_fn *fn;
    void *arg;
    const char *what;
    bool orphaned;
    /* helper */
    struct io_helper *h;
    struct fsm *call_target;
    int call_ev, call_reply, call_cancel_value;
    void *call_arg;
    bool call_posted, call_answered;
    bool release_pending;
    struct fsm *release_m;
    /* a poll that would block (fake_exec_park_polls) */
    struct pollfd *poll_fds;
    nfds_t poll_n;
    int poll_timeout;              /* ms, -1: none */
    bool poll_timed_out;
};

/* Workers run on carrier threads kept from worker to worker and from run to
 * run: a thread made per worker was most of a COLO run's CPU (clone, stack,
 * ASan's thread set-up and teardown). Each carrier waits on its own
 * condition, the test's thread on main_cv, so a baton pass wakes one thread. */
struct carrier {
    struct carrier *next;          /* idle list */
    pthread_t thread;
    pthread_cond_t cv;
    struct fw *job;                /* the worker it runs, NULL: idle */
};

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t main_cv = PTHREAD_COND_INITIALIZER;
static struct carrier *idle_carriers;
static struct fw *workers;       /* creation order */
static struct fw *turn;          /* the worker holding the baton; NULL: the test's thread */
static __thread struct fw *current;
static enum fake_exec_order order;
static bool inline_work;
static bool (*on_stuck)(void *data);
static void (*on_step)(unsigned n, void *data);
static void *on_step_data;
static unsigned steps;
static void *on_stuck_data;
static uv_loop_t loop;
static bool loop_inited, loop_used;
static bool (*on_idle)(void *data);
static void (*after_dispatch)(void *data);
static void *after_dispatch_data;
static void *on_idle_data;
static bool park_polls;
static void (*on_turn)(unsigned n, bool after, void *data);
static void *on_turn_data;
static unsigned turns;

/* ---- the virtual clock ----------------------------------------------------- */

/* libuv reads CLOCK_MONOTONIC (or its coarse variant) through clock_gettime:
 * this definition, in the test executable, comes first for every caller in
 * the process, libuv included, and adds the time the fake skipped. */
static int64_t skew_ns;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (syscall(SYS_clock_gettime, id, ts) != 0)
        return -1;
    if (skew_ns && (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE)) {
        int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + skew_ns;
        ts->tv_sec = ns / 1000000000;
        ts->tv_nsec = ns % 1000000000;
    }
    return 0;
}

/* ---- waits on fds ---------------------------------------------------------- */

static bool resetting;
static bool polls_pipe(const struct fw *w);

static int poll_now(struct pollfd *fds, nfds_t n)
{
    struct timespec zero = { 0, 0 };
    return ppoll(fds, n, &zero, NULL);
}

static void park(struct fw *w, enum fw_state st);

/* With park_polls, a worker's poll that would block gives the baton back
 * (FW_PARKED_POLL) until one of its fds is ready, or until nothing else can
 * move and its deadline is the earliest left (then it times out): two roles
 * of one run talk over sockets in-process, one side's wait the other's
 * turn. This definition, in the test executable, comes first for every
 * caller (as clock_gettime above). Inline work and the test's thread poll
 * for real. */
int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    struct fw *w = current;
    if (!park_polls || !w || !w->started || timeout == 0 || resetting) {
        struct timespec ts = { timeout / 1000, (long)(timeout % 1000) * 1000000 };
        return ppoll(fds, n, timeout < 0 ? NULL : &ts, NULL);
    }
    w->poll_fds = fds;
    w->poll_n = n;
    /* A child's pipe parks even when ready: whether the child wrote or
     * exited yet is real time, and must not decide the run's order. */
    int r = polls_pipe(w) ? 0 : poll_now(fds, n);
    if (r != 0) {
        w->poll_fds = NULL;
        w->poll_n = 0;
        return r;
    }
    w->poll_timeout = timeout;
    w->poll_timed_out = false;
    park(w, FW_PARKED_POLL);
    w->poll_fds = NULL;
    if (!w->poll_timed_out)
        return poll_now(fds, n);
    for (nfds_t i = 0; i < n; i++)
        fds[i].revents = 0;
    return 0;
}

void fake_exec_park_polls(bool on) { park_polls = on; }

/* ---- the baton ----------------------------------------------------------- */

static void fw_body(struct fw *w)
{
    current = w;
    ls_err_clear(&w->err);
    if (w->kind == FW_WORK) {
        w->rc = w->fn(w->arg, w->cancel_fd, &w->err);
        if (w->rc < 0 && w->err.rc == 0)
            ls_err(&w->err, w->rc, "%s failed", w->what);
    } else {
        w->rc = w->h->fn(w->h, w->h->arg, &w->err);
        if (w->rc < 0 && w->err.rc == 0)
            ls_err(&w->err, w->rc, "memory task failed: %s", strerror(-w->rc));
    }
    current = NULL;
}

static void *carrier_main(void *p)
{
    struct carrier *c = p;
    pthread_mutex_lock(&lk);
    for (;;) {
        while (!c->job || turn != c->job)
            pthread_cond_wait(&c->cv, &lk);
        struct fw *w = c->job;
        pthread_mutex_unlock(&lk);
        fw_body(w);
        pthread_mutex_lock(&lk);
        /* finished: w is the test's thread's again (it may free it) */
        w->st = FW_FINISHED;
        c->job = NULL;
        c->next = idle_carriers;
        idle_carriers = c;
        turn = NULL;
        pthread_cond_signal(&main_cv);
    }
    return NULL;
}

/* Test's thread, lk held: an idle carrier for w, or a new one. */
static void carry(struct fw *w)
{
    struct carrier *c = idle_carriers;
    if (c) {
        idle_carriers = c->next;
    } else {
        c = calloc(1, sizeof(*c));
        if (!c || pthread_cond_init(&c->cv, NULL) != 0 ||
            pthread_create(&c->thread, NULL, carrier_main, c) != 0) {
            fprintf(stderr, "exec_fake: cannot start a worker thread\n");
            abort();
        }
        pthread_detach(c->thread);
    }
    c->job = w;
    w->c = c;
}

/* Test's thread: let w run until it parks or finishes. */
static void give_baton(struct fw *w)
{
    pthread_mutex_lock(&lk);
    turn = w;
    w->st = FW_RUNNING;
    if (!w->started) {
        w->started = true;
        carry(w);
    }
    pthread_cond_signal(&w->c->cv);
    while (turn != NULL)
        pthread_cond_wait(&main_cv, &lk);
    pthread_mutex_unlock(&lk);
}

/* Worker: give the baton back and wait for it. */
static void park(struct fw *w, enum fw_state st)
{
    pthread_mutex_lock(&lk);
    w->st = st;
    turn = NULL;
    pthread_cond_signal(&main_cv);
    while (turn != w)
        pthread_cond_wait(&w->c->cv, &lk);
    pthread_mutex_unlock(&lk);
}

static struct fw *fw_new(enum fw_kind kind, int cancel_fd)
{
    struct fw *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->kind = kind;
    w->cancel_fd = cancel_fd;
    struct fw **pp = &workers;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
    return w;
}

static void fw_free(struct fw *w)
{
    struct fw **pp = &workers;
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    if (w->cancel_fd >= 0)
        close(w->cancel_fd);
    free(w);
}

static void fw_cancel(struct fw *w)
{
    if (w->cancelled)
        return;
    w->cancelled = true;
    uint64_t one = 1;
    if (write(w->cancel_fd, &one, sizeof(one)) < 0) {
        /* only on overflow: signalled already */
    }
    if (w->st == FW_PARKED_CALL && !w->call_answered) {
        w->call_reply = w->call_cancel_value;
        w->call_answered = true;
    }
}

static struct fw *fw_of_helper(const struct io_helper *h)
{
    for (struct fw *w = workers; w; w = w->next)
        if (w->kind == FW_HELPER && w->h == h)
            return w;
    return NULL;
}

/* ---- io_work ------------------------------------------------------------- */

static int fx_work_undo(struct fsm *m, void *obj)
{
    struct fw *w = obj;
    w->orphaned = true;
    fw_cancel(w);
    return FSM_UNDO_PENDING;
}

static int fx_work_start(struct fsm *m, int ev, io_work_fn *fn, void *arg, const char *what)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return fsm_fail(m, -errno, "%s: eventfd for %s", m->name, what);
    struct fw *w = fw_new(FW_WORK, fd);
    if (!w) {
        close(fd);
        return fsm_fail(m, -ENOMEM, "%s: out of memory starting %s", m->name, what);
    }
    w->m = m;
    w->ev = ev;
    w->fn = fn;
    w->arg = arg;
    w->what = what;
    int rc = fsm_defer(m, fx_work_undo, w, what);
    if (rc < 0)
        fw_free(w);
    return rc;
}

static void fx_work_abandon(struct fsm *m)
{
    for (unsigned i = m->nundo; i-- > 0;)
        if (m->undo[i].fn == fx_work_undo)
            fsm_undo_now(m, m->undo[i].obj);
}

static void fx_work_interrupt(struct fsm *m)
{
    for (unsigned i = 0; i < m->nundo; i++)
        if (m->undo[i].fn == fx_work_undo)
            fw_cancel(m->undo[i].obj);
}

/* As io/work.c's work_after: the same delivery. */
static void work_report(struct fw *w)
{
    struct fsm *m = w->m;
    if (w->orphaned) {
        fsm_undo_complete(m);
        fw_free(w);
        return;
    }
    fsm_undo_forget(m, w);
    io_work_deliver(m, w->ev, w->rc, &w->err, w->arg);
    fw_free(w);
}

/* ---- io_helper ----------------------------------------------------------- */

static int fx_helper_start(struct io_helper *h, struct fsm *owner, int finished_ev,
                           io_helper_fn *fn, void *arg)
{
    h->owner = owner;
    h->finished_ev = finished_ev;
    h->fn = fn;
    h->arg = arg;
    h->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->cancel_fd < 0)
        return -errno;
    struct fw *w = fw_new(FW_HELPER, h->cancel_fd);
    if (!w) {
        close(h->cancel_fd);
        h->cancel_fd = -1;
        return -ENOMEM;
    }
    w->h = h;
    h->started = true;
    return 0;
}

static int fx_helper_call(struct io_helper *h, struct fsm *target, int ev, void *arg,
                          int cancel_value)
{
    struct fw *w = current;
    if (w->cancelled)
        return cancel_value;
    w->call_target = target;
    w->call_ev = ev;
    w->call_arg = arg;
    w->call_cancel_value = cancel_value;
    w->call_posted = w->call_answered = false;
    park(w, FW_PARKED_CALL);
    return w->call_reply;
}

static void fx_helper_reply(struct io_helper *h, int value)
{
    struct fw *w = fw_of_helper(h);
    if (w && w->st == FW_PARKED_CALL && !w->call_answered) {
        w->call_reply = value;
        w->call_answered = true;
    }
}

static void fx_helper_cancel(struct io_helper *h)
{
    struct fw *w = fw_of_helper(h);
    if (!w)
        return;
    h->cancelled = true;
    fw_cancel(w);
}

static int fx_helper_release(struct fsm *m, void *helper)
{
    struct io_helper *h = helper;
    struct fw *w = fw_of_helper(h);
    fx_helper_cancel(h);
    h->owner = NULL;   /* a finish racing this release posts nothing */
    h->release_m = m;
    if (!w) {
        /* already freed: nothing runs any more */
        fsm_undo_complete(m);
        return 0;
    }
    w->release_pending = true;
    w->release_m = m;
    return FSM_UNDO_PENDING;
}

/* As io/helper.c's async callback and close callback. */
static void helper_report(struct fw *w)
{
    struct io_helper *h = w->h;
    if (!w->reported) {
        w->reported = true;
        h->rc = w->rc;
        h->err = w->err;
        h->finished = h->finished_posted = h->joined = true;
        if (h->owner)
            fsm_post(h->owner, h->finished_ev, h->rc, h);
        return;
    }
    /* released: the handle closes, then the undo completes */
    struct fsm *m = w->release_m;
    h->cancel_fd = -1;
    fw_free(w);
    fsm_undo_complete(m);
}

const struct io_exec_ops fake_exec_ops = {
    .work_start = fx_work_start,
    .work_abandon = fx_work_abandon,
    .work_interrupt = fx_work_interrupt,
    .helper_start = fx_helper_start,
    .helper_call = fx_helper_call,
    .helper_reply = fx_helper_reply,
    .helper_cancel = fx_helper_cancel,
    .helper_release = fx_helper_release,
};

/* ---- the driver ---------------------------------------------------------- */

static bool actionable(const struct fw *w)
{
    switch (w->st) {
    case FW_NEW:
        return true;
    case FW_PARKED_CALL:
        return w->call_answered || (!w->call_posted && !w->cancelled);
    case FW_PARKED_HANG:
        return w->cancelled;
    case FW_PARKED_POLL:
        /* a child's pipe is looked at only when nothing else moves: its
         * process's timing must not change the run's order */
        return w->cancelled || (!polls_pipe(w) && poll_now(w->poll_fds, w->poll_n) > 0);
    case FW_FINISHED:
        return w->kind == FW_WORK || !w->reported || w->release_pending;
    default:
        return false;
    }
}

static void advance(struct fw *w)
{
    switch (w->st) {
    case FW_NEW:
        if (inline_work && w->kind == FW_WORK) {
            /* Nothing can hang: run it here, no thread, no baton. */
            struct fw *was = current;
            current = w;
            w->st = FW_RUNNING;
            ls_err_clear(&w->err);
            w->rc = w->fn(w->arg, w->cancel_fd, &w->err);
            if (w->rc < 0 && w->err.rc == 0)
                ls_err(&w->err, w->rc, "%s failed", w->what);
            w->st = FW_FINISHED;
            current = was;
            break;
        }
        give_baton(w);
        break;
    case FW_PARKED_HANG:
    case FW_PARKED_POLL:
        give_baton(w);
        break;
    case FW_PARKED_CALL:
        if (w->call_answered) {
            give_baton(w);
        } else {
            w->call_posted = true;
            fsm_post(w->call_target, w->call_ev, 0, w->call_arg);
        }
        break;
    case FW_FINISHED:
        if (w->kind == FW_WORK)
            work_report(w);
        else
            helper_report(w);
        break;
    default:
        break;
    }
}

static struct fw *pick(bool (*ok)(const struct fw *))
{
    struct fw *found = NULL;
    for (struct fw *w = workers; w; w = w->next) {
        if (!ok(w))
            continue;
        found = w;
        if (order == FAKE_EXEC_FIFO)
            break;
    }
    return found;
}

static bool hanging(const struct fw *w) { return w->st == FW_PARKED_HANG; }

/* A pipe's writer may be a real process (a fencing command): it is waited
 * for in real time. Sockets and eventfds are the run's own. */
static bool polls_pipe(const struct fw *w)
{
    for (nfds_t i = 0; i < w->poll_n; i++) {
        struct stat st;
        if (fstat(w->poll_fds[i].fd, &st) == 0 && S_ISFIFO(st.st_mode))
            return true;
    }
    return false;
}

/* Wait (up to 5 s) until the writer of w's pipe is gone (POLLHUP): all it
 * said is there at once, so how its writes were split cannot change how
 * often the worker wakes, nor the run's steps. */
static bool pipe_closed(const struct fw *w)
{
    for (nfds_t i = 0; i < w->poll_n; i++) {
        struct stat st;
        if (fstat(w->poll_fds[i].fd, &st) != 0 || !S_ISFIFO(st.st_mode))
            continue;
        struct pollfd p = { .fd = w->poll_fds[i].fd, .events = 0 };
        struct timespec ts = { 5, 0 };
        return ppoll(&p, 1, &ts, NULL) > 0;   /* only POLLHUP/POLLERR wake it */
    }
    return false;
}

/* Nothing else moves: the parked poll whose deadline comes first (one with
 * none last) times out, after a real wait for a child process's pipe. */
static bool poll_times_out(void)
{
    struct fw *first = NULL;
    for (struct fw *w = workers; w; w = w->next) {
        if (w->st != FW_PARKED_POLL)
            continue;
        if (polls_pipe(w) && pipe_closed(w)) {
            give_baton(w);
            return true;
        }
        if (!first || (w->poll_timeout >= 0 &&
                       (first->poll_timeout < 0 || w->poll_timeout < first->poll_timeout)))
            first = w;
    }
    if (!first)
        return false;
    first->poll_timed_out = true;
    give_baton(first);
    return true;
}

static bool fx_advance(void)
{
    struct fw *w = pick(actionable);
    if (!w)
        return false;
    steps++;
    if (on_step)
        on_step(steps, on_step_data);
    advance(w);
    return true;
}

/* Nothing else can move: the owner may give up first (once), then a hung
 * backend call times out. */
static bool fx_stuck(void)
{
    struct fw *w;
    if ((w = pick(hanging)) != NULL && on_stuck) {
        bool (*fn)(void *) = on_stuck;
        on_stuck = NULL;
        if (fn(on_stuck_data))
            return true;
    }
    if (w) {
        give_baton(w);
        return true;
    }
    return poll_times_out();
}

void fake_exec_inline_work(bool on) { inline_work = on; }

void fake_exec_use_loop(struct io_sched *s)
{
    s->loop = &loop;
    loop_used = true;
}

void fake_exec_on_idle(bool (*fn)(void *data), void *data)
{
    on_idle = fn;
    on_idle_data = data;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        ++*(unsigned *)arg;
}

unsigned fake_exec_loop_handles(void)
{
    unsigned n = 0;
    if (loop_inited) {
        uv_run(&loop, UV_RUN_NOWAIT);   /* finish closes already asked for */
        uv_walk(&loop, count_handle, &n);
    }
    return n;
}

/* The loop's and the peer's turn: true if either moved something. */
static bool loop_step(struct io_sched *s)
{
    if (!loop_used)
        return false;
    for (int i = 0; i < 2; i++) {
        turns++;
        if (on_turn)
            on_turn(turns, false, on_turn_data);
        /* A request in libuv's threadpool (a name resolution) is awaited in
         * real time, so its callback comes at the same turn every run. */
        uv_run(&loop, loop.active_reqs.count ? UV_RUN_ONCE : UV_RUN_NOWAIT);
        bool moved = on_idle && on_idle(on_idle_data);
        if (on_turn)
            on_turn(turns, true, on_turn_data);
        if (moved || !fsm_sched_idle(&s->sched))
            return true;
    }
    return false;
}

/* ms until the loop's earliest timer, -1 with none (uv_backend_timeout
 * says 0 for a loop with nothing active). */
static int next_timer_ms(void)
{
    return loop_used && uv_loop_alive(&loop) ? uv_backend_timeout(&loop) : -1;
}

/* Only timers can move: jump to the earliest. */
static bool skip_to_timer(void)
{
    int ms = next_timer_ms();
    if (ms < 0)
        return false;
    skew_ns += ((int64_t)ms + 1) * 1000000;
    uv_run(&loop, UV_RUN_NOWAIT);
    return true;
}

bool fake_exec_jump(void) { return skip_to_timer(); }

void fake_exec_on_loop_turn(void (*fn)(unsigned n, bool after, void *data), void *data)
{
    on_turn = fn;
    on_turn_data = data;
}

void fake_exec_sched_init(struct io_sched *s, enum fake_exec_order o)
{
    memset(s, 0, sizeof(*s));
    fsm_sched_init(&s->sched);
    s->exec = &fake_exec_ops;
    io_cancel_check_ns = 0;   /* a cancel seen or not must not hang on the wall clock */
    order = o;
    steps = 0;
    loop_used = false;
    on_idle = NULL;
    on_turn = NULL;
    turns = 0;
    after_dispatch = NULL;
    /* made once, before a test counts its fds */
    if (!loop_inited) {
        if (uv_loop_init(&loop) != 0)
            abort();
        loop_inited = true;
    }
}

void fake_exec_after_dispatch(void (*fn)(void *data), void *data)
{
    after_dispatch = fn;
    after_dispatch_data = data;
}

static void drain(struct io_sched *s)
{
    while (fsm_sched_step(&s->sched))
        if (after_dispatch)
            after_dispatch(after_dispatch_data);
}

void fake_exec_run(struct io_sched *s)
{
    for (;;) {
        drain(s);
        if (fx_advance() || loop_step(s) || fx_stuck())
            continue;
        /* Nothing moves but timers: the owner may give up first (once). */
        if (next_timer_ms() >= 0 && on_stuck) {
            bool (*fn)(void *) = on_stuck;
            on_stuck = NULL;
            if (fn(on_stuck_data))
                continue;
        }
        if (!skip_to_timer())
            break;
    }
}

void fake_exec_on_step(void (*fn)(unsigned n, void *data), void *data)
{
    on_step = fn;
    on_step_data = data;
}

unsigned fake_exec_steps(void) { return steps; }

void fake_exec_on_stuck(bool (*fn)(void *data), void *data)
{
    on_stuck = fn;
    on_stuck_data = data;
}

unsigned fake_exec_live(void)
{
    unsigned n = 0;
    for (struct fw *w = workers; w; w = w->next)
        n++;
    return n;
}

void fake_exec_reset(void)
{
    resetting = true;
    while (workers) {
        struct fw *w = workers;
        fw_cancel(w);
        if (w->st == FW_PARKED_CALL && !w->call_answered) {
            w->call_reply = w->call_cancel_value;
            w->call_answered = true;
        }
        if (w->started && w->st != FW_FINISHED)
            give_baton(w);
        else if (w->kind == FW_HELPER && w->h->cancel_fd == w->cancel_fd)
            w->h->cancel_fd = -1;
        if (w->st == FW_FINISHED || !w->started)
            fw_free(w);
    }
    resetting = false;
}

int fake_exec_hang(void)
{
    struct fw *w = current;
    if (!w || (inline_work && w->kind == FW_WORK))
        return -ETIMEDOUT;   /* on the test's thread: it cannot wait */
    if (!w->cancelled)
        park(w, FW_PARKED_HANG);
    return w->cancelled ? -ECANCELED : -ETIMEDOUT;
}

int fake_exec_cancel_fd(void) { return current ? current->cancel_fd : -1; }
