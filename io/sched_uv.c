/* io/sched_uv.c - the libuv scheduler for fsm machines. */
#include "io/sched_uv.h"

#include <stdlib.h>

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
    io_sched_close_then(s, NULL, NULL);
}

struct close_then {
    void (*done)(void *);
    void *arg;
};

static void idle_closed(uv_handle_t *h)
{
    struct close_then *c = h->data;
    if (!c)
        return;
    c->done(c->arg);
    free(c);
}

void io_sched_close_then(struct io_sched *s, void (*done)(void *), void *arg)
{
    s->closing = true;
    uv_idle_stop(&s->idle);
    struct close_then *c = done ? malloc(sizeof(*c)) : NULL;
    if (c)
        *c = (struct close_then){ done, arg };
    s->idle.data = c;
    uv_close((uv_handle_t *)&s->idle, c ? idle_closed : NULL);
}
