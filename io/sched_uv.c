/* io/sched_uv.c - the libuv scheduler for fsm machines. */
#include "io/sched_uv.h"

static void sched_idle_cb(uv_idle_t *h)
{
    struct io_sched *s = h->data;
    fsm_sched_run(&s->sched);
    if (fsm_sched_idle(&s->sched))
        uv_idle_stop(&s->idle);
}

static void sched_kick(struct fsm_sched *fs)
{
    struct io_sched *s = fs->kick_data;
    if (!s->closing)
        uv_idle_start(&s->idle, sched_idle_cb);
}

int io_sched_init(struct io_sched *s, uv_loop_t *loop)
{
    fsm_sched_init(&s->sched);
    s->loop = loop;
    s->exec = NULL;
    s->closing = false;
    s->sched.kick = sched_kick;
    s->sched.kick_data = s;
    int rc = uv_idle_init(loop, &s->idle);
    if (rc < 0)
        return rc;
    s->idle.data = s;
    return 0;
}

void io_sched_close(struct io_sched *s)
{
    s->closing = true;
    uv_idle_stop(&s->idle);
    uv_close((uv_handle_t *)&s->idle, NULL);
}
