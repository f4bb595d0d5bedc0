/* fsm/fsm.h - the table-driven state-machine engine.
 *
 * A machine's states, events and transition rows come from one X-macro file,
 * states/<role>.def (format: fsm/def_begin.h). The engine here knows nothing of
 * I/O or libuv: events are posted into a scheduler queue and dispatched one at
 * a time, run to completion, in FIFO order across all machines of a scheduler.
 *
 * Rules the engine enforces:
 *   - fsm_post() only enqueues; nothing is ever dispatched inside the caller.
 *   - An action returns 0 (the engine enters the row's next state) or a
 *     negative errno (the engine stays, keeps the first error in m->err and
 *     posts the machine's FAIL event carrying that rc).
 *   - A (state, event) pair with no row and no IGNORE is a protocol hole: it
 *     is logged, counted, and becomes FAIL(-EPROTO); with fsm_strict set it
 *     aborts the process so tests surface it.
 *   - Entering a final state purges the machine's queued events, runs its
 *     cleanup stack LIFO (waiting for asynchronous undos), then calls the
 *     owner's done callback exactly once, from a later dispatch.
 *   - Joins: a parent waits for a set of child machines; the first child error
 *     wins, siblings are cancelled, and the parent gets exactly one event after
 *     every child has finished its teardown.
 *   - Every dispatch is traced: seq, machine, state, event, action, next, rc.
 *
 * Lifetime: a machine may be freed only from its done callback or after it.
 */
#ifndef LOCKSTEP_FSM_H
#define LOCKSTEP_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep/errbuf.h"

struct fsm;
struct fsm_sched;

struct fsm_ev {
    int id;          /* event id of the machine's table */
    int rc;          /* 0, or a negative errno for FAIL-like events */
    void *arg;       /* optional payload, owned by the poster's convention */
};

typedef int  fsm_action_fn(struct fsm *m, const struct fsm_ev *ev);
typedef void fsm_done_fn(struct fsm *m, int rc);

/* An undo returns 0 when finished, or FSM_UNDO_PENDING and later calls
 * fsm_undo_complete(m) (e.g. after a uv_close callback). */
#define FSM_UNDO_PENDING 1
typedef int fsm_undo_fn(struct fsm *m, void *obj);

/* ---- the table, as generated from a .def file ------------------------- */

enum fsm_cell_kind {
    FSM_CELL_NONE = 0,   /* no row: protocol hole */
    FSM_CELL_ROW,        /* run action, enter next */
    FSM_CELL_IGNORE,     /* traced, stay */
};

struct fsm_row {
    int state;           /* -1 for an FSM_ANY row */
    int event;
    int next;
    enum fsm_cell_kind kind;
    fsm_action_fn *action;
    const char *action_name;
    const char *reason;  /* IGNORE reason */
    int line;            /* line in the .def file */
    bool nop;            /* the action is fsm_nop (known when the .def is expanded) */
};

/* A row the .def marks as one no run can take (FSM_UNREACHABLE). */
struct fsm_unreachable {
    int state, event;
    const char *reason;
    int line;
};

struct fsm_def {
    const char *name;          /* machine name, e.g. "save" */
    const char *doc;
    const char *file;          /* the .def path */
    int nstates, nevents, nrows;
    const char *const *state_names;
    const char *const *state_docs;
    const bool *state_final;
    const char *const *event_names;
    const char *const *event_docs;
    const struct fsm_row *rows;        /* in .def order, ANY rows included */
    const uint16_t *cells;             /* [state * nevents + event] -> row index + 1, 0 none;
                                          explicit rows only; ANY rows are looked up after */
    const uint16_t *any_rows;          /* [event] -> row index + 1 of FSM_ANY, 0 none */
    int fail_event, cancel_event;      /* every machine declares FAIL and CANCEL */
    int initial_state;                 /* the first state declared */
    const struct fsm_unreachable *unreachable;   /* FSM_UNREACHABLE marks, in .def order */
    int nunreachable;
    /* FSM_NOFAIL actions (NULL-terminated): they never return an error, so
     * an injected fault skips them as it skips fsm_nop; one that does fail
     * aborts a strict build. */
    fsm_action_fn *const *nofail;
    const char *const *nofail_names;
};

/* The row's action never fails: fsm_nop, or declared FSM_NOFAIL. */
bool fsm_row_nofail(const struct fsm_def *def, const struct fsm_row *row);

/* Row that applies to (state, event), or NULL: explicit rows win over ANY;
 * ANY rows never apply in a final state. */
const struct fsm_row *fsm_def_lookup(const struct fsm_def *def, int state, int event);

/* All machines linked into this program, for tools and table tests: the
 * registry the states layer generates (the engine itself never looks). */
extern const struct fsm_def *const fsm_all_defs[];
extern const size_t fsm_all_defs_count;
const struct fsm_def *fsm_def_find(const char *name);

/* ---- trace ------------------------------------------------------------ */

struct fsm_trace_rec {
    uint64_t seq;               /* process-wide dispatch number, from 1 */
    const struct fsm *m;
    const char *machine;        /* def name */
    const char *instance;       /* m->name */
    const char *state, *event, *action, *next;  /* action "-" for IGNORE/hole */
    int rc;                     /* the action's result (or the event's rc for holes) */
    bool ignored, hole, faulted;
};
typedef void fsm_trace_fn(const struct fsm_trace_rec *rec, void *data);

/* ---- scheduler -------------------------------------------------------- */

struct fsm_queued;   /* opaque queue entry */

struct fsm_sched {
    /* Called when the queue goes from empty to non-empty: arrange for
     * fsm_sched_run() to be called soon (uv: an idle/async handle; tests:
     * nothing, they step by hand). May be NULL. */
    void (*kick)(struct fsm_sched *s);
    void *kick_data;
    fsm_trace_fn *trace;
    void *trace_data;
    /* private */
    struct fsm_queued *head, *tail, *free_list;
    size_t queued;
    unsigned nlive;           /* machines initialised and not yet done */
};

void fsm_sched_init(struct fsm_sched *s);
/* Frees queue memory; the queue must be empty and no machine live. */
void fsm_sched_destroy(struct fsm_sched *s);
/* Dispatch one queued event. Returns false when the queue was empty. */
bool fsm_sched_step(struct fsm_sched *s);
/* Dispatch until the queue is empty (events posted meanwhile included). */
void fsm_sched_run(struct fsm_sched *s);
static inline bool fsm_sched_idle(const struct fsm_sched *s) { return s->queued == 0; }

/* ---- machines --------------------------------------------------------- */

struct fsm_join;

struct fsm_undo { fsm_undo_fn *fn; void *obj; const char *what; };

struct fsm {
    const struct fsm_def *def;
    struct fsm_sched *sched;
    fsm_done_fn *done;
    void *owner;               /* the role's context; free for the owner to use */
    char name[48];             /* instance name for traces, e.g. "save[dom3]" */
    int state;
    struct ls_errbuf err;      /* first error: rc and reason */
    /* private */
    unsigned flags;
    struct fsm_undo *undo;
    unsigned nundo, undo_cap, undo_pending;
    struct fsm_join *joined_in; /* the join this machine is a child of */
    unsigned pending_events;
};

/* Initialise m in the def's initial state. Never fails. */
void fsm_init(struct fsm *m, const struct fsm_def *def, struct fsm_sched *sched,
              fsm_done_fn *done, void *owner, const char *name_fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Enqueue an event. Events posted to a final machine are dropped (traced).
 * An id the machine's table does not define aborts at once, naming both:
 * it is an event of another machine, a bug no run should survive. */
void fsm_post(struct fsm *m, int ev, int rc, void *arg);

/* Post the machine's CANCEL with reason rc (e.g. -ECANCELED, -EINTR). */
void fsm_cancel(struct fsm *m, int rc);

/* Record the first error with a reason, and return rc, for actions:
 *     return fsm_fail(m, -EPROTO, "record %s at offset %llu: ...", ...);
 * The engine then posts FAIL. Usable outside actions to set the reason
 * before posting FAIL by hand. */
int fsm_fail(struct fsm *m, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adopt another machine's or module's error (first error wins). */
void fsm_fail_from(struct fsm *m, const struct ls_errbuf *e);

/* Push an undo; it runs when the machine enters a final state, LIFO.
 * Returns 0 or -ENOMEM (then undo(obj) has already been run). */
int fsm_defer(struct fsm *m, fsm_undo_fn *undo, void *obj, const char *what);
/* Run and drop the most recent undo registered for obj now (e.g. a resource
 * released on the happy path). Returns false if none. */
bool fsm_undo_now(struct fsm *m, void *obj);
/* Drop the undo registered for obj without running it (ownership moved). */
bool fsm_undo_forget(struct fsm *m, void *obj);
void fsm_undo_complete(struct fsm *m);

static inline int fsm_rc(const struct fsm *m) { return m->err.rc; }
static inline const char *fsm_errmsg(const struct fsm *m) { return m->err.msg; }
const char *fsm_state_name(const struct fsm *m);
bool fsm_is_final(const struct fsm *m);
/* True once done has been called. */
bool fsm_is_done(const struct fsm *m);

/* A no-op action for rows that only change state. */
static inline int fsm_nop(struct fsm *m, const struct fsm_ev *ev)
{
    (void)m;
    (void)ev;
    return 0;
}

/* ---- joins ------------------------------------------------------------ */

#define FSM_JOIN_MAX 8

struct fsm_join {
    struct fsm *parent;
    int ev_ok, ev_fail;
    struct fsm *child[FSM_JOIN_MAX];
    unsigned nchild, pending;     /* pending includes the sentinel until armed */
    struct ls_errbuf err;         /* first child error */
    bool armed, reported;
    bool delivered;               /* the parent has dispatched the report */
    bool undo_waiting;            /* the parent went final: report by undo completion */
};

void fsm_join_begin(struct fsm_join *j, struct fsm *parent, int ev_ok, int ev_fail);
/* Adds a child; a child that ends before the join is armed still counts. */
void fsm_join_add(struct fsm_join *j, struct fsm *child);
void fsm_join_arm(struct fsm_join *j);
/* Cancel every child not yet final (rc is the reason). The join still
 * reports once, after all of them finish. If the parent already took the
 * report (its action on it failed, and it cancels to await the join), the
 * report comes again as ev_fail: a state awaiting the join always ends. */
void fsm_join_cancel(struct fsm_join *j, int rc);
/* An undo (for fsm_defer) that keeps a parent from finishing before its
 * children: cancels the join's children unless it has reported, and completes
 * when they are all done. Register it when the children are started. */
int fsm_join_undo(struct fsm *parent, void *join);

/* ---- strictness, faults, statistics ---------------------------------- */

/* When true, a protocol hole aborts (test builds set it; env FSM_STRICT=1). */
extern bool fsm_strict;

/* Make dispatch number seq behave as if its action returned rc (the action is
 * not run). Env FSM_FAULT=seq:rc arms it at start-up. */
void fsm_fault_arm(uint64_t seq, int rc);
/* Arm one more (up to 8). rc FSM_FAULT_CANCEL: dispatch seq runs, then the
 * top of its join tree is cancelled, as an owner's cancel arriving at that
 * moment would be. Env: FSM_FAULT=SEQ[:ERRNO|:cancel][,SEQ...]. */
#define FSM_FAULT_CANCEL 1
void fsm_fault_add(uint64_t seq, int rc);
bool fsm_fault_fired(void);
uint64_t fsm_dispatch_count(void);
uint64_t fsm_hole_count(void);
/* Reset the dispatch counter and fault state (tests). */
void fsm_reset_counters(void);

/* Default trace sink: one line per dispatch to stderr. */
fsm_trace_fn fsm_trace_stderr;

#endif
