/* test/io/test_tls_records.c - io/tls.c's own records against GnuTLS's:
 * the sender seals bulk records itself and the receiver opens them itself,
 * each handing the sequence to GnuTLS around them. Over a socketpair, a
 * sender (the TLS client, a thread) and a receiver (the server):
 *   - patterned data in writes and reads of every size, from 1 byte to
 *     several records (reads smaller than a record go through the bounce
 *     buffer), checked byte for byte; a message GnuTLS seals
 *     (io_tls_seal) between bulk writes opens in sequence; the sender's
 *     hang-up is the end of the data (-ENODATA);
 *   - one ciphertext byte flipped in transit: the record is given back to
 *     GnuTLS, which refuses it (-EBADMSG), after every byte before it was
 *     delivered intact.
 * The PKI comes from test/tls/mkcerts.sh (certtool). About 1 s. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/fdio.h"
#include "io/tls.h"

#define TOTAL (6u << 20)
#define FLIP_AT (1u << 20)   /* the corrupted ciphertext byte, from the first data on */

static char pki[128];

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131 + (i >> 13));
}

/* Sizes that cross records every which way. */
static const size_t wsizes[] = { 1, 7, 4096, 16384, 16385, 100000, 3, 65536, 12345, 1 << 20 };
static const size_t rsizes[] = { 5, 16384, 1, 40000, 16383, 9, 300000, 2, 16401, 70000 };

struct sender {
    int fd;
    bool seal_midway;
    int rc;
    char msg[LS_ERRBUF_LEN];
};

static void *send_all(void *arg)
{
    struct sender *s = arg;
    struct io_tls *t = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    char creds[160];
    snprintf(creds, sizeof(creds), "%s/good", pki);
    uint8_t *buf = malloc(TOTAL);
    s->rc = buf ? io_tls_new(&t, creds, NULL, NULL, IO_TLS_CLIENT, &e) : -ENOMEM;
    if (s->rc == 0)
        s->rc = io_tls_handshake(t, s->fd, s->fd, -1, &e);
    if (s->rc == 0) {
        uint8_t hello;
        size_t got;
        struct iovec v = { &hello, 1 };
        s->rc = io_tls_readv(t, &v, 1, &got, -1);   /* the server's first byte */
    }
    for (size_t i = 0; buf && i < TOTAL; i++)
        buf[i] = pattern(i);
    for (size_t at = 0, k = 0; s->rc == 0 && at < TOTAL; k++) {
        size_t n = wsizes[k % (sizeof(wsizes) / sizeof(wsizes[0]))];
        if (n > TOTAL - at)
            n = TOTAL - at;
        if (s->seal_midway && k == 5) {   /* GnuTLS seals these bytes itself */
            uint8_t *rec;
            size_t rlen;
            s->rc = io_tls_seal(t, buf + at, n, &rec, &rlen, &e);
            if (s->rc == 0) {
                struct iovec v = { rec, rlen };
                s->rc = io_writev_raw(s->fd, &v, 1, -1);
                free(rec);
            }
        } else {   /* two iovecs: a write is scattered */
            struct iovec v[2] = { { buf + at, n / 2 }, { buf + at + n / 2, n - n / 2 } };
            s->rc = io_tls_writev(t, v, 2, -1);
        }
        at += n;
    }
    snprintf(s->msg, sizeof(s->msg), "%s", e.msg);
    shutdown(s->fd, SHUT_WR);   /* the end of the data */
    io_tls_free(t);
    free(buf);
    return NULL;
}

/* Relays a -> b, flipping the byte at offset flip (past the handshake's). */
struct relay {
    int a, b;
    size_t flip;       /* absolute offset of the byte to flip, 0 = none */
};

static void *relay_run(void *arg)
{
    struct relay *r = arg;
    uint8_t buf[65536];
    size_t at = 0;
    for (;;) {
        ssize_t n = read(r->a, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (r->flip && at <= r->flip && r->flip < at + (size_t)n)
            buf[r->flip - at] ^= 0x40;
        at += (size_t)n;
        struct iovec v = { buf, (size_t)n };
        if (io_writev_raw(r->b, &v, 1, -1) < 0)
            break;
    }
    shutdown(r->b, SHUT_WR);
    return NULL;
}

/* Receives until an error; returns it, with the bytes received intact in *good. */
static int receive(int fd, size_t *good)
{
    struct io_tls *t = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    char creds[160];
    snprintf(creds, sizeof(creds), "%s/good", pki);
    assert_int_equal(io_tls_new(&t, creds, NULL, NULL, IO_TLS_SERVER, &e), 0);
    if (io_tls_handshake(t, fd, fd, -1, &e) < 0)
        fail_msg("handshake: %s", e.msg);
    struct iovec hello = { "!", 1 };
    assert_int_equal(io_tls_writev(t, &hello, 1, -1), 0);
    uint8_t *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t at = 0;
    int rc = 0;
    *good = 0;
    for (size_t k = 0; rc == 0; k++) {
        size_t n = rsizes[k % (sizeof(rsizes) / sizeof(rsizes[0]))];
        if (at < TOTAL && n > TOTAL - at)
            n = TOTAL - at;
        size_t got = 0;
        struct iovec v[2] = { { buf, n / 2 }, { buf + n / 2, n - n / 2 } };
        rc = io_tls_readv(t, v, 2, &got, -1);
        for (size_t i = 0; i < got; i++)
            if (buf[i] != pattern(at + i))
                fail_msg("byte %zu: 0x%02x, sent 0x%02x", at + i, buf[i], pattern(at + i));
        at += got;
        *good = at;
    }
    free(buf);
    io_tls_free(t);
    return rc;
}

static void test_records_round_trip(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct sender s = { .fd = sv[0], .seal_midway = true };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_all, &s), 0);
    size_t good;
    int rc = receive(sv[1], &good);
    pthread_join(th, NULL);
    if (s.rc != 0)
        fail_msg("sender: %s (%d)", s.msg, s.rc);
    assert_int_equal(good, TOTAL);
    assert_int_equal(rc, -ENODATA);   /* the hang-up after the last byte */
    close(sv[0]);
    close(sv[1]);
}

static void test_records_corrupted(void **state)
{
    /* sender c[0] <-> c[1] relay d[0] <-> d[1] receiver, a thread each way */
    int c[2], d[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, d), 0);
    struct relay up = { .a = c[1], .b = d[0], .flip = 8192 + FLIP_AT };
    struct relay down = { .a = d[0], .b = c[1] };
    pthread_t tu, td, th;
    assert_int_equal(pthread_create(&tu, NULL, relay_run, &up), 0);
    assert_int_equal(pthread_create(&td, NULL, relay_run, &down), 0);
    struct sender s = { .fd = c[0] };
    assert_int_equal(pthread_create(&th, NULL, send_all, &s), 0);
    size_t good;
    int rc = receive(d[1], &good);
    assert_int_equal(rc, -EBADMSG);
    assert_true(good > FLIP_AT - (64u << 10) && good < FLIP_AT + 8192);
    close(d[1]);   /* the relays fail, then the sender */
    pthread_join(tu, NULL);
    pthread_join(td, NULL);
    close(c[1]);
    pthread_join(th, NULL);
    assert_int_not_equal(s.rc, 0);
    close(c[0]);
    close(d[0]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *src = getenv("LOCKSTEP_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "LOCKSTEP_SOURCE_DIR is not set (run through ctest)\n");
        return 1;
    }
    snprintf(pki, sizeof(pki), "/tmp/ls-tlsrec-XXXXXX");
    if (!mkdtemp(pki))
        return 1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/test/tls/mkcerts.sh %s", src, pki);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s failed (certtool: gnutls-bin)\n", cmd);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_round_trip),
        cmocka_unit_test(test_records_corrupted),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", pki);
    return rc;
}
