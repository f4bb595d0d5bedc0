/* lockstep/errbuf.h - the first error's code and reason, carried up to the user.
 *
 * Errors in lockstep are negative errno values; the reason says what was
 * wrong in words (byte offset, record type, what the peer did). Only the
 * first error is kept: later ones are usually consequences of it.
 */
#ifndef LOCKSTEP_ERRBUF_H
#define LOCKSTEP_ERRBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "lockstep/version.h"

LS_BEGIN_DECLS

#define LS_ERRBUF_LEN 512

struct ls_errbuf {
    int rc;                    /* 0, or the first negative errno recorded */
    char msg[LS_ERRBUF_LEN];
};

/* These helpers are inline: an error buffer is a plain value the caller
 * owns, so they are not library symbols and cannot break the ABI. */

/* Record rc with a printf-style reason unless an error is already recorded.
 * Returns rc, so callers can write `return ls_verr(e, -EINVAL, fmt, ap)`.
 * A NULL errbuf is allowed and records nothing. */
static inline int ls_verr(struct ls_errbuf *e, int rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static inline int ls_verr(struct ls_errbuf *e, int rc, const char *fmt, va_list ap)
{
    if (!e || e->rc != 0)
        return rc;
    e->rc = rc;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return rc;
}

/* As ls_verr: `return ls_err(e, -EINVAL, "...")`. */
static inline int ls_err(struct ls_errbuf *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int ls_err(struct ls_errbuf *e, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ls_verr(e, rc, fmt, ap);
    va_end(ap);
    return rc;
}

/* Add to an error already recorded (rc unchanged): a consequence the user
 * must still hear of, e.g. that a failed save could not resume its guest. */
static inline void ls_err_append(struct ls_errbuf *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void ls_err_append(struct ls_errbuf *e, const char *fmt, ...)
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

/* Copy src's error into dst if dst has none yet. */
static inline void ls_err_copy(struct ls_errbuf *dst, const struct ls_errbuf *src)
{
    if (!dst || !src || dst->rc != 0 || src->rc == 0)
        return;
    dst->rc = src->rc;
    memcpy(dst->msg, src->msg, sizeof(dst->msg));
}

static inline void ls_err_clear(struct ls_errbuf *e)
{
    e->rc = 0;
    e->msg[0] = '\0';
}

LS_END_DECLS

#endif
