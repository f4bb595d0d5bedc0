/* io/fdio.c - blocking, cancellable whole-buffer I/O (see fdio.h). */
#include "io/fdio.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
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

int io_fd_timeout(int fd)
{
    for (int i = 0; i < TIMEOUT_SLOTS; i++)
        if (atomic_load(&timeout_fd[i]) == fd)
            return (int)atomic_load(&timeout_ms[i]);
    return -1;
}

/* Wait until fd is ready for `events` or cancel_fd fires. */
static int wait_ready(int fd, short events, int cancel_fd)
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

static bool cancelled(int cancel_fd)
{
    if (cancel_fd < 0)
        return false;
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
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    while (n > 0) {
        if (cancelled(cancel_fd))
            return -ECANCELED;
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int rc = wait_ready(fd, POLLOUT, cancel_fd);
                if (rc < 0)
                    return rc;
                continue;
            }
            return -errno;
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
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    while (n > 0) {
        if (cancelled(cancel_fd)) {
            rc = -ECANCELED;
            break;
        }
        ssize_t r = readv(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                rc = wait_ready(fd, POLLIN, cancel_fd);
                if (rc < 0)
                    break;
                continue;
            }
            rc = -errno;
            break;
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
