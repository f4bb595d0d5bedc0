/* states/colo_secondary.c - actions of the COLO/Remus secondary (colo_secondary.def). */
#include "states/colo.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/fdio.h"
#include "io/records.h"
#include "io/work.h"
#include "qmp/qmp.h"
#include "states/dm_standin.h"
#include "states/migrate.h"

#define FSM_PREFIX COLO_SECONDARY
#define FSM_DEF_FILE "states/colo_secondary.def"
#include "fsm/gen_table.h"

#define SUSPEND_TIMEOUT_MS 60000
#define FENCE_TIMEOUT_MS   30000    /* a fencing command that hangs has failed */

extern char **environ;

static struct ls_backend *be_of(struct colo_secondary_role *r) { return r->op.ctx->be; }

/* ---- the memory task's callbacks ------------------------------------------------- */

static int cb_static_data_done(unsigned missing, void *data)
{
    struct colo_secondary_role *r = data;
    r->rs.static_data_missing = missing;
    return io_helper_call(&r->rs.mem.helper, &r->m, COLO_SECONDARY_E_CB_STATIC_DATA_DONE, NULL,
                          -1);
}

static void cb_restore_results(uint64_t store_gfn, uint64_t console_gfn, void *data)
{
    struct colo_secondary_role *r = data;
    r->rs.store_gfn = store_gfn;
    r->rs.console_gfn = console_gfn;
    io_helper_call(&r->rs.mem.helper, &r->m, COLO_SECONDARY_E_CB_RESTORE_RESULTS, NULL, 0);
}

static int cb_checkpoint(void *data)
{
    struct colo_secondary_role *r = data;
    return io_helper_call(&r->rs.mem.helper, &r->m, COLO_SECONDARY_E_CB_CHECKPOINT, NULL,
                          LS_CHECKPOINT_ERROR);
}

static int cb_postcopy(void *data)
{
    struct colo_secondary_role *r = data;
    return io_helper_call(&r->rs.mem.helper, &r->m, COLO_SECONDARY_E_CB_POSTCOPY, NULL, 0);
}

static int cb_wait_checkpoint(void *data)
{
    struct colo_secondary_role *r = data;
    return io_helper_call(&r->rs.mem.helper, &r->m, COLO_SECONDARY_E_CB_WAIT_CHECKPOINT, NULL,
                          0);
}

static int cb_suspend(void *data)
{
    struct colo_secondary_role *r = data;
    return io_helper_call(&r->rs.mem.helper, &r->m, COLO_SECONDARY_E_CB_SUSPEND, NULL, 0);
}

static void cb_progress(uint64_t done, uint64_t total, void *data)
{
    struct colo_secondary_role *r = data;
    io_helper_progress(&r->rs.mem.helper, done, total);
}

static int memory_thread(struct io_helper *h, void *arg, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_restore_params p = {
        .domid = r->rs.domid, .io_fd = r->opts.recv_fd, .send_back_fd = r->opts.send_fd,
        .stream_type = r->opts.mode == LS_COLO_MODE_REMUS ? LS_STREAM_REMUS : LS_STREAM_COLO,
        .cancel_fd = h->cancel_fd, .stream_offset = r->rs.offset,
    };
    struct ls_restore_callbacks cb = {
        .static_data_done = cb_static_data_done, .restore_results = cb_restore_results,
        .checkpoint = cb_checkpoint, .postcopy = cb_postcopy,
        .wait_checkpoint = cb_wait_checkpoint, .suspend = cb_suspend, .progress = cb_progress,
        .data = r,
    };
    return be_of(r)->ops->restore_memory(be_of(r), &p, &cb, err);
}

/* ---- backend calls and waits on the threadpool ----------------------------------- */

static int write_banner(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    return mig_send(r->opts.send_fd, MIG_BANNER, MIG_BANNER_LEN, cancel_fd, "primary", "banner",
                    err);
}

static int write_state(struct colo_secondary_role *r, uint32_t id, int cancel_fd,
                       struct ls_errbuf *err)
{
    uint8_t rec[16];
    colo_state_record(rec, id);
    char what[64];
    snprintf(what, sizeof(what), "CHECKPOINT_STATE(%s)", libxl_checkpoint_state_name(id));
    return mig_send(r->opts.send_fd, rec, sizeof(rec), cancel_fd, "primary", what, err);
}

static int write_ready(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    return write_state(arg, LIBXL_CHECKPOINT_SVM_READY, cancel_fd, err);
}

static int write_resumed(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    int rc = write_state(r, LIBXL_CHECKPOINT_SVM_RESUMED, cancel_fd, err);
    if (rc < 0 || !r->rs.dm_qemu || !be_of(r)->ops->dm_prepare_standby)
        return rc;
    /* The next checkpoint's QEMU starts now, in the interval, not in its
     * pause, and once the primary has SVM_RESUMED: the daemon's spawn is not
     * in the checkpoint either. A failure here is met again, and reported,
     * by that load, which starts one itself: it must not end replication. */
    struct ls_errbuf why;
    ls_err_clear(&why);
    if (be_of(r)->ops->dm_prepare_standby(be_of(r), r->rs.domid, NULL, &why) < 0 ||
        !be_of(r)->ops->dm_standby_info ||
        be_of(r)->ops->dm_standby_info(be_of(r), r->rs.domid, &r->standby, &why) < 0)
        r->standby.present = false;   /* the load asks again */
    return 0;
}

static int write_suspended(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    return write_state(arg, LIBXL_CHECKPOINT_SVM_SUSPENDED, cancel_fd, err);
}

/* Our copy's disks, replicas of the primary's: its guest writes them
 * through the replication top the setup adds (disk_info: their QEMU). */
static int attach_disks(struct colo_secondary_role *r, struct ls_errbuf *err)
{
    struct ls_backend *be = be_of(r);
    struct colo_disks *d = &r->disks;
    if (!d->cfg.ndisks)
        return 0;
    if (r->rs.config.type != LS_GUEST_HVM || !be->ops->disk_attach || !be->ops->disk_info)
        return ls_err(err, -EOPNOTSUPP, "our copy (domain %u) cannot have replicated disks: "
                      "only an HVM guest's are (its QEMU's), on a backend that has them",
                      r->rs.domid);
    int rc = 0;
    for (unsigned i = 0; i < d->cfg.ndisks && rc == 0; i++)
        rc = be->ops->disk_attach(be, r->rs.domid, d->files[i], d->formats[i], true, err);
    if (rc == 0)
        rc = be->ops->disk_info(be, r->rs.domid, &d->info, err);
    return rc < 0 ? ls_err(err, rc, "our copy's disks: %s", err->msg) : 0;
}

static int create_domain(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_domain_config cfg = r->rs.config;
    cfg.guard = true;    /* destroyed if we die before it holds a whole checkpoint */
    int rc = be_of(r)->ops->create_for_restore(be_of(r), &cfg, &r->rs.domid, err);
    if (rc < 0)
        return rc;
    if ((rc = attach_disks(r, err)) < 0) {
        /* No copy without its disks: this state's failure knows no domain. */
        struct ls_errbuf why;
        ls_err_clear(&why);
        be_of(r)->ops->destroy(be_of(r), r->rs.domid, &why);
        return rc;
    }
    r->rs.domain_created = true;
    r->op.domid = r->rs.domid;
    return 0;
}

static int report(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_backend *be = be_of(r);
    r->c.last.digest[0] = '\0';
    if (r->opts.digest && be->ops->digest)
        return be->ops->digest(be, r->rs.domid, r->c.last.digest, err);
    return 0;
}

/* The last applied checkpoint's device state into the device model. A
 * stand-in's needs nothing (it has no process); a real QEMU's goes to the
 * backend's dm_load_checkpoint (a standby QEMU swapped in, on Debian's 7.2),
 * which leaves the new QEMU paused with exactly that state. */
static int load_applied_dm(struct colo_secondary_role *r, int cancel_fd, struct ls_errbuf *err)
{
    struct ls_errbuf why;
    ls_err_clear(&why);
    if (!r->applied_dm || dm_standin_check(r->applied_dm, r->applied_dm_len, &why) == 0)
        return 0;
    struct ls_backend *be = be_of(r);
    if (!be->ops->dm_load_checkpoint || !be->ops->dm_info)
        return ls_err(err, -EOPNOTSUPP, "checkpoint %u carries a real QEMU's device state, and "
                      "the %s backend cannot load one per checkpoint", r->c.checkpoints,
                      be->ops->name);
    int fd = memfd_create("colo-device-state", MFD_CLOEXEC);
    if (fd < 0)
        return ls_err(err, -errno, "checkpoint %u: memfd for the device state: %s",
                      r->c.checkpoints, strerror(errno));
    int rc = io_write_all(fd, r->applied_dm, r->applied_dm_len, cancel_fd);
    if (rc < 0)
        ls_err(err, rc, "checkpoint %u: staging the device state: %s", r->c.checkpoints,
               strerror(-rc));
    else if (lseek(fd, 0, SEEK_SET) < 0)
        rc = ls_err(err, -errno, "checkpoint %u: rewinding the device state: %s",
                    r->c.checkpoints, strerror(errno));
    else
        rc = be->ops->dm_load_checkpoint(be, r->rs.domid, fd, err);
    close(fd);
    if (rc == 0)
        rc = be->ops->dm_info(be, r->rs.domid, &r->rs.dm, err);   /* the QEMU that holds it */
    if (rc < 0)
        return rc;
    r->rs.dm_qemu = true;
    r->dm_loaded_at = r->c.checkpoints;
    return 0;
}

/* A standby to load over our own QMP connection: one alive (started now if
 * none waits) and the state in a memfd for it. Not for a QEMU that loads in
 * place, nor a backend without standbys: load_applied_dm does those. */
static bool loads_linked(struct colo_secondary_role *r)
{
    struct ls_backend *be = be_of(r);
    struct ls_errbuf why;
    ls_err_clear(&why);
    return r->applied_dm && dm_standin_check(r->applied_dm, r->applied_dm_len, &why) < 0 &&
           be->ops->dm_standby_info && be->ops->dm_adopt_standby &&
           be->ops->dm_prepare_standby && !(r->rs.dm_qemu && r->rs.dm.load_state_in_place);
}

static int stage_state(struct colo_secondary_role *r, int cancel_fd, struct ls_errbuf *err)
{
    int fd = memfd_create("colo-device-state", MFD_CLOEXEC);
    if (fd < 0)
        return ls_err(err, -errno, "checkpoint %u: memfd for the device state: %s",
                      r->c.checkpoints, strerror(errno));
    int rc = io_write_all(fd, r->applied_dm, r->applied_dm_len, cancel_fd);
    if (rc < 0 || lseek(fd, 0, SEEK_SET) < 0) {   /* QEMU reads from the shared offset */
        rc = rc < 0 ? rc : -errno;
        close(fd);
        return ls_err(err, rc, "checkpoint %u: staging the device state: %s", r->c.checkpoints,
                      strerror(-rc));
    }
    if (r->load_fd >= 0)
        close(r->load_fd);   /* one a failover left unsent */
    r->load_fd = fd;
    return COLO_SECONDARY_E_STANDBY_READY;
}

static int prepare_standby(struct colo_secondary_role *r, int cancel_fd, struct ls_errbuf *err)
{
    struct ls_backend *be = be_of(r);
    int rc = be->ops->dm_prepare_standby(be, r->rs.domid, NULL, err);
    if (rc == 0)
        rc = be->ops->dm_standby_info(be, r->rs.domid, &r->standby, err);
    if (rc == 0 && (!r->standby.present || !r->standby.alive))
        rc = ls_err(err, -ECHILD, "checkpoint %u: the standby QEMU of our copy (domain %u) is "
                    "not alive to take its device state", r->c.checkpoints, r->rs.domid);
    return rc < 0 ? rc : stage_state(r, cancel_fd, err);
}

static int load_dm(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    /* A standby our link is connected to was alive a moment ago: only the
     * state is staged (a QEMU that died since fails the load, saying so). */
    if (loads_linked(r))
        return r->link_up ? stage_state(r, cancel_fd, err) : prepare_standby(r, cancel_fd, err);
    int rc = load_applied_dm(r, cancel_fd, err);
    r->dm_load_ns = io_monotonic_ns() - r->dm_load_start_ns;
    return rc < 0 ? rc : COLO_SECONDARY_E_DM_LOADED;
}

/* The standby our LOAD_LINKED left paused with this checkpoint's state
 * becomes our device model. */
static int adopt_standby(struct colo_secondary_role *r, struct ls_errbuf *err)
{
    struct ls_backend *be = be_of(r);
    int rc = be->ops->dm_adopt_standby(be, r->rs.domid, &r->rs.dm, err);
    if (rc < 0)
        return ls_err(err, rc, "checkpoint %u: our copy's standby QEMU, loaded, could not "
                      "become its device model: %s", r->c.checkpoints, err->msg);
    r->rs.dm_qemu = true;
    r->dm_loaded_at = r->c.checkpoints;
    return 0;
}

/* Paused (never ran: the first checkpoint) -> unpause; suspended -> resume
 * from the checkpoint; the copy stays guarded (destroyed if we die, while the
 * primary's runs on) with no instant between its start and its guard where
 * the backend can do that in one step. */
static int start_guest(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->rs.domid, &info, err);
    if (rc < 0)
        return rc;
    bool stopped = info.state == LS_RUN_PAUSED || info.state == LS_RUN_SUSPENDED;
    if (stopped && be->ops->start_guarded && be->ops->set_guard) {
        rc = be->ops->set_guard(be, r->rs.domid, LS_GUARD_DESTROY, err);
        if (rc == 0)
            rc = be->ops->start_guarded(be, r->rs.domid, info.state == LS_RUN_SUSPENDED, err);
    } else {
        if (info.state == LS_RUN_PAUSED)
            rc = be->ops->unpause(be, r->rs.domid, err);
        else if (info.state == LS_RUN_SUSPENDED)
            rc = be->ops->resume(be, r->rs.domid, false, err);
        if (rc == 0 && be->ops->set_guard)
            rc = be->ops->set_guard(be, r->rs.domid, LS_GUARD_DESTROY, err);
    }
    if (rc == 0 && r->suspend_start_ns)
        r->c.last.pause_ns = io_monotonic_ns() - r->suspend_start_ns;
    if (rc < 0)
        return rc;
    return r->rs.dm_qemu ? COLO_SECONDARY_E_GUEST_STARTED_QEMU : COLO_SECONDARY_E_GUEST_STARTED;
}

static int adopt_and_start(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    int rc = adopt_standby(r, err);
    r->dm_load_ns = io_monotonic_ns() - r->dm_load_start_ns;
    return rc < 0 ? rc : start_guest(arg, cancel_fd, err);
}

static int suspend_guest(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    r->suspend_start_ns = io_monotonic_ns();
    return be_of(r)->ops->suspend(be_of(r), r->rs.domid, SUSPEND_TIMEOUT_MS, err);
}

static int pause_copy(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->rs.domid, &info, err);
    if (rc == 0 && info.state == LS_RUN_RUNNING)
        rc = be->ops->pause(be, r->rs.domid, err);
    return rc;
}

/* The fencing command: /bin/sh -c CMD, its output kept for the report, at
 * most FENCE_TIMEOUT_MS. Exit 0: the primary is fenced. */
static int fence(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    if (!r->opts.fence_cmd)
        return COLO_SECONDARY_E_FENCED;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return ls_err(err, -errno, "fencing: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], STDERR_FILENO);
    char *argv[] = { "sh", "-c", (char *)r->opts.fence_cmd, NULL };
    pid_t pid;
    int rc = -posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc < 0) {
        close(pfd[0]);
        ls_err(&r->io_err, rc, "the fencing command could not be started: %s", strerror(-rc));
        return COLO_SECONDARY_E_FENCE_REFUSED;
    }
    size_t have = 0;
    uint64_t deadline = io_monotonic_ns() + (uint64_t)FENCE_TIMEOUT_MS * 1000000u;
    bool timed_out = false, cancelled = false;
    for (;;) {
        struct pollfd p[2] = { { .fd = pfd[0], .events = POLLIN }, { .fd = cancel_fd, .events = POLLIN } };
        uint64_t now = io_monotonic_ns();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        int n = poll(p, 2, (int)((deadline - now) / 1000000u) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (p[1].revents) {
            cancelled = true;
            break;
        }
        if (n <= 0 || !p[0].revents)
            continue;
        char buf[256];
        ssize_t got = read(pfd[0], buf, sizeof(buf));
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got; i++) {   /* keep the last words */
            if (have + 1 >= sizeof(r->fence_out)) {
                memmove(r->fence_out, r->fence_out + 256, have - 256);
                have -= 256;
            }
            r->fence_out[have++] = buf[i];
        }
    }
    close(pfd[0]);
    r->fence_out[have] = '\0';
    while (have && (r->fence_out[have - 1] == '\n' || r->fence_out[have - 1] == ' '))
        r->fence_out[--have] = '\0';
    if (timed_out || cancelled)
        kill(pid, SIGKILL);    /* the command we started, by its pid */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!timed_out && !cancelled && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return COLO_SECONDARY_E_FENCED;
    char how[64];
    if (timed_out)
        snprintf(how, sizeof(how), "did not finish within %u s",
                 (unsigned)(FENCE_TIMEOUT_MS / 1000));
    else if (cancelled)
        snprintf(how, sizeof(how), "was stopped");
    else if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
    ls_err(&r->io_err, -EHOSTDOWN, "the fencing command `%s` %s%s%s", r->opts.fence_cmd, how,
           have ? ": " : "", r->fence_out);
    return COLO_SECONDARY_E_FENCE_REFUSED;
}

static int take_over(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->rs.domid, &info, err);
    if (rc < 0)
        return rc;
    /* The device state of the checkpoint our memory holds, before the guest
     * runs: a Remus copy's QEMU never took one, a COLO copy's may be a
     * checkpoint behind (lost between the apply and its load). */
    if (r->dm_loaded_at != r->c.checkpoints) {
        /* A standby our LOAD_LINKED left holding this checkpoint's state is
         * swapped in; otherwise the backend loads it (our link to a standby
         * was dropped as the takeover began: its monitor serves one client). */
        bool loaded = r->dm_load_at == r->c.checkpoints && r->dm_load.m.state == DEVMODEL_S_DONE;
        rc = loaded ? adopt_standby(r, err) : load_applied_dm(r, cancel_fd, err);
        if (rc < 0)
            return rc;
    }
    if (info.state == LS_RUN_PAUSED)
        rc = be->ops->unpause(be, r->rs.domid, err);
    else if (info.state == LS_RUN_SUSPENDED)
        rc = be->ops->resume(be, r->rs.domid, false, err);
    if (rc == 0 && be->ops->set_guard)
        rc = be->ops->set_guard(be, r->rs.domid, LS_GUARD_NONE, err);
    if (rc < 0)
        return rc;
    if (!r->rs.dm_qemu)
        return COLO_SECONDARY_E_TOOK_OVER;
    if (be->ops->dm_discard_standby &&        /* no spare QEMU outlives the replication */
        (rc = be->ops->dm_discard_standby(be, r->rs.domid, err)) < 0)
        return rc;
    return COLO_SECONDARY_E_TOOK_OVER_QEMU;
}

/* Fencing failed: the paused copy must outlive us (its DESTROY guard would
 * remove it at our exit), for an operator who knows where the primary is. */
static int keep_paused(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_errbuf why;
    ls_err_clear(&why);
    if (r->rs.dm_qemu && be->ops->dm_discard_standby)   /* the copy stays; no spare QEMU */
        be->ops->dm_discard_standby(be, r->rs.domid, &why);
    /* The pause before the fence may have failed: a copy left running beside
     * a primary we could not fence is two copies. */
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->rs.domid, &info, err);
    if (rc == 0 && info.state == LS_RUN_RUNNING)
        rc = be->ops->pause(be, r->rs.domid, err);
    if (rc < 0)
        return ls_err(err, rc, "our copy (domain %u) could not be paused: %s", r->rs.domid,
                      err->msg);
    return be->ops->set_guard ? be->ops->set_guard(be, r->rs.domid, LS_GUARD_NONE, err) : 0;
}

/* The standby as its end left it (one that exited, once the backend reaped
 * it), so the fate the outcome tells is the one it met. */
static bool standby_settled(struct colo_secondary_role *r, struct ls_dm_info *out)
{
    struct ls_errbuf why;
    ls_err_clear(&why);
    return dm_settled(be_of(r), r->rs.domid, be_of(r)->ops->dm_standby_info, out, &why) == 0 &&
           out->present && !out->alive;
}

static int destroy_copy(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_secondary_role *r = arg;
    struct ls_errbuf why;
    ls_err_clear(&why);
    if (!r->rs.domain_created)
        return 0;   /* its creation failed: no copy of ours exists (domid 0 is dom0's) */
    /* A QEMU that died is told in the outcome with how it ended. */
    r->dm_end_known = r->rs.dm_qemu && be_of(r)->ops->dm_info &&
                      dm_info_settled(be_of(r), r->rs.domid, &r->dm_end, &why) == 0;
    if (r->load_failed)   /* the standby that failed to load is the one to tell of */
        r->dm_end_known = standby_settled(r, &r->dm_end);
    ls_err_clear(&why);
    int rc = be_of(r)->ops->destroy(be_of(r), r->rs.domid, &why);
    if (rc < 0 && rc != -ESRCH)
        return ls_err(err, rc, "our copy (domain %u) could not be destroyed: %s", r->rs.domid,
                      why.msg);
    return 0;
}

/* ---- actions: start and the first checkpoint --------------------------------------- */

static int colo_s_write_banner(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_SECONDARY_E_WRITTEN, write_banner, m->owner, "write banner");
}

static int colo_s_start_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    struct restore_role *s = &r->rs;
    s->opts = (struct ls_restore_opts){ .fd = r->opts.recv_fd, .guard = true };
    s->ckpt_to = m;
    s->config_read_ev = COLO_SECONDARY_E_CONFIG_READ;
    s->ckpt_read_ev = COLO_SECONDARY_E_CHECKPOINT_READ;
    s->control_new_ev = COLO_SECONDARY_E_NEW;
    s->control_end_ev = COLO_SECONDARY_E_STOP_ANNOUNCED;
    fsm_init(&s->srx, &stream_rx_fsm_def, m->sched, NULL, s, "stream_rx[colo]");
    memtask_init(&s->mem, m->sched, "memtask[colo-secondary]", memory_thread, r, &s->srx,
                 STREAM_RX_E_MEMORY_DONE);
    r->op.progress_of = &s->mem.helper;
    fsm_join_begin(&s->tasks, m, COLO_SECONDARY_E_TASKS_DONE, COLO_SECONDARY_E_TASKS_FAILED);
    fsm_join_add(&s->tasks, &s->srx);
    fsm_join_add(&s->tasks, &s->mem.m);
    fsm_join_arm(&s->tasks);
    fsm_post(&s->srx, STREAM_RX_E_START, 0, NULL);
    return fsm_defer(m, fsm_join_undo, &s->tasks, "stream and memory tasks");
}

static int colo_s_create_domain(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_SECONDARY_E_DOMAIN_CREATED, create_domain, m->owner,
                         "create our copy");
}

static int colo_s_release_reader(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    fsm_post(&r->rs.srx, STREAM_RX_E_DOMAIN_READY, 0, NULL);
    return 0;
}

/* ---- the network proxy (colo_proxy.def): each step awaited ---------------------------- */

static int colo_s_start_proxy(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    r->proxy.domid = r->rs.domid;
    return colo_proxy_begin(&r->proxy, m, &r->proxy_join, COLO_SECONDARY_E_FAIL,
                            r->proxy_start_ev);
}

/* A proxy that failed already (its error is ours, which made this a failover)
 * has nothing left to hand the world: our copy takes over without it. */
static int colo_s_proxy_failover(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    if (fsm_is_final(&r->proxy.m))
        fsm_post(m, COLO_SECONDARY_E_PROXY_FAILED_OVER, 0, NULL);
    else
        fsm_post(&r->proxy.m, COLO_PROXY_E_FAILOVER, 0, NULL);
    return 0;
}

/* ---- the disks (colo_disk.def): each job awaited as DISK_DONE / DISK_FAILED ------------ */

/* A checkpoint is applied: the first sets replication up (our export is then
 * up for the primary's setup after SVM_READY), the later ones are applied
 * to the disks; before SVM_READY, so no primary write overlaps it. */
static int colo_s_disk_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    return colo_disks_job(&r->disks, m, r->rs.domid, r->c.disk.state == LS_COLO_DISK_STARTING
                          ? COLO_DISK_E_SETUP_SECONDARY : COLO_DISK_E_CHECKPOINT,
                          COLO_SECONDARY_E_DISK_DONE, COLO_SECONDARY_E_DISK_FAILED);
}

/* Our guest is suspended: is replication still sound (libxl asks after every
 * suspend, on both sides)? */
static int colo_s_disk_query(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    return colo_disks_job(&r->disks, m, r->rs.domid, COLO_DISK_E_QUERY,
                          COLO_SECONDARY_E_DISK_DONE, COLO_SECONDARY_E_DISK_FAILED);
}

/* Sound: the proxy marks the next checkpoint (postsuspend). */
static int colo_s_disk_queried(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    if (r->disks.cfg.ndisks)
        colo_disks_ended(&r->disks, &r->c, true);
    fsm_post(&r->proxy.m, COLO_PROXY_E_EPOCH, 0, NULL);
    return 0;
}

static int colo_s_disk_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    colo_disks_ended(&r->disks, &r->c, false);
    fsm_join_cancel(&r->rs.tasks, -ECANCELED);
    return 0;
}

/* A loss or a stop came while a disk job ran: its end is recorded (a setup
 * that finished is failed over), then the tasks are cancelled. */
static int colo_s_disk_then_cancel(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    colo_disks_ended(&r->disks, &r->c, ev->id == COLO_SECONDARY_E_DISK_DONE);
    fsm_join_cancel(&r->rs.tasks, -ECANCELED);
    return 0;
}

/* After the fence: no more primary writes, then the replica's disks are
 * its own (once replication was set up, even if a later checkpoint failed). */
static int colo_s_disk_failover(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    return colo_disks_end_job(&r->disks, m, r->rs.domid, COLO_DISK_E_FAILOVER,
                              COLO_SECONDARY_E_DISK_DONE, COLO_SECONDARY_E_DISK_FAILED);
}

static int colo_s_disk_teardown(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    return colo_disks_end_job(&r->disks, m, r->rs.domid, COLO_DISK_E_TEARDOWN_SECONDARY,
                              COLO_SECONDARY_E_DISK_DONE, COLO_SECONDARY_E_DISK_FAILED);
}

/* The disk job before the takeover or the destroy ended: its state. */
static void disk_end_job(struct colo_secondary_role *r, const struct fsm_ev *ev)
{
    struct colo_disks *d = &r->disks;
    int job = d->job;
    if (!job || (job != COLO_DISK_E_FAILOVER && job != COLO_DISK_E_TEARDOWN_SECONDARY))
        return;
    d->job = 0;
    bool ok = ev->id == COLO_SECONDARY_E_DISK_DONE;
    colo_disks_ended(d, &r->c, ok);
    if (ok)
        r->c.disk.state = job == COLO_DISK_E_FAILOVER ? LS_COLO_DISK_FAILED_OVER
                                                       : LS_COLO_DISK_STOPPED;
}

static int colo_s_answer_static_data(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    io_helper_reply(&r->rs.mem.helper, 0);
    return 0;
}

static int colo_s_read_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    fsm_post(&r->rs.srx, STREAM_RX_E_CHECKPOINT, 0, NULL);
    return 0;
}

static int colo_s_answer_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    io_helper_reply(&r->rs.mem.helper, LS_CHECKPOINT_SUCCESS);
    return 0;
}

static int colo_s_report(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_SECONDARY_E_REPORTED, report, m->owner, "checkpoint digest");
}

static void set_role(struct colo_secondary_role *r, enum ls_colo_role role, const char *why)
{
    r->c.role = role;
    if (r->opts.on_role)
        r->opts.on_role(&r->op, role, why, r->opts.cb_data);
}

static int colo_s_answer_results(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    struct ls_colo_checkpoint *c = &r->c.last;
    /* What came in it: the pages applied (the task's progress counts a
     * checkpoint's staged pages once it applied them) and their bytes. */
    uint64_t done = atomic_load(&r->rs.mem.helper.progress_done);
    c->bytes = done - r->bytes_at_last;
    c->pages = c->bytes / 4096;
    r->bytes_at_last = done;
    /* ns stays the last load's until this checkpoint's (after this report). */
    r->c.dm = (struct ls_colo_dm_state){ .digest = "", .ns = r->c.dm.ns };
    if (r->rs.emulator_context) {   /* this checkpoint's, applied with it */
        uint8_t *copy = realloc(r->applied_dm, r->rs.emulator_context_len);
        if (!copy)
            return fsm_fail(m, -ENOMEM, "out of memory for checkpoint %u's device state (%zu "
                            "bytes)", r->c.checkpoints + 1, r->rs.emulator_context_len);
        memcpy(copy, r->rs.emulator_context, r->rs.emulator_context_len);
        r->applied_dm = copy;
        r->applied_dm_len = r->rs.emulator_context_len;
        dm_state_digest(copy, r->applied_dm_len, r->c.dm.digest);
        r->c.dm.bytes = r->applied_dm_len;
    }
    c->number = ++r->c.checkpoints;
    c->domid = r->rs.domid;
    if (r->opts.on_checkpoint)
        r->opts.on_checkpoint(&r->op, c, r->opts.cb_data);
    if (r->c.role != LS_COLO_STANDBY)
        set_role(r, LS_COLO_STANDBY, r->opts.mode == LS_COLO_MODE_REMUS
                 ? "the first checkpoint is stored; our copy stays paused"
                 : "the first checkpoint is applied; our guest runs as the replica");
    io_helper_reply(&r->rs.mem.helper, 0);
    return 0;
}

/* ---- actions: COLO's run between checkpoints ---------------------------------------- */

/* The disks took the checkpoint: SVM_READY. A write that cannot start fails
 * in WRITING_READY: failing here would await a disk job whose report is taken. */
static int colo_s_write_ready(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    if (r->disks.cfg.ndisks)
        colo_disks_ended(&r->disks, &r->c, true);
    int rc = io_work_start(m, COLO_SECONDARY_E_WRITTEN, write_ready, m->owner, "write SVM_READY");
    if (rc < 0)
        fsm_post(m, COLO_SECONDARY_E_FAIL, rc, NULL);
    return 0;
}

static int colo_s_load_dm(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    struct dm_link *l = &r->dm_link;
    r->dm_load_start_ns = io_monotonic_ns();
    r->link_up = l->qmp && qmp_conn_is_ready(l->qmp) && r->standby.present &&
                 strcmp(l->path, r->standby.qmp_path) == 0;
    return io_work_start(m, IO_WORK_EV_FROM_FN, load_dm, m->owner, "load device state");
}

/* Our link, set up once (its undo runs after the jobs' joins). */
static int link_ready(struct colo_secondary_role *r)
{
    if (r->dm_link.owner)
        return 0;
    int rc = dm_link_defer_close(&r->dm_link, &r->m);
    r->dm_link.retry_connect = true;   /* a standby may still be starting */
    return rc;
}

/* The standby takes the checkpoint's state over our link (devmodel.def). */
static int colo_s_dm_load(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    int rc = link_ready(r);
    if (rc < 0)
        return rc;
    r->dm_load_at = r->c.checkpoints;
    rc = dm_task_run(&r->dm_load, m, &r->dm_load_join, COLO_SECONDARY_E_DM_DONE,
                     COLO_SECONDARY_E_DM_FAILED, r->rs.domid, &r->standby,
                     DEVMODEL_E_LOAD_LINKED, "device model load");
    dm_task_use_link(&r->dm_load, &r->dm_link);   /* its first command is dispatched later */
    r->dm_load.state_fd = r->load_fd;              /* the task closes it */
    r->load_fd = -1;
    return rc;
}

/* Our standby could not take the state: replication ends here, as when our
 * QEMU cannot run (the primary runs on); the outcome tells the standby's end. */
static int colo_s_load_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    r->load_failed = true;
    fsm_join_cancel(&r->rs.tasks, -ECANCELED);
    return 0;
}

static int colo_s_adopt_start(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, adopt_and_start, m->owner, "start our guest");
}

static int colo_s_start_guest(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, start_guest, m->owner, "start our guest");
}

/* Our QEMU holds the checkpoint's state, paused: let it run (devmodel.def). */
static int colo_s_dm_cont(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    struct restore_role *s = &r->rs;
    r->dm_cont_start_ns = io_monotonic_ns();
    int rc = link_ready(r);
    if (rc < 0)
        return rc;
    rc = dm_task_run(&s->dm_cont, m, &s->dm_cont_join, COLO_SECONDARY_E_DM_DONE,
                     COLO_SECONDARY_E_DM_FAILED, s->domid, &s->dm, DEVMODEL_E_CONT,
                     "device model cont");
    dm_task_use_link(&s->dm_cont, &r->dm_link);   /* the loaded standby's connection */
    return rc;
}

static int colo_s_write_resumed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    /* This checkpoint's device-state time: its load, and its QEMU's cont. */
    r->c.dm.ns = r->dm_load_ns;
    if (ev->id == COLO_SECONDARY_E_DM_DONE)
        r->c.dm.ns += r->rs.dm_cont.last_reply_ns - r->dm_cont_start_ns;
    return io_work_start(m, COLO_SECONDARY_E_WRITTEN, write_resumed, m->owner,
                         "write SVM_RESUMED");
}

static int colo_s_answer_postcopy(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    io_helper_reply(&r->rs.mem.helper, 1);
    /* The next checkpoint's standby QEMU starts (write_resumed): our link
     * connects to it now, while our guest runs, not in the next pause. One
     * that fails is opened again, and reported, by that load. */
    if (r->standby.present && r->standby.alive && be_of(r)->ops->dm_adopt_standby &&
        link_ready(r) == 0)
        dm_link_point(&r->dm_link, m->sched, "qmp[standby]", r->standby.qmp_path);
    return 0;
}

static int colo_s_read_control(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    fsm_post(&r->rs.srx, STREAM_RX_E_READ_CONTROL, 0, NULL);
    return 0;
}

static int colo_s_answer_wait(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    io_helper_reply(&r->rs.mem.helper, 1);
    return 0;
}

static int colo_s_suspend(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_SECONDARY_E_GUEST_SUSPENDED, suspend_guest, m->owner,
                         "suspend our guest");
}

static int colo_s_write_suspended(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_SECONDARY_E_WRITTEN, write_suspended, m->owner,
                         "write SVM_SUSPENDED");
}

static int colo_s_answer_suspend(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    io_helper_reply(&r->rs.mem.helper, 1);
    return 0;
}

/* ---- actions: stop, failover, teardown --------------------------------------------- */

static int colo_s_end_replication(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    io_helper_reply(&r->rs.mem.helper, 0);        /* wait_checkpoint: no next checkpoint */
    fsm_join_cancel(&r->rs.tasks, -ECANCELED);
    return 0;
}

/* Remus: the stream's END was applied like a checkpoint; the tasks end by themselves. */
static int colo_s_end_remus(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    io_helper_reply(&r->rs.mem.helper, 0);
    return 0;
}

static int colo_s_cancel_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    fsm_join_cancel(&r->rs.tasks, -ECANCELED);
    return 0;
}

static int colo_s_abandon(struct fsm *m, const struct fsm_ev *ev)
{
    io_work_abandon(m);
    return 0;
}

static int colo_s_destroy(struct fsm *m, const struct fsm_ev *ev)
{
    disk_end_job(m->owner, ev);
    return io_work_start(m, COLO_SECONDARY_E_DOMAIN_DESTROYED, destroy_copy, m->owner,
                         "destroy our copy");
}

static int colo_s_pause(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_SECONDARY_E_PAUSED, pause_copy, m->owner, "pause our copy");
}

static int colo_s_fence(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, fence, m->owner, "fence the primary");
}

static int colo_s_take_over(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    if (r->dm_link.owner)   /* a standby's monitor serves one client: the backend's load */
        dm_link_drop(&r->dm_link);
    disk_end_job(m->owner, ev);
    return io_work_start(m, IO_WORK_EV_FROM_FN, take_over, m->owner, "take over");
}

/* Our copy runs without its disks' failover: the error says why. */
static int colo_s_take_over_disk_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    const char *why = r->disks.task.m.err.msg;
    if (strcmp(m->err.msg, why) != 0)
        ls_err_append(&m->err, "; its disks could not fail over: %s", why);
    return colo_s_take_over(m, ev);
}

static int colo_s_keep_paused(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_SECONDARY_E_KEPT, keep_paused, m->owner, "keep our copy paused");
}

static int colo_s_outcome_active(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    char why[LS_ERRBUF_LEN + 96];
    snprintf(why, sizeof(why), "took over from checkpoint %u%s: %s", r->c.checkpoints,
             r->opts.fence_cmd ? " after fencing the primary" : " (no fencing command)",
             fsm_errmsg(m));
    set_role(r, LS_COLO_ACTIVE, why);
    ls_err_clear(&m->err);    /* the loss is what failover is for */
    return 0;
}

static int colo_s_outcome_fence_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    char lost[LS_ERRBUF_LEN];
    snprintf(lost, sizeof(lost), "%s", fsm_errmsg(m));
    ls_err_clear(&m->err);
    fsm_fail(m, r->io_err.rc ? r->io_err.rc : -EHOSTDOWN, "the primary is lost (%s), but %s: our "
             "copy (domain %u) stays paused at checkpoint %u", lost,
             r->io_err.rc ? r->io_err.msg : "fencing failed", r->rs.domid, r->c.checkpoints);
    set_role(r, LS_COLO_FENCE_FAILED, fsm_errmsg(m));
    return 0;
}

/* Our copy runs, but its QEMU could not be let run: say that, not the loss. */
static int colo_s_outcome_dm_failed(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    char lost[LS_ERRBUF_LEN];
    snprintf(lost, sizeof(lost), "%s", fsm_errmsg(m));
    const struct ls_errbuf *dm = &r->rs.dm_cont.m.err;
    ls_err_clear(&m->err);
    fsm_fail(m, dm->rc ? dm->rc : -EIO, "took over from checkpoint %u (the primary is lost: %s), "
             "but our copy's QEMU (pid %d) does not run: %s", r->c.checkpoints, lost,
             r->rs.dm.pid, dm->msg[0] ? dm->msg : "its cont did not end");
    return 0;
}

static int colo_s_outcome_stopped(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_secondary_role *r = m->owner;
    ls_err_clear(&m->err);
    set_role(r, LS_COLO_STOPPED, "the primary stopped replication in order; our copy is destroyed");
    return 0;
}

/* ---- the API ---------------------------------------------------------------------- */

static void colo_secondary_done(struct fsm *m, int rc)
{
    struct colo_secondary_role *r = m->owner;
    if (r->c.role == LS_COLO_STARTING || r->c.role == LS_COLO_STANDBY)
        r->c.role = LS_COLO_ENDED;
    if (r->c.disk.state == LS_COLO_DISK_STARTING || r->c.disk.state == LS_COLO_DISK_REPLICATING)
        r->c.disk.state = LS_COLO_DISK_STOPPED;   /* our copy and its disks are gone */
    if (r->dm_end_known && rc < 0)
        dm_append_fate(&m->err, &r->dm_end);
    op_finish(&r->op, rc, fsm_errmsg(m));
}

/* The active and hidden images, unless our copy outlives us (it took over,
 * or stays paused for its operator): its disks use them. */
static void remove_images(struct colo_secondary_role *r)
{
    struct colo_disks *d = &r->disks;
    if (!d->made_dir || r->c.role == LS_COLO_ACTIVE || r->c.role == LS_COLO_FENCE_FAILED)
        return;
    for (unsigned n = 0; n < d->cfg.ndisks; n++) {
        char path[300];
        snprintf(path, sizeof(path), "%s/lsdisk%u-active.qcow2", d->cfg.image_dir, n);
        unlink(path);
        snprintf(path, sizeof(path), "%s/lsdisk%u-hidden.qcow2", d->cfg.image_dir, n);
        unlink(path);
    }
    rmdir(d->cfg.image_dir);
}

static void colo_secondary_free(struct ls_op *op)
{
    struct colo_secondary_role *r = (struct colo_secondary_role *)op;
    remove_images(r);
    io_fd_set_timeout(r->opts.send_fd, 0);
    io_fd_set_timeout(r->opts.recv_fd, 0);
    free(r->rs.config_json);
    free(r->rs.emulator_context);
    free(r->applied_dm);
    if (r->load_fd >= 0)
        close(r->load_fd);
    free(r);
}

#pragma GCC diagnostic push
/* analyzer: colo_secondary_free(&r->op) frees r (op is its first member) */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
int colo_secondary_role_start(struct ls_ctx *ctx, const struct ls_colo_secondary_opts *opts,
                              const struct ls_colo_net_opts *net,
                              const struct ls_colo_disk_opts *disks, ls_op_done_fn *done,
                              void *data, struct ls_op **out, struct ls_errbuf *err)
{
    if (disks && disks->nbd && opts->mode != LS_COLO_MODE_COLO)
        return ls_err(err, -EINVAL, "colo secondary: disks are replicated in COLO mode only "
                      "(Remus leaves them to the storage, as libxl does)");
    if (net && net->world && opts->mode == LS_COLO_MODE_COLO && !net->peer)
        return ls_err(err, -EINVAL, "colo secondary: a network needs the primary's proxy "
                      "address (peer)");
    if (opts->send_fd < 0 || opts->recv_fd < 0)
        return ls_err(err, -EINVAL, "colo secondary: the stream and back-channel fds are required");
    if (opts->mode != LS_COLO_MODE_COLO && opts->mode != LS_COLO_MODE_REMUS)
        return ls_err(err, -EINVAL, "colo secondary: unknown mode %d", opts->mode);
    struct colo_secondary_role *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(err, -ENOMEM, "out of memory");
    r->opts = *opts;
    if (colo_disks_configure(&r->disks, &r->c, disks, true, err) < 0) {
        remove_images(r);
        free(r);
        return err->rc;
    }
    r->c.is_secondary = true;
    r->c.trigger_fd = r->c.stop_fd = -1;
    r->load_fd = -1;
    r->op = (struct ls_op){ .ctx = ctx, .root = &r->m, .done = done, .data = data,
                            .free_role = colo_secondary_free, .colo = &r->c };
    if (!r->opts.timeout_ms)
        r->opts.timeout_ms = COLO_DEFAULT_TIMEOUT_MS;
    int rc = mig_prepare_fd(r->opts.send_fd, r->opts.timeout_ms, err);
    if (rc == 0)
        rc = mig_prepare_fd(r->opts.recv_fd, r->opts.timeout_ms, err);
    if (rc < 0) {
        colo_secondary_free(&r->op);
        return rc;
    }
    fsm_init(&r->m, &colo_secondary_fsm_def, &ctx->sched.sched, colo_secondary_done, r,
             "colo_secondary");
    colo_proxy_init(&r->proxy, ctx->be, 0, net, r->opts.timeout_ms, &r->m,
                    COLO_SECONDARY_E_PROXY_DONE, COLO_SECONDARY_E_PROXY_FAILED_OVER, -1);
    r->proxy_start_ev = colo_proxy_start_event(net, true, opts->mode);
    r->c.proxy = &r->proxy;
    ctx->live_ops++;
    fsm_post(&r->m, COLO_SECONDARY_E_START, 0, NULL);
    *out = &r->op;
    return 0;
}
#pragma GCC diagnostic pop
