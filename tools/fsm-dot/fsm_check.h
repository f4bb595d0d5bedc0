/* tools/fsm-dot/fsm_check.h - lint one machine's table.
 *
 * Used by `fsm-dot --check` and test/tables. The checks follow the engine's
 * lookup rules (fsm_def_lookup): explicit rows win, ANY rows apply to every
 * non-final state without an explicit row, IGNORE rows stay put.
 */
#ifndef LOCKSTEP_FSM_CHECK_H
#define LOCKSTEP_FSM_CHECK_H

#include <stddef.h>

#include "fsm/fsm.h"

enum fsm_problem_kind {
    FSM_P_NO_FINAL,          /* the machine declares no final state */
    FSM_P_UNREACHABLE,       /* state not reachable from the initial state */
    FSM_P_NO_PATH_TO_FINAL,  /* non-final state that can never finish */
    FSM_P_UNHANDLED_FAIL,    /* non-final state with no row (or IGNORE) for FAIL */
    FSM_P_UNHANDLED_CANCEL,  /* the same for CANCEL */
    FSM_P_DEAD_ROW,          /* row that can never be taken */
    FSM_P_UNUSED_ACTION,     /* action named only in dead rows */
    FSM_P_FINAL_HAS_ROWS,    /* explicit row out of a final state */
    FSM_P_UNUSED_EVENT,      /* event declared, used by no row */
    FSM_P_ANY_NOT_FAIL,      /* FSM_ANY for an event other than FAIL/CANCEL */
    FSM_P_IGNORE_NO_REASON,  /* FSM_IGNORE with an empty reason */
    FSM_P_MARK_NO_ROW,       /* FSM_UNREACHABLE naming no explicit row */
    FSM_P_MARK_NO_REASON,    /* FSM_UNREACHABLE with an empty reason */
    FSM_P_MARK_TWICE,        /* two FSM_UNREACHABLE marks for one row */
    FSM_P__COUNT
};

struct fsm_problem {
    enum fsm_problem_kind kind;
    const struct fsm_def *def;
    int line;                /* line in def->file; 0 if unknown */
    int state;               /* state concerned, or -1 */
    int event;               /* event concerned, or -1 */
    int row;                 /* index in def->rows, or -1 */
    const char *action;      /* action name for FSM_P_UNUSED_ACTION, else NULL */
    char msg[192];           /* English, without the file:line: machine: prefix */
};

typedef void fsm_problem_fn(const struct fsm_problem *p, void *data);

/* Run every check on def; call cb (may be NULL) once per problem, in a stable
 * order (by kind, then state/row). src_dir, when not NULL, is the repository
 * root: it is used to find the .def line declaring a state or event (def->file
 * is relative to it); without it, or if the file cannot be read, the line of
 * a row naming that state or event is used, else 0.
 * Returns the number of problems (0 = clean). Never fails. */
int fsm_check(const struct fsm_def *def, const char *src_dir, fsm_problem_fn *cb, void *data);

/* Short stable name of a kind, e.g. "unreachable" (for tests and logs). */
const char *fsm_problem_kind_name(enum fsm_problem_kind kind);

/* "file:line: machine: msg" into buf (truncated to size). */
void fsm_problem_format(const struct fsm_problem *p, char *buf, size_t size);

#endif
