/* states/migrate_send.c - actions of the migration sender (migrate_send.def),
 * and the handshake I/O both migration roles share (migrate.h). */
#include "states/migrate.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fdio.h"
#include "io/work.h"
#include "states/save.h"

#define FSM_PREFIX MIGRATE_SEND
#define FSM_DEF_FILE "states/migrate_send.def"
#include "fsm/gen_table.h"

/* ---- the handshake's I/O ------------------------------------------------------ */

int mig_prepare_fd(int fd, unsigned timeout_ms, struct ls_errbuf *err)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return ls_err(err, -errno, "fd %d: %s", fd, strerror(errno));
    int rc = io_fd_set_timeout(fd, timeout_ms);
    if (rc < 0)
        return ls_err(err, rc, "fd %d: too many connections with timeouts", fd);
    return 0;
}

/* The bytes as text, control characters escaped, for an error message. */
static void printable(const uint8_t *b, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (isprint(b[i]) && b[i] != '"' && b[i] != '\\')
            out[o++] = (char)b[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", b[i]);
    }
    out[o] = '\0';
}

int mig_expect(int fd, const char *want, size_t len, int cancel_fd, const char *peer,
               const char *what, unsigned timeout_ms, struct ls_errbuf *err)
{
    uint8_t buf[64];
    size_t got = 0;
    int rc = io_read_all(fd, buf, len, &got, cancel_fd);
    if (rc == -ENODATA)
        return ls_err(err, -ENODATA, "the %s closed the connection %s %s%s", peer,
                      got ? "in the middle of" : "instead of sending", what,
                      got ? "" : " (its own messages say why)");
    if (rc == -ETIMEDOUT)
        return ls_err(err, rc, "the %s sent no %s within %u s", peer, what, timeout_ms / 1000);
    if (rc == -ECANCELED)
        return ls_err(err, rc, "stopped waiting for the %s's %s", peer, what);
    if (rc < 0)
        return ls_err(err, rc, "reading the %s's %s: %s", peer, what, strerror(-rc));
    if (memcmp(buf, want, len) != 0) {
        char text[64 * 4 + 1];
        printable(buf, len, text, sizeof(text));
        return ls_err(err, -EPROTO, "the %s sent \"%s\" where xl's %s was expected", peer, text,
                      what);
    }
    return 0;
}

int mig_send(int fd, const void *msg, size_t len, int cancel_fd, const char *peer,
             const char *what, struct ls_errbuf *err)
{
    int rc = io_write_all(fd, msg, len, cancel_fd);
    if (rc == -ETIMEDOUT)
        return ls_err(err, rc, "the %s stopped reading: the %s could not be written", peer, what);
    if (rc == -EPIPE || rc == -ECONNRESET)
        return ls_err(err, rc, "writing the %s: the %s closed the connection", what, peer);
    if (rc < 0)
        return ls_err(err, rc, "writing the %s to the %s: %s", what, peer, strerror(-rc));
    return 0;
}

int mig_tls_new(struct io_tls **out, const struct ls_tls_opts *opts, enum io_tls_role role,
                struct ls_errbuf *err)
{
    *out = NULL;
    return opts->creds_dir ? io_tls_new(out, opts->creds_dir, opts->allow, opts->peer_name, role,
                                        err)
                           : 0;
}

int mig_tls_check_creds(const struct ls_tls_opts *o, bool receiver, struct ls_errbuf *err)
{
    struct io_tls *t;
    int rc = mig_tls_new(&t, o, receiver ? IO_TLS_SERVER : IO_TLS_CLIENT, err);
    io_tls_free(t);
    return rc;
}

int mig_tls_handshake(struct io_tls *tls, int recv_fd, int send_fd, int cancel_fd,
                      struct ls_errbuf *io_err, int ok_ev, int failed_ev)
{
    return io_tls_handshake(tls, recv_fd, send_fd, cancel_fd, io_err) < 0 ? failed_ev : ok_ev;
}

/* ---- backend calls and waits on the threadpool ---------------------------------- */

static int tls_handshake(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    return mig_tls_handshake(r->tls, r->opts.recv_fd, r->opts.send_fd, cancel_fd, &r->io_err,
                             MIGRATE_SEND_E_HANDSHAKE_OK, MIGRATE_SEND_E_HANDSHAKE_FAILED);
}

static struct ls_backend *be_of(struct migrate_send_role *r) { return r->op.ctx->be; }
static unsigned timeout_of(struct migrate_send_role *r) { return r->opts.timeout_ms; }

static int arm_guard(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->opts.domid, &info, err);
    if (rc < 0)
        return rc;
    if (info.state != LS_RUN_RUNNING && info.state != LS_RUN_PAUSED)
        return ls_err(err, -EBUSY, "domain %u cannot be migrated: it is %s", r->opts.domid,
                      info.state == LS_RUN_SUSPENDED ? "suspended" : "shut down");
    if (!be->ops->set_guard)
        return 0;
    return be->ops->set_guard(be, r->opts.domid, LS_GUARD_RESUME, err);
}

static int read_banner(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    return mig_expect(r->opts.recv_fd, MIG_BANNER, MIG_BANNER_LEN, cancel_fd, "receiver",
                      "banner (\"xl migration receiver ready...\")", timeout_of(r), err);
}

static int read_received(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    return mig_expect(r->opts.recv_fd, MIG_RECEIVED, MIG_RECEIVED_LEN, cancel_fd, "receiver",
                      "confirmation that it received the domain", timeout_of(r), err);
}

/* The point of no return. The backend writes the go-ahead and clears the
 * guard as one step of its own (hand_off), so our death cannot fall between
 * them. Without it: the guard goes first, so a go-ahead is never written
 * while the backend could still resume our copy behind our back (a death
 * right between leaves the guest suspended here, the receiver without it). */
static int give_go(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_errbuf why;
    ls_err_clear(&why);
    int rc;
    if (be->ops->hand_off) {
        /* Over TLS the backend writes the go-ahead's record, sealed here. */
        uint8_t *sealed = NULL;
        size_t len = MIG_GO_LEN;
        rc = r->tls ? io_tls_seal(r->tls, MIG_GO, MIG_GO_LEN, &sealed, &len, &why) : 0;
        if (rc == 0)
            rc = be->ops->hand_off(be, r->opts.domid, r->opts.send_fd, sealed ? sealed : (void *)MIG_GO,
                                   len, &why);
        free(sealed);
    } else {
        rc = be->ops->set_guard ? be->ops->set_guard(be, r->opts.domid, LS_GUARD_NONE, &why) : 0;
        if (rc == 0)
            rc = mig_send(r->opts.send_fd, MIG_GO, MIG_GO_LEN, cancel_fd, "receiver", "go-ahead",
                          &why);
    }
    if (rc < 0) {
        ls_err(&r->io_err, rc, "the go-ahead could not be given: %s", why.msg);
        return MIGRATE_SEND_E_GO_NOT_GIVEN;
    }
    return MIGRATE_SEND_E_GO_WRITTEN;
}

static int read_report(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    int rc = mig_expect(r->opts.recv_fd, MIG_REPORT, MIG_REPORT_LEN, cancel_fd, "receiver",
                        "unpause report", timeout_of(r), err);
    if (rc < 0)
        return rc;
    size_t got;
    rc = io_read_all(r->opts.recv_fd, &r->status, 1, &got, cancel_fd);
    if (rc < 0)
        return ls_err(err, rc, "the receiver's unpause report has no status byte: %s",
                      rc == -ENODATA ? "it closed the connection" : strerror(-rc));
    if (r->status == 0)
        return MIGRATE_SEND_E_REPORT_OK;
    return MIGRATE_SEND_E_REPORT_FAILED;
}

static int read_permission(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    return mig_expect(r->opts.recv_fd, MIG_GO, MIG_GO_LEN, cancel_fd, "receiver",
                      "leave to resume (after its copy failed to start)", timeout_of(r), err);
}

static int destroy_source(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    struct ls_errbuf why;
    ls_err_clear(&why);
    int rc = be_of(r)->ops->destroy(be_of(r), r->opts.domid, &why);
    if (rc < 0) {
        ls_err(&r->io_err, rc, "the guest runs at the destination, but our copy (domain %u) "
               "could not be destroyed: %s", r->opts.domid, why.msg);
        return MIGRATE_SEND_E_SOURCE_NOT_DESTROYED;
    }
    return MIGRATE_SEND_E_SOURCE_DESTROYED;
}

static int resume_source(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    struct ls_errbuf why;
    ls_err_clear(&why);
    int rc = be_of(r)->ops->resume(be_of(r), r->opts.domid, true, &why);
    if (rc < 0) {
        r->source_suspended = true;
        return ls_err(err, rc, "the guest could not be resumed at the source: %s", why.msg);
    }
    return 0;
}

/* Before any go-ahead the guest is ours: whatever state the save left it in
 * (running, or suspended by a save that completed as we gave up), it runs
 * again, and the guard is released. Which of the two is a row (SETTLING's
 * SOURCE_SUSPENDED or SOURCE_NOT_SUSPENDED); failures are SETTLE_FAILED,
 * with io_err saying why. */
static int query_source(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    struct ls_domain_info info;
    if (be_of(r)->ops->domain_info(be_of(r), r->opts.domid, &info, &r->settle_err) < 0)
        return MIGRATE_SEND_E_SETTLE_FAILED;
    return info.state == LS_RUN_SUSPENDED ? MIGRATE_SEND_E_SOURCE_SUSPENDED
                                          : MIGRATE_SEND_E_SOURCE_NOT_SUSPENDED;
}

/* The outcome is what the backend says once the settle is done. */
static int settled(struct migrate_send_role *r)
{
    struct ls_domain_info info;
    struct ls_errbuf why;
    if (be_of(r)->ops->domain_info(be_of(r), r->opts.domid, &info, &why) == 0)
        r->source_suspended = info.state == LS_RUN_SUSPENDED;
    return MIGRATE_SEND_E_SETTLED;
}

static int settle_resume(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    if (resume_source(r, cancel_fd, &r->settle_err) < 0)
        return MIGRATE_SEND_E_SETTLE_FAILED;
    return settled(r);
}

static int settle_guard(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct migrate_send_role *r = arg;
    struct ls_backend *be = be_of(r);
    if (be->ops->set_guard && be->ops->set_guard(be, r->opts.domid, LS_GUARD_NONE, &r->settle_err) < 0)
        return MIGRATE_SEND_E_SETTLE_FAILED;
    return settled(r);
}

/* ---- actions ------------------------------------------------------------------------ */

static int mig_start_handshake(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, tls_handshake, m->owner, "TLS handshake");
}

static int mig_abandon_handshake(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_abandon(m);
    return 0;
}

/* The receiver, or TLS on its behalf, refused: the guest was never touched. */
static int mig_outcome_refused(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    fsm_fail_from(m, &r->io_err);
    r->op.outcome = LS_MIGRATE_SOURCE_RUNS;
    return 0;
}

static int mig_arm_guard(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, MIGRATE_SEND_E_GUARD_ARMED, arm_guard, m->owner, "arm the guard");
}

static int mig_read_banner(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, MIGRATE_SEND_E_BANNER, read_banner, m->owner, "read the banner");
}

static int mig_start_save(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    struct ls_save_opts so = {
        .domid = r->opts.domid, .fd = r->opts.send_fd, .format = LS_FORMAT_XL, .live = true,
        .precopy = r->opts.precopy, .leave_suspended = true, .no_digest = r->opts.no_digest,
    };
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = save_role_start(r->op.ctx, &so, NULL, r, &r->save, &err);
    if (rc < 0)
        return fsm_fail(m, rc, "%s: cannot start the save: %s", m->name, err.msg);
    r->op.child = r->save;
    fsm_join_begin(&r->join, m, MIGRATE_SEND_E_SAVE_DONE, MIGRATE_SEND_E_SAVE_FAILED);
    fsm_join_add(&r->join, r->save->root);
    fsm_join_arm(&r->join);
    return fsm_defer(m, fsm_join_undo, &r->join, "the save");
}

static int mig_cancel_save(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    fsm_join_cancel(&r->join, -ECANCELED);
    return 0;
}

static int mig_read_received(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    /* The state the stream carries, taken at the suspend. */
    memcpy(r->op.digest, r->save->digest, sizeof(r->op.digest));
    r->op.suspended_ns = r->save->suspended_ns;
    return io_work_start(m, MIGRATE_SEND_E_RECEIVED, read_received, r, "read \"domain received\"");
}

static int mig_give_go(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, give_go, m->owner, "give the go-ahead");
}

static int mig_read_report(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, read_report, m->owner, "read the report");
}

static int mig_read_permission(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    /* The report's failure is the error, whatever comes next. */
    fsm_fail(m, -EREMOTEIO, "the receiver could not start its copy (status %u); it destroys "
             "it, and the guest is resumed here", r->status);
    return io_work_start(m, MIGRATE_SEND_E_PERMISSION, read_permission, r,
                         "read the leave to resume");
}

static int mig_destroy_source(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, destroy_source, m->owner,
                         "destroy the source copy");
}

static int mig_resume_source(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    if (r->io_err.rc)
        fsm_fail_from(m, &r->io_err);   /* why the go-ahead was not given */
    return io_work_start(m, MIGRATE_SEND_E_GUEST_RESUMED, resume_source, m->owner,
                         "resume the guest");
}

static int mig_abandon_and_resume(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_abandon(m);
    return mig_resume_source(m, ev);
}

/* A settle step's work; one that cannot start is the settle failing. */
static int settle_step(struct fsm *m, io_work_fn *fn, const char *what)
{
    struct migrate_send_role *r = m->owner;
    int rc = io_work_start(m, IO_WORK_EV_FROM_FN, fn, r, what);
    if (rc < 0) {
        ls_err_copy(&r->settle_err, &m->err);
        fsm_post(m, MIGRATE_SEND_E_SETTLE_FAILED, rc, NULL);
    }
    return 0;
}

static int mig_settle_source(struct fsm *m, const struct fsm_ev *ev)
{
    return settle_step(m, query_source, "ask whether the source copy is suspended");
}

static int mig_settle_resume(struct fsm *m, const struct fsm_ev *ev)
{
    return settle_step(m, settle_resume, "resume the source copy");
}

static int mig_settle_guard(struct fsm *m, const struct fsm_ev *ev)
{
    return settle_step(m, settle_guard, "release the source copy's guard");
}

static int mig_abandon_and_settle(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_abandon(m);
    return mig_settle_source(m, ev);
}

/* Our copy runs again (resumed here, or found running by the settle): so
 * must its QEMU, if the save completed and had stopped a running one (a save
 * that failed lets its own run again). Without one, the join reports at once. */
static int mig_cont_dm(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    struct ls_dm_info dm;
    bool stopped_by_save = save_left_dm_stopped(r->save, &dm);
    fsm_join_begin(&r->dm_cont_join, m, MIGRATE_SEND_E_DM_CONTINUED,
                   MIGRATE_SEND_E_DM_CONT_FAILED);
    if (!stopped_by_save || r->source_suspended) {
        fsm_join_arm(&r->dm_cont_join);
        return 0;
    }
    dm_task_init(&r->dm_cont, m->sched, r->opts.domid, dm.pid, dm.qmp_path);
    dm_task_set_log(&r->dm_cont, dm.log_path);
    fsm_join_add(&r->dm_cont_join, &r->dm_cont.m);
    fsm_join_arm(&r->dm_cont_join);
    fsm_post(&r->dm_cont.m, DEVMODEL_E_CONT, 0, NULL);
    return fsm_defer(m, fsm_join_undo, &r->dm_cont_join, "device model cont");
}

static int mig_outcome_destination(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    r->op.outcome = LS_MIGRATE_DESTINATION_RUNS;
    return 0;
}

static int mig_outcome_left(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    fsm_fail_from(m, &r->io_err);
    r->op.outcome = LS_MIGRATE_SOURCE_LEFT;
    return 0;
}

static int mig_outcome_source(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    r->op.outcome = r->source_suspended ? LS_MIGRATE_SOURCE_SUSPENDED : LS_MIGRATE_SOURCE_RUNS;
    return 0;
}

/* The settle failed: its reason (after the migration's own, if first). */
static int mig_outcome_settle_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    if (m->err.rc && r->settle_err.rc != -ECANCELED)
        ls_err_append(&m->err, "; then %s", r->settle_err.msg);
    fsm_fail_from(m, &r->settle_err);
    return mig_outcome_source(m, ev);
}

/* The guest runs here, but its QEMU stays stopped: the outcome is still
 * "runs at the source", and the error says what does not run. The join has
 * made the cont's error ours unless the migration's own failure came first. */
static int mig_outcome_dm_stopped(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    const char *why = r->dm_cont.m.err.msg[0] ? r->dm_cont.m.err.msg : "cont failed";
    char what[LS_ERRBUF_LEN + 80];
    snprintf(what, sizeof(what), "domain %u runs again here, but its QEMU does not: %s",
             r->opts.domid, why);
    if (fsm_rc(m) == 0)
        fsm_fail(m, r->dm_cont.m.err.rc ? r->dm_cont.m.err.rc : -EIO, "%s", what);
    else if (strcmp(m->err.msg, why) == 0)
        snprintf(m->err.msg, sizeof(m->err.msg), "%.*s", LS_ERRBUF_LEN - 1, what);
    else
        ls_err_append(&m->err, "; %s", what);
    return mig_outcome_source(m, ev);
}

static int mig_outcome_unconfirmed(struct fsm *m, const struct fsm_ev *ev)
{
    struct migrate_send_role *r = m->owner;
    r->op.outcome = LS_MIGRATE_UNCONFIRMED;
    return 0;
}

/* ---- the API -------------------------------------------------------------------------- */

static void migrate_send_done(struct fsm *m, int rc)
{
    struct migrate_send_role *r = m->owner;
    /* SOURCE_LEFT is a success with a leftover: the guest runs at the destination. */
    if (r->op.outcome == LS_MIGRATE_SOURCE_LEFT)
        fprintf(stderr, "lockstep: migrate: %s\n", fsm_errmsg(m));
    op_finish(&r->op, r->op.outcome == LS_MIGRATE_SOURCE_LEFT ? 0 : rc, fsm_errmsg(m));
}

static void migrate_send_free(struct ls_op *op)
{
    struct migrate_send_role *r = (struct migrate_send_role *)op;
    io_fd_set_timeout(r->opts.send_fd, 0);
    io_fd_set_timeout(r->opts.recv_fd, 0);
    io_tls_free(r->tls);
    op_free(r->save);
    free(r);
}

#pragma GCC diagnostic push
/* analyzer: migrate_send_free(&r->op) frees r (op is its first member) */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
int migrate_send_start(struct ls_ctx *ctx, const struct ls_migrate_opts *opts,
                       ls_op_done_fn *done, void *data, struct ls_op **out,
                       struct ls_errbuf *err)
{
    if (opts->send_fd < 0 || opts->recv_fd < 0)
        return ls_err(err, -EINVAL, "migrate: the stream and back-channel fds are required");
    struct migrate_send_role *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(err, -ENOMEM, "out of memory");
    r->opts = *opts;
    if (!r->opts.timeout_ms)
        r->opts.timeout_ms = MIG_DEFAULT_TIMEOUT_MS;
    int rc = mig_prepare_fd(r->opts.send_fd, r->opts.timeout_ms, err);
    if (rc == 0)
        rc = mig_prepare_fd(r->opts.recv_fd, r->opts.timeout_ms, err);
    if (rc == 0)
        rc = mig_tls_new(&r->tls, &opts->tls, IO_TLS_CLIENT, err);
    if (rc < 0) {
        migrate_send_free(&r->op);
        return rc;
    }
    r->op = (struct ls_op){ .ctx = ctx, .root = &r->m, .domid = opts->domid, .done = done,
                            .data = data, .free_role = migrate_send_free };
    fsm_init(&r->m, &migrate_send_fsm_def, &ctx->sched.sched, migrate_send_done, r,
             "migrate[%u]", opts->domid);
    ctx->live_ops++;
    fsm_post(&r->m, r->tls ? MIGRATE_SEND_E_START_TLS : MIGRATE_SEND_E_START, 0, NULL);
    *out = &r->op;
    return 0;
}
#pragma GCC diagnostic pop
