/* fsm/def_end.h - closes every states/<role>.def. NO INCLUDE GUARD. */
#undef FSM_MACHINE
#undef FSM_STATE
#undef FSM_FINAL
#undef FSM_EVENT
#undef FSM_ROW
#undef FSM_IGNORE
#undef FSM_ANY
#undef FSM_UNREACHABLE
#undef FSM_NOFAIL
