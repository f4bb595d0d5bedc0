/* fsm/gen_common.h - token pasting shared by the .def expanders. */
#ifndef LOCKSTEP_FSM_GEN_COMMON_H
#define LOCKSTEP_FSM_GEN_COMMON_H
#define FSM__CAT2(a, b) a##b
#define FSM_CAT(a, b) FSM__CAT2(a, b)
#define FSM__CAT3(a, b, c) a##b##c
#define FSM_CAT3(a, b, c) FSM__CAT3(a, b, c)
#endif
