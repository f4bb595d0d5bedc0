/* cli/hist.c - see hist.h. */
#include "hist.h"

#define SUB (1u << HIST_SUB_BITS)

/* Values below SUB have a bucket each; above, the top HIST_SUB_BITS bits
 * after the leading one pick one of SUB buckets of the value's octave. */
static unsigned bucket(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);          /* >= HIST_SUB_BITS */
    unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (SUB - 1);
    return ((e - HIST_SUB_BITS + 1) << HIST_SUB_BITS) + sub;
}

/* The middle of bucket b's range. */
static uint64_t middle(unsigned b)
{
    if (b < SUB)
        return b;
    unsigned e = (b >> HIST_SUB_BITS) + HIST_SUB_BITS - 1, sub = b & (SUB - 1);
    uint64_t lo = ((uint64_t)(SUB + sub)) << (e - HIST_SUB_BITS);
    return lo + (((uint64_t)1 << (e - HIST_SUB_BITS)) >> 1);
}

void hist_add(struct hist *h, uint64_t v)
{
    h->count[bucket(v)]++;
    h->n++;
}

uint64_t hist_pct(const struct hist *h, double p)
{
    if (!h->n)
        return 0;
    /* the nearest rank, counted from 1 */
    uint64_t rank = (uint64_t)(p / 100.0 * (double)(h->n - 1) + 0.5) + 1, seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += h->count[b];
        if (seen >= rank)
            return middle(b);
    }
    return middle(HIST_BUCKETS - 1);
}
