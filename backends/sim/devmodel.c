/* backends/sim/devmodel.c - spawn, reap and kill the QEMU of an HVM domain. */
#include "backends/sim/devmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define DEFAULT_QEMU "qemu-system-x86_64"
#define DM_DIR_FMT "%s/domain-%u"
/* Every fd the child needs is moved at or above this number before the fork,
 * so the child's dup2 onto 0..3 never lands on one it still has to read. */
#define DM_HIGH_FD 16
/* make_dir's generation of the block QEMU (its own directory, domain-N.blk). */
#define DM_BLOCK_GEN (~0u)

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

#define FIRMWARE_NAME "firmware.bin"
#define FIRMWARE_SIZE 65536          /* QEMU takes a PC BIOS in 64 KiB units */

static void remove_files(struct sim_dm *dm)
{
    if (!dm->dir[0])
        return;
    char fw[SIMP_PATH_LEN + 16];
    snprintf(fw, sizeof(fw), "%s/" FIRMWARE_NAME, dm->dir);
    unlink(fw);
    snprintf(fw, sizeof(fw), "%s/dsk.sock", dm->dir);
    unlink(fw);
    unlink(dm->qmp_path);
    unlink(dm->log_path);
    rmdir(dm->dir);
}

/* The device model's firmware: a BIOS whose reset vector halts the CPU with
 * interrupts off. Under Xen a device model never runs guest code (the guest
 * runs on the hypervisor; here, in the daemon), but this QEMU has a TCG CPU,
 * and the default SeaBIOS, finding no boot device, keeps it ~70% busy for
 * as long as the domain runs. A halted CPU costs nothing, and QEMU's run
 * state (running, paused) behaves the same. It goes in as a read-only pflash
 * drive, not -bios: a QEMU started with -incoming leaves -bios ROM contents to
 * the RAM of a migration stream, and device state carries none, so a restored
 * QEMU executed zeros at 100% CPU; a flash reads its file at start, whatever
 * the run state. Neither is part of the device state, so nothing of this
 * reaches a stream. */
static int write_firmware(const char *path, struct ls_errbuf *e)
{
    static const uint8_t halt_loop[] = { 0xfa, 0xf4, 0xeb, 0xfd };   /* cli; hlt; jmp hlt */
    uint8_t *img = malloc(FIRMWARE_SIZE);
    if (!img)
        return ls_err(e, -ENOMEM, "out of memory");
    memset(img, 0xf4, FIRMWARE_SIZE);                     /* hlt everywhere else */
    memcpy(img + FIRMWARE_SIZE - 16, halt_loop, sizeof(halt_loop));   /* at F000:FFF0 */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ssize_t n = fd >= 0 ? write(fd, img, FIRMWARE_SIZE) : -1;
    int err = n < 0 ? errno : n != FIRMWARE_SIZE ? EIO : 0;
    if (fd >= 0 && close(fd) < 0 && !err)
        err = errno;
    free(img);
    if (fd < 0 || err)
        return ls_err(e, -(fd < 0 ? errno : err), "cannot write the device model's firmware %s: %s",
                      path, strerror(fd < 0 ? errno : err));
    return 0;
}

static int make_dir(struct sim_dm *dm, const char *rundir, uint32_t domid, unsigned gen,
                    struct ls_errbuf *e)
{
    /* A standby lives beside the QEMU in service until it replaces it: each
     * generation has its own directory (domain-N, then domain-N.1, ...). */
    size_t dl = gen == DM_BLOCK_GEN
                    ? (size_t)snprintf(dm->dir, sizeof(dm->dir), DM_DIR_FMT ".blk", rundir, domid)
                : gen ? (size_t)snprintf(dm->dir, sizeof(dm->dir), DM_DIR_FMT ".%u", rundir, domid,
                                         gen)
                      : (size_t)snprintf(dm->dir, sizeof(dm->dir), DM_DIR_FMT, rundir, domid);
    if (dl >= sizeof(dm->dir) ||
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

/* incoming_fd >= 0: -incoming fd:3 on it; defer: -incoming defer (a standby).
 * gen DM_BLOCK_GEN: the block QEMU, whose drives are the guest's disks as
 * -drive values (NULL-terminated), with the disk writer's monitor beside. */
static int spawn(struct sim_dm *dm, const char *rundir, uint32_t domid, unsigned gen,
                 const char *qemu, int incoming_fd, bool defer, const char *const *drives,
                 struct ls_errbuf *e)
{
    memset(dm, 0, sizeof(*dm));
    int rc = resolve_qemu(qemu, dm->qemu, sizeof(dm->qemu), e);
    if (rc == 0)
        rc = make_dir(dm, rundir, domid, gen, e);
    if (rc < 0) {
        remove_files(dm);
        memset(dm, 0, sizeof(*dm));
        return rc;
    }

    char qmp_arg[SIMP_SUN_LEN + 40], disk_qmp_arg[SIMP_PATH_LEN + 40], name_arg[48];
    char fw_path[SIMP_PATH_LEN + 16];
    char flash_arg[SIMP_PATH_LEN + 64];
    snprintf(fw_path, sizeof(fw_path), "%s/" FIRMWARE_NAME, dm->dir);
    if ((rc = write_firmware(fw_path, e)) < 0) {
        remove_files(dm);
        memset(dm, 0, sizeof(*dm));
        return rc;
    }
    snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", dm->qmp_path);
    /* The block QEMU's second monitor, the disk writer's (disk.h): QEMU
     * serves one client per monitor, and lockstep's jobs hold the first. */
    snprintf(disk_qmp_arg, sizeof(disk_qmp_arg), "unix:%s/dsk.sock,server=on,wait=off", dm->dir);
    snprintf(name_arg, sizeof(name_arg), "lockstep-domain-%u", domid);
    snprintf(flash_arg, sizeof(flash_arg), "if=pflash,format=raw,readonly=on,file=%s", fw_path);
    /* Recipe section 4: without the three migration globals, the state this
     * QEMU saves has no configuration section and a QEMU restoring it at
     * startup refuses it ("Configuration section missing"); suppress-vmdesc
     * drops the trailing description a load would complain about. These are
     * what Xen's accelerator sets through its compat properties. */
    const char *argv[64];
    int a = 0;
    argv[a++] = dm->qemu;
    argv[a++] = "-name";        argv[a++] = name_arg;
    if (gen == DM_BLOCK_GEN) {
        /* The guest's disks only (disk.h): no machine, no CPU, no device state. */
        argv[a++] = "-machine";     argv[a++] = "none";
        argv[a++] = "-nodefaults";  argv[a++] = "-no-user-config";
        argv[a++] = "-display";     argv[a++] = "none";
        argv[a++] = "-S";
        goto monitors;
    }
    argv[a++] = "-machine";     argv[a++] = "q35,suppress-vmdesc=on";
    argv[a++] = "-accel";       argv[a++] = "tcg";
    argv[a++] = "-m";           argv[a++] = "32";
    argv[a++] = "-drive";       argv[a++] = flash_arg;
    argv[a++] = "-nodefaults";  argv[a++] = "-no-user-config";
    argv[a++] = "-display";     argv[a++] = "none";
    argv[a++] = "-S";
    /* The RTC follows the guest's own clock from a fixed base, not the host's
     * time: device state saved, restored and saved again is the same bytes. */
    argv[a++] = "-rtc";         argv[a++] = "base=2000-01-01T00:00:00,clock=vm";
    argv[a++] = "-global";      argv[a++] = "migration.send-configuration=off";
    argv[a++] = "-global";      argv[a++] = "migration.send-section-footer=off";
    argv[a++] = "-global";      argv[a++] = "migration.store-global-state=off";
monitors:
    argv[a++] = "-qmp";         argv[a++] = qmp_arg;
    if (gen == DM_BLOCK_GEN) {
        argv[a++] = "-qmp";     argv[a++] = disk_qmp_arg;
    }
    for (unsigned i = 0; drives && drives[i] && a < 58; i++) {
        argv[a++] = "-drive";
        argv[a++] = drives[i];
    }
    if (incoming_fd >= 0 || defer) {
        argv[a++] = "-incoming";
        argv[a++] = defer ? "defer" : "fd:3";
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
    dm->incoming = incoming_fd >= 0 || defer;
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

int sim_dm_spawn(struct sim_dm *dm, const char *rundir, uint32_t domid, const char *qemu,
                 int incoming_fd, struct ls_errbuf *e)
{
    return spawn(dm, rundir, domid, 0, qemu, incoming_fd, false, NULL, e);
}

int sim_dm_spawn_standby(struct sim_dm *dm, const char *rundir, uint32_t domid, unsigned gen,
                         const char *qemu, struct ls_errbuf *e)
{
    return spawn(dm, rundir, domid, gen, qemu, -1, true, NULL, e);
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

/* ---- a blocking QMP exchange (the guard's cont) ------------------------------ */

struct qmp_peer {
    int fd;
    const char *path;
    char own_path[SIMP_SUN_LEN];   /* sim_qmp_open's copy */
    struct timespec deadline;
    char buf[16384];               /* QEMU's greeting, replies and events are far shorter */
    size_t len;
};

static int ms_left(const struct qmp_peer *p)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(p->deadline.tv_sec - now.tv_sec) * 1000 +
                   (p->deadline.tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

/* msg, and with its first byte fd (SCM_RIGHTS) when fd >= 0: QEMU's getfd
 * and add-fd take the descriptor that comes with their command. */
static int peer_send(struct qmp_peer *p, const char *msg, int fd, struct ls_errbuf *e)
{
    size_t off = 0, n = strlen(msg);
    while (off < n) {
        ssize_t w;
        if (fd >= 0) {
            union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
            memset(&u, 0, sizeof(u));
            struct iovec iov = { .iov_base = (void *)msg, .iov_len = n };
            struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                                 .msg_controllen = sizeof(u.buf) };
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &fd, sizeof(int));
            w = sendmsg(p->fd, &mh, MSG_NOSIGNAL);
            if (w > 0)
                fd = -1;
        } else {
            w = send(p->fd, msg + off, n - off, MSG_NOSIGNAL);
        }
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return ls_err(e, -errno, "sending %s to QEMU (%s): %s", msg, p->path, strerror(errno));
        struct pollfd pf = { .fd = p->fd, .events = POLLOUT };
        int left = ms_left(p);
        if (left == 0 || poll(&pf, 1, left) == 0)
            return ls_err(e, -ETIMEDOUT, "QEMU (%s) took no command within the deadline", p->path);
    }
    return 0;
}

/* The next message that is not an event, as a yajl tree the caller frees. */
static int peer_recv(struct qmp_peer *p, const char *awaited, yajl_val *out,
                     struct ls_errbuf *e)
{
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            *nl = '\0';
            char why[128] = "";
            yajl_val v = yajl_tree_parse(p->buf, why, sizeof(why));
            size_t used = (size_t)(nl + 1 - p->buf);
            if (!v || !YAJL_IS_OBJECT(v)) {
                int rc = ls_err(e, -EPROTO, "QEMU (%s) sent \"%.80s\" where %s was awaited: "
                                "not a JSON object", p->path, p->buf, awaited);
                yajl_tree_free(v);
                return rc;
            }
            memmove(p->buf, nl + 1, p->len - used);
            p->len -= used;
            const char *event[] = { "event", NULL };
            if (yajl_tree_get(v, event, yajl_t_any)) {
                yajl_tree_free(v);   /* STOP, RESUME, ...: not an answer */
                continue;
            }
            *out = v;
            return 0;
        }
        if (p->len == sizeof(p->buf))
            return ls_err(e, -EPROTO, "QEMU (%s) sent a line over %zu bytes where %s was awaited",
                          p->path, sizeof(p->buf), awaited);
        struct pollfd pf = { .fd = p->fd, .events = POLLIN };
        int left = ms_left(p);
        int n = left ? poll(&pf, 1, left) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return ls_err(e, -ETIMEDOUT, "QEMU (%s) sent no %s within the deadline", p->path,
                          awaited);
        ssize_t r = read(p->fd, p->buf + p->len, sizeof(p->buf) - p->len);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return ls_err(e, -errno, "reading QEMU's %s (%s): %s", awaited, p->path,
                          strerror(errno));
        if (r == 0)
            return ls_err(e, -ECONNRESET, "QEMU (%s) closed the connection instead of sending "
                          "its %s", p->path, awaited);
        p->len += (size_t)r;
    }
}

/* cmd's answer: 0 with its "return" value left in *ret (may be NULL), or an
 * error naming QEMU's class and description. args: a JSON object or NULL;
 * fd >= 0 goes with the command. cmd and args are our own text. */
static int peer_exec_fd(struct qmp_peer *p, const char *cmd, const char *args, int fd,
                        yajl_val *tree, yajl_val *ret, struct ls_errbuf *e)
{
    char msg[512], awaited[64];
    if (args)
        snprintf(msg, sizeof(msg), "{\"execute\": \"%s\", \"arguments\": %s}\n", cmd, args);
    else
        snprintf(msg, sizeof(msg), "{\"execute\": \"%s\"}\n", cmd);
    snprintf(awaited, sizeof(awaited), "answer to %s", cmd);
    int rc = peer_send(p, msg, fd, e);
    if (rc == 0)
        rc = peer_recv(p, awaited, tree, e);
    if (rc < 0)
        return rc;
    const char *ret_path[] = { "return", NULL };
    const char *cls_path[] = { "error", "class", NULL };
    const char *desc_path[] = { "error", "desc", NULL };
    *ret = yajl_tree_get(*tree, ret_path, yajl_t_any);
    if (*ret)
        return 0;
    yajl_val cls = yajl_tree_get(*tree, cls_path, yajl_t_string);
    yajl_val desc = yajl_tree_get(*tree, desc_path, yajl_t_string);
    const char *cls_text = cls ? YAJL_GET_STRING(cls) : NULL;
    const char *desc_text = desc ? YAJL_GET_STRING(desc) : NULL;
    return ls_err(e, -EIO, "QEMU (%s) refused %s: %s: %s", p->path, cmd,
                  cls_text ? cls_text : "(no class)", desc_text ? desc_text : "(no description)");
}

static int peer_exec(struct qmp_peer *p, const char *cmd, yajl_val *tree, yajl_val *ret,
                     struct ls_errbuf *e)
{
    return peer_exec_fd(p, cmd, NULL, -1, tree, ret, e);
}

static int peer_connect(struct qmp_peer *p, struct ls_errbuf *e)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(p->path) >= sizeof(sa.sun_path))
        return ls_err(e, -ENAMETOOLONG, "QMP socket path too long: %s", p->path);
    memcpy(sa.sun_path, p->path, strlen(p->path) + 1);
    for (;;) {
        p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (p->fd < 0)
            return ls_err(e, -errno, "QMP socket: %s", strerror(errno));
        if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return 0;
        int err = errno;
        close(p->fd);
        p->fd = -1;
        /* A full backlog: QEMU has not yet taken the lost client's hang-up. */
        if (err != EAGAIN || ms_left(p) == 0)
            return ls_err(e, -err, "cannot connect to QEMU's QMP socket %s: %s", p->path,
                          strerror(err));
        struct timespec ms = { .tv_nsec = 5 * 1000000 };
        nanosleep(&ms, NULL);
    }
}

/* Connected to the QMP socket of dm, greeted and past qmp_capabilities, with
 * timeout_ms for the whole exchange. The caller frees p (peer_close). */
static void peer_deadline(struct qmp_peer *p, unsigned timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, &p->deadline);
    p->deadline.tv_sec += timeout_ms / 1000;
    p->deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (p->deadline.tv_nsec >= 1000000000) {
        p->deadline.tv_sec++;
        p->deadline.tv_nsec -= 1000000000;
    }
}

static int peer_open(const struct sim_dm *dm, unsigned timeout_ms, struct qmp_peer **out,
                     struct ls_errbuf *e)
{
    struct qmp_peer *p = calloc(1, sizeof(*p));
    if (!p) {
        /* -ENOMEM spelled out: callers go on when rc is 0 (the analyzer
         * cannot see that ls_err returns its rc). */
        ls_err(e, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    p->fd = -1;
    p->path = dm->qmp_path;
    peer_deadline(p, timeout_ms);
    *out = p;
    yajl_val tree = NULL, ret = NULL;
    int rc = peer_connect(p, e);
    if (rc == 0)
        rc = peer_recv(p, "greeting", &tree, e);
    if (rc == 0) {
        const char *qmp_path[] = { "QMP", NULL };
        if (!yajl_tree_get(tree, qmp_path, yajl_t_object))
            rc = ls_err(e, -EPROTO, "QEMU (%s) sent no QMP greeting", p->path);
        yajl_tree_free(tree);
        tree = NULL;
    }
    if (rc == 0) {
        rc = peer_exec(p, "qmp_capabilities", &tree, &ret, e);
        yajl_tree_free(tree);
    }
    return rc;
}

static void peer_close(struct qmp_peer *p)
{
    if (p && p->fd >= 0)
        close(p->fd);
    free(p);
}

int sim_qmp_open(const char *path, unsigned timeout_ms, struct qmp_peer **out,
                 struct ls_errbuf *e)
{
    struct sim_dm dm = { 0 };
    snprintf(dm.qmp_path, sizeof(dm.qmp_path), "%s", path);
    int rc = peer_open(&dm, timeout_ms, out, e);
    if (*out) {
        snprintf((*out)->own_path, sizeof((*out)->own_path), "%s", path);
        (*out)->path = (*out)->own_path;   /* dm dies here */
    }
    return rc;
}

int sim_qmp_hmp(struct qmp_peer *p, const char *line, unsigned timeout_ms, struct ls_errbuf *e)
{
    /* The command line in a JSON string: only '"' and '\' need escapes here. */
    char args[400];
    size_t o = (size_t)snprintf(args, sizeof(args), "{\"command-line\": \"");
    const char *c = line;
    for (; *c && o + 4 < sizeof(args); c++) {
        if (*c == '"' || *c == '\\')
            args[o++] = '\\';
        args[o++] = *c;
    }
    if (*c)
        return ls_err(e, -E2BIG, "HMP command too long: %s", line);
    memcpy(args + o, "\"}", 3);
    peer_deadline(p, timeout_ms);
    yajl_val tree = NULL, ret = NULL;
    int rc = peer_exec_fd(p, "human-monitor-command", args, -1, &tree, &ret, e);
    const char *out = rc == 0 && YAJL_IS_STRING(ret) ? YAJL_GET_STRING(ret) : "";
    if (rc == 0 && out && out[0] && strcmp(out, "OK\r\n") != 0)
        rc = ls_err(e, -EIO, "QEMU (%s) refused \"%s\": %.*s", p->path, line,
                    (int)strcspn(out, "\r\n"), out);
    yajl_tree_free(tree);
    return rc;
}

int sim_qmp_exec(struct qmp_peer *p, const char *cmd, const char *args, unsigned timeout_ms,
                 struct ls_errbuf *e)
{
    peer_deadline(p, timeout_ms);
    yajl_val tree = NULL, ret = NULL;
    int rc = peer_exec_fd(p, cmd, args, -1, &tree, &ret, e);
    yajl_tree_free(tree);
    return rc;
}

void sim_qmp_close(struct qmp_peer *p)
{
    peer_close(p);
}

/* QEMU's run state ("running", "paused", "inmigrate", ...) into status. */
static int peer_status(struct qmp_peer *p, char *status, size_t len, struct ls_errbuf *e)
{
    yajl_val tree = NULL, ret = NULL;
    int rc = peer_exec(p, "query-status", &tree, &ret, e);
    if (rc == 0) {
        const char *st_path[] = { "status", NULL };
        yajl_val st = yajl_tree_get(ret, st_path, yajl_t_string);
        const char *text = st ? YAJL_GET_STRING(st) : NULL;
        if (text)
            snprintf(status, len, "%s", text);
        else
            rc = ls_err(e, -EPROTO, "QEMU (%s) answered query-status without a status", p->path);
    }
    yajl_tree_free(tree);
    return rc;
}

/* One command whose answer is only checked. */
static int peer_do(struct qmp_peer *p, const char *cmd, const char *args, int fd,
                   struct ls_errbuf *e)
{
    yajl_val tree = NULL, ret = NULL;
    int rc = peer_exec_fd(p, cmd, args, fd, &tree, &ret, e);
    yajl_tree_free(tree);
    return rc;
}

int sim_dm_cont_paused(const struct sim_dm *dm, unsigned timeout_ms, char *status, size_t len,
                       struct ls_errbuf *e)
{
    snprintf(status, len, "unknown");
    if (dm->pid <= 0 || !dm->alive)
        return ls_err(e, -ESRCH, "no live QEMU to let run");
    struct qmp_peer *p = NULL;
    int rc = peer_open(dm, timeout_ms, &p, e);
    if (rc == 0 && (rc = peer_status(p, status, len, e)) == 0)
        rc = strcmp(status, "paused") == 0 ? 1 : 0;
    if (rc == 1) {
        int crc = peer_do(p, "cont", NULL, -1, e);
        if (crc < 0)
            rc = crc;
    }
    peer_close(p);
    return rc;
}

/* ---- loading a device state (a COLO checkpoint, a migration's) ---------------- */

/* QEMU's own last words: up to three last non-empty lines of its log, joined
 * by " / " ("Configuration section missing / load of migration failed: ..."). */
static void log_tail(const char *path, char *out, size_t len)
{
    char buf[4096];
    snprintf(out, len, "(its log %s says nothing)", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *lines[3];
    int k = 0;
    for (char *end = buf + n; end > buf && k < 3;) {
        while (end > buf && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
            *--end = '\0';
        if (end == buf)
            break;
        char *start = end;
        while (start > buf && start[-1] != '\n')
            start--;
        lines[k++] = start;
        end = start;
    }
    if (k == 0)
        return;
    size_t off = 0;
    out[0] = '\0';
    for (int i = k; i-- > 0 && off < len;)
        off += (size_t)snprintf(out + off, len - off, "%s%s", lines[i], i ? " / " : "");
}

/* After a broken QMP exchange: if dm's QEMU is ending, reap it (waiting at
 * most a second: QEMU exits at once after a failed load) and rewrite e as
 * its end with its log's reason. */
static void explain_death(struct sim_dm *dm, const char *what, const char *doing,
                          struct ls_errbuf *e)
{
    int st = 0;
    pid_t r = 0;
    for (int i = 0; i < 1000 && (r = waitpid(dm->pid, &st, WNOHANG)) == 0; i++) {
        struct timespec ms = { .tv_nsec = 1000000 };
        nanosleep(&ms, NULL);
    }
    if (r != dm->pid)
        return;   /* alive: the QMP error stands */
    dm->alive = false;
    dm->wait_status = st;
    unlink(dm->qmp_path);   /* as sim_dm_reaped: nobody listens there; the log stays */
    char how[64], tail[700];
    sim_dm_status_text(st, how, sizeof(how));
    log_tail(dm->log_path, tail, sizeof(tail));
    ls_err_clear(e);   /* its end says more than the broken connection did */
    ls_err(e, -ECHILD, "the %s (%s, pid %d) %s %s: %s", what, dm->qemu, (int)dm->pid, how,
           doing, tail);
}

#define LOAD_FDNAME "lockstep-device-state"

int sim_dm_load_standby(struct sim_dm *sb, int state_fd, unsigned timeout_ms,
                        struct ls_errbuf *e)
{
    if (sb->pid <= 0)
        return ls_err(e, -ENODEV, "there is no standby QEMU to load the device state into");
    if (!sb->alive) {
        char how[64];
        return ls_err(e, -ECHILD, "the standby QEMU (pid %d) %s before it was given the device "
                      "state (its log: %s)", (int)sb->pid,
                      sim_dm_status_text(sb->wait_status, how, sizeof(how)), sb->log_path);
    }
    /* The client's fd shares its offset with ours: QEMU reads from here. */
    if (lseek(state_fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
        return ls_err(e, -errno, "the device state fd: %s", strerror(errno));
    struct qmp_peer *p = NULL;
    char status[32] = "";
    int rc = peer_open(sb, timeout_ms, &p, e);
    if (rc == 0)
        rc = peer_do(p, "getfd", "{\"fdname\": \"" LOAD_FDNAME "\"}", state_fd, e);
    if (rc == 0)
        rc = peer_do(p, "migrate-incoming", "{\"uri\": \"fd:" LOAD_FDNAME "\"}", -1, e);
    /* The load runs in QEMU's main loop; "inmigrate" until it is in. */
    while (rc == 0 && (rc = peer_status(p, status, sizeof(status), e)) == 0 &&
           strcmp(status, "inmigrate") == 0) {
        struct timespec pause = { .tv_nsec = 200000 };
        nanosleep(&pause, NULL);
    }
    if (rc == 0 && strcmp(status, "paused") != 0)
        rc = ls_err(e, -EPROTO, "the standby QEMU (pid %d) is \"%s\" after loading the device "
                    "state, not paused", (int)sb->pid, status);
    peer_close(p);
    if (rc < 0)
        explain_death(sb, "standby QEMU", "while loading the device state", e);
    return rc;
}

int sim_dm_load_in_place(struct sim_dm *dm, int state_fd, unsigned timeout_ms,
                         struct ls_errbuf *e)
{
    if (dm->pid <= 0 || !dm->alive)
        return ls_err(e, -ESRCH, "the domain has no live QEMU to load the device state into");
    /* QEMU opens /dev/fdset/N read-only for a load and takes only an fd of
     * that access mode from the set. */
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", state_fd);
    int rfd = open(self, O_RDONLY | O_CLOEXEC);
    if (rfd < 0)
        return ls_err(e, -errno, "reopening the device state read-only: %s", strerror(errno));
    struct qmp_peer *p = NULL;
    char status[32] = "", args[96];
    yajl_val tree = NULL, ret = NULL;
    long long fdset = -1;
    int rc = peer_open(dm, timeout_ms, &p, e);
    if (rc == 0)
        rc = peer_status(p, status, sizeof(status), e);
    /* "Cannot update device state while vm is running". */
    if (rc == 0 && strcmp(status, "running") == 0)
        rc = peer_do(p, "stop", NULL, -1, e);
    if (rc == 0 && (rc = peer_exec_fd(p, "add-fd", NULL, rfd, &tree, &ret, e)) == 0) {
        const char *id_path[] = { "fdset-id", NULL };
        yajl_val id = yajl_tree_get(ret, id_path, yajl_t_number);
        if (id && YAJL_IS_INTEGER(id))
            fdset = YAJL_GET_INTEGER(id);
        else
            rc = ls_err(e, -EPROTO, "QEMU (%s) answered add-fd without an fdset-id", p->path);
    }
    yajl_tree_free(tree);
    if (rc == 0) {
        snprintf(args, sizeof(args), "{\"filename\": \"/dev/fdset/%lld\"}", fdset);
        rc = peer_do(p, "xen-load-devices-state", args, -1, e);
    }
    if (rc == 0) {
        snprintf(args, sizeof(args), "{\"fdset-id\": %lld}", fdset);
        rc = peer_do(p, "remove-fd", args, -1, e);
    }
    peer_close(p);
    close(rfd);
    if (rc < 0)
        explain_death(dm, "QEMU configured load-state-in-place", "on xen-load-devices-state", e);
    return rc;
}

void sim_dm_replace(struct sim_dm *dm, struct sim_dm *standby)
{
    unsigned caps = dm->caps;
    /* SIGKILLed now, reaped by the daemon's SIGCHLD handling: a QEMU's exit
     * took 5-37 ms here, which a checkpoint need not wait for. */
    if (dm->pid > 0 && dm->alive)
        kill(dm->pid, SIGKILL);
    remove_files(dm);
    *dm = *standby;
    dm->caps = caps;
    memset(standby, 0, sizeof(*standby));
}

/* ---- the block QEMU (disk.h) ---------------------------------------------------- */

int sim_dm_spawn_block(struct sim_dm *dm, const char *rundir, uint32_t domid, const char *qemu,
                       const char *const *drives, unsigned timeout_ms, struct ls_errbuf *e)
{
    int rc = spawn(dm, rundir, domid, DM_BLOCK_GEN, qemu, -1, false, drives, e);
    if (rc < 0)
        return rc;
    /* Lockstep's jobs connect as soon as the attach is answered: wait for
     * QEMU's monitor (about 20 ms for -machine none), or its early end. */
    struct qmp_peer *p = NULL;
    for (unsigned ms = 0;; ms += 5) {
        rc = peer_open(dm, 1000, &p, e);
        peer_close(p);
        p = NULL;
        if (rc == 0)
            return 0;
        int st;
        if (waitpid(dm->pid, &st, WNOHANG) == dm->pid) {
            dm->alive = false;
            char how[64], tail[700];
            log_tail(dm->log_path, tail, sizeof(tail));
            ls_err_clear(e);
            rc = ls_err(e, -ECHILD, "the block QEMU (%s) %s at start: %s", dm->qemu,
                        sim_dm_status_text(st, how, sizeof(how)), tail);
            sim_dm_kill(dm);
            return rc;
        }
        if (ms >= timeout_ms)
            break;
        struct timespec five = { .tv_nsec = 5000000 };
        nanosleep(&five, NULL);
    }
    sim_dm_kill(dm);
    return rc;
}
