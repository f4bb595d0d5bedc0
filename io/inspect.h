/* io/inspect.h - print a stream's records as text or JSON: the work behind
 * the public ls_inspect (lockstep/inspect.h says what it prints and returns). */
#ifndef LOCKSTEP_IO_INSPECT_H
#define LOCKSTEP_IO_INSPECT_H

#include <stdbool.h>
#include <stdio.h>

#include "lockstep/errbuf.h"

int stream_inspect(int fd, FILE *out, bool json, struct ls_errbuf *e);

#endif
