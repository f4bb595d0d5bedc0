/* lockstep/errbuf.h - the first error's code and reason, carried up to the user.
 *
 * Errors in lockstep are negative errno values; the reason says what was
 * wrong in words (byte offset, record type, what the peer did). Only the
 * first error is kept: later ones are usually consequences of it.
 */
#ifndef LOCKSTEP_ERRBUF_H
#define LOCKSTEP_ERRBUF_H

#include <stdarg.h>

#define LS_ERRBUF_LEN 512

struct ls_errbuf {
    int rc;                    /* 0, or the first negative errno recorded */
    char msg[LS_ERRBUF_LEN];
};

/* Record rc with a printf-style reason unless an error is already recorded.
 * Returns rc, so callers can write `return ls_err(e, -EINVAL, "...")`.
 * A NULL errbuf is allowed and records nothing. */
int ls_err(struct ls_errbuf *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ls_verr(struct ls_errbuf *e, int rc, const char *fmt, va_list ap);

/* Add to an error already recorded (rc unchanged): a consequence the user
 * must still hear of, e.g. that a failed save could not resume its guest. */
void ls_err_append(struct ls_errbuf *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copy src's error into dst if dst has none yet. */
void ls_err_copy(struct ls_errbuf *dst, const struct ls_errbuf *src);

static inline void ls_err_clear(struct ls_errbuf *e)
{
    e->rc = 0;
    e->msg[0] = '\0';
}

#endif
