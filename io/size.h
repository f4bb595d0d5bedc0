/* io/size.h - sizes as the command line, the daemon and the benchmarks take
 * them: one parser (lockstep/lockstep.h's ls_parse_size). Plain libc, so
 * lockstep-simd compiles it too. */
#ifndef LOCKSTEP_IO_SIZE_H
#define LOCKSTEP_IO_SIZE_H

#include <stdint.h>

/* Decimal digits, then nothing (bytes) or K, M, G, T (either case, powers of
 * 1024), optionally followed by "iB", "i" or "B". 0, -EINVAL (not a size),
 * or -ERANGE (over 2^64 - 1 bytes). */
int io_parse_size(const char *s, uint64_t *bytes);

#endif
