/* states/colo_proxy.c - actions of the COLO/Remus network output (colo_proxy.def).
 *
 * The data plane (the pump) is one io_work at a time on the threadpool: it
 * polls our guest's frames, colo-compare's outdev and notify, the
 * secondary's relay and a pause eventfd, moves frames, and returns only for
 * a fact the table decides on (DIVERGED, PUMP_PAUSED) or an error. Steps
 * (release, mark, failover) run only while it is stopped, so the proxy's
 * buffers have one user at a time; the counters are atomics for the owner.
 *
 * Wire with the secondary's proxy: messages of a 4-byte big-endian length,
 * then a 4-byte big-endian type and its body: FRAME (secondary to primary:
 * the checkpoint number the frame's guest runs from, then the frame), ACK
 * (primary to secondary: a frame released to the world). QEMU's chardevs
 * take the length and the frame (recipe 8).
 */
#include "states/colo_proxy.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "io/fdio.h"
#include "io/sched_uv.h"
#include "io/work.h"
#include "qmp/qmp.h"

#define FSM_PREFIX COLO_PROXY
#define FSM_DEF_FILE "states/colo_proxy.def"
#include "fsm/gen_table.h"

extern char **environ;

#define FRAME_MAX 9216u                /* a jumbo frame; anything longer is refused */
#define MSG_MAX (FRAME_MAX + 8u)
#define START_TIMEOUT_MS 10000u        /* QEMU up, its sockets accepting */
#define HANDSHAKE_TIMEOUT_MS 5000u     /* libxl waits 0.5 s; a loaded CI host needs more */
#define DRAIN_TIMEOUT_MS 2000u         /* QEMU reading what we gave it */
#define QUIET_MS 30u                   /* outdev silent this long: the flush is out */
#define DEFAULT_COMPARE_TIMEOUT_MS 10000u
#define TYPE_FRAME 1u
#define TYPE_ACK 2u

static const char proxy_init[] = "COLO_USERSPACE_PROXY_INIT";
static const char compare_init[] = "COLO_COMPARE_GET_XEN_INIT";
static const char do_checkpoint[] = "DO_CHECKPOINT";
static const char colo_checkpoint[] = "COLO_CHECKPOINT";

/* ---- small helpers --------------------------------------------------------------- */

static int fault(const char *step, struct ls_errbuf *err)
{
#ifdef LOCKSTEP_FAULT_HOOKS
    const char *at = getenv("LOCKSTEP_PROXY_FAULT");
    if (at && strcmp(at, step) == 0)
        return ls_err(err, -EIO, "proxy: %s: injected failure (LOCKSTEP_PROXY_FAULT)", step);
#else
    (void)step;
    (void)err;
#endif
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int buf_add(struct px_buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static void buf_drop(struct px_buf *b, size_t n)
{
    if (n == 0)
        return;   /* a buffer never filled has no memory: memmove(NULL, ...) is undefined */
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void buf_free(struct px_buf *b)
{
    free(b->p);
    *b = (struct px_buf){ 0 };
}

/* A [u32 length][bytes] record appended to b. */
static int buf_add_record(struct px_buf *b, const void *data, size_t n)
{
    uint8_t h[4];
    put32(h, (uint32_t)n);
    int rc = buf_add(b, h, 4);
    return rc ? rc : buf_add(b, data, n);
}

/* Reads what fd has (non-blocking) into b: 0, -ENODATA at EOF, or -errno. */
static int fill(int fd, struct px_buf *b)
{
    uint8_t tmp[16384];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r > 0) {
            if (buf_add(b, tmp, (size_t)r) < 0)
                return -ENOMEM;
            continue;
        }
        if (r == 0)
            return -ENODATA;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? 0 : -errno;
    }
}

/* The next whole message of b ([u32 length][bytes]): its bytes and length, or
 * NULL; -EMSGSIZE in *rc for a length over MSG_MAX. Pop it with buf_drop(4 + n). */
static const uint8_t *next_msg(const struct px_buf *b, size_t *n, int *rc)
{
    *rc = 0;
    if (b->len < 4)
        return NULL;
    *n = get32(b->p);
    if (*n > MSG_MAX) {
        *rc = -EMSGSIZE;
        return NULL;
    }
    return b->len >= 4 + *n ? b->p + 4 : NULL;
}

static int send_msg(int fd, const void *data, size_t n, int cancel_fd)
{
    uint8_t h[4];
    put32(h, (uint32_t)n);
    int rc = io_write_all(fd, h, 4, cancel_fd);
    return rc ? rc : io_write_all(fd, data, n, cancel_fd);
}

/* Queued output: a pump that blocked writing to QEMU while QEMU blocked
 * writing its outdev to us would stop both (seen at 100,000 frames/s), so
 * what goes to QEMU and to the other side's proxy is queued and written as
 * the socket takes it, and the pump keeps reading meanwhile. */
#define OUT_HIGH (4u << 20)            /* above this, our guest is not read (its NIC drops) */

/* Output queued: the queues to QEMU and the other side's proxy, written on. */
static size_t queued(const struct colo_proxy *p)
{
    return p->pri_out.len + p->sec_out.len + p->peer_out.len;
}

static int enqueue(struct px_buf *q, const void *h, size_t hn, const void *d, size_t dn)
{
    int rc = buf_add(q, h, hn);
    return rc ? rc : buf_add(q, d, dn);
}

/* Write what fd takes now: 0, or -errno (the peer is gone). */
static int push(int fd, struct px_buf *q)
{
    size_t off = 0;
    while (off < q->len) {
        ssize_t w = send(fd, q->p + off, q->len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        int rc = w < 0 ? -errno : -EPIPE;
        buf_drop(q, off);
        return rc;
    }
    buf_drop(q, off);
    return 0;
}

static int queue_msg(int fd, struct px_buf *q, const void *data, size_t n)
{
    uint8_t h[4];
    put32(h, (uint32_t)n);
    int rc = enqueue(q, h, 4, data, n);
    return rc ? rc : push(fd, q);
}

/* A typed message to the other side's proxy, queued; its loss only closes the link. */
static void queue_typed(struct colo_proxy *p, uint32_t type, uint32_t epoch, const void *frame,
                        size_t n)
{
    if (p->peer_fd < 0)
        return;
    uint8_t h[12];
    bool with_epoch = type == TYPE_FRAME;
    put32(h, (uint32_t)(n + (with_epoch ? 8 : 4)));
    put32(h + 4, type);
    put32(h + 8, epoch);
    if (enqueue(&p->peer_out, h, with_epoch ? 12 : 8, frame, n) < 0 ||
        push(p->peer_fd, &p->peer_out) < 0) {
        close(p->peer_fd);   /* the other side is gone: its role's business */
        p->peer_fd = -1;
        p->peer_out.len = 0;
    }
}

/* One frame to the world (a SOCK_SEQPACKET socket: one message each). */
static int to_world(struct colo_proxy *p, const void *frame, size_t n, struct ls_errbuf *err)
{
    for (;;) {
        ssize_t w = send(p->world_fd, frame, n, MSG_NOSIGNAL);
        if (w == (ssize_t)n) {
            atomic_fetch_add(&p->n.released, 1);
            return 0;
        }
        if (w < 0 && errno == EINTR)
            continue;
        return ls_err(err, w < 0 ? -errno : -EIO, "proxy: the world (%s) refused a frame: %s",
                      p->world, w < 0 ? strerror(errno) : "short write");
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A unix socket path into sun; -ENAMETOOLONG. */
static int sun_of(const char *path, struct sockaddr_un *a)
{
    *a = (struct sockaddr_un){ .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a->sun_path))
        return -ENAMETOOLONG;
    memcpy(a->sun_path, path, strlen(path) + 1);
    return 0;
}

static int connect_unix(const char *path, int type, struct ls_errbuf *err, const char *what)
{
    struct sockaddr_un a;
    if (sun_of(path, &a) < 0)
        return ls_err(err, -ENAMETOOLONG, "proxy: %s: socket path '%s' is too long", what, path);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ls_err(err, -errno, "proxy: %s: socket: %s", what, strerror(errno));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int rc = -errno;
        close(fd);
        return ls_err(err, rc, "proxy: %s (%s): %s", what, path, strerror(-rc));
    }
    return fd;
}

/* "unix:PATH" or "tcp:HOST:PORT": connect (c) or listen (!c). */
static int endpoint(const char *spec, bool c, struct ls_errbuf *err, const char *what)
{
    if (strncmp(spec, "unix:", 5) == 0) {
        if (c)
            return connect_unix(spec + 5, SOCK_STREAM, err, what);
        struct sockaddr_un a;
        if (sun_of(spec + 5, &a) < 0)
            return ls_err(err, -ENAMETOOLONG, "proxy: %s: socket path '%s' is too long", what,
                          spec + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return ls_err(err, -errno, "proxy: %s: socket: %s", what, strerror(errno));
        unlink(spec + 5);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
            int rc = -errno;
            close(fd);
            return ls_err(err, rc, "proxy: %s: listening on %s: %s", what, spec, strerror(-rc));
        }
        return fd;
    }
    char host[128];
    const char *colon = strncmp(spec, "tcp:", 4) == 0 ? strrchr(spec + 4, ':') : NULL;
    if (!colon || (size_t)(colon - (spec + 4)) >= sizeof(host))
        return ls_err(err, -EINVAL, "proxy: %s: '%s' is not unix:PATH or tcp:HOST:PORT", what,
                      spec);
    memcpy(host, spec + 4, (size_t)(colon - (spec + 4)));
    host[colon - (spec + 4)] = '\0';
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = c ? 0 : AI_PASSIVE }, *ai;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (g != 0)
        return ls_err(err, -EHOSTUNREACH, "proxy: %s: %s: %s", what, spec, gai_strerror(g));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0), rc = 0, one = 1;
    if (fd < 0)
        rc = -errno;
    else if (c)
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
             bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4) < 0)
        rc = -errno;
    freeaddrinfo(ai);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return ls_err(err, rc, "proxy: %s: %s %s: %s", what, c ? "connecting to" : "listening on",
                      spec, strerror(-rc));
    }
    if (c)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Our guest's frames and the world: both primary jobs and the secondary's failover. */
static int open_guest(struct colo_proxy *p, struct ls_errbuf *err)
{
    struct ls_errbuf why;
    ls_err_clear(&why);
    int rc = fault("attach", &why);
    if (rc == 0 && !p->be->ops->net_attach)
        rc = ls_err(&why, -EOPNOTSUPP, "backend %s cannot give a guest's network",
                    p->be->ops->name);
    if (rc == 0)
        rc = p->be->ops->net_attach(p->be, p->domid, &p->guest_fd, &why);
    if (rc < 0)
        return ls_err(err, rc, "proxy: attaching to domain %u's network: %s", p->domid, why.msg);
    if (rc == 0)
        set_nonblock(p->guest_fd);
    return rc;
}

static int open_world(struct colo_proxy *p, struct ls_errbuf *err)
{
    int rc = fault("world", err);
    if (rc < 0)
        return rc;
    rc = connect_unix(p->world, SOCK_SEQPACKET, err, "the world");
    if (rc < 0)
        return rc;
    p->world_fd = rc;
    return 0;
}

/* "; QEMU's log ends: ..." for errors that keep QEMU's own words. */
static void qemu_words(const struct colo_proxy *p, char *buf, size_t len)
{
    char tail[400];   /* with the prefix and the path it fits the 700 every caller gives */
    buf[0] = '\0';
    io_log_tail(p->log_path, 3, tail, sizeof(tail));
    /* cut to len: the log's words are the end of an error message */
    if (tail[0] && snprintf(buf, len, "; QEMU's log (%s) ends: %s", p->log_path, tail) >= (int)len)
        buf[len - 1] = '\0';
}

/* The frames our guest sent so far (its socket read dry). cb per frame. */
static int drain_guest(struct colo_proxy *p, int (*cb)(struct colo_proxy *, const uint8_t *, size_t,
                                                       int, struct ls_errbuf *),
                       int cancel_fd, struct ls_errbuf *err)
{
    uint8_t f[FRAME_MAX];
    while (p->guest_fd >= 0 && (queued(p) < OUT_HIGH || p->draining)) {
        ssize_t r = recv(p->guest_fd, f, sizeof(f), MSG_DONTWAIT);
        if (r > 0) {
            int rc = cb(p, f, (size_t)r, cancel_fd, err);
            if (rc < 0)
                return rc;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r == 0) {
            /* The domain is gone (destroyed, its host dead): whether that ends
             * replication is our owner's to decide; we have nothing to read. */
            close_fd(&p->guest_fd);
            return 0;
        }
        return ls_err(err, -errno, "proxy: domain %u's network: %s", p->domid, strerror(errno));
    }
    return 0;
}

/* ---- COLO primary: the frames' ways ------------------------------------------------ */

static int guest_to_compare(struct colo_proxy *p, const uint8_t *f, size_t n, int cancel_fd,
                            struct ls_errbuf *err)
{
    int rc = queue_msg(p->pri_fd, &p->pri_out, f, n);
    if (rc < 0)
        return ls_err(err, rc, "proxy: colo-compare's primary_in: %s", strerror(-rc));
    uint8_t h[8];
    put32(h, (uint32_t)n);
    put32(h + 4, 0);   /* not released yet */
    if (buf_add(&p->order, h, 8) < 0 || buf_add(&p->order, f, n) < 0)
        return ls_err(err, -ENOMEM, "proxy: out of memory for the frames compared");
    atomic_fetch_add(&p->n.compared, 1);
    return 0;
}

static int secondary_to_compare(struct colo_proxy *p, const uint8_t *f, size_t n, int cancel_fd,
                                struct ls_errbuf *err)
{
    int rc = queue_msg(p->sec_fd, &p->sec_out, f, n);
    if (rc < 0)
        return ls_err(err, rc, "proxy: colo-compare's secondary_in: %s", strerror(-rc));
    atomic_fetch_add(&p->n.secondary, 1);
    return 0;
}

/* A FRAME from the secondary: compared if it runs from our last flush, kept
 * if from a later one, dropped if from an earlier one (its checkpoint is
 * past: the flush removed its peers). */
static int secondary_frame(struct colo_proxy *p, uint32_t epoch, const uint8_t *f, size_t n,
                           int cancel_fd, struct ls_errbuf *err)
{
    if (epoch == p->epoch)
        return secondary_to_compare(p, f, n, cancel_fd, err);
    if (epoch < p->epoch) {
        atomic_fetch_add(&p->n.stale, 1);
        return 0;
    }
    uint8_t e[4];
    put32(e, epoch);
    int rc = buf_add(&p->held_sec, e, 4);
    if (rc == 0)
        rc = buf_add_record(&p->held_sec, f, n);
    return rc < 0 ? ls_err(err, rc, "proxy: out of memory") : 0;
}

/* After a flush: the secondary's held frames of the new checkpoint go in. */
static int secondary_catch_up(struct colo_proxy *p, int cancel_fd, struct ls_errbuf *err)
{
    struct px_buf keep = { 0 };
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off + 8 <= p->held_sec.len) {
        uint32_t epoch = get32(p->held_sec.p + off), n = get32(p->held_sec.p + off + 4);
        const uint8_t *f = p->held_sec.p + off + 8;
        if (epoch == p->epoch)
            rc = secondary_to_compare(p, f, n, cancel_fd, err);
        else if (epoch > p->epoch)
            rc = buf_add(&keep, p->held_sec.p + off, 8 + n) < 0 ? -ENOMEM : 0;
        else
            atomic_fetch_add(&p->n.stale, 1);
        off += 8 + n;
    }
    buf_free(&p->held_sec);
    p->held_sec = keep;
    return rc == -ENOMEM ? ls_err(err, rc, "proxy: out of memory") : rc;
}

static int peer_messages(struct colo_proxy *p, int cancel_fd, struct ls_errbuf *err)
{
    size_t n;
    int rc;
    const uint8_t *m;
    while ((m = next_msg(&p->peer_in, &n, &rc))) {
        if (n < 8 || get32(m) != TYPE_FRAME || n - 8 > FRAME_MAX)
            return ls_err(err, -EPROTO, "proxy: the secondary's proxy sent a %zu-byte message "
                          "of type %u where a FRAME was due", n, n >= 4 ? get32(m) : 0);
        rc = secondary_frame(p, get32(m + 4), m + 8, n - 8, cancel_fd, err);
        if (rc < 0)
            return rc;
        buf_drop(&p->peer_in, 4 + n);
    }
    return rc < 0 ? ls_err(err, rc, "proxy: the secondary's proxy sent a message over %u bytes",
                           MSG_MAX) : 0;
}

/* What colo-compare released goes to the world (and back to the secondary)
 * in the order our guest sent it: 7.2 releases a flush's held frames in an
 * order of its own (newest first within a flow, flows in creation order). */
static int release_in_order(struct colo_proxy *p, const uint8_t *m, size_t n, int cancel_fd,
                            struct ls_errbuf *err)
{
    size_t off = 0;
    while (off + 8 <= p->order.len) {
        size_t len = get32(p->order.p + off);
        if (!get32(p->order.p + off + 4) && len == n && memcmp(p->order.p + off + 8, m, n) == 0)
            break;
        off += 8 + len;
    }
    if (off + 8 > p->order.len)
        return ls_err(err, -EPROTO, "proxy: colo-compare released a %zu-byte frame our guest "
                      "did not send (or sent once and it released twice)", n);
    put32(p->order.p + off + 4, 1);
    off = 0;
    int rc = 0;
    while (rc == 0 && off + 8 <= p->order.len && get32(p->order.p + off + 4)) {
        size_t len = get32(p->order.p + off);
        const uint8_t *f = p->order.p + off + 8;
        rc = to_world(p, f, len, err);
        if (rc == 0)
            queue_typed(p, TYPE_ACK, 0, f, len);
        off += 8 + len;
    }
    buf_drop(&p->order, off);
    return rc;
}

static int compare_output(struct colo_proxy *p, int cancel_fd, struct ls_errbuf *err)
{
    size_t n;
    int rc;
    const uint8_t *m;
    while ((m = next_msg(&p->out_in, &n, &rc))) {
        if ((rc = release_in_order(p, m, n, cancel_fd, err)) < 0)
            return rc;
        buf_drop(&p->out_in, 4 + n);
    }
    return rc < 0 ? ls_err(err, rc, "proxy: colo-compare's outdev sent a message over %u bytes",
                           MSG_MAX) : 0;
}

/* notify: DO_CHECKPOINT is a fact for the table (1); anything else is wrong. */
static int notify_messages(struct colo_proxy *p, bool stale, struct ls_errbuf *err)
{
    size_t n;
    int rc, diverged = 0;
    const uint8_t *m;
    while ((m = next_msg(&p->notify_in, &n, &rc))) {
        if (n != sizeof(do_checkpoint) - 1 || memcmp(m, do_checkpoint, n) != 0)
            return ls_err(err, -EPROTO, "proxy: colo-compare said '%.*s' on notify where only "
                          "DO_CHECKPOINT may come", (int)(n > 64 ? 64 : n), (const char *)m);
        atomic_fetch_add(&p->n.divergences, 1);
        diverged = !stale;
        buf_drop(&p->notify_in, 4 + n);
    }
    if (rc < 0)
        return ls_err(err, rc, "proxy: colo-compare sent a notify message over %u bytes", MSG_MAX);
    return diverged;
}

/* ---- the pump --------------------------------------------------------------------- */

enum { P_PAUSE, P_CANCEL, P_GUEST, P_OUT, P_NOTIFY, P_PEER, P_LISTEN, P_PRI, P_SEC, P_N };


static int pump_eof(struct colo_proxy *p, const char *what, int rc, struct ls_errbuf *err)
{
    char words[700];
    qemu_words(p, words, sizeof(words));
    return ls_err(err, rc == -ENODATA ? -ECONNRESET : rc, "proxy: colo-compare's %s %s%s", what,
                  rc == -ENODATA ? "closed (QEMU is gone)" : strerror(-rc), words);
}

/* Until a fact for the table: PUMP_PAUSED, DIVERGED; or an error. */
static int pump(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    for (;;) {
        struct pollfd f[P_N] = {
            [P_PAUSE] = { .fd = p->pause_fd, .events = POLLIN },
            [P_CANCEL] = { .fd = cancel_fd, .events = POLLIN },
            /* a guest whose frames cannot go on is not read: its NIC drops them */
            [P_GUEST] = { .fd = queued(p) < OUT_HIGH ? p->guest_fd : -1, .events = POLLIN },
            [P_OUT] = { .fd = p->out_fd, .events = POLLIN },
            [P_NOTIFY] = { .fd = p->notify_fd, .events = POLLIN },
            [P_PEER] = { .fd = p->peer_fd,
                         .events = (short)(POLLIN | (p->peer_out.len ? POLLOUT : 0)) },
            [P_LISTEN] = { .fd = p->listen_fd, .events = POLLIN },
            [P_PRI] = { .fd = p->pri_out.len ? p->pri_fd : -1, .events = POLLOUT },
            [P_SEC] = { .fd = p->sec_out.len ? p->sec_fd : -1, .events = POLLOUT },
        };
        if (poll(f, P_N, -1) < 0) {
            if (errno == EINTR)
                continue;
            return ls_err(err, -errno, "proxy: poll: %s", strerror(errno));
        }
        if (f[P_CANCEL].revents)
            return ls_err(err, -ECANCELED, "proxy: stopped");
        int rc = 0;
        if (f[P_PRI].revents && (rc = push(p->pri_fd, &p->pri_out)) < 0)
            return pump_eof(p, "primary_in", rc, err);
        if (f[P_SEC].revents && (rc = push(p->sec_fd, &p->sec_out)) < 0)
            return pump_eof(p, "secondary_in", rc, err);
        if ((f[P_PEER].revents & POLLOUT) && push(p->peer_fd, &p->peer_out) < 0) {
            close_fd(&p->peer_fd);     /* the other side is gone: its role's business */
            p->peer_out.len = 0;
            f[P_PEER].revents = 0;
        }
        if (f[P_OUT].revents) {
            if ((rc = fill(p->out_fd, &p->out_in)) < 0)
                return pump_eof(p, "outdev", rc, err);
            if ((rc = compare_output(p, cancel_fd, err)) < 0)
                return rc;
        }
        /* Our guest's frames: compared (COLO), buffered (Remus), relayed (secondary). */
        if (f[P_GUEST].revents && (rc = drain_guest(p, p->on_guest, cancel_fd, err)) < 0)
            return rc;
        if (f[P_PEER].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) {
            /* The other side gone (EOF, reset, any error) is its role's business:
             * we stop hearing it. What it said wrong is ours. */
            size_t had = p->peer_in.len;
            if (fill(p->peer_fd, &p->peer_in) < 0 ||
                (p->peer_in.len == had && (f[P_PEER].revents & (POLLERR | POLLHUP | POLLNVAL)))) {
                close_fd(&p->peer_fd);
                p->peer_in.len = 0;
            } else if ((rc = p->on_peer(p, cancel_fd, err)) < 0) {
                return rc;
            }
        }
        if (f[P_LISTEN].revents) {
            int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                close_fd(&p->peer_fd);     /* a secondary that connects again replaces itself */
                p->peer_fd = fd;
                p->peer_in.len = 0;
                p->peer_out.len = 0;
            }
        }
        if (f[P_NOTIFY].revents) {
            if ((rc = fill(p->notify_fd, &p->notify_in)) < 0)
                return pump_eof(p, "notify socket", rc, err);
            if ((rc = notify_messages(p, false, err)) != 0)
                return rc < 0 ? rc : COLO_PROXY_E_DIVERGED;
        }
        if (f[P_PAUSE].revents) {
            uint64_t v;
            if (read(p->pause_fd, &v, sizeof(v)) == sizeof(v))
                return COLO_PROXY_E_PUMP_PAUSED;
        }
    }
}

/* ---- Remus primary and the secondary: the frames' ways ------------------------------ */

static int guest_to_buffer(struct colo_proxy *p, const uint8_t *f, size_t n, int cancel_fd,
                           struct ls_errbuf *err)
{
    if (buf_add_record(&p->rbuf, f, n) < 0)
        return ls_err(err, -ENOMEM, "proxy: out of memory for %" PRIu64 " buffered frames",
                      atomic_load(&p->n.buffered));
    atomic_fetch_add(&p->n.buffered, 1);
    return 0;
}

/* The secondary: to the primary's proxy (while it is there), kept until acknowledged. */
static int guest_to_peer(struct colo_proxy *p, const uint8_t *f, size_t n, int cancel_fd,
                         struct ls_errbuf *err)
{
    queue_typed(p, TYPE_FRAME, p->s_epoch, f, n);   /* kept below whether or not it went */
    if (buf_add_record(&p->kept, f, n) < 0)
        return ls_err(err, -ENOMEM, "proxy: out of memory for %" PRIu64 " unacknowledged frames",
                      atomic_load(&p->n.buffered));
    atomic_fetch_add(&p->n.buffered, 1);
    return 0;
}

/* ACKs: the world has that frame; it and every frame before it are done. */
static int peer_acks(struct colo_proxy *p, int cancel_fd, struct ls_errbuf *err)
{
    size_t n;
    int rc;
    const uint8_t *m;
    while ((m = next_msg(&p->peer_in, &n, &rc))) {
        if (n < 4 || get32(m) != TYPE_ACK)
            return ls_err(err, -EPROTO, "proxy: the primary's proxy sent a %zu-byte message of "
                          "type %u where an ACK was due", n, n >= 4 ? get32(m) : 0);
        size_t off = 0;
        uint64_t k = 0;
        while (off + 4 <= p->kept.len) {
            size_t len = get32(p->kept.p + off);
            k++;
            off += 4 + len;
            if (len == n - 4 && memcmp(p->kept.p + off - len, m + 4, len) == 0) {
                buf_drop(&p->kept, off);
                atomic_fetch_sub(&p->n.buffered, k);
                break;
            }
        }
        buf_drop(&p->peer_in, 4 + n);
    }
    return rc < 0 ? ls_err(err, rc, "proxy: the primary's proxy sent a message over %u bytes",
                           MSG_MAX) : 0;
}

/* Records [0, upto) of b to the world, then dropped from b. */
static int records_to_world(struct colo_proxy *p, struct px_buf *b, size_t upto,
                            _Atomic uint64_t *counter, struct ls_errbuf *err)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off + 4 <= upto) {
        size_t len = get32(b->p + off);
        rc = to_world(p, b->p + off + 4, len, err);
        if (rc == 0 && counter)
            atomic_fetch_add(counter, 1);
        if (rc == 0)
            atomic_fetch_sub(&p->n.buffered, 1);
        off += 4 + len;
    }
    buf_drop(b, off);
    return rc;
}

/* ---- QEMU's colo-compare (recipe 8) -------------------------------------------------- */

static int spawn_qemu(struct colo_proxy *p, struct ls_errbuf *err)
{
    int rc = fault("spawn", err);
    if (rc < 0)
        return rc;
    char qmp[200], cpri[200], csec[200], cout[200], cnot[200], cmp[300];
    snprintf(p->qmp_path, sizeof(p->qmp_path), "%s/qmp.sock", p->dir);
    snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", p->qmp_path);
    snprintf(cpri, sizeof(cpri), "socket,id=cpri,path=%s/pri.sock,server=on,wait=off", p->dir);
    snprintf(csec, sizeof(csec), "socket,id=csec,path=%s/sec.sock,server=on,wait=off", p->dir);
    snprintf(cout, sizeof(cout), "socket,id=cout,path=%s/out.sock,server=on,wait=off", p->dir);
    snprintf(cnot, sizeof(cnot), "socket,id=cnotify,path=%s/notify.sock,server=on,wait=off",
             p->dir);
    snprintf(cmp, sizeof(cmp), "colo-compare,id=cmp,primary_in=cpri,secondary_in=csec,"
             "outdev=cout,iothread=it0,notify_dev=cnotify,compare_timeout=%u,"
             "expired_scan_cycle=1000", p->net.compare_timeout_ms);
    char *argv[] = { p->qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S",
                     "-qmp", qmp, "-object", "iothread,id=it0", "-chardev", cpri, "-chardev", csec,
                     "-chardev", cout, "-chardev", cnot, "-object", cmp, NULL };
    snprintf(p->log_path, sizeof(p->log_path), "%s/qemu.log", p->dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, p->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    rc = posix_spawnp(&pid, p->qemu, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return ls_err(err, -rc, "proxy: cannot start %s for colo-compare: %s", p->qemu,
                      strerror(rc));
    p->qemu_pid = pid;
    return 0;
}

/* Connect to one of QEMU's chardev sockets, retrying while it starts. */
static int connect_chardev(struct colo_proxy *p, const char *name, int cancel_fd,
                           struct ls_errbuf *err)
{
    char path[200];
    snprintf(path, sizeof(path), "%s/%s.sock", p->dir, name);
    uint64_t deadline = io_monotonic_ns() + (uint64_t)START_TIMEOUT_MS * 1000000u;
    for (;;) {
        struct ls_errbuf e;
        ls_err_clear(&e);
        int fd = connect_unix(path, SOCK_STREAM, &e, name);
        if (fd >= 0) {
            set_nonblock(fd);
            return fd;
        }
        int st;
        if (waitpid(p->qemu_pid, &st, WNOHANG) == p->qemu_pid) {
            p->qemu_pid = -1;
            char words[700];
            qemu_words(p, words, sizeof(words));
            return ls_err(err, -ECHILD, "proxy: QEMU (colo-compare) %s before its %s socket "
                          "came up%s", WIFEXITED(st) ? "exited" : "was killed", name, words);
        }
        if (io_monotonic_ns() > deadline || io_cancel_due(cancel_fd))
            return ls_err(err, io_cancel_due(cancel_fd) ? -ECANCELED : -ETIMEDOUT,
                          "proxy: QEMU's %s socket %s did not come up in %u ms: %s", name, path,
                          START_TIMEOUT_MS, e.msg);
        usleep(2000);
    }
}

static int c_start_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = fault("listen", err);
    if (rc == 0 && (rc = endpoint(p->listen_at, false, err, "the secondary's frames")) >= 0) {
        p->listen_fd = rc;
        set_nonblock(p->listen_fd);
        rc = 0;
    }
    if (rc == 0)
        rc = spawn_qemu(p, err);
    static const char *const names[] = { "pri", "sec", "out", "notify" };
    int *fds[] = { &p->pri_fd, &p->sec_fd, &p->out_fd, &p->notify_fd };
    for (int i = 0; rc == 0 && i < 4; i++)
        if ((rc = connect_chardev(p, names[i], cancel_fd, err)) >= 0) {
            *fds[i] = rc;
            rc = 0;
        }
    if (rc == 0)
        rc = open_guest(p, err);
    if (rc == 0)
        rc = open_world(p, err);
    return rc;
}

/* libxl's userspace-proxy init: COLO_USERSPACE_PROXY_INIT, answered COLO_COMPARE_GET_XEN_INIT. */
static int handshake_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = fault("handshake", err);
    if (rc == 0 && (rc = send_msg(p->notify_fd, proxy_init, sizeof(proxy_init) - 1, cancel_fd)) < 0)
        return pump_eof(p, "notify socket (sending COLO_USERSPACE_PROXY_INIT)", rc, err);
    uint64_t deadline = io_monotonic_ns() + (uint64_t)HANDSHAKE_TIMEOUT_MS * 1000000u;
    while (rc == 0) {
        size_t n;
        const uint8_t *m = next_msg(&p->notify_in, &n, &rc);
        if (rc < 0)
            return ls_err(err, rc, "proxy: colo-compare answered COLO_USERSPACE_PROXY_INIT with "
                          "a message over %u bytes", MSG_MAX);
        if (m) {
            if (n != sizeof(compare_init) - 1 || memcmp(m, compare_init, n) != 0)
                return ls_err(err, -EPROTO, "proxy: colo-compare answered '%.*s' to "
                              "COLO_USERSPACE_PROXY_INIT where COLO_COMPARE_GET_XEN_INIT was due",
                              (int)(n > 64 ? 64 : n), (const char *)m);
            buf_drop(&p->notify_in, 4 + n);
            return 0;
        }
        uint64_t now = io_monotonic_ns();
        if (now >= deadline)
            return ls_err(err, -ETIMEDOUT, "proxy: colo-compare did not answer "
                          "COLO_USERSPACE_PROXY_INIT in %u ms (no notify_dev? not QEMU's "
                          "colo-compare?)", HANDSHAKE_TIMEOUT_MS);
        struct pollfd f[2] = { { .fd = p->notify_fd, .events = POLLIN },
                               { .fd = cancel_fd, .events = POLLIN } };
        if (poll(f, 2, (int)((deadline - now) / 1000000u) + 1) < 0 && errno != EINTR)
            return ls_err(err, -errno, "proxy: poll: %s", strerror(errno));
        if (f[1].revents)
            return ls_err(err, -ECANCELED, "proxy: stopped during the handshake");
        if (f[0].revents && (rc = fill(p->notify_fd, &p->notify_in)) < 0)
            return pump_eof(p, "notify socket (awaiting COLO_COMPARE_GET_XEN_INIT)", rc, err);
    }
    return rc;
}

/* Until QEMU has read every byte queued or written to primary_in,
 * secondary_in and notify (its comparisons and the flush ran), releasing
 * what it outputs meanwhile (it may be waiting to write it). Times out only
 * when nothing moves for DRAIN_TIMEOUT_MS. */
static int settle_compare(struct colo_proxy *p, int cancel_fd, struct ls_errbuf *err)
{
    uint64_t last = io_monotonic_ns();
    size_t before = (size_t)-1;
    for (;;) {
        int q[3] = { 0, 0, 0 }, fds[3] = { p->pri_fd, p->sec_fd, p->notify_fd };
        for (int i = 0; i < 3; i++)
            (void)ioctl(fds[i], SIOCOUTQ, &q[i]);
        size_t left = queued(p) - p->peer_out.len + p->notify_out.len + (size_t)q[0] +
                      (size_t)q[1] + (size_t)q[2];
        if (left == 0)
            return 0;
        if (left != before) {
            before = left;
            last = io_monotonic_ns();
        } else if (io_monotonic_ns() - last > (uint64_t)DRAIN_TIMEOUT_MS * 1000000u) {
            char words[700];
            qemu_words(p, words, sizeof(words));
            return ls_err(err, -ETIMEDOUT, "proxy: colo-compare left %zu bytes of its input "
                          "unread for %u ms%s", left, DRAIN_TIMEOUT_MS, words);
        }
        struct pollfd f[5] = {
            { .fd = p->pri_out.len ? p->pri_fd : -1, .events = POLLOUT },
            { .fd = p->sec_out.len ? p->sec_fd : -1, .events = POLLOUT },
            { .fd = p->notify_out.len ? p->notify_fd : -1, .events = POLLOUT },
            { .fd = p->out_fd, .events = POLLIN },
            { .fd = cancel_fd, .events = POLLIN },
        };
        if (poll(f, 5, 1) < 0 && errno != EINTR)
            return ls_err(err, -errno, "proxy: poll: %s", strerror(errno));
        if (f[4].revents)
            return ls_err(err, -ECANCELED, "proxy: stopped");
        int rc = 0;
        if (f[0].revents && (rc = push(p->pri_fd, &p->pri_out)) < 0)
            return pump_eof(p, "primary_in", rc, err);
        if (f[1].revents && (rc = push(p->sec_fd, &p->sec_out)) < 0)
            return pump_eof(p, "secondary_in", rc, err);
        if (f[2].revents && (rc = push(p->notify_fd, &p->notify_out)) < 0)
            return pump_eof(p, "notify socket", rc, err);
        if (f[3].revents) {
            if ((rc = fill(p->out_fd, &p->out_in)) < 0)
                return pump_eof(p, "outdev", rc, err);
            if ((rc = compare_output(p, cancel_fd, err)) < 0)
                return rc;
        }
    }
}

/* Our guest's last frames in, COLO_CHECKPOINT once QEMU compared them; the
 * DO_CHECKPOINTs it sent before the flush are past. */
static int flush_compare(struct colo_proxy *p, int cancel_fd, struct ls_errbuf *err)
{
    p->draining = true;
    int rc = drain_guest(p, guest_to_compare, cancel_fd, err);
    p->draining = false;
    if (rc == 0)
        rc = settle_compare(p, cancel_fd, err);
    if (rc == 0 && (rc = fault("notify", err)) == 0) {
        uint8_t h[4];
        put32(h, sizeof(colo_checkpoint) - 1);
        if (enqueue(&p->notify_out, h, 4, colo_checkpoint, sizeof(colo_checkpoint) - 1) < 0)
            return ls_err(err, -ENOMEM, "proxy: out of memory");
        rc = settle_compare(p, cancel_fd, err);
    }
    if (rc == 0 && (rc = fill(p->notify_fd, &p->notify_in)) < 0)
        return pump_eof(p, "notify socket", rc, err);
    return rc == 0 ? (notify_messages(p, true, err) < 0 ? err->rc : 0) : rc;
}

static int c_release_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = flush_compare(p, cancel_fd, err);
    if (rc == 0) {
        p->epoch++;
        rc = secondary_catch_up(p, cancel_fd, err);
    }
    return rc;
}

/* The end: what colo-compare holds goes out, and on to the world. */
static int c_final_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = flush_compare(p, cancel_fd, err);
    while (rc == 0) {
        struct pollfd f = { .fd = p->out_fd, .events = POLLIN };
        int n = poll(&f, 1, QUIET_MS);
        if (n <= 0)
            break;
        if ((rc = fill(p->out_fd, &p->out_in)) < 0)
            return pump_eof(p, "outdev", rc, err);
        rc = compare_output(p, cancel_fd, err);
    }
    return rc;
}

/* ---- Remus and secondary steps -------------------------------------------------------- */

static int r_start_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = open_guest(p, err);
    return rc ? rc : open_world(p, err);
}

static int r_cut_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = drain_guest(p, guest_to_buffer, cancel_fd, err);
    p->cut = p->rbuf.len;
    return rc;
}

static int r_release_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    size_t cut = p->cut;
    p->cut = 0;
    return records_to_world(p, &p->rbuf, cut, NULL, err);
}

static int r_final_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = drain_guest(p, guest_to_buffer, cancel_fd, err);
    return rc ? rc : records_to_world(p, &p->rbuf, p->rbuf.len, NULL, err);
}

static int s_start_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    int rc = open_guest(p, err);
    if (rc == 0 && (rc = fault("connect", err)) == 0 &&
        (rc = endpoint(p->peer, true, err, "the primary's proxy")) >= 0) {
        p->peer_fd = rc;
        set_nonblock(p->peer_fd);
        rc = 0;
    }
    return rc;
}

static int s_epoch_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    p->draining = true;    /* every frame before the mark is of the old checkpoint */
    int rc = drain_guest(p, guest_to_peer, cancel_fd, err);
    p->draining = false;
    p->s_epoch++;
    atomic_fetch_sub(&p->n.buffered, atomic_load(&p->n.buffered));
    p->kept.len = 0;   /* the next checkpoint replaces the state these came from */
    return rc;
}

/* What the world has not had, then our guest's network into it. */
static int s_failover_work(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_proxy *p = arg;
    p->draining = true;
    int rc = drain_guest(p, guest_to_peer, cancel_fd, err);
    p->draining = false;
    if (rc == 0 && p->peer_fd >= 0 && fill(p->peer_fd, &p->peer_in) == 0)
        rc = peer_acks(p, cancel_fd, err);   /* the last acknowledgements, if any came */
    close_fd(&p->peer_fd);
    if (rc == 0)
        rc = open_world(p, err);
    if (rc == 0)
        rc = records_to_world(p, &p->kept, p->kept.len, &p->n.direct, err);
    if (rc == 0 && !p->be->ops->net_connect)
        rc = ls_err(err, -EOPNOTSUPP, "proxy: backend %s cannot plug a guest's network in",
                    p->be->ops->name);
    if (rc == 0 && (rc = p->be->ops->net_connect(p->be, p->domid, p->world, err)) < 0)
        return ls_err(err, rc, "proxy: plugging domain %u's network into %s: %s", p->domid,
                      p->world, err->msg);
    close_fd(&p->guest_fd);
    return rc;
}

/* ---- teardown ------------------------------------------------------------------------ */

static int teardown_undo(struct fsm *m, void *obj)
{
    struct colo_proxy *p = obj;
    int *fds[] = { &p->guest_fd, &p->world_fd, &p->pri_fd, &p->sec_fd, &p->out_fd,
                   &p->notify_fd, &p->listen_fd, &p->peer_fd, &p->pause_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        close_fd(fds[i]);
    if (p->qemu_pid > 0) {
        /* An orderly end sent quit; give it a moment, then make sure. */
        int st;
        for (int i = 0; i < 200 && waitpid(p->qemu_pid, &st, WNOHANG) == 0; i++)
            usleep(1000);
        if (kill(p->qemu_pid, 0) == 0 && waitpid(p->qemu_pid, &st, WNOHANG) == 0) {
            kill(p->qemu_pid, SIGKILL);
            waitpid(p->qemu_pid, &st, 0);
        }
        p->qemu_pid = -1;
    }
    if (p->listen_at[0] && strncmp(p->listen_at, "unix:", 5) == 0)
        unlink(p->listen_at + 5);
    if (p->dir[0] && !p->net.dir) {
        static const char *const files[] = { "qmp", "pri", "sec", "out", "notify" };
        char path[200];
        for (size_t i = 0; i < 5; i++) {
            snprintf(path, sizeof(path), "%s/%s.sock", p->dir, files[i]);
            unlink(path);
        }
        unlink(p->log_path);
        rmdir(p->dir);
    }
    buf_free(&p->out_in);
    buf_free(&p->notify_in);
    buf_free(&p->peer_in);
    buf_free(&p->held_sec);
    buf_free(&p->order);
    buf_free(&p->pri_out);
    buf_free(&p->sec_out);
    buf_free(&p->peer_out);
    buf_free(&p->notify_out);
    buf_free(&p->rbuf);
    buf_free(&p->kept);
    return 0;
}

/* ---- QMP ------------------------------------------------------------------------------ */

static void qmp_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct colo_proxy *p = data;
    p->qmp = NULL;
    if (p->qmp_closing)
        fsm_undo_complete(&p->m);
}

static int qmp_close_undo(struct fsm *m, void *obj)
{
    struct colo_proxy *p = obj;
    if (!p->qmp)
        return 0;
    p->qmp_closing = true;
    if (!p->in_flight)
        qmp_conn_close(p->qmp);
    return FSM_UNDO_PENDING;
}

static void on_reply(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct colo_proxy *p = data;
    p->in_flight = false;
    if (p->qmp_closing) {
        qmp_conn_close(c);
        return;
    }
    if (r->rc < 0) {
        ls_err_copy(&p->qmp_err, r->err);
        fsm_post(&p->m, COLO_PROXY_E_QMP_ERROR, r->rc, NULL);
        return;
    }
    fsm_post(&p->m, COLO_PROXY_E_ANSWERED, 0, NULL);
}

static int qmp_send(struct colo_proxy *p, const char *cmd, struct qmp_args *args)
{
    p->cmd = cmd;
    if (fault(cmd, &p->qmp_err) < 0 || fault("qmp", &p->qmp_err) < 0) {
        qmp_args_free(args);
        fsm_post(&p->m, COLO_PROXY_E_QMP_ERROR, p->qmp_err.rc, NULL);
        return 0;
    }
    int rc = 0;
    if (!p->qmp) {
        struct qmp_conn_opts o = { .name = p->m.name, .setup_timeout_ms = START_TIMEOUT_MS,
                                   .cmd_timeout_ms = START_TIMEOUT_MS, .done = qmp_done, .data = p };
        rc = qmp_conn_open_unix((struct io_sched *)p->m.sched, p->qmp_path, &o, &p->qmp);
        if (rc < 0) {
            qmp_args_free(args);
            return fsm_fail(&p->m, rc, "proxy: colo-compare's QMP socket %s: %s", p->qmp_path,
                            strerror(-rc));
        }
        if ((rc = fsm_defer(&p->m, qmp_close_undo, p, "QMP connection")) < 0) {
            qmp_args_free(args);
            return rc;
        }
    }
    p->cmd = cmd;
    rc = qmp_exec(p->qmp, cmd, args, on_reply, p);
    p->in_flight = rc == 0;
    return rc < 0 ? fsm_fail(&p->m, rc, "proxy: cannot send %s to colo-compare's QEMU: %s", cmd,
                             strerror(-rc)) : 0;
}

/* ---- actions --------------------------------------------------------------------------- */

/* A pause asked of a pump that had already returned (DIVERGED crossing the
 * owner's CHECKPOINT) is answered by the step that followed: a new pump must
 * not take it for its own. */
static int start_pump(struct fsm *m)
{
    struct colo_proxy *p = m->owner;
    uint64_t stale;
    if (read(p->pause_fd, &stale, sizeof(stale)) < 0 && errno != EAGAIN)
        return fsm_fail(m, -errno, "proxy: the pump's pause eventfd: %s", strerror(errno));
    return io_work_start(m, IO_WORK_EV_FROM_FN, pump, p, "proxy pump");
}

static int px_answer(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    fsm_post(p->owner, p->owner_done_ev, 0, NULL);
    return 0;
}

static int px_failed_over(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    fsm_post(p->owner, p->owner_failed_over_ev, 0, NULL);
    return 0;
}

static int px_ready(struct fsm *m, const struct fsm_ev *ev)
{
    px_answer(m, ev);
    return start_pump(m);
}

static int px_released(struct fsm *m, const struct fsm_ev *ev)
{
    return px_ready(m, ev);
}

static int px_pause(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    uint64_t one = 1;
    if (write(p->pause_fd, &one, sizeof(one)) != sizeof(one))
        return fsm_fail(m, -errno, "proxy: cannot stop the pump: %s", strerror(errno));
    return 0;
}

static int defer_teardown(struct fsm *m)
{
    struct colo_proxy *p = m->owner;
    p->pause_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->pause_fd < 0)
        return fsm_fail(m, -errno, "proxy: eventfd: %s", strerror(errno));
    return fsm_defer(m, teardown_undo, p, "proxy sockets and QEMU");
}

static int px_c_start(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    p->on_guest = guest_to_compare;
    p->on_peer = peer_messages;
    if (!p->net.dir) {
        const char *tmp = getenv("TMPDIR");
        snprintf(p->dir, sizeof(p->dir), "%s/lockstep-proxy-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(p->dir)) {
            int rc = -errno;
            p->dir[0] = '\0';
            return fsm_fail(m, rc, "proxy: a directory for colo-compare's sockets: %s",
                            strerror(-rc));
        }
    }
    int rc = defer_teardown(m);
    return rc ? rc : io_work_start(m, COLO_PROXY_E_STARTED, c_start_work, p, "start colo-compare");
}

static int px_c_check(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "path", "/objects/cmp");
    return qmp_send(m->owner, "qom-list", a);
}

static int px_c_qmp_error(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    char words[700];
    qemu_words(p, words, sizeof(words));
    return fsm_fail(m, p->qmp_err.rc ? p->qmp_err.rc : -EIO, "proxy: colo-compare's QEMU (pid %d) "
                    "answered %s with an error: %s%s", p->qemu_pid, p->cmd ? p->cmd : "?",
                    p->qmp_err.msg, words);
}

static int px_c_handshake(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_HANDSHAKEN, handshake_work, m->owner,
                         "COLO_USERSPACE_PROXY_INIT");
}

/* A divergence asks the owner's checkpoint once per checkpoint interval: more
 * DO_CHECKPOINTs about the same frames are counted, not asked again. */
static int px_c_diverged(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    if (p->triggered_epoch != p->epoch + 1) {
        uint64_t one = 1;
        atomic_store(&p->n.divergence_pending, true);
        if (write(p->trigger_fd, &one, sizeof(one)) != sizeof(one))
            return fsm_fail(m, -errno, "proxy: cannot ask a checkpoint: %s", strerror(errno));
        p->triggered_epoch = p->epoch + 1;
    }
    return start_pump(m);
}

static int px_c_release(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_RELEASED, c_release_work, m->owner, "COLO_CHECKPOINT");
}

static int px_c_final_release(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_RELEASED, c_final_work, m->owner, "final COLO_CHECKPOINT");
}

static int px_c_quit(struct fsm *m, const struct fsm_ev *ev)
{
    return qmp_send(m->owner, "quit", NULL);
}

static int px_r_start(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    p->on_guest = guest_to_buffer;
    int rc = defer_teardown(m);
    return rc ? rc : io_work_start(m, COLO_PROXY_E_STARTED, r_start_work, p, "start Remus buffer");
}

static int px_r_cut(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_MARKED, r_cut_work, m->owner, "Remus mark");
}

static int px_r_release(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_RELEASED, r_release_work, m->owner, "Remus release");
}

static int px_r_final_release(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_RELEASED, r_final_work, m->owner, "Remus final release");
}

static int px_s_start(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_proxy *p = m->owner;
    p->on_guest = guest_to_peer;
    p->on_peer = peer_acks;
    int rc = defer_teardown(m);
    return rc ? rc : io_work_start(m, COLO_PROXY_E_STARTED, s_start_work, p, "connect to primary");
}

static int px_s_epoch(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_MARKED, s_epoch_work, m->owner, "secondary mark");
}

static int px_s_failover(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_PROXY_E_FAILED_OVER, s_failover_work, m->owner, "proxy failover");
}

/* ---- the owner's calls ------------------------------------------------------------------ */

void colo_proxy_init(struct colo_proxy *p, struct ls_backend *be, uint32_t domid,
                     const struct ls_colo_net_opts *net, unsigned timeout_ms, struct fsm *owner,
                     int owner_done_ev, int owner_failed_over_ev, int trigger_fd)
{
    memset(p, 0, sizeof(*p));
    p->be = be;
    p->domid = domid;
    p->timeout_ms = timeout_ms;
    p->owner = owner;
    p->owner_done_ev = owner_done_ev;
    p->owner_failed_over_ev = owner_failed_over_ev;
    p->trigger_fd = trigger_fd;
    p->qemu_pid = -1;
    int *fds[] = { &p->guest_fd, &p->world_fd, &p->pri_fd, &p->sec_fd, &p->out_fd,
                   &p->notify_fd, &p->listen_fd, &p->peer_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        *fds[i] = -1;
    p->pause_fd = -1;
    p->s_epoch = 1;
    if (net) {
        p->net = *net;
        snprintf(p->world, sizeof(p->world), "%s", net->world ? net->world : "");
        snprintf(p->listen_at, sizeof(p->listen_at), "%s", net->listen ? net->listen : "");
        snprintf(p->peer, sizeof(p->peer), "%s", net->peer ? net->peer : "");
        snprintf(p->dir, sizeof(p->dir), "%s", net->dir ? net->dir : "");
        snprintf(p->qemu, sizeof(p->qemu), "%s", net->qemu ? net->qemu : "qemu-system-x86_64");
        p->net.world = p->net.listen = p->net.peer = p->net.qemu = NULL;
        p->net.dir = net->dir ? p->dir : NULL;
        if (!p->net.compare_timeout_ms)
            p->net.compare_timeout_ms = DEFAULT_COMPARE_TIMEOUT_MS;
    }
}

int colo_proxy_begin(struct colo_proxy *p, struct fsm *owner, struct fsm_join *j, int fail_ev,
                     int start_ev)
{
    fsm_init(&p->m, &colo_proxy_fsm_def, owner->sched, NULL, p, "colo_proxy[%u]", p->domid);
    fsm_join_begin(j, owner, fail_ev, fail_ev);   /* it ends only when its owner does */
    fsm_join_add(j, &p->m);
    fsm_join_arm(j);
    fsm_post(&p->m, start_ev, 0, NULL);
    return fsm_defer(owner, fsm_join_undo, j, "network proxy");
}

int colo_proxy_start_event(const struct ls_colo_net_opts *net, bool secondary,
                           enum ls_colo_mode mode)
{
    if (!net || !net->world)
        return COLO_PROXY_E_START_OFF;
    if (secondary)
        return mode == LS_COLO_MODE_COLO && net->peer ? COLO_PROXY_E_START_SECONDARY
                                                       : COLO_PROXY_E_START_OFF;
    return mode == LS_COLO_MODE_REMUS ? COLO_PROXY_E_START_REMUS : COLO_PROXY_E_START_COLO;
}

void colo_proxy_stats(const struct colo_proxy *p, struct ls_colo_net_stats *st)
{
    struct colo_proxy *q = (struct colo_proxy *)p;
    st->compared = atomic_load(&q->n.compared);
    st->secondary = atomic_load(&q->n.secondary);
    st->released = atomic_load(&q->n.released);
    st->divergences = atomic_load(&q->n.divergences);
    st->stale = atomic_load(&q->n.stale);
    st->direct = atomic_load(&q->n.direct);
    uint64_t buffered = atomic_load(&q->n.buffered);
    st->held = p->on_guest == guest_to_compare
                   ? (st->compared > st->released ? st->compared - st->released : 0)
                   : buffered;
}
