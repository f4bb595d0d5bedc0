/* backends/sim/sim_client.c - connect to (or start) lockstep-simd; domain control.
 *
 * One connection per backend instance, one request in flight under a mutex:
 * control calls from worker threads and the memory task's few state
 * requests interleave safely, and the requests are short (the page traffic
 * never goes through the daemon; it is in shared memory).
 */
#include "backends/sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/sim/sim_internal.h"
#include "io/fdio.h"
#include "io/stream_format.h"

extern char **environ;

#define START_TIMEOUT_MS 15000

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int sim_rundir(char *buf, size_t len)
{
    return simp_rundir(buf, len);
}

/* ---- finding and starting the daemon ------------------------------------ */

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

static int find_simd(char *out, size_t len, struct ls_errbuf *e)
{
    const char *env = getenv("LOCKSTEP_SIMD");
    if (env && *env) {
        if (!executable(env))
            return ls_err(e, -ENOENT, "cannot start the sim daemon: LOCKSTEP_SIMD=%s is not an executable file",
                          env);
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
            if ((size_t)snprintf(out, len, "%s/lockstep-simd", exe) < len && executable(out))
                return 0;
            if ((size_t)snprintf(out, len, "%s/../backends/sim/lockstep-simd", exe) < len &&
                executable(out))   /* build tree */
                return 0;
        }
    }
    const char *path = getenv("PATH");
    if (path) {
        const char *p = path;
        while (*p) {
            size_t l = strcspn(p, ":");
            if (l > 0 && (size_t)snprintf(out, len, "%.*s/lockstep-simd", (int)l, p) < len &&
                executable(out))
                return 0;
            p += l;
            if (*p == ':')
                p++;
        }
    }
    return ls_err(e, -ENOENT, "cannot start the sim daemon: lockstep-simd not found "
                  "(set LOCKSTEP_SIMD, or install it next to this program or in PATH)");
}

/* Runs lockstep-simd, which daemonizes and exits once it serves (or found
 * another daemon serving). Its startup complaint comes back on a pipe. */
static int spawn_daemon(struct sim_backend *sb, struct ls_errbuf *e)
{
    char bin[PATH_MAX];
    int rc = find_simd(bin, sizeof(bin), e);
    if (rc < 0)
        return rc;

    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        return ls_err(e, -errno, "cannot start the sim daemon: pipe: %s", strerror(errno));

    char idle[32], pool[32];
    const char *idle_env = getenv("LOCKSTEP_SIMD_IDLE_EXIT");
    const char *pool_env = getenv("LOCKSTEP_SIMD_MEMORY_POOL");
    const char *huge_env = getenv("LOCKSTEP_SIMD_HUGE_PAGES");
    char *argv[12];
    int a = 0;
    argv[a++] = bin;
    argv[a++] = "--rundir";
    argv[a++] = sb->rundir;
    if (idle_env && *idle_env) {
        snprintf(idle, sizeof(idle), "%s", idle_env);
        argv[a++] = "--idle-exit";
        argv[a++] = idle;
    }
    if (pool_env && *pool_env) {
        snprintf(pool, sizeof(pool), "%s", pool_env);
        argv[a++] = "--memory-pool";
        argv[a++] = pool;
    }
    if (huge_env && *huge_env && strcmp(huge_env, "0") != 0)
        argv[a++] = "--huge-pages";
    argv[a] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, def;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid;
    rc = posix_spawn(&pid, bin, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(ep[1]);
    if (rc != 0) {
        close(ep[0]);
        return ls_err(e, -rc, "cannot start the sim daemon %s: %s", bin, strerror(rc));
    }

    int st = 0;
    uint64_t deadline = mono_ms() + START_TIMEOUT_MS;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            st = 0;   /* someone else reaped it (SIGCHLD ignored): trust the socket */
            break;
        }
        if (mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            close(ep[0]);
            return ls_err(e, -ETIMEDOUT, "the sim daemon %s did not finish starting within %d s",
                          bin, START_TIMEOUT_MS / 1000);
        }
        sleep_ms(5);
    }
    char msg[400] = "";
    fcntl(ep[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(ep[0], msg, sizeof(msg) - 1);
    close(ep[0]);
    if (n > 0) {
        msg[n] = '\0';
        msg[strcspn(msg, "\n")] = '\0';
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    return ls_err(e, -EIO, "the sim daemon %s failed to start: %s", bin,
                  msg[0] ? msg : "no reason given");
}

/* ---- framing ------------------------------------------------------------ */

static int recv_all(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = recv(fd, (char *)buf + got, len - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ECONNRESET;
        got += (size_t)r;
    }
    return 0;
}

/* The header, collecting any fds that ride on it. */
static int recv_header(int fd, struct simp_hdr *h, int *fds, int maxfds, int *nfds)
{
    size_t got = 0;
    bool truncated = false;
    while (got < sizeof(*h)) {
        union {
            char buf[CMSG_SPACE(sizeof(int) * 4)];
            struct cmsghdr align;
        } ctl;
        struct iovec v = { .iov_base = (char *)h + got, .iov_len = sizeof(*h) - got };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.buf,
                            .msg_controllen = sizeof(ctl.buf) };
        ssize_t r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ECONNRESET;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (fds && *nfds < maxfds)
                    fds[(*nfds)++] = f;
                else
                    close(f);
            }
        }
        if (m.msg_flags & MSG_CTRUNC)
            truncated = true;
        got += (size_t)r;
    }
    return truncated ? -EMSGSIZE : 0;
}

static void drop_conn(struct sim_backend *sb)
{
    if (sb->fd >= 0)
        close(sb->fd);
    sb->fd = -1;
}

/* Send and receive on an established connection; the caller holds the lock. */
static int exchange_fd(struct sim_backend *sb, const struct simp_hdr *rq, const void *payload,
                       int send_fd, struct simp_hdr *rp, uint8_t **reply, int *fds, int maxfds,
                       int *nfds, struct ls_errbuf *e)
{
    const char *opn = simp_op_name(rq->op);
    int got_fds = 0;
    int *fd_out = fds ? fds : NULL;
    int rc = simp_send(sb->fd, rq, payload, send_fd >= 0 ? &send_fd : NULL, send_fd >= 0);
    if (rc == 0)
        rc = recv_header(sb->fd, rp, fd_out, maxfds, &got_fds);
    if (nfds)
        *nfds = got_fds;
    if (rc == 0 && (rp->magic != SIMP_MAGIC || rp->version != SIMP_VERSION || rp->op != rq->op ||
                    rp->len > SIMP_MAX_PAYLOAD))
        rc = -EPROTO;
    uint8_t *body = NULL;
    if (rc == 0) {
        body = malloc(rp->len + 1u);
        if (!body)
            rc = -ENOMEM;
        else if (rp->len)
            rc = recv_all(sb->fd, body, rp->len);
        if (body)
            body[rp->len] = '\0';
    }
    if (rc < 0) {
        free(body);
        for (int i = 0; i < got_fds; i++)
            close(fds[i]);
        if (nfds)
            *nfds = 0;
        drop_conn(sb);
        if (rc == -EPROTO)
            return ls_err(e, -EPROTO, "lockstep-simd (pid %d) sent a malformed reply to %s",
                          sb->daemon_pid, opn);
        if (rc == -ENOMEM)
            return ls_err(e, -ENOMEM, "out of memory reading the reply to %s", opn);
        return ls_err(e, -ECONNRESET, "lost the connection to lockstep-simd (pid %d) during %s: %s"
                      " (did the daemon die? its domains are gone with it)",
                      sb->daemon_pid, opn, strerror(-rc));
    }
    *reply = body;
    return 0;
}

static int exchange(struct sim_backend *sb, const struct simp_hdr *rq, const void *payload,
                    struct simp_hdr *rp, uint8_t **reply, int *fds, int maxfds, int *nfds,
                    struct ls_errbuf *e)
{
    return exchange_fd(sb, rq, payload, -1, rp, reply, fds, maxfds, nfds, e);
}

static int hello(struct sim_backend *sb, struct ls_errbuf *e)
{
    struct simp_hdr rq = { .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = SIMP_OP_HELLO };
    struct simp_hdr rp;
    uint8_t *body = NULL;
    int rc = exchange(sb, &rq, NULL, &rp, &body, NULL, 0, NULL, e);
    if (rc < 0)
        return rc;
    struct simp_hello hi;
    if (rp.status != 0 || rp.len != sizeof(hi) || !body) {
        rc = ls_err(e, -EPROTO, "lockstep-simd refused hello: %s",
                    rp.status && body ? (char *)body : "bad size");
        free(body);
        drop_conn(sb);
        return rc;
    }
    memcpy(&hi, body, sizeof(hi));
    free(body);
    sb->daemon_pid = (int)hi.pid;
    return 0;
}

/* A connected socket to the daemon, or -errno. The daemon serves only its
 * own uid; the client in turn talks only to a daemon of its own uid, by the
 * kernel's word (SO_PEERCRED): a socket that another user bound (in a run
 * directory they could write) would otherwise be handed every guest's
 * memory and every request. Then *refused, -EACCES and the reason in e. */
static int try_connect(struct sim_backend *sb, bool *refused, struct ls_errbuf *e)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sb->sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    struct ucred cr;
    socklen_t crl = sizeof(cr);
    int rc = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0)
        rc = ls_err(e, -EACCES, "the sim daemon at %s: cannot tell whose it is (SO_PEERCRED: %s): "
                    "refused", sb->sock_path, strerror(errno));
    else if (cr.uid != geteuid())
        rc = ls_err(e, -EACCES, "the sim daemon at %s runs as uid %u (pid %d), not as this "
                    "process's uid %u: refused (the run directory is not this user's alone?)",
                    sb->sock_path, (unsigned)cr.uid, (int)cr.pid, (unsigned)geteuid());
    if (rc < 0) {
        close(fd);
        *refused = true;
        return rc;
    }
    return fd;
}

/* Connect, starting the daemon when nobody answers. Races with other
 * starters and with a daemon exiting on idle are settled by the daemon's
 * pid-file lock; we just retry until the deadline. Caller holds the lock. */
static int ensure_connected(struct sim_backend *sb, struct ls_errbuf *e)
{
    if (sb->fd >= 0)
        return 0;
    uint64_t deadline = mono_ms() + START_TIMEOUT_MS;
    uint64_t last_spawn = 0;
    int last = 0;
    for (;;) {
        bool refused = false;
        int fd = try_connect(sb, &refused, e);
        if (refused)
            return fd;
        if (fd >= 0) {
            struct ls_errbuf he;
            ls_err_clear(&he);
            sb->fd = fd;
            if (hello(sb, &he) == 0)
                return 0;
            last = he.rc;      /* a daemon on its way out: try again */
        } else {
            last = fd;
            if (fd != -ENOENT && fd != -ECONNREFUSED)
                return ls_err(e, fd, "cannot connect to the sim daemon at %s: %s", sb->sock_path,
                              strerror(-fd));
        }
        uint64_t now = mono_ms();
        if (now > deadline)
            break;
        if (!last_spawn || now - last_spawn > 1000) {
            int rc = spawn_daemon(sb, e);
            if (rc < 0)
                return rc;
            last_spawn = mono_ms();
            continue;
        }
        sleep_ms(20);
    }
    return ls_err(e, -ETIMEDOUT, "the sim daemon did not answer on %s within %d s (last error: %s; see %s/%s)",
                  sb->sock_path, START_TIMEOUT_MS / 1000, strerror(-last), sb->rundir, SIMP_LOG_NAME);
}

/* LOCKSTEP_SIM_FAULT=OP[,OP...] (tests): every request of those ops (by
 * their protocol names: unpause, resume, destroy, guard, handoff, ...) fails
 * with -EIO as if the hypervisor had refused it, so the tables' rows for a
 * failing backend call can be taken on purpose. */
static int injected_fault(unsigned op, struct ls_errbuf *e)
{
#ifndef LOCKSTEP_FAULT_HOOKS
    (void)op;
    (void)e;
    return 0;   /* a release build refuses nothing on a variable's word */
#else
    const char *spec = getenv("LOCKSTEP_SIM_FAULT");
    if (!spec || !*spec)
        return 0;
    const char *name = simp_op_name(op);
    size_t n = strlen(name);
    for (const char *p = spec; (p = strstr(p, name)); p += n)
        if ((p == spec || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return ls_err(e, -EIO, "lockstep-simd: %s: injected failure (LOCKSTEP_SIM_FAULT)", name);
    return 0;
#endif
}

int sim_rpc(struct sim_backend *sb, unsigned op, uint32_t domid, unsigned kind, unsigned index,
            const void *payload, uint32_t len, uint8_t **reply, uint32_t *rlen,
            int *fds, int maxfds, int *nfds, struct ls_errbuf *e)
{
    int frc = injected_fault(op, e);
    if (frc < 0)
        return frc;
    struct simp_hdr rq = {
        .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = (uint16_t)op, .domid = domid,
        .kind = (uint16_t)kind, .index = (uint16_t)index, .len = len, .status = 0,
    };
    struct simp_hdr rp;
    uint8_t *body = NULL;
    int got = 0;

    if (reply)
        *reply = NULL;
    if (rlen)
        *rlen = 0;
    if (nfds)
        *nfds = 0;
    if (len > SIMP_MAX_PAYLOAD)
        return ls_err(e, -E2BIG, "sim %s: %u-byte request over the %u-byte limit",
                      simp_op_name(op), len, SIMP_MAX_PAYLOAD);
    pthread_mutex_lock(&sb->lock);
    int rc = ensure_connected(sb, e);
    if (rc == 0)
        rc = exchange(sb, &rq, payload, &rp, &body, fds, maxfds, &got, e);
    pthread_mutex_unlock(&sb->lock);
    if (rc < 0)
        return rc;
    if (rp.status != 0) {
        for (int i = 0; i < got; i++)
            close(fds[i]);
        rc = ls_err(e, rp.status < 0 ? rp.status : -EIO, "lockstep-simd: %s", (char *)body);
        free(body);
        return rc;
    }
    if (nfds)
        *nfds = got;
    else
        for (int i = 0; i < got; i++)
            close(fds[i]);
    if (rlen)
        *rlen = rp.len;
    if (reply)
        *reply = body;
    else
        free(body);
    return 0;
}

int sim_get(struct sim_backend *sb, uint32_t domid, unsigned kind, unsigned index,
            uint8_t **out, uint32_t *len, struct ls_errbuf *e)
{
    return sim_rpc(sb, SIMP_OP_GET, domid, kind, index, NULL, 0, out, len, NULL, 0, NULL, e);
}

int sim_set(struct sim_backend *sb, uint32_t domid, unsigned kind, unsigned index,
            const void *in, uint32_t len, struct ls_errbuf *e)
{
    return sim_rpc(sb, SIMP_OP_SET, domid, kind, index, in, len, NULL, NULL, NULL, 0, NULL, e);
}

static void info_from(const struct simp_dominfo *s, struct ls_domain_info *d)
{
    memset(d, 0, sizeof(*d));
    d->domid = s->domid;
    d->type = (enum ls_guest_type)s->type;
    d->state = (enum ls_run_state)s->state;
    d->vcpus = s->vcpus;
    d->memory_kib = s->memory_kib;
    d->p2m_size = s->p2m_size;
    memcpy(d->name, s->name, sizeof(d->name));
    d->name[sizeof(d->name) - 1] = '\0';
}

int sim_info(struct sim_backend *sb, uint32_t domid, struct ls_domain_info *out,
             struct ls_errbuf *e)
{
    uint8_t *r;
    uint32_t n;
    int rc = sim_rpc(sb, SIMP_OP_INFO, domid, 0, 0, NULL, 0, &r, &n, NULL, 0, NULL, e);
    if (rc < 0)
        return rc;
    if (n != sizeof(struct simp_dominfo)) {
        free(r);
        return ls_err(e, -EPROTO, "lockstep-simd: info reply of %u bytes", n);
    }
    struct simp_dominfo s;
    memcpy(&s, r, sizeof(s));
    free(r);
    info_from(&s, out);
    return 0;
}

/* ---- mapping ------------------------------------------------------------ */

int sim_map_domain(struct sim_backend *sb, uint32_t domid, bool writable, struct sim_map *m,
                   struct ls_errbuf *e)
{
    uint8_t *r;
    uint32_t n;
    int fds[2], nfds = 0;
    memset(m, 0, sizeof(*m));
    int rc = sim_rpc(sb, SIMP_OP_MAP, domid, 0, 0, NULL, 0, &r, &n, fds, 2, &nfds, e);
    if (rc < 0)
        return rc;
    uint64_t p2m = 0;
    if (n == sizeof(p2m))
        memcpy(&p2m, r, sizeof(p2m));
    free(r);
    if (nfds != 2 || p2m == 0 || p2m > SIMP_MAX_P2M) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return ls_err(e, -EPROTO, "lockstep-simd: map of domain %u gave %d fds and p2m size 0x%" PRIx64,
                      domid, nfds, p2m);
    }
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void *mem = mmap(NULL, p2m * STREAM_PAGE_SIZE, prot, MAP_SHARED | MAP_NORESERVE, fds[0], 0);
    rc = mem == MAP_FAILED ? -errno : 0;
    void *fi = rc == 0 ? mmap(NULL, p2m, prot, MAP_SHARED, fds[1], 0) : MAP_FAILED;
    if (rc == 0 && fi == MAP_FAILED)
        rc = -errno;
    if (rc < 0)
        close(fds[0]);
    close(fds[1]);
    if (rc < 0) {
        if (mem != MAP_FAILED)
            munmap(mem, p2m * STREAM_PAGE_SIZE);
        return ls_err(e, rc, "mapping the memory of domain %u (0x%" PRIx64 " pages): %s", domid,
                      p2m, strerror(-rc));
    }
    m->mem = mem;
    m->finfo = fi;
    m->p2m_size = p2m;
    m->mem_fd = fds[0];
    return 0;
}

/* Tearing down the page tables of a big mapping takes long (0.3 s per GiB
 * under nested virtualization), and a memory task's unmap sits between its
 * last record and the handshake that ends a migration's downtime: a thread
 * of its own does it, a slice at a time, because an munmap holds the
 * process's mmap lock throughout, and every other thread's page fault or
 * mmap (a thread pool stack, a large malloc) would wait for all of it. */
#define UNMAP_SLICE (16u << 20)

static void *unmap_thread(void *arg)
{
    struct sim_map *m = arg;
    size_t len = (size_t)m->p2m_size * STREAM_PAGE_SIZE;
    for (size_t at = 0; m->mem && at < len; at += UNMAP_SLICE)
        munmap(m->mem + at, len - at < UNMAP_SLICE ? len - at : UNMAP_SLICE);
    m->mem = NULL;
    sim_unmap_domain(m);
    free(m);
    return NULL;
}

static void unmap_in_thread(struct sim_map *m)
{
    if (m->mem && m->mem_fd >= 0) {   /* the fd now: only the unmap waits */
        close(m->mem_fd);
        m->mem_fd = -1;
    }
    struct sim_map *copy = malloc(sizeof(*copy));
    pthread_t t;
    pthread_attr_t at;
    bool started = false;
    if (copy) {
        *copy = *m;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &at, unmap_thread, copy) == 0;
        pthread_attr_destroy(&at);
    }
    if (started) {
        memset(m, 0, sizeof(*m));
        return;
    }
    free(copy);
    sim_unmap_domain(m);
}

/* A memory task ends inside its operation: a save's at the suspend, before
 * the migration handshake that ends the downtime; a restore's before the
 * guest starts. Tearing down a big populated mapping then (its CPU time, the
 * mmap lock it holds) would lengthen exactly that, so it waits until no
 * operation runs. Beyond SIM_RETIRED_MAX waiting, the oldest goes at once. */
void sim_retire_map(struct sim_backend *sb, struct sim_map *m)
{
    if (m->mem_fd >= 0) {   /* the fd now: only the unmap waits */
        close(m->mem_fd);
        m->mem_fd = -1;
    }
    struct sim_map *keep = malloc(sizeof(*keep)), *oldest = NULL;
    if (!keep) {
        unmap_in_thread(m);
        return;
    }
    *keep = *m;
    memset(m, 0, sizeof(*m));
    m->mem_fd = -1;
    pthread_mutex_lock(&sb->retired_lock);
    if (sb->nretired == SIM_RETIRED_MAX) {
        oldest = sb->retired[0];
        memmove(&sb->retired[0], &sb->retired[1], (SIM_RETIRED_MAX - 1) * sizeof(sb->retired[0]));
        sb->nretired--;
    }
    sb->retired[sb->nretired++] = keep;
    pthread_mutex_unlock(&sb->retired_lock);
    if (oldest) {
        unmap_in_thread(oldest);
        free(oldest);
    }
}

void sim_release_deferred(struct ls_backend *be)
{
    struct sim_backend *sb = sim_of(be);
    struct sim_map *list[SIM_RETIRED_MAX];
    pthread_mutex_lock(&sb->retired_lock);
    unsigned n = sb->nretired;
    memcpy(list, sb->retired, n * sizeof(list[0]));
    sb->nretired = 0;
    pthread_mutex_unlock(&sb->retired_lock);
    for (unsigned i = 0; i < n; i++) {
        unmap_in_thread(list[i]);
        free(list[i]);
    }
}

void sim_map_populate(struct sim_map *m, int advice)
{
    for (uint64_t pfn = 0, run; pfn < m->p2m_size; pfn += run) {
        bool present = m->finfo[pfn] != SIMP_FRAME_ABSENT;
        for (run = 1; pfn + run < m->p2m_size &&
                      (m->finfo[pfn + run] != SIMP_FRAME_ABSENT) == present; run++)
            ;
        if (present)
            (void)madvise(m->mem + pfn * STREAM_PAGE_SIZE, run * STREAM_PAGE_SIZE, advice);
    }
}

void sim_unmap_domain(struct sim_map *m)
{
    if (m->mem && m->mem_fd >= 0)
        close(m->mem_fd);
    if (m->mem)
        munmap(m->mem, m->p2m_size * STREAM_PAGE_SIZE);
    if (m->finfo)
        munmap(m->finfo, m->p2m_size);
    memset(m, 0, sizeof(*m));
}

/* ---- ls_backend_ops ----------------------------------------------------- */

static void sim_close(struct ls_backend *be)
{
    struct sim_backend *sb = sim_of(be);
    if (!sb)
        return;
    drop_conn(sb);
    pthread_mutex_lock(&sb->retired_lock);
    for (unsigned i = 0; i < sb->nretired; i++) {
        sim_unmap_domain(sb->retired[i]);
        free(sb->retired[i]);
    }
    sb->nretired = 0;
    pthread_mutex_unlock(&sb->retired_lock);
    pthread_mutex_destroy(&sb->retired_lock);
    pthread_mutex_destroy(&sb->lock);
    free(sb);
}

static int sim_domain_info_op(struct ls_backend *be, uint32_t domid, struct ls_domain_info *out,
                              struct ls_errbuf *e)
{
    return sim_info(sim_of(be), domid, out, e);
}

static int simple_op(struct ls_backend *be, unsigned op, uint32_t domid, unsigned kind,
                     struct ls_errbuf *e)
{
    return sim_rpc(sim_of(be), op, domid, kind, 0, NULL, 0, NULL, NULL, NULL, 0, NULL, e);
}

static int sim_pause(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    return simple_op(be, SIMP_OP_PAUSE, domid, 0, e);
}

static int sim_unpause(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    return simple_op(be, SIMP_OP_UNPAUSE, domid, 0, e);
}

/* The sim guest acknowledges at once; timeout_ms only matters to real guests. */
static int sim_suspend(struct ls_backend *be, uint32_t domid, unsigned timeout_ms,
                       struct ls_errbuf *e)
{
    return simple_op(be, SIMP_OP_SUSPEND, domid, 0, e);
}

static int sim_resume(struct ls_backend *be, uint32_t domid, bool fast, struct ls_errbuf *e)
{
    return simple_op(be, SIMP_OP_RESUME, domid, fast ? SIMP_RUN_FAST : 0, e);
}

static int sim_start_guarded(struct ls_backend *be, uint32_t domid, bool from_suspend,
                             struct ls_errbuf *e)
{
    return simple_op(be, from_suspend ? SIMP_OP_RESUME : SIMP_OP_UNPAUSE, domid,
                     SIMP_RUN_KEEP_GUARD, e);
}

static int sim_destroy(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    return simple_op(be, SIMP_OP_DESTROY, domid, 0, e);
}

static int sim_get_config_json(struct ls_backend *be, uint32_t domid, char **json,
                               struct ls_errbuf *e)
{
    uint8_t *r;
    uint32_t n;
    int rc = sim_get(sim_of(be), domid, SIMP_K_CONFIG_JSON, 0, &r, &n, e);
    if (rc < 0)
        return rc;
    char *s = malloc(n + 1u);
    if (!s) {
        free(r);
        return ls_err(e, -ENOMEM, "out of memory");
    }
    if (n)
        memcpy(s, r, n);
    s[n] = '\0';
    free(r);
    *json = s;
    return 0;
}

static int do_create(struct sim_backend *sb, enum ls_guest_type type, unsigned vcpus,
                     uint64_t memory_kib, uint64_t seed, const char *name, bool populate,
                     bool guard, enum ls_device_model dm, const char *qemu, bool dm_in_place,
                     uint32_t *domid, struct ls_errbuf *e)
{
    struct simp_create c;
    memset(&c, 0, sizeof(c));
    c.device_model = dm == LS_DM_STANDIN ? SIMP_DM_STANDIN : SIMP_DM_QEMU;
    if (qemu) {
        if (strlen(qemu) >= sizeof(c.qemu))
            return ls_err(e, -ENAMETOOLONG, "QEMU path longer than %zu bytes", sizeof(c.qemu) - 1);
        memcpy(c.qemu, qemu, strlen(qemu));
    }
    c.type = type;
    c.vcpus = vcpus;
    c.memory_kib = memory_kib;
    c.seed = seed;
    c.flags = (populate ? SIMP_CREATE_POPULATE : 0) | (guard ? SIMP_CREATE_GUARD : 0) |
              (dm_in_place ? SIMP_CREATE_DM_LOAD_STATE_IN_PLACE : 0);
    if (name) {
        if (strlen(name) >= sizeof(c.name))
            return ls_err(e, -ENAMETOOLONG, "domain name '%s' longer than %zu bytes", name,
                          sizeof(c.name) - 1);
        memcpy(c.name, name, strlen(name));
    }
    uint8_t *r;
    uint32_t n;
    int rc = sim_rpc(sb, SIMP_OP_CREATE, 0, 0, 0, &c, sizeof(c), &r, &n, NULL, 0, NULL, e);
    if (rc < 0)
        return rc;
    uint32_t id = 0;
    if (n >= sizeof(id))
        memcpy(&id, r, sizeof(id));
    free(r);
    if (!id)
        return ls_err(e, -EPROTO, "lockstep-simd: create reply without a domain id");
    *domid = id;
    return 0;
}

static int sim_create_for_restore(struct ls_backend *be, const struct ls_domain_config *cfg,
                                  uint32_t *domid, struct ls_errbuf *e)
{
    return do_create(sim_of(be), cfg->type, cfg->vcpus, cfg->memory_kib, 0,
                     cfg->name[0] ? cfg->name : NULL, false, cfg->guard, LS_DM_QEMU, NULL,
                     false, domid, e);
}

/* ---- device models -------------------------------------------------------- */

/* A dm-info reply (r, n bytes, freed here) as ls_dm_info. */
static int dm_info_parse(uint8_t *r, uint32_t n, struct ls_dm_info *out, struct ls_errbuf *e)
{
    struct simp_dm_info s;
    if (n != sizeof(s)) {
        free(r);
        return ls_err(e, -EPROTO, "lockstep-simd: dm-info reply of %u bytes", n);
    }
    memcpy(&s, r, sizeof(s));
    free(r);
    memset(out, 0, sizeof(*out));
    out->present = s.present;
    out->alive = s.alive;
    out->pid = s.pid;
    out->exit_status = s.wait_status;
    out->incoming = s.incoming;
    out->load_state_in_place = s.caps & SIMP_DM_CAP_LOAD_STATE_IN_PLACE;
    out->loads = s.loads;
    out->standby_pid = s.standby_pid;
    snprintf(out->qmp_path, sizeof(out->qmp_path), "%.*s", (int)sizeof(s.qmp_path) - 1, s.qmp_path);
    snprintf(out->log_path, sizeof(out->log_path), "%.*s", (int)sizeof(s.log_path) - 1, s.log_path);
    snprintf(out->qemu, sizeof(out->qemu), "%.*s", (int)sizeof(s.qemu) - 1, s.qemu);
    return 0;
}

/* which: SIMP_DM_INFO_CURRENT or _STANDBY. */
static int dm_info_of(struct ls_backend *be, uint32_t domid, unsigned which,
                      struct ls_dm_info *out, struct ls_errbuf *e)
{
    uint8_t *r;
    uint32_t n;
    int rc = sim_rpc(sim_of(be), SIMP_OP_DM_INFO, domid, which, 0, NULL, 0, &r, &n, NULL, 0, NULL,
                     e);
    return rc < 0 ? rc : dm_info_parse(r, n, out, e);
}

static int sim_dm_info_op(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                          struct ls_errbuf *e)
{
    return dm_info_of(be, domid, SIMP_DM_INFO_CURRENT, out, e);
}

/* The last non-empty line of a (QEMU) log, for an error message. */
static void last_log_line(const char *path, char *buf, size_t len)
{
    io_log_tail(path, 1, buf, len);
    if (!buf[0])
        snprintf(buf, len, "(its log %s is empty)", path);
}

#define SIM_DM_READY_TIMEOUT_MS 20000

/* Until the domain's QEMU (which: the one in service or the standby) accepts
 * a connection on its QMP socket (then hang up: the real client comes next),
 * it exits, or the deadline passes. */
static int dm_await(struct ls_backend *be, uint32_t domid, unsigned which, struct ls_errbuf *e)
{
    struct ls_dm_info dm;
    const char *what = which == SIMP_DM_INFO_STANDBY ? "standby device model" : "device model";
    int rc = dm_info_of(be, domid, which, &dm, e);
    if (rc < 0)
        return rc;
    if (!dm.present)
        return ls_err(e, -ENODEV, "domain %u has no %s", domid, what);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(dm.qmp_path) >= sizeof(a.sun_path))
        return ls_err(e, -ENAMETOOLONG, "device model socket path too long: %s", dm.qmp_path);
    memcpy(a.sun_path, dm.qmp_path, strlen(dm.qmp_path) + 1);
    uint64_t start = mono_ms(), deadline = start + SIM_DM_READY_TIMEOUT_MS, last_check = start;
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return ls_err(e, -errno, "socket: %s", strerror(errno));
        int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
        int err = errno;
        close(fd);
        if (r == 0)
            return 0;
        if (err != ENOENT && err != ECONNREFUSED)
            return ls_err(e, -err, "cannot connect to the device model of domain %u at %s: %s",
                          domid, dm.qmp_path, strerror(err));
        uint64_t now = mono_ms();
        if (!dm.alive || now - last_check >= 20) {
            last_check = now;
            if ((rc = dm_info_of(be, domid, which, &dm, e)) < 0)
                return rc;
            if (!dm.alive) {
                char why[64], line[300];
                last_log_line(dm.log_path, line, sizeof(line));
                return ls_err(e, -ECHILD, "the %s of domain %u (%s, pid %d) %s before its QMP "
                              "socket was ready: %s", what, domid, dm.qemu, dm.pid,
                              backend_dm_status_text(&dm, why, sizeof(why)), line);
            }
        }
        if (now > deadline)
            return ls_err(e, -ETIMEDOUT, "the %s of domain %u (pid %d) did not open its QMP "
                          "socket %s within %d s (log: %s)", what, domid, dm.pid, dm.qmp_path,
                          SIM_DM_READY_TIMEOUT_MS / 1000, dm.log_path);
        sleep_ms(2);
    }
}

/* A request with one fd (SCM_RIGHTS) and no reply payload. */
static int rpc_with_fd(struct sim_backend *sb, unsigned op, uint32_t domid, const void *payload,
                       uint32_t len, int fd, struct ls_errbuf *e)
{
    struct simp_hdr rq = {
        .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = op, .domid = domid, .len = len,
    };
    struct simp_hdr rp;
    uint8_t *body = NULL;
    int rc = injected_fault(op, e);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&sb->lock);
    rc = ensure_connected(sb, e);
    if (rc == 0)
        rc = exchange_fd(sb, &rq, payload, fd, &rp, &body, NULL, 0, NULL, e);
    pthread_mutex_unlock(&sb->lock);
    if (rc == 0 && rp.status != 0)
        rc = ls_err(e, rp.status < 0 ? rp.status : -EIO, "lockstep-simd: %s", (char *)body);
    free(body);
    return rc;
}

static int sim_dm_await(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    return dm_await(be, domid, SIMP_DM_INFO_CURRENT, e);
}

static int sim_dm_start_incoming(struct ls_backend *be, uint32_t domid, int state_fd,
                                 const char *qemu, struct ls_errbuf *e)
{
    struct sim_backend *sb = sim_of(be);
    struct simp_dm_start st;
    memset(&st, 0, sizeof(st));
    if (qemu) {
        if (strlen(qemu) >= sizeof(st.qemu))
            return ls_err(e, -ENAMETOOLONG, "QEMU path longer than %zu bytes", sizeof(st.qemu) - 1);
        memcpy(st.qemu, qemu, strlen(qemu));
    }
    int rc = rpc_with_fd(sb, SIMP_OP_DM_START, domid, &st, sizeof(st), state_fd, e);
    if (rc < 0)
        return rc;
    return sim_dm_await(be, domid, e);
}

static int sim_dm_stop(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    return sim_rpc(sim_of(be), SIMP_OP_DM_STOP, domid, 0, 0, NULL, 0, NULL, NULL, NULL, 0, NULL,
                   e);
}

/* The daemon starts the standby and answers at once: QEMU's ~100 ms start
 * runs while the caller goes on (a stream's pre-copy, a checkpoint interval). */
static int sim_dm_prepare_standby(struct ls_backend *be, uint32_t domid, const char *qemu,
                                  struct ls_errbuf *e)
{
    struct simp_dm_start st;
    memset(&st, 0, sizeof(st));
    if (qemu) {
        if (strlen(qemu) >= sizeof(st.qemu))
            return ls_err(e, -ENAMETOOLONG, "QEMU path longer than %zu bytes", sizeof(st.qemu) - 1);
        memcpy(st.qemu, qemu, strlen(qemu));
    }
    return sim_rpc(sim_of(be), SIMP_OP_DM_STANDBY, domid, SIMP_DM_STANDBY_START, 0, &st,
                   sizeof(st), NULL, NULL, NULL, 0, NULL, e);
}

static int sim_dm_discard_standby(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    return sim_rpc(sim_of(be), SIMP_OP_DM_STANDBY, domid, SIMP_DM_STANDBY_DISCARD, 0, NULL, 0,
                   NULL, NULL, NULL, 0, NULL, e);
}

static int sim_dm_adopt_standby(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                                struct ls_errbuf *e)
{
    uint8_t *r;
    uint32_t n;
    int rc = sim_rpc(sim_of(be), SIMP_OP_DM_STANDBY, domid, SIMP_DM_STANDBY_ADOPT, 0, NULL, 0,
                     &r, &n, NULL, 0, NULL, e);
    return rc < 0 ? rc : dm_info_parse(r, n, out, e);
}

static int sim_dm_load_checkpoint(struct ls_backend *be, uint32_t domid, int state_fd,
                                  struct ls_errbuf *e)
{
    struct ls_dm_info cur;
    int rc = sim_dm_info_op(be, domid, &cur, e);
    if (rc < 0)
        return rc;
    /* Without a standby waiting, this load pays QEMU's start; with one, only
     * its readiness is awaited here, so the daemon's QMP load never waits. */
    if (!(cur.load_state_in_place && cur.alive)) {
        if (!cur.standby_pid && (rc = sim_dm_prepare_standby(be, domid, NULL, e)) < 0)
            return rc;
        if ((rc = dm_await(be, domid, SIMP_DM_INFO_STANDBY, e)) < 0)
            return rc;
    }
    return rpc_with_fd(sim_of(be), SIMP_OP_DM_LOAD, domid, NULL, 0, state_fd, e);
}

static int sim_digest(struct ls_backend *be, uint32_t domid, char hex[65], struct ls_errbuf *e)
{
    uint8_t *r;
    uint32_t n;
    int rc = sim_rpc(sim_of(be), SIMP_OP_DIGEST, domid, 0, 0, NULL, 0, &r, &n, NULL, 0, NULL, e);
    if (rc < 0)
        return rc;
    if (n != 64) {
        free(r);
        return ls_err(e, -EPROTO, "lockstep-simd: digest of %u characters", n);
    }
    memcpy(hex, r, 64);
    hex[64] = '\0';
    free(r);
    return 0;
}

static int sim_hand_off(struct ls_backend *be, uint32_t domid, int fd, const void *msg,
                        size_t len, struct ls_errbuf *e)
{
    struct sim_backend *sb = sim_of(be);
    struct simp_hdr rq = {
        .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = SIMP_OP_HANDOFF, .domid = domid,
        .len = (uint32_t)len,
    };
    struct simp_hdr rp;
    uint8_t *body = NULL;
    int rc = injected_fault(SIMP_OP_HANDOFF, e);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&sb->lock);
    rc = ensure_connected(sb, e);
    if (rc == 0)
        rc = exchange_fd(sb, &rq, msg, fd, &rp, &body, NULL, 0, NULL, e);
    pthread_mutex_unlock(&sb->lock);
    if (rc == 0 && rp.status != 0)
        rc = ls_err(e, rp.status < 0 ? rp.status : -EIO, "lockstep-simd: %s", (char *)body);
    free(body);
    return rc;
}

static int sim_set_guard(struct ls_backend *be, uint32_t domid, enum ls_guard guard,
                         struct ls_errbuf *e)
{
    return simple_op(be, SIMP_OP_GUARD, domid, (unsigned)guard, e);
}

int sim_logdirty_op(struct sim_backend *sb, uint32_t domid, unsigned op, uint64_t **bitmap,
                    uint64_t *dirty, struct ls_errbuf *e)
{
    uint8_t *r;
    uint32_t n;
    if (bitmap)
        *bitmap = NULL;
    int rc = sim_rpc(sb, SIMP_OP_LOGDIRTY, domid, op, 0, NULL, 0, &r, &n, NULL, 0, NULL, e);
    if (rc < 0 || (op != SIMP_LOGDIRTY_CLEAN && op != SIMP_LOGDIRTY_PEEK)) {
        if (rc == 0)
            free(r);
        return rc;
    }
    struct simp_logdirty h;
    if (n < sizeof(h)) {
        free(r);
        return ls_err(e, -EPROTO, "lockstep-simd: log-dirty reply of %u bytes", n);
    }
    memcpy(&h, r, sizeof(h));
    uint64_t words = (h.p2m_size + 63) / 64;
    if (n != sizeof(h) + words * 8) {
        free(r);
        return ls_err(e, -EPROTO, "lockstep-simd: log-dirty reply of %u bytes for %" PRIu64 " pages",
                      n, h.p2m_size);
    }
    if (dirty)
        *dirty = h.dirty_count;
    if (bitmap) {
        /* Hand out the words in place: move them to the front of the buffer. */
        memmove(r, r + sizeof(h), words * 8);
        *bitmap = (uint64_t *)(void *)r;
    } else {
        free(r);
    }
    return 0;
}

/* The public sim calls take any context's backend: refuse one that is not. */
static int not_sim(struct ls_backend *be, struct ls_errbuf *e)
{
    if (be && strcmp(be->ops->name, "sim") == 0)
        return 0;
    return ls_err(e, -EOPNOTSUPP, "not a sim backend (%s): sim calls need a context "
                  "opened with LS_BACKEND_SIM", be ? be->ops->name : "none");
}

int sim_set_workload(struct ls_backend *be, uint32_t domid, const struct ls_sim_workload *w,
                        struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    struct simp_workload s = {
        .rate = w->rate, .pattern = (uint32_t)w->pattern, .hot_percent = w->hot_percent,
        .seed = w->seed, .writes = w->writes,
    };
    return sim_set(sim_of(be), domid, SIMP_K_WORKLOAD, 0, &s, sizeof(s), e);
}

int sim_get_workload(struct ls_backend *be, uint32_t domid, struct ls_sim_workload *w,
                        struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    uint8_t *r;
    uint32_t n;
    int rc = sim_get(sim_of(be), domid, SIMP_K_WORKLOAD, 0, &r, &n, e);
    if (rc < 0)
        return rc;
    struct simp_workload s;
    if (n != sizeof(s)) {
        free(r);
        return ls_err(e, -EPROTO, "lockstep-simd: workload reply of %u bytes", n);
    }
    memcpy(&s, r, sizeof(s));
    free(r);
    *w = (struct ls_sim_workload){
        .rate = s.rate, .pattern = (enum ls_sim_dirty_pattern)s.pattern,
        .hot_percent = s.hot_percent, .seed = s.seed, .writes = s.writes,
        .data_pages = s.data_pages,
    };
    return 0;
}

int sim_net(struct ls_backend *be, uint32_t domid, const struct ls_sim_net *in,
            struct ls_sim_net *out, int *fd, struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    unsigned op = in ? SIMP_NET_CONFIG : fd ? SIMP_NET_ATTACH : SIMP_NET_STATS;
    struct simp_net s = { 0 };
    if (in)
        s = (struct simp_net){ .every = in->every, .nondet_ppm = in->nondet_ppm,
                               .rng_seed = in->rng_seed };
    uint8_t *r = NULL;
    uint32_t n = 0;
    int fds[1], nfds = 0;
    int rc = sim_rpc(sim_of(be), SIMP_OP_NET, domid, op, 0, in ? &s : NULL, in ? sizeof(s) : 0,
                     &r, &n, fds, 1, &nfds, e);
    if (rc < 0)
        return rc;
    if (n == sizeof(s))
        memcpy(&s, r, sizeof(s));
    free(r);
    if (n != sizeof(s) || nfds != (fd ? 1 : 0)) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return ls_err(e, -EPROTO, "lockstep-simd: net reply of %u bytes and %d fds", n, nfds);
    }
    if (fd)
        *fd = fds[0];
    if (out)
        *out = (struct ls_sim_net){ .every = s.every, .nondet_ppm = s.nondet_ppm,
                                    .attached = s.attached != 0, .frames = s.frames,
                                    .nondet = s.nondet, .dropped = s.dropped, .sent = s.sent };
    return 0;
}

int sim_disk(struct ls_backend *be, uint32_t domid, const char *path, unsigned format,
             const struct ls_sim_disks *in, struct ls_sim_disks *out, struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    unsigned op = path ? SIMP_DISK_ATTACH : in ? SIMP_DISK_CONFIG : SIMP_DISK_STATS;
    struct simp_disk_attach a = { .format = format };
    struct simp_disk d = { 0 };
    const void *payload = NULL;
    uint32_t plen = 0;
    if (path) {
        if (strlen(path) >= sizeof(a.path))
            return ls_err(e, -ENAMETOOLONG, "disk path too long: %s", path);
        memcpy(a.path, path, strlen(path) + 1);
        payload = &a;
        plen = sizeof(a);
    } else if (in) {
        d = (struct simp_disk){ .every = in->every, .block = in->block, .top = in->top };
        payload = &d;
        plen = sizeof(d);
    }
    uint8_t *r = NULL;
    uint32_t n = 0;
    int fds[1], nfds = 0;
    int rc = sim_rpc(sim_of(be), SIMP_OP_DISK, domid, op, 0, payload, plen, &r, &n, fds, 1, &nfds,
                     e);
    if (rc < 0)
        return rc;
    if (n == sizeof(d))
        memcpy(&d, r, sizeof(d));
    free(r);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (n != sizeof(d))
        return ls_err(e, -EPROTO, "lockstep-simd: disk reply of %u bytes", n);
    if (out) {
        *out = (struct ls_sim_disks){ .every = d.every, .block = d.block, .top = d.top != 0,
                                      .ndisks = d.ndisks, .owed = d.owed, .written = d.written,
                                      .failed = d.failed };
        snprintf(out->last_error, sizeof(out->last_error), "%.*s",
                 (int)sizeof(d.last_error) - 1, d.last_error);
        out->pid = d.pid;
        snprintf(out->qmp_path, sizeof(out->qmp_path), "%.*s", (int)sizeof(d.qmp_path) - 1,
                 d.qmp_path);
        snprintf(out->log_path, sizeof(out->log_path), "%.*s", (int)sizeof(d.log_path) - 1,
                 d.log_path);
    }
    return 0;
}

int sim_parse_pattern(const char *s, enum ls_sim_dirty_pattern *p, unsigned *hot_percent)
{
    *hot_percent = 0;
    if (strcmp(s, "uniform") == 0) {
        *p = LS_SIM_DIRTY_UNIFORM;
        return 0;
    }
    if (strcmp(s, "sequential") == 0) {
        *p = LS_SIM_DIRTY_SEQUENTIAL;
        return 0;
    }
    if (strncmp(s, "hotset:", 7) == 0) {
        char *end;
        unsigned long v = strtoul(s + 7, &end, 10);
        if (end == s + 7 || (*end != '\0' && strcmp(end, "%") != 0) || v < 1 || v > 100)
            return -EINVAL;
        *p = LS_SIM_DIRTY_HOTSET;
        *hot_percent = (unsigned)v;
        return 0;
    }
    return -EINVAL;
}

const char *sim_pattern_name(enum ls_sim_dirty_pattern p, unsigned hot_percent, char *buf,
                             size_t len)
{
    if (p == LS_SIM_DIRTY_HOTSET)
        snprintf(buf, len, "hotset:%u", hot_percent);
    else
        snprintf(buf, len, "%s", p == LS_SIM_DIRTY_SEQUENTIAL ? "sequential" : "uniform");
    return buf;
}

static int sim_net_attach_op(struct ls_backend *be, uint32_t domid, int *fd, struct ls_errbuf *e)
{
    return sim_net(be, domid, NULL, NULL, fd, e);
}

static int sim_net_connect_op(struct ls_backend *be, uint32_t domid, const char *path,
                              struct ls_errbuf *e)
{
    size_t n = strlen(path);
    if (n == 0 || n >= SIMP_SUN_LEN)
        return ls_err(e, -ENAMETOOLONG, "net: socket path '%s' is not 1..%u bytes", path,
                      SIMP_SUN_LEN - 1);
    return sim_rpc(sim_of(be), SIMP_OP_NET, domid, SIMP_NET_CONNECT, 0, path, (uint32_t)n, NULL,
                   NULL, NULL, 0, NULL, e);
}

static int sim_disk_info_op(struct ls_backend *be, uint32_t domid, struct ls_disk_info *out,
                            struct ls_errbuf *e)
{
    struct ls_sim_disks d;
    int rc = sim_disk(be, domid, NULL, 0, NULL, &d, e);
    if (rc < 0)
        return rc;
    if (!d.ndisks || !d.pid)
        return ls_err(e, -ENODEV, "domain %u has no disk", domid);
    *out = (struct ls_disk_info){ .ndisks = d.ndisks };
    snprintf(out->qmp_path, sizeof(out->qmp_path), "%s", d.qmp_path);
    snprintf(out->log_path, sizeof(out->log_path), "%s", d.log_path);
    return 0;
}

static int sim_disk_attach_op(struct ls_backend *be, uint32_t domid, const char *path,
                              unsigned format, bool replica, struct ls_errbuf *e)
{
    struct ls_sim_disks d;
    int rc = sim_disk(be, domid, path, format, NULL, NULL, e);
    if (rc == 0 && replica)   /* the writer keeps its rate; its writes go through the top */
        rc = sim_disk(be, domid, NULL, 0, NULL, &d, e);
    if (rc == 0 && replica) {
        d.top = true;
        rc = sim_disk(be, domid, NULL, 0, &d, NULL, e);
    }
    return rc;
}

static const struct ls_backend_ops sim_ops = {
    .name = "sim",
    .close = sim_close,
    .release_deferred = sim_release_deferred,
    .domain_info = sim_domain_info_op,
    .pause = sim_pause,
    .unpause = sim_unpause,
    .suspend = sim_suspend,
    .resume = sim_resume,
    .destroy = sim_destroy,
    .get_config_json = sim_get_config_json,
    .create_for_restore = sim_create_for_restore,
    .save_memory = sim_save_memory,
    .restore_memory = sim_restore_memory,
    .set_guard = sim_set_guard,
    .start_guarded = sim_start_guarded,
    .hand_off = sim_hand_off,
    .dm_info = sim_dm_info_op,
    .dm_start_incoming = sim_dm_start_incoming,
    .dm_stop = sim_dm_stop,
    .dm_prepare_standby = sim_dm_prepare_standby,
    .dm_load_checkpoint = sim_dm_load_checkpoint,
    .dm_standby_info = sim_dm_standby_info,
    .dm_adopt_standby = sim_dm_adopt_standby,
    .dm_discard_standby = sim_dm_discard_standby,
    .net_attach = sim_net_attach_op,
    .net_connect = sim_net_connect_op,
    .digest = sim_digest,
    .disk_info = sim_disk_info_op,
    .disk_attach = sim_disk_attach_op,
};

int ls_sim_open(struct ls_backend **out, struct ls_errbuf *e)
{
    struct sim_backend *sb = calloc(1, sizeof(*sb));
    if (!sb)
        return ls_err(e, -ENOMEM, "out of memory");
    sb->base.ops = &sim_ops;
    sb->fd = -1;
    pthread_mutex_init(&sb->lock, NULL);
    pthread_mutex_init(&sb->retired_lock, NULL);
    if (simp_rundir(sb->rundir, sizeof(sb->rundir)) < 0 ||
        simp_rundir_file(sb->rundir, SIMP_SOCK_NAME, sb->sock_path, sizeof(sb->sock_path)) < 0) {
        sim_close(&sb->base);
        return ls_err(e, -ENAMETOOLONG, "sim runtime directory path too long for a socket (max %zu bytes)",
                      sizeof(sb->sock_path) - 1 - strlen("/" SIMP_SOCK_NAME));
    }
    pthread_mutex_lock(&sb->lock);
    int rc = ensure_connected(sb, e);
    pthread_mutex_unlock(&sb->lock);
    if (rc < 0) {
        sim_close(&sb->base);
        return rc;
    }
    *out = &sb->base;
    return 0;
}

/* ---- sim-only calls ----------------------------------------------------- */


int sim_create_domain(struct ls_backend *be, const struct ls_sim_create_args *a, uint32_t *domid,
                  struct ls_errbuf *e)
{
    *domid = 0;   /* never a stale or uninitialised id for a caller to destroy */
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    int rc = do_create(sim_of(be), a->type, a->vcpus, a->memory_kib, a->seed, a->name,
                       a->populate, false, a->device_model, a->qemu,
                       a->dm_load_state_in_place, domid, e);
    if (rc < 0 || a->type != LS_GUEST_HVM || !a->populate || a->device_model != LS_DM_QEMU)
        return rc;
    rc = sim_dm_await(be, *domid, e);
    if (rc < 0) {
        struct ls_errbuf ignored;
        ls_err_clear(&ignored);
        sim_destroy(be, *domid, &ignored);   /* no half-made domain left behind */
        *domid = 0;
    }
    return rc;
}

int sim_list_domains(struct ls_backend *be, struct ls_domain_info **out, size_t *n,
                struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    uint8_t *r;
    uint32_t len;
    *out = NULL;
    *n = 0;
    int rc = sim_rpc(sim_of(be), SIMP_OP_LIST, 0, 0, 0, NULL, 0, &r, &len, NULL, 0, NULL, e);
    if (rc < 0)
        return rc;
    if (len % sizeof(struct simp_dominfo)) {
        free(r);
        return ls_err(e, -EPROTO, "lockstep-simd: list reply of %u bytes", len);
    }
    size_t cnt = len / sizeof(struct simp_dominfo);
    struct ls_domain_info *v = calloc(cnt ? cnt : 1, sizeof(*v));
    if (!v) {
        free(r);
        return ls_err(e, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cnt; i++) {
        struct simp_dominfo s;
        memcpy(&s, r + i * sizeof(s), sizeof(s));
        info_from(&s, &v[i]);
    }
    free(r);
    *out = v;
    *n = cnt;
    return 0;
}

int sim_find_domain(struct ls_backend *be, const char *name, uint32_t *domid, struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    struct ls_domain_info *v;
    size_t n;
    int rc = sim_list_domains(be, &v, &n, e);
    if (rc < 0)
        return rc;
    rc = -ESRCH;
    for (size_t i = 0; i < n && rc < 0; i++) {
        if (!strcmp(v[i].name, name)) {
            *domid = v[i].domid;
            rc = 0;
        }
    }
    if (rc < 0)
        ls_err(e, rc, "no sim domain named '%s'", name);
    free(v);
    return rc;
}

int sim_set_config_json(struct ls_backend *be, uint32_t domid, const char *json,
                           struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    size_t n = strlen(json);
    if (n > SIMP_MAX_PAYLOAD)
        return ls_err(e, -E2BIG, "config of %zu bytes is too large", n);
    return sim_set(sim_of(be), domid, SIMP_K_CONFIG_JSON, 0, json, (uint32_t)n, e);
}

/* The daemon's hello: who it is, and its memory pool. */
static int daemon_hello(struct ls_backend *be, struct simp_hello *hi, struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    uint8_t *r;
    uint32_t n;
    int rc = sim_rpc(sim_of(be), SIMP_OP_HELLO, 0, 0, 0, NULL, 0, &r, &n, NULL, 0, NULL, e);
    if (rc < 0)
        return rc;
    if (n == sizeof(*hi))
        memcpy(hi, r, sizeof(*hi));
    free(r);
    if (n != sizeof(*hi))
        return ls_err(e, -EPROTO, "lockstep-simd answered hello with %u bytes, want %zu", n,
                      sizeof(*hi));
    return 0;
}

int sim_pool_status(struct ls_backend *be, struct ls_sim_pool_status *st, struct ls_errbuf *e)
{
    struct simp_hello hi;
    int rc = daemon_hello(be, &hi, e);
    if (rc < 0)
        return rc;
    *st = (struct ls_sim_pool_status){ .ready = hi.pool_ready, .ready_mib = hi.pool_ready_mib,
                                       .filling = hi.pool_filling, .taken = hi.pool_taken,
                                       .huge_pages = hi.flags & SIMP_HELLO_HUGE_PAGES };
    return 0;
}

_Static_assert(LS_SIM_FRAME_ABSENT == SIMP_FRAME_ABSENT, "lockstep/sim.h names the daemon's value");

int sim_map_memory(struct ls_backend *be, uint32_t domid, bool writable, struct ls_sim_memory *out,
                   struct ls_errbuf *e)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    struct sim_map m;
    int rc = sim_map_domain(sim_of(be), domid, writable, &m, e);
    if (rc < 0)
        return rc;
    *out = (struct ls_sim_memory){ .mem = m.mem, .frame = m.finfo, .p2m_size = m.p2m_size,
                                   .fd = m.mem_fd };
    return 0;
}

void sim_unmap_memory(struct ls_sim_memory *m)
{
    struct sim_map sm = { .mem = m->mem, .finfo = (uint8_t *)m->frame, .p2m_size = m->p2m_size,
                          .mem_fd = m->fd };
    sim_unmap_domain(&sm);
    memset(m, 0, sizeof(*m));
    m->fd = -1;
}

int sim_dm_standby_info(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                        struct ls_errbuf *e)
{
    if (not_sim(be, e) < 0)
        return -EOPNOTSUPP;
    return dm_info_of(be, domid, SIMP_DM_INFO_STANDBY, out, e);
}

int sim_daemon_pid(struct ls_backend *be, int *pid, struct ls_errbuf *e)
{
    struct simp_hello hi;
    int rc = daemon_hello(be, &hi, e);
    if (rc < 0)
        return rc;
    *pid = (int)hi.pid;
    return 0;
}
