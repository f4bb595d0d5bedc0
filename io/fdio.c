/* io/fdio.c - blocking, cancellable whole-buffer I/O (see fdio.h). */
#include "io/fdio.h"
#include "io/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Per-fd stall limits: set on the loop thread, read by I/O threads. */
#define TIMEOUT_SLOTS 16
static _Atomic int timeout_fd[TIMEOUT_SLOTS] = { [0 ... TIMEOUT_SLOTS - 1] = -1 };
static _Atomic unsigned timeout_ms[TIMEOUT_SLOTS];

int io_fd_set_timeout(int fd, unsigned ms)
{
    int free_slot = -1;
    for (int i = 0; i < TIMEOUT_SLOTS; i++) {
        if (atomic_load(&timeout_fd[i]) == fd) {
            atomic_store(&timeout_ms[i], ms);
            if (!ms)
                atomic_store(&timeout_fd[i], -1);
            return 0;
        }
        if (free_slot < 0 && atomic_load(&timeout_fd[i]) < 0)
            free_slot = i;
    }
    if (!ms)
        return 0;
    if (free_slot < 0)
        return -ENOSPC;
    atomic_store(&timeout_ms[free_slot], ms);
    atomic_store(&timeout_fd[free_slot], fd);
    return 0;
}

void io_log_tail(const char *path, unsigned lines, char *buf, size_t len)
{
    char tail[4096];
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
    ssize_t n = size > 0 ? pread(fd, tail, sizeof(tail) - 1, from) : 0;
    close(fd);
    if (n <= 0)
        return;
    tail[n] = '\0';
    /* Walk back over the last `lines` non-empty lines, then join them. */
    const char *start[16];
    unsigned found = 0;
    if (lines > 16)
        lines = 16;
    for (char *e = tail + n; found < lines && e > tail;) {
        while (e > tail && (e[-1] == '\n' || e[-1] == '\r'))
            *--e = '\0';
        char *b = e;
        while (b > tail && b[-1] != '\n')
            b--;
        if (b == e)
            break;
        start[found++] = b;
        e = b;
    }
    size_t used = 0;
    for (unsigned i = found; i-- > 0 && used + 1 < len;) {
        /* cppcheck-suppress uninitvar ; start[0..found) were set by the walk above */
        int w = snprintf(buf + used, len - used, "%s%s", used ? " / " : "", start[i]);
        if (w < 0)
            break;
        used += (size_t)w < len - used ? (size_t)w : len - used - 1;
    }
}

int io_fd_timeout(int fd)
{
    for (int i = 0; i < TIMEOUT_SLOTS; i++)
        if (atomic_load(&timeout_fd[i]) == fd)
            return (int)atomic_load(&timeout_ms[i]);
    return -1;
}

/* Wait until fd is ready for `events` or cancel_fd fires. */
int io_fd_wait(int fd, short events, int cancel_fd)
{
    struct pollfd p[2] = { { .fd = fd, .events = events },
                           { .fd = cancel_fd, .events = POLLIN } };
    int limit = io_fd_timeout(fd);
    for (;;) {
        int n = poll(p, cancel_fd >= 0 ? 2 : 1, limit > 0 ? limit : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ETIMEDOUT;
        if (cancel_fd >= 0 && (p[1].revents & POLLIN))
            return -ECANCELED;
        if (p[0].revents)
            return 0;
    }
}

/* After a failed read or write on fd: 0 when it is worth trying again (an
 * interrupted call, or fd ready after EAGAIN), else the negative error. */
static int retry_after(int fd, short events, int cancel_fd)
{
    if (errno == EINTR)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return io_fd_wait(fd, events, cancel_fd);
    return -errno;
}

/* Between blocking waits (which watch cancel_fd themselves), a copy that
 * never waits looks at cancel_fd at most once per CANCEL_CHECK_NS on each
 * thread: a poll per call was a third of a restore's syscalls. */
#define CANCEL_CHECK_NS 1000000u
uint64_t io_cancel_check_ns = CANCEL_CHECK_NS;

bool io_cancel_due(int cancel_fd)
{
    static _Thread_local uint64_t next_check_ns;
    if (cancel_fd < 0)
        return false;
    uint64_t now = io_monotonic_ns();
    if (now < next_check_ns)
        return false;
    next_check_ns = now + io_cancel_check_ns;
    struct pollfd p = { .fd = cancel_fd, .events = POLLIN };
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static void iov_advance(struct iovec **iov, int *n, size_t done)
{
    while (*n > 0 && done >= (*iov)->iov_len) {
        done -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + done;
        (*iov)->iov_len -= done;
    }
}

int io_writev_all(int fd, struct iovec *iov, int n, int cancel_fd)
{
    struct io_tls *tls = io_tls_of(fd);
    return tls ? io_tls_writev(tls, iov, n, cancel_fd) : io_writev_raw(fd, iov, n, cancel_fd);
}

int io_writev_raw(int fd, struct iovec *iov, int n, int cancel_fd)
{
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    while (n > 0) {
        if (io_cancel_due(cancel_fd))
            return -ECANCELED;
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            int rc = retry_after(fd, POLLOUT, cancel_fd);
            if (rc < 0)
                return rc;
            continue;
        }
        iov_advance(&iov, &n, (size_t)w);
    }
    return 0;
}

int io_write_all(int fd, const void *buf, size_t len, int cancel_fd)
{
    struct iovec v = { .iov_base = (void *)buf, .iov_len = len };
    return io_writev_all(fd, &v, 1, cancel_fd);
}

int io_readv_all(int fd, struct iovec *iov, int n, size_t *got, int cancel_fd)
{
    size_t total = 0;
    int rc = 0;
    struct io_tls *tls = io_tls_of(fd);
    if (tls)
        return io_tls_readv(tls, iov, n, got, cancel_fd);
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    while (n > 0) {
        if (io_cancel_due(cancel_fd)) {
            rc = -ECANCELED;
            break;
        }
        ssize_t r = readv(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (r < 0) {
            if ((rc = retry_after(fd, POLLIN, cancel_fd)) < 0)
                break;
            continue;
        }
        if (r == 0) {
            rc = -ENODATA;
            break;
        }
        total += (size_t)r;
        iov_advance(&iov, &n, (size_t)r);
    }
    if (got)
        *got = total;
    return rc;
}

int io_read_all(int fd, void *buf, size_t len, size_t *got, int cancel_fd)
{
    struct iovec v = { .iov_base = buf, .iov_len = len };
    return io_readv_all(fd, &v, 1, got, cancel_fd);
}

int io_skip(int fd, uint64_t len, int cancel_fd)
{
    char sink[65536];
    while (len > 0) {
        size_t chunk = len > sizeof(sink) ? sizeof(sink) : (size_t)len;
        int rc = io_read_all(fd, sink, chunk, NULL, cancel_fd);
        if (rc < 0)
            return rc;
        len -= chunk;
    }
    return 0;
}

/* Empty the staging pipe into the file: a file write never waits. */
static int drain_stage(int stage_r, int out_fd, loff_t *off, size_t n)
{
    while (n > 0) {
        ssize_t w = splice(stage_r, NULL, out_fd, off, n, SPLICE_F_MOVE);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        n -= (size_t)w;
    }
    return 0;
}

int io_splice_to_file(int in_fd, bool in_is_pipe, int out_fd, uint64_t off, size_t len,
                      size_t *got, const struct io_splice_stage *stage, int cancel_fd)
{
    loff_t at = (loff_t)off;
    size_t total = 0;
    int rc = 0;
    if (io_tls_of(in_fd)) {     /* TLS records must be opened here, not moved */
        if (got)
            *got = 0;
        return -EINVAL;
    }
    while (total < len) {
        if (io_cancel_due(cancel_fd)) {
            rc = -ECANCELED;
            break;
        }
        size_t want = len - total;
        ssize_t r;
        if (in_is_pipe) {
            r = splice(in_fd, NULL, out_fd, &at, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        } else {
            /* Never more than the stage holds, or the splice would wait for
             * room that only this thread can make. */
            if (want > stage->size)
                want = stage->size;
            r = splice(in_fd, NULL, stage->fd[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        }
        if (r < 0) {
            if ((rc = retry_after(in_fd, POLLIN, cancel_fd)) < 0)
                break;
            continue;
        }
        if (r == 0) {
            rc = -ENODATA;
            break;
        }
        if (!in_is_pipe && (rc = drain_stage(stage->fd[0], out_fd, &at, (size_t)r)) < 0) {
            total += (size_t)r;   /* taken from in_fd, even if not written */
            break;
        }
        total += (size_t)r;
    }
    if (got)
        *got = total;
    return rc;
}

int io_splice_stage_open(struct io_splice_stage *stage)
{
    if (pipe2(stage->fd, O_CLOEXEC) < 0)
        return -errno;
    (void)fcntl(stage->fd[1], F_SETPIPE_SZ, 1 << 20);
    int size = fcntl(stage->fd[1], F_GETPIPE_SZ);
    stage->size = size > 0 ? (size_t)size : 65536;
    return 0;
}

void io_splice_stage_close(struct io_splice_stage *stage)
{
    close(stage->fd[0]);
    close(stage->fd[1]);
    stage->fd[0] = stage->fd[1] = -1;
}

int io_sendfile_all(int out_fd, int in_fd, uint64_t off, size_t len, size_t *sent,
                    int cancel_fd)
{
    off_t at = (off_t)off;
    size_t total = 0;
    int rc = 0;
    if (io_tls_of(out_fd)) {    /* the pages must be sealed into TLS records */
        if (sent)
            *sent = 0;
        return -EINVAL;
    }
    while (total < len) {
        if (io_cancel_due(cancel_fd)) {
            rc = -ECANCELED;
            break;
        }
        ssize_t w = sendfile(out_fd, in_fd, &at, len - total);
        if (w < 0) {
            if ((rc = retry_after(out_fd, POLLOUT, cancel_fd)) < 0)
                break;
            continue;
        }
        if (w == 0) {
            rc = -EIO;   /* the file is shorter than the caller said */
            break;
        }
        total += (size_t)w;
    }
    if (sent)
        *sent = total;
    return rc;
}
