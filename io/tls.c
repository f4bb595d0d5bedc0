/* io/tls.c - TLS 1.3 (GnuTLS) on a migration's connection (see tls.h). */
#include "io/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/fdio.h"

/* TLS 1.3 only; AES-GCM first: this is bulk data, and AES-NI makes AES-128-GCM
 * the fastest AEAD GnuTLS has on x86 (ChaCha20 ran at a seventh of it here). */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:" \
                     "+CHACHA20-POLY1305"
/* Ciphertext read from the socket in one go: a record is 16 KiB, and a read
 * per record header and per record body was two syscalls per 16 KiB. */
#define READ_AHEAD (256 * 1024)
/* Records a write sends in one go: a writev per 16 KiB record was most of a
 * TLS sender's system time, and woke the receiver once per record. */
#define WRITE_BATCH (256 * 1024)

/* The sender's bulk records: sealed here, straight from the caller's
 * buffers into the batch that goes to the socket (one pass of the cipher,
 * no copy), with the session's own traffic key and sequence
 * (gnutls_record_get_state), which is handed back after every write so
 * GnuTLS's own records (sealed messages, alerts) follow on. GnuTLS's
 * gnutls_record_send copies each record's plaintext into its buffer, and
 * its records were copied again into the batch. */
struct bulk_key {
    gnutls_aead_cipher_hd_t aead;   /* NULL until first used */
    gnutls_cipher_algorithm_t cipher;
    uint8_t key[32], iv[12];
    size_t key_len;
    uint64_t seq;                   /* the next record's */
};

/* The receiver's: records opened here, from the read-ahead straight into
 * the caller's buffers where a record's content fits them (else through a
 * bounce buffer), with the session's read key and sequence. Only at a
 * record boundary that GnuTLS has read up to exactly (frame tracks the
 * records of what it pulled) and with nothing of its own pending; any
 * record that is not application data (an alert, a KeyUpdate) or does not
 * open is given back to GnuTLS, which reads it again from the read-ahead
 * and says what it is. */
struct bulk_rx {
    struct bulk_key k;
    bool own;                       /* reading records here (the session's seq is ours) */
    bool give_next;                 /* GnuTLS reads the next record (one this did not open) */
    uint8_t *bounce;                /* a record's plaintext that did not fit the caller's buffer */
    size_t left_off, left_len;      /* its undelivered part */
    uint8_t frame_hdr[5];           /* framing of the bytes GnuTLS pulled: */
    size_t frame_have, frame_left;  /* header bytes seen, body bytes still to come */
};

struct io_tls {
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    enum io_tls_role role;
    char *allow, *peer_name;
    int recv_fd, send_fd;
    bool attached;
    size_t record_max;              /* plaintext bytes per record */
    uint8_t *stage;                 /* gathers small writes into whole records */
    struct { int cancel_fd, rc; } tx, rx;   /* per direction: one thread each */
    uint8_t *ra;                    /* read-ahead of ciphertext */
    size_t ra_off, ra_len;
    uint8_t *out;                   /* io_tls_writev's records, sent WRITE_BATCH at a time */
    struct bulk_key bulk;
    struct bulk_rx rxb;
    size_t out_len;
    bool batching;                  /* inside io_tls_writev: records go to out */
    bool capturing;                 /* io_tls_seal: records go to cap, not the wire */
    uint8_t *cap;
    size_t cap_len, cap_size;
    uint8_t peek;                   /* the client's first byte of the server's data */
    bool have_peek;
    char why[LS_ERRBUF_LEN];        /* why our check refused the peer's certificate */
    gnutls_alert_description_t why_alert;
};

static const char *peer_of(const struct io_tls *t)
{
    return t->role == IO_TLS_CLIENT ? "receiver" : "sender";
}

/* ---- which fds carry a session ------------------------------------------------- */

#define TLS_SLOTS 8
static _Atomic int slot_fd[TLS_SLOTS] = { [0 ... TLS_SLOTS - 1] = -1 };
static struct io_tls *_Atomic slot_tls[TLS_SLOTS];

struct io_tls *io_tls_of(int fd)
{
    for (int i = 0; i < TLS_SLOTS; i++)
        if (atomic_load_explicit(&slot_fd[i], memory_order_acquire) == fd)
            return atomic_load_explicit(&slot_tls[i], memory_order_relaxed);
    return NULL;
}

static int attach(struct io_tls *t, int fd)
{
    for (int i = 0; i < TLS_SLOTS; i++) {
        int want = -1;
        atomic_store_explicit(&slot_tls[i], t, memory_order_relaxed);
        if (atomic_compare_exchange_strong(&slot_fd[i], &want, fd))
            return 0;
    }
    return -ENOSPC;
}

static void detach(struct io_tls *t)
{
    for (int i = 0; i < TLS_SLOTS; i++)
        if (atomic_load(&slot_fd[i]) >= 0 && atomic_load(&slot_tls[i]) == t)
            atomic_store(&slot_fd[i], -1);
}

/* ---- the transport: blocking, bounded, cancellable ------------------------------- */

/* Errors go back to GnuTLS as EIO (a PUSH or PULL error), the real one is kept. */
static ssize_t transport_fail(struct io_tls *t, int *slot, int rc)
{
    *slot = rc;
    gnutls_transport_set_errno(t->s, EIO);
    return -1;
}

static int flush_out(struct io_tls *t)
{
    struct iovec v = { .iov_base = t->out, .iov_len = t->out_len };
    t->out_len = 0;
    return v.iov_len ? io_writev_raw(t->send_fd, &v, 1, t->tx.cancel_fd) : 0;
}

static ssize_t push_fn(gnutls_transport_ptr_t p, const giovec_t *iov, int n)
{
    struct io_tls *t = p;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (t->capturing) {
        if (t->cap_len + total > t->cap_size) {
            size_t size = (t->cap_len + total) * 2;
            uint8_t *c = realloc(t->cap, size);
            if (!c)
                return transport_fail(t, &t->tx.rc, -ENOMEM);
            t->cap = c;
            t->cap_size = size;
        }
        for (int i = 0; i < n; i++) {
            memcpy(t->cap + t->cap_len, iov[i].iov_base, iov[i].iov_len);
            t->cap_len += iov[i].iov_len;
        }
        return (ssize_t)total;
    }
    if (t->batching) {
        if (t->out_len + total > WRITE_BATCH) {
            int rc = flush_out(t);
            if (rc < 0)
                return transport_fail(t, &t->tx.rc, rc);
        }
        if (total <= WRITE_BATCH) {
            for (int i = 0; i < n; i++) {
                memcpy(t->out + t->out_len, iov[i].iov_base, iov[i].iov_len);
                t->out_len += iov[i].iov_len;
            }
            return (ssize_t)total;
        }
    }
    struct iovec v[16];
    if (n > 16)
        n = 16;   /* GnuTLS gives a record's header and body; the rest on the next call */
    total = 0;
    for (int i = 0; i < n; i++) {
        v[i] = iov[i];
        total += iov[i].iov_len;
    }
    int rc = io_writev_raw(t->send_fd, v, n, t->tx.cancel_fd);
    return rc < 0 ? transport_fail(t, &t->tx.rc, rc) : (ssize_t)total;
}

/* At least need bytes of records from ra_off on: 1; 0 when the peer closed
 * before; or -errno. */
static int ra_have(struct io_tls *t, size_t need)
{
    while (t->ra_len - t->ra_off < need) {
        if (t->ra_off == t->ra_len) {
            t->ra_off = t->ra_len = 0;
        } else if (READ_AHEAD - t->ra_off < need) {   /* a record's start, moved down */
            memmove(t->ra, t->ra + t->ra_off, t->ra_len - t->ra_off);
            t->ra_len -= t->ra_off;
            t->ra_off = 0;
        }
        ssize_t r = read(t->recv_fd, t->ra + t->ra_len, READ_AHEAD - t->ra_len);
        if (r > 0) {
            t->ra_len += (size_t)r;
            continue;
        }
        if (r == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = io_fd_wait(t->recv_fd, POLLIN, t->rx.cancel_fd);
        if (rc < 0)
            return rc;
    }
    return 1;
}

/* Follows the record framing of the bytes GnuTLS pulls, so that the bulk
 * reader starts only where GnuTLS holds no part of a record. */
static void frame_track(struct bulk_rx *b, const uint8_t *p, size_t n)
{
    while (n) {
        if (b->frame_left) {
            size_t k = b->frame_left < n ? b->frame_left : n;
            b->frame_left -= k;
            p += k;
            n -= k;
            continue;
        }
        b->frame_hdr[b->frame_have++] = *p++;
        n--;
        if (b->frame_have == sizeof(b->frame_hdr)) {
            b->frame_left = (size_t)b->frame_hdr[3] << 8 | b->frame_hdr[4];
            b->frame_have = 0;
        }
    }
}

static ssize_t pull_fn(gnutls_transport_ptr_t p, void *data, size_t size)
{
    struct io_tls *t = p;
    if (t->ra_off == t->ra_len) {
        int rc = ra_have(t, 1);
        if (rc < 0)
            return transport_fail(t, &t->rx.rc, rc);
        if (rc == 0)
            return 0;   /* the peer closed the connection */
    }
    size_t n = t->ra_len - t->ra_off < size ? t->ra_len - t->ra_off : size;
    memcpy(data, t->ra + t->ra_off, n);
    frame_track(&t->rxb, t->ra + t->ra_off, n);
    t->ra_off += n;
    return (ssize_t)n;
}

/* pull_fn waits by itself, bounded by the fd's limit and the cancel fd. */
static int pull_timeout_fn(gnutls_transport_ptr_t p, unsigned ms)
{
    return 1;
}

/* ---- checking the peer's certificate --------------------------------------------- */

/* "CN=a, DNS:b, IP:c": the names of crt a pattern is matched against; 1 if
 * one matches allow (allow may be NULL: only list them). */
static int cert_names(gnutls_x509_crt_t crt, const char *allow, char *list, size_t cap)
{
    char buf[256];
    size_t used = 0;
    int match = 0;
    list[0] = '\0';
    for (unsigned i = 0;; i++) {
        size_t sz = sizeof(buf);
        if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, i, 0, buf, &sz) < 0)
            break;
        match |= allow && fnmatch(allow, buf, FNM_CASEFOLD) == 0;
        used += (size_t)snprintf(list + used, used < cap ? cap - used : 0, "%sCN=%s",
                                 used ? ", " : "", buf);
    }
    for (unsigned i = 0;; i++) {
        size_t sz = sizeof(buf) - 1;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &sz, NULL);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        char ip[INET6_ADDRSTRLEN];
        const char *name = NULL, *kind = NULL;
        if (type == GNUTLS_SAN_DNSNAME) {
            buf[sz] = '\0';
            name = buf;
            kind = "DNS";
        } else if (type == GNUTLS_SAN_IPADDRESS && (sz == 4 || sz == 16)) {
            name = inet_ntop(sz == 4 ? AF_INET : AF_INET6, buf, ip, sizeof(ip));
            kind = "IP";
        }
        if (!name)
            continue;
        match |= allow && fnmatch(allow, name, FNM_CASEFOLD) == 0;
        used += (size_t)snprintf(list + used, used < cap ? cap - used : 0, "%s%s:%s",
                                 used ? ", " : "", kind, name);
    }
    if (!list[0])
        snprintf(list, cap, "no CN or subjectAltName");
    return match;
}

static int refuse(struct io_tls *t, gnutls_alert_description_t alert, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct io_tls *t, gnutls_alert_description_t alert, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof(t->why), fmt, ap);
    va_end(ap);
    t->why_alert = alert;
    return -1;
}

/* Called by GnuTLS once the peer's certificate is in, inside the handshake:
 * a refusal here fails the handshake, and the peer gets our alert. */
static int verify_peer(gnutls_session_t s)
{
    struct io_tls *t = gnutls_session_get_ptr(s);
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0)
        return refuse(t, GNUTLS_A_CERTIFICATE_REQUIRED, "the %s presented no certificate (both "
                      "ends must)", peer_of(t));
    gnutls_x509_crt_t crt;
    char names[300] = "?";
    if (gnutls_x509_crt_init(&crt) == 0) {
        if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0)
            cert_names(crt, NULL, names, sizeof(names));
        gnutls_x509_crt_deinit(crt);
    }
    const char *host = !t->allow && t->role == IO_TLS_CLIENT ? t->peer_name : NULL;
    gnutls_typed_vdata_st data[2] = {
        { .type = GNUTLS_DT_KEY_PURPOSE_OID,
          .data = (void *)(t->role == IO_TLS_CLIENT ? GNUTLS_KP_TLS_WWW_SERVER
                                                     : GNUTLS_KP_TLS_WWW_CLIENT) },
        { .type = GNUTLS_DT_DNS_HOSTNAME, .data = (void *)host },
    };
    unsigned status = 0;
    int g = gnutls_certificate_verify_peers(s, data, host ? 2 : 1, &status);
    if (g < 0)
        return refuse(t, GNUTLS_A_BAD_CERTIFICATE, "the %s's certificate (%s) could not be "
                      "checked: %s", peer_of(t), names, gnutls_strerror(g));
    if (status) {
        gnutls_datum_t text = { 0 };
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0);
        while (text.data && text.size && text.data[text.size - 1] == ' ')
            text.data[--text.size] = '\0';
        gnutls_alert_description_t alert =
            status & GNUTLS_CERT_SIGNER_NOT_FOUND ? GNUTLS_A_UNKNOWN_CA
            : status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED) ? GNUTLS_A_CERTIFICATE_EXPIRED
            : status & GNUTLS_CERT_REVOKED ? GNUTLS_A_CERTIFICATE_REVOKED
            : GNUTLS_A_BAD_CERTIFICATE;
        refuse(t, alert, "the %s's certificate (%s) is refused: %s%s%s%s", peer_of(t), names,
               text.data ? (char *)text.data : "verification failed",
               status & GNUTLS_CERT_UNEXPECTED_OWNER ? " (checked against the name '" : "",
               status & GNUTLS_CERT_UNEXPECTED_OWNER ? host : "",
               status & GNUTLS_CERT_UNEXPECTED_OWNER ? "'; --tls-allow names another)" : "");
        gnutls_free(text.data);
        return -1;
    }
    if (t->allow) {
        if (gnutls_x509_crt_init(&crt) < 0)
            return refuse(t, GNUTLS_A_INTERNAL_ERROR, "out of memory");
        int ok = gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0 &&
                 cert_names(crt, t->allow, names, sizeof(names));
        gnutls_x509_crt_deinit(crt);
        if (!ok)
            return refuse(t, GNUTLS_A_ACCESS_DENIED, "the %s's certificate is refused: its "
                          "name is not allowed (%s; allowed: '%s')", peer_of(t), names, t->allow);
    }
    return 0;
}

/* ---- credentials ----------------------------------------------------------------- */

static int file_in(const char *dir, const char *name, char *path, size_t cap,
                   struct ls_errbuf *err)
{
    snprintf(path, cap, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ls_err(err, -errno, "TLS credentials: %s: %s", path, strerror(errno));
    close(fd);
    return 0;
}

static int load_creds(struct io_tls *t, const char *dir, struct ls_errbuf *err)
{
    char ca[4096], crl[4096], cert[4096], key[4096];
    const char *who = t->role == IO_TLS_CLIENT ? "client" : "server";
    char cert_name[32], key_name[32];
    snprintf(cert_name, sizeof(cert_name), "%s-cert.pem", who);
    snprintf(key_name, sizeof(key_name), "%s-key.pem", who);
    int rc = file_in(dir, "ca-cert.pem", ca, sizeof(ca), err);
    if (rc == 0)
        rc = file_in(dir, cert_name, cert, sizeof(cert), err);
    if (rc == 0)
        rc = file_in(dir, key_name, key, sizeof(key), err);
    if (rc < 0)
        return rc;
    if (gnutls_certificate_allocate_credentials(&t->cred) < 0)
        return ls_err(err, -ENOMEM, "out of memory");
    int g = gnutls_certificate_set_x509_trust_file(t->cred, ca, GNUTLS_X509_FMT_PEM);
    if (g <= 0)
        return ls_err(err, -EINVAL, "TLS credentials: %s: %s", ca,
                      g == 0 ? "no certificate in it" : gnutls_strerror(g));
    snprintf(crl, sizeof(crl), "%s/ca-crl.pem", dir);
    if (access(crl, F_OK) == 0 &&
        (g = gnutls_certificate_set_x509_crl_file(t->cred, crl, GNUTLS_X509_FMT_PEM)) < 0)
        return ls_err(err, -EINVAL, "TLS credentials: %s: %s", crl, gnutls_strerror(g));
    g = gnutls_certificate_set_x509_key_file(t->cred, cert, key, GNUTLS_X509_FMT_PEM);
    if (g < 0)
        return ls_err(err, -EINVAL, "TLS credentials: %s with %s: %s", cert, key,
                      gnutls_strerror(g));
    return 0;
}

int io_tls_new(struct io_tls **out, const char *creds_dir, const char *allow,
               const char *peer_name, enum io_tls_role role, struct ls_errbuf *err)
{
    *out = NULL;
    if (allow && !allow[0])
        return ls_err(err, -EINVAL, "TLS: the allow pattern is empty");
    struct io_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return ls_err(err, -ENOMEM, "out of memory");
    t->role = role;
    t->recv_fd = t->send_fd = -1;
    t->allow = allow ? strdup(allow) : NULL;
    t->peer_name = peer_name && peer_name[0] ? strdup(peer_name) : NULL;
    t->ra = malloc(READ_AHEAD);
    t->out = malloc(WRITE_BATCH);
    int rc = t->ra && t->out && (!allow || t->allow) ? 0 : ls_err(err, -ENOMEM, "out of memory");
    if (rc == 0)
        rc = load_creds(t, creds_dir, err);
    unsigned flags = (role == IO_TLS_CLIENT ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NO_TICKETS;
    const char *at = NULL;
    int g;
    if (rc == 0 && (g = gnutls_init(&t->s, flags)) < 0)
        rc = ls_err(err, -ENOMEM, "TLS: %s", gnutls_strerror(g));
    if (rc == 0 && (g = gnutls_priority_set_direct(t->s, TLS_PRIORITY, &at)) < 0)
        rc = ls_err(err, -EINVAL, "TLS: priority '%s' (at '%s'): %s", TLS_PRIORITY, at ? at : "",
                    gnutls_strerror(g));
    if (rc == 0 && (g = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cred)) < 0)
        rc = ls_err(err, -EINVAL, "TLS: %s", gnutls_strerror(g));
    if (rc < 0) {
        io_tls_free(t);
        return rc;
    }
    if (role == IO_TLS_SERVER) {
        gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
        /* Name no CAs in the request: a client picks its certificate by that
         * list and sends none when its CA is not in it, and the refusal
         * would say "no certificate" instead of "issuer unknown". */
        gnutls_certificate_send_x509_rdn_sequence(t->s, 1);
    }
    gnutls_session_set_ptr(t->s, t);
    gnutls_session_set_verify_function(t->s, verify_peer);
    gnutls_transport_set_ptr(t->s, t);
    gnutls_transport_set_vec_push_function(t->s, push_fn);
    gnutls_transport_set_pull_function(t->s, pull_fn);
    gnutls_transport_set_pull_timeout_function(t->s, pull_timeout_fn);
    gnutls_handshake_set_timeout(t->s, 0);   /* pull_fn's waits are bounded */
    *out = t;
    return 0;
}

void io_tls_free(struct io_tls *t)
{
    if (!t)
        return;
    detach(t);
    if (t->s)
        gnutls_deinit(t->s);
    if (t->cred)
        gnutls_certificate_free_credentials(t->cred);
    free(t->allow);
    free(t->peer_name);
    free(t->ra);
    free(t->out);
    if (t->bulk.aead)
        gnutls_aead_cipher_deinit(t->bulk.aead);
    if (t->rxb.k.aead)
        gnutls_aead_cipher_deinit(t->rxb.k.aead);
    free(t->rxb.bounce);
    free(t->stage);
    free(t->cap);
    free(t);
}

/* ---- the handshake ----------------------------------------------------------------- */

static bool alert_is_refusal(gnutls_alert_description_t a)
{
    switch (a) {
    case GNUTLS_A_BAD_CERTIFICATE: case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
    case GNUTLS_A_CERTIFICATE_REVOKED: case GNUTLS_A_CERTIFICATE_EXPIRED:
    case GNUTLS_A_CERTIFICATE_UNKNOWN: case GNUTLS_A_UNKNOWN_CA: case GNUTLS_A_ACCESS_DENIED:
    case GNUTLS_A_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* The error of a failed handshake (g: GnuTLS's code) in words. */
static int handshake_error(struct io_tls *t, int g, struct ls_errbuf *err)
{
    const char *peer = peer_of(t);
    if (t->why[0]) {
        gnutls_alert_send(t->s, GNUTLS_AL_FATAL, t->why_alert);
        return ls_err(err, -EACCES, "TLS: %s", t->why);
    }
    int io = g == GNUTLS_E_PUSH_ERROR ? t->tx.rc : g == GNUTLS_E_PULL_ERROR ? t->rx.rc : 0;
    if (io == -ETIMEDOUT)
        return ls_err(err, io, "TLS handshake: the %s went quiet", peer);
    if (io == -ECANCELED)
        return ls_err(err, io, "TLS handshake with the %s cancelled", peer);
    if (io == -EPIPE || io == -ECONNRESET || g == GNUTLS_E_PREMATURE_TERMINATION || g == 0)
        return ls_err(err, -ENODATA, "TLS handshake: the %s closed the connection (a peer "
                      "without TLS, or one that refused us: its own messages say why)", peer);
    if (io < 0)
        return ls_err(err, io, "TLS handshake with the %s: %s", peer, strerror(-io));
    if (g == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        gnutls_alert_description_t a = gnutls_alert_get(t->s);
        const char *name = gnutls_alert_get_name(a);
        if (alert_is_refusal(a))
            return ls_err(err, -EACCES, "TLS: the %s refused this end's certificate (its alert: "
                          "\"%s\"; its own messages say more)", peer, name ? name : "?");
        return ls_err(err, -EPROTO, "TLS handshake: the %s ended it with the alert \"%s\"",
                      peer, name ? name : "?");
    }
    gnutls_alert_send_appropriate(t->s, g);
    if (g == GNUTLS_E_NO_CERTIFICATE_FOUND || g == GNUTLS_E_CERTIFICATE_REQUIRED)
        return ls_err(err, -EACCES, "TLS: the %s presented no certificate (both ends must)",
                      peer);
    return ls_err(err, -EPROTO, "TLS handshake with the %s failed: %s", peer, gnutls_strerror(g));
}

int io_tls_handshake(struct io_tls *t, int recv_fd, int send_fd, int cancel_fd,
                     struct ls_errbuf *err)
{
    t->recv_fd = recv_fd;
    t->send_fd = send_fd;
    t->tx.cancel_fd = t->rx.cancel_fd = cancel_fd;
    t->tx.rc = t->rx.rc = 0;
    int g;
    do
        g = gnutls_handshake(t->s);
    while (g < 0 && !gnutls_error_is_fatal(g));
    if (g < 0)
        return handshake_error(t, g, err);
    if (t->role == IO_TLS_CLIENT) {
        /* The server's first byte, or its refusal of our certificate. */
        do
            g = (int)gnutls_record_recv(t->s, &t->peek, 1);
        while (g < 0 && !gnutls_error_is_fatal(g));
        if (g != 1)
            return handshake_error(t, g, err);
        t->have_peek = true;
    }
    t->record_max = gnutls_record_get_max_size(t->s);
    t->stage = malloc(t->record_max);
    if (!t->stage)
        return ls_err(err, -ENOMEM, "out of memory");
    if (attach(t, recv_fd) < 0 || (send_fd != recv_fd && attach(t, send_fd) < 0)) {
        detach(t);
        return ls_err(err, -ENOSPC, "TLS: too many sessions at once in this process");
    }
    t->attached = true;
    return 0;
}

const char *io_tls_describe(struct io_tls *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s", gnutls_protocol_get_name(gnutls_protocol_get_version(t->s)),
             gnutls_cipher_get_name(gnutls_cipher_get(t->s)));
    return buf;
}

/* ---- records ------------------------------------------------------------------------ */

static int record_error(struct io_tls *t, ssize_t g, int io)
{
    if (g == GNUTLS_E_PUSH_ERROR || g == GNUTLS_E_PULL_ERROR)
        return io < 0 ? io : -EIO;
    if (g == GNUTLS_E_PREMATURE_TERMINATION)
        return -ENODATA;
    if (g == GNUTLS_E_FATAL_ALERT_RECEIVED)
        return gnutls_alert_get(t->s) == GNUTLS_A_CLOSE_NOTIFY ? -ENODATA : -ECONNABORTED;
    if (g == GNUTLS_E_DECRYPTION_FAILED || g == GNUTLS_E_UNEXPECTED_PACKET_LENGTH)
        return -EBADMSG;
    return -EPROTO;
}

static int send_record(struct io_tls *t, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t g = gnutls_record_send(t->s, p, len);
        if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED)
            continue;
        if (g < 0)
            return record_error(t, g, t->tx.rc);
        p += g;
        len -= (size_t)g;
    }
    return 0;
}

/* Records of record_max bytes straight from the caller's buffers where they
 * are that long (guest pages in runs: no copy but the encryption's), small
 * pieces (record headers, scattered pages) gathered into whole ones: GnuTLS
 * seals them. */
static int writev_gnutls(struct io_tls *t, struct iovec *iov, int n, int cancel_fd)
{
    size_t fill = 0, max = t->record_max;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len && rc == 0) {
            if (io_cancel_due(cancel_fd)) {
                rc = -ECANCELED;
                break;
            }
            if (fill == 0 && len >= max) {
                rc = send_record(t, p, max);
                p += max;
                len -= max;
                continue;
            }
            size_t take = max - fill < len ? max - fill : len;
            memcpy(t->stage + fill, p, take);
            fill += take;
            p += take;
            len -= take;
            if (fill == max) {
                rc = send_record(t, t->stage, fill);
                fill = 0;
            }
        }
    }
    if (rc == 0 && fill)
        rc = send_record(t, t->stage, fill);
    return rc;
}

/* TLS 1.3 (RFC 8446 5.2): a record is the header (application_data, 0x0303,
 * length) in the clear as the AEAD's additional data, then the content and
 * its type sealed, then the tag; the nonce is the traffic IV xor the
 * record's sequence number. */
#define REC_HDR 5
#define REC_TAG 16
#define REC_TYPE_APPDATA 23
/* The AEAD's record limit is 2^24.5 records (RFC 8446 5.5): well before it
 * the bulk path hands over, and GnuTLS (which updates the keys) seals. */
#define BULK_SEQ_LIMIT (UINT64_C(1) << 24)

/* Takes a direction's key and sequence from the session (read: 1 for the
 * receiving one). false: GnuTLS seals or opens (a cipher not done here, or
 * near the record limit). */
static bool bulk_load(struct io_tls *t, unsigned read, struct bulk_key *b)
{
    gnutls_datum_t iv, key;
    unsigned char seq[8];
    gnutls_cipher_algorithm_t c = gnutls_cipher_get(t->s);
    if ((c != GNUTLS_CIPHER_AES_128_GCM && c != GNUTLS_CIPHER_AES_256_GCM &&
         c != GNUTLS_CIPHER_CHACHA20_POLY1305) ||
        gnutls_record_get_state(t->s, read, NULL, &iv, &key, seq) < 0 || iv.size != sizeof(b->iv) ||
        key.size > sizeof(b->key))
        return false;
    if (!b->aead || b->cipher != c || b->key_len != key.size || memcmp(b->key, key.data, key.size)) {
        if (b->aead)   /* a new traffic key (KeyUpdate) */
            gnutls_aead_cipher_deinit(b->aead);
        b->aead = NULL;
        if (gnutls_aead_cipher_init(&b->aead, c, &key) < 0) {
            b->aead = NULL;
            return false;
        }
        b->cipher = c;
        b->key_len = key.size;
        memcpy(b->key, key.data, key.size);
    }
    memcpy(b->iv, iv.data, sizeof(b->iv));
    b->seq = 0;
    for (int i = 0; i < 8; i++)
        b->seq = b->seq << 8 | seq[i];
    return b->seq < BULK_SEQ_LIMIT;
}

/* Hands a direction's sequence back: GnuTLS's next record follows ours. */
static int bulk_store(struct io_tls *t, unsigned read, const struct bulk_key *b)
{
    unsigned char seq[8];
    for (int i = 0; i < 8; i++)
        seq[i] = (unsigned char)(b->seq >> (56 - 8 * i));
    return gnutls_record_set_state(t->s, read, seq) < 0 ? -EPROTO : 0;
}

static void bulk_nonce(const struct bulk_key *b, uint8_t nonce[12])
{
    memcpy(nonce, b->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= (uint8_t)(b->seq >> (56 - 8 * i));
}

/* One record of the content in[0..nin) (at most record_max bytes) sealed
 * at t->out + t->out_len. */
static int bulk_seal(struct io_tls *t, giovec_t *in, int nin, size_t content)
{
    struct bulk_key *b = &t->bulk;
    static const uint8_t type = REC_TYPE_APPDATA;
    size_t clen = content + 1 + REC_TAG;
    uint8_t *hdr = t->out + t->out_len;
    hdr[0] = REC_TYPE_APPDATA;
    hdr[1] = 3;
    hdr[2] = 3;
    hdr[3] = (uint8_t)(clen >> 8);
    hdr[4] = (uint8_t)clen;
    uint8_t nonce[12];
    bulk_nonce(b, nonce);
    in[nin++] = (giovec_t){ .iov_base = (void *)&type, .iov_len = 1 };
    giovec_t aad = { .iov_base = hdr, .iov_len = REC_HDR };
    size_t got = clen;
    if (gnutls_aead_cipher_encryptv(b->aead, nonce, sizeof(nonce), &aad, 1, REC_TAG, in, nin,
                                    hdr + REC_HDR, &got) < 0 || got != clen)
        return -EPROTO;
    b->seq++;
    t->out_len += REC_HDR + clen;
    return 0;
}

#define BULK_PIECES 32

static int writev_bulk(struct io_tls *t, struct iovec *iov, int n, int cancel_fd)
{
    size_t max = t->record_max, rec_room = REC_HDR + max + 1 + REC_TAG;
    giovec_t in[BULK_PIECES + 1];
    int nin = 0, rc = 0;
    size_t content = 0;
    for (int i = 0; i <= n && rc == 0;) {
        const uint8_t *p = i < n ? iov[i].iov_base : NULL;
        size_t len = i < n ? iov[i].iov_len : 0;
        bool last = i == n;
        /* this piece, or what of it fits the record */
        size_t take = max - content < len ? max - content : len;
        if (take) {
            in[nin++] = (giovec_t){ .iov_base = (void *)p, .iov_len = take };
            content += take;
            iov[i].iov_base = (uint8_t *)p + take;   /* consumed; the caller's iov is scratch */
            iov[i].iov_len = len - take;
        }
        bool full = content == max || nin == BULK_PIECES;
        if (content && (full || last)) {
            if (io_cancel_due(cancel_fd))
                return -ECANCELED;
            if (t->out_len + rec_room > WRITE_BATCH && (rc = flush_out(t)) < 0)
                break;
            rc = bulk_seal(t, in, nin, content);
            nin = 0;
            content = 0;
        }
        if (last)
            break;
        if (iov[i].iov_len == 0)
            i++;
    }
    return rc;
}

int io_tls_writev(struct io_tls *t, struct iovec *iov, int n, int cancel_fd)
{
    t->tx.cancel_fd = cancel_fd;
    t->tx.rc = 0;
    int rc;
    t->batching = true;
    if (bulk_load(t, 0, &t->bulk)) {
        rc = writev_bulk(t, iov, n, cancel_fd);
        int sync = bulk_store(t, 0, &t->bulk);
        rc = rc < 0 ? rc : sync;
    } else {
        rc = writev_gnutls(t, iov, n, cancel_fd);
    }
    t->batching = false;
    int flushed = flush_out(t);    /* what is written is sent, even after an error */
    return rc < 0 ? rc : flushed;
}

#define REC_MAX_CIPHER (REC_HDR + 16384 + 256)   /* TLS 1.3's largest record */

/* Whether the next record is read here: GnuTLS holds no part of it. */
static bool rx_own(struct io_tls *t)
{
    struct bulk_rx *b = &t->rxb;
    if (b->own)
        return true;
    if (b->give_next || t->have_peek || b->frame_have || b->frame_left ||
        gnutls_record_check_pending(t->s))
        return false;
    if (!b->bounce && !(b->bounce = malloc(REC_MAX_CIPHER)))
        return false;
    b->own = bulk_load(t, 1, &b->k);
    return b->own;
}

/* GnuTLS reads on from the current record, with the sequence ours left. */
static int rx_give_back(struct io_tls *t)
{
    if (!t->rxb.own)
        return 0;
    t->rxb.own = false;
    return bulk_store(t, 1, &t->rxb.k);
}

/* One record opened into p (or the bounce buffer, when its content may not
 * fit len): the content bytes delivered to p; 0 and give_next when GnuTLS
 * is to read it (not application data, not opening, past the limit);
 * -errno. */
static ssize_t rx_record(struct io_tls *t, uint8_t *p, size_t len)
{
    struct bulk_rx *b = &t->rxb;
    int r = ra_have(t, REC_HDR);
    if (r <= 0)
        return r == 0 ? -ENODATA : r;
    const uint8_t *h = t->ra + t->ra_off;
    size_t clen = (size_t)h[3] << 8 | h[4];
    if (h[0] != REC_TYPE_APPDATA || h[1] != 3 || h[2] != 3 || clen < REC_TAG + 1 ||
        REC_HDR + clen > REC_MAX_CIPHER || b->k.seq + 1 >= BULK_SEQ_LIMIT) {
        b->give_next = true;
        return 0;
    }
    if ((r = ra_have(t, REC_HDR + clen)) <= 0)
        return r == 0 ? -ENODATA : r;
    h = t->ra + t->ra_off;
    size_t plen = clen - REC_TAG, got = plen;
    uint8_t *dst = len >= plen ? p : b->bounce;
    uint8_t nonce[12];
    bulk_nonce(&b->k, nonce);
    size_t c = 0;
    if (gnutls_aead_cipher_decrypt(b->k.aead, nonce, sizeof(nonce), h, REC_HDR, REC_TAG,
                                   h + REC_HDR, clen, dst, &got) == 0 && got == plen) {
        c = plen;
        while (c && dst[c - 1] == 0)   /* padding */
            c--;
    }
    if (c == 0 || dst[c - 1] != REC_TYPE_APPDATA) {
        b->give_next = true;   /* GnuTLS reads it again and says what it is */
        return 0;
    }
    c--;
    t->ra_off += REC_HDR + clen;
    b->k.seq++;
    if (dst == p)
        return (ssize_t)c;
    size_t k = c < len ? c : len;
    memcpy(p, dst, k);
    b->left_off = k;
    b->left_len = c - k;
    return (ssize_t)k;
}

int io_tls_readv(struct io_tls *t, struct iovec *iov, int n, size_t *got, int cancel_fd)
{
    struct bulk_rx *b = &t->rxb;
    t->rx.cancel_fd = cancel_fd;
    t->rx.rc = 0;
    size_t total = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (len && t->have_peek) {
            *p++ = t->peek;
            len--;
            total++;
            t->have_peek = false;
        }
        while (len) {
            if (io_cancel_due(cancel_fd)) {
                rc = -ECANCELED;
                break;
            }
            ssize_t g;
            if (b->left_len) {
                g = (ssize_t)(b->left_len < len ? b->left_len : len);
                memcpy(p, b->bounce + b->left_off, (size_t)g);
                b->left_off += (size_t)g;
                b->left_len -= (size_t)g;
            } else if (rx_own(t)) {
                g = rx_record(t, p, len);
                if (g < 0) {
                    rc = (int)g;
                    break;
                }
                if (b->give_next && (rc = rx_give_back(t)) < 0)
                    break;
            } else {
                g = gnutls_record_recv(t->s, p, len);
                if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED)
                    continue;
                if (g <= 0) {
                    rc = g == 0 ? -ENODATA : record_error(t, g, t->rx.rc);
                    break;
                }
                b->give_next = false;
            }
            p += g;
            len -= (size_t)g;
            total += (size_t)g;
        }
    }
    int sync = rx_give_back(t);   /* between calls GnuTLS's sequence is the session's */
    if (got)
        *got = total;
    return rc < 0 ? rc : sync;
}

int io_tls_seal(struct io_tls *t, const void *msg, size_t len, uint8_t **out, size_t *outlen,
                struct ls_errbuf *err)
{
    t->capturing = true;
    t->cap_len = 0;
    t->tx.rc = 0;
    int rc = send_record(t, msg, len);
    t->capturing = false;
    if (rc < 0)
        return ls_err(err, rc, "TLS: sealing a message: %s", strerror(-rc));
    *out = t->cap;
    *outlen = t->cap_len;
    t->cap = NULL;
    t->cap_len = t->cap_size = 0;
    return 0;
}
