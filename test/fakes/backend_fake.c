/* test/fakes/backend_fake.c - the scripted backend (see backend_fake.h). */
#include "test/fakes/backend_fake.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsm/fsm.h"
#include "io/fdio.h"
#include "test/fakes/exec_fake.h"
#include "test/fakes/qmp_peer_fake.h"

static struct fake_backend *fb_of(struct ls_backend *be) { return (struct fake_backend *)be; }

/* One numbered point: 0 to go on, or the scripted failure with its reason. */
static int point(struct fake_backend *fb, const char *name, struct ls_errbuf *err)
{
    if (fb->npoints == FB_MAX_POINTS)
        return ls_err(err, -E2BIG, "fake backend: more than %d calls", FB_MAX_POINTS);
    unsigned n = ++fb->npoints;
    fb->point_name[n] = name;
    fb->point_seq[n] = fsm_dispatch_count();
    fb->point_step[n] = fake_exec_steps();
    if (fb->refuse && strcmp(fb->refuse, name) == 0)
        return ls_err(err, -EIO, "fake backend: %s refused (scripted for every call)", name);
    switch (fb->answer[n]) {
    case FB_FAIL:
        return ls_err(err, -EIO, "fake backend: %s failed (scripted, call %u)", name, n);
    case FB_NEVER: {
        int rc = fake_exec_hang();
        return ls_err(err, rc, "fake backend: %s never answered (call %u): %s", name, n,
                      rc == -ECANCELED ? "cancelled" : "timed out");
    }
    default:
        return 0;
    }
}

enum fb_answer fake_backend_peer_point(struct fake_backend *fb, const char *name)
{
    if (fb->npoints == FB_MAX_POINTS)
        return FB_FAIL;
    unsigned n = ++fb->npoints;
    snprintf(fb->peer_names[n], sizeof(fb->peer_names[n]), "%s", name);
    fb->point_name[n] = fb->peer_names[n];
    fb->point_peer[n] = true;
    fb->point_seq[n] = fsm_dispatch_count();
    fb->point_step[n] = fake_exec_steps();
    return fb->answer[n];
}

static bool cancelled(int cancel_fd)
{
    struct pollfd p = { .fd = cancel_fd, .events = POLLIN };
    return cancel_fd >= 0 && poll(&p, 1, 0) == 1;
}

struct fb_dom *fake_backend_dom(struct fake_backend *fb, uint32_t domid)
{
    for (unsigned i = 0; i < fb->ndom; i++)
        if (fb->dom[i].domid == domid && fb->dom[i].exists)
            return &fb->dom[i];
    return NULL;
}

static int dom_or_err(struct fake_backend *fb, uint32_t domid, struct fb_dom **d,
                      struct ls_errbuf *err)
{
    *d = fake_backend_dom(fb, domid);
    return *d ? 0 : ls_err(err, -ESRCH, "fake backend: no domain %u", domid);
}

static void fb_close(struct ls_backend *be) { (void)be; }

static int fb_domain_info(struct ls_backend *be, uint32_t domid, struct ls_domain_info *out,
                          struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "domain_info", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    *out = (struct ls_domain_info){ .domid = domid, .type = d->type, .state = d->state,
                                    .vcpus = 1, .memory_kib = 65536, .p2m_size = 16384 };
    snprintf(out->name, sizeof(out->name), "fake%u", domid);
    return 0;
}

static int fb_pause(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "pause", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    if (d->state == LS_RUN_RUNNING)
        d->state = LS_RUN_PAUSED;
    return 0;
}

static int fb_unpause(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "unpause", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    if (d->state != LS_RUN_PAUSED)
        return ls_err(err, -EINVAL, "fake backend: unpause of domain %u, which is %s", domid,
                      ls_run_state_name(d->state));
    d->state = LS_RUN_RUNNING;
    d->guard = LS_GUARD_NONE;
    d->unpauses++;
    d->ran_empty |= d->created_by_restore && !d->memory_restored && !d->checkpoints;
    return 0;
}

static int fb_suspend(struct ls_backend *be, uint32_t domid, unsigned timeout_ms,
                      struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "suspend", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    if (d->state != LS_RUN_RUNNING && d->state != LS_RUN_PAUSED)
        return ls_err(err, -EINVAL, "fake backend: suspend of domain %u, which is %s", domid,
                      ls_run_state_name(d->state));
    d->state = LS_RUN_SUSPENDED;
    d->suspends++;
    return 0;
}

static int fb_resume(struct ls_backend *be, uint32_t domid, bool fast, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "resume", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    /* As the sim: resuming a guest that runs is nothing to do. */
    if (d->state == LS_RUN_RUNNING)
        return 0;
    if (d->state != LS_RUN_SUSPENDED)
        return ls_err(err, -EINVAL, "fake backend: resume of domain %u, which is %s", domid,
                      ls_run_state_name(d->state));
    d->state = LS_RUN_RUNNING;
    d->guard = LS_GUARD_NONE;
    d->resumes++;
    d->ran_empty |= d->created_by_restore && !d->memory_restored && !d->checkpoints;
    return 0;
}

static int fb_destroy(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "destroy", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    d->exists = false;
    d->guard = LS_GUARD_NONE;
    return 0;
}

static int fb_get_config_json(struct ls_backend *be, uint32_t domid, char **json,
                              struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "get_config_json", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"c_info\":{\"type\":\"%s\",\"name\":\"fake%u\"},"
             "\"b_info\":{\"max_vcpus\":1,\"max_memkb\":65536}}",
             ls_guest_type_name(d->type), domid);
    *json = strdup(buf);
    return *json ? 0 : ls_err(err, -ENOMEM, "out of memory");
}

static int fb_create_for_restore(struct ls_backend *be, const struct ls_domain_config *cfg,
                                 uint32_t *domid, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    int rc = point(fb, "create_for_restore", err);
    if (rc < 0)
        return rc;
    if (fb->ndom == FB_MAX_DOMS)
        return ls_err(err, -ENOSPC, "fake backend: no room for another domain");
    struct fb_dom *d = fake_backend_add(fb, fb->next_domid++,
                                        cfg->type == LS_GUEST_UNSET ? LS_GUEST_PV : cfg->type,
                                        LS_RUN_PAUSED);
    d->created_by_restore = true;
    d->guard = cfg->guard ? LS_GUARD_DESTROY : LS_GUARD_NONE;
    *domid = d->domid;
    return 0;
}

static int fb_set_guard(struct ls_backend *be, uint32_t domid, enum ls_guard guard,
                        struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "set_guard", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    d->guard = guard;
    return 0;
}

static int fb_hand_off(struct ls_backend *be, uint32_t domid, int fd, const void *msg,
                       size_t len, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "hand_off", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    if (write(fd, msg, len) != (ssize_t)len)
        return ls_err(err, -EPIPE, "fake backend: hand_off: short write");
    d->guard = LS_GUARD_NONE;
    return 0;
}

static int fb_digest(struct ls_backend *be, uint32_t domid, char hex[65], struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "digest", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    memset(hex, 'f', 64);
    hex[64] = '\0';
    return 0;
}

/* One stand-in record of 8 bytes on fd, waiting as the real layer does
 * (a COLO peer's words come when it is its turn). */
static int fb_io(int fd, bool out, void *rec, int cancel_fd, const char *what,
                 struct ls_errbuf *err)
{
    size_t got = 0;
    int rc = out ? io_write_all(fd, rec, 8, cancel_fd) : io_read_all(fd, rec, 8, &got, cancel_fd);
    if (rc == -ENODATA)
        return ls_err(err, rc, "fake memory task: the stream ended where %s was due", what);
    return rc < 0 ? ls_err(err, rc, "fake memory task: %s %s: %s", out ? "writing" : "reading",
                           what, strerror(-rc)) : 0;
}

/* A checkpointed save (backend.h): per checkpoint the suspend callback, (after
 * the first, COLO) the secondary's dirty pfns read from recv_fd, the pages
 * and CHECKPOINT, then the callbacks in xc_domain_save's order. Runs until
 * a callback answers <= 0 (an orderly stop, or the role gave up). */
static int fb_save_checkpoints(struct fake_backend *fb, struct fb_dom *d,
                               const struct ls_save_params *p,
                               const struct ls_save_callbacks *cb, struct ls_errbuf *err)
{
    bool colo = p->stream_type == LS_STREAM_COLO;
    for (unsigned n = 0;; n++) {
        if (cb->suspend(cb->data) != 1)
            return ls_err(err, cancelled(p->cancel_fd) ? -ECANCELED : -EIO,
                          "fake save_memory: the suspend callback failed (checkpoint %u)", n + 1);
        if (d->state != LS_RUN_SUSPENDED)
            return ls_err(err, -EINVAL, "fake save_memory: suspend answered, but domain %u is %s",
                          p->domid, ls_run_state_name(d->state));
        uint8_t rec[8];
        int rc;
        if (n > 0 && colo) {
            if ((rc = fb_io(p->recv_fd, false, rec, p->cancel_fd,
                            "the secondary's CHECKPOINT_DIRTY_PFN_LIST", err)) < 0)
                return rc;
            if (memcmp(rec, FB_DIRTY_PFNS, 8) != 0)
                return ls_err(err, -EPROTO, "fake save_memory: the secondary sent something else "
                              "where its CHECKPOINT_DIRTY_PFN_LIST was due");
        }
        if ((rc = point(fb, "save_memory.checkpoint", err)) < 0 ||
            (rc = fb_io(p->io_fd, true, FB_CHECKPOINT, p->cancel_fd, "CHECKPOINT", err)) < 0)
            return rc;
        cb->progress((n + 1) * 4096, 0, cb->data);
        const char *which = "checkpoint";
        int ok = colo ? cb->checkpoint(cb->data) : 1;
        if (ok > 0 && (which = "postcopy"))
            ok = cb->postcopy(cb->data);
        if (ok > 0 && (which = colo ? "wait_checkpoint" : "checkpoint"))
            ok = colo ? cb->wait_checkpoint(cb->data) : cb->checkpoint(cb->data);
        if (ok <= 0)
            return ls_err(err, -ECANCELED, "fake save_memory: replication ended after checkpoint "
                          "%u: the %s callback answered %d", n + 1, which, ok);
    }
}

/* The libxc layer of a save: log-dirty on (HVM), pre-copy rounds whose dirty
 * count falls by 4 each round (live), the suspend callback, the last pass. */
static int fb_save_memory(struct ls_backend *be, const struct ls_save_params *p,
                          const struct ls_save_callbacks *cb, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "save_memory", err);
    if (rc < 0 || (rc = dom_or_err(fb, p->domid, &d, err)) < 0)
        return rc;
    bool hvm = d->type == LS_GUEST_HVM;
    if (hvm && cb->switch_qemu_logdirty(p->domid, 1, cb->data) != 0)
        return ls_err(err, -EIO, "fake save_memory: switch_qemu_logdirty(1) refused");
    unsigned long written = 0;
    if (p->flags & LS_SAVE_LIVE) {
        for (unsigned i = 0;; i++) {
            fb->precopy_rounds_asked++;
            long dirty = 800L >> (2 * i);
            int pol = cb->precopy_policy((struct ls_precopy_stats){ i, written, dirty },
                                         cb->data);
            if (pol == LS_POLICY_ABORT)
                return ls_err(err, -ECANCELED, "fake save_memory: precopy aborted");
            if (pol == LS_POLICY_STOP_AND_COPY)
                break;
            if ((rc = point(fb, "save_memory.round", err)) < 0)
                return rc;
            written += (unsigned long)dirty;
            cb->progress(written * 4096, 0, cb->data);
        }
    }
    if (p->stream_type != LS_STREAM_PLAIN) {
        rc = fb_save_checkpoints(fb, d, p, cb, err);
        if (hvm)   /* as xc_domain_save's cleanup, whatever ended it */
            cb->switch_qemu_logdirty(p->domid, 0, cb->data);
        return rc;
    }
    if (cb->suspend(cb->data) != 1)
        return ls_err(err, cancelled(p->cancel_fd) ? -ECANCELED : -EIO,
                      "fake save_memory: the suspend callback failed");
    if (d->state != LS_RUN_SUSPENDED)
        return ls_err(err, -EINVAL, "fake save_memory: suspend answered, but domain %u is %s",
                      p->domid, ls_run_state_name(d->state));
    if ((rc = point(fb, "save_memory.last_pass", err)) < 0)
        return rc;
    static const uint8_t end[8] = { 0 };   /* stands for the libxc layer */
    if (write(p->io_fd, end, sizeof(end)) != (ssize_t)sizeof(end))
        return ls_err(err, -EIO, "fake save_memory: write failed");
    if (hvm && cb->switch_qemu_logdirty(p->domid, 0, cb->data) != 0)
        return ls_err(err, -EIO, "fake save_memory: switch_qemu_logdirty(0) refused");
    if (cancelled(p->cancel_fd))
        return ls_err(err, -ECANCELED, "fake save_memory: cancelled");
    return 0;
}

/* A checkpointed restore (backend.h): at each CHECKPOINT the checkpoint
 * callback (the libxl layer reads its part), the staged pages applied
 * whole, restore_results, then (COLO) postcopy, wait_checkpoint, suspend and
 * our dirty pfns on send_back_fd; END (Remus: the primary's orderly stop)
 * is applied like a checkpoint and ends it well. What else ends the stream
 * is returned as the error; the domain holds the last whole checkpoint. */
static int fb_restore_checkpoints(struct fake_backend *fb, struct fb_dom *d,
                                  const struct ls_restore_params *p,
                                  const struct ls_restore_callbacks *cb, struct ls_errbuf *err)
{
    bool colo = p->stream_type == LS_STREAM_COLO;
    if (cb->static_data_done(0, cb->data) != 0)
        return ls_err(err, cancelled(p->cancel_fd) ? -ECANCELED : -EIO,
                      "fake restore_memory: static_data_done refused");
    for (;;) {
        uint8_t rec[8];
        int rc = fb_io(p->io_fd, false, rec, p->cancel_fd, "CHECKPOINT or END", err);
        if (rc < 0)
            return rc;
        if (memcmp(rec, FB_LIBXC_END, 8) == 0) {
            if (!d->checkpoints)
                return ls_err(err, -EPROTO, "fake restore_memory: END before any checkpoint");
            cb->restore_results(0xfeffe, 0xfefff, cb->data);
            return cancelled(p->cancel_fd) ? ls_err(err, -ECANCELED, "fake restore_memory: "
                                                    "cancelled") : 0;
        }
        if (memcmp(rec, FB_CHECKPOINT, 8) != 0)
            return ls_err(err, -EPROTO, "fake restore_memory: neither CHECKPOINT nor END");
        int ok = cb->checkpoint(cb->data);
        if (ok != LS_CHECKPOINT_SUCCESS)
            return ls_err(err, ok == LS_CHECKPOINT_FAILOVER ? -ENOTCONN : -ECANCELED,
                          "fake restore_memory: after checkpoint %u the checkpoint callback "
                          "answered %d", d->checkpoints, ok);
        if ((rc = point(fb, "restore_memory.apply", err)) < 0)
            return rc;
        d->checkpoints++;
        cb->progress(d->checkpoints * 4096, 0, cb->data);
        cb->restore_results(0xfeffe, 0xfefff, cb->data);
        if (!colo)
            continue;
        const char *which = "postcopy";
        ok = cb->postcopy(cb->data);
        if (ok == 1 && (which = "wait_checkpoint"))
            ok = cb->wait_checkpoint(cb->data);
        if (ok == 1 && (which = "suspend"))
            ok = cb->suspend(cb->data);
        if (ok != 1)
            return ls_err(err, ok == LS_CHECKPOINT_FAILOVER ? -ENOTCONN : -ECANCELED,
                          "fake restore_memory: after checkpoint %u the %s callback answered %d",
                          d->checkpoints, which, ok);
        if ((rc = fb_io(p->send_back_fd, true, FB_DIRTY_PFNS, p->cancel_fd,
                        "CHECKPOINT_DIRTY_PFN_LIST", err)) < 0)
            return rc;
    }
}

/* The libxc layer of a restore: static_data_done, the pages, restore_results. */
static int fb_restore_memory(struct ls_backend *be, const struct ls_restore_params *p,
                             const struct ls_restore_callbacks *cb, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "restore_memory", err);
    if (rc < 0 || (rc = dom_or_err(fb, p->domid, &d, err)) < 0)
        return rc;
    if (d->state != LS_RUN_PAUSED)
        return ls_err(err, -EINVAL, "fake restore_memory: domain %u is %s, not paused",
                      p->domid, ls_run_state_name(d->state));
    if (p->stream_type != LS_STREAM_PLAIN)
        return fb_restore_checkpoints(fb, d, p, cb, err);
    uint8_t end[8];
    if (read(p->io_fd, end, sizeof(end)) != (ssize_t)sizeof(end))
        return ls_err(err, -ENODATA, "fake restore_memory: the libxc layer is missing");
    if (cb->static_data_done(0, cb->data) != 0)
        return ls_err(err, cancelled(p->cancel_fd) ? -ECANCELED : -EIO,
                      "fake restore_memory: static_data_done refused");
    if ((rc = point(fb, "restore_memory.pages", err)) < 0)
        return rc;
    cb->progress(4096, 4096, cb->data);
    cb->restore_results(0xfeffe, 0xfefff, cb->data);
    if (cancelled(p->cancel_fd))
        return ls_err(err, -ECANCELED, "fake restore_memory: cancelled");
    d->memory_restored = true;
    return 0;
}

/* The scripted QEMU, as the sim's supervisor reports its device models. */
static int fb_dm_info(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                      struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "dm_info", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    *out = (struct ls_dm_info){ 0 };
    if (!d->qemu || !fb->peer)
        return 0;
    out->present = true;
    out->alive = !fb->peer->dead;
    out->exit_status = fb->peer->dead ? 9 : 0;   /* killed */
    snprintf(out->qmp_path, sizeof(out->qmp_path), "%s", fb->peer->path);
    return 0;
}

static int fb_dm_start_incoming(struct ls_backend *be, uint32_t domid, int state_fd,
                                const char *qemu, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    char magic[4];
    int rc = point(fb, "dm_start_incoming", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    if (!fb->peer || fb->peer->dead)
        return ls_err(err, -ECHILD, "fake backend: no QEMU to start for domain %u", domid);
    if (pread(state_fd, magic, 4, 0) != 4 || memcmp(magic, "QEVM", 4) != 0)
        return ls_err(err, -EINVAL, "fake backend: the incoming state is no savevm image");
    d->qemu = true;
    /* QEMU loads it at startup: one status query still says so */
    snprintf(fb->peer->status, sizeof(fb->peer->status), "inmigrate");
    fb->peer->inmigrate_queries = 1;
    return 0;
}

static int fb_dm_stop(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "dm_stop", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    d->qemu = false;
    return 0;
}

/* A guest's disks are drives of the scripted QEMU (its device model may be
 * the stand-in): their QMP socket is the peer's. */
static int fb_disk_info(struct ls_backend *be, uint32_t domid, struct ls_disk_info *out,
                        struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "disk_info", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    if (!d->disks || !fb->peer)
        return ls_err(err, -ENODEV, "fake backend: domain %u has no disk", domid);
    *out = (struct ls_disk_info){ .ndisks = d->disks };
    snprintf(out->qmp_path, sizeof(out->qmp_path), "%s", fb->peer->path);
    return 0;
}

static int fb_disk_attach(struct ls_backend *be, uint32_t domid, const char *path,
                          unsigned format, bool replica, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "disk_attach", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    if (!fb->peer || d->type != LS_GUEST_HVM)
        return ls_err(err, -ENODEV, "fake backend: domain %u has no QEMU for %s", domid, path);
    d->disks++;
    return 0;
}

/* A guest's network: a SOCK_SEQPACKET pair whose guest end stays silent
 * (no frame) until the run ends; a new attach cuts the previous reader off. */
static int fb_net_attach(struct ls_backend *be, uint32_t domid, int *fd, struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "net_attach", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    int sv[2];
    if (fb->nnet == sizeof(fb->net_fd) / sizeof(fb->net_fd[0]))
        return ls_err(err, -EMFILE, "fake backend: domain %u: too many network attaches", domid);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return ls_err(err, -errno, "fake backend: socketpair: %s", strerror(errno));
    fb->net_fd[fb->nnet++] = sv[1];
    *fd = sv[0];
    return 0;
}

static int fb_net_connect(struct ls_backend *be, uint32_t domid, const char *path,
                          struct ls_errbuf *err)
{
    struct fake_backend *fb = fb_of(be);
    struct fb_dom *d;
    int rc = point(fb, "net_connect", err);
    if (rc < 0 || (rc = dom_or_err(fb, domid, &d, err)) < 0)
        return rc;
    return access(path, F_OK) == 0 ? 0
                                   : ls_err(err, -ENOENT, "fake backend: no world at %s", path);
}

void fake_backend_close_net(struct fake_backend *fb)
{
    for (unsigned i = 0; i < fb->nnet; i++)
        close(fb->net_fd[i]);
    fb->nnet = 0;
}

static const struct ls_backend_ops fake_ops = {
    .name = "fake",
    .close = fb_close,
    .domain_info = fb_domain_info,
    .pause = fb_pause,
    .unpause = fb_unpause,
    .suspend = fb_suspend,
    .resume = fb_resume,
    .destroy = fb_destroy,
    .get_config_json = fb_get_config_json,
    .create_for_restore = fb_create_for_restore,
    .save_memory = fb_save_memory,
    .restore_memory = fb_restore_memory,
    .set_guard = fb_set_guard,
    .hand_off = fb_hand_off,
    .digest = fb_digest,
    .dm_info = fb_dm_info,
    .dm_start_incoming = fb_dm_start_incoming,
    .dm_stop = fb_dm_stop,
    .disk_info = fb_disk_info,
    .disk_attach = fb_disk_attach,
    .net_attach = fb_net_attach,
    .net_connect = fb_net_connect,
};

void fake_backend_init(struct fake_backend *fb)
{
    memset(fb, 0, sizeof(*fb));
    fb->be.ops = &fake_ops;
    fb->next_domid = 10;
}

struct fb_dom *fake_backend_add(struct fake_backend *fb, uint32_t domid,
                                enum ls_guest_type type, enum ls_run_state state)
{
    struct fb_dom *d = &fb->dom[fb->ndom++];
    *d = (struct fb_dom){ .domid = domid, .exists = true, .type = type, .state = state };
    return d;
}

void fake_backend_points(const struct fake_backend *fb, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 1; i <= fb->npoints && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i > 1 ? " " : "",
                                 fb->point_name[i]);
}
