/* qmp/qmp_cmd.c - commands in flight, replies, deadlines, events.
 *
 * Every command carries an integer "id" that QEMU echoes in its reply; the
 * pending list is in send order and QEMU answers in order, so the match is
 * almost always the head. Ids are the smallest number not in use, not a
 * counter: QEMU 7.2's monitor reads its socket one byte per main-loop
 * iteration (about 10 us a byte here), so "id":1 instead of "id":123456 is a
 * measurable share of a command's round trip. An id is in use while its
 * command is pending, and after a timeout until its late reply comes (then
 * counted and dropped), so a reply can never be matched to the wrong
 * command. A reply naming an id not in use is a protocol error.
 *
 * One uv timer serves every deadline: it is armed for the earliest one, and
 * re-armed for the next when it fires (completions do not touch it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qmp/qmp_internal.h"

static yajl_val obj_get(yajl_val o, const char *key)
{
    if (!o || o->type != yajl_t_object)
        return NULL;
    for (size_t i = 0; i < o->u.object.len; i++)
        if (strcmp(o->u.object.keys[i], key) == 0)
            return o->u.object.values[i];
    return NULL;
}

static const char *obj_str(yajl_val o, const char *key)
{
    yajl_val v = obj_get(o, key);
    return v && v->type == yajl_t_string ? v->u.string : NULL;
}

/* ---- the pending list --------------------------------------------------------- */

static void pend_append(struct qmp_conn *c, struct qmp_cmd *k)
{
    k->next = NULL;
    k->prev = c->pend_tail;
    if (c->pend_tail)
        c->pend_tail->next = k;
    else
        c->pend_head = k;
    c->pend_tail = k;
    c->npending++;
}

static void pend_unlink(struct qmp_conn *c, struct qmp_cmd *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        c->pend_head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        c->pend_tail = k->prev;
    k->prev = k->next = NULL;
    c->npending--;
}

/* ---- ids ------------------------------------------------------------------------ */

static bool id_bit(const uint64_t *bits, size_t words, uint64_t id)
{
    return id / 64 < words && (bits[id / 64] >> (id % 64)) & 1;
}

static void id_clear(uint64_t *bits, size_t words, uint64_t id)
{
    if (id / 64 < words)
        bits[id / 64] &= ~(1ull << (id % 64));
}

/* The smallest id not in use (0 is never used). Returns 0 or -ENOMEM. */
static int id_alloc(struct qmp_conn *c, uint64_t *id)
{
    for (size_t w = 0; w < c->id_words; w++) {
        uint64_t used = c->id_used[w] | (w == 0);
        if (~used) {
            unsigned b = (unsigned)__builtin_ctzll(~used);
            c->id_used[w] |= 1ull << b;
            *id = w * 64 + b;
            return 0;
        }
    }
    size_t words = c->id_words ? c->id_words * 2 : 1;
    uint64_t *used = realloc(c->id_used, words * sizeof(*used));
    if (!used)
        return -ENOMEM;
    c->id_used = used;
    uint64_t *late = realloc(c->id_late, words * sizeof(*late));
    if (!late)
        return -ENOMEM;
    c->id_late = late;
    memset(used + c->id_words, 0, (words - c->id_words) * sizeof(*used));
    memset(late + c->id_words, 0, (words - c->id_words) * sizeof(*late));
    c->id_words = words;
    return id_alloc(c, id);
}

static void id_release(struct qmp_conn *c, uint64_t id)
{
    id_clear(c->id_used, c->id_words, id);
    id_clear(c->id_late, c->id_words, id);
}

void qmp__ids_free(struct qmp_conn *c)
{
    free(c->id_used);
    free(c->id_late);
    c->id_used = c->id_late = NULL;
    c->id_words = 0;
}

static void cmd_timer_arm(struct qmp_conn *c, uint64_t deadline)
{
    if (qmp__tearing_down(c) || (c->cmd_timer_due && c->cmd_timer_due <= deadline))
        return;
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->cmd_timer, qmp__cmd_timer_cb, deadline > now ? deadline - now : 0, 0);
    c->cmd_timer_due = deadline;
}

/* Complete k (already unlinked) with an error and free it. */
static void cmd_fail(struct qmp_conn *c, struct qmp_cmd *k, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cmd_fail(struct qmp_conn *c, struct qmp_cmd *k, int rc, const char *fmt, ...)
{
    struct ls_errbuf eb = { 0 };
    va_list ap;
    va_start(ap, fmt);
    ls_verr(&eb, rc, fmt, ap);
    va_end(ap);
    struct qmp_reply r = { .rc = rc, .id = k->id, .command = k->name, .err = &eb };
    k->cb(c, &r, k->data);
    free(k);
}

void qmp__fail_pending(struct qmp_conn *c, int rc, const char *reason)
{
    /* -EREMOTEIO says QEMU answered the command with an error; these got
     * no answer (QEMU refused qmp_capabilities, which ended the connection),
     * and a caller taking it for the command's own refusal would go on. */
    if (rc == -EREMOTEIO)
        rc = -EPROTO;
    while (c->pend_head) {
        struct qmp_cmd *k = c->pend_head;
        pend_unlink(c, k);
        cmd_fail(c, k, rc, "QMP command '%s' (id %llu) got no reply: %s", k->name,
                 (unsigned long long)k->id, reason);
    }
}

void qmp__cmd_timer_cb(uv_timer_t *t)
{
    struct qmp_conn *c = t->data;
    c->cmd_timer_due = 0;
    uint64_t now = uv_now(c->loop);
    struct qmp_cmd *k = c->pend_head, *next;
    for (; k; k = next) {
        /* Callbacks may append commands (visited, not yet due) but nothing
         * else removes entries while this runs: replies come from the read
         * callback, failures from a dispatch. */
        next = k->next;
        if (k->deadline > now)
            continue;
        pend_unlink(c, k);
        c->id_late[k->id / 64] |= 1ull << (k->id % 64);   /* its reply may still come */
        cmd_fail(c, k, -ETIMEDOUT, "no reply to QMP command '%s' (id %llu) from %s within %u ms",
                 k->name, (unsigned long long)k->id, c->where, k->timeout_ms);
    }
    uint64_t due = 0;
    for (k = c->pend_head; k; k = k->next)
        if (!due || k->deadline < due)
            due = k->deadline;
    if (due)
        cmd_timer_arm(c, due);
}

/* ---- submitting ---------------------------------------------------------------- */

int qmp__submit(struct qmp_conn *c, const char *cmd, struct qmp_args *args,
                const struct qmp_exec_opts *o, bool gated, qmp_reply_fn *cb, void *data)
{
    struct ls_errbuf *err = o ? o->err : NULL;
    int rc;
    if (!cmd || !cb) {
        qmp_args_free(args);
        return ls_err(err, -EINVAL, "qmp_exec: command name and callback are required");
    }
    if (qmp__tearing_down(c)) {
        qmp_args_free(args);
        return ls_err(err, -ESHUTDOWN, "QMP connection to %s is closing; '%s' was not sent",
                      c->where, cmd);
    }
    int fd = -1;
    if (o && o->send_fd) {
        if (c->tcp) {
            qmp_args_free(args);
            return ls_err(err, -EOPNOTSUPP, "'%s': passing an fd needs a unix socket, and %s is TCP",
                          cmd, c->where);
        }
        fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            rc = -errno;
            qmp_args_free(args);
            return ls_err(err, rc, "'%s': cannot duplicate fd %d to pass it: %s", cmd, o->fd,
                          strerror(-rc));
        }
    }
    size_t nlen = strlen(cmd);
    struct qmp_cmd *k = malloc(sizeof(*k) + nlen + 1);
    if (!k) {
        rc = ls_err(err, -ENOMEM, "out of memory queueing QMP command '%s'", cmd);
        goto fail;
    }
    memcpy(k->name, cmd, nlen + 1);
    if (id_alloc(c, &k->id) < 0) {
        free(k);
        rc = ls_err(err, -ENOMEM, "out of memory queueing QMP command '%s'", cmd);
        goto fail;
    }
    rc = qmp__gen_command(c->gen, cmd, args, k->id, err);
    if (rc < 0) {
        id_release(c, k->id);
        free(k);
        goto fail;
    }
    qmp_args_free(args);
    args = NULL;
    k->timeout_ms = o && o->timeout_ms ? o->timeout_ms : c->cmd_timeout_ms;
    k->deadline = uv_now(c->loop) + k->timeout_ms;
    k->flags = o ? o->flags : 0;
    k->hmp = strcmp(cmd, "human-monitor-command") == 0;
    k->cb = cb;
    k->data = data;

    const unsigned char *json;
    size_t jlen;
    yajl_gen_get_buf(c->gen, &json, &jlen);
    /* No newline after the object: QEMU's parser does not need one, and it
     * would cost QEMU one more read. */
    struct iovec iov = { (void *)json, jlen };
    pend_append(c, k);
    rc = qmp__tx(c, &iov, 1, fd, gated);
    fd = -1;   /* qmp__tx owns it now */
    if (rc < 0) {
        pend_unlink(c, k);
        id_release(c, k->id);
        free(k);
        return ls_err(err, rc, "out of memory queueing QMP command '%s'", cmd);
    }
    cmd_timer_arm(c, k->deadline);
    return 0;
fail:
    qmp_args_free(args);
    if (fd >= 0)
        close(fd);
    return rc;
}

int qmp_exec_ex(struct qmp_conn *c, const char *cmd, struct qmp_args *args,
                const struct qmp_exec_opts *o, qmp_reply_fn *cb, void *data)
{
    return qmp__submit(c, cmd, args, o, true, cb, data);
}

int qmp_exec(struct qmp_conn *c, const char *cmd, struct qmp_args *args, qmp_reply_fn *cb,
             void *data)
{
    return qmp__submit(c, cmd, args, NULL, true, cb, data);
}

int qmp_hmp(struct qmp_conn *c, const char *cmdline, qmp_reply_fn *cb, void *data)
{
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "command-line", cmdline);
    return qmp_exec(c, "human-monitor-command", a, cb, data);
}

int qmp_add_fd(struct qmp_conn *c, int fd, int fdset_id, const char *opaque, qmp_reply_fn *cb,
               void *data)
{
    struct qmp_args *a = qmp_args_new();
    if (fdset_id >= 0)
        qmp_args_int(a, "fdset-id", fdset_id);
    if (opaque)
        qmp_args_str(a, "opaque", opaque);
    struct qmp_exec_opts o = { .send_fd = true, .fd = fd };
    return qmp_exec_ex(c, "add-fd", a, &o, cb, data);
}

int qmp_getfd(struct qmp_conn *c, int fd, const char *name, qmp_reply_fn *cb, void *data)
{
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "fdname", name);
    struct qmp_exec_opts o = { .send_fd = true, .fd = fd };
    return qmp_exec_ex(c, "getfd", a, &o, cb, data);
}

int qmp_reply_add_fd(const struct qmp_reply *r, long long *fdset_id, long long *fd)
{
    if (r->rc != 0)
        return -EPROTO;
    yajl_val set = obj_get(r->ret, "fdset-id"), f = obj_get(r->ret, "fd");
    if (!set || !YAJL_IS_INTEGER(set) || !f || !YAJL_IS_INTEGER(f))
        return -EPROTO;
    *fdset_id = YAJL_GET_INTEGER(set);
    *fd = YAJL_GET_INTEGER(f);
    return 0;
}

/* ---- replies -------------------------------------------------------------------- */

static void cmd_reply(struct qmp_conn *c, struct qmp_cmd *k, yajl_val msg, yajl_val ret,
                      yajl_val errv)
{
    struct ls_errbuf eb = { 0 };
    struct qmp_reply r = { .id = k->id, .command = k->name, .msg = msg, .ret = ret, .err = &eb };
    if (errv) {
        r.err_class = obj_str(errv, "class");
        r.err_desc = obj_str(errv, "desc");
        r.ret = NULL;
        r.rc = ls_err(&eb, -EREMOTEIO, "QMP command '%s' failed: %s: %s", k->name,
                      r.err_class ? r.err_class : "(no class)",
                      r.err_desc ? r.err_desc : "(no description)");
    } else if (k->hmp && !(k->flags & QMP_EXEC_HMP_OUTPUT_OK) && ret &&
               ret->type == yajl_t_string && ret->u.string[0]) {
        /* HMP has no error object: a failing command prints its reason. */
        size_t n = strlen(ret->u.string);
        while (n > 0 && (ret->u.string[n - 1] == '\n' || ret->u.string[n - 1] == '\r'))
            n--;
        r.err_class = "HMPError";
        r.err_desc = ret->u.string;
        r.rc = ls_err(&eb, -EREMOTEIO, "human-monitor-command failed: %.*s", (int)n,
                      ret->u.string);
    }
    c->stats.replies++;
    k->cb(c, &r, k->data);
    free(k);
}

static void handle_reply(struct qmp_conn *c, yajl_val msg, yajl_val ret, yajl_val errv)
{
    yajl_val idv = obj_get(msg, "id");
    if (!idv || !YAJL_IS_INTEGER(idv) || YAJL_GET_INTEGER(idv) <= 0) {
        const char *desc = obj_str(errv, "desc");
        qmp__io_fail(c, -EPROTO, "QMP reply from %s carries no id this client could have sent%s%s",
                     c->where, desc ? "; its error: " : "", desc ? desc : "");
        return;
    }
    uint64_t id = (uint64_t)YAJL_GET_INTEGER(idv);
    for (struct qmp_cmd *k = c->pend_head; k; k = k->next) {
        if (k->id == id) {
            pend_unlink(c, k);
            id_release(c, id);
            cmd_reply(c, k, msg, ret, errv);
            return;
        }
    }
    if (id_bit(c->id_late, c->id_words, id)) {
        c->stats.late_replies++;   /* the command timed out; its reply came anyway */
        id_release(c, id);
        return;
    }
    qmp__io_fail(c, -EPROTO, "QMP reply from %s has id %llu, which is not awaiting a reply",
                 c->where, (unsigned long long)id);
}

/* ---- events --------------------------------------------------------------------- */

static bool sub_matches(const struct qmp_sub *s, const char *name)
{
    if (s->all)
        return true;
    if (s->prefix)
        return strncmp(name, s->name, s->name_len) == 0;
    return strcmp(name, s->name) == 0;
}

static void subs_sweep(struct qmp_conn *c)
{
    struct qmp_sub **pp = &c->subs;
    while (*pp) {
        struct qmp_sub *s = *pp;
        if (s->dead) {
            *pp = s->next;
            free(s);
        } else {
            pp = &s->next;
        }
    }
}

static void handle_event(struct qmp_conn *c, yajl_val msg, const char *name)
{
    yajl_val ts = obj_get(msg, "timestamp");
    yajl_val sec = obj_get(ts, "seconds"), usec = obj_get(ts, "microseconds");
    struct qmp_event ev = {
        .name = name,
        .data = obj_get(msg, "data"),
        .seconds = sec && YAJL_IS_INTEGER(sec) ? YAJL_GET_INTEGER(sec) : -1,
        .microseconds = usec && YAJL_IS_INTEGER(usec) ? YAJL_GET_INTEGER(usec) : -1,
        .msg = msg,
    };
    uint64_t seq = ++c->stats.events;
    c->sub_walkers++;
    for (struct qmp_sub *s = c->subs; s; s = s->next) {
        /* since < seq: subscribers added by a callback start with the next event */
        if (!s->dead && s->since < seq && sub_matches(s, name))
            s->cb(c, &ev, s->data);
    }
    c->sub_walkers--;
    if (c->sub_walkers == 0)
        subs_sweep(c);
}

int qmp_subscribe(struct qmp_conn *c, const char *event, qmp_event_fn *cb, void *data)
{
    if (!cb)
        return -EINVAL;
    if (!event)
        event = "*";
    size_t n = strlen(event);
    struct qmp_sub *s = calloc(1, sizeof(*s) + n + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s->name, event, n + 1);
    s->all = strcmp(event, "*") == 0;
    s->prefix = !s->all && n > 0 && event[n - 1] == '*';
    s->name_len = s->prefix ? n - 1 : n;
    s->cb = cb;
    s->data = data;
    s->since = c->stats.events;
    s->id = ++c->next_sub_id;
    struct qmp_sub **pp = &c->subs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    return s->id;
}

int qmp_unsubscribe(struct qmp_conn *c, int sub_id)
{
    for (struct qmp_sub **pp = &c->subs; *pp; pp = &(*pp)->next) {
        struct qmp_sub *s = *pp;
        if (s->id != sub_id || s->dead)
            continue;
        if (c->sub_walkers) {
            s->dead = true;
        } else {
            *pp = s->next;
            free(s);
        }
        return 0;
    }
    return -ENOENT;
}

void qmp__subs_free(struct qmp_conn *c)
{
    while (c->subs) {
        struct qmp_sub *s = c->subs;
        c->subs = s->next;
        free(s);
    }
}

/* ---- one message ------------------------------------------------------------------ */

static void handle_greeting(struct qmp_conn *c, yajl_val msg)
{
    yajl_val qmp = obj_get(msg, "QMP");
    if (!qmp || qmp->type != yajl_t_object) {
        qmp__io_fail(c, -EPROTO, "QMP peer %s did not start with a greeting "
                     "(its first message has no \"QMP\" object)", c->where);
        return;
    }
    yajl_val q = obj_get(obj_get(qmp, "version"), "qemu");
    yajl_val ma = obj_get(q, "major"), mi = obj_get(q, "minor"), mc = obj_get(q, "micro");
    if (ma && mi && mc && YAJL_IS_INTEGER(ma) && YAJL_IS_INTEGER(mi) && YAJL_IS_INTEGER(mc))
        snprintf(c->version, sizeof(c->version), "%lld.%lld.%lld", YAJL_GET_INTEGER(ma),
                 YAJL_GET_INTEGER(mi), YAJL_GET_INTEGER(mc));
    /* nothing more is read until the GREETING row, which reads in the
     * state it enters (conn_read, greeting_taken) */
    c->reading = false;
    qmp__poll_update(c);
    fsm_post(&c->fsm, QMP_CONN_E_GREETING, 0, NULL);
}

void qmp__handle_msg(struct qmp_conn *c, yajl_val msg)
{
    if (c->fsm.state == QMP_CONN_S_AWAIT_GREETING) {
        handle_greeting(c, msg);
        return;
    }
    yajl_val ev = obj_get(msg, "event");
    if (ev) {
        if (ev->type != yajl_t_string) {
            qmp__io_fail(c, -EPROTO, "QMP event from %s has a non-string name", c->where);
            return;
        }
        handle_event(c, msg, ev->u.string);
        return;
    }
    yajl_val ret = obj_get(msg, "return"), errv = obj_get(msg, "error");
    if (ret || errv) {
        handle_reply(c, msg, ret, errv);
        return;
    }
    qmp__io_fail(c, -EPROTO, "QMP message from %s is neither a reply nor an event", c->where);
}
