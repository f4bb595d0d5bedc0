/* qmp/qmp_json.c - JSON text in and out of the client's types, for callers
 * that speak JSON text (lockstep/qmp.h): arguments parsed into a qmp_args
 * tree (so the generator still escapes every string it sends), and a reply's
 * value written back as text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp.h"

#define ARGS_MAX_DEPTH 32

static int args_add_value(struct qmp_args *a, const char *key, yajl_val v, unsigned depth)
{
    if (depth > ARGS_MAX_DEPTH)
        return -EMSGSIZE;
    if (YAJL_IS_OBJECT(v) || YAJL_IS_ARRAY(v)) {
        bool obj = YAJL_IS_OBJECT(v);
        struct qmp_args *n = obj ? qmp_args_obj(a, key) : qmp_args_array(a, key);
        size_t len = obj ? v->u.object.len : v->u.array.len;
        for (size_t i = 0; i < len; i++) {
            int rc = args_add_value(n, obj ? v->u.object.keys[i] : NULL,
                                    obj ? v->u.object.values[i] : v->u.array.values[i], depth + 1);
            if (rc < 0)
                return rc;
        }
    } else if (YAJL_IS_STRING(v)) {
        qmp_args_str(a, key, v->u.string);
    } else if (YAJL_IS_INTEGER(v)) {
        qmp_args_int(a, key, YAJL_GET_INTEGER(v));
    } else if (YAJL_IS_DOUBLE(v)) {
        qmp_args_double(a, key, YAJL_GET_DOUBLE(v));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        qmp_args_bool(a, key, YAJL_IS_TRUE(v));
    } else if (YAJL_IS_NULL(v)) {
        qmp_args_null(a, key);
    } else {
        return -EINVAL;   /* a number yajl could not hold */
    }
    return 0;
}

int qmp_args_from_json(const char *json, struct qmp_args **out, struct ls_errbuf *err)
{
    *out = NULL;
    char why[256] = "";
    yajl_val root = yajl_tree_parse(json, why, sizeof(why));
    if (!root)
        return ls_err(err, -EINVAL, "QMP arguments are not JSON: %s", why);
    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return ls_err(err, -EINVAL, "QMP arguments must be a JSON object");
    }
    struct qmp_args *a = qmp_args_new();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < root->u.object.len; i++)
        rc = args_add_value(a, root->u.object.keys[i], root->u.object.values[i], 1);
    yajl_tree_free(root);
    if (rc == 0)
        rc = qmp_args_error(a);
    if (rc < 0) {
        qmp_args_free(a);
        return ls_err(err, rc, "QMP arguments: %s", rc == -EMSGSIZE ? "nested too deep"
                                                                    : strerror(-rc));
    }
    *out = a;
    return 0;
}

static yajl_gen_status gen_value(yajl_gen g, yajl_val v)
{
    yajl_gen_status st;
    if (YAJL_IS_OBJECT(v)) {
        if ((st = yajl_gen_map_open(g)) != yajl_gen_status_ok)
            return st;
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            if ((st = yajl_gen_string(g, (const unsigned char *)k, strlen(k))) != yajl_gen_status_ok ||
                (st = gen_value(g, v->u.object.values[i])) != yajl_gen_status_ok)
                return st;
        }
        return yajl_gen_map_close(g);
    }
    if (YAJL_IS_ARRAY(v)) {
        if ((st = yajl_gen_array_open(g)) != yajl_gen_status_ok)
            return st;
        for (size_t i = 0; i < v->u.array.len; i++)
            if ((st = gen_value(g, v->u.array.values[i])) != yajl_gen_status_ok)
                return st;
        return yajl_gen_array_close(g);
    }
    if (YAJL_IS_STRING(v))
        return yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
    if (YAJL_IS_NUMBER(v))   /* as QEMU wrote it */
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
        return yajl_gen_bool(g, YAJL_IS_TRUE(v));
    return yajl_gen_null(g);
}

int qmp_value_to_json(yajl_val v, yajl_gen g, const char **out, size_t *len)
{
    yajl_gen_reset(g, NULL);
    yajl_gen_clear(g);
    if (gen_value(g, v) != yajl_gen_status_ok)
        return -ENOMEM;
    const unsigned char *buf;
    yajl_gen_get_buf(g, &buf, len);
    *out = (const char *)buf;
    return 0;
}
