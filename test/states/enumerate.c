/* test/states/enumerate.c - the in-process row enumerator (see enumerate.h). */
#include "test/states/enumerate.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- rows --------------------------------------------------------------- */

/* Rows taken so far, per registered machine. */
static bool *taken[64];

static int def_index(const struct fsm_def *d)
{
    for (size_t i = 0; i < fsm_all_defs_count; i++)
        if (strcmp(fsm_all_defs[i]->name, d->name) == 0)
            return (int)i;
    return -1;
}

static int name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* One dispatch of a run. */
struct disp {
    uint64_t seq;
    int def;                 /* index in fsm_all_defs */
    int row;                 /* index in its rows, -1 for a hole */
    bool action;             /* a row whose action can be failed */
    int next;                /* the state entered (the same one when the action failed) */
    int rc;                  /* the action's result */
    int state, event;        /* for a hole's report */
    int owner_state;         /* the owner's role machine's state after it, -1: not known */
};

struct run {
    struct disp *d;
    size_t n, cap;
    bool hole;
};

/* The owner's cancels of this run: ls_op_cancel() right after these
 * dispatches (as SIGINT would come in), not the engine's injected cancel,
 * which goes to the top of the dispatching machine's join tree: a QMP
 * connection is its devmodel's but not joined, and no owner can reach it. */
static uint64_t owner_cancel_seq[2];
static bool owner_cancel_fired, owner_cancel_due;
static struct enum_env *run_env;
static int owner_state;          /* the owner's role machine's state so far, -1: not known */
static int owner_def = -1;       /* its machine (fsm_all_defs), -1: none */
static void (*owner_act)(struct ls_op *op);   /* the scenario's, or NULL: ls_op_cancel */

static void owner_cancel(struct ls_op *op)
{
    (owner_act ? owner_act : ls_op_cancel)(op);
}

/* After the dispatch that armed it (and what it queued, a FAIL included). */
static void owner_cancel_now(void *data)
{
    struct enum_env *env = data;
    if (!owner_cancel_due)
        return;
    owner_cancel_due = false;
    if (env->op && !env->op->finished)
        owner_cancel(env->op);
}

static void capture(const struct fsm_trace_rec *r, void *data)
{
    struct run *run = data;
    if (r->seq == 0)
        return;   /* a dropped late post */
    for (int i = 0; i < 2; i++)
        if (owner_cancel_seq[i] && r->seq == owner_cancel_seq[i])
            owner_cancel_fired = owner_cancel_due = true;
    const struct fsm_def *def = r->m->def;
    int s = name_index(def->state_names, def->nstates, r->state);
    int e = name_index(def->event_names, def->nevents, r->event);
    const struct fsm_row *row = s >= 0 && e >= 0 ? fsm_def_lookup(def, s, e) : NULL;
    if (r->hole)
        run->hole = true;

    if (run->n == run->cap) {
        run->cap = run->cap ? run->cap * 2 : 64;
        run->d = realloc(run->d, run->cap * sizeof(*run->d));
        if (!run->d)
            abort();
    }
    int di = def_index(def);
    if (run_env && run_env->op && r->m == run_env->op->root)
        owner_state = name_index(def->state_names, def->nstates, r->next);
    run->d[run->n++] = (struct disp){
        .seq = r->seq, .def = di, .row = row && !r->hole ? (int)(row - def->rows) : -1,
        .action = row && !r->hole && row->kind == FSM_CELL_ROW && !fsm_row_nofail(def, row),
        .next = name_index(def->state_names, def->nstates, r->next), .rc = r->rc,
        .state = s, .event = e, .owner_state = owner_state,
    };
    if (di >= 0 && row && !r->hole) {
        if (!taken[di]) {
            taken[di] = calloc((size_t)fsm_all_defs[di]->nrows, sizeof(bool));
            if (!taken[di])
                abort();
        }
        taken[di][row - def->rows] = true;
    }
}

static const char *row_text(int def, int row, char *buf, size_t len)
{
    if (def < 0 || row < 0) {
        snprintf(buf, len, "(no row)");
        return buf;
    }
    const struct fsm_def *d = fsm_all_defs[def];
    const struct fsm_row *r = &d->rows[row];
    snprintf(buf, len, "%s: %s + %s", d->name, r->state < 0 ? "ANY" : d->state_names[r->state],
             d->event_names[r->event]);
    return buf;
}

/* ---- one run -------------------------------------------------------------- */

enum fault_kind { F_NONE, F_FAIL, F_CANCEL };

struct plan {
    enum fake_exec_order order;
    uint64_t fail_seq[2];          /* dispatches to fail (0: none) */
    uint64_t cancel_seq[2];        /* dispatches after which the owner cancels */
    unsigned point;                /* backend point to script (0: none) */
    enum fb_answer answer;
    bool cancel_when_stuck;        /* the owner cancels when only hung calls remain */
    unsigned cancel_before_step;   /* the owner cancels just before this worker step */
    bool cancel_at_start;          /* the owner cancels before the first dispatch */
};

void enum_problem(struct enum_env *env, const char *fmt, ...)
{
    if (env->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env->problem, sizeof(env->problem), fmt, ap);
    va_end(ap);
}

void enum_on_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct enum_env *env = data;
    env->done_calls++;
    env->done_rc = rc;
    snprintf(env->done_msg, sizeof(env->done_msg), "%s", msg ? msg : "");
}

void enum_on_done2(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct enum_env *env = data;
    env->done_calls2++;
    env->done_rc2 = rc;
    snprintf(env->done_msg2, sizeof(env->done_msg2), "%s", msg ? msg : "");
}

static unsigned count_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    /* cppcheck-suppress readdirCalled ; readdir_r is deprecated (glibc); one thread reads this stream */
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static bool stuck_cancel(void *data)
{
    struct enum_env *env = data;
    if (!env->op || env->op->finished)
        return false;
    owner_cancel(env->op);
    return true;
}

static unsigned cancel_step;
static uint64_t cancel_step_seq;   /* dispatches done when that cancel came */
static unsigned w_steps;   /* worker steps of the last run */

static void step_cancel(unsigned n, void *data)
{
    struct enum_env *env = data;
    if (n == cancel_step && env->op && !env->op->finished) {
        cancel_step_seq = fsm_dispatch_count();
        owner_cancel(env->op);
    }
}

static void describe(const struct plan *p, const struct run *base_hint, char *buf, size_t len)
{
    (void)base_hint;
    size_t u = (size_t)snprintf(buf, len, "order %s", p->order == FAKE_EXEC_FIFO ? "fifo" : "lifo");
    for (int i = 0; i < 2; i++)
        if (p->fail_seq[i] && u < len)
            u += (size_t)snprintf(buf + u, len - u, ", fail dispatch %" PRIu64, p->fail_seq[i]);
    for (int i = 0; i < 2; i++)
        if (p->cancel_seq[i] && u < len)
            u += (size_t)snprintf(buf + u, len - u, ", cancel after dispatch %" PRIu64,
                                  p->cancel_seq[i]);
    if (p->cancel_at_start && u < len)
        u += (size_t)snprintf(buf + u, len - u, ", cancel at once");
    if (p->cancel_before_step && u < len)
        u += (size_t)snprintf(buf + u, len - u, ", cancel before worker step %u",
                              p->cancel_before_step);
    if (p->point && u < len)
        u += (size_t)snprintf(buf + u, len - u, ", backend call %u %s%s", p->point,
                              p->answer == FB_FAIL    ? "fails"
                              : p->answer == FB_CLOSE ? "dies half-way through its answer"
                                                      : "never answers",
                              p->cancel_when_stuck ? " and the owner cancels" : "");
}

static struct enum_env *last_env;

int enum_use_qemu(struct enum_env *env, const char *status, struct ls_errbuf *err)
{
    int rc = qmp_peer_open(&env->qemu, &env->fb, status);
    if (rc < 0)
        return ls_err(err, rc, "the scripted QEMU cannot listen: %s", strerror(-rc));
    env->has_qemu = true;
    env->fb.peer = &env->qemu;
    fake_exec_use_loop(&env->ctx.sched);
    fake_exec_on_idle(qmp_peer_step, &env->qemu);
    return 0;
}

/* Run sc under plan p; the run's dispatches go to out and the fake's points
 * to *fb_out. Returns true when every invariant held. */
static bool run_once(const struct enum_scenario *sc, const struct plan *p, struct run *out,
                     struct fake_backend *fb_out, const struct fsm_def *swap_from,
                     const struct fsm_def *swap_to)
{
    static struct enum_env env;
    memset(&env, 0, sizeof(env));
    for (int i = 0; i < 4; i++)
        env.fd[i] = -1;
    out->n = 0;
    out->hole = false;

    fsm_reset_counters();
    fsm_strict = false;
    for (int i = 0; i < 2; i++)
        if (p->fail_seq[i])
            fsm_fault_add(p->fail_seq[i], -EIO);
    for (int i = 0; i < 2; i++)
        owner_cancel_seq[i] = p->cancel_seq[i];
    owner_cancel_fired = owner_cancel_due = false;
    run_env = &env;
    owner_state = -1;
    fake_backend_init(&env.fb);
    env.injected = p->fail_seq[0] != 0;
    if (p->point)
        env.fb.answer[p->point] = p->answer;
    fake_exec_sched_init(&env.ctx.sched, p->order);
    fake_exec_after_dispatch(owner_cancel_now, &env);
    if (qmp_peer_prepare() < 0)
        abort();
    unsigned fds_before = count_fds();   /* after the fakes' own (uv loop, QEMU's socket) */
    fake_exec_inline_work(!(p->point && p->answer == FB_NEVER));
    owner_act = NULL;
    fake_exec_on_stuck(p->cancel_when_stuck ? stuck_cancel : NULL, &env);
    cancel_step = p->cancel_before_step;
    fake_exec_on_step(p->cancel_before_step ? step_cancel : NULL, &env);
    env.ctx.sched.sched.trace = capture;
    env.ctx.sched.sched.trace_data = out;
    env.ctx.be = &env.fb.be;

    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = sc->start(&env, sc->arg, &err);
    if (env.peers) {   /* nothing ran yet: the roles only posted their START */
        fake_exec_inline_work(false);
        fake_exec_park_polls(true);
    }
    owner_act = env.owner_act;
    owner_def = env.op ? def_index(env.op->root->def) : -1;
    if (rc < 0) {
        enum_problem(&env, "the role did not start: %s", err.msg);
    } else {
        if (swap_from && env.op->root->def == swap_from)
            env.op->root->def = swap_to;
        if (p->cancel_at_start)
            owner_cancel(env.op);
        fake_exec_run(&env.ctx.sched);
        if (env.done_calls != 1)
            enum_problem(&env, "done was called %u times", env.done_calls);
        else if (env.op2 && env.done_calls2 != 1)
            enum_problem(&env, "the peer role's done was called %u times", env.done_calls2);
        else if (out->hole)
            enum_problem(&env, "a dispatch hit a (state, event) with no row");
        else if (!fsm_sched_idle(&env.ctx.sched.sched) || env.ctx.sched.sched.nlive)
            enum_problem(&env, "%u machines still live after done", env.ctx.sched.sched.nlive);
        else if (fake_exec_live())
            enum_problem(&env, "%u workers left running after done", fake_exec_live());
        else if (fake_exec_loop_handles())
            enum_problem(&env, "%u uv handles left open after done", fake_exec_loop_handles());
        else if ((p->fail_seq[0] && !fsm_fault_fired() &&
                  !(p->cancel_seq[0] && p->cancel_seq[0] < p->fail_seq[0])) ||
                 (p->cancel_seq[0] && !owner_cancel_fired))
            enum_problem(&env, "the armed fault never fired");
        else
            sc->check(&env);
    }
    fake_exec_on_stuck(NULL, NULL);
    fake_exec_on_step(NULL, NULL);
    w_steps = fake_exec_steps();
    if (fake_exec_live())
        fake_exec_reset();
    if (env.op && env.done_calls)
        ls_op_free(env.op);
    if (env.op2 && env.done_calls2)
        ls_op_free(env.op2);
    fake_exec_park_polls(false);
    fsm_sched_destroy(&env.ctx.sched.sched);
    for (int i = 0; i < 4; i++)
        if (env.fd[i] >= 0)
            close(env.fd[i]);
    fake_backend_close_net(&env.fb);
    if (env.has_qemu)
        qmp_peer_close(&env.qemu);
    unsigned fds_after = count_fds();
    if (fds_after != fds_before)
        enum_problem(&env, "%d fds leaked", (int)fds_after - (int)fds_before);
    *fb_out = env.fb;
    last_env = &env;
    if (!env.problem[0])
        return true;

    char what[256];
    describe(p, NULL, what, sizeof(what));
    fprintf(stderr, "enumerator: %s: %s: %s\n  rc %d: %s\n", sc->name, what, env.problem,
            env.done_rc, env.done_msg);
    if (env.op2)
        fprintf(stderr, "  its peer: rc %d: %s\n", env.done_rc2, env.done_msg2);
    fprintf(stderr, "  rows of the run:\n");
    for (size_t i = 0; i < out->n; i++) {
        char row[160];
        const struct disp *d = &out->d[i];
        const char *action = d->def >= 0 && d->row >= 0
                                 ? fsm_all_defs[d->def]->rows[d->row].action_name : "-";
        if (swap_to && d->def >= 0 && strcmp(fsm_all_defs[d->def]->name, swap_to->name) == 0 &&
            d->row >= 0)
            action = swap_to->rows[d->row].action_name;
        if (d->row < 0 && d->def >= 0 && d->state >= 0 && d->event >= 0)
            snprintf(row, sizeof(row), "%s: %s + %s (no row)", fsm_all_defs[d->def]->name,
                     fsm_all_defs[d->def]->state_names[d->state],
                     fsm_all_defs[d->def]->event_names[d->event]);
        else
            row_text(d->def, d->row, row, sizeof(row));
        fprintf(stderr, "    %4" PRIu64 " %s / %s\n", d->seq, row, action);
    }
    return false;
}

void enum_trace_run(const struct enum_scenario *sc, unsigned point, enum fb_answer answer,
                    struct enum_trace *out)
{
    struct plan p = { .order = FAKE_EXEC_FIFO, .point = point, .answer = answer };
    struct run r = { 0 };
    struct fake_backend fb;
    memset(out, 0, sizeof(*out));
    run_once(sc, &p, &r, &fb, NULL, NULL);
    size_t used = 0;
    for (size_t i = 0; i < r.n && used < sizeof(out->trace); i++) {
        const struct disp *d = &r.d[i];
        if (d->def < 0 || d->row < 0) {
            used += (size_t)snprintf(out->trace + used, sizeof(out->trace) - used, "%s(hole)",
                                     used ? " " : "");
            continue;
        }
        const struct fsm_def *def = fsm_all_defs[d->def];
        const struct fsm_row *row = &def->rows[d->row];
        /* the state the dispatch came from: an ANY row has none of its own */
        char rc[24] = "";
        if (d->rc < 0)
            snprintf(rc, sizeof(rc), "(%d)", d->rc);
        used += (size_t)snprintf(out->trace + used, sizeof(out->trace) - used,
                                 "%s%s:%s.%s/%s%s>%s", used ? " " : "", def->name,
                                 row->state < 0 ? "*" : def->state_names[row->state],
                                 def->event_names[row->event], row->action_name, rc,
                                 d->next >= 0 ? def->state_names[d->next] : "?");
    }
    fake_backend_points(&fb, out->points, sizeof(out->points));
    out->rc = last_env->done_rc;
    snprintf(out->msg, sizeof(out->msg), "%s", last_env->done_msg);
    out->rc2 = last_env->done_rc2;
    snprintf(out->msg2, sizeof(out->msg2), "%s", last_env->done_msg2);
    snprintf(out->problem, sizeof(out->problem), "%s", last_env->problem);
    free(r.d);
}

/* ---- the walk ------------------------------------------------------------ */

/* (first, second) fault keys already tried: an open-addressed hash set (a
 * list searched in full was a sixth of a COLO walk's CPU). 0 marks a free
 * slot, so key 0 is kept aside. */
struct keyset {
    uint64_t *k;
    size_t n, cap;                 /* cap: a power of two, or 0 */
    bool zero;
};

static size_t key_slot(const struct keyset *s, uint64_t k)
{
    uint64_t h = k ^ k >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    size_t i = (size_t)h & (s->cap - 1);
    while (s->k[i] && s->k[i] != k)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static bool keyset_add(struct keyset *s, uint64_t k)
{
    if (k == 0) {
        bool was = s->zero;
        s->zero = true;
        return !was;
    }
    if (s->cap && s->k[key_slot(s, k)] == k)
        return false;
    if ((s->n + 1) * 2 > s->cap) {
        struct keyset g = { .cap = s->cap ? s->cap * 2 : 1024 };
        g.k = calloc(g.cap, sizeof(*g.k));
        if (!g.k)
            abort();
        for (size_t i = 0; i < s->cap; i++)
            if (s->k[i])
                g.k[key_slot(&g, s->k[i])] = s->k[i];
        g.n = s->n;
        free(s->k);
        *s = g;
    }
    s->k[key_slot(s, k)] = k;
    s->n++;
    return true;
}

static uint64_t row_key(const struct disp *d) { return (uint64_t)(d->def + 1) << 16 | (uint64_t)d->row; }

struct walk {
    uint64_t rng;                  /* xorshift64, seeded from the seed and the scenario's name */
    const struct enum_scenario *sc;
    struct enum_stats *st;
    const struct fsm_def *swap_from, *swap_to;
    struct keyset first_fail, first_cancel, second, second_cancel;
    struct run run, scratch;
    struct fake_backend fb;
    bool one_order;                /* the scenario walks FIFO only (enum_env.one_order) */
};

static bool walk_run(struct walk *w, const struct plan *p, struct run *out)
{
    w->st->runs++;
    bool ok = run_once(w->sc, p, out, &w->fb, w->swap_from, w->swap_to);
    if (!ok)
        w->st->failed_runs++;
    return ok;
}

/* Would a run take (machine, state, event) of fsm_all_defs[def], a row no
 * run took yet? Each such row is predicted once: a run that did not take
 * it after all does not make every later one like it walked too. */
static struct keyset predicted;

static bool row_new(int def, int state, const char *event)
{
    if (def < 0 || state < 0)
        return false;
    const struct fsm_def *d = fsm_all_defs[def];
    int e = name_index(d->event_names, d->nevents, event);
    const struct fsm_row *row = e >= 0 ? fsm_def_lookup(d, state, e) : NULL;
    if (!row || (taken[def] && taken[def][row - d->rows]))
        return false;
    return keyset_add(&predicted, (uint64_t)(def + 1) << 16 | (uint64_t)(row - d->rows));
}

/* Walk this second failure? Always, unless the scenario samples them; a
 * sampled scenario still walks every one that would take a row no run took
 * yet (new, predicted from the run: a failed action's FAIL comes in its
 * state, the owner's cancel in the role's), so sampling leaves out only
 * rows already faulted. */
static bool sampled(struct walk *w, bool is_new)
{
    if (w->sc->sample_second <= 1)
        return true;
    if (is_new) {
        w->st->row_guided++;
        return true;
    }
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    if (w->rng % w->sc->sample_second == 0)
        return true;
    w->st->skipped++;
    return false;
}

/* A second failure at every action row of r's dispatches after `after`, and
 * an owner's cancel (a first or a second one) after each from `after` on. */
static void second_failures(struct walk *w, const struct plan *p, const struct run *r,
                            uint64_t after, uint64_t first_key)
{
    struct run copy = { 0 };
    copy.n = r->n;
    copy.d = malloc((r->n ? r->n : 1) * sizeof(*copy.d));
    if (!copy.d)
        abort();
    memcpy(copy.d, r->d, r->n * sizeof(*copy.d));
    for (size_t i = 0; i < copy.n; i++) {
        const struct disp *d = &copy.d[i];
        if (d->seq < after || d->row < 0)
            continue;
        /* the owner cancelling anywhere on the failure path */
        if (!p->cancel_seq[1] && d->seq != p->cancel_seq[0] &&
            keyset_add(&w->second_cancel, first_key * 1000003u + row_key(d)) &&
            sampled(w, row_new(owner_def, d->owner_state, owner_act ? "FAILOVER" : "CANCEL"))) {
            struct plan q = *p;
            q.cancel_seq[p->cancel_seq[0] ? 1 : 0] = d->seq;
            walk_run(w, &q, &w->scratch);
        }
        if (d->seq == after || !d->action || d->seq == p->fail_seq[0] || p->fail_seq[1])
            continue;
        if (!keyset_add(&w->second, first_key * 1000003u + row_key(d)) ||
            !sampled(w, row_new(d->def, d->state, "FAIL")))
            continue;
        struct plan q = *p;
        q.fail_seq[p->fail_seq[0] ? 1 : 0] = d->seq;
        walk_run(w, &q, &w->scratch);
    }
    free(copy.d);
}

/* The first row r dispatched after `after`: where a failure or a cancel that
 * came between dispatches lands. Second passes are keyed by it, so two ways
 * of landing in the same row are walked once. */
static uint64_t landing_key(const struct run *r, uint64_t after, uint64_t tag)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->d[i].seq > after && r->d[i].row >= 0)
            return tag + row_key(&r->d[i]);
    return tag;
}

/* Where backend point pt of base run b was reached: the last row
 * dispatched before it and the point's name. Two answers of the scripted
 * QEMU alike there (a per-disk command's second disk) are one situation
 * for the roles. */
static uint64_t point_key(const struct run *b, const struct fake_backend *fb, unsigned pt)
{
    uint64_t k = 0xcbf29ce484222325ull;
    for (const char *c = fb->point_name[pt]; c && *c; c++)
        k = (k ^ (uint8_t)*c) * 0x100000001b3ull;
    for (size_t i = b->n; i-- > 0;)
        if (b->d[i].seq <= fb->point_seq[pt] && b->d[i].row >= 0)
            return k * 1000003u + row_key(&b->d[i]);
    return k;
}

static void walk_order(struct walk *w, enum fake_exec_order order)
{
    struct keyset points_seen = { 0 };
    struct plan base = { .order = order };
    struct run b = { 0 };
    if (!walk_run(w, &base, &b)) {
        free(b.d);
        return;
    }
    struct fake_backend base_fb = w->fb;
    bool points_once = last_env->peer_points_once;
    w->one_order = last_env->one_order;
    unsigned base_steps = w_steps;
    for (size_t i = 0; i < b.n; i++) {
        const struct disp *d = &b.d[i];
        if (d->row < 0)
            continue;
        uint64_t key = row_key(d);
        if (d->action && keyset_add(&w->first_fail, key)) {
            struct plan p = { .order = order, .fail_seq = { d->seq } };
            walk_run(w, &p, &w->run);
            second_failures(w, &p, &w->run, d->seq, key);
            /* the owner's cancel queued just before the failing dispatch:
             * the failure's FAIL then comes in after the CANCEL row */
            if (d->seq > 1) {
                struct plan q = { .order = order, .fail_seq = { d->seq },
                                  .cancel_seq = { d->seq - 1 } };
                walk_run(w, &q, &w->run);
            }
        }
        if (keyset_add(&w->first_cancel, key)) {
            struct plan p = { .order = order, .cancel_seq = { d->seq } };
            walk_run(w, &p, &w->run);
            second_failures(w, &p, &w->run, d->seq + 1, 0xcc000000u + key);
        }
    }
    struct plan at_start = { .order = order, .cancel_at_start = true };
    walk_run(w, &at_start, &w->run);
    /* The owner's cancel racing each completion: it lands first. */
    for (unsigned n = 1; n <= base_steps; n++) {
        struct plan p = { .order = order, .cancel_before_step = n };
        cancel_step_seq = 0;
        walk_run(w, &p, &w->run);
        second_failures(w, &p, &w->run, 1, landing_key(&w->run, cancel_step_seq, 0xcb000000u));
    }
    for (unsigned pt = 1; pt <= base_fb.npoints; pt++) {
        if (points_once && base_fb.point_peer[pt] &&
            !keyset_add(&points_seen, point_key(&b, &base_fb, pt))) {
            w->st->points_alike++;
            continue;
        }
        struct plan p = { .order = order, .point = pt, .answer = FB_FAIL };
        walk_run(w, &p, &w->run);
        second_failures(w, &p, &w->run, base_fb.point_seq[pt],
                        landing_key(&w->run, base_fb.point_seq[pt], 0xfb000000u));
        /* the owner cancels just as the failure comes back */
        p.cancel_before_step = base_fb.point_step[pt] + 1;
        walk_run(w, &p, &w->run);
        p.cancel_before_step = 0;
        p.answer = FB_NEVER;
        walk_run(w, &p, &w->run);
        p.cancel_when_stuck = true;
        walk_run(w, &p, &w->run);
        if (base_fb.point_peer[pt]) {
            struct plan c = { .order = order, .point = pt, .answer = FB_CLOSE };
            walk_run(w, &c, &w->run);
            second_failures(w, &c, &w->run, base_fb.point_seq[pt],
                            landing_key(&w->run, base_fb.point_seq[pt], 0xfc000000u));
        }
    }
    free(b.d);
    free(points_seen.k);
}

uint64_t enum_seed;

void enum_scenario_walk(const struct enum_scenario *sc, struct enum_stats *st,
                        const struct fsm_def *swap_from, const struct fsm_def *swap_to)
{
    struct walk w = { .sc = sc, .st = st, .swap_from = swap_from, .swap_to = swap_to,
                      .rng = 0x9e3779b97f4a7c15ull ^ enum_seed };
    for (const char *c = sc->name; *c; c++)   /* FNV-1a of the name */
        w.rng = (w.rng ^ (uint8_t)*c) * 0x100000001b3ull;
    walk_order(&w, FAKE_EXEC_FIFO);
    if (!w.one_order)
        walk_order(&w, FAKE_EXEC_LIFO);
    free(w.first_fail.k);
    free(w.first_cancel.k);
    free(w.second.k);
    free(w.second_cancel.k);
    free(w.run.d);
    free(w.scratch.d);
}

/* ---- the report ------------------------------------------------------------ */

static const char *unreachable_reason(const struct fsm_def *d, const struct fsm_row *r)
{
    for (int i = 0; i < d->nunreachable; i++)
        if (d->unreachable[i].state == r->state && d->unreachable[i].event == r->event)
            return d->unreachable[i].reason;
    return NULL;
}

/* Why the row is deferred, or NULL. */
static const char *deferred_why(const struct enum_deferred *deferred, const struct fsm_def *d,
                                const struct fsm_row *r)
{
    char key[160];
    snprintf(key, sizeof(key), "%s %s %s", d->name, r->state < 0 ? "ANY" : d->state_names[r->state],
             d->event_names[r->event]);
    for (int i = 0; deferred && deferred[i].row; i++)
        if (strcmp(deferred[i].row, key) == 0)
            return deferred[i].why;
    return NULL;
}

unsigned enum_report(const char *const *machines, const struct enum_deferred *deferred,
                     const char *rows_file)
{
    FILE *f = rows_file ? fopen(rows_file, "w") : NULL;
    unsigned missing = 0;
    for (size_t i = 0; i < fsm_all_defs_count; i++) {
        const struct fsm_def *d = fsm_all_defs[i];
        bool mine = false;
        for (const char *const *m = machines; *m; m++)
            mine |= strcmp(*m, d->name) == 0;
        unsigned n = 0, marked = 0, later = 0;
        for (int r = 0; r < d->nrows; r++) {
            bool t = taken[i] && taken[i][r];
            n += t;
            if (t && f) {
                const struct fsm_row *row = &d->rows[r];
                fprintf(f, "%s %s %s\n", d->name,
                        row->state < 0 ? "ANY" : d->state_names[row->state],
                        d->event_names[row->event]);
            }
        }
        if (!mine) {
            if (n)
                printf("rows taken: %-16s %3u of %3d (no scenario of its own here)\n", d->name,
                       n, d->nrows);
            continue;
        }
        for (int r = 0; r < d->nrows; r++) {
            const struct fsm_row *row = &d->rows[r];
            char txt[160];
            const char *why = unreachable_reason(d, row);
            if (taken[i] && taken[i][r]) {
                if (why) {
                    missing++;
                    printf("  TAKEN BUT MARKED FSM_UNREACHABLE (the mark is wrong): %s (%s)\n",
                           row_text((int)i, r, txt, sizeof(txt)), d->file);
                }
                continue;
            }
            if (why) {
                marked++;
                continue;
            }
            const char *later_why = deferred_why(deferred, d, row);
            if (later_why) {
                later++;
                printf("  deferred: %s (%s)\n", row_text((int)i, r, txt, sizeof(txt)), later_why);
                continue;
            }
            missing++;
            printf("  NOT TAKEN (and not marked FSM_UNREACHABLE): %s (%s:%d)\n",
                   row_text((int)i, r, txt, sizeof(txt)), d->file, row->line);
        }
        printf("rows taken: %-16s %3u of %3d, %u marked unreachable, %u deferred\n", d->name, n,
               d->nrows, marked, later);
    }
    if (f)
        fclose(f);
    return missing;
}
