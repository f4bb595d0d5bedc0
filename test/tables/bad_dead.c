/* test/tables/bad_dead.c - table of the checker case bad_dead.def (not registered). */
#define FSM_PREFIX   BAD_DEAD
#define FSM_DEF_FILE "test/tables/bad_dead.def"
#include "fsm/gen_enums.h"
#define FSM_PREFIX   BAD_DEAD
#define FSM_DEF_FILE "test/tables/bad_dead.def"
#include "fsm/gen_table.h"

static int bad_dead_orphan_start(struct fsm *m, const struct fsm_ev *ev) { return 0; }
static int bad_dead_any_fail(struct fsm *m, const struct fsm_ev *ev) { return 0; }
