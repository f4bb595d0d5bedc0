/* cli/run.c - one operation on a loop of its own (see run.h). */
#include "run.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void print_progress(struct cli_run *r, bool final)
{
    if (r->status_line) {
        r->status_line(r, final);
        return;
    }
    struct ls_precopy_progress p;
    uint64_t done, total;
    ls_op_precopy(r->op, &p);
    ls_op_progress(r->op, &done, &total);
    double secs = (double)(now_ns() - r->start_ns) / 1e9;
    double mib = (double)done / (1 << 20), rate = secs > 0 ? mib / secs : 0;
    if (r->live && p.final_round)
        fprintf(stderr, "\r%s: final round (guest suspended), %8.1f MiB sent, %7.1f MiB/s   ",
                r->verb, mib, rate);
    else if (r->live)
        fprintf(stderr, "\r%s: round %u, %" PRIu64 " pages sent, %ld dirty, %.0f pages/s   ",
                r->verb, p.round, p.pages_sent, p.dirty_pages, p.pages_per_s);
    else if (total)
        fprintf(stderr, "\r%s: %8.1f / %.1f MiB (%3.0f%%) %8.1f MiB/s", r->verb, mib,
                (double)total / (1 << 20), 100.0 * (double)done / (double)total, rate);
    else
        fprintf(stderr, "\r%s: %8.1f MiB %8.1f MiB/s", r->verb, mib, rate);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

static void json_progress(struct cli_run *r)
{
    if (r->live)
        jl_round(r->json, r->verb, r->op, &r->rounds);
    jl_progress(r->json, r->verb, r->op, (double)(now_ns() - r->start_ns) / 1e9, r->live);
}

static void progress_cb(uv_timer_t *t)
{
    struct cli_run *r = t->data;
    if (r->json)
        json_progress(r);
    else
        print_progress(r, false);
}

/* --json: the rounds are looked at after every loop iteration, so each gets
 * its event (a round's precopy_policy answer is a wakeup of its own). */
static void rounds_cb(uv_check_t *c)
{
    struct cli_run *r = c->data;
    jl_round(r->json, r->verb, r->op, &r->rounds);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    struct cli_run *r = s->data;
    /* The first signal tears down through the tables; a second one means the
     * user will not wait for that, so die of the signal as if unhandled. */
    if (r->interrupted++) {
        fprintf(stderr, "\nlockstep %s: interrupted again (%s), exiting without cleanup\n",
                r->verb, strsignal(signum));
        signal(signum, SIG_DFL);
        raise(signum);
        _exit(128 + signum);
    }
    fprintf(stderr, "\nlockstep %s: interrupted (%s), stopping cleanly (again to force)\n",
            r->verb, strsignal(signum));
    if (r->op && !r->done)
        ls_op_cancel(r->op);
}

void cli_run_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct cli_run *r = data;
    r->done = true;
    r->rc = rc;
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", msg ? msg : "");
    if (r->json)
        json_progress(r);
    if (r->show_progress) {
        uv_timer_stop(&r->progress);
        if (rc == 0 || r->live)
            print_progress(r, true);
        else
            fputc('\n', stderr);
    }
    uv_close((uv_handle_t *)&r->progress, NULL);
    uv_close((uv_handle_t *)&r->rounds_check, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
}

int cli_run_open(struct cli_run *r, const char *verb, enum ls_backend_kind kind)
{
    memset(r, 0, sizeof(*r));
    r->verb = verb;
    uv_loop_init(&r->loop);
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = ls_ctx_new(&r->ctx, &r->loop, kind, &err);
    if (rc < 0) {
        fprintf(stderr, "lockstep %s: %s\n", verb, err.msg);
        uv_loop_close(&r->loop);
    }
    return rc;
}

int cli_run_wait(struct cli_run *r)
{
    r->start_ns = now_ns();
    r->show_progress = !r->json && isatty(STDERR_FILENO);
    uv_timer_init(&r->loop, &r->progress);
    r->progress.data = r;
    if (r->show_progress || r->json)
        uv_timer_start(&r->progress, progress_cb, 200, r->json ? 500 : 200);
    uv_check_init(&r->loop, &r->rounds_check);
    r->rounds_check.data = r;
    if (r->json && r->live)
        uv_check_start(&r->rounds_check, rounds_cb);
    if (r->json) {
        struct jl j;
        jl_open(&j, r->json, "start", r->verb);
        if (strcmp(r->verb, "save") == 0 || r->live)
            jl_u64(&j, "domid", ls_op_domid(r->op));
        jl_close(&j);
    }
    uv_signal_init(&r->loop, &r->sigint);
    uv_signal_init(&r->loop, &r->sigterm);
    r->sigint.data = r->sigterm.data = r;
    uv_signal_start(&r->sigint, signal_cb, SIGINT);
    uv_signal_start(&r->sigterm, signal_cb, SIGTERM);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return r->rc;
}

void cli_run_close(struct cli_run *r)
{
    if (r->op)
        ls_op_free(r->op);
    if (r->ctx)
        ls_ctx_free(r->ctx);
    uv_run(&r->loop, UV_RUN_DEFAULT);   /* finish handle closes */
    if (uv_loop_close(&r->loop) != 0)
        fprintf(stderr, "lockstep %s: internal error: handles left open on the loop\n", r->verb);
}
