/* fsm/gen_table.h - expand a .def into its table. NO INCLUDE GUARD.
 *
 * In the role's .c, after its header (which ran gen_enums.h) and BEFORE the
 * actions are defined:
 *     #define FSM_PREFIX   SAVE
 *     #define FSM_DEF_FILE "states/save.def"
 *     #include "fsm/gen_table.h"
 * emits `static fsm_action_fn <action>;` for every action named in a row, the
 * name/doc arrays, the rows, the (state, event) index, and
 * `const struct fsm_def <name>_fsm_def`. One table per translation unit.
 */
#include "fsm/fsm.h"
#include "fsm/gen_common.h"

#define FSM__S(n) FSM_CAT3(FSM_PREFIX, _S_, n)
#define FSM__E(n) FSM_CAT3(FSM_PREFIX, _E_, n)
#define FSM__NS   FSM_CAT(FSM_PREFIX, _S__COUNT)
#define FSM__NE   FSM_CAT(FSM_PREFIX, _E__COUNT)
#define FSM__ROWID FSM_CAT(fsm__row_at_line_, __LINE__)

/* Action prototypes: a row naming an action that is never defined fails to link. */
#define FSM_ROW(s, e, a, n) static fsm_action_fn a;
#define FSM_ANY(e, a, n) static fsm_action_fn a;
#include FSM_DEF_FILE

/* Row indices, named by their .def line. */
#define FSM_ROW(s, e, a, n) FSM__ROWID,
#define FSM_IGNORE(s, e, r) FSM__ROWID,
#define FSM_ANY(e, a, n) FSM__ROWID,
enum {
#include FSM_DEF_FILE
    fsm__row_count
};

/* A duplicate (state, event) row is a duplicate case label: a compile error. */
static inline void fsm__no_duplicate_rows(int k)
{
    switch (k) {
#define FSM_ROW(s, e, a, n) case FSM__S(s) * FSM__NE + FSM__E(e):
#define FSM_IGNORE(s, e, r) case FSM__S(s) * FSM__NE + FSM__E(e):
#define FSM_ANY(e, a, n) case -1 - FSM__E(e):
#include FSM_DEF_FILE
        break;
    default:
        break;
    }
}

#define FSM_STATE(n, d) #n,
#define FSM_FINAL(n, d) #n,
static const char *const fsm__state_names[] = {
#include FSM_DEF_FILE
};
#define FSM_STATE(n, d) d,
#define FSM_FINAL(n, d) d,
static const char *const fsm__state_docs[] = {
#include FSM_DEF_FILE
};
#define FSM_STATE(n, d) false,
#define FSM_FINAL(n, d) true,
static const bool fsm__state_final[] = {
#include FSM_DEF_FILE
};
#define FSM_EVENT(n, d) #n,
static const char *const fsm__event_names[] = {
#include FSM_DEF_FILE
};
#define FSM_EVENT(n, d) d,
static const char *const fsm__event_docs[] = {
#include FSM_DEF_FILE
};

#define FSM_ROW(s, e, a, n) \
    { FSM__S(s), FSM__E(e), FSM__S(n), FSM_CELL_ROW, a, #a, NULL, __LINE__, FSM_IS_NOP(a) },
#define FSM_IGNORE(s, e, r) \
    { FSM__S(s), FSM__E(e), FSM__S(s), FSM_CELL_IGNORE, NULL, "-", r, __LINE__, false },
#define FSM_ANY(e, a, n) \
    { -1, FSM__E(e), FSM__S(n), FSM_CELL_ROW, a, #a, NULL, __LINE__, FSM_IS_NOP(a) },
static const struct fsm_row fsm__rows[] = {
#include FSM_DEF_FILE
};

/* Row index + 1 per (state, event); 0 = no explicit row. */
#define FSM_ROW(s, e, a, n) [FSM__S(s) * FSM__NE + FSM__E(e)] = FSM__ROWID + 1,
#define FSM_IGNORE(s, e, r) [FSM__S(s) * FSM__NE + FSM__E(e)] = FSM__ROWID + 1,
static const uint16_t fsm__cells[FSM__NS * FSM__NE] = {
#include FSM_DEF_FILE
};
#define FSM_ANY(e, a, n) [FSM__E(e)] = FSM__ROWID + 1,
static const uint16_t fsm__any_rows[FSM__NE] = {
#include FSM_DEF_FILE
};

/* FSM_UNREACHABLE marks; a sentinel keeps the array non-empty. */
#define FSM_UNREACHABLE(s, e, r) { FSM__S(s), FSM__E(e), r, __LINE__ },
static const struct fsm_unreachable fsm__unreachable[] = {
#include FSM_DEF_FILE
    { -1, -1, NULL, 0 },
};

/* FSM_NOFAIL actions, NULL-terminated. */
#define FSM_NOFAIL(a, r) a,
static fsm_action_fn *const fsm__nofail[] = {
#include FSM_DEF_FILE
    NULL,
};
#define FSM_NOFAIL(a, r) #a,
static const char *const fsm__nofail_names[] = {
#include FSM_DEF_FILE
    NULL,
};

#define FSM_MACHINE(n, d)                                                   \
    const struct fsm_def n##_fsm_def = {                                    \
        .name = #n, .doc = d, .file = FSM_DEF_FILE,                         \
        .nstates = FSM__NS, .nevents = FSM__NE, .nrows = fsm__row_count,     \
        .state_names = fsm__state_names, .state_docs = fsm__state_docs,     \
        .state_final = fsm__state_final,                                    \
        .event_names = fsm__event_names, .event_docs = fsm__event_docs,     \
        .rows = fsm__rows, .cells = fsm__cells, .any_rows = fsm__any_rows,  \
        .fail_event = FSM__E(FAIL), .cancel_event = FSM__E(CANCEL),         \
        .initial_state = 0,                                                 \
        .unreachable = fsm__unreachable,                                    \
        .nunreachable = (int)(sizeof(fsm__unreachable) /                    \
                              sizeof(fsm__unreachable[0])) - 1,             \
        .nofail = fsm__nofail, .nofail_names = fsm__nofail_names,           \
    };
#include FSM_DEF_FILE

#undef FSM__S
#undef FSM__E
#undef FSM__NS
#undef FSM__NE
#undef FSM__ROWID
#undef FSM_PREFIX
#undef FSM_DEF_FILE
