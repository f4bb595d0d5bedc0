/* lockstep/tables.h - the state-machine tables, for diagrams and fault suites.
 *
 * Every protocol role of lockstep is a table of (state, event) -> action,
 * next state, written in states/<machine>.def. These calls describe the
 * tables linked into the library, as `fsm-dot --json` prints them, so a
 * fault-injection suite outside the project can enumerate rows and paths
 * (then drive them with FSM_FAULT / FSM_STOP in a build with the hooks; see
 * README.md, "Fault injection").
 *
 * Everything is named by strings (machine, state, event and action names as
 * the .def file spells them), never by the engine's numbers, which change
 * when a table does. The descriptions are immutable and live as long as the
 * process; nothing is to be freed except ls_tables_json's string.
 *
 * ABI: fields are never removed or reordered while the SONAME stays; more
 * information comes through new functions (or a new SONAME).
 */
#ifndef LOCKSTEP_TABLES_H
#define LOCKSTEP_TABLES_H

#include <stdbool.h>
#include <stddef.h>

#include "lockstep/errbuf.h"
#include "lockstep/version.h"

LS_BEGIN_DECLS

enum ls_row_kind {
    LS_ROW_NORMAL = 0,   /* FSM_ROW: in `state` on `event`, run `action`, enter `next` */
    LS_ROW_IGNORE = 1,   /* FSM_IGNORE: `event` in `state` is traced and changes nothing */
    LS_ROW_ANY = 2,      /* FSM_ANY: `event` in every non-final state without a row or
                            IGNORE of its own for it (state is NULL) */
};

struct ls_table_state {
    const char *name;
    const char *doc;
    bool final;          /* entering it ends the machine (cleanup, then done) */
};

struct ls_table_event {
    const char *name;
    const char *doc;
};

struct ls_table_row {
    enum ls_row_kind kind;
    const char *state;   /* NULL for LS_ROW_ANY */
    const char *event;
    const char *action;  /* the action's function name; NULL for LS_ROW_IGNORE.
                            "fsm_nop" only changes state (a fault there is skipped) */
    const char *next;    /* LS_ROW_IGNORE: the state itself */
    const char *reason;  /* LS_ROW_IGNORE: why the event is ignored; else NULL */
    int line;            /* line of the row in the machine's file */
    bool nofail;         /* the action never fails (fsm_nop, or FSM_NOFAIL in the .def):
                            an injected fault there runs it and changes nothing */
    const char *unreachable;  /* FSM_UNREACHABLE: why no run can take this row; else NULL */
};

struct ls_table {
    const char *name;    /* e.g. "save"; the .def file's base name */
    const char *doc;
    const char *file;    /* e.g. "states/save.def", relative to the source tree */
    const char *initial; /* the state a machine starts in */
    size_t nstates, nevents, nrows;
    const struct ls_table_state *states;   /* in .def order */
    const struct ls_table_event *events;   /* in .def order */
    const struct ls_table_row *rows;       /* in .def order (ANY and IGNORE rows included) */
};

/* All machines, sorted by name; *count gets their number. Never fails
 * except for memory on the first call (then NULL and *count 0). Thread-safe. */
LS_API const struct ls_table *ls_tables(size_t *count);

/* The machine of this name, or NULL. */
LS_API const struct ls_table *ls_table_find(const char *name);

/* The tables as one JSON document (malloc'd, NUL-terminated; free() it),
 * exactly what `fsm-dot --json [MACHINE]` prints: machine NULL for every
 * machine, else that one. NULL on error: -ENOENT for an unknown machine (the
 * reason lists the known ones), -ENOMEM. Format:
 *   {"format": 1, "machines": [{"name", "doc", "file", "initial",
 *     "states": [{"name", "doc", "final"}], "events": [{"name", "doc"}],
 *     "rows": [{"kind": "row"|"ignore"|"any", "state" (null for any), "event",
 *               "action" (null for ignore), "next", "reason" (ignore only),
 *               "file", "line", "nofail", "unreachable" (the reason, or null),
 *               "applies_to" (any only: the states it covers)}]}]}
 */
LS_API char *ls_tables_json(const char *machine, struct ls_errbuf *err);

LS_END_DECLS

#endif
