/* test/tables/bad_nopath.c - table of the checker case bad_nopath.def (not registered). */
#define FSM_PREFIX   BAD_NOPATH
#define FSM_DEF_FILE "test/tables/bad_nopath.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_NOPATH
#define FSM_DEF_FILE "test/tables/bad_nopath.def"
#include "fsm/gen_table.h"
