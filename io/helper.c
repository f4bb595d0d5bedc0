/* io/helper.c - memory-task thread with callbacks marshalled to the loop. */
#include "io/helper.h"
#include "io/exec.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void *helper_main(void *p)
{
    struct io_helper *h = p;
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = h->fn(h, h->arg, &err);
    if (rc < 0 && err.rc == 0)
        ls_err(&err, rc, "memory task failed: %s", strerror(-rc));
    pthread_mutex_lock(&h->lock);
    h->rc = rc;
    h->err = err;
    h->finished = true;
    pthread_mutex_unlock(&h->lock);
    uv_async_send(&h->async);
    return NULL;
}

/* On the loop: forward a callback the thread is waiting on, or report the end. */
static void helper_async_cb(uv_async_t *a)
{
    struct io_helper *h = a->data;
    pthread_mutex_lock(&h->lock);
    bool post_call = h->call_pending && !h->call_posted && !h->cancelled;
    struct fsm *target = h->call_target;
    int ev = h->call_ev;
    void *arg = h->call_arg;
    if (post_call)
        h->call_posted = true;
    bool finished = h->finished && !h->finished_posted;
    pthread_mutex_unlock(&h->lock);

    if (post_call)
        fsm_post(target, ev, 0, arg);
    if (finished) {
        pthread_join(h->thread, NULL);
        h->joined = true;
        h->finished_posted = true;
        if (h->owner)
            fsm_post(h->owner, h->finished_ev, h->rc, h);
    }
}

int io_helper_start(struct io_helper *h, uv_loop_t *loop, struct fsm *owner, int finished_ev,
                    io_helper_fn *fn, void *arg)
{
    memset(h, 0, sizeof(*h));
    if ((h->exec = io_exec_of(owner)) != NULL)
        return h->exec->helper_start(h, owner, finished_ev, fn, arg);
    h->owner = owner;
    h->finished_ev = finished_ev;
    h->fn = fn;
    h->arg = arg;
    h->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->cancel_fd < 0)
        return -errno;
    int rc = uv_async_init(loop, &h->async, helper_async_cb);
    if (rc < 0) {
        close(h->cancel_fd);
        return rc;
    }
    h->async.data = h;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    rc = -pthread_create(&h->thread, NULL, helper_main, h);
    if (rc < 0) {
        /* Nothing runs: the caller's undo (io_helper_release) still closes. */
        h->finished = h->finished_posted = h->joined = true;
        h->rc = rc;
        return rc;
    }
    h->started = true;
    return 0;
}

int io_helper_call(struct io_helper *h, struct fsm *target, int ev, void *arg, int cancel_value)
{
    if (h->exec)
        return h->exec->helper_call(h, target, ev, arg, cancel_value);
    pthread_mutex_lock(&h->lock);
    if (h->cancelled) {
        pthread_mutex_unlock(&h->lock);
        return cancel_value;
    }
    h->call_target = target;
    h->call_ev = ev;
    h->call_arg = arg;
    h->call_cancel_value = cancel_value;
    h->call_pending = true;
    h->call_posted = false;
    h->call_answered = false;
    pthread_mutex_unlock(&h->lock);
    uv_async_send(&h->async);

    pthread_mutex_lock(&h->lock);
    while (!h->call_answered)
        pthread_cond_wait(&h->cond, &h->lock);
    int reply = h->call_reply;
    h->call_pending = false;
    pthread_mutex_unlock(&h->lock);
    return reply;
}

void io_helper_reply(struct io_helper *h, int value)
{
    if (h->exec) {
        h->exec->helper_reply(h, value);
        return;
    }
    pthread_mutex_lock(&h->lock);
    if (h->call_pending && !h->call_answered) {
        h->call_reply = value;
        h->call_answered = true;
        pthread_cond_signal(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
}

void io_helper_cancel(struct io_helper *h)
{
    if (h->exec) {
        h->exec->helper_cancel(h);
        return;
    }
    if (!h->started)
        return;
    pthread_mutex_lock(&h->lock);
    if (!h->cancelled) {
        h->cancelled = true;
        uint64_t one = 1;
        if (write(h->cancel_fd, &one, sizeof(one)) < 0) {
            /* only fails when already signalled */
        }
        if (h->call_pending && !h->call_answered) {
            h->call_reply = h->call_cancel_value;
            h->call_answered = true;
            pthread_cond_signal(&h->cond);
        }
    }
    pthread_mutex_unlock(&h->lock);
}

static void helper_closed(uv_handle_t *handle)
{
    struct io_helper *h = handle->data;
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    close(h->cancel_fd);
    h->cancel_fd = -1;
    fsm_undo_complete(h->release_m);
}

int io_helper_release(struct fsm *m, void *helper)
{
    struct io_helper *h = helper;
    if (h->exec)
        return h->exec->helper_release(m, h);
    io_helper_cancel(h);
    if (h->started && !h->joined) {
        /* The thread comes back promptly once cancelled; joining here keeps
         * the rule that a machine is never done while its thread runs. */
        pthread_join(h->thread, NULL);
        h->joined = true;
    }
    h->owner = NULL;   /* a finish racing this release posts nothing */
    h->release_m = m;
    uv_close((uv_handle_t *)&h->async, helper_closed);
    return FSM_UNDO_PENDING;
}
