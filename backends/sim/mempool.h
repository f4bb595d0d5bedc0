/* backends/sim/mempool.h - the sim host's free memory, kept allocated.
 *
 * A Xen host's memory belongs to Xen: a new domain's pages come from its
 * heap, already backed and scrubbed, so building or restoring a domain costs
 * no fresh allocation. The sim daemon allocates each domain's memory as a
 * fresh memfd, and on a nested VM fresh pages are expensive (0.3-0.4 s per
 * GiB populated in bulk here, ten times that touched one by one). With a pool
 * capacity (lockstep-simd --memory-pool SIZE), the daemon plays Xen's heap:
 * when a domain is destroyed, its memory is freed and a new memfd of the same
 * size and layout is allocated in the background, ready for the next domain.
 *
 * The destroyed domain's own memfd is never handed on: a client that still
 * holds it (a mapping about to be retired, an fd of a killed restore) must
 * not see or write the next domain's pages, so only memory the daemon has
 * never given out goes into the pool. Capacity 0 (the default) turns the pool
 * off: every domain gets fresh memory, as before.
 */
#ifndef LOCKSTEP_SIM_MEMPOOL_H
#define LOCKSTEP_SIM_MEMPOOL_H

#include <stdint.h>

/* Bytes of pool memory (ready and being allocated) the daemon may hold. */
void sim_pool_set_capacity(uint64_t bytes);

/* A memfd of exactly `bytes` from the pool, its pages allocated and zero, or
 * -1 when no pooled memfd is at least that big (the caller makes a fresh
 * one). Picks the smallest that fits; a bigger one is cut to size. */
int sim_pool_take(uint64_t bytes);

/* Called when a domain's memory is released: records the layout of
 * `old_memfd` (its allocated ranges) before the caller closes it. Returns a
 * refill to run after the close (sim_pool_refill), or NULL when the pool is
 * off or the layout does not fit beside the refills still allocating. The
 * oldest ready memfds make room for it (the refill closes them). */
struct sim_pool_refill *sim_pool_plan_refill(int old_memfd);

/* The bytes a refill will allocate. */
uint64_t sim_pool_refill_bytes(const struct sim_pool_refill *r);

/* Allocates a new memfd in the recorded layout and adds it to the pool;
 * slow (the point), so run it on the releasing thread. Frees `r`. Returns
 * 0, or a negative errno when the memory could not be had (the pool stays
 * as it was: the next domain gets fresh memory). */
int sim_pool_refill(struct sim_pool_refill *r);

/* Pooled memfds ready, refills still allocating, and memfds taken so far. */
void sim_pool_stats(uint32_t *ready, uint32_t *filling, uint64_t *ready_bytes, uint32_t *taken);

/* Closes every pooled memfd (daemon exit). */
void sim_pool_drain(void);

#endif
