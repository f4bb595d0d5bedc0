/* io/fdio.h - blocking, cancellable whole-buffer I/O for helper threads.
 *
 * The memory task (like libxc) owns the stream fd while it runs and does
 * plain blocking I/O on it from its own thread. Each call here loops until the
 * whole buffer moved, waits in poll() on the fd and on cancel_fd (an eventfd
 * the owner signals to abort), and works on regular files, pipes and sockets,
 * blocking or O_NONBLOCK.
 *
 * Return 0 on success, or:
 *   -ECANCELED  cancel_fd became readable;
 *   -ETIMEDOUT  the fd has a timeout (io_fd_set_timeout) and no byte could
 *               move for that long (a non-blocking fd: only those wait in poll);
 *   -ENODATA    end of stream before the buffer was full (*got says how much);
 *   -EPIPE      the reader went away (SIGPIPE is never raised: MSG_NOSIGNAL
 *               for sockets, and lockstep ignores SIGPIPE process-wide);
 *   other -errno from read/write/poll.
 */
#ifndef LOCKSTEP_IO_FDIO_H
#define LOCKSTEP_IO_FDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns: the clock of every timestamp lockstep reports. */
static inline uint64_t io_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Give every wait on fd a limit of ms milliseconds without progress (0 =
 * none again). For a peer's connection: a stalled or vanished peer becomes
 * -ETIMEDOUT instead of a wait forever. A few fds at a time (-ENOSPC). */
int io_fd_set_timeout(int fd, unsigned ms);
/* The limit set for fd in milliseconds, or -1 when it has none. */
int io_fd_timeout(int fd);

/* The last `lines` non-empty lines of the file at path (a peer's log: QEMU's,
 * xl's, a helper's), joined by " / " into buf, for an error that must keep
 * the peer's own reason; "" when the file is missing or empty. */
void io_log_tail(const char *path, unsigned lines, char *buf, size_t len);

/* Wait until fd is ready for `events` (poll's), with fd's limit: 0,
 * -ECANCELED, -ETIMEDOUT or poll's error. */
int io_fd_wait(int fd, short events, int cancel_fd);
/* Whether cancel_fd has fired, looked at no more than once a millisecond per
 * thread (for copies that never wait, between their calls). */
bool io_cancel_due(int cancel_fd);
/* io_cancel_due's interval (1 ms); the in-process tests set 0, so that
 * whether a cancel is seen does not hang on the wall clock. */
extern uint64_t io_cancel_check_ns;

/* A fd carrying a TLS session (io/tls.h) goes through it in every call
 * below: records are sealed and opened here, sendfile and splice refuse it
 * (-EINVAL, nothing moved: the caller writes or reads instead). */
int io_write_all(int fd, const void *buf, size_t len, int cancel_fd);

/* Writes iov[0..n) whole; iov is modified (advanced) in place. Issues one
 * writev per IOV_MAX iovecs when the fd takes everything at once. */
int io_writev_all(int fd, struct iovec *iov, int n, int cancel_fd);
/* The same on the fd itself, whatever session it carries (TLS's own records). */
int io_writev_raw(int fd, struct iovec *iov, int n, int cancel_fd);

/* *got (may be NULL) receives the bytes read even on error. */
int io_read_all(int fd, void *buf, size_t len, size_t *got, int cancel_fd);
int io_readv_all(int fd, struct iovec *iov, int n, size_t *got, int cancel_fd);

/* Reads and discards len bytes. */
int io_skip(int fd, uint64_t len, int cancel_fd);

/* Send len bytes of the file in_fd from offset off to out_fd (sendfile):
 * the kernel reads the file's pages itself, so a caller that only has them
 * mapped never touches them. -EINVAL with *sent == 0: out_fd cannot take
 * sendfile, the caller writes instead. Else as io_write_all. */
int io_sendfile_all(int out_fd, int in_fd, uint64_t off, size_t len, size_t *sent,
                    int cancel_fd);

struct io_splice_stage {
    int fd[2];                 /* a pipe: read end, write end */
    size_t size;               /* its capacity */
};
/* Move len bytes from in_fd (a pipe, a socket or a file, at its current
 * position) to the file out_fd at offset off inside the kernel (splice):
 * nothing passes through user memory and no page is mapped here, which is
 * what makes a restore's writes into guest memory cheap. stage is a pipe the
 * caller keeps for this (unused when in_fd is a pipe itself). *got counts the
 * bytes taken from in_fd. -EINVAL with *got == 0: these fds cannot splice,
 * nothing was consumed, the caller reads instead. Else as io_read_all. */
int io_splice_to_file(int in_fd, bool in_is_pipe, int out_fd, uint64_t off, size_t len,
                      size_t *got, const struct io_splice_stage *stage, int cancel_fd);
/* A stage of up to 1 MiB (what the kernel allows); close with
 * io_splice_stage_close. */
int io_splice_stage_open(struct io_splice_stage *stage);
void io_splice_stage_close(struct io_splice_stage *stage);

#endif
