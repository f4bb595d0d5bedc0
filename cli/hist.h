/* cli/hist.h - percentiles of a stream of durations in bounded memory.
 *
 * A COLO pair runs for days at hundreds of checkpoints a second: keeping
 * every pause to sort for a median grows without end (8 bytes a checkpoint,
 * 138 MB a day at 200/s) and costs a sort per status line. Log-linear buckets
 * instead (as HdrHistogram lays them out): 32 per power of two, so a
 * percentile is exact to within 1/64 of its value, in 15 KiB for any count. */
#ifndef LOCKSTEP_CLI_HIST_H
#define LOCKSTEP_CLI_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

struct hist {
    uint64_t n;
    uint64_t count[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);
/* The p-th percentile (0..100) of the values added (nearest rank, the
 * bucket's middle), 0 when none was. */
uint64_t hist_pct(const struct hist *h, double p);

#endif
