/* lockstep/inspect.h - `lockstep inspect`: decode and validate a saved stream.
 *
 * Reads fd to EOF (blocking read(), 1 MiB at a time), runs it through the
 * stream parser (format auto-detected: xl, libxl or bare libxc) and prints
 * every header and record with its offset, layer, type, length and decoded
 * fields, then a summary (records and pages by type, bytes, checkpoints, how
 * the stream ended). With json, prints one JSON document instead:
 *     {"records": [...], "summary": {...}, "error": "..." (only on failure)}.
 * On an invalid stream everything decoded before the error is printed and
 * the parser's error (negative errno, reason in e) is returned; a read error
 * returns its -errno. Returns 0 for a valid stream.
 */
#ifndef LOCKSTEP_INSPECT_H
#define LOCKSTEP_INSPECT_H

#include <stdbool.h>
#include <stdio.h>

#include "lockstep/errbuf.h"
#include "lockstep/version.h"

LS_BEGIN_DECLS

LS_API int ls_inspect(int fd, FILE *out, bool json, struct ls_errbuf *e);

LS_END_DECLS

#endif
