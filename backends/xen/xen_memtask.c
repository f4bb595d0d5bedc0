/* backends/xen/xen_memtask.c - the memory task on real Xen: run
 * lockstep-xen-helper (xc_domain_save / xc_domain_restore) and relay its
 * callbacks to the tables' callbacks. helper_proto.h says why a process.
 *
 * This runs on the memory task's thread (io/helper.h). It polls the helper's
 * channel and the task's cancel fd: a cancel kills the helper at once, so no
 * wait on a stalled peer outlives it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenguest.h>

#include "backends/xen/helper_proto.h"
#include "backends/xen/xen_internal.h"
#include "io/fdio.h"
#include "io/tls.h"

extern char **environ;

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int xen_find_helper(char *out, size_t len, struct ls_errbuf *e)
{
    const char *env = getenv("LOCKSTEP_XEN_HELPER");
    if (env && *env) {
        if (!executable(env))
            return ls_err(e, -ENOENT, "LOCKSTEP_XEN_HELPER=%s is not an executable file", env);
        snprintf(out, len, "%s", env);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if ((size_t)snprintf(out, len, "%s/lockstep-xen-helper", exe) < len &&
                executable(out))
                return 0;
            if ((size_t)snprintf(out, len, "%s/../backends/xen/lockstep-xen-helper", exe) < len &&
                executable(out))   /* build tree */
                return 0;
        }
    }
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        size_t l = strcspn(p, ":");
        if (l > 0 && (size_t)snprintf(out, len, "%.*s/lockstep-xen-helper", (int)l, p) < len &&
            executable(out))
            return 0;
        p += l + (p[l] == ':');
    }
    return ls_err(e, -ENOENT, "lockstep-xen-helper (the memory task's process) was not found "
                  "next to this program, in a build tree or in $PATH; set LOCKSTEP_XEN_HELPER");
}

/* ---- the guard process -------------------------------------------------- */

/* How it ended, for an error: "exited with status N" or "died of signal N (name)". */
static void child_end_text(pid_t pid, char *out, size_t len)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        snprintf(out, len, "died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, len, "exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int xen_guard_spawn(struct xen_backend *x, uint32_t domid, bool destroy, pid_t *pid, int *wfd,
                    struct ls_errbuf *e)
{
    int p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
        return ls_err(e, -errno, "domain %u: guard: socketpair: %s", domid, strerror(errno));
    int child_end = fcntl(p[0], F_DUPFD_CLOEXEC, 10);
    close(p[0]);
    if (child_end < 0) {
        close(p[1]);
        return ls_err(e, -errno, "domain %u: guard: %s", domid, strerror(errno));
    }
    char dom[16];
    snprintf(dom, sizeof(dom), "%u", domid);
    char *argv[] = { "lockstep-xen-helper", "guard", dom, destroy ? "destroy" : "resume", NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, child_end, XH_FD_CHANNEL);
    /* Its own process group: a terminal's ^C for lockstep does not reach it. */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int err = posix_spawn(pid, x->helper, &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(child_end);
    if (err) {
        close(p[1]);
        return ls_err(e, -err, "domain %u: cannot start its guard %s: %s", domid, x->helper,
                      strerror(err));
    }
    /* Not armed until it says it holds Xen's handles: a guard that died at
     * its start (seen under emulation) would otherwise leave the domain
     * unguarded without a word. */
    struct pollfd pf = { .fd = p[1], .events = POLLIN };
    char c = 0;
    int n;
    while ((n = poll(&pf, 1, XEN_GUARD_READY_MS)) < 0 && errno == EINTR)
        ;
    if (n == 1 && read(p[1], &c, 1) == 1 && c == XH_GUARD_READY) {
        *wfd = p[1];
        return 0;
    }
    if (n == 0)
        kill(*pid, SIGKILL);
    close(p[1]);
    char how[64];
    child_end_text(*pid, how, sizeof(how));
    if (n == 0)
        return ls_err(e, -ETIMEDOUT, "domain %u: its guard (%s guard) did not say it was ready "
                      "in %d s; it was killed", domid, x->helper, XEN_GUARD_READY_MS / 1000);
    return ls_err(e, -EIO, "domain %u: its guard (%s guard) %s before it was ready (its own "
                  "words, if any, are on stderr above)", domid, x->helper, how);
}

int xen_guard_send(int wfd, char what)
{
    return send(wfd, &what, 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

void xen_guard_release(pid_t pid, int wfd)
{
    if (xen_guard_send(wfd, XH_GUARD_RELEASE) < 0) {
        /* the guard is gone already */
    }
    close(wfd);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* ---- running the helper ----------------------------------------------- */

struct relay {
    struct xen_backend *x;
    uint32_t domid;
    pid_t pid;
    int chan;
    bool done, cancelled;
    /* A Remus restore holding a whole checkpoint: a cancel lets libxc
     * complete the domain from it (the pending checkpoint answered
     * FAILOVER, a blocked read ended by shutting the socket's reading
     * side) rather than killing it half made; killed only after
     * COMPLETE_GRACE_MS. */
    bool complete_on_cancel;
    int io_fd;
    uint64_t kill_at;
    struct xh_msg result;
    char first_error[XH_TEXT_LEN];
    int first_errno;
    /* the last error libxc logged, and whether it came after the last
     * checkpoint callback (a Remus restore's broken stream) */
    char last_error[XH_TEXT_LEN];
    bool error_since_checkpoint;
    /* restore from a file: progress is how far the helper read (shared offset) */
    int progress_fd;
    off_t progress_base, progress_total;
    /* a peer's connection with a stall limit (io_fd_set_timeout): a helper
     * silent for that long (no progress, no callback) is killed */
    int stall_ms;
    bool stalled;
};

#define PROGRESS_POLL_MS 250
#define COMPLETE_GRACE_MS 10000

/* A copy of fd numbered 10 or more, so the child's dup2s to 3..5 never clash. */
static int high_dup(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

/* libxc reads and writes the stream itself, in lockstep-xen-helper: a
 * connection carrying TLS (io/tls.h) would get its plaintext. Relaying it
 * through the session (a socketpair and a pump thread, giving back what the
 * helper left unread for the libxl layer after it) is not built: refused,
 * before the helper starts, so the save resumes the guest and the restore
 * destroys its domain as after any failure of the memory task. */
static int refuse_tls(int fd, uint32_t domid, const char *what, struct ls_errbuf *e)
{
    if (!io_tls_of(fd))
        return 0;
    return ls_err(e, -EOPNOTSUPP, "%s of domain %u: the Xen backend cannot migrate over TLS "
                  "yet (libxc does its own I/O in lockstep-xen-helper; its stream is not "
                  "relayed through the TLS session); use tcp: through a secured network, or "
                  "ssh (--to -)", what, domid);
}

static int spawn_helper(struct relay *rl, char *const argv[], int io_fd, int back_fd,
                        struct ls_errbuf *e)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return ls_err(e, -errno, "memory task: socketpair: %s", strerror(errno));
    int child_chan = high_dup(sv[1]), child_io = high_dup(io_fd);
    int child_back = back_fd >= 0 ? high_dup(back_fd) : -1;
    close(sv[1]);
    int rc = 0;
    if (child_chan < 0 || child_io < 0 || (back_fd >= 0 && child_back < 0))
        rc = ls_err(e, -errno, "memory task: duplicating its fds: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (rc == 0) {
        posix_spawn_file_actions_adddup2(&fa, child_chan, XH_FD_CHANNEL);
        posix_spawn_file_actions_adddup2(&fa, child_io, XH_FD_STREAM);
        if (child_back >= 0)
            posix_spawn_file_actions_adddup2(&fa, child_back, XH_FD_BACK);
        int err = posix_spawn(&rl->pid, rl->x->helper, &fa, NULL, argv, environ);
        if (err)
            rc = ls_err(e, -err, "memory task: cannot run %s: %s", rl->x->helper, strerror(err));
    }
    posix_spawn_file_actions_destroy(&fa);
    if (child_chan >= 0) close(child_chan);
    if (child_io >= 0) close(child_io);
    if (child_back >= 0) close(child_back);
    if (rc < 0) {
        close(sv[0]);
        return rc;
    }
    rl->chan = sv[0];
    return 0;
}

static void reply(struct relay *rl, int value)
{
    struct xh_msg m = { .kind = XH_REPLY, .value = value };
    /* A helper that died meanwhile is noticed by the next recv. */
    while (send(rl->chan, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

typedef void relay_msg_fn(struct relay *rl, const struct xh_msg *m, void *ctx);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Relay messages until the helper reports XH_DONE or goes away; then reap it. */
static void relay_run(struct relay *rl, int cancel_fd, relay_msg_fn *on_msg, void *ctx)
{
    uint64_t last_heard = mono_ms();
    for (;;) {
        int wait_ms = rl->progress_fd >= 0 || rl->kill_at ? PROGRESS_POLL_MS : -1;
        if (rl->stall_ms > 0 && (wait_ms < 0 || wait_ms > rl->stall_ms))
            wait_ms = rl->stall_ms;
        struct pollfd p[2] = { { .fd = rl->chan, .events = POLLIN },
                               { .fd = cancel_fd, .events = POLLIN } };
        int n = poll(p, cancel_fd >= 0 && !rl->cancelled ? 2 : 1, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (n == 0 && rl->stall_ms > 0 && !rl->stalled && !rl->cancelled &&
            mono_ms() - last_heard >= (uint64_t)rl->stall_ms) {
            rl->stalled = true;
            kill(rl->pid, SIGKILL);
        }
        if (rl->progress_fd >= 0) {
            off_t at = lseek(rl->progress_fd, 0, SEEK_CUR);
            struct xh_msg prog = { .kind = XH_PROGRESS_BYTES,
                                   .a = at > rl->progress_base ? (uint64_t)(at - rl->progress_base) : 0,
                                   .b = (uint64_t)rl->progress_total };
            on_msg(rl, &prog, ctx);
        }
        if (!rl->cancelled && (p[1].revents & POLLIN)) {
            rl->cancelled = true;
            if (rl->complete_on_cancel) {
                shutdown(rl->io_fd, SHUT_RD);   /* a pipe: the grace ends it */
                rl->kill_at = mono_ms() + COMPLETE_GRACE_MS;
            } else {
                kill(rl->pid, SIGKILL);
            }
        }
        if (rl->kill_at && mono_ms() >= rl->kill_at) {
            rl->kill_at = 0;
            kill(rl->pid, SIGKILL);
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        struct xh_msg m;
        ssize_t got = recv(rl->chan, &m, sizeof(m), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)sizeof(m))
            break;   /* the helper is gone (0) or broke the protocol */
        last_heard = mono_ms();
        m.text[sizeof(m.text) - 1] = '\0';
        if (m.kind == XH_DONE) {
            rl->done = true;
            rl->result = m;
            break;
        }
        if (m.kind == XH_LOG) {
            if (!rl->first_error[0]) {
                snprintf(rl->first_error, sizeof(rl->first_error), "%s", m.text);
                rl->first_errno = m.value;
            }
            snprintf(rl->last_error, sizeof(rl->last_error), "%s", m.text);
            rl->error_since_checkpoint = true;
            continue;
        }
        if (m.kind == XH_CB_CHECKPOINT)
            rl->error_since_checkpoint = false;
        on_msg(rl, &m, ctx);
        last_heard = mono_ms();   /* time spent answering a callback is not a stall */
    }
    close(rl->chan);
    rl->chan = -1;
    int status = 0;
    while (waitpid(rl->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rl->stalled && !rl->done) {
        rl->result.value = ETIMEDOUT;
        snprintf(rl->result.text, sizeof(rl->result.text),
                 "the stream made no progress for %d s: the peer stalled or went away",
                 rl->stall_ms / 1000);
    } else if (!rl->done && !rl->cancelled) {
        rl->result.value = EPIPE;
        if (WIFSIGNALED(status))
            snprintf(rl->result.text, sizeof(rl->result.text),
                     "lockstep-xen-helper died of signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        else
            snprintf(rl->result.text, sizeof(rl->result.text),
                     "lockstep-xen-helper exited (status %d) without reporting a result",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
}

/* The task's result as lockstep's error, in Xen's own words where it gave some. */
static int relay_result(struct relay *rl, const char *what, bool live, struct ls_errbuf *e)
{
    if (rl->cancelled && !rl->done)
        return ls_err(e, -ECANCELED, "%s of domain %u cancelled", what, rl->domid);
    if (rl->result.value == 0)
        return 0;
    int err = rl->result.value > 0 ? rl->result.value : EIO;
    bool unsupported = rl->first_errno == EOPNOTSUPP || err == EOPNOTSUPP ||
                       strstr(rl->first_error, ": 95") || strstr(rl->first_error, "(95 ");
    if (live && strstr(rl->first_error, "logdirty") && unsupported)
        return ls_err(e, -EOPNOTSUPP, "Xen cannot track the dirty memory of domain %u "
                      "(\"%s\"): this hypervisor has no log-dirty support for this guest "
                      "type (Debian's Xen is built without shadow paging, which PV guests "
                      "need), so it cannot be live-migrated", rl->domid, rl->first_error);
    /* A helper that died, exited or stalled without its result: what libxc
     * last logged through it is the likeliest reason, so it goes along. */
    if (!rl->done && rl->result.text[0] && rl->last_error[0])
        return ls_err(e, -err, "%s of domain %u failed: %s; the last it said: \"%s\"", what,
                      rl->domid, rl->result.text, rl->last_error);
    if (rl->result.text[0])
        return ls_err(e, -err, "%s of domain %u failed: %s", what, rl->domid, rl->result.text);
    if (rl->first_error[0])
        return ls_err(e, -err, "%s of domain %u failed: %s", what, rl->domid, rl->first_error);
    return ls_err(e, -err, "%s of domain %u failed: %s", what, rl->domid, strerror(err));
}

/* libxc does plain blocking I/O and takes EAGAIN as an error, but a
 * migration's connection is O_NONBLOCK (lockstep's own I/O polls). The task
 * owns the fd while it runs, so it is made blocking for that time. */
static int fd_make_blocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fl;
}

static void fd_restore_flags(int fd, int fl)
{
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl);
}

/* ---- save ----------------------------------------------------------------- */

static void save_msg(struct relay *rl, const struct xh_msg *m, void *ctx)
{
    const struct ls_save_callbacks *cb = ctx;
    int v = 0;
    switch (m->kind) {
    case XH_CB_SUSPEND:
        reply(rl, cb->suspend ? cb->suspend(cb->data) : 0);
        return;
    case XH_CB_PRECOPY_POLICY: {
        struct ls_precopy_stats st = { .iteration = (unsigned)m->a,
                                       .total_written = (unsigned long)m->b,
                                       .dirty_count = m->value };
        reply(rl, cb->precopy_policy ? cb->precopy_policy(st, cb->data)
                                     : LS_POLICY_STOP_AND_COPY);
        return;
    }
    case XH_CB_SWITCH_LOGDIRTY:
        reply(rl, cb->switch_qemu_logdirty
                      ? cb->switch_qemu_logdirty(rl->domid, (unsigned)m->a, cb->data) : 0);
        return;
    case XH_CB_POSTCOPY: v = cb->postcopy ? cb->postcopy(cb->data) : 0; break;
    case XH_CB_CHECKPOINT: v = cb->checkpoint ? cb->checkpoint(cb->data) : 0; break;
    case XH_CB_WAIT_CHECKPOINT: v = cb->wait_checkpoint ? cb->wait_checkpoint(cb->data) : 0; break;
    case XH_PROGRESS:
        if (cb->progress)
            cb->progress(m->a * XC_PAGE_SIZE, m->b * XC_PAGE_SIZE, cb->data);
        return;
    default:
        return;   /* not a callback: nothing waits for an answer */
    }
    reply(rl, v);
}

int xen_save_memory(struct ls_backend *be, const struct ls_save_params *p,
                    const struct ls_save_callbacks *cb, struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    struct relay rl = { .x = x, .domid = p->domid, .chan = -1, .progress_fd = -1 };
    char dom[16], flags[16], stype[16];
    snprintf(dom, sizeof(dom), "%u", p->domid);
    unsigned xcflags = (p->flags & LS_SAVE_LIVE ? XCFLAGS_LIVE : 0) |
                       (p->flags & LS_SAVE_DEBUG ? XCFLAGS_DEBUG : 0);
    snprintf(flags, sizeof(flags), "%u", xcflags);
    snprintf(stype, sizeof(stype), "%d", (int)p->stream_type);
    char *argv[] = { "lockstep-xen-helper", "save", dom, flags, stype, NULL };
    int refused = refuse_tls(p->io_fd, p->domid, "save", e);
    if (refused < 0)
        return refused;
    rl.stall_ms = io_fd_timeout(p->io_fd);
    int fl = fd_make_blocking(p->io_fd);
    int rc = spawn_helper(&rl, argv, p->io_fd, p->recv_fd, e);
    if (rc == 0)
        relay_run(&rl, p->cancel_fd, save_msg, (void *)cb);
    fd_restore_flags(p->io_fd, fl);
    if (rc < 0)
        return rc;
    bool live = p->flags & LS_SAVE_LIVE;
    if (live && !rl.done)
        /* A killed helper leaves log-dirty mode on: switch it off. */
        xc_shadow_control(x->xch, p->domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
    return relay_result(&rl, "xc_domain_save", live, e);
}

/* ---- restore -------------------------------------------------------------- */

static bool cancel_requested(int cancel_fd)
{
    struct pollfd p = { .fd = cancel_fd, .events = POLLIN };
    return cancel_fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

struct restore_ctx {
    const struct ls_restore_callbacks *cb;
    int cancel_fd;
    struct xen_backend *x;
    uint32_t domid;
    bool remus;
    unsigned checkpoints;      /* Remus: checkpoints answered, so applied */
    bool broken;               /* Remus: the stream broke after one of them */
};

static void restore_msg(struct relay *rl, const struct xh_msg *m, void *vctx)
{
    struct restore_ctx *c = vctx;
    const struct ls_restore_callbacks *cb = c->cb;
    switch (m->kind) {
    case XH_CB_STATIC_DATA_DONE: {
        /* A stream from before Xen 4.14 has no CPUID policy: give the guest
         * the policy libxl gives a restored guest (the host's, levelled). */
        if ((m->a & XGR_SDD_MISSING_CPUID) &&
            xc_cpuid_apply_policy(c->x->xch, c->domid, true, NULL, 0, true, false, false,
                                  NULL, NULL) < 0) {
            reply(rl, -1);
            return;
        }
        reply(rl, cb->static_data_done ? cb->static_data_done((unsigned)m->a, cb->data) : 0);
        return;
    }
    case XH_RESTORE_RESULTS:
        /* libxc ends a Remus restore alike at its END record (the primary
         * stopped in order) and at a broken stream (failover; it logged the
         * failed read): the latter is the task failing, not an end. */
        if (c->remus && c->checkpoints && rl->error_since_checkpoint) {
            c->broken = true;
            return;
        }
        if (cb->restore_results)
            cb->restore_results(m->a, m->b, cb->data);
        return;
    case XH_PROGRESS:
        if (cb->progress)
            cb->progress(m->a * XC_PAGE_SIZE, m->b * XC_PAGE_SIZE, cb->data);
        return;
    case XH_PROGRESS_BYTES:
        if (cb->progress)
            cb->progress(m->a, m->b, cb->data);
        return;
    case XH_CB_SUSPEND: reply(rl, cb->suspend ? cb->suspend(cb->data) : 0); return;
    case XH_CB_POSTCOPY: reply(rl, cb->postcopy ? cb->postcopy(cb->data) : 0); return;
    case XH_CB_CHECKPOINT: {
        int v = cb->checkpoint ? cb->checkpoint(cb->data) : LS_CHECKPOINT_ERROR;
        /* Cancelled (the table's failover or stop) with a whole checkpoint
         * applied: libxc completes the domain from it, as libxl's secondary
         * answers a broken link. */
        if (rl->complete_on_cancel && v != LS_CHECKPOINT_SUCCESS && cancel_requested(c->cancel_fd))
            v = LS_CHECKPOINT_FAILOVER;
        reply(rl, v);
        /* libxc applies a Remus checkpoint as soon as this is answered and
         * calls nothing more until the next one; the backend contract (the
         * sim's, the tables') is a restore_results per applied checkpoint.
         * The gfns are known only when the stream ends (XH_DONE). */
        if (c->remus && v == LS_CHECKPOINT_SUCCESS) {
            c->checkpoints++;
            rl->complete_on_cancel = true;
            if (cb->restore_results)
                cb->restore_results(0, 0, cb->data);
        }
        return;
    }
    case XH_CB_WAIT_CHECKPOINT:
        reply(rl, cb->wait_checkpoint ? cb->wait_checkpoint(cb->data) : 0);
        return;
    default:
        return;   /* not a callback: nothing waits for an answer */
    }
}

int xen_restore_relay(struct xen_backend *x, char *const argv[],
                      const struct ls_restore_params *p, const struct ls_restore_callbacks *cb,
                      struct xen_restore_result *out, struct ls_errbuf *e)
{
    *out = (struct xen_restore_result){ 0 };
    struct relay rl = { .x = x, .domid = p->domid, .chan = -1, .progress_fd = -1,
                        .io_fd = p->io_fd };
    /* libxc's restore reports no progress: a file's read offset tells it. */
    struct stat st;
    if (fstat(p->io_fd, &st) == 0 && S_ISREG(st.st_mode)) {
        rl.progress_fd = p->io_fd;
        rl.progress_base = lseek(p->io_fd, 0, SEEK_CUR);
        rl.progress_total = st.st_size > rl.progress_base ? st.st_size - rl.progress_base : 0;
    }
    int fl = fd_make_blocking(p->io_fd);
    int rc = spawn_helper(&rl, argv, p->io_fd, p->send_back_fd, e);
    struct restore_ctx c = { .cb = cb, .cancel_fd = p->cancel_fd, .x = x, .domid = p->domid,
                             .remus = p->stream_type == LS_STREAM_REMUS };
    if (rc == 0)
        relay_run(&rl, p->cancel_fd, restore_msg, &c);
    fd_restore_flags(p->io_fd, fl);
    if (rc < 0)
        return rc;
    out->store_mfn = rl.result.a;
    out->console_mfn = rl.result.b;
    out->checkpoints = c.checkpoints;
    if (rl.complete_on_cancel && rl.cancelled && rl.done && rl.result.value == 0) {
        /* libxc completed the domain from the last whole checkpoint. */
        out->broken = true;
        return ls_err(e, -ECANCELED, "restore of domain %u cancelled after checkpoint %u; the "
                      "domain holds that checkpoint whole", p->domid, c.checkpoints);
    }
    if ((rc = relay_result(&rl, "xc_domain_restore", false, e)) < 0 || !c.broken)
        return rc;
    out->broken = true;
    return ls_err(e, -EPIPE, "the Remus stream broke after checkpoint %u (libxc: %s); domain "
                  "%u holds that checkpoint whole", c.checkpoints, rl.last_error, p->domid);
}

int xen_restore_memory(struct ls_backend *be, const struct ls_restore_params *p,
                       const struct ls_restore_callbacks *cb, struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    struct xen_target t;
    if (!xen_target_get(x, p->domid, &t))
        return ls_err(e, -ESRCH, "domain %u was not created by this lockstep for a restore",
                      p->domid);
    free(t.config_json);
    int refused = refuse_tls(p->io_fd, p->domid, "restore", e);
    if (refused < 0)
        return refused;
    char dom[16], store[16], console[16], stype[16];
    snprintf(dom, sizeof(dom), "%u", p->domid);
    snprintf(store, sizeof(store), "%d", t.store_port);
    snprintf(console, sizeof(console), "%d", t.console_port);
    snprintf(stype, sizeof(stype), "%d", (int)p->stream_type);
    char *argv[] = { "lockstep-xen-helper", "restore", dom, store, console, stype, NULL };
    struct xen_restore_result res;
    int rc = xen_restore_relay(x, argv, p, cb, &res, e);
    if (rc < 0 && !res.broken)
        return rc;
    /* A broken Remus stream left a whole checkpoint: announced, so that the
     * copy can take over; the task still fails, as its link did. */
    struct ls_errbuf ann;
    ls_err_clear(&ann);
    int arc = xen_announce_domain(x, p->domid, res.store_mfn, res.console_mfn, &ann);
    if (arc < 0)
        return ls_err(e, arc, "%s", ann.msg);
    return rc;
}
