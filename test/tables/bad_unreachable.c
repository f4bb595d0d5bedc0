/* test/tables/bad_unreachable.c - table of the checker case bad_unreachable.def (not registered). */
#define FSM_PREFIX   BAD_UNREACHABLE
#define FSM_DEF_FILE "test/tables/bad_unreachable.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_UNREACHABLE
#define FSM_DEF_FILE "test/tables/bad_unreachable.def"
#include "fsm/gen_table.h"
