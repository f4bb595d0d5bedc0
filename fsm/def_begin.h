/* fsm/def_begin.h - opened by every states/<role>.def. NO INCLUDE GUARD.
 *
 * A .def file is a list of X-macro entries; each includer (fsm/gen_enums.h,
 * fsm/gen_table.h) defines only the macros it needs, and every macro it leaves
 * undefined gets the empty default below. fsm/def_end.h undefines them all,
 * so a .def can be included any number of times in one translation unit.
 *
 * Entries, in this order in a file:
 *   FSM_MACHINE(name, "doc")        the machine; name = the file's base name
 *   FSM_STATE(NAME, "doc")          a state; the first one is the initial state
 *   FSM_FINAL(NAME, "doc")          a final state (done is called after it)
 *   FSM_EVENT(NAME, "doc")          an event; every machine has FAIL and CANCEL
 *   FSM_ROW(STATE, EVENT, action, NEXT)   run action; on 0 enter NEXT
 *   FSM_IGNORE(STATE, EVENT, "why")       traced, stays; needs a reason
 *   FSM_ANY(EVENT, action, NEXT)          for every non-final state without an
 *                                         explicit row (FAIL and CANCEL only)
 *   FSM_UNREACHABLE(STATE, EVENT, "why")  the row (STATE, EVENT) exists but no
 *                                         run can take it: the enumerator
 *                                         (test/states/) and the row-coverage
 *                                         check accept it untaken; the linter
 *                                         wants the row and a reason
 *   FSM_NOFAIL(action, "why")             the action never returns an error
 *                                         (answers a callback, cancels a
 *                                         join): injected faults skip it, as
 *                                         they skip fsm_nop
 * Rows are grouped by state, happy path first. A duplicate (STATE, EVENT) is a
 * compile error; an action with no prototype in a row fails to compile, and an
 * action defined but in no row is an unused-function error.
 */
#ifndef FSM_MACHINE
#define FSM_MACHINE(name, doc)
#endif
#ifndef FSM_STATE
#define FSM_STATE(name, doc)
#endif
#ifndef FSM_FINAL
#define FSM_FINAL(name, doc)
#endif
#ifndef FSM_EVENT
#define FSM_EVENT(name, doc)
#endif
#ifndef FSM_ROW
#define FSM_ROW(state, event, action, next)
#endif
#ifndef FSM_IGNORE
#define FSM_IGNORE(state, event, reason)
#endif
#ifndef FSM_ANY
#define FSM_ANY(event, action, next)
#endif
#ifndef FSM_NOFAIL
#define FSM_NOFAIL(action, reason)
#endif
#ifndef FSM_UNREACHABLE
#define FSM_UNREACHABLE(state, event, reason)
#endif
