/* test/qmp/qmp_testutil.c - loop, connection and fake-peer helpers. */
#include "test/qmp/qmp_testutil.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

/* ---- loop ------------------------------------------------------------------------ */

static uv_timer_t guard_timer;
static bool guard_inited;

int count_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    /* cppcheck-suppress readdirCalled ; readdir_r is deprecated (glibc); one thread reads this stream */
    while (readdir(d))
        n++;
    closedir(d);
    return n - 1;   /* the dir's own fd, and . and .. cancel out roughly: compare only */
}

void tloop_init(struct tloop *l)
{
    static bool warmed;
    if (!warmed) {
        /* The first loop in a process opens libuv's global signal pipe, kept
         * for the process's life: open it before counting. */
        uv_loop_t tmp;
        uv_loop_init(&tmp);
        uv_loop_close(&tmp);
        warmed = true;
    }
    memset(l, 0, sizeof(*l));
    l->fds_at_start = count_open_fds();
    uv_loop_init(&l->loop);
    io_sched_init(&l->sched, &l->loop);
    uv_timer_init(&l->loop, &guard_timer);
    guard_inited = true;
    if (getenv("QMP_TEST_TRACE"))
        l->sched.sched.trace = fsm_trace_stderr;
}

static void guard_cb(uv_timer_t *t) { (void)t; }

bool tloop_run_until(struct tloop *l, const bool *flag, int ms)
{
    uint64_t start = uv_hrtime();
    while (!*flag) {
        uint64_t el = (uv_hrtime() - start) / 1000000;
        if (el >= (uint64_t)ms)
            break;
        uv_timer_start(&guard_timer, guard_cb, (uint64_t)ms - el, 0);
        uv_run(&l->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&guard_timer);
    return *flag;
}

int tloop_fini(struct tloop *l)
{
    io_sched_close(&l->sched);
    if (guard_inited) {
        uv_close((uv_handle_t *)&guard_timer, NULL);
        guard_inited = false;
    }
    /* Bounded: a leaked active handle must fail the test, not hang it. */
    for (int i = 0; i < 1000 && uv_run(&l->loop, UV_RUN_NOWAIT); i++)
        usleep(1000);
    int rc = uv_loop_close(&l->loop);
    fsm_sched_destroy(&l->sched.sched);
    return rc;
}

/* ---- connections ------------------------------------------------------------------- */

static void tconn_ready(struct qmp_conn *c, void *data)
{
    struct tconn *t = data;
    t->ready = true;
    snprintf(t->version, sizeof(t->version), "%s", qmp_conn_qemu_version(c));
}

static void tconn_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct tconn *t = data;
    t->done = true;
    t->done_calls++;
    t->done_rc = rc;
    snprintf(t->done_msg, sizeof(t->done_msg), "%s", err->msg);
    t->c = NULL;
}

int tconn_open_opts(struct tconn *t, struct tloop *l, const char *path, struct qmp_conn_opts *o)
{
    memset(t, 0, sizeof(*t));
    o->ready = tconn_ready;
    o->done = tconn_done;
    o->data = t;
    return qmp_conn_open_unix(&l->sched, path, o, &t->c);
}

int tconn_open(struct tconn *t, struct tloop *l, const char *path, unsigned setup_ms)
{
    struct qmp_conn_opts o = { .setup_timeout_ms = setup_ms, .retry_connect = true };
    return tconn_open_opts(t, l, path, &o);
}

bool tconn_close(struct tconn *t, struct tloop *l)
{
    if (!t->done && t->c)
        qmp_conn_close(t->c);
    return tloop_run_until(l, &t->done, TEST_HANG_MS);
}

/* ---- replies ------------------------------------------------------------------------ */

static void gen_val(yajl_gen g, yajl_val v)
{
    switch (v->type) {
    case yajl_t_string:
        yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
        break;
    case yajl_t_number:
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
        break;
    case yajl_t_object:
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            yajl_gen_string(g, (const unsigned char *)v->u.object.keys[i],
                            strlen(v->u.object.keys[i]));
            gen_val(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
        break;
    case yajl_t_array:
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++)
            gen_val(g, v->u.array.values[i]);
        yajl_gen_array_close(g);
        break;
    case yajl_t_true:
        yajl_gen_bool(g, 1);
        break;
    case yajl_t_false:
        yajl_gen_bool(g, 0);
        break;
    default:
        yajl_gen_null(g);
        break;
    }
}

void val_to_json(yajl_val v, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!v)
        return;
    yajl_gen g = yajl_gen_alloc(NULL);
    gen_val(g, v);
    const unsigned char *out;
    size_t n;
    yajl_gen_get_buf(g, &out, &n);
    snprintf(buf, cap, "%.*s", (int)n, (const char *)out);
    yajl_gen_free(g);
}

void treply_cb(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct treply *t = data;
    t->called = true;
    t->calls++;
    t->rc = r->rc;
    t->id = r->id;
    snprintf(t->err_class, sizeof(t->err_class), "%s", r->err_class ? r->err_class : "");
    snprintf(t->err_desc, sizeof(t->err_desc), "%s", r->err_desc ? r->err_desc : "");
    snprintf(t->msg, sizeof(t->msg), "%s", r->err->msg);
    val_to_json(r->ret, t->ret_json, sizeof(t->ret_json));
    if (r->ret && r->ret->type == yajl_t_array)
        t->ret_array_len = r->ret->u.array.len;
    if (r->rc == 0)
        qmp_reply_add_fd(r, &t->fdset_id, &t->fd);
    if (t->pick) {
        const char *path[] = { t->pick, NULL };
        yajl_val s = yajl_tree_get(r->ret, path, yajl_t_string);
        snprintf(t->str, sizeof(t->str), "%s", s ? s->u.string : "");
    }
}

/* ---- the fake peer -------------------------------------------------------------------- */

static int wait_fd(int fd, short ev)
{
    struct pollfd pfd = { .fd = fd, .events = ev };
    int n;
    do {
        n = poll(&pfd, 1, 10000);
    } while (n < 0 && errno == EINTR);
    return n;
}

static void *fake_thread(void *arg)
{
    struct fake_peer *p = arg;
    if (wait_fd(p->lfd, POLLIN) <= 0)
        return NULL;
    int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return NULL;
    p->script(p, fd);
    close(fd);
    return NULL;
}

int fake_peer_start(struct fake_peer *p, fake_script_fn *script, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->lfd = -1;
    snprintf(p->dir, sizeof(p->dir), "/tmp/lsfake.XXXXXX");
    if (!mkdtemp(p->dir))
        return -errno;
    snprintf(p->path, sizeof(p->path), "%s/qmp.sock", p->dir);
    p->script = script;
    p->arg = arg;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    memcpy(sun.sun_path, p->path, strlen(p->path) + 1);   /* short: /tmp/lsfake.XXXXXX/qmp.sock */
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(p->lfd, 4) < 0 || pthread_create(&p->th, NULL, fake_thread, p) != 0) {
        int e = errno;
        if (p->lfd >= 0)
            close(p->lfd);
        unlink(p->path);
        rmdir(p->dir);
        return -e;
    }
    return 0;
}

void fake_peer_stop(struct fake_peer *p)
{
    /* Wakes a thread still waiting in accept (the client never came). */
    shutdown(p->lfd, SHUT_RDWR);
    pthread_join(p->th, NULL);
    close(p->lfd);
    unlink(p->path);
    rmdir(p->dir);
}

int fp_send_bytes(struct fake_peer *p, int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n > 0) {
        if (wait_fd(fd, POLLOUT) <= 0)
            return -ETIMEDOUT;
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            p->send_errno = errno;
            return -errno;
        }
        p->bytes_sent += (size_t)k;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

int fp_send(struct fake_peer *p, int fd, const char *s)
{
    return fp_send_bytes(p, fd, s, strlen(s));
}

int fp_send_bytewise(struct fake_peer *p, int fd, const char *s, unsigned delay_us)
{
    for (; *s; s++) {
        int rc = fp_send_bytes(p, fd, s, 1);
        if (rc < 0)
            return rc;
        usleep(delay_us);
    }
    return 0;
}

/* Length of the first complete JSON object in buf (after whitespace), or 0:
 * the client sends objects back to back, without newlines. */
static size_t object_len(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
        i++;
    int depth = 0;
    bool str = false, esc = false;
    for (; i < len; i++) {
        char ch = buf[i];
        if (str) {
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                str = false;
        } else if (ch == '"') {
            str = true;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if ((ch == '}' || ch == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

long long fp_read_cmd(struct fake_peer *p, int fd)
{
    for (;;) {
        size_t n = object_len(p->rbuf, p->rlen);
        if (n) {
            snprintf(p->last_cmd, sizeof(p->last_cmd), "%.*s", (int)n, p->rbuf);
            memmove(p->rbuf, p->rbuf + n, p->rlen - n);
            p->rlen -= n;
            char err[128];
            yajl_val v = yajl_tree_parse(p->last_cmd, err, sizeof(err));
            const char *path[] = { "id", NULL };
            yajl_val id = yajl_tree_get(v, path, yajl_t_number);
            long long r = id && YAJL_IS_INTEGER(id) ? YAJL_GET_INTEGER(id) : -1;
            yajl_tree_free(v);
            return r;
        }
        if (p->rlen == sizeof(p->rbuf) || wait_fd(fd, POLLIN) <= 0)
            return -1;
        ssize_t k = recv(fd, p->rbuf + p->rlen, sizeof(p->rbuf) - p->rlen, 0);
        if (k <= 0) {
            p->saw_eof = true;
            return -1;
        }
        p->rlen += (size_t)k;
    }
}

void fp_drain(struct fake_peer *p, int fd)
{
    char buf[4096];
    while (wait_fd(fd, POLLIN) > 0) {
        ssize_t k = recv(fd, buf, sizeof(buf), 0);
        if (k <= 0) {
            p->saw_eof = true;
            return;
        }
    }
}

int fp_handshake(struct fake_peer *p, int fd)
{
    if (fp_send(p, fd, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
                       "\"major\": 7}, \"package\": \"fake\"}, \"capabilities\": []}}\r\n") < 0)
        return -1;
    long long id = fp_read_cmd(p, fd);
    if (id < 0 || !strstr(p->last_cmd, "\"qmp_capabilities\""))
        return -1;
    char reply[128];
    snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %lld}\r\n", id);
    return fp_send(p, fd, reply);
}

void fp_script_good(struct fake_peer *p, int fd)
{
    if (fp_handshake(p, fd) < 0)
        return;
    long long id;
    while ((id = fp_read_cmd(p, fd)) >= 0) {
        char reply[128];
        snprintf(reply, sizeof(reply), "{\"return\": {\"ok\": true}, \"id\": %lld}\r\n", id);
        if (fp_send(p, fd, reply) < 0)
            return;
    }
}

bool good_roundtrip(struct tloop *l)
{
    struct fake_peer p;
    if (fake_peer_start(&p, fp_script_good, NULL) < 0)
        return false;
    struct tconn t;
    struct treply r = { 0 };
    bool ok = tconn_open(&t, l, p.path, 5000) == 0 &&
              qmp_exec(t.c, "query-status", NULL, treply_cb, &r) == 0 &&
              tloop_run_until(l, &r.called, TEST_HANG_MS) && r.rc == 0 &&
              strcmp(r.ret_json, "{\"ok\":true}") == 0;
    bool closed = t.c || t.done ? tconn_close(&t, l) : true;
    fake_peer_stop(&p);
    return ok && closed && t.done_rc == 0;
}
