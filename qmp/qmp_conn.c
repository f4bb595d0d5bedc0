/* qmp/qmp_conn.c - the actions of states/qmp_conn.def, and opening and
 * freeing a connection.
 *
 * Handles: three timers (setup deadline, command deadlines, connect retry)
 * from the start, and a uv_poll on the socket once it exists. conn_teardown()
 * fails what is pending, closes all of them and cancels a pending name
 * resolution. The owner's close runs it in a row and waits in CLOSING for the
 * last close callback (HANDLES_CLOSED); failures run it in their row and the
 * cleanup undo registered at open waits for the last close (or runs the
 * teardown itself if a fault skipped that row). The connection is freed after
 * the owner's done callback, which the engine calls once the undo completed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp/qmp_internal.h"

#define FSM_PREFIX QMP_CONN
#define FSM_DEF_FILE "states/qmp_conn.def"
#include "fsm/gen_table.h"

static struct qmp_conn *conn_of(struct fsm *m) { return m->owner; }

/* ---- teardown -------------------------------------------------------------- */

static void conn_maybe_closed(struct qmp_conn *c)
{
    if (!qmp__tearing_down(c) || c->open_handles > 0 || c->gai_busy)
        return;
    if (c->undo_waiting) {
        c->undo_waiting = false;
        fsm_undo_complete(&c->fsm);
    } else {
        fsm_post(&c->fsm, QMP_CONN_E_HANDLES_CLOSED, 0, NULL);
    }
}

static void handle_closed_cb(uv_handle_t *h)
{
    struct qmp_conn *c = h->data;
    if (h == (uv_handle_t *)&c->poll && c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->open_handles--;
    conn_maybe_closed(c);
}

/* Close everything, then fail or cancel what is pending; runs once (the
 * timers closing say it ran). Command callbacks run here see a connection
 * that accepts nothing (qmp__tearing_down). */
static void conn_teardown(struct qmp_conn *c, int rc, const char *reason)
{
    if (qmp__tearing_down(c))
        return;
    c->reading = false;
    if (c->handles_inited) {
        uv_close((uv_handle_t *)&c->setup_timer, handle_closed_cb);
        uv_close((uv_handle_t *)&c->cmd_timer, handle_closed_cb);
        uv_close((uv_handle_t *)&c->retry_timer, handle_closed_cb);
    }
    qmp__fail_pending(c, rc, reason);
    qmp__tx_free(c);
    if (c->gai_busy)
        uv_cancel((uv_req_t *)&c->gai);   /* EBUSY if running: its callback still comes */
    if (c->poll_inited) {
        uv_close((uv_handle_t *)&c->poll, handle_closed_cb);
    } else if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* The cleanup undo: on entering CLOSED or FAILED. Completes when the last
 * handle has closed. */
static int conn_undo_close(struct fsm *m, void *obj)
{
    struct qmp_conn *c = obj;
    conn_teardown(c, m->err.rc ? m->err.rc : -ECANCELED,
                  m->err.msg[0] ? m->err.msg : "the connection ended");
    if (c->open_handles == 0 && !c->gai_busy)
        return 0;
    c->undo_waiting = true;
    return FSM_UNDO_PENDING;
}

static int qmp_conn_shutdown(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    conn_teardown(c, -ECANCELED, "the connection was closed by its owner");
    return 0;
}

static int qmp_conn_abort(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    /* io records its reason in c->io_err and posts IO_FAILED: adopt it
     * here (the first error wins). */
    fsm_fail_from(m, &c->io_err);
    if (!m->err.rc)
        ls_err(&m->err, ev->rc ? ev->rc : -EIO, "QMP connection %s failed in state %s",
               c->where, fsm_state_name(m));
    conn_teardown(c, m->err.rc, m->err.msg);
    return 0;
}

static int qmp_conn_peer_gone(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    fsm_fail_from(m, &c->io_err);   /* why io saw the peer go, -ECONNRESET */
    conn_teardown(c, m->err.rc, m->err.msg);
    return 0;
}

static int qmp_conn_time_out(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    switch (m->state) {
    case QMP_CONN_S_CONNECTING:
        fsm_fail(m, -ETIMEDOUT, "could not connect to QMP %s within %u ms (last error: %s)",
                 c->where, c->setup_timeout_ms,
                 c->last_connect_errno ? strerror(c->last_connect_errno) : "none, still connecting");
        break;
    case QMP_CONN_S_AWAIT_GREETING:
        fsm_fail(m, -ETIMEDOUT, "no QMP greeting from %s within %u ms", c->where,
                 c->setup_timeout_ms);
        break;
    default:
        fsm_fail(m, -ETIMEDOUT, "QMP capabilities negotiation with %s did not finish within %u ms",
                 c->where, c->setup_timeout_ms);
        break;
    }
    conn_teardown(c, m->err.rc, m->err.msg);
    return 0;
}

/* ---- connecting ------------------------------------------------------------- */

/* Timers stop firing once teardown closed them; what fires between the
 * owner's close and its row lands in CLOSING, which ignores it. */
static void setup_timer_cb(uv_timer_t *t)
{
    struct qmp_conn *c = t->data;
    fsm_post(&c->fsm, QMP_CONN_E_TIMEOUT, -ETIMEDOUT, NULL);
}

static void retry_timer_cb(uv_timer_t *t)
{
    struct qmp_conn *c = t->data;
    fsm_post(&c->fsm, QMP_CONN_E_RETRY, 0, NULL);
}

/* Unix connects finish at once (no EINPROGRESS for AF_UNIX). Returns 0 when
 * connected or a retry is scheduled, else -errno. */
static int conn_try_unix(struct qmp_conn *c)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&c->addr, c->addrlen) == 0) {
        int rc = qmp__poll_start(c, fd);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        fsm_post(&c->fsm, QMP_CONN_E_CONNECTED, 0, NULL);
        return 0;
    }
    int e = errno;
    close(fd);
    c->last_connect_errno = e;
    if (c->retry_connect && (e == ENOENT || e == ECONNREFUSED || e == EAGAIN)) {
        uv_timer_start(&c->retry_timer, retry_timer_cb, QMP_CONNECT_RETRY_MS, 0);
        return 0;
    }
    return -e;
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct qmp_conn *c = req->data;
    c->gai_busy = false;
    if (qmp__tearing_down(c)) {   /* the teardown awaited this callback */
        if (res)
            uv_freeaddrinfo(res);
        conn_maybe_closed(c);
        return;
    }
    if (status < 0 || !res) {
        /* uv reports resolver errors as UV_EAI_*; the errno says "no route". */
        qmp__io_fail(c, -EHOSTUNREACH, "cannot resolve QMP host %s: %s", c->where,
                     uv_strerror(status));
        if (res)
            uv_freeaddrinfo(res);
        return;
    }
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->addrlen = res->ai_addrlen;
    uv_freeaddrinfo(res);
    fsm_post(&c->fsm, QMP_CONN_E_RESOLVED, 0, NULL);
}

static int qmp_conn_begin(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    uv_timer_start(&c->setup_timer, setup_timer_cb, c->setup_timeout_ms, 0);
    if (c->tcp) {
        char port[16];
        snprintf(port, sizeof(port), "%d", c->port);
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_NUMERICSERV };
        c->gai.data = c;
        int rc = uv_getaddrinfo(c->loop, &c->gai, gai_cb, c->host, port, &hints);
        if (rc < 0)
            return fsm_fail(m, -EHOSTUNREACH, "cannot resolve QMP host %s: %s", c->where,
                            uv_strerror(rc));
        c->gai_busy = true;
        return 0;
    }
    int rc = conn_try_unix(c);
    if (rc < 0)
        return fsm_fail(m, rc, "connect to QMP socket %s: %s", c->where, strerror(-rc));
    return 0;
}

static int qmp_conn_retry(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    int rc = conn_try_unix(c);
    if (rc < 0)
        return fsm_fail(m, rc, "connect to QMP socket %s: %s", c->where, strerror(-rc));
    return 0;
}

static int qmp_conn_connect_tcp(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fsm_fail(m, -errno, "socket for QMP %s: %s", c->where, strerror(errno));
    int one = 1;
    /* Commands are small and latency-bound. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bool now = connect(fd, (struct sockaddr *)&c->addr, c->addrlen) == 0;
    if (!now && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        c->last_connect_errno = e;
        return fsm_fail(m, -e, "connect to QMP %s: %s", c->where, strerror(e));
    }
    c->connect_in_progress = !now;
    int rc = qmp__poll_start(c, fd);
    if (rc < 0) {
        close(fd);
        return fsm_fail(m, rc, "polling QMP %s: %s", c->where, uv_strerror(rc));
    }
    if (now)
        fsm_post(m, QMP_CONN_E_CONNECTED, 0, NULL);
    return 0;
}

static int qmp_conn_start_reading(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    c->reading = true;
    qmp__poll_update(c);
    return 0;
}

/* ---- negotiating ----------------------------------------------------------- */

static void caps_done(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    if (qmp__tearing_down(c))
        return;   /* failed by the teardown, whose row decided the outcome */
    if (r->rc == 0)
        fsm_post(&c->fsm, QMP_CONN_E_NEGOTIATED, 0, NULL);
    else
        qmp__io_fail(c, r->rc, "QMP capabilities negotiation with %s failed: %s", c->where,
                     r->err->msg);
}

static int qmp_conn_negotiate(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    struct ls_errbuf eb = { 0 };
    struct qmp_exec_opts o = { .timeout_ms = c->setup_timeout_ms, .err = &eb };
    int rc = qmp__submit(c, "qmp_capabilities", NULL, &o, false, caps_done, NULL);
    if (rc < 0)
        return fsm_fail(m, rc, "%s", eb.msg);
    c->reading = true;   /* stopped at the greeting's end: what follows is NEGOTIATING's */
    qmp__poll_update(c);
    return 0;
}

static int qmp_conn_go_ready(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_conn *c = conn_of(m);
    uv_timer_stop(&c->setup_timer);
    /* Commands the owner sends from ready_cb are still held (this row has
     * not entered READY yet): the release after it sends them too, in order. */
    if (c->ready_cb)
        c->ready_cb(c, c->data);
    qmp__tx_release(c);
    return 0;
}

/* ---- open and free ------------------------------------------------------------ */

static void conn_free(struct qmp_conn *c)
{
    qmp__parser_free(c);
    if (c->gen)
        yajl_gen_free(c->gen);
    qmp__tx_free(c);
    qmp__subs_free(c);
    qmp__ids_free(c);
    free(c->path);
    free(c->host);
    free(c);
}

static void conn_fsm_done(struct fsm *m, int rc)
{
    struct qmp_conn *c = conn_of(m);
    if (c->done_cb)
        c->done_cb(c, rc, &m->err, c->data);
    conn_free(c);
}

static struct qmp_conn *conn_alloc(struct io_sched *s, const struct qmp_conn_opts *o)
{
    struct qmp_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->sched = s;
    c->loop = s->loop;
    c->fd = -1;
    c->setup_timeout_ms = o && o->setup_timeout_ms ? o->setup_timeout_ms : 10000;
    c->cmd_timeout_ms = o && o->cmd_timeout_ms ? o->cmd_timeout_ms : 30000;
    c->max_msg_bytes = o && o->max_msg_bytes ? o->max_msg_bytes : 16u << 20;
    if (o) {
        c->retry_connect = o->retry_connect;
        c->ready_cb = o->ready;
        c->done_cb = o->done;
        c->data = o->data;
    }
    c->gen = yajl_gen_alloc(NULL);
    if (!c->gen || qmp__parser_init(c) < 0) {
        conn_free(c);
        return NULL;
    }
    yajl_gen_config(c->gen, yajl_gen_validate_utf8, 1);
    return c;
}

/* From fsm_init on, the connection ends only through the machine. */
static int conn_start(struct qmp_conn *c, const struct qmp_conn_opts *o, struct qmp_conn **out)
{
    fsm_init(&c->fsm, &qmp_conn_fsm_def, &c->sched->sched, conn_fsm_done, c, "%s",
             o && o->name ? o->name : "qmp");
    *out = c;
    if (fsm_defer(&c->fsm, conn_undo_close, c, "the QMP socket and timers") < 0) {
        /* Out of memory; nothing was open yet. done will report it. */
        fsm_post(&c->fsm, QMP_CONN_E_FAIL, fsm_rc(&c->fsm), NULL);
        return 0;
    }
    uv_timer_t *timers[] = { &c->setup_timer, &c->cmd_timer, &c->retry_timer };
    for (unsigned i = 0; i < 3; i++) {
        uv_timer_init(c->loop, timers[i]);   /* cannot fail on unix */
        timers[i]->data = c;
        c->open_handles++;
    }
    c->handles_inited = true;
    fsm_post(&c->fsm, QMP_CONN_E_START, 0, NULL);
    return 0;
}

int qmp_conn_open_unix(struct io_sched *s, const char *path, const struct qmp_conn_opts *o,
                       struct qmp_conn **out)
{
    *out = NULL;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = path ? strlen(path) : 0;
    if (n == 0)
        return -EINVAL;
    if (n >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, path, n + 1);
    struct qmp_conn *c = conn_alloc(s, o);
    if (!c || !(c->path = strdup(path))) {
        if (c)
            conn_free(c);
        return -ENOMEM;
    }
    memcpy(&c->addr, &sun, sizeof(sun));
    c->addrlen = (socklen_t)sizeof(sun);
    snprintf(c->where, sizeof(c->where), "unix:%s", path);
    return conn_start(c, o, out);
}

int qmp_conn_open_tcp(struct io_sched *s, const char *host, int port,
                      const struct qmp_conn_opts *o, struct qmp_conn **out)
{
    *out = NULL;
    if (!host || !*host || port <= 0 || port > 65535)
        return -EINVAL;
    struct qmp_conn *c = conn_alloc(s, o);
    if (!c || !(c->host = strdup(host))) {
        if (c)
            conn_free(c);
        return -ENOMEM;
    }
    c->tcp = true;
    c->port = port;
    snprintf(c->where, sizeof(c->where), "tcp:%s:%d", host, port);
    return conn_start(c, o, out);
}

void qmp_conn_close(struct qmp_conn *c)
{
    fsm_post(&c->fsm, QMP_CONN_E_CLOSE, 0, NULL);
}

struct fsm *qmp_conn_fsm(struct qmp_conn *c) { return &c->fsm; }
const char *qmp_conn_state(const struct qmp_conn *c) { return fsm_state_name(&c->fsm); }
bool qmp_conn_is_ready(const struct qmp_conn *c) { return c->fsm.state == QMP_CONN_S_READY; }
const char *qmp_conn_qemu_version(const struct qmp_conn *c) { return c->version; }

void qmp_conn_get_stats(const struct qmp_conn *c, struct qmp_stats *st)
{
    *st = c->stats;
    st->pending = c->npending;
}
