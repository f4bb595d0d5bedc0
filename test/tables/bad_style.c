/* test/tables/bad_style.c - table of the checker case bad_style.def (not registered). */
#define FSM_PREFIX   BAD_STYLE
#define FSM_DEF_FILE "test/tables/bad_style.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_STYLE
#define FSM_DEF_FILE "test/tables/bad_style.def"
#include "fsm/gen_table.h"
