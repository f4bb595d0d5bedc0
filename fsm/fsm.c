/* fsm/fsm.c - dispatch, queue, trace, joins, cleanup stack, fault hook.
 *
 * One FIFO per scheduler holds (machine, event) entries; fsm_sched_step()
 * takes one, finds its row and runs it to completion. Internal entries
 * (finalise, done) go through the same queue, so the owner's done callback
 * always runs from a later dispatch than the one that entered the final state.
 */
#include "fsm/fsm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    FSM_F_LIVE      = 1u << 0,  /* initialised, done not yet called */
    FSM_F_FINAL     = 1u << 1,  /* entered a final state */
    FSM_F_UNDOING   = 1u << 2,  /* cleanup stack running */
    FSM_F_DONE      = 1u << 3,  /* done called */
    FSM_F_DONE_QUEUED = 1u << 4,
};

/* Internal events, below every table's ids. */
enum { FSM_EV_RUN_UNDO = -1, FSM_EV_CALL_DONE = -2, FSM_EV_JOIN_REPORT = -3 };

struct fsm_queued {
    struct fsm_queued *next;
    struct fsm *m;
    struct fsm_ev ev;
};

bool fsm_strict;

static uint64_t dispatch_seq;
static uint64_t hole_count;
/* Armed faults: dispatch seq fails with rc, or (rc == FSM_FAULT_CANCEL) runs
 * normally and is then followed by the machine's CANCEL, as an owner's
 * cancel arriving at that moment would be. */
#define FSM_FAULT_MAX 8
static struct { uint64_t seq; int rc; } faults[FSM_FAULT_MAX];
static unsigned nfaults;
static bool fault_fired;
static bool fault_env_read;

/* ---- table lookup ------------------------------------------------------ */

const struct fsm_row *fsm_def_lookup(const struct fsm_def *def, int state, int event)
{
    if (state < 0 || state >= def->nstates || event < 0 || event >= def->nevents)
        return NULL;
    uint16_t idx = def->cells[state * def->nevents + event];
    if (idx)
        return &def->rows[idx - 1];
    if (def->state_final[state])
        return NULL;
    idx = def->any_rows[event];
    return idx ? &def->rows[idx - 1] : NULL;
}

bool fsm_row_nofail(const struct fsm_def *def, const struct fsm_row *row)
{
    if (row->nop)
        return true;
    for (fsm_action_fn *const *a = def->nofail; a && *a; a++)
        if (*a == row->action)
            return true;
    return false;
}

/* ---- faults and counters ----------------------------------------------- */

static void fault_read_env(void)
{
    if (fault_env_read)
        return;
    fault_env_read = true;
#ifdef LOCKSTEP_FAULT_HOOKS
    /* FSM_FAULT=SEQ[:ERRNO|:cancel][,SEQ...]: e.g. "7:5,12:cancel". A
     * release build (no LOCKSTEP_FAULT_HOOKS) never reads it. */
    const char *s = getenv("FSM_FAULT");
    while (s && *s) {
        char *end;
        unsigned long long seq = strtoull(s, &end, 10);
        int rc = -EIO;
        if (*end == ':' && strncmp(end + 1, "cancel", 6) == 0) {
            rc = FSM_FAULT_CANCEL;
            end += 7;
        } else if (*end == ':') {
            long v = strtol(end + 1, &end, 10);
            rc = v > 0 ? (int)-v : v < 0 ? (int)v : -EIO;
        }
        if (end == s || (*end && *end != ',')) {
            fprintf(stderr, "lockstep: FSM_FAULT: cannot parse \"%s\" "
                            "(want SEQ[:ERRNO|:cancel][,...])\n", getenv("FSM_FAULT"));
            abort();
        }
        fsm_fault_add(seq, rc);
        s = *end ? end + 1 : end;
    }
#endif
    const char *strict = getenv("FSM_STRICT");
    if (strict && strcmp(strict, "1") == 0)
        fsm_strict = true;
}

void fsm_fault_arm(uint64_t seq, int rc)
{
    fault_env_read = true;
    nfaults = 0;
    fault_fired = false;
    fsm_fault_add(seq, rc);
}

void fsm_fault_add(uint64_t seq, int rc)
{
    fault_env_read = true;
    if (nfaults == FSM_FAULT_MAX)
        return;
    faults[nfaults].seq = seq;
    faults[nfaults].rc = rc < 0 || rc == FSM_FAULT_CANCEL ? rc : -EIO;
    nfaults++;
}

/* The fault armed for this dispatch: 0 for none. */
static int fault_at(uint64_t seq)
{
    for (unsigned i = 0; i < nfaults; i++)
        if (faults[i].seq == seq)
            return faults[i].rc;
    return 0;
}

bool fsm_fault_fired(void) { return fault_fired; }
uint64_t fsm_dispatch_count(void) { return dispatch_seq; }
uint64_t fsm_hole_count(void) { return hole_count; }

void fsm_reset_counters(void)
{
    dispatch_seq = 0;
    hole_count = 0;
    nfaults = 0;
    fault_fired = false;
    fault_env_read = true;
}

/* ---- scheduler queue ---------------------------------------------------- */

void fsm_sched_init(struct fsm_sched *s)
{
    memset(s, 0, sizeof(*s));
    fault_read_env();
}

void fsm_sched_destroy(struct fsm_sched *s)
{
    struct fsm_queued *q = s->free_list;
    while (q) {
        struct fsm_queued *n = q->next;
        free(q);
        q = n;
    }
    s->free_list = NULL;
    /* Entries still queued belong to machines the owner abandoned; free them
     * too so a torn-down program leaks nothing. */
    q = s->head;
    while (q) {
        struct fsm_queued *n = q->next;
        free(q);
        q = n;
    }
    s->head = s->tail = NULL;
    s->queued = 0;
}

#pragma GCC diagnostic push
/* analyzer: q is linked into the scheduler's queue (s->tail), freed when dispatched; GCC 12 loses it */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static void enqueue(struct fsm *m, int id, int rc, void *arg)
{
    struct fsm_sched *s = m->sched;
    struct fsm_queued *q = s->free_list;
    if (q) {
        s->free_list = q->next;
    } else {
        q = malloc(sizeof(*q));
        if (!q) {
            /* Out of memory while queueing: nothing sane can continue. */
            fprintf(stderr, "lockstep: out of memory queueing an event for %s\n", m->name);
            abort();
        }
    }
    q->next = NULL;
    q->m = m;
    q->ev.id = id;
    q->ev.rc = rc;
    q->ev.arg = arg;
    bool was_empty = s->head == NULL;
    if (s->tail)
        s->tail->next = q;
    else
        s->head = q;
    s->tail = q;
    s->queued++;
    m->pending_events++;
    if (was_empty && s->kick)
        s->kick(s);
}
#pragma GCC diagnostic pop

/* Drop every queued table event of m (internal entries stay). */
static void purge(struct fsm *m)
{
    struct fsm_sched *s = m->sched;
    struct fsm_queued **pp = &s->head, *prev = NULL;
    while (*pp) {
        struct fsm_queued *q = *pp;
        if (q->m == m && q->ev.id >= 0) {
            *pp = q->next;
            if (s->tail == q)
                s->tail = prev;
            q->next = s->free_list;
            s->free_list = q;
            s->queued--;
            m->pending_events--;
        } else {
            prev = q;
            pp = &q->next;
        }
    }
}

/* ---- trace -------------------------------------------------------------- */

void fsm_trace_stderr(const struct fsm_trace_rec *r, void *data)
{
    (void)data;
    fprintf(stderr, "fsm %6" PRIu64 " %-10s %-16s %-24s %-20s %-26s -> %-24s rc=%d%s%s%s\n",
            r->seq, r->machine, r->instance, r->state, r->event, r->action, r->next, r->rc,
            r->ignored ? " (ignored)" : "", r->hole ? " (NO ROW)" : "",
            !r->faulted ? "" : r->rc < 0 ? " (injected fault)"
                                         : " (injected fault skipped: the action cannot fail)");
}

static void trace(struct fsm *m, uint64_t seq, int state, int event, const char *action,
                  int next, int rc, bool ignored, bool hole, bool faulted)
{
    struct fsm_sched *s = m->sched;
    if (!s->trace)
        return;
    const struct fsm_def *d = m->def;
    struct fsm_trace_rec r = {
        .seq = seq, .m = m, .machine = d->name, .instance = m->name,
        .state = d->state_names[state],
        .event = event >= 0 ? d->event_names[event] : (event == FSM_EV_RUN_UNDO ? "(cleanup)" : "(done)"),
        .action = action, .next = d->state_names[next], .rc = rc,
        .ignored = ignored, .hole = hole, .faulted = faulted,
    };
    s->trace(&r, s->trace_data);
}

/* ---- machines ----------------------------------------------------------- */

void fsm_init(struct fsm *m, const struct fsm_def *def, struct fsm_sched *sched,
              fsm_done_fn *done, void *owner, const char *name_fmt, ...)
{
    memset(m, 0, sizeof(*m));
    m->def = def;
    m->sched = sched;
    m->done = done;
    m->owner = owner;
    m->state = def->initial_state;
    m->flags = FSM_F_LIVE;
    va_list ap;
    va_start(ap, name_fmt);
    vsnprintf(m->name, sizeof(m->name), name_fmt, ap);
    va_end(ap);
    sched->nlive++;
}

const char *fsm_state_name(const struct fsm *m) { return m->def->state_names[m->state]; }
bool fsm_is_final(const struct fsm *m) { return (m->flags & FSM_F_FINAL) != 0; }
bool fsm_is_done(const struct fsm *m) { return (m->flags & FSM_F_DONE) != 0; }

void fsm_post(struct fsm *m, int ev, int rc, void *arg)
{
    if (ev < 0 || ev >= m->def->nevents) {
        fprintf(stderr, "lockstep: %s: event id %d posted to machine %s, whose table has "
                "events 0..%d (an event of another machine?)\n", m->name, ev, m->def->name,
                m->def->nevents - 1);
        abort();
    }
    if (m->flags & (FSM_F_FINAL | FSM_F_DONE)) {
        /* Late completions of work the machine no longer waits for. */
        if (m->sched->trace && !(m->flags & FSM_F_DONE))
            trace(m, 0, m->state, ev, "(dropped: machine is final)", m->state, rc,
                  true, false, false);
        return;
    }
    enqueue(m, ev, rc, arg);
}

void fsm_cancel(struct fsm *m, int rc)
{
    /* No error is recorded here: a state that ignores CANCEL (the stream is
     * complete, the receiver decides now) must end as it would have. The
     * CANCEL row records it. */
    fsm_post(m, m->def->cancel_event, rc ? rc : -ECANCELED, NULL);
}

int fsm_fail(struct fsm *m, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ls_verr(&m->err, rc, fmt, ap);
    va_end(ap);
    return rc;
}

void fsm_fail_from(struct fsm *m, const struct ls_errbuf *e)
{
    ls_err_copy(&m->err, e);
}

/* ---- cleanup stack ------------------------------------------------------ */

int fsm_defer(struct fsm *m, fsm_undo_fn *undo, void *obj, const char *what)
{
    if (m->nundo == m->undo_cap) {
        unsigned cap = m->undo_cap ? m->undo_cap * 2 : 8;
        struct fsm_undo *u = realloc(m->undo, cap * sizeof(*u));
        if (!u) {
            undo(m, obj);
            return fsm_fail(m, -ENOMEM, "%s: out of memory registering cleanup of %s",
                            m->name, what);
        }
        m->undo = u;
        m->undo_cap = cap;
    }
    m->undo[m->nundo++] = (struct fsm_undo){ undo, obj, what };
    return 0;
}

static int find_undo(struct fsm *m, void *obj)
{
    for (int i = (int)m->nundo - 1; i >= 0; i--)
        if (m->undo[i].obj == obj)
            return i;
    return -1;
}

static void remove_undo(struct fsm *m, int i)
{
    memmove(&m->undo[i], &m->undo[i + 1], (m->nundo - (unsigned)i - 1) * sizeof(m->undo[0]));
    m->nundo--;
}

bool fsm_undo_forget(struct fsm *m, void *obj)
{
    int i = find_undo(m, obj);
    if (i < 0)
        return false;
    remove_undo(m, i);
    return true;
}

bool fsm_undo_now(struct fsm *m, void *obj)
{
    int i = find_undo(m, obj);
    if (i < 0)
        return false;
    struct fsm_undo u = m->undo[i];
    remove_undo(m, i);
    if (u.fn(m, u.obj) == FSM_UNDO_PENDING)
        m->undo_pending++;
    return true;
}

static void queue_done(struct fsm *m)
{
    if (m->flags & FSM_F_DONE_QUEUED)
        return;
    m->flags |= FSM_F_DONE_QUEUED;
    enqueue(m, FSM_EV_CALL_DONE, 0, NULL);
}

/* Run undos LIFO. An undo that goes asynchronous stops the walk until it
 * completes, so later (outer) resources are never released before inner ones. */
static void run_undos(struct fsm *m)
{
    while (m->undo_pending == 0 && m->nundo > 0) {
        struct fsm_undo u = m->undo[--m->nundo];
        if (u.fn(m, u.obj) == FSM_UNDO_PENDING)
            m->undo_pending++;
    }
    if (m->undo_pending == 0 && m->nundo == 0)
        queue_done(m);
}

void fsm_undo_complete(struct fsm *m)
{
    if (m->undo_pending == 0)
        return;
    m->undo_pending--;
    if ((m->flags & FSM_F_UNDOING) && m->undo_pending == 0)
        enqueue(m, FSM_EV_RUN_UNDO, 0, NULL);
}

/* ---- joins -------------------------------------------------------------- */

static void join_report_if_complete(struct fsm_join *j)
{
    if (!j->armed || j->pending > 0 || j->reported)
        return;
    j->reported = true;
    if (j->undo_waiting) {
        fsm_undo_complete(j->parent);
        return;
    }
    if (j->err.rc)
        fsm_fail_from(j->parent, &j->err);
    /* Internal first, so the join knows when its report was delivered. */
    enqueue(j->parent, FSM_EV_JOIN_REPORT, j->err.rc, j);
}

void fsm_join_begin(struct fsm_join *j, struct fsm *parent, int ev_ok, int ev_fail)
{
    memset(j, 0, sizeof(*j));
    j->parent = parent;
    j->ev_ok = ev_ok;
    j->ev_fail = ev_fail;
    j->pending = 1;   /* the sentinel, dropped by arm */
}

void fsm_join_add(struct fsm_join *j, struct fsm *child)
{
    if (j->nchild >= FSM_JOIN_MAX || child->joined_in || j->reported) {
        fprintf(stderr, "lockstep: fsm_join_add misuse (%s)\n", child->name);
        abort();
    }
    j->child[j->nchild++] = child;
    child->joined_in = j;
    j->pending++;
}

void fsm_join_arm(struct fsm_join *j)
{
    if (j->armed)
        return;
    j->armed = true;
    j->pending--;
    join_report_if_complete(j);
}

#pragma GCC diagnostic push
/* analyzer: the event enqueue() allocates is on the queue (see enqueue) */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
void fsm_join_cancel(struct fsm_join *j, int rc)
{
    /* The parent already took the report, but its action on it failed and it
     * is now cancelling to await the join: report again, as a failure, so
     * every await-the-join state still gets its one event. */
    if (j->delivered) {
        j->delivered = false;
        enqueue(j->parent, FSM_EV_JOIN_REPORT, j->err.rc ? j->err.rc : rc, j);
        return;
    }
    for (unsigned i = 0; i < j->nchild; i++)
        if (!fsm_is_final(j->child[i]))
            fsm_cancel(j->child[i], rc);
}
#pragma GCC diagnostic pop

int fsm_join_undo(struct fsm *parent, void *join)
{
    struct fsm_join *j = join;
    if (j->reported)
        return 0;
    j->undo_waiting = true;
    fsm_join_cancel(j, -ECANCELED);
    fsm_join_arm(j);
    return j->reported ? 0 : FSM_UNDO_PENDING;
}

/* A child finished its teardown: count it, keep the first error, cancel
 * the siblings on failure. */
static void join_child_finished(struct fsm *child)
{
    struct fsm_join *j = child->joined_in;
    if (!j)
        return;
    child->joined_in = NULL;
    j->pending--;
    if (child->err.rc && !j->err.rc) {
        ls_err_copy(&j->err, &child->err);
        fsm_join_cancel(j, -ECANCELED);
    }
    join_report_if_complete(j);
}

/* ---- dispatch ----------------------------------------------------------- */

static void enter_final(struct fsm *m)
{
    m->flags |= FSM_F_FINAL | FSM_F_UNDOING;
    purge(m);
    run_undos(m);
}

static void call_done(struct fsm *m)
{
    m->flags = (m->flags & ~(FSM_F_LIVE | FSM_F_UNDOING)) | FSM_F_DONE;
    m->sched->nlive--;
    free(m->undo);
    m->undo = NULL;
    m->nundo = m->undo_cap = 0;
    int rc = m->err.rc;
    /* The join learns first: the done callback may free the child. */
    join_child_finished(m);
    if (m->done)
        m->done(m, rc);
}

static void dispatch(struct fsm *m, const struct fsm_ev *ev);

static void dispatch_internal(struct fsm *m, const struct fsm_ev *ev)
{
    if (ev->id == FSM_EV_JOIN_REPORT) {
        struct fsm_join *j = ev->arg;
        j->delivered = true;
        if (m->flags & FSM_F_FINAL)
            return;
        struct fsm_ev report = { .id = ev->rc ? j->ev_fail : j->ev_ok, .rc = ev->rc, .arg = j };
        dispatch(m, &report);
    } else if (ev->id == FSM_EV_RUN_UNDO)
        run_undos(m);
    else if (ev->id == FSM_EV_CALL_DONE)
        call_done(m);
}

/* A state that ignores FAIL is already tearing down: an action failing there
 * must not stop it, or a machine waiting on that action would never end. */
static bool state_is_tearing_down(const struct fsm_def *d, int state)
{
    const struct fsm_row *fail_row = fsm_def_lookup(d, state, d->fail_event);
    return fail_row && fail_row->kind == FSM_CELL_IGNORE;
}

static void dispatch_row(struct fsm *m, const struct fsm_ev *ev, uint64_t seq)
{
    const struct fsm_def *d = m->def;
    int state = m->state;
    const struct fsm_row *row = fsm_def_lookup(d, state, ev->id);

    if (!row) {
        hole_count++;
        trace(m, seq, state, ev->id, "-", state, -EPROTO, false, true, false);
        fprintf(stderr, "lockstep: %s: no row for event %s in state %s\n", m->name,
                d->event_names[ev->id], d->state_names[state]);
        if (fsm_strict)
            abort();
        fsm_fail(m, -EPROTO, "%s: protocol error: event %s is not expected in state %s",
                 m->name, d->event_names[ev->id], d->state_names[state]);
        if (ev->id != d->fail_event)
            enqueue(m, d->fail_event, -EPROTO, NULL);
        return;
    }
    if (row->kind == FSM_CELL_IGNORE) {
        trace(m, seq, state, ev->id, "-", state, 0, true, false, false);
        return;
    }

    /* A cancel's reason comes first: the CANCEL row's action (failing
     * pending commands, cancelling children) passes the machine's error on.
     * A FAIL's is recorded after its action, which may adopt a better one. */
    if (ev->id == d->cancel_event && !m->err.rc)
        ls_err(&m->err, ev->rc ? ev->rc : -ECANCELED, "%s: cancelled in state %s",
               m->name, d->state_names[state]);

    int fault = fault_at(seq);
    bool faulted = fault != 0 && fault != FSM_FAULT_CANCEL;
    bool failing_already = ev->id == d->fail_event || ev->id == d->cancel_event ||
                           state_is_tearing_down(d, state);
    /* fsm_nop and FSM_NOFAIL actions cannot fail: a fault injected there is
     * traced and skipped, since failing it would test a path no real run can
     * take. */
    bool nofail = fsm_row_nofail(d, row);
    if (faulted && nofail) {
        fault_fired = true;
        if (!row->nop)
            row->action(m, ev);
        m->state = row->next;
        trace(m, seq, state, ev->id, row->action_name, row->next, 0, false, false, true);
        if (d->state_final[m->state])
            enter_final(m);
        return;
    }
    int rc;
    if (faulted) {
        fault_fired = true;
        /* A teardown row's action still runs (cancelling children, starting
         * a resume, taking a join's report): the fault is its error, as if
         * it failed when done. */
        if (failing_already)
            row->action(m, ev);
        rc = fsm_fail(m, fault, "%s: injected fault at dispatch %" PRIu64 " (%s in %s)",
                      m->name, seq, d->event_names[ev->id], d->state_names[state]);
    } else {
        rc = row->action(m, ev);
        if (rc < 0 && nofail) {
            fprintf(stderr, "lockstep: %s: %s is declared FSM_NOFAIL but failed (%d) on %s "
                    "in state %s\n", m->name, row->action_name, rc, d->event_names[ev->id],
                    d->state_names[state]);
            if (fsm_strict)
                abort();
        }
    }
    if (rc < 0 && !failing_already) {
        if (!m->err.rc)
            fsm_fail(m, rc, "%s: %s failed in state %s: %s", m->name, row->action_name,
                     d->state_names[state], strerror(-rc));
        trace(m, seq, state, ev->id, row->action_name, state, rc, false, false, faulted);
        enqueue(m, d->fail_event, m->err.rc, NULL);
        return;
    }
    /* An action failing while handling FAIL or CANCEL, or in a state that
     * is already tearing down, must not stop the teardown: its error is kept
     * (if first), the row is taken anyway, and FAIL follows in the next
     * state. */
    if (rc < 0 && !m->err.rc)
        fsm_fail(m, rc, "%s: %s failed during teardown", m->name, row->action_name);
    if (ev->id == d->fail_event && !m->err.rc)
        ls_err(&m->err, ev->rc ? ev->rc : -EIO, "%s: failed in state %s", m->name,
               d->state_names[state]);
    m->state = row->next;
    trace(m, seq, state, ev->id, row->action_name, row->next, rc, false, false, faulted);
    if (d->state_final[m->state])
        enter_final(m);
    else if (rc < 0 && failing_already)
        /* The failed teardown action may have been what the next state
         * awaits (a resume that never started): fail again from there. */
        enqueue(m, d->fail_event, m->err.rc, NULL);
}

/* An owner's cancel (SIGINT, a toolstack giving up) arriving right after
 * dispatch seq: it reaches the top of the join tree, as ls_op_cancel does,
 * and is dropped if that machine has already finished. */
static void inject_cancel(struct fsm *m)
{
    struct fsm *root = m;
    while (root->joined_in)
        root = root->joined_in->parent;
    fault_fired = true;
    if (root->flags & (FSM_F_FINAL | FSM_F_DONE)) {
        trace(root, 0, root->state, root->def->cancel_event, "(injected cancel: too late)",
              root->state, 0, true, false, false);
        return;
    }
    trace(root, 0, root->state, root->def->cancel_event, "(injected cancel)", root->state,
          -ECANCELED, false, false, false);
    fsm_post(root, root->def->cancel_event, -ECANCELED, NULL);
}

static void dispatch(struct fsm *m, const struct fsm_ev *ev)
{
    uint64_t seq = ++dispatch_seq;
    dispatch_row(m, ev, seq);
    if (fault_at(seq) == FSM_FAULT_CANCEL)
        inject_cancel(m);
}

bool fsm_sched_step(struct fsm_sched *s)
{
    struct fsm_queued *q = s->head;
    if (!q)
        return false;
    s->head = q->next;
    if (!s->head)
        s->tail = NULL;
    s->queued--;
    struct fsm *m = q->m;
    struct fsm_ev ev = q->ev;
    q->next = s->free_list;
    s->free_list = q;
    m->pending_events--;
    if (ev.id < 0)
        dispatch_internal(m, &ev);
    else if (!(m->flags & FSM_F_FINAL))
        dispatch(m, &ev);
    return true;
}

void fsm_sched_run(struct fsm_sched *s)
{
    while (fsm_sched_step(s))
        ;
}
