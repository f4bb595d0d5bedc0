/* fsm/gen_common.h - token pasting shared by the .def expanders. */
#ifndef LOCKSTEP_FSM_GEN_COMMON_H
#define LOCKSTEP_FSM_GEN_COMMON_H
#define FSM__CAT2(a, b) a##b
#define FSM_CAT(a, b) FSM__CAT2(a, b)
#define FSM__CAT3(a, b, c) a##b##c
#define FSM_CAT3(a, b, c) FSM__CAT3(a, b, c)
/* FSM_IS_NOP(action): 1 if the token is fsm_nop, else 0, at expansion time
 * (a probe: only fsm_nop pastes into a macro that adds an argument). */
#define FSM__PROBE_fsm_nop ~, 1
#define FSM__SECOND_(a, b, ...) b
#define FSM__SECOND(...) FSM__SECOND_(__VA_ARGS__)
#define FSM_IS_NOP(a) FSM__SECOND(FSM_CAT(FSM__PROBE_, a), 0, ~)
#endif
