/* backends/sim/devmodel.c - spawn, reap and kill the QEMU of an HVM domain. */
#include "backends/sim/devmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_QEMU "qemu-system-x86_64"
#define DM_DIR_FMT "%s/domain-%u"
/* Every fd the child needs is moved at or above this number before the fork,
 * so the child's dup2 onto 0..3 never lands on one it still has to read. */
#define DM_HIGH_FD 16

static bool is_executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* The binary to run: a path as given, or a bare name looked up in PATH here,
 * before the fork (the child of a threaded daemon may only exec). */
static int resolve_qemu(const char *qemu, char *out, size_t len, struct ls_errbuf *e)
{
    const char *name = qemu && *qemu ? qemu : DEFAULT_QEMU;
    if (strchr(name, '/')) {
        if (!is_executable(name))
            return ls_err(e, access(name, F_OK) == 0 ? -EACCES : -ENOENT,
                          "cannot start the device model: %s is %s", name,
                          access(name, F_OK) == 0 ? "not an executable file" : "missing");
        if ((size_t)snprintf(out, len, "%s", name) >= len)
            return ls_err(e, -ENAMETOOLONG, "device model path too long: %s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
        size_t l = strcspn(p, ":");
        if (l > 0 && (size_t)snprintf(out, len, "%.*s/%s", (int)l, p, name) < len &&
            is_executable(out))
            return 0;
        p += l;
        if (*p == ':')
            p++;
    }
    return ls_err(e, -ENOENT, "cannot start the device model: %s not found in PATH (install "
                  "QEMU, give its path with --qemu, or use --no-device-model)", name);
}

const char *sim_dm_status_text(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "ended (wait status 0x%x)", (unsigned)st);
    return buf;
}

static void remove_files(struct sim_dm *dm)
{
    if (!dm->dir[0])
        return;
    unlink(dm->qmp_path);
    unlink(dm->log_path);
    rmdir(dm->dir);
}

static int make_dir(struct sim_dm *dm, const char *rundir, uint32_t domid, struct ls_errbuf *e)
{
    if ((size_t)snprintf(dm->dir, sizeof(dm->dir), DM_DIR_FMT, rundir, domid) >= sizeof(dm->dir) ||
        (size_t)snprintf(dm->qmp_path, sizeof(dm->qmp_path), "%s/qmp.sock", dm->dir) >=
            sizeof(dm->qmp_path) - 4 ||   /* sun_path holds 108 bytes */
        (size_t)snprintf(dm->log_path, sizeof(dm->log_path), "%s/qemu.log", dm->dir) >=
            sizeof(dm->log_path))
        return ls_err(e, -ENAMETOOLONG, "the runtime directory %s is too long for a device model "
                      "socket path (at most 107 bytes)", rundir);
    if (strchr(dm->dir, ','))
        return ls_err(e, -EINVAL, "the runtime directory %s contains ',', which QEMU's -qmp "
                      "option cannot carry", rundir);
    /* A directory left by a daemon that was killed: nothing in it is live. */
    unlink(dm->qmp_path);
    if (mkdir(dm->dir, 0700) < 0 && errno != EEXIST)
        return ls_err(e, -errno, "cannot create %s: %s", dm->dir, strerror(errno));
    struct stat st;
    if (lstat(dm->dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        chmod(dm->dir, 0700) < 0)
        return ls_err(e, -EPERM, "%s is not a private directory of this user", dm->dir);
    return 0;
}

/* A close-on-exec copy of fd at DM_HIGH_FD or above; fd itself is closed
 * unless keep (the caller's). */
static int move_high(int fd, bool keep)
{
    if (fd < 0)
        return fd;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, DM_HIGH_FD);
    int saved = errno;
    if (!keep)
        close(fd);
    errno = saved;
    return hi;
}

int sim_dm_spawn(struct sim_dm *dm, const char *rundir, uint32_t domid, const char *qemu,
                 int incoming_fd, struct ls_errbuf *e)
{
    memset(dm, 0, sizeof(*dm));
    int rc = resolve_qemu(qemu, dm->qemu, sizeof(dm->qemu), e);
    if (rc == 0)
        rc = make_dir(dm, rundir, domid, e);
    if (rc < 0) {
        remove_files(dm);
        memset(dm, 0, sizeof(*dm));
        return rc;
    }

    char qmp_arg[SIMP_SUN_LEN + 40], name_arg[48];
    snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", dm->qmp_path);
    snprintf(name_arg, sizeof(name_arg), "lockstep-domain-%u", domid);
    /* Recipe section 4: without the three migration globals, the state this
     * QEMU saves has no configuration section and a QEMU restoring it at
     * startup refuses it ("Configuration section missing"); suppress-vmdesc
     * drops the trailing description a load would complain about. These are
     * what Xen's accelerator sets through its compat properties. */
    const char *argv[40];
    int a = 0;
    argv[a++] = dm->qemu;
    argv[a++] = "-name";        argv[a++] = name_arg;
    argv[a++] = "-machine";     argv[a++] = "q35,suppress-vmdesc=on";
    argv[a++] = "-accel";       argv[a++] = "tcg";
    argv[a++] = "-m";           argv[a++] = "32";
    argv[a++] = "-nodefaults";  argv[a++] = "-no-user-config";
    argv[a++] = "-display";     argv[a++] = "none";
    argv[a++] = "-S";
    /* The RTC follows the guest's own clock from a fixed base, not the host's
     * time: device state saved, restored and saved again is the same bytes. */
    argv[a++] = "-rtc";         argv[a++] = "base=2000-01-01T00:00:00,clock=vm";
    argv[a++] = "-global";      argv[a++] = "migration.send-configuration=off";
    argv[a++] = "-global";      argv[a++] = "migration.send-section-footer=off";
    argv[a++] = "-global";      argv[a++] = "migration.store-global-state=off";
    argv[a++] = "-qmp";         argv[a++] = qmp_arg;
    if (incoming_fd >= 0) {
        argv[a++] = "-incoming";
        argv[a++] = "fd:3";
    }
    argv[a] = NULL;

    int nul = move_high(open("/dev/null", O_RDONLY | O_CLOEXEC), false);
    int logfd = move_high(open(dm->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600),
                          false);
    int in = move_high(incoming_fd, true);
    int ep[2] = { -1, -1 };
    if (pipe2(ep, O_CLOEXEC) == 0) {
        ep[0] = move_high(ep[0], false);
        ep[1] = move_high(ep[1], false);
    }
    if (nul < 0 || logfd < 0 || ep[0] < 0 || ep[1] < 0 || (incoming_fd >= 0 && in < 0)) {
        rc = ls_err(e, -errno ? -errno : -EMFILE, "cannot start the device model: %s (log %s)",
                    strerror(errno ? errno : EMFILE), dm->log_path);
        goto out;
    }

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = ls_err(e, -errno, "cannot start the device model: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* The child of a threaded daemon: async-signal-safe calls only. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigaction(SIGPIPE, &dfl, NULL);
        /* The host dying takes its device models with it. The daemon may
         * have died between fork and prctl: then we were reparented. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(126);
        setpgid(0, 0);   /* a ^C to the daemon's terminal is not the QEMU's */
        dup2(nul, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (in >= 0)
            dup2(in, 3);   /* dup2 clears close-on-exec */
        close_range(in >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC);
        execv(argv[0], (char *const *)argv);
        int err = errno;
        (void)!write(ep[1], &err, sizeof(err));
        _exit(127);
    }
    close(ep[1]);
    ep[1] = -1;
    int child_errno = 0;
    ssize_t n;
    do
        n = read(ep[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        int st;
        waitpid(pid, &st, 0);
        rc = ls_err(e, -child_errno, "cannot start the device model %s: %s", dm->qemu,
                    strerror(child_errno));
        goto out;
    }
    dm->pid = pid;
    dm->alive = true;
    dm->incoming = incoming_fd >= 0;
    rc = 0;
out:
    if (nul >= 0)
        close(nul);
    if (logfd >= 0)
        close(logfd);
    if (in >= 0)
        close(in);
    if (ep[0] >= 0)
        close(ep[0]);
    if (ep[1] >= 0)
        close(ep[1]);
    if (rc < 0) {
        remove_files(dm);
        memset(dm, 0, sizeof(*dm));
    }
    return rc;
}

void sim_dm_kill(struct sim_dm *dm)
{
    if (dm->pid > 0 && dm->alive) {
        kill(dm->pid, SIGKILL);
        int st;
        while (waitpid(dm->pid, &st, 0) < 0 && errno == EINTR)
            ;
        dm->alive = false;
        dm->wait_status = st;
    }
    remove_files(dm);
    memset(dm, 0, sizeof(*dm));
}

bool sim_dm_reaped(struct sim_dm *dm, pid_t pid, int status)
{
    if (dm->pid != pid || !dm->alive)
        return false;
    dm->alive = false;
    dm->wait_status = status;
    unlink(dm->qmp_path);   /* nobody listens there any more; the log stays */
    return true;
}

void sim_dm_describe(const struct sim_dm *dm, struct simp_dm_info *out)
{
    memset(out, 0, sizeof(*out));
    out->present = dm->pid > 0;
    out->alive = dm->alive;
    out->pid = dm->pid;
    out->wait_status = dm->wait_status;
    out->incoming = dm->incoming;
    /* Only what the domain was configured with: no probe can prove that
     * xen-load-devices-state is safe (Debian's QEMU 7.2 aborts on it, and a
     * probe would be that abort). */
    out->caps = dm->caps;
    memcpy(out->qmp_path, dm->qmp_path, sizeof(out->qmp_path));
    memcpy(out->log_path, dm->log_path, sizeof(out->log_path));
    memcpy(out->qemu, dm->qemu, sizeof(out->qemu));
}
