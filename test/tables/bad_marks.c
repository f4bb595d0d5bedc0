/* test/tables/bad_marks.c - table of the checker case bad_marks.def (not registered). */
#define FSM_PREFIX   BAD_MARKS
#define FSM_DEF_FILE "test/tables/bad_marks.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_MARKS
#define FSM_DEF_FILE "test/tables/bad_marks.def"
#include "fsm/gen_table.h"
