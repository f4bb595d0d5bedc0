/* tools/fsm-dot/fsm_check.c - the table linter behind `fsm-dot --check`.
 *
 * Reachability follows what the engine can actually dispatch: only action rows
 * move a machine, only non-final states take events, and (state, event) is
 * resolved exactly as fsm_def_lookup() does, so ANY rows count where they
 * apply and nowhere else.
 */
#include "tools/fsm-dot/fsm_check.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct check {
    const struct fsm_def *def;
    fsm_problem_fn *cb;
    void *data;
    int count;
    char *text;            /* the .def source, or NULL */
    bool *reach;           /* [state] reachable from the initial state */
    bool *finishes;        /* [state] some path reaches a final state */
    bool *row_live;        /* [row] can be taken in some reachable state */
};

const char *fsm_problem_kind_name(enum fsm_problem_kind kind)
{
    static const char *const names[FSM_P__COUNT] = {
        [FSM_P_NO_FINAL] = "no-final",
        [FSM_P_UNREACHABLE] = "unreachable",
        [FSM_P_NO_PATH_TO_FINAL] = "no-path-to-final",
        [FSM_P_UNHANDLED_FAIL] = "unhandled-fail",
        [FSM_P_UNHANDLED_CANCEL] = "unhandled-cancel",
        [FSM_P_DEAD_ROW] = "dead-row",
        [FSM_P_UNUSED_ACTION] = "unused-action",
        [FSM_P_FINAL_HAS_ROWS] = "final-has-rows",
        [FSM_P_UNUSED_EVENT] = "unused-event",
        [FSM_P_ANY_NOT_FAIL] = "any-not-fail-cancel",
        [FSM_P_IGNORE_NO_REASON] = "ignore-no-reason",
        [FSM_P_MARK_NO_ROW] = "unreachable-mark-no-row",
        [FSM_P_MARK_NO_REASON] = "unreachable-mark-no-reason",
        [FSM_P_MARK_TWICE] = "unreachable-mark-twice",
    };
    return (unsigned)kind < FSM_P__COUNT ? names[kind] : "?";
}

void fsm_problem_format(const struct fsm_problem *p, char *buf, size_t size)
{
    if (p->line > 0)
        snprintf(buf, size, "%s:%d: %s: %s", p->def->file, p->line, p->def->name, p->msg);
    else
        snprintf(buf, size, "%s: %s: %s", p->def->file, p->def->name, p->msg);
}

/* ---- source lines -------------------------------------------------------- */

static char *read_def_source(const char *src_dir, const char *file)
{
    if (!src_dir || !file)
        return NULL;
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", src_dir, file) >= (int)sizeof(path))
        return NULL;
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, 4096, f);
        len += n;
        if (n < 4096)
            break;
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Line of `MACRO(name` in the source (whitespace allowed), 0 if absent. */
static int decl_line(const char *text, const char *macro, const char *name)
{
    if (!text)
        return 0;
    size_t mlen = strlen(macro), nlen = strlen(name);
    int line = 1;
    for (const char *p = text; *p; line++) {
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncmp(q, macro, mlen) == 0) {
            q += mlen;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '(') {
                q++;
                while (*q == ' ' || *q == '\t')
                    q++;
                if (strncmp(q, name, nlen) == 0 && !ident_char(q[nlen]))
                    return line;
            }
        }
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static int state_line(const struct check *c, int s)
{
    const struct fsm_def *d = c->def;
    const char *name = d->state_names[s];
    int line = decl_line(c->text, d->state_final[s] ? "FSM_FINAL" : "FSM_STATE", name);
    if (line)
        return line;
    for (int i = 0; i < d->nrows; i++)
        if (d->rows[i].state == s)
            return d->rows[i].line;
    for (int i = 0; i < d->nrows; i++)
        if (d->rows[i].next == s && d->rows[i].kind == FSM_CELL_ROW)
            return d->rows[i].line;
    return 0;
}

static int event_line(const struct check *c, int e)
{
    int line = decl_line(c->text, "FSM_EVENT", c->def->event_names[e]);
    if (line)
        return line;
    for (int i = 0; i < c->def->nrows; i++)
        if (c->def->rows[i].event == e)
            return c->def->rows[i].line;
    return 0;
}

/* ---- reporting ----------------------------------------------------------- */

__attribute__((format(printf, 7, 8)))
static void report(struct check *c, enum fsm_problem_kind kind, int line, int state, int event,
                   int row, const char *fmt, ...)
{
    struct fsm_problem p = {
        .kind = kind, .def = c->def, .line = line, .state = state, .event = event, .row = row,
    };
    if (kind == FSM_P_UNUSED_ACTION && row >= 0)
        p.action = c->def->rows[row].action_name;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p.msg, sizeof(p.msg), fmt, ap);
    va_end(ap);
    c->count++;
    if (c->cb)
        c->cb(&p, c->data);
}

/* ---- analysis ------------------------------------------------------------ */

/* The state an action row takes the machine to from s on e, or -1. */
static int step(const struct fsm_def *d, int s, int e)
{
    if (d->state_final[s])
        return -1;
    const struct fsm_row *r = fsm_def_lookup(d, s, e);
    return r && r->kind == FSM_CELL_ROW ? r->next : -1;
}

static void compute_reach(struct check *c)
{
    const struct fsm_def *d = c->def;
    int *work = calloc((size_t)d->nstates, sizeof(*work));
    int top = 0;
    if (!work)
        abort();
    c->reach[d->initial_state] = true;
    work[top++] = d->initial_state;
    while (top > 0) {
        int s = work[--top];
        for (int e = 0; e < d->nevents; e++) {
            int n = step(d, s, e);
            if (n >= 0 && !c->reach[n]) {
                c->reach[n] = true;
                work[top++] = n;
            }
        }
    }
    free(work);
}

/* Backward fixpoint; tables are small, so a plain iteration is enough. */
static void compute_finishes(struct check *c)
{
    const struct fsm_def *d = c->def;
    for (int s = 0; s < d->nstates; s++)
        c->finishes[s] = d->state_final[s];
    for (bool changed = true; changed;) {
        changed = false;
        for (int s = 0; s < d->nstates; s++) {
            for (int e = 0; e < d->nevents && !c->finishes[s]; e++) {
                int n = step(d, s, e);
                if (n >= 0 && c->finishes[n])
                    c->finishes[s] = changed = true;
            }
        }
    }
}

/* A row is live if the engine would take it in some reachable state. */
static void compute_row_live(struct check *c)
{
    const struct fsm_def *d = c->def;
    for (int s = 0; s < d->nstates; s++) {
        if (!c->reach[s] || d->state_final[s])
            continue;
        for (int e = 0; e < d->nevents; e++) {
            const struct fsm_row *r = fsm_def_lookup(d, s, e);
            if (r)
                c->row_live[r - d->rows] = true;
        }
    }
}

/* ---- the checks, in report order ----------------------------------------- */

static void check_states(struct check *c)
{
    const struct fsm_def *d = c->def;
    bool any_final = false;
    for (int s = 0; s < d->nstates; s++)
        any_final |= d->state_final[s];
    if (!any_final)
        report(c, FSM_P_NO_FINAL, decl_line(c->text, "FSM_MACHINE", d->name), -1, -1, -1,
               "no final state (declare at least one with FSM_FINAL)");

    for (int s = 0; s < d->nstates; s++)
        if (!c->reach[s])
            report(c, FSM_P_UNREACHABLE, state_line(c, s), s, -1, -1,
                   "state %s is unreachable from the initial state %s", d->state_names[s],
                   d->state_names[d->initial_state]);
    if (any_final)
        for (int s = 0; s < d->nstates; s++)
            if (!c->finishes[s])
                report(c, FSM_P_NO_PATH_TO_FINAL, state_line(c, s), s, -1, -1,
                       "state %s has no path to a final state", d->state_names[s]);

    const int evs[2] = { d->fail_event, d->cancel_event };
    const enum fsm_problem_kind kinds[2] = { FSM_P_UNHANDLED_FAIL, FSM_P_UNHANDLED_CANCEL };
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < d->nstates; s++)
            if (!d->state_final[s] && !fsm_def_lookup(d, s, evs[k]))
                report(c, kinds[k], state_line(c, s), s, evs[k], -1,
                       "state %s does not handle %s (no row, IGNORE or FSM_ANY)",
                       d->state_names[s], d->event_names[evs[k]]);
}

static void check_rows(struct check *c)
{
    const struct fsm_def *d = c->def;
    for (int i = 0; i < d->nrows; i++) {
        const struct fsm_row *r = &d->rows[i];
        if (c->row_live[i])
            continue;
        if (r->state < 0) {
            bool applies = false;
            for (int s = 0; s < d->nstates; s++)
                applies |= !d->state_final[s] && d->cells[s * d->nevents + r->event] == 0;
            report(c, FSM_P_DEAD_ROW, r->line, -1, r->event, i, "dead row ANY %s: %s",
                   d->event_names[r->event],
                   applies ? "it applies only to unreachable states"
                           : "every non-final state has its own row for this event");
        } else if (!c->reach[r->state]) {
            report(c, FSM_P_DEAD_ROW, r->line, r->state, r->event, i,
                   "dead row %s %s: state %s is unreachable", d->state_names[r->state],
                   d->event_names[r->event], d->state_names[r->state]);
        }
        /* Rows out of a reachable final state are reported as final-has-rows. */
    }

    for (int i = 0; i < d->nrows; i++) {
        const struct fsm_row *r = &d->rows[i];
        if (r->kind != FSM_CELL_ROW)
            continue;
        bool first = true, live = false;
        for (int j = 0; j < d->nrows; j++) {
            const struct fsm_row *o = &d->rows[j];
            if (o->kind != FSM_CELL_ROW || strcmp(o->action_name, r->action_name) != 0)
                continue;
            if (j < i)
                first = false;
            live |= c->row_live[j];
        }
        if (first && !live)
            report(c, FSM_P_UNUSED_ACTION, r->line, r->state, r->event, i,
                   "action %s appears only in dead rows", r->action_name);
    }

    for (int i = 0; i < d->nrows; i++) {
        const struct fsm_row *r = &d->rows[i];
        if (r->state >= 0 && d->state_final[r->state])
            report(c, FSM_P_FINAL_HAS_ROWS, r->line, r->state, r->event, i,
                   "final state %s has a row for %s (final states take no events)",
                   d->state_names[r->state], d->event_names[r->event]);
    }
}

static void check_events(struct check *c)
{
    const struct fsm_def *d = c->def;
    for (int e = 0; e < d->nevents; e++) {
        bool used = false;
        for (int i = 0; i < d->nrows && !used; i++)
            used = d->rows[i].event == e;
        if (!used)
            report(c, FSM_P_UNUSED_EVENT, event_line(c, e), -1, e, -1,
                   "event %s is declared but used by no row", d->event_names[e]);
    }
    for (int i = 0; i < d->nrows; i++) {
        const struct fsm_row *r = &d->rows[i];
        if (r->state < 0 && r->event != d->fail_event && r->event != d->cancel_event)
            report(c, FSM_P_ANY_NOT_FAIL, r->line, -1, r->event, i,
                   "FSM_ANY for %s: only FAIL and CANCEL may use FSM_ANY",
                   d->event_names[r->event]);
    }
    for (int i = 0; i < d->nrows; i++) {
        const struct fsm_row *r = &d->rows[i];
        if (r->kind == FSM_CELL_IGNORE && (!r->reason || !r->reason[0]))
            report(c, FSM_P_IGNORE_NO_REASON, r->line, r->state, r->event, i,
                   "IGNORE %s %s has no reason", d->state_names[r->state],
                   d->event_names[r->event]);
    }
}

/* FSM_UNREACHABLE marks: each names an explicit row of this table, once,
 * with the reason no run can take it. */
static void check_marks(struct check *c)
{
    const struct fsm_def *d = c->def;
    for (int i = 0; i < d->nunreachable; i++) {
        const struct fsm_unreachable *u = &d->unreachable[i];
        const char *st = d->state_names[u->state], *ev = d->event_names[u->event];
        if (!d->cells[u->state * d->nevents + u->event])
            report(c, FSM_P_MARK_NO_ROW, u->line, u->state, u->event, -1,
                   "FSM_UNREACHABLE(%s, %s) marks no row: the table has no explicit row "
                   "for that pair", st, ev);
        if (!u->reason || !u->reason[0])
            report(c, FSM_P_MARK_NO_REASON, u->line, u->state, u->event, -1,
                   "FSM_UNREACHABLE(%s, %s) gives no reason", st, ev);
        for (int j = 0; j < i; j++)
            if (d->unreachable[j].state == u->state && d->unreachable[j].event == u->event)
                report(c, FSM_P_MARK_TWICE, u->line, u->state, u->event, -1,
                       "FSM_UNREACHABLE(%s, %s) is marked twice", st, ev);
    }
}

int fsm_check(const struct fsm_def *def, const char *src_dir, fsm_problem_fn *cb, void *data)
{
    struct check c = { .def = def, .cb = cb, .data = data };
    c.reach = calloc((size_t)def->nstates, sizeof(bool));
    c.finishes = calloc((size_t)def->nstates, sizeof(bool));
    c.row_live = calloc((size_t)def->nrows + 1, sizeof(bool));
    if (!c.reach || !c.finishes || !c.row_live) {
        fprintf(stderr, "fsm_check: out of memory\n");
        abort();
    }
    c.text = read_def_source(src_dir, def->file);

    if (def->nstates > 0) {
        compute_reach(&c);
        compute_finishes(&c);
        compute_row_live(&c);
    }
    check_states(&c);
    check_rows(&c);
    check_events(&c);
    check_marks(&c);

    free(c.text);
    free(c.reach);
    free(c.finishes);
    free(c.row_live);
    return c.count;
}
