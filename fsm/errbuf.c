/* fsm/errbuf.c - first-error recording (lockstep/errbuf.h): the engine keeps
 * each machine's first error in one, and every layer above reports through it. */
#include "lockstep/errbuf.h"

#include <stdio.h>
#include <string.h>

int ls_verr(struct ls_errbuf *e, int rc, const char *fmt, va_list ap)
{
    if (!e || e->rc != 0)
        return rc;
    e->rc = rc;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return rc;
}

int ls_err(struct ls_errbuf *e, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ls_verr(e, rc, fmt, ap);
    va_end(ap);
    return rc;
}

void ls_err_copy(struct ls_errbuf *dst, const struct ls_errbuf *src)
{
    if (!dst || !src || dst->rc != 0 || src->rc == 0)
        return;
    dst->rc = src->rc;
    memcpy(dst->msg, src->msg, sizeof(dst->msg));
}

void ls_err_append(struct ls_errbuf *e, const char *fmt, ...)
{
    if (!e || e->rc == 0)
        return;
    size_t used = strlen(e->msg);
    if (used + 1 >= sizeof(e->msg))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + used, sizeof(e->msg) - used, fmt, ap);
    va_end(ap);
}
