/* qmp/qmp_args.c - command arguments as a small tree, turned into JSON by
 * yajl_gen only when the command is sent, so every string is escaped and
 * checked for UTF-8 by the generator and nothing is ever pasted as text. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_internal.h"

enum qmp_arg_kind { ARG_OBJ, ARG_ARR, ARG_STR, ARG_INT, ARG_BOOL, ARG_DBL, ARG_NULL };

struct qmp_args {
    enum qmp_arg_kind kind;
    char *key;                       /* member name, NULL in arrays and at the root */
    struct qmp_args *next;           /* next sibling */
    struct qmp_args *first, *last;   /* children of objects and arrays */
    struct qmp_args *root;
    int err;                         /* root only: the first error */
    union {
        char *s;
        long long i;
        bool b;
        double d;
    } v;
};

/* Returned when allocation fails, so callers never see NULL: setters on it do
 * nothing and qmp_exec() reports -ENOMEM. Never written. */
static struct qmp_args args_oom = { .kind = ARG_OBJ, .root = &args_oom, .err = -ENOMEM };

struct qmp_args *qmp_args_new(void)
{
    struct qmp_args *a = calloc(1, sizeof(*a));
    if (!a)
        return &args_oom;
    a->kind = ARG_OBJ;
    a->root = a;
    return a;
}

static void args_free_node(struct qmp_args *a)
{
    struct qmp_args *ch = a->first;
    while (ch) {
        struct qmp_args *n = ch->next;
        args_free_node(ch);
        ch = n;
    }
    free(a->key);
    if (a->kind == ARG_STR)
        free(a->v.s);
    free(a);
}

void qmp_args_free(struct qmp_args *a)
{
    if (!a || a == &args_oom)
        return;
    args_free_node(a->root);
}

int qmp_args_error(const struct qmp_args *a)
{
    return a ? a->root->err : 0;
}

static void args_set_err(struct qmp_args *a, int rc)
{
    if (a->root != &args_oom && a->root->err == 0)
        a->root->err = rc;
}

/* A new child of a (object member when key is set, array element otherwise),
 * or NULL after recording why not. */
static struct qmp_args *args_add(struct qmp_args *a, const char *key, enum qmp_arg_kind kind)
{
    if (!a || a->root == &args_oom || a->root->err)
        return NULL;
    if ((a->kind == ARG_OBJ) != (key != NULL) || (a->kind != ARG_OBJ && a->kind != ARG_ARR)) {
        /* An object member without a name or an array element with one. */
        args_set_err(a, -EINVAL);
        return NULL;
    }
    struct qmp_args *n = calloc(1, sizeof(*n));
    if (!n || (key && !(n->key = strdup(key)))) {
        free(n);
        args_set_err(a, -ENOMEM);
        return NULL;
    }
    n->kind = kind;
    n->root = a->root;
    if (a->last)
        a->last->next = n;
    else
        a->first = n;
    a->last = n;
    return n;
}

void qmp_args_str(struct qmp_args *a, const char *key, const char *val)
{
    if (!val) {
        args_set_err(a, -EINVAL);
        return;
    }
    struct qmp_args *n = args_add(a, key, ARG_STR);
    if (n && !(n->v.s = strdup(val))) {
        n->kind = ARG_NULL;   /* keep the tree freeable */
        args_set_err(a, -ENOMEM);
    }
}

void qmp_args_int(struct qmp_args *a, const char *key, long long val)
{
    struct qmp_args *n = args_add(a, key, ARG_INT);
    if (n)
        n->v.i = val;
}

void qmp_args_bool(struct qmp_args *a, const char *key, bool val)
{
    struct qmp_args *n = args_add(a, key, ARG_BOOL);
    if (n)
        n->v.b = val;
}

void qmp_args_double(struct qmp_args *a, const char *key, double val)
{
    struct qmp_args *n = args_add(a, key, ARG_DBL);
    if (n)
        n->v.d = val;
}

void qmp_args_null(struct qmp_args *a, const char *key)
{
    args_add(a, key, ARG_NULL);
}

struct qmp_args *qmp_args_obj(struct qmp_args *a, const char *key)
{
    struct qmp_args *n = args_add(a, key, ARG_OBJ);
    return n ? n : &args_oom;
}

struct qmp_args *qmp_args_array(struct qmp_args *a, const char *key)
{
    struct qmp_args *n = args_add(a, key, ARG_ARR);
    return n ? n : &args_oom;
}

/* ---- generation ------------------------------------------------------------ */

static int gen_string(yajl_gen g, const char *s, const char *what, struct ls_errbuf *err)
{
    yajl_gen_status st = yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    if (st == yajl_gen_status_ok)
        return 0;
    if (st == yajl_gen_invalid_string)
        return ls_err(err, -EILSEQ, "QMP argument %s is not valid UTF-8", what);
    return ls_err(err, -ENOMEM, "generating QMP JSON for %s failed (yajl status %d)", what, st);
}

static int gen_node(yajl_gen g, const struct qmp_args *a, const char *name, struct ls_errbuf *err)
{
    yajl_gen_status st = yajl_gen_status_ok;
    int rc;
    switch (a->kind) {
    case ARG_OBJ:
    case ARG_ARR:
        st = a->kind == ARG_OBJ ? yajl_gen_map_open(g) : yajl_gen_array_open(g);
        if (st != yajl_gen_status_ok)
            break;
        for (const struct qmp_args *ch = a->first; ch; ch = ch->next) {
            const char *chname = ch->key ? ch->key : name;
            if (ch->key && (rc = gen_string(g, ch->key, "key", err)) < 0)
                return rc;
            if ((rc = gen_node(g, ch, chname, err)) < 0)
                return rc;
        }
        st = a->kind == ARG_OBJ ? yajl_gen_map_close(g) : yajl_gen_array_close(g);
        break;
    case ARG_STR: {
        char what[96];
        snprintf(what, sizeof(what), "'%s'", name);
        return gen_string(g, a->v.s, what, err);
    }
    case ARG_INT:
        st = yajl_gen_integer(g, a->v.i);
        break;
    case ARG_BOOL:
        st = yajl_gen_bool(g, a->v.b);
        break;
    case ARG_DBL:
        if (!isfinite(a->v.d))
            return ls_err(err, -EINVAL, "QMP argument '%s' is not a finite number", name);
        st = yajl_gen_double(g, a->v.d);
        break;
    case ARG_NULL:
        st = yajl_gen_null(g);
        break;
    }
    if (st != yajl_gen_status_ok)
        return ls_err(err, -ENOMEM, "generating QMP JSON for '%s' failed (yajl status %d)", name,
                      st);
    return 0;
}

static void gen_restart(yajl_gen g)
{
    yajl_gen_reset(g, NULL);
    yajl_gen_clear(g);
}

int qmp__gen_command(yajl_gen g, const char *cmd, const struct qmp_args *args, uint64_t id,
                     struct ls_errbuf *err)
{
    int rc;
    gen_restart(g);
    if (args && args->root->err)
        return ls_err(err, args->root->err, "building the arguments of QMP command '%s' failed: %s",
                      cmd, strerror(-args->root->err));
    if (yajl_gen_map_open(g) != yajl_gen_status_ok)
        return ls_err(err, -ENOMEM, "generating QMP JSON failed");
    if ((rc = gen_string(g, "execute", "key", err)) < 0 ||
        (rc = gen_string(g, cmd, "(the command name)", err)) < 0)
        return rc;
    if (args) {
        if ((rc = gen_string(g, "arguments", "key", err)) < 0 ||
            (rc = gen_node(g, args, "arguments", err)) < 0)
            return rc;
    }
    if ((rc = gen_string(g, "id", "key", err)) < 0)
        return rc;
    if (yajl_gen_integer(g, (long long)id) != yajl_gen_status_ok ||
        yajl_gen_map_close(g) != yajl_gen_status_ok)
        return ls_err(err, -ENOMEM, "generating QMP JSON failed");
    return 0;
}

int qmp_args_to_json(const struct qmp_args *a, char **out, size_t *len, struct ls_errbuf *err)
{
    *out = NULL;
    if (len)
        *len = 0;
    if (a->root->err)
        return ls_err(err, a->root->err, "building QMP arguments failed: %s",
                      strerror(-a->root->err));
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return ls_err(err, -ENOMEM, "out of memory");
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    int rc = gen_node(g, a, "arguments", err);
    if (rc == 0) {
        const unsigned char *buf;
        size_t n;
        yajl_gen_get_buf(g, &buf, &n);
        char *s = malloc(n + 1);
        if (!s) {
            rc = ls_err(err, -ENOMEM, "out of memory");
        } else {
            memcpy(s, buf, n);
            s[n] = '\0';
            *out = s;
            if (len)
                *len = n;
        }
    }
    yajl_gen_free(g);
    return rc;
}
