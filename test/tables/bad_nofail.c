/* test/tables/bad_nofail.c - table of the checker case bad_nofail.def (not registered). */
#define FSM_PREFIX   BAD_NOFAIL
#define FSM_DEF_FILE "test/tables/bad_nofail.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_NOFAIL
#define FSM_DEF_FILE "test/tables/bad_nofail.def"
#include "fsm/gen_table.h"
