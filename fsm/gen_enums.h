/* fsm/gen_enums.h - expand a .def into its state and event enums. NO INCLUDE GUARD.
 *
 * In the role's header:
 *     #define FSM_PREFIX   SAVE
 *     #define FSM_DEF_FILE "states/save.def"
 *     #include "fsm/gen_enums.h"
 * gives SAVE_S_<STATE>, SAVE_S__COUNT, SAVE_E_<EVENT>, SAVE_E__COUNT and
 * `extern const struct fsm_def save_fsm_def`. Both macros are undefined after.
 */
#include "fsm/fsm.h"
#include "fsm/gen_common.h"

#define FSM_STATE(n, d) FSM_CAT3(FSM_PREFIX, _S_, n),
#define FSM_FINAL(n, d) FSM_CAT3(FSM_PREFIX, _S_, n),
enum {
#include FSM_DEF_FILE
    FSM_CAT(FSM_PREFIX, _S__COUNT)
};

#define FSM_EVENT(n, d) FSM_CAT3(FSM_PREFIX, _E_, n),
enum {
#include FSM_DEF_FILE
    FSM_CAT(FSM_PREFIX, _E__COUNT)
};

#define FSM_MACHINE(n, d) extern const struct fsm_def n##_fsm_def;
#include FSM_DEF_FILE

#undef FSM_PREFIX
#undef FSM_DEF_FILE
