/* lib/qmp.c - lockstep/qmp.h over the QMP client of qmp/: JSON text at the
 * edges, the client's callbacks inside. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp.h"
#include "states/op.h"
#include "lockstep/qmp.h"

struct ls_qmp {
    struct qmp_conn *c;
    yajl_gen gen;                /* writes replies' values back as text */
    struct ls_qmp_opts o;
};

struct ls_qmp_call {
    struct ls_qmp *q;
    ls_qmp_reply_fn *cb;
    void *data;
};

static void on_ready(struct qmp_conn *c, void *data)
{
    struct ls_qmp *q = data;
    if (q->o.ready)
        q->o.ready(q, 0, NULL, q->o.data);
}

static void on_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct ls_qmp *q = data;
    if (q->o.closed)
        q->o.closed(q, rc, rc ? err->msg : NULL, q->o.data);
    yajl_gen_free(q->gen);
    free(q);
}

int ls_qmp_open(struct ls_ctx *ctx, const char *path, const struct ls_qmp_opts *o,
                struct ls_qmp **out, struct ls_errbuf *err)
{
    *out = NULL;
    struct ls_qmp *q = calloc(1, sizeof(*q));
    if (q)
        q->gen = yajl_gen_alloc(NULL);
    if (!q || !q->gen) {
        free(q);
        return ls_err(err, -ENOMEM, "out of memory");
    }
    if (o)
        q->o = *o;
    struct qmp_conn_opts co = { .name = "ls_qmp", .setup_timeout_ms = q->o.setup_timeout_ms,
                                .cmd_timeout_ms = q->o.cmd_timeout_ms,
                                .retry_connect = q->o.retry_connect, .ready = on_ready,
                                .done = on_done, .data = q };
    int rc = qmp_conn_open_unix(&ctx->sched, path, &co, &q->c);
    if (rc < 0) {
        yajl_gen_free(q->gen);
        free(q);
        return ls_err(err, rc, "QMP socket %s: %s", path, uv_strerror(rc));
    }
    *out = q;
    return 0;
}

static void on_reply(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct ls_qmp_call *k = data;
    const char *text = NULL;
    size_t len;
    int rc = r->rc;
    if (rc == 0 && qmp_value_to_json(r->ret, k->q->gen, &text, &len) < 0)
        rc = -ENOMEM;
    k->cb(k->q, rc, rc ? NULL : text, rc ? (r->rc ? r->err->msg : "out of memory") : NULL,
          k->data);
    free(k);
}

int ls_qmp_exec(struct ls_qmp *q, const char *cmd, const char *args_json, ls_qmp_reply_fn *cb,
                void *data, struct ls_errbuf *err)
{
    struct qmp_args *args = NULL;
    int rc;
    if (args_json && (rc = qmp_args_from_json(args_json, &args, err)) < 0)
        return rc;
    struct ls_qmp_call *k = malloc(sizeof(*k));
    if (!k) {
        qmp_args_free(args);
        return ls_err(err, -ENOMEM, "out of memory");
    }
    *k = (struct ls_qmp_call){ .q = q, .cb = cb, .data = data };
    /* QEMU's return as it is: HMP output is the caller's to read */
    struct qmp_exec_opts eo = { .flags = QMP_EXEC_HMP_OUTPUT_OK, .err = err };
    if ((rc = qmp_exec_ex(q->c, cmd, args, &eo, on_reply, k)) < 0) {
        free(k);
        if (err && !err->rc)
            ls_err(err, rc, "QMP command '%s': %s", cmd, strerror(-rc));
    }
    return rc;
}

void ls_qmp_close(struct ls_qmp *q)
{
    qmp_conn_close(q->c);
}
