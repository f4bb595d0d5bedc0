/* test/fsm/pair.c - actions of the join tests' parent machine. */
#include <errno.h>

#include "test/fsm/pair.h"

#define FSM_PREFIX PAIR
#define FSM_DEF_FILE "test/fsm/pair.def"
#include "fsm/gen_table.h"

static int pair_start_children(struct fsm *m, const struct fsm_ev *ev)
{
    struct pair_ctx *c = m->owner;
    fsm_join_begin(&c->join, m, PAIR_E_CHILDREN_OK, PAIR_E_CHILDREN_FAILED);
    for (int i = 0; i < 2; i++)
        fsm_join_add(&c->join, c->children[i]);
    fsm_join_arm(&c->join);
    return 0;
}

static int pair_count_event(struct fsm *m, const struct fsm_ev *ev)
{
    struct pair_ctx *c = m->owner;
    c->events++;
    c->last_event = ev->id;
    return 0;
}

static int pair_cancel_children(struct fsm *m, const struct fsm_ev *ev)
{
    struct pair_ctx *c = m->owner;
    fsm_join_cancel(&c->join, -ECANCELED);
    return 0;
}
