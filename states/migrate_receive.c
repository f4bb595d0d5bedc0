/* states/migrate_receive.c - actions of the migration receiver (migrate_receive.def). */
#include "states/migrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/fdio.h"
#include "io/work.h"
#include "states/restore.h"

#define FSM_PREFIX MIGRATE_RECEIVE
#define FSM_DEF_FILE "states/migrate_receive.def"
#include "fsm/gen_table.h"

static struct ls_backend *be_of(struct migrate_receive_role *r) { return r->op.ctx->be; }

/* ---- messages and backend calls on the threadpool ----------------------------- */

static int tls_handshake(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    return mig_tls_handshake(r->tls, r->opts.recv_fd, r->opts.send_fd, cancel_fd, &r->io_err,
                             MIGRATE_RECEIVE_E_HANDSHAKE_OK, MIGRATE_RECEIVE_E_HANDSHAKE_FAILED);
}

static int write_banner(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    return mig_send(r->opts.send_fd, MIG_BANNER, MIG_BANNER_LEN, cancel_fd, "sender", "banner",
                    err);
}

static int write_received(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    return mig_send(r->opts.send_fd, MIG_RECEIVED, MIG_RECEIVED_LEN, cancel_fd, "sender",
                    "confirmation \"domain received\"", err);
}

/* The go-ahead, and at once the start: unpausing clears the domain's guard
 * in the same backend call (a paused start, -p, releases the guard instead).
 * Nothing lies between the two but the read's return, so neither a death of
 * this process nor a fault point can leave a taken go-ahead unstarted, and
 * no hop through the loop lengthens the guest's downtime. */
static int await_go_and_start(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    struct ls_backend *be = be_of(r);
    if (mig_expect(r->opts.recv_fd, MIG_GO, MIG_GO_LEN, cancel_fd, "sender", "go-ahead",
                   r->opts.timeout_ms, &r->io_err) < 0)
        return MIGRATE_RECEIVE_E_NO_GO;
    int rc;
    struct ls_errbuf why;
    ls_err_clear(&why);
    if (r->opts.paused)
        rc = be->ops->set_guard ? be->ops->set_guard(be, r->domid, LS_GUARD_NONE, &why) : 0;
    else
        rc = be->ops->unpause(be, r->domid, &why);
    if (rc < 0) {
        ls_err(&r->io_err, rc, "the go-ahead came, but our copy (domain %u) could not be "
               "started: %s", r->domid, why.msg);
        return MIGRATE_RECEIVE_E_START_FAILED;
    }
    r->op.resumed_ns = io_monotonic_ns();
    return MIGRATE_RECEIVE_E_GUEST_STARTED;
}

static int write_report(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    uint8_t msg[MIG_REPORT_LEN + 1];
    memcpy(msg, MIG_REPORT, MIG_REPORT_LEN);
    msg[MIG_REPORT_LEN] = r->status;
    return mig_send(r->opts.send_fd, msg, sizeof(msg), cancel_fd, "sender",
                    r->status ? "failure report" : "report that the guest runs here", err);
}

static int write_report_ok(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    if (write_report(r, cancel_fd, &r->io_err) < 0)
        return MIGRATE_RECEIVE_E_REPORT_LOST;
    return MIGRATE_RECEIVE_E_WRITTEN;
}

static int write_permission(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    return mig_send(r->opts.send_fd, MIG_GO, MIG_GO_LEN, cancel_fd, "sender",
                    "leave to resume", err);
}

static int destroy_copy(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_receive_role *r = arg;
    if (!r->domid)
        return 0;      /* the restore failed: it destroyed its partial domain itself */
    struct ls_errbuf why;
    ls_err_clear(&why);
    int rc = be_of(r)->ops->destroy(be_of(r), r->domid, &why);
    if (rc < 0)
        return ls_err(err, rc, "our copy (domain %u) could not be destroyed: %s; the backend "
                      "destroys it when this process exits", r->domid, why.msg);
    return 0;
}

/* ---- actions ----------------------------------------------------------------------- */

static int rcv_start_handshake(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, tls_handshake, m->owner, "TLS handshake");
}

/* The sender, or TLS on our behalf, refused: no restore was started. */
static int rcv_outcome_refused(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    fsm_fail_from(m, &r->io_err);
    return 0;
}

static int rcv_write_banner(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, MIGRATE_RECEIVE_E_WRITTEN, write_banner, m->owner, "write the banner");
}

/* The restore's own result: the copy it made is ours from here, whatever
 * the join then reports (it re-reports a success as a failure when our
 * action on it failed), so every failure row destroys what exists. */
static void restore_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct migrate_receive_role *r = data;
    if (rc == 0)
        r->domid = op->domid;
}

static int rcv_start_restore(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    struct ls_restore_opts ro = { .fd = r->opts.recv_fd, .unpause = false, .guard = true,
                                  .no_digest = r->opts.no_digest };
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = restore_role_start(r->op.ctx, &ro, restore_done, r, &r->restore, &err);
    if (rc < 0)
        return fsm_fail(m, rc, "%s: cannot start the restore: %s", m->name, err.msg);
    r->op.child = r->restore;
    fsm_join_begin(&r->join, m, MIGRATE_RECEIVE_E_RESTORE_DONE, MIGRATE_RECEIVE_E_RESTORE_FAILED);
    fsm_join_add(&r->join, r->restore->root);
    fsm_join_arm(&r->join);
    return fsm_defer(m, fsm_join_undo, &r->join, "the restore");
}

static int rcv_cancel_restore(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    fsm_join_cancel(&r->join, -ECANCELED);
    return 0;
}

/* Our copy is the API's to report from here on. */
static void take_copy(struct migrate_receive_role *r)
{
    r->op.domid = r->domid;
    memcpy(r->op.digest, r->restore->digest, sizeof(r->op.digest));
}

static int rcv_write_received(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    take_copy(r);
    return io_work_start(m, MIGRATE_RECEIVE_E_WRITTEN, write_received, r,
                         "write \"domain received\"");
}

static int rcv_await_go(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, await_go_and_start, m->owner,
                         "await the go-ahead and start the guest");
}

static int rcv_write_report(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    r->status = 0;
    return io_work_start(m, IO_WORK_EV_FROM_FN, write_report_ok, r, "write the report");
}

static int rcv_write_failure(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    if (r->io_err.rc && !fsm_rc(m))
        fsm_fail_from(m, &r->io_err);   /* why our copy did not start */
    /* xl sends -rc of the libxl error; an errno fits the byte the same way. */
    int rc = -fsm_rc(m);
    r->status = (uint8_t)(rc > 0 && rc < 256 ? rc : 1);
    return io_work_start(m, MIGRATE_RECEIVE_E_WRITTEN, write_report, r,
                         "write the failure report");
}

static int rcv_write_permission(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, MIGRATE_RECEIVE_E_WRITTEN, write_permission, m->owner,
                         "write the leave to resume");
}

static int rcv_destroy_copy(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    if (r->io_err.rc)
        fsm_fail_from(m, &r->io_err);   /* why no go-ahead */
    return io_work_start(m, MIGRATE_RECEIVE_E_COPY_DESTROYED, destroy_copy, r,
                         "destroy our copy");
}

static int rcv_abandon(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_abandon(m);
    return 0;
}

static int rcv_interrupt_go(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_interrupt(m);
    return 0;
}

static int rcv_abandon_and_destroy(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_abandon(m);
    return rcv_destroy_copy(m, ev);
}

static int rcv_outcome_runs(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    r->op.outcome = LS_MIGRATE_DESTINATION_RUNS;
    return 0;
}

static int rcv_outcome_unconfirmed(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_receive_role *r = m->owner;
    fsm_fail_from(m, &r->io_err);
    r->op.outcome = LS_MIGRATE_RUNS_UNCONFIRMED;
    return 0;
}

/* ---- the API ------------------------------------------------------------------------ */

static void migrate_receive_done(struct fsm *m, int rc)
{
    struct migrate_receive_role *r = m->owner;
    if (r->op.outcome == LS_MIGRATE_UNFINISHED)
        r->op.outcome = LS_MIGRATE_NOT_RECEIVED;
    op_finish(&r->op, rc, fsm_errmsg(m));
}

static void migrate_receive_free(struct ls_op *op)
{
    struct migrate_receive_role *r = (struct migrate_receive_role *)op;
    io_fd_set_timeout(r->opts.send_fd, 0);
    io_fd_set_timeout(r->opts.recv_fd, 0);
    io_tls_free(r->tls);
    op_free(r->restore);
    free(r);
}

#pragma GCC diagnostic push
/* analyzer: migrate_receive_free(&r->op) frees r (op is its first member) */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
int migrate_receive_start(struct ls_ctx *ctx, const struct ls_migrate_receive_opts *opts,
                          ls_op_done_fn *done, void *data, struct ls_op **out,
                          struct ls_errbuf *err)
{
    if (opts->send_fd < 0 || opts->recv_fd < 0)
        return ls_err(err, -EINVAL, "migrate-receive: the stream and back-channel fds are required");
    struct migrate_receive_role *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(err, -ENOMEM, "out of memory");
    r->opts = *opts;
    if (!r->opts.timeout_ms)
        r->opts.timeout_ms = MIG_DEFAULT_TIMEOUT_MS;
    int rc = mig_prepare_fd(r->opts.send_fd, r->opts.timeout_ms, err);
    if (rc == 0)
        rc = mig_prepare_fd(r->opts.recv_fd, r->opts.timeout_ms, err);
    if (rc == 0)
        rc = mig_tls_new(&r->tls, &opts->tls, IO_TLS_SERVER, err);
    if (rc < 0) {
        migrate_receive_free(&r->op);
        return rc;
    }
    r->op = (struct ls_op){ .ctx = ctx, .root = &r->m, .done = done, .data = data,
                            .free_role = migrate_receive_free };
    fsm_init(&r->m, &migrate_receive_fsm_def, &ctx->sched.sched, migrate_receive_done, r,
             "migrate-receive");
    ctx->live_ops++;
    fsm_post(&r->m, r->tls ? MIGRATE_RECEIVE_E_START_TLS : MIGRATE_RECEIVE_E_START, 0, NULL);
    *out = &r->op;
    return 0;
}
#pragma GCC diagnostic pop
