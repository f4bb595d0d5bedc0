/* test/fuzz/fuzz_simd.c - the sim daemon's request protocol, as a hostile
 * local client speaks it.
 *
 * lockstep-simd runs as root and serves every client on one loop: no
 * request may crash it, hang it or make it refuse the next client. The
 * harness starts a daemon of its own (the fuzz build's, with ASan and UBSan)
 * in the foreground as its child and sends it each input as a series of
 * requests, one connection, reading each reply:
 *     op (1 byte, taken modulo the ops + 2, so unknown ones come too),
 *     kind (1, likewise), index (2), domid selector (1: 0 = the domain this
 *     input created last, 1 = 0, 2 = the 4 bytes that follow, else that
 *     many past the last), flags (1: bit 0 attaches an fd, bit 1 takes
 *     magic, version and status from the 8 bytes that follow, bit 2 a
 *     length that is not the payload's), payload length (2), payload.
 * Three things are tamed, or the daemon would spend the run on them rather
 * than on parsing: a created domain gets at most 4 MiB and no QEMU (the
 * qemu path given is one that cannot exist), and a requested device model
 * start names the same missing binary. After each input every domain is
 * destroyed through a fresh connection, which also proves the daemon still
 * serves; a daemon that exited, crashed or stopped answering within 5 s is a
 * crash of this input, with its log printed.
 * The daemon's code is not instrumented for this process's coverage: its
 * replies are (op, kind, status and length as features). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/sim/proto.h"
#include "fuzz/fuzz_common.h"

#define REPLY_WAIT_MS 5000
#define MAX_CREATE_KIB (4u << 10)

/* libFuzzer treats these bytes as coverage: what the daemon answered. */
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t reply_seen[SIMP_OP_MAX_ + 2][SIMP_K_MAX_ + 2][40];

static pid_t daemon_pid;
static char rundir[256], sock_path[300], log_path[300];

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_simd: %s\n--- the daemon's log (tail) ---\n", why);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", log_path);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
    abort();
}

static void check_alive(void)
{
    int st;
    pid_t w = waitpid(daemon_pid, &st, WNOHANG);
    if (w == daemon_pid) {
        char why[96];
        snprintf(why, sizeof(why), "the daemon %s %d", WIFSIGNALED(st) ? "died of signal" :
                 "exited with status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        daemon_pid = 0;
        fail(why);
    }
}

static void stop_daemon(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rundir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_simd: could not remove %s\n", rundir);
}

static int connect_daemon(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (fd < 0)
        abort();
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(rundir, sizeof(rundir), "%s/lockstep-fuzz-simd-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(rundir))
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/%s", rundir, SIMP_SOCK_NAME);
    snprintf(log_path, sizeof(log_path), "%s/daemon.log", rundir);
    const char *simd = getenv("LOCKSTEP_SIMD");
    if (!simd)
        simd = FUZZ_SIMD_PATH;
    daemon_pid = fork();
    if (daemon_pid < 0)
        abort();
    if (daemon_pid == 0) {
        /* A crash report aborts this process without atexit: the daemon
         * must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int lf = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (lf >= 0) {
            dup2(lf, 1);
            dup2(lf, 2);
        }
        execl(simd, simd, "--rundir", rundir, "--idle-exit", "0", "--foreground", (char *)NULL);
        _exit(127);
    }
    atexit(stop_daemon);
    for (int i = 0; i < 1000; i++) {
        int fd = connect_daemon();
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        check_alive();
        usleep(10000);
    }
    fail("the daemon never listened");
    return 0;
}

/* Read a whole reply; false if the daemon hung up (it may, after a broken
 * header). Received fds are closed. */
static bool read_reply(int fd, struct simp_hdr *h, uint8_t **payload)
{
    size_t got = 0;
    uint8_t *dst = (uint8_t *)h;
    size_t want = sizeof(*h);
    bool in_payload = false;
    *payload = NULL;
    for (;;) {
        if (got == want) {
            if (in_payload || h->len == 0)
                return true;
            if (h->len > SIMP_MAX_PAYLOAD)
                fail("a reply longer than the protocol allows");
            *payload = malloc(h->len);
            if (!*payload)
                abort();
            dst = *payload;
            want = h->len;
            got = 0;
            in_payload = true;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, REPLY_WAIT_MS);
        if (n == 0) {
            check_alive();
            fail("no reply within 5 s");
        }
        union {
            char buf[CMSG_SPACE(sizeof(int) * 4)];
            struct cmsghdr align;
        } ctl;
        struct iovec v = { .iov_base = dst + got, .iov_len = want - got };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.buf,
                            .msg_controllen = sizeof(ctl.buf) };
        ssize_t r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        for (struct cmsghdr *cm = r > 0 ? CMSG_FIRSTHDR(&m) : NULL; cm; cm = CMSG_NXTHDR(&m, cm)) {
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int f;
                memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                close(f);
            }
        }
        if (r <= 0) {
            free(*payload);
            *payload = NULL;
            return false;
        }
        got += (size_t)r;
    }
}

struct cursor {
    const uint8_t *p;
    size_t n;
};

static uint32_t take(struct cursor *c, unsigned bytes)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v |= (uint32_t)(c->n ? *c->p : 0) << (8 * i);
        if (c->n) {
            c->p++;
            c->n--;
        }
    }
    return v;
}

static void tame(struct simp_hdr *h, uint8_t *payload, uint32_t len)
{
    if (h->op == SIMP_OP_CREATE && len >= sizeof(struct simp_create)) {
        struct simp_create cr;
        memcpy(&cr, payload, sizeof(cr));
        if (cr.memory_kib > MAX_CREATE_KIB)
            cr.memory_kib %= MAX_CREATE_KIB + 1;
        if (cr.device_model == SIMP_DM_QEMU)
            cr.device_model = SIMP_DM_STANDIN;
        snprintf(cr.qemu, sizeof(cr.qemu), "/nonexistent/qemu");
        memcpy(payload, &cr, sizeof(cr));
    }
    if (h->op == SIMP_OP_DM_START && len >= sizeof(struct simp_dm_start))
        snprintf((char *)payload, SIMP_PATH_LEN, "/nonexistent/qemu");
    if (h->op == SIMP_OP_SET && h->kind == SIMP_K_WORKLOAD && len >= sizeof(struct simp_workload)) {
        struct simp_workload w;
        memcpy(&w, payload, sizeof(w));
        w.writes %= 100000;   /* a replay of 2^64 writes is a hang of our making */
        memcpy(payload, &w, sizeof(w));
    }
}

static void note(const struct simp_hdr *req, const struct simp_hdr *rep)
{
    unsigned op = req->op < SIMP_OP_MAX_ + 2 ? req->op : SIMP_OP_MAX_ + 1;
    unsigned kind = req->kind < SIMP_K_MAX_ + 2 ? req->kind : SIMP_K_MAX_ + 1;
    unsigned st = rep->status >= 0 ? 0 : (unsigned)(-rep->status) % 39 + 1;
    reply_seen[op][kind][st]++;
}

/* Destroy every domain: a LIST, then a DESTROY each, on a new connection. */
static void clean_up(void)
{
    int fd = connect_daemon();
    if (fd < 0) {
        check_alive();
        fail("the daemon no longer accepts clients");
    }
    struct simp_hdr h = { .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = SIMP_OP_LIST };
    struct simp_hdr rep;
    uint8_t *list = NULL;
    if (simp_send(fd, &h, NULL, NULL, 0) < 0 || !read_reply(fd, &rep, &list) || rep.status != 0)
        fail("LIST failed on a fresh connection");
    size_t n = rep.len / sizeof(struct simp_dominfo);
    for (size_t i = 0; i < n; i++) {
        struct simp_dominfo di;
        memcpy(&di, list + i * sizeof(di), sizeof(di));
        struct simp_hdr d = { .magic = SIMP_MAGIC, .version = SIMP_VERSION,
                              .op = SIMP_OP_DESTROY, .domid = di.domid };
        uint8_t *p = NULL;
        if (simp_send(fd, &d, NULL, NULL, 0) < 0 || !read_reply(fd, &rep, &p) || rep.status != 0)
            fail("DESTROY of a listed domain failed");
        free(p);
    }
    free(list);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cursor c = { data, size };
    int fd = connect_daemon();
    if (fd < 0) {
        check_alive();
        fail("the daemon no longer accepts clients");
    }
    uint32_t last_dom = 0;
    for (int req = 0; req < 32 && c.n > 0 && fd >= 0; req++) {
        struct simp_hdr h = { .magic = SIMP_MAGIC, .version = SIMP_VERSION };
        h.op = (uint16_t)(take(&c, 1) % (SIMP_OP_MAX_ + 2));
        h.kind = (uint16_t)(take(&c, 1) % (SIMP_K_MAX_ + 2));
        h.index = (uint16_t)take(&c, 2);
        unsigned sel = take(&c, 1);
        h.domid = sel == 0 ? last_dom : sel == 1 ? 0 : sel == 2 ? take(&c, 4) : last_dom + sel - 2;
        unsigned flags = take(&c, 1);
        if (flags & 2) {
            h.magic = take(&c, 4);
            h.version = (uint16_t)take(&c, 2);
            h.status = (int32_t)take(&c, 2);
        }
        uint32_t len = take(&c, 2);
        if (len > c.n)
            len = (uint32_t)c.n;
        uint8_t *payload = malloc(len ? len : 1);
        if (!payload)
            abort();
        memcpy(payload, c.p, len);
        c.p += len;
        c.n -= len;
        h.len = len;
        tame(&h, payload, len);
        int xfd = -1;
        if (flags & 1)
            xfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (flags & 4) {
            /* A header that promises more than comes: the daemon waits for
             * the rest, and sees the connection close instead. */
            h.len = len + 1 + (take(&c, 1) & 0x3f);
        }
        int rc;
        if (flags & 4) {
            /* simp_send would send h.len bytes: the header promises them,
             * only the payload there is follows. */
            uint8_t *msg = malloc(sizeof(h) + len);
            if (!msg)
                abort();
            memcpy(msg, &h, sizeof(h));
            memcpy(msg + sizeof(h), payload, len);
            rc = send(fd, msg, sizeof(h) + len, MSG_NOSIGNAL) < 0 ? -errno : 0;
            free(msg);
        } else {
            rc = simp_send(fd, &h, payload, xfd >= 0 ? &xfd : NULL, xfd >= 0 ? 1 : 0);
        }
        free(payload);
        if (xfd >= 0)
            close(xfd);
        if (rc < 0 || (flags & 4)) {
            close(fd);
            fd = -1;
            break;
        }
        struct simp_hdr rep;
        uint8_t *rp;
        if (!read_reply(fd, &rep, &rp)) {
            close(fd);
            fd = -1;
            break;
        }
        if (rep.magic != SIMP_MAGIC || (rep.status == 0 && rep.op != h.op))
            fail("a reply that does not answer the request");
        note(&h, &rep);
        if (h.op == SIMP_OP_CREATE && rep.status == 0 && rep.len >= 4)
            memcpy(&last_dom, rp, 4);
        free(rp);
    }
    if (fd >= 0)
        close(fd);
    check_alive();
    clean_up();
    return 0;
}
