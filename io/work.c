/* io/work.c - blocking calls on the threadpool, completions as events. */
#include "io/work.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io/exec.h"
#include "io/sched_uv.h"

struct io_work {
    uv_work_t req;
    struct fsm *m;
    int ev;
    io_work_fn *fn;
    void *arg;
    const char *what;
    int cancel_fd;
    int rc;
    bool orphaned;     /* the machine went final: complete its undo, post nothing */
    struct ls_errbuf err;
};

static struct io_sched *io_sched_of(const struct fsm *m)
{
    return (struct io_sched *)((char *)m->sched - offsetof(struct io_sched, sched));
}

uv_loop_t *io_loop_of(struct fsm *m) { return io_sched_of(m)->loop; }

const struct io_exec_ops *io_exec_of(const struct fsm *m) { return io_sched_of(m)->exec; }

static void work_run(uv_work_t *req)
{
    struct io_work *w = req->data;
    ls_err_clear(&w->err);
    w->rc = w->fn(w->arg, w->cancel_fd, &w->err);
    if (w->rc < 0 && w->err.rc == 0)
        ls_err(&w->err, w->rc, "%s failed", w->what);
}

static void work_free(struct io_work *w)
{
    close(w->cancel_fd);
    free(w);
}

static void work_after(uv_work_t *req, int status)
{
    struct io_work *w = req->data;
    struct fsm *m = w->m;
    if (w->orphaned) {
        fsm_undo_complete(m);
        work_free(w);
        return;
    }
    fsm_undo_forget(m, w);
    if (status == UV_ECANCELED && w->rc == 0)
        w->rc = ls_err(&w->err, -ECANCELED, "%s cancelled", w->what);
    io_work_deliver(m, w->ev, w->rc, &w->err, w->arg);
    work_free(w);
}

void io_work_deliver(struct fsm *m, int ev, int rc, const struct ls_errbuf *err, void *arg)
{
    if (rc < 0) {
        /* A teardown step failing after the first error (a resume, a
         * destroy) leaves something behind: the user must hear of it too. */
        if (m->err.rc && rc != -ECANCELED)
            ls_err_append(&m->err, "; then %s", err->msg);
        fsm_fail_from(m, err);
        fsm_post(m, m->def->fail_event, rc, NULL);
    } else {
        fsm_post(m, ev == IO_WORK_EV_FROM_FN ? rc : ev, 0, arg);
    }
}

/* The machine is final while the work runs: ask fn to stop, wait for it. */
static int work_undo(struct fsm *m, void *obj)
{
    struct io_work *w = obj;
    w->orphaned = true;
    uint64_t one = 1;
    if (write(w->cancel_fd, &one, sizeof(one)) < 0) {
        /* eventfd writes only fail on overflow: it is signalled already. */
    }
    return FSM_UNDO_PENDING;
}

void io_work_abandon(struct fsm *m)
{
    const struct io_exec_ops *x = io_exec_of(m);
    if (x) {
        x->work_abandon(m);
        return;
    }
    for (unsigned i = m->nundo; i-- > 0;)
        if (m->undo[i].fn == work_undo)
            fsm_undo_now(m, m->undo[i].obj);
}

void io_work_interrupt(struct fsm *m)
{
    const struct io_exec_ops *x = io_exec_of(m);
    if (x) {
        x->work_interrupt(m);
        return;
    }
    uint64_t one = 1;
    for (unsigned i = 0; i < m->nundo; i++)
        if (m->undo[i].fn == work_undo &&
            write(((struct io_work *)m->undo[i].obj)->cancel_fd, &one, sizeof(one)) < 0) {
            /* eventfd writes only fail on overflow: it is signalled already. */
        }
}

int io_work_start(struct fsm *m, int ev, io_work_fn *fn, void *arg, const char *what)
{
    const struct io_exec_ops *x = io_exec_of(m);
    if (x)
        return x->work_start(m, ev, fn, arg, what);
    struct io_work *w = calloc(1, sizeof(*w));
    if (!w)
        return fsm_fail(m, -ENOMEM, "%s: out of memory starting %s", m->name, what);
    w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->cancel_fd < 0) {
        int rc = -errno;
        free(w);
        return fsm_fail(m, rc, "%s: eventfd for %s: %s", m->name, what, uv_strerror(rc));
    }
    w->m = m;
    w->ev = ev;
    w->fn = fn;
    w->arg = arg;
    w->what = what;
    w->req.data = w;
    int rc = fsm_defer(m, work_undo, w, what);
    if (rc < 0) {
        /* work_undo ran: nothing queued yet, so just free. */
        work_free(w);
        return rc;
    }
    rc = uv_queue_work(io_loop_of(m), &w->req, work_run, work_after);
    if (rc < 0) {
        fsm_undo_forget(m, w);
        work_free(w);
        return fsm_fail(m, rc, "%s: cannot queue %s: %s", m->name, what, uv_strerror(rc));
    }
    return 0;
}
