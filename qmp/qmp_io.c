/* qmp/qmp_io.c - the QMP socket: reads feed yajl's streaming parser, which
 * builds one yajl_val tree per message; writes go out with sendmsg().
 *
 * The parser runs with allow_multiple_values, so message boundaries are
 * wherever a top-level value ends: several messages in one read, one message
 * over many reads, and any whitespace (QEMU's "\r\n" or none) all work. A
 * message is handled as soon as its closing brace is parsed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qmp/qmp_internal.h"

/* ---- errors ---------------------------------------------------------------- */

/* io's end, posted: an io error after the owner's close was queued lands
 * in CLOSING, whose rows absorb it (the close wins). Nothing is posted once
 * teardown began: the row tearing down already decided the outcome. */
static void io_end(struct qmp_conn *c, int rc, int ev, const char *fmt, va_list ap)
{
    if (qmp__io_ended(c) || qmp__tearing_down(c))
        return;
    ls_verr(&c->io_err, rc, fmt, ap);
    c->reading = false;
    qmp__poll_update(c);
    fsm_post(&c->fsm, ev, rc, NULL);
}

void qmp__io_fail(struct qmp_conn *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    io_end(c, rc, QMP_CONN_E_IO_FAILED, fmt, ap);
    va_end(ap);
}

void qmp__io_eof(struct qmp_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    io_end(c, -ECONNRESET, QMP_CONN_E_PEER_CLOSED, fmt, ap);
    va_end(ap);
}

/* ---- trees ----------------------------------------------------------------- */

void qmp__val_free(yajl_val v)
{
    if (!v)
        return;
    switch (v->type) {
    case yajl_t_string:
        free(v->u.string);
        break;
    case yajl_t_number:
        free(v->u.number.r);
        break;
    case yajl_t_object:
        for (size_t i = 0; i < v->u.object.len; i++) {
            free((char *)v->u.object.keys[i]);
            qmp__val_free(v->u.object.values[i]);
        }
        free(v->u.object.keys);
        free(v->u.object.values);
        break;
    case yajl_t_array:
        for (size_t i = 0; i < v->u.array.len; i++)
            qmp__val_free(v->u.array.values[i]);
        free(v->u.array.values);
        break;
    default:
        break;
    }
    free(v);
}

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* ---- parser callbacks: build the tree -------------------------------------- */

/* Parser callbacks return 1 to go on, 0 to stop (yajl_status_client_canceled). */
static int parse_fail(struct qmp_conn *c, int rc, const char *what)
{
    qmp__io_fail(c, rc, "QMP message from %s near stream byte %llu: %s", c->where,
                 (unsigned long long)(c->chunk_base + yajl_get_bytes_consumed(c->parser)), what);
    return 0;
}

static int val_new(struct qmp_conn *c, yajl_type t, yajl_val *out)
{
    if (++c->msg_values > QMP_MAX_VALUES)
        return parse_fail(c, -EMSGSIZE, "more than 1048576 values in one message");
    yajl_val v = calloc(1, sizeof(*v));
    if (!v)
        return parse_fail(c, -ENOMEM, "out of memory");
    v->type = t;
    *out = v;
    return 1;
}

static int msg_done(struct qmp_conn *c, yajl_val v)
{
    size_t end = yajl_get_bytes_consumed(c->parser);
    size_t size = c->msg_bytes + (end > c->chunk_msg_start ? end - c->chunk_msg_start : 0);
    if (size > c->stats.max_msg_bytes)
        c->stats.max_msg_bytes = size;
    c->chunk_msg_start = end;
    c->msg_bytes = 0;
    c->msg_values = 0;
    c->stats.msgs_in++;
    if (v->type != yajl_t_object) {
        qmp__val_free(v);
        return parse_fail(c, -EPROTO, "a QMP message must be a JSON object");
    }
    qmp__handle_msg(c, v);
    qmp__val_free(v);
    /* 0 stops the parse: io ended, or the greeting stopped reading (the
     * bytes after it wait in the socket for the greeting's row) */
    return qmp__io_ended(c) || !c->reading ? 0 : 1;
}

/* A finished value joins the open container, or is a whole message. */
static int attach(struct qmp_conn *c, yajl_val v)
{
    if (c->depth == 0)
        return msg_done(c, v);
    struct qmp_frame *f = &c->stack[c->depth - 1];
    yajl_val p = f->v;
    bool obj = p->type == yajl_t_object;
    size_t len = obj ? p->u.object.len : p->u.array.len;
    if (obj && !f->key) {
        qmp__val_free(v);
        return parse_fail(c, -EPROTO, "object member without a key");
    }
    if (len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        yajl_val *vals = realloc(obj ? p->u.object.values : p->u.array.values, cap * sizeof(*vals));
        if (!vals)
            goto oom;
        if (obj) {
            p->u.object.values = vals;
            const char **keys = realloc(p->u.object.keys, cap * sizeof(*keys));
            if (!keys)
                goto oom;
            p->u.object.keys = keys;
        } else {
            p->u.array.values = vals;
        }
        f->cap = cap;
    }
    if (obj) {
        p->u.object.keys[len] = f->key;
        p->u.object.values[len] = v;
        p->u.object.len++;
        f->key = NULL;
    } else {
        p->u.array.values[len] = v;
        p->u.array.len++;
    }
    return 1;
oom:
    qmp__val_free(v);
    return parse_fail(c, -ENOMEM, "out of memory");
}

static int cb_null(void *ctx)
{
    yajl_val v = NULL;
    return val_new(ctx, yajl_t_null, &v) && attach(ctx, v);
}

static int cb_bool(void *ctx, int b)
{
    yajl_val v = NULL;
    return val_new(ctx, b ? yajl_t_true : yajl_t_false, &v) && attach(ctx, v);
}

static int cb_number(void *ctx, const char *s, size_t n)
{
    struct qmp_conn *c = ctx;
    yajl_val v = NULL;
    if (!val_new(c, yajl_t_number, &v))
        return 0;
    if (!(v->u.number.r = dup_bytes(s, n))) {
        free(v);
        return parse_fail(c, -ENOMEM, "out of memory");
    }
    char *end;
    errno = 0;
    v->u.number.i = strtoll(v->u.number.r, &end, 10);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    errno = 0;
    v->u.number.d = strtod(v->u.number.r, &end);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return attach(c, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    struct qmp_conn *c = ctx;
    yajl_val v = NULL;
    if (!val_new(c, yajl_t_string, &v))
        return 0;
    if (!(v->u.string = dup_bytes(s, n))) {
        free(v);
        return parse_fail(c, -ENOMEM, "out of memory");
    }
    return attach(c, v);
}

static int open_container(struct qmp_conn *c, yajl_type t)
{
    if (c->depth >= QMP_MAX_DEPTH)
        return parse_fail(c, -EMSGSIZE, "nested deeper than 64 levels");
    if (c->depth == c->stack_cap) {
        unsigned cap = c->stack_cap ? c->stack_cap * 2 : 8;
        struct qmp_frame *st = realloc(c->stack, cap * sizeof(*st));
        if (!st)
            return parse_fail(c, -ENOMEM, "out of memory");
        c->stack = st;
        c->stack_cap = cap;
    }
    yajl_val v = NULL;
    if (!val_new(c, t, &v))
        return 0;
    c->stack[c->depth++] = (struct qmp_frame){ .v = v };
    return 1;
}

static int close_container(struct qmp_conn *c)
{
    struct qmp_frame *f = &c->stack[--c->depth];
    free(f->key);
    return attach(c, f->v);
}

static int cb_start_map(void *ctx) { return open_container(ctx, yajl_t_object); }
static int cb_start_array(void *ctx) { return open_container(ctx, yajl_t_array); }
static int cb_end(void *ctx) { return close_container(ctx); }

static int cb_map_key(void *ctx, const unsigned char *s, size_t n)
{
    struct qmp_conn *c = ctx;
    struct qmp_frame *f = &c->stack[c->depth - 1];
    free(f->key);
    if (!(f->key = dup_bytes(s, n)))
        return parse_fail(c, -ENOMEM, "out of memory");
    return 1;
}

static const yajl_callbacks parse_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

int qmp__parser_init(struct qmp_conn *c)
{
    c->parser = yajl_alloc(&parse_callbacks, NULL, c);
    if (!c->parser)
        return -ENOMEM;
    yajl_config(c->parser, yajl_allow_multiple_values, 1);
    return 0;
}

void qmp__parser_free(struct qmp_conn *c)
{
    while (c->depth > 0) {
        struct qmp_frame *f = &c->stack[--c->depth];
        free(f->key);
        qmp__val_free(f->v);
    }
    free(c->stack);
    c->stack = NULL;
    c->stack_cap = 0;
    if (c->parser)
        yajl_free(c->parser);
    c->parser = NULL;
}

/* ---- reading ---------------------------------------------------------------- */

static void conn_eof(struct qmp_conn *c)
{
    size_t partial = c->msg_bytes;
    /* Finishing the parse tells a clean boundary from a cut message (and
     * delivers a trailing top-level value that needed EOF to end). */
    c->chunk_base = c->stats.bytes_in;
    c->chunk_msg_start = 0;
    yajl_status st = yajl_complete_parse(c->parser);
    if (qmp__io_ended(c))
        return;
    /* yajl calls an EOF before any byte "premature": no message was cut */
    if ((st != yajl_status_ok && partial > 0) || c->depth > 0)
        qmp__io_eof(c, "QEMU closed the QMP socket %s in the middle of a message "
                       "(%zu bytes of it received)", c->where, partial);
    else if (c->fsm.state == QMP_CONN_S_AWAIT_GREETING)
        qmp__io_eof(c, "QMP peer %s closed the connection without sending a greeting", c->where);
    else
        qmp__io_eof(c, "QEMU closed the QMP socket %s (%u commands were awaiting replies)",
                    c->where, c->npending);
}

static void conn_reset(struct qmp_conn *c)
{
    qmp__io_eof(c, "QEMU reset the QMP connection %s (%u commands were awaiting replies)",
                c->where, c->npending);
}

/* The greeting ended the parse (msg_done): take from the socket only the
 * bytes up to its end. What follows waits there until the GREETING row
 * reads again, so the next message is routed by the state it leads to. */
static void greeting_taken(struct qmp_conn *c)
{
    size_t used = c->chunk_msg_start;
    c->stats.bytes_in = c->chunk_base + used;
    if (recv(c->fd, c->rbuf, used, MSG_DONTWAIT) != (ssize_t)used) {
        qmp__io_fail(c, -EIO, "reading QMP socket %s: the greeting's bytes went missing",
                     c->where);
        return;
    }
    /* the handle is spent by the stop; the next value starts afresh */
    qmp__parser_free(c);
    if (qmp__parser_init(c) < 0)
        qmp__io_fail(c, -ENOMEM, "out of memory reading QMP %s", c->where);
}

/* One recv and its parse. Returns true if more may be readable now. Before
 * the greeting the bytes are peeked, and taken once parsed (greeting_taken). */
static bool conn_read(struct qmp_conn *c)
{
    bool peek = c->fsm.state == QMP_CONN_S_AWAIT_GREETING;
    ssize_t n = recv(c->fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return false;
        if (errno == ECONNRESET)
            conn_reset(c);
        else
            qmp__io_fail(c, -errno, "reading QMP socket %s: %s", c->where, strerror(errno));
        return false;
    }
    if (n == 0) {
        conn_eof(c);
        return false;
    }
    c->chunk_base = c->stats.bytes_in;
    c->stats.bytes_in += (uint64_t)n;
    c->chunk_msg_start = 0;
    yajl_status st = yajl_parse(c->parser, (const unsigned char *)c->rbuf, (size_t)n);
    if (qmp__io_ended(c))
        return false;
    if (peek && !c->reading) {
        greeting_taken(c);
        return false;
    }
    if (peek && recv(c->fd, c->rbuf, (size_t)n, MSG_DONTWAIT) != n) {
        qmp__io_fail(c, -EIO, "reading QMP socket %s: peeked bytes went missing", c->where);
        return false;
    }
    if (st != yajl_status_ok) {
        unsigned char *e = yajl_get_error(c->parser, 0, NULL, 0);
        size_t at = yajl_get_bytes_consumed(c->parser);
        qmp__io_fail(c, -EPROTO, "QMP peer %s sent invalid JSON near stream byte %llu: %s",
                     c->where, (unsigned long long)(c->chunk_base + at),
                     e ? (const char *)e : "parse error");
        if (e)
            yajl_free_error(c->parser, e);
        return false;
    }
    c->msg_bytes += (size_t)n - c->chunk_msg_start;
    if (c->msg_bytes > c->max_msg_bytes) {
        qmp__io_fail(c, -EMSGSIZE, "QMP message from %s exceeds %zu bytes (%zu received and "
                     "not finished); refusing to buffer more", c->where, c->max_msg_bytes,
                     c->msg_bytes);
        return false;
    }
    return !qmp__io_ended(c);
}

/* libuv turns POLLERR into UV_EBADF and stops the handle: find out what
 * really happened (a reset, an EOF after the last replies) and fail. */
static void conn_poll_error(struct qmp_conn *c, int status)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) {
        if (err == ECONNRESET || err == EPIPE)
            conn_reset(c);
        else
            qmp__io_fail(c, -err, "QMP socket %s: %s", c->where, strerror(err));
        return;
    }
    for (int i = 0; i < 1024 && c->reading && conn_read(c); i++)
        ;
    qmp__io_fail(c, status, "polling QMP socket %s: %s", c->where, uv_strerror(status));
}

/* ---- writing ---------------------------------------------------------------- */

/* One sendmsg with fd (>= 0) as SCM_RIGHTS. Returns bytes sent or -errno. */
static ssize_t send_iov(struct qmp_conn *c, const struct iovec *iov, int niov, int fd)
{
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)niov };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

static void fd_sent(struct qmp_conn *c, int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
        c->stats.fds_sent++;
    }
}

static void tx_send_error(struct qmp_conn *c, int rc)
{
    if (rc == -EPIPE || rc == -ECONNRESET)
        qmp__io_eof(c, "QEMU closed the QMP socket %s while a command was being sent "
                       "(%u commands were awaiting replies)", c->where, c->npending);
    else
        qmp__io_fail(c, rc, "writing QMP socket %s: %s", c->where, strerror(-rc));
}

/* Keep bytes [skip, total) of iov for later; at_front puts them before the
 * queue (the ungated negotiation command goes ahead of held user commands). */
static int tx_push(struct qmp_conn *c, const struct iovec *iov, int niov, size_t skip, int fd,
                   bool gated, bool at_front)
{
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    struct qmp_tx *t = malloc(sizeof(*t) + total - skip);
    if (!t)
        return -ENOMEM;
    size_t off = 0, pos = 0;
    for (int i = 0; i < niov; i++) {
        const char *b = iov[i].iov_base;
        size_t l = iov[i].iov_len;
        if (pos + l > skip) {
            size_t from = skip > pos ? skip - pos : 0;
            memcpy(t->buf + off, b + from, l - from);
            off += l - from;
        }
        pos += l;
    }
    t->gated = gated;
    t->fd = fd;
    t->off = 0;
    t->len = off;
    if (at_front) {
        t->next = c->txq_head;
        c->txq_head = t;
        if (!c->txq_tail)
            c->txq_tail = t;
    } else {
        t->next = NULL;
        if (c->txq_tail)
            c->txq_tail->next = t;
        else
            c->txq_head = t;
        c->txq_tail = t;
    }
    return 0;
}

static bool tx_can_send(const struct qmp_conn *c)
{
    return c->fd >= 0 && !c->connect_in_progress && !qmp__io_ended(c) && !qmp__tearing_down(c);
}

int qmp__tx(struct qmp_conn *c, const struct iovec *iov, int niov, int fd, bool gated)
{
    /* Before negotiation user commands are held; the queue holds only them,
     * and the one ungated command (qmp_capabilities) goes ahead of them. */
    bool held = gated && !qmp__negotiated(c);
    bool jump = !gated && !qmp__negotiated(c);
    gated = held;   /* its mark in the queue: released by the row into READY */
    if (!tx_can_send(c) || held || (c->txq_head && !jump)) {
        int rc = tx_push(c, iov, niov, 0, fd, gated, jump);
        if (rc == 0)
            qmp__poll_update(c);
        return rc;
    }
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    ssize_t n = send_iov(c, iov, niov, fd);
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
        n = 0;
    } else if (n < 0) {
        tx_send_error(c, (int)n);
        if (fd >= 0)
            close(fd);
        return 0;
    } else {
        fd_sent(c, &fd);
    }
    c->stats.bytes_out += (uint64_t)n;
    if ((size_t)n == total)
        return 0;
    int rc = tx_push(c, iov, niov, (size_t)n, fd, gated, jump);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        if (n == 0)
            return rc;
        /* Part of a command is on the wire: the stream cannot be resumed. */
        qmp__io_fail(c, rc, "out of memory queueing a QMP command for %s", c->where);
        return 0;
    }
    qmp__poll_update(c);
    return 0;
}

int qmp__tx_flush(struct qmp_conn *c)
{
    while (c->txq_head && tx_can_send(c)) {
        struct qmp_tx *t = c->txq_head;
        if (t->gated)
            break;
        struct iovec iov = { t->buf + t->off, t->len - t->off };
        ssize_t n = send_iov(c, &iov, 1, t->fd);
        if (n == -EAGAIN || n == -EWOULDBLOCK)
            break;
        if (n < 0) {
            tx_send_error(c, (int)n);
            break;
        }
        fd_sent(c, &t->fd);
        c->stats.bytes_out += (uint64_t)n;
        t->off += (size_t)n;
        if (t->off < t->len)
            break;
        c->txq_head = t->next;
        if (!c->txq_head)
            c->txq_tail = NULL;
        free(t);
    }
    qmp__poll_update(c);
    return 0;
}

void qmp__tx_release(struct qmp_conn *c)
{
    for (struct qmp_tx *t = c->txq_head; t; t = t->next)
        t->gated = false;
    qmp__tx_flush(c);
}

void qmp__tx_free(struct qmp_conn *c)
{
    while (c->txq_head) {
        struct qmp_tx *t = c->txq_head;
        c->txq_head = t->next;
        if (t->fd >= 0)
            close(t->fd);
        free(t);
    }
    c->txq_tail = NULL;
}

/* ---- the poll handle -------------------------------------------------------- */

void qmp__tcp_connected(struct qmp_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    c->connect_in_progress = false;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        c->last_connect_errno = err;
        qmp__io_fail(c, -err, "connect to QMP %s: %s", c->where, strerror(err));
        return;
    }
    qmp__poll_update(c);
    fsm_post(&c->fsm, QMP_CONN_E_CONNECTED, 0, NULL);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct qmp_conn *c = p->data;
    if (qmp__io_ended(c))
        return;
    if (status < 0)
        c->poll_events = 0;   /* libuv stopped the handle */
    if (c->connect_in_progress) {
        /* A refused connect shows up as POLLERR: SO_ERROR says which. */
        if (status < 0 || (events & UV_WRITABLE))
            qmp__tcp_connected(c);
        return;
    }
    if (status < 0) {
        conn_poll_error(c, status);
        return;
    }
    if ((events & UV_WRITABLE) && c->txq_head)
        qmp__tx_flush(c);
    if ((events & UV_READABLE) && c->reading && !qmp__io_ended(c))
        conn_read(c);
}

int qmp__poll_start(struct qmp_conn *c, int fd)
{
    int rc = uv_poll_init(c->loop, &c->poll, fd);
    if (rc < 0)
        return rc;
    c->fd = fd;
    c->poll.data = c;
    c->poll_inited = true;
    c->open_handles++;
    qmp__poll_update(c);
    return 0;
}

void qmp__poll_update(struct qmp_conn *c)
{
    if (!c->poll_inited || uv_is_closing((uv_handle_t *)&c->poll))
        return;
    int ev = 0;
    if (!qmp__io_ended(c)) {
        if (c->reading)
            ev |= UV_READABLE;
        if (c->connect_in_progress || (c->txq_head && !c->txq_head->gated))
            ev |= UV_WRITABLE;
    }
    if (ev == c->poll_events)
        return;
    c->poll_events = ev;
    if (ev)
        uv_poll_start(&c->poll, ev, poll_cb);
    else
        uv_poll_stop(&c->poll);
}
