/* test/fsm/pair.h - the join tests' parent machine. */
#ifndef LOCKSTEP_TEST_PAIR_H
#define LOCKSTEP_TEST_PAIR_H
#define FSM_PREFIX PAIR
#define FSM_DEF_FILE "test/fsm/pair.def"
#include "fsm/gen_enums.h"

struct pair_ctx {
    struct fsm_join join;
    struct fsm *children[2];
    int events;             /* join events the parent received */
    int last_event;
};
#endif
