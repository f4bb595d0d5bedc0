/* test/tables/bad_nofinal.c - table of the checker case bad_nofinal.def (not registered). */
#define FSM_PREFIX   BAD_NOFINAL
#define FSM_DEF_FILE "test/tables/bad_nofinal.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_NOFINAL
#define FSM_DEF_FILE "test/tables/bad_nofinal.def"
#include "fsm/gen_table.h"
