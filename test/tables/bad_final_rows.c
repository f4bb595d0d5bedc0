/* test/tables/bad_final_rows.c - table of the checker case bad_final_rows.def (not registered). */
#define FSM_PREFIX   BAD_FINAL_ROWS
#define FSM_DEF_FILE "test/tables/bad_final_rows.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_FINAL_ROWS
#define FSM_DEF_FILE "test/tables/bad_final_rows.def"
#include "fsm/gen_table.h"
