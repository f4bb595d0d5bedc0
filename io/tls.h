/* io/tls.h - TLS 1.3 (GnuTLS) on a migration's connection.
 *
 * A session is made from a credentials directory (lockstep.h, struct
 * ls_tls_opts) when an operation starts, so that a missing or unreadable
 * file is refused at once; its handshake is a blocking step run on a worker
 * thread by the tables (states/migrate_*.def); once it succeeded the session
 * is attached to its fds, and every io/fdio.h call on them goes through its
 * records (fdio consults io_tls_of). The memory task's thread then seals
 * guest pages into records itself: there is no kernel TLS here (the kernel
 * this runs on has no CONFIG_TLS), so no sendfile or splice. After GnuTLS's
 * handshake, application records are sealed and opened here with the
 * session's traffic keys (tls.c, "bulk"), so the pages cost one pass of the
 * cipher on the way out (from guest memory into the write batch) and one on
 * the way in (from the read-ahead into guest memory); GnuTLS seals and opens
 * everything else, the sequence numbers handed back and forth.
 *
 * Threads: one thread may write while another reads; never two writers or
 * two readers at once (the tables run one step at a time per direction).
 */
#ifndef LOCKSTEP_IO_TLS_H
#define LOCKSTEP_IO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lockstep/errbuf.h"

struct io_tls;

enum io_tls_role {
    IO_TLS_CLIENT,   /* the migration's sender: client-cert.pem, checks the server */
    IO_TLS_SERVER,   /* the receiver: server-cert.pem, requires a client certificate */
};

/* Load the credentials in creds_dir (laid out as lockstep.h's struct
 * ls_tls_opts says, whose allow and peer_name the next two are) for role.
 * Errors name the file and GnuTLS's reason: -ENOENT, -EACCES, -EINVAL (not a
 * certificate or key, or a pattern that is empty), -ENOMEM. */
int io_tls_new(struct io_tls **out, const char *creds_dir, const char *allow,
               const char *peer_name, enum io_tls_role role, struct ls_errbuf *err);

/* The handshake on recv_fd/send_fd (non-blocking or not; every wait is
 * bounded by recv_fd's limit, io_fd_set_timeout, and watches cancel_fd).
 * The client's step lasts until the server's first byte of data arrives (it
 * is kept for the first read): under TLS 1.3 a server checks the client's
 * certificate after the client's side of the handshake is over, and its
 * refusal comes as an alert instead of that byte. Returns 0 with the
 * session attached to both fds, or:
 *   -EACCES      a certificate was refused, ours or the peer's (err says
 *                which and why: GnuTLS's verification text, the name and the
 *                allow pattern, or the peer's alert);
 *   -EPROTO      the handshake failed otherwise (not TLS, no TLS 1.3, ...);
 *   -ENODATA, -ETIMEDOUT, -ECANCELED, or the socket's error. */
int io_tls_handshake(struct io_tls *t, int recv_fd, int send_fd, int cancel_fd,
                     struct ls_errbuf *err);

/* Detach from the fds (nothing goes through the session any more) and free.
 * NULL is allowed. No thread may still use it. */
void io_tls_free(struct io_tls *t);

/* The session attached to fd, or NULL (the common case: a lookup in a few
 * slots). */
struct io_tls *io_tls_of(int fd);

/* Whole-buffer I/O through the session, as io_writev_all / io_readv_all
 * (the same codes; -EPROTO for a record that does not authenticate or an
 * alert, err-less: the text is logged in the returned code's place by the
 * caller; -ENODATA for the peer's close). */
int io_tls_writev(struct io_tls *t, struct iovec *iov, int n, int cancel_fd);
int io_tls_readv(struct io_tls *t, struct iovec *iov, int n, size_t *got, int cancel_fd);

/* Seal msg into TLS records without sending them: *out (malloc'd, the
 * caller frees) holds the bytes to put on the wire as they are, by whoever
 * writes them (a migration's go-ahead goes out through the backend's
 * hand_off, which writes it and releases the guard in one step). The
 * session's sequence moves on as if sent: if those bytes are not sent whole,
 * the session can send nothing more. */
int io_tls_seal(struct io_tls *t, const void *msg, size_t len, uint8_t **out, size_t *outlen,
                struct ls_errbuf *err);

/* The negotiated protocol and cipher ("TLS1.3 AES-128-GCM"), for messages. */
const char *io_tls_describe(struct io_tls *t, char *buf, size_t cap);

#endif
