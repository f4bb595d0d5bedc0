/* states/colo_primary.c - actions of the COLO/Remus primary (colo_primary.def). */
#include "states/colo.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io/fdio.h"
#include "io/records.h"
#include "io/work.h"
#include "states/dm_standin.h"
#include "states/migrate.h"

#define FSM_PREFIX COLO_PRIMARY
#define FSM_DEF_FILE "states/colo_primary.def"
#include "fsm/gen_table.h"

#define SUSPEND_TIMEOUT_MS 60000   /* libxl's guest suspend timeout */

static struct ls_backend *be_of(struct colo_primary_role *r) { return r->op.ctx->be; }

/* ---- the back channel's records (shared with the secondary) --------------------- */

void colo_state_record(uint8_t out[16], uint32_t id)
{
    memset(out, 0, 16);
    stream_rec_header_encode(out, LIBXL_REC_CHECKPOINT_STATE, 4);
    memcpy(out + 8, &id, 4);
}

int colo_read_state(int fd, uint32_t want, int cancel_fd, const char *peer,
                    struct ls_errbuf *err)
{
    uint8_t rec[16];
    size_t got = 0;
    const char *name = libxl_checkpoint_state_name(want);
    int rc = io_read_all(fd, rec, sizeof(rec), &got, cancel_fd);
    if (rc == -ENODATA)
        return ls_err(err, rc, "the %s closed the connection %s CHECKPOINT_STATE(%s)", peer,
                      got ? "in the middle of" : "instead of sending", name);
    if (rc == -ETIMEDOUT)
        return ls_err(err, rc, "the %s sent no CHECKPOINT_STATE(%s) in time (deadline)", peer,
                      name);
    if (rc == -ECANCELED)
        return ls_err(err, rc, "stopped waiting for the %s's CHECKPOINT_STATE(%s)", peer, name);
    if (rc < 0)
        return ls_err(err, rc, "reading the %s's CHECKPOINT_STATE(%s): %s", peer, name,
                      strerror(-rc));
    uint32_t type, len, id;
    stream_rec_header_decode(rec, &type, &len);
    memcpy(&id, rec + 8, 4);
    if (type != LIBXL_REC_CHECKPOINT_STATE || len != 4)
        return ls_err(err, -EPROTO, "the %s sent libxl record %s (0x%x, %u bytes) where "
                      "CHECKPOINT_STATE(%s) was due", peer, libxl_rec_name(type), type, len, name);
    if (id != want)
        return ls_err(err, -EPROTO, "the %s sent CHECKPOINT_STATE(%s) where %s was due", peer,
                      libxl_checkpoint_state_name(id), name);
    if (!stream_pad_ok(rec + 12, 4))
        return ls_err(err, -EINVAL, "the %s's CHECKPOINT_STATE(%s) has non-zero padding", peer,
                      name);
    return 0;
}

/* ---- the memory task's callbacks ------------------------------------------------- */

static int cb_suspend(void *data)
{
    struct colo_primary_role *r = data;
    return io_helper_call(&r->sv.mem.helper, &r->m, COLO_PRIMARY_E_CB_SUSPEND, NULL, 0);
}

static int cb_checkpoint(void *data)
{
    struct colo_primary_role *r = data;
    return io_helper_call(&r->sv.mem.helper, &r->m, COLO_PRIMARY_E_CB_CHECKPOINT, NULL, 0);
}

static int cb_postcopy(void *data)
{
    struct colo_primary_role *r = data;
    return io_helper_call(&r->sv.mem.helper, &r->m, COLO_PRIMARY_E_CB_POSTCOPY, NULL, 0);
}

static int cb_wait_checkpoint(void *data)
{
    struct colo_primary_role *r = data;
    return io_helper_call(&r->sv.mem.helper, &r->m, COLO_PRIMARY_E_CB_WAIT_CHECKPOINT, NULL, 0);
}

static int cb_precopy_policy(struct ls_precopy_stats stats, void *data)
{
    struct colo_primary_role *r = data;
    r->precopy = stats;
    return io_helper_call(&r->sv.mem.helper, &r->m, COLO_PRIMARY_E_CB_PRECOPY_POLICY, NULL,
                          LS_POLICY_ABORT);
}

static int cb_switch_logdirty(uint32_t domid, unsigned enable, void *data)
{
    struct colo_primary_role *r = data;
    return io_helper_call(&r->sv.mem.helper, &r->m, COLO_PRIMARY_E_CB_SWITCH_LOGDIRTY,
                          (void *)(uintptr_t)enable, -1);
}

static void cb_progress(uint64_t done, uint64_t total, void *data)
{
    struct colo_primary_role *r = data;
    io_helper_progress(&r->sv.mem.helper, done, total);
}

static int memory_thread(struct io_helper *h, void *arg, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    struct ls_save_params p = {
        .domid = r->opts.domid, .io_fd = r->opts.send_fd, .recv_fd = r->opts.recv_fd,
        .flags = LS_SAVE_LIVE,
        .stream_type = r->opts.mode == LS_COLO_MODE_REMUS ? LS_STREAM_REMUS : LS_STREAM_COLO,
        .cancel_fd = h->cancel_fd,
    };
    struct ls_save_callbacks cb = {
        .suspend = cb_suspend, .precopy_policy = cb_precopy_policy, .postcopy = cb_postcopy,
        .checkpoint = cb_checkpoint, .wait_checkpoint = cb_wait_checkpoint,
        .switch_qemu_logdirty = cb_switch_logdirty, .progress = cb_progress, .data = r,
    };
    return be_of(r)->ops->save_memory(be_of(r), &p, &cb, err);
}

/* ---- backend calls and waits on the threadpool ----------------------------------- */

static int arm(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    struct ls_backend *be = be_of(r);
    int rc = be->ops->domain_info(be, r->opts.domid, &r->sv.info, err);
    if (rc < 0)
        return rc;
    if (r->sv.info.state != LS_RUN_RUNNING && r->sv.info.state != LS_RUN_PAUSED)
        return ls_err(err, -EBUSY, "domain %u cannot be replicated: it is %s", r->opts.domid,
                      r->sv.info.state == LS_RUN_SUSPENDED ? "suspended" : "shut down");
    r->sv.opts.domid = r->opts.domid;
    if ((rc = save_probe_dm(be, &r->sv, err)) < 0)   /* a real QEMU's state goes per checkpoint */
        return rc;
    if ((rc = be->ops->get_config_json(be, r->opts.domid, &r->sv.config_json, err)) < 0)
        return rc;
    if (r->disks.cfg.nbd.path[0] || r->disks.cfg.nbd.tcp) {   /* its disks are replicated */
        if (r->sv.info.type != LS_GUEST_HVM || !be->ops->disk_info)
            return ls_err(err, -EOPNOTSUPP, "domain %u: only an HVM guest's disks (its QEMU's) "
                          "are replicated, and this backend has none", r->opts.domid);
        if ((rc = be->ops->disk_info(be, r->opts.domid, &r->disks.info, err)) < 0)
            return ls_err(err, rc, "domain %u: its disks cannot be replicated: %s",
                          r->opts.domid, err->msg);
        if (r->disks.info.ndisks > COLO_DISK_MAX)
            return ls_err(err, -E2BIG, "domain %u has %u disks; at most %u are replicated",
                          r->opts.domid, r->disks.info.ndisks, COLO_DISK_MAX);
        r->disks.cfg.ndisks = r->disks.info.ndisks;
        r->c.disk.ndisks = r->disks.info.ndisks;
        r->c.disk.state = LS_COLO_DISK_STARTING;
    } else if (r->opts.mode == LS_COLO_MODE_COLO && r->sv.info.type == LS_GUEST_HVM &&
               be->ops->disk_info) {
        /* libxl refuses a COLO disk it cannot replicate ("device not handled
         * by checkpoint"): a failover would give the secondary other data. */
        struct ls_disk_info di;
        struct ls_errbuf none;
        ls_err_clear(&none);
        if (be->ops->disk_info(be, r->opts.domid, &di, &none) == 0 && di.ndisks)
            return ls_err(err, -EINVAL, "domain %u has %u disk%s that COLO would leave "
                          "unreplicated: give the secondary's NBD address for them (--disk-nbd)",
                          r->opts.domid, di.ndisks, di.ndisks == 1 ? "" : "s");
    }
    return be->ops->set_guard ? be->ops->set_guard(be, r->opts.domid, LS_GUARD_RESUME, err) : 0;
}

static int read_banner(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    return mig_expect(r->opts.recv_fd, MIG_BANNER, MIG_BANNER_LEN, cancel_fd, "secondary",
                      "banner (\"xl migration receiver ready...\")", r->opts.timeout_ms, err);
}

/* The guard first: a resume cleared it, and our death while suspended must
 * leave the guest running. */
static int suspend_guest(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    struct ls_backend *be = be_of(r);
#ifdef LOCKSTEP_FAULT_HOOKS
    /* The proxy failed on purpose (colo_p_suspend): our suspend lands only
     * after its PROXY_FAILED row let it go (at most 10 s, a cancel sooner). */
    for (int ms = 0; atomic_load(&r->hold_suspend) && ms < 10000; ms++)
        if (poll(&(struct pollfd){ .fd = cancel_fd, .events = POLLIN }, 1, 1) > 0)
            break;
#endif
    r->suspend_start_ns = io_monotonic_ns();
    int rc = be->ops->set_guard ? be->ops->set_guard(be, r->opts.domid, LS_GUARD_RESUME, err) : 0;
    if (rc == 0)
        rc = be->ops->suspend(be, r->opts.domid, SUSPEND_TIMEOUT_MS, err);
    if (rc < 0)
        return rc;
    r->c.last.digest[0] = '\0';
    if (r->opts.digest && be->ops->digest &&
        (rc = be->ops->digest(be, r->opts.domid, r->c.last.digest, err)) < 0)
        return rc;
    if (r->sv.info.type != LS_GUEST_HVM || r->sv.dm_qemu)
        return 0;   /* a real QEMU's state is saved next, over QMP (devmodel.def) */
    free(r->sv.dm_state);
    r->sv.dm_state = NULL;
    rc = dm_standin_save(&r->sv.info, &r->sv.dm_state, &r->sv.dm_len);
    return rc < 0 ? ls_err(err, rc, "saving the device model state: out of memory") : 0;
}

static int resume_guest(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    int rc = be_of(r)->ops->resume(be_of(r), r->opts.domid, true, err);
    if (rc == 0)
        r->op.resumed_ns = io_monotonic_ns();
    return rc;
}

static int read_svm_suspended(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    return colo_read_state(r->opts.recv_fd, LIBXL_CHECKPOINT_SVM_SUSPENDED, cancel_fd,
                           "secondary", err);
}

static int read_svm_ready(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    return colo_read_state(r->opts.recv_fd, LIBXL_CHECKPOINT_SVM_READY, cancel_fd, "secondary",
                           err);
}

static int read_svm_resumed(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    return colo_read_state(r->opts.recv_fd, LIBXL_CHECKPOINT_SVM_RESUMED, cancel_fd,
                           "secondary", err);
}

/* Until the interval passes, or the owner asks for a checkpoint or a stop
 * (eventfds: these are facts from outside, reported as events). */
static int wait_interval(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    struct pollfd p[3] = { { .fd = cancel_fd, .events = POLLIN },
                           { .fd = r->c.stop_fd, .events = POLLIN },
                           { .fd = r->c.trigger_fd, .events = POLLIN } };
    uint64_t deadline = io_monotonic_ns() + (uint64_t)r->interval_ms * 1000000u;
    for (;;) {
        uint64_t now = io_monotonic_ns();
        int ms = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
        int n = poll(p, 3, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ls_err(err, -errno, "waiting for the checkpoint interval: %s", strerror(errno));
        if (p[0].revents)
            return ls_err(err, -ECANCELED, "stopped waiting for the checkpoint interval");
        if (p[1].revents)
            return COLO_PRIMARY_E_STOP_REQUESTED;    /* left readable: a stop stays asked */
        uint64_t v;
        if (p[2].revents && read(r->c.trigger_fd, &v, sizeof(v)) == sizeof(v))
            return COLO_PRIMARY_E_TRIGGERED;
        if (n == 0)
            return COLO_PRIMARY_E_INTERVAL;
    }
}

/* Before any go: whatever state our guest is in, it runs, its guard released. */
static int settle(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_primary_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->opts.domid, &info, err);
    if (rc == 0 && info.state == LS_RUN_SUSPENDED) {
        rc = be->ops->resume(be, r->opts.domid, true, err);
        if (rc < 0)
            return ls_err(err, rc, "domain %u could not be resumed after replication ended: it is "
                          "left suspended (%s)", r->opts.domid, err->msg);
    }
    if (rc == 0 && be->ops->set_guard)
        rc = be->ops->set_guard(be, r->opts.domid, LS_GUARD_NONE, err);
    if (rc < 0)
        return rc;
    /* A QEMU that died is told in the outcome with how it ended. */
    struct ls_errbuf why;
    ls_err_clear(&why);
    r->dm_end_known = r->sv.dm_qemu && be->ops->dm_info &&
                      dm_info_settled(be, r->opts.domid, &r->dm_end, &why) == 0;
    bool dead = r->dm_end_known && !r->dm_end.alive;   /* no cont to a QEMU that is gone */
    return r->dm_stopped && !dead ? COLO_PRIMARY_E_SETTLED_QEMU : COLO_PRIMARY_E_SETTLED;
}

/* ---- actions: start ---------------------------------------------------------------- */

static int colo_p_resume(struct fsm *m, const struct fsm_ev *ev);

static int colo_p_arm(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PRIMARY_E_ARMED, arm, m->owner, "arm the guard");
}

/* ---- the network proxy (colo_proxy.def): each step awaited as PROXY_DONE -------------- */

static int colo_p_start_proxy(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    return colo_proxy_begin(&r->proxy, m, &r->proxy_join, COLO_PRIMARY_E_PROXY_FAILED,
                            r->proxy_start_ev);
}

static int colo_p_proxy_cut(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    fsm_post(&r->proxy.m, COLO_PROXY_E_CUT, 0, NULL);
    return 0;
}

static int colo_p_proxy_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    fsm_post(&r->proxy.m, COLO_PROXY_E_CHECKPOINT, 0, NULL);
    return 0;
}

static int colo_p_proxy_release(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    fsm_post(&r->proxy.m, COLO_PROXY_E_RELEASE, 0, NULL);
    return 0;
}

/* Why this checkpoint: the interval, the proxy's divergence, or the owner. */
static void count_cause(struct colo_primary_role *r, int ev)
{
    if (ev == COLO_PRIMARY_E_INTERVAL)
        r->c.ck_periodic++;
    else if (atomic_exchange(&r->proxy.n.divergence_pending, false))
        r->c.ck_divergence++;
    else
        r->c.ck_manual++;
}

/* ---- the disks (colo_disk.def): each job awaited as DISK_DONE / DISK_FAILED ----------- */

int colo_disks_configure(struct colo_disks *d, struct colo_common *c,
                         const struct ls_colo_disk_opts *o, bool secondary,
                         struct ls_errbuf *err)
{
    if (!o || !o->nbd)
        return 0;
    int rc = colo_disk_parse_nbd(o->nbd, &d->cfg.nbd, err);
    if (rc < 0 || !secondary)
        return rc;
    if (o->ndisks < 1 || o->ndisks > LS_COLO_DISKS_MAX)
        return ls_err(err, -EINVAL, "colo secondary: %u disks (1 to %u)", o->ndisks,
                      LS_COLO_DISKS_MAX);
    for (unsigned i = 0; i < o->ndisks; i++) {
        if (!o->files[i] || o->files[i][0] != '/' || strchr(o->files[i], ',') ||
            strlen(o->files[i]) >= sizeof(d->files[i]) || o->formats[i] > 1)
            return ls_err(err, -EINVAL, "colo secondary: disk %u: %s is not an absolute path "
                          "without ',' (raw or qcow2)", i, o->files[i] ? o->files[i] : "(none)");
        snprintf(d->files[i], sizeof(d->files[i]), "%s", o->files[i]);
        d->formats[i] = o->formats[i];
    }
    d->cfg.ndisks = o->ndisks;
    if (o->qemu_img)
        snprintf(d->cfg.qemu_img, sizeof(d->cfg.qemu_img), "%s", o->qemu_img);
    if (o->image_dir) {
        if (strlen(o->image_dir) >= sizeof(d->cfg.image_dir) - 32)
            return ls_err(err, -ENAMETOOLONG, "colo secondary: image directory %s is too long",
                          o->image_dir);
        snprintf(d->cfg.image_dir, sizeof(d->cfg.image_dir), "%s", o->image_dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(d->cfg.image_dir, sizeof(d->cfg.image_dir), "%.150s/lockstep-colo-disk.XXXXXX",
                 tmp && tmp[0] ? tmp : "/tmp");
        if (!mkdtemp(d->cfg.image_dir))
            return ls_err(err, -errno, "colo secondary: cannot make a directory for the active "
                          "and hidden images (%s): %s", d->cfg.image_dir, strerror(errno));
        d->made_dir = true;
    }
    c->disk.ndisks = o->ndisks;
    c->disk.state = LS_COLO_DISK_STARTING;
    return 0;
}

int colo_disks_job(struct colo_disks *d, struct fsm *m, uint32_t domid, int job, int ev_ok,
                   int ev_fail)
{
    static const char *const what[] = {
        [COLO_DISK_E_SETUP_PRIMARY] = "disk replication setup",
        [COLO_DISK_E_SETUP_SECONDARY] = "disk replication setup",
        [COLO_DISK_E_CHECKPOINT] = "disk checkpoint",
        [COLO_DISK_E_QUERY] = "disk replication status",
        [COLO_DISK_E_TEARDOWN_PRIMARY] = "disk replication teardown",
        [COLO_DISK_E_TEARDOWN_SECONDARY] = "disk replication teardown",
        [COLO_DISK_E_FAILOVER] = "disk failover",
    };
    if (!d->cfg.ndisks) {   /* no disks: the step is done at once */
        fsm_post(m, ev_ok, 0, NULL);
        return 0;
    }
    d->job = job;
    d->job_start_ns = io_monotonic_ns();
    return colo_disk_run(&d->task, m, &d->join, ev_ok, ev_fail, domid, d->info.qmp_path,
                         d->info.log_path, &d->cfg, job, what[job]);
}

int colo_disks_end_job(struct colo_disks *d, struct fsm *m, uint32_t domid, int job, int ev_ok,
                       int ev_fail)
{
    if (!d->set_up) {
        fsm_post(m, ev_ok, 0, NULL);
        return 0;
    }
    d->set_up = false;
    return colo_disks_job(d, m, domid, job, ev_ok, ev_fail);
}

void colo_disks_ended(struct colo_disks *d, struct colo_common *c, bool ok)
{
    if (d->job == COLO_DISK_E_CHECKPOINT || d->job == COLO_DISK_E_SETUP_PRIMARY ||
        d->job == COLO_DISK_E_SETUP_SECONDARY) {
        c->disk.checkpoint_ns = io_monotonic_ns() - d->job_start_ns;
        if (ok && d->job == COLO_DISK_E_CHECKPOINT)
            c->disk.checkpoints++;
    }
    if (d->task.note[0])
        snprintf(c->disk.note, sizeof(c->disk.note), "%.319s", d->task.note);
    if (!ok) {
        snprintf(c->disk.note, sizeof(c->disk.note), "%.319s", d->task.m.err.msg[0]
                 ? d->task.m.err.msg : "the disk job was cancelled");
        c->disk.state = colo_disk_broken(&d->task) ? LS_COLO_DISK_BROKEN : LS_COLO_DISK_FAILED;
    } else if (d->job == COLO_DISK_E_SETUP_PRIMARY || d->job == COLO_DISK_E_SETUP_SECONDARY) {
        c->disk.state = LS_COLO_DISK_REPLICATING;
        d->set_up = true;
    }
}

static int disk_step(struct colo_primary_role *r, struct fsm *m, int job)
{
    return colo_disks_job(&r->disks, m, r->opts.domid, job, COLO_PRIMARY_E_DISK_DONE,
                          COLO_PRIMARY_E_DISK_FAILED);
}

/* Preresume: the first checkpoint sets replication up (the secondary's
 * export is up: it did its setup before SVM_READY), the later ones are
 * applied to it; both before our guest runs again. */
static int colo_p_disk_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    return disk_step(r, m, r->c.disk.state == LS_COLO_DISK_STARTING ? COLO_DISK_E_SETUP_PRIMARY
                                                                     : COLO_DISK_E_CHECKPOINT);
}

static int colo_p_disk_query(struct fsm *m, const struct fsm_ev *ev)
{
    return disk_step(m->owner, m, COLO_DISK_E_QUERY);
}

static int colo_p_cancel_disk(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    if (r->disks.cfg.ndisks)
        fsm_join_cancel(&r->disks.join, -ECANCELED);
    return 0;
}

/* Replication ended: drop the NBD clients, if the setup made them. The
 * role's error (why it ended) stays the first. */
static int colo_p_disk_teardown(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    return colo_disks_end_job(&r->disks, m, r->opts.domid, COLO_DISK_E_TEARDOWN_PRIMARY,
                              COLO_PRIMARY_E_DISK_DONE, COLO_PRIMARY_E_DISK_FAILED);
}

/* The teardown's end: the disk state it leaves; a teardown that failed is
 * said after the error that ended replication. */
static void disk_torn_down(struct colo_primary_role *r, const struct fsm_ev *ev,
                           enum ls_colo_disk_state st)
{
    struct colo_disks *d = &r->disks;
    if (d->job != COLO_DISK_E_TEARDOWN_PRIMARY)
        return;
    d->job = 0;
    if (ev->id == COLO_PRIMARY_E_DISK_FAILED) {
        const char *why = d->task.m.err.msg;
        if (strcmp(r->m.err.msg, why) != 0)
            ls_err_append(&r->m.err, "; its disks' replication could not be dropped: %s", why);
        snprintf(r->c.disk.note, sizeof(r->c.disk.note), "%.319s", why);
        r->c.disk.state = LS_COLO_DISK_FAILED;
    } else if (r->c.disk.state == LS_COLO_DISK_REPLICATING) {
        r->c.disk.state = st;
    }
}

static int colo_p_settle(struct fsm *m, const struct fsm_ev *ev);

/* Dropped (or not: said after the error); now our guest runs on alone. */
static int colo_p_disk_dropped(struct fsm *m, const struct fsm_ev *ev)
{
    disk_torn_down(m->owner, ev, LS_COLO_DISK_BROKEN);
    return colo_p_settle(m, ev);
}

/* A disk job failed, or QEMU reports replication broken: replication ends. */
static int colo_p_disk_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    colo_disks_ended(&r->disks, &r->c, false);
    fsm_join_cancel(&r->sv.tasks, -ECANCELED);
    return 0;
}

/* A resume that cannot start fails in RESUMING: failing here would await a
 * disk job whose report is taken. */
static int colo_p_disk_resume(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    if (r->disks.cfg.ndisks)
        colo_disks_ended(&r->disks, &r->c, true);
    int rc = colo_p_resume(m, ev);
    if (rc < 0)
        fsm_post(m, COLO_PRIMARY_E_FAIL, rc, NULL);
    return 0;
}

static int colo_p_read_banner(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PRIMARY_E_BANNER, read_banner, m->owner, "read banner");
}

static int colo_p_start_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    struct save_role *s = &r->sv;
    s->opts = (struct ls_save_opts){ .domid = r->opts.domid, .fd = r->opts.send_fd,
                                     .format = LS_FORMAT_XL, .live = true };
    s->ckpt_to = m;
    s->ckpt_written_ev = COLO_PRIMARY_E_CHECKPOINT_WRITTEN;
    s->control_written_ev = COLO_PRIMARY_E_CONTROL_WRITTEN;
    fsm_init(&s->stx, &stream_tx_fsm_def, m->sched, NULL, s, "stream_tx[colo-%u]", r->opts.domid);
    char name[40];
    snprintf(name, sizeof(name), "memtask[colo-%u]", r->opts.domid);
    memtask_init(&s->mem, m->sched, name, memory_thread, r, &s->stx, STREAM_TX_E_MEMORY_DONE);
    r->op.progress_of = &s->mem.helper;
    fsm_join_begin(&s->tasks, m, COLO_PRIMARY_E_TASKS_DONE, COLO_PRIMARY_E_TASKS_FAILED);
    fsm_join_add(&s->tasks, &s->stx);
    fsm_join_add(&s->tasks, &s->mem.m);
    fsm_join_arm(&s->tasks);
    fsm_post(&s->stx, STREAM_TX_E_START, 0, NULL);
    return fsm_defer(m, fsm_join_undo, &s->tasks, "stream and memory tasks");
}

/* The first checkpoint's rounds, with Xen's default policy (5 rounds, or
 * fewer than 50 dirty pages). */
static int colo_p_answer_precopy(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    const struct ls_precopy_stats *st = &r->precopy;
    bool stop = st->iteration >= 5 || (st->dirty_count >= 0 && st->dirty_count < 50);
    io_helper_reply(&r->sv.mem.helper, stop ? LS_POLICY_STOP_AND_COPY : LS_POLICY_CONTINUE_PRECOPY);
    return 0;
}

static int colo_p_answer_logdirty(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    io_helper_reply(&r->sv.mem.helper, 0);   /* no QEMU: no device-model dirty log */
    return 0;
}

/* ---- actions: a checkpoint ------------------------------------------------------------ */

/* Tests (fault-hook builds): LOCKSTEP_PROXY_FAULT=suspend:N makes the
 * proxy fail as our guest's Nth suspend starts, and holds that suspend
 * until the PROXY_FAILED row let it go, so the rows of a proxy failure
 * with a suspend in flight are taken on demand. */
static void proxy_fault_at_suspend(struct colo_primary_role *r)
{
#ifdef LOCKSTEP_FAULT_HOOKS
    const char *f = getenv("LOCKSTEP_PROXY_FAULT");
    unsigned n;
    if (!f || sscanf(f, "suspend:%u", &n) != 1 || n != r->c.checkpoints + 1 ||
        fsm_is_final(&r->proxy.m) || r->proxy.m.state == COLO_PROXY_S_OFF)
        return;
    atomic_store(&r->hold_suspend, true);
    fsm_fail(&r->proxy.m, -EIO, "proxy: injected failure as our guest's suspend %u started "
             "(LOCKSTEP_PROXY_FAULT)", n);
    fsm_post(&r->proxy.m, COLO_PROXY_E_FAIL, -EIO, NULL);
#else
    (void)r;
#endif
}

static int colo_p_suspend(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    proxy_fault_at_suspend(r);
    return io_work_start(m, r->sv.dm_qemu ? COLO_PRIMARY_E_GUEST_SUSPENDED_QEMU
                                          : COLO_PRIMARY_E_GUEST_SUSPENDED,
                         suspend_guest, m->owner, "suspend guest");
}

/* One QMP job on our QEMU (devmodel.def), reported as DM_DONE or DM_FAILED,
 * over the one connection the role keeps to it. */
static int start_dm_job(struct fsm *m, struct dm_task *t, struct fsm_join *j, int job,
                        const char *what)
{
    struct colo_primary_role *r = m->owner;
    int rc = r->dm_link.owner ? 0 : dm_link_defer_close(&r->dm_link, m);   /* runs after the jobs' */
    if (rc < 0)
        return rc;
    r->dm_join = j;
    *(job == DEVMODEL_E_SAVE_LINKED ? &r->dm_save_start_ns : &r->dm_cont_start_ns) =
        io_monotonic_ns();
    rc = dm_task_run(t, m, j, COLO_PRIMARY_E_DM_DONE, COLO_PRIMARY_E_DM_FAILED, r->opts.domid,
                     &r->sv.dm, job, what);
    dm_task_use_link(t, &r->dm_link);   /* its first command is dispatched later */
    return rc;
}

/* Our guest is suspended: stop its QEMU and save its device state (spec 4.1
 * step 1) before the suspend callback is answered. */
static int colo_p_dm_save(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    free(r->sv.dm_save.state);
    r->sv.dm_save.state = NULL;
    r->dm_stopped = true;
    return start_dm_job(m, &r->sv.dm_save, &r->sv.dm_save_join, DEVMODEL_E_SAVE_LINKED,
                        "device model save");
}

/* COLO: the save runs while the secondary's SVM_SUSPENDED is read (each
 * ends in its own row of SAVING_DM): the QMP stop and save, ~2.6 ms on
 * QEMU 7.2, no longer follow that read. */
static int colo_p_dm_save_read(struct fsm *m, const struct fsm_ev *ev)
{
    int rc = colo_p_dm_save(m, ev);
    return rc < 0 ? rc : io_work_start(m, COLO_PRIMARY_E_SVM_SUSPENDED, read_svm_suspended,
                                       m->owner, "read SVM_SUSPENDED");
}

static int colo_p_drop_read_cancel_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    io_work_abandon(m);   /* the read: a late end of it must not reach the settle */
    fsm_join_cancel(&r->sv.tasks, -ECANCELED);
    return 0;
}

/* Our guest runs again: so does its QEMU, if it ran before the checkpoint
 * stopped it (step 4: cont). */
static int colo_p_dm_cont(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    r->dm_stopped = false;
    r->dm_cont_start_ns = 0;
    if (!r->sv.dm_save.was_running) {
        fsm_post(m, COLO_PRIMARY_E_DM_DONE, 0, NULL);
        return 0;
    }
    return start_dm_job(m, &r->sv.dm_cont, &r->sv.dm_cont_join, DEVMODEL_E_CONT,
                        "device model cont");
}

static int colo_p_cancel_dm(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    fsm_join_cancel(r->dm_join, -ECANCELED);
    return 0;
}

static int colo_p_dm_cont_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    /* The first failure stays the error; this one is told besides. */
    fprintf(stderr, "lockstep: domain %u runs again but its QEMU does not: %s\n",
            r->opts.domid, r->sv.dm_cont.m.err.msg);
    return 0;
}

static int colo_p_read_svm_suspended(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PRIMARY_E_SVM_SUSPENDED, read_svm_suspended, m->owner,
                         "read SVM_SUSPENDED");
}

static int colo_p_answer_suspend(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    struct save_role *s = &r->sv;
    if (s->dm_save.state) {            /* our QEMU's, for EMULATOR_CONTEXT */
        free(s->dm_state);
        s->dm_state = s->dm_save.state;
        s->dm_len = s->dm_save.state_len;
        s->dm_save.state = NULL;
    }
    r->c.dm.digest[0] = '\0';
    if (s->dm_state)
        dm_state_digest(s->dm_state, s->dm_len, r->c.dm.digest);
    r->c.dm.bytes = s->dm_len;
    r->c.dm.pid = s->dm_qemu ? s->dm.pid : 0;
    r->op.suspended_ns = r->suspend_start_ns;
    io_helper_reply(&r->sv.mem.helper, 1);
    return 0;
}

static int colo_p_write_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    fsm_post(&r->sv.stx, STREAM_TX_E_CHECKPOINT, 0, NULL);
    return 0;
}

static int colo_p_answer_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    if (ev->id == COLO_PRIMARY_E_INTERVAL || ev->id == COLO_PRIMARY_E_TRIGGERED)
        count_cause(r, ev->id);   /* Remus: the next checkpoint starts here */
    io_helper_reply(&r->sv.mem.helper, 1);
    return 0;
}

static int colo_p_read_svm_ready(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PRIMARY_E_SVM_READY, read_svm_ready, m->owner,
                         "read SVM_READY");
}

static int colo_p_resume(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    return io_work_start(m, r->sv.dm_qemu ? COLO_PRIMARY_E_GUEST_RESUMED_QEMU
                                          : COLO_PRIMARY_E_GUEST_RESUMED,
                         resume_guest, m->owner, "resume guest");
}

static int colo_p_read_svm_resumed(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PRIMARY_E_SVM_RESUMED, read_svm_resumed, m->owner,
                         "read SVM_RESUMED");
}

/* A checkpoint is complete: count it and tell the owner. */
static void report_checkpoint(struct colo_primary_role *r)
{
    uint64_t done = atomic_load(&r->sv.mem.helper.progress_done);
    struct ls_colo_checkpoint *c = &r->c.last;
    c->number = ++r->c.checkpoints;
    c->domid = r->opts.domid;
    c->bytes = done - r->bytes_at_last;
    c->pages = c->bytes / 4096;
    c->pause_ns = r->op.resumed_ns > r->suspend_start_ns ? r->op.resumed_ns - r->suspend_start_ns
                                                           : 0;
    r->bytes_at_last = done;
    r->c.dm.ns = 0;
    if (r->sv.dm_qemu) {             /* QMP time: each job's start to its last reply */
        r->c.dm.ns = r->sv.dm_save.last_reply_ns - r->dm_save_start_ns;
        if (r->dm_cont_start_ns)
            r->c.dm.ns += r->sv.dm_cont.last_reply_ns - r->dm_cont_start_ns;
    }
    if (r->opts.on_checkpoint)
        r->opts.on_checkpoint(&r->op, c, r->opts.cb_data);
    if (r->c.role != LS_COLO_PROTECTED) {
        r->c.role = LS_COLO_PROTECTED;
        if (r->opts.on_role)
            r->opts.on_role(&r->op, LS_COLO_PROTECTED, r->opts.mode == LS_COLO_MODE_REMUS
                            ? "the first checkpoint is sent" : "the secondary acknowledged the "
                            "first checkpoint", r->opts.cb_data);
    }
}

static int colo_p_checkpoint_done(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    report_checkpoint(r);
    io_helper_reply(&r->sv.mem.helper, 1);   /* postcopy */
    return 0;
}

static int colo_p_wait(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, wait_interval, m->owner, "checkpoint interval");
}

static int colo_p_write_new(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    count_cause(r, ev->id);
    colo_state_record(r->sv.control, LIBXL_CHECKPOINT_NEW);
    r->sv.control_job = (struct write_job){ r->opts.send_fd, r->sv.control, 16,
                                            "CHECKPOINT_STATE(NEW)" };
    fsm_post(&r->sv.stx, STREAM_TX_E_CONTROL, 0, NULL);
    return 0;
}

static int colo_p_answer_wait(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    io_helper_reply(&r->sv.mem.helper, 1);
    return 0;
}

static int colo_p_answer_postcopy(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    io_helper_reply(&r->sv.mem.helper, 1);
    return 0;
}

/* Remus: the checkpoint is on the wire; nothing comes back. */
static int colo_p_remus_sent(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    report_checkpoint(r);
    return io_work_start(m, IO_WORK_EV_FROM_FN, wait_interval, m->owner, "checkpoint interval");
}

/* ---- actions: stop, loss, teardown -------------------------------------------------- */

static int colo_p_request_stop(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    uint64_t one = 1;
    if (write(r->c.stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return fsm_fail(m, -errno, "%s: cannot note the stop: %s", m->name, strerror(errno));
    return 0;
}

/* The stream ends as a plain one does, a libxc END then the libxl END, where
 * the next checkpoint (COLO: its CHECKPOINT_STATE(NEW)) was due: a Remus
 * secondary's libxc layer reads there, a COLO secondary's libxl layer, and
 * a stream reader (lockstep inspect) sees a complete stream. */
static int colo_p_write_stop(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    memset(r->sv.control, 0, sizeof(r->sv.control));
    r->sv.control_job = (struct write_job){ r->opts.send_fd, r->sv.control, 16,
                                            "END records (replication stops)" };
    fsm_post(&r->sv.stx, STREAM_TX_E_CONTROL, 0, NULL);
    return 0;
}

/* The stop is on the wire: the memory task waiting in wait_checkpoint
 * (Remus: checkpoint) ends, and the writer with it. */
static int colo_p_end_replication(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    fsm_join_cancel(&r->sv.tasks, -ECANCELED);
    return 0;
}

static int colo_p_cancel_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    fsm_join_cancel(&r->sv.tasks, -ECANCELED);
    return 0;
}

/* The proxy failed while our guest's suspend was in flight: the tasks are
 * cancelled and the suspend is awaited (a test's held suspend is let go). */
static int colo_p_await_suspend(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    atomic_store(&r->hold_suspend, false);
    return colo_p_cancel_tasks(m, ev);
}

static int colo_p_settle(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, settle, m->owner, "settle our guest");
}

static int colo_p_abandon_and_settle(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_abandon(m);
    return colo_p_settle(m, ev);
}

static void set_role(struct colo_primary_role *r, enum ls_colo_role role, const char *why)
{
    r->c.role = role;
    if (r->opts.on_role)
        r->opts.on_role(&r->op, role, why, r->opts.cb_data);
}

/* "; its QEMU (pid N) was killed by signal 9" after the error, once. */
static void tell_dm_fate(struct colo_primary_role *r)
{
    if (!r->dm_end_known || r->dm_end_told)
        return;
    r->dm_end_told = true;
    dm_append_fate(&r->m.err, &r->dm_end);
}

static int colo_p_outcome_unprotected(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    tell_dm_fate(r);
    char why[LS_ERRBUF_LEN + 128];
    snprintf(why, sizeof(why), "replication ended after checkpoint %u (the secondary, or the "
             "link, or our QEMU failed): %s", r->c.checkpoints, fsm_errmsg(m));
    set_role(r, LS_COLO_UNPROTECTED, why);
    return 0;
}

static int colo_p_outcome_stopped(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_primary_role *r = m->owner;
    disk_torn_down(r, ev, LS_COLO_DISK_STOPPED);
    char why[LS_ERRBUF_LEN + 96];
    snprintf(why, sizeof(why), "replication stopped in order; the secondary was told%s%s",
             r->c.disk.state == LS_COLO_DISK_FAILED ? "; but " : "",
             r->c.disk.state == LS_COLO_DISK_FAILED ? r->c.disk.note : "");
    ls_err_clear(&m->err);    /* the tasks' cancel is how an orderly stop ends them */
    set_role(r, LS_COLO_STOPPED, why);
    return 0;
}

/* ---- the API ---------------------------------------------------------------------- */

static void colo_primary_done(struct fsm *m, int rc)
{
    struct colo_primary_role *r = m->owner;
    if (r->c.disk.state == LS_COLO_DISK_STARTING || r->c.disk.state == LS_COLO_DISK_REPLICATING)
        r->c.disk.state = LS_COLO_DISK_STOPPED;
    if (r->c.role == LS_COLO_STARTING || r->c.role == LS_COLO_PROTECTED)
        r->c.role = LS_COLO_ENDED;
    tell_dm_fate(r);
    op_finish(&r->op, rc, fsm_errmsg(m));
}

static void colo_primary_free(struct ls_op *op)
{
    struct colo_primary_role *r = (struct colo_primary_role *)op;
    io_fd_set_timeout(r->opts.send_fd, 0);
    io_fd_set_timeout(r->opts.recv_fd, 0);
    if (r->c.trigger_fd >= 0)
        close(r->c.trigger_fd);
    if (r->c.stop_fd >= 0)
        close(r->c.stop_fd);
    free(r->sv.config_json);
    free(r->sv.head);
    free(r->sv.tail);
    free(r->sv.ckpt);
    free(r->sv.dm_state);
    free(r->sv.dm_save.state);
    free(r);
}

int colo_primary_role_start(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                            const struct ls_colo_net_opts *net,
                            const struct ls_colo_disk_opts *disks, ls_op_done_fn *done,
                            void *data, struct ls_op **out, struct ls_errbuf *err)
{
    if (disks && disks->nbd && opts->mode != LS_COLO_MODE_COLO)
        return ls_err(err, -EINVAL, "colo primary: disks are replicated in COLO mode only "
                      "(Remus leaves them to the storage, as libxl does)");
    if (net && net->world && opts->mode == LS_COLO_MODE_COLO && !net->listen)
        return ls_err(err, -EINVAL, "colo primary: a network needs the address the secondary's "
                      "proxy sends its frames to (listen)");
    if (opts->send_fd < 0 || opts->recv_fd < 0)
        return ls_err(err, -EINVAL, "colo primary: the stream and back-channel fds are required");
    if (opts->mode != LS_COLO_MODE_COLO && opts->mode != LS_COLO_MODE_REMUS)
        return ls_err(err, -EINVAL, "colo primary: unknown mode %d", opts->mode);
    struct colo_primary_role *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(err, -ENOMEM, "out of memory");
    r->opts = *opts;
    if (colo_disks_configure(&r->disks, &r->c, disks, false, err) < 0) {
        free(r);
        return err->rc;
    }
    r->c.disk.state = LS_COLO_DISK_NONE;   /* STARTING once arm finds the disks */
    r->c.trigger_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->c.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->op = (struct ls_op){ .ctx = ctx, .root = &r->m, .domid = opts->domid, .done = done,
                            .data = data, .free_role = colo_primary_free, .colo = &r->c };
    if (!r->opts.timeout_ms)
        r->opts.timeout_ms = COLO_DEFAULT_TIMEOUT_MS;
    r->interval_ms = opts->interval_ms ? opts->interval_ms
                     : opts->mode == LS_COLO_MODE_REMUS ? REMUS_DEFAULT_INTERVAL_MS
                                                         : COLO_DEFAULT_INTERVAL_MS;
    int rc = r->c.trigger_fd < 0 || r->c.stop_fd < 0
                 ? ls_err(err, -errno, "colo primary: eventfd: %s", strerror(errno)) : 0;
    if (rc == 0)
        rc = mig_prepare_fd(r->opts.send_fd, r->opts.timeout_ms, err);
    if (rc == 0)
        rc = mig_prepare_fd(r->opts.recv_fd, r->opts.timeout_ms, err);
    if (rc < 0) {
        colo_primary_free(&r->op);
        return rc;
    }
    fsm_init(&r->m, &colo_primary_fsm_def, &ctx->sched.sched, colo_primary_done, r,
             "colo_primary[%u]", opts->domid);
    colo_proxy_init(&r->proxy, ctx->be, opts->domid, net, r->opts.timeout_ms, &r->m,
                    COLO_PRIMARY_E_PROXY_DONE, -1, r->c.trigger_fd);
    r->proxy_start_ev = colo_proxy_start_event(net, false, opts->mode);
    r->c.proxy = &r->proxy;
    ctx->live_ops++;
    fsm_post(&r->m, COLO_PRIMARY_E_START, 0, NULL);
    *out = &r->op;
    return 0;
}
