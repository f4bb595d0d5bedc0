/* states/save.c - actions of the save role (save.def). */
#include "states/save.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/work.h"
#include "states/dm_standin.h"

#define FSM_PREFIX SAVE
#define FSM_DEF_FILE "states/save.def"
#include "fsm/gen_table.h"

/* Xen's default precopy policy (xc_sr_save.c): stop after 5 iterations or
 * when fewer than 50 pages are dirty. */
#define SAVE_PRECOPY_MAX_ITERATIONS 5
#define SAVE_PRECOPY_DIRTY_THRESHOLD 50
#define SAVE_SUSPEND_TIMEOUT_MS 60000   /* libxl's guest suspend timeout */

static struct ls_backend *be_of(struct save_role *r) { return r->op.ctx->be; }

/* ---- the memory task's thread and its callbacks ----------------------- */

static int cb_suspend(void *data)
{
    struct save_role *r = data;
    return io_helper_call(&r->mem.helper, &r->m, SAVE_E_CB_SUSPEND, NULL, 0);
}

static int cb_precopy_policy(struct ls_precopy_stats stats, void *data)
{
    struct save_role *r = data;
    r->precopy = stats;
    return io_helper_call(&r->mem.helper, &r->m, SAVE_E_CB_PRECOPY_POLICY, NULL,
                          LS_POLICY_ABORT);
}

static int cb_switch_logdirty(uint32_t domid, unsigned enable, void *data)
{
    struct save_role *r = data;
    return io_helper_call(&r->mem.helper, &r->m, SAVE_E_CB_SWITCH_LOGDIRTY,
                          (void *)(uintptr_t)enable, -1);
}

static void cb_progress(uint64_t done, uint64_t total, void *data)
{
    struct save_role *r = data;
    io_helper_progress(&r->mem.helper, done, total);
}

static int save_memory_thread(struct io_helper *h, void *arg, struct ls_errbuf *err)
{
    struct save_role *r = arg;
    struct ls_save_params p = {
        .domid = r->opts.domid, .io_fd = r->opts.fd, .recv_fd = -1,
        .flags = (r->opts.live ? LS_SAVE_LIVE : 0) |
                 (r->opts.keep_domain && !r->opts.leave_suspended ? LS_SAVE_RESUMES : 0),
        .stream_type = LS_STREAM_PLAIN, .cancel_fd = h->cancel_fd,
    };
    struct ls_save_callbacks cb = {
        .suspend = cb_suspend, .precopy_policy = cb_precopy_policy,
        .switch_qemu_logdirty = cb_switch_logdirty, .progress = cb_progress, .data = r,
    };
    return be_of(r)->ops->save_memory(be_of(r), &p, &cb, err);
}

/* ---- backend calls on the threadpool ---------------------------------- */

int save_probe_dm(struct ls_backend *be, struct save_role *r, struct ls_errbuf *err)
{
    if (r->info.type != LS_GUEST_HVM || !be->ops->dm_info)
        return 0;
    int rc = be->ops->dm_info(be, r->opts.domid, &r->dm, err);
    if (rc < 0)
        return rc;
    if (r->dm.present && !r->dm.alive) {
        char why[64];
        return ls_err(err, -ECHILD, "device model of domain %u died: its QEMU (pid %d) %s; "
                      "see %s", r->opts.domid, r->dm.pid,
                      backend_dm_status_text(&r->dm, why, sizeof(why)), r->dm.log_path);
    }
    r->dm_qemu = r->dm.present;
    return 0;
}

static int query_domain(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct save_role *r = arg;
    struct ls_backend *be = be_of(r);
    int rc = be->ops->domain_info(be, r->opts.domid, &r->info, err);
    if (rc < 0)
        return rc;
    if (r->info.state != LS_RUN_RUNNING && r->info.state != LS_RUN_PAUSED)
        return ls_err(err, -EBUSY, "domain %u cannot be saved: it is %s", r->opts.domid,
                      r->info.state == LS_RUN_SUSPENDED ? "already suspended" : "shut down");
    if ((rc = save_probe_dm(be, r, err)) < 0)
        return rc;
    if (r->opts.format == LS_FORMAT_XL)
        return be->ops->get_config_json(be, r->opts.domid, &r->config_json, err);
    return 0;
}

static int suspend_guest(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct save_role *r = arg;
    struct ls_backend *be = be_of(r);
    int rc = be->ops->suspend(be, r->opts.domid, SAVE_SUSPEND_TIMEOUT_MS, err);
    if (rc < 0)
        return rc;
    r->op.suspended_ns = io_monotonic_ns();
    /* The state the stream will carry is fixed from here on. */
    if (be->ops->digest && !r->opts.no_digest &&
        (rc = be->ops->digest(be, r->opts.domid, r->op.digest, err)) < 0)
        return rc;
    if (r->info.type != LS_GUEST_HVM || r->dm_qemu)
        return 0;   /* a real QEMU's state is saved next, over QMP (devmodel.def) */
    rc = dm_standin_save(&r->info, &r->dm_state, &r->dm_len);
    if (rc < 0)
        return ls_err(err, rc, "saving the device model state: out of memory");
    return 0;
}

static int finish_domain(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct save_role *r = arg;
    if (r->opts.leave_suspended)
        return 0;      /* a migration: its sender destroys or resumes it */
    if (r->opts.keep_domain)
        return be_of(r)->ops->resume(be_of(r), r->opts.domid, true, err);
    return be_of(r)->ops->destroy(be_of(r), r->opts.domid, err);
}

static int resume_guest(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct save_role *r = arg;
    struct ls_errbuf why;
    ls_err_clear(&why);
    int rc = be_of(r)->ops->resume(be_of(r), r->opts.domid, true, &why);
    if (rc < 0)
        ls_err(err, rc, "the save failed and domain %u could not be resumed: it is left "
               "suspended (%s)", r->opts.domid, why.msg);
    return rc;
}

/* ---- actions ------------------------------------------------------------ */

static int save_query_domain(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, SAVE_E_DOMAIN_INFO, query_domain, m->owner, "query domain");
}

static int save_start_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    fsm_init(&r->stx, &stream_tx_fsm_def, m->sched, NULL, r, "stream_tx[%u]", r->opts.domid);
    char name[32];
    snprintf(name, sizeof(name), "memtask[%u]", r->opts.domid);
    memtask_init(&r->mem, m->sched, name, save_memory_thread, r, &r->stx, STREAM_TX_E_MEMORY_DONE);
    r->op.progress_of = &r->mem.helper;
    fsm_join_begin(&r->tasks, m, SAVE_E_TASKS_DONE, SAVE_E_TASKS_FAILED);
    fsm_join_add(&r->tasks, &r->stx);
    fsm_join_add(&r->tasks, &r->mem.m);
    fsm_join_arm(&r->tasks);
    fsm_post(&r->stx, STREAM_TX_E_START, 0, NULL);
    return fsm_defer(m, fsm_join_undo, &r->tasks, "stream and memory tasks");
}

static int save_answer_logdirty(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    /* Without a QEMU there is no device-model dirty log to switch. */
    io_helper_reply(&r->mem.helper, 0);
    return 0;
}

/* libxenguest asks before each round (dirty_count known) and after it
 * (dirty_count -1, total_written grown by the round): the time between the
 * two is the round's, which gives the send rate the downtime target uses. */
static void precopy_measure(struct save_role *r, const struct ls_precopy_stats *st)
{
    struct ls_precopy_progress *p = &r->op.precopy;
    uint64_t now = io_monotonic_ns();
    if (st->dirty_count >= 0) {
        r->round_start_ns = now;
        p->dirty_pages = st->dirty_count;
        p->round = st->iteration;       /* about to go, whatever the answer */
        return;
    }
    if (r->round_start_ns && now > r->round_start_ns) {
        r->sent_ns += now - r->round_start_ns;
        r->sent_pages += st->total_written - p->pages_sent;
        p->pages_per_s = (double)r->sent_pages * 1e9 / (double)r->sent_ns;
    }
    p->pages_sent = st->total_written;
    p->round = st->iteration - 1;       /* the round that went */
}

static int save_answer_precopy(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    const struct ls_precopy_stats *st = &r->precopy;
    const struct ls_precopy_policy *pol = &r->opts.precopy;
    unsigned max_rounds = pol->max_rounds ? pol->max_rounds : SAVE_PRECOPY_MAX_ITERATIONS;
    long threshold = pol->dirty_threshold ? (long)pol->dirty_threshold
                                          : SAVE_PRECOPY_DIRTY_THRESHOLD;
    precopy_measure(r, st);
    const char *why = NULL;
    if (st->iteration >= max_rounds)
        why = "round limit";
    else if (st->dirty_count >= 0 && st->dirty_count < threshold)
        why = "few dirty pages";
    else if (pol->target_downtime_ms && st->dirty_count >= 0 && r->op.precopy.pages_per_s > 0 &&
             (double)st->dirty_count * 1000.0 / r->op.precopy.pages_per_s <=
                 (double)pol->target_downtime_ms)
        why = "downtime target met";
    if (m->sched->trace)
        fprintf(stderr, "precopy %s: round %u %s: %lu pages sent before it, %ld dirty, "
                "%.0f pages/s -> %s\n", m->name,
                st->dirty_count >= 0 ? st->iteration : st->iteration - 1,
                st->dirty_count >= 0 ? "about to go" : "went", st->total_written,
                st->dirty_count, r->op.precopy.pages_per_s,
                why ? (st->dirty_count >= 0 ? why : "stop-and-copy") : "continue");
    io_helper_reply(&r->mem.helper, why ? LS_POLICY_STOP_AND_COPY : LS_POLICY_CONTINUE_PRECOPY);
    return 0;
}

static int save_suspend_guest(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    return io_work_start(m, r->dm_qemu ? SAVE_E_GUEST_SUSPENDED_QEMU : SAVE_E_GUEST_SUSPENDED,
                         suspend_guest, m->owner, "suspend guest");
}

/* The guest is suspended: stop its QEMU and save its device state (spec 3.1
 * step 4) before the suspend callback is answered. */
static int save_dm_save(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    return dm_task_run(&r->dm_save, m, &r->dm_save_join, SAVE_E_DM_SAVED, SAVE_E_DM_FAILED,
                       r->opts.domid, &r->dm, DEVMODEL_E_SAVE, "device model save");
}

static int save_cancel_dm(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    fsm_join_cancel(&r->dm_save_join, -ECANCELED);
    return 0;
}

/* The cont join is begun, and its undo registered, by the action that leads
 * to it (finishing, or resuming after a failure), where failing is handled:
 * starting the cont itself then cannot fail. A failure on FINISHED would
 * keep FINISHING, whose FAIL row resumes a guest already destroyed. */
static int prepare_cont(struct fsm *m)
{
    struct save_role *r = m->owner;
    fsm_join_begin(&r->dm_cont_join, m, SAVE_E_DM_CONTINUED, SAVE_E_DM_CONT_FAILED);
    return fsm_defer(m, fsm_join_undo, &r->dm_cont_join, "device model cont");
}

/* The guest runs again (resumed after a failure, or kept): so does its QEMU,
 * if it was running when the save stopped it, as libxl's resume does. */
static int start_cont(struct fsm *m, bool guest_runs)
{
    struct save_role *r = m->owner;
    if (!r->dm_qemu || !guest_runs || !r->dm_save.was_running) {
        fsm_post(m, SAVE_E_DM_CONTINUED, 0, NULL);
        return 0;
    }
    dm_task_init(&r->dm_cont, m->sched, r->opts.domid, r->dm.pid, r->dm.qmp_path);
    dm_task_set_log(&r->dm_cont, r->dm.log_path);
    fsm_join_add(&r->dm_cont_join, &r->dm_cont.m);
    fsm_join_arm(&r->dm_cont_join);
    fsm_post(&r->dm_cont.m, DEVMODEL_E_CONT, 0, NULL);
    return 0;
}

static int save_dm_cont(struct fsm *m, const struct fsm_ev *ev)
{
    return start_cont(m, true);
}

static int save_dm_cont_kept(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    return start_cont(m, r->opts.keep_domain && !r->opts.leave_suspended);
}

static int save_dm_cont_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    /* The save's own failure stays the error; this one is told besides. */
    fprintf(stderr, "lockstep: domain %u runs again but its QEMU does not: %s\n",
            r->opts.domid, r->dm_cont.m.err.msg);
    return 0;
}

static int save_answer_suspended(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    if (r->dm_qemu && r->dm_save.state) {
        r->dm_state = r->dm_save.state;   /* EMULATOR_CONTEXT (qemu-upstream) */
        r->dm_len = r->dm_save.state_len;
        r->dm_save.state = NULL;
    }
    r->op.precopy.final_round = true;
    r->op.precopy.bytes_at_suspend = atomic_load(&r->mem.helper.progress_done);
    io_helper_reply(&r->mem.helper, 1);
    return 0;
}

static int save_finish_domain(struct fsm *m, const struct fsm_ev *ev)
{
    int rc = prepare_cont(m);
    if (rc < 0)
        return rc;
    return io_work_start(m, SAVE_E_FINISHED, finish_domain, m->owner,
                         "destroy the saved domain");
}

static int save_resume_guest(struct fsm *m, const struct fsm_ev *ev)
{
    int rc = prepare_cont(m);
    if (rc < 0)
        return rc;
    return io_work_start(m, SAVE_E_GUEST_RESUMED, resume_guest, m->owner, "resume guest");
}

static int save_cancel_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    fsm_join_cancel(&r->tasks, -ECANCELED);
    return 0;
}

/* ---- the API ------------------------------------------------------------ */

static void save_done(struct fsm *m, int rc)
{
    struct save_role *r = m->owner;
    op_finish(&r->op, rc, fsm_errmsg(m));
}

static void save_free(struct ls_op *op)
{
    struct save_role *r = (struct save_role *)op;
    free(r->config_json);
    free(r->head);
    free(r->tail);
    free(r->ckpt);
    free(r->dm_state);
    free(r->dm_save.state);
    free(r);
}

bool save_left_dm_stopped(const struct ls_op *op, struct ls_dm_info *dm)
{
    const struct save_role *r = (const struct save_role *)op;
    if (!op || r->m.state != SAVE_S_DONE || !r->dm_qemu || !r->dm_save.was_running)
        return false;
    *dm = r->dm;
    return true;
}

int save_role_start(struct ls_ctx *ctx, const struct ls_save_opts *opts, ls_op_done_fn *done,
                    void *data, struct ls_op **out, struct ls_errbuf *err)
{
    struct save_role *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(err, -ENOMEM, "out of memory");
    r->op = (struct ls_op){ .ctx = ctx, .root = &r->m, .domid = opts->domid, .done = done,
                            .data = data, .free_role = save_free };
    r->opts = *opts;
    fsm_init(&r->m, &save_fsm_def, &ctx->sched.sched, save_done, r, "save[%u]", opts->domid);
    ctx->live_ops++;
    fsm_post(&r->m, SAVE_E_START, 0, NULL);
    *out = &r->op;
    return 0;
}
