/* test/tables/bad_unused_event.c - table of the checker case bad_unused_event.def (not registered). */
#define FSM_PREFIX   BAD_UNUSED_EVENT
#define FSM_DEF_FILE "test/tables/bad_unused_event.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_UNUSED_EVENT
#define FSM_DEF_FILE "test/tables/bad_unused_event.def"
#include "fsm/gen_table.h"
