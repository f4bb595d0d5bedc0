/* backends/sim/sim.h - the simulated-Xen backend, client side (internal).
 *
 * The public part (creating and driving sim domains) is lockstep/sim.h.
 * ls_sim_open() connects to lockstep-simd, starting it when it is not
 * running (see lockstep/sim.h for where it is found). The returned backend
 * implements every struct ls_backend_ops function; all calls are
 * thread-safe (one connection, one request at a time). The memory task maps
 * guest memory straight from the daemon (memfds over SCM_RIGHTS), as Xen's
 * privcmd maps foreign pages.
 */
#ifndef LOCKSTEP_BACKENDS_SIM_SIM_H
#define LOCKSTEP_BACKENDS_SIM_SIM_H

#include "backends/backend.h"
#include "lockstep/errbuf.h"
#include "lockstep/sim.h"

int ls_sim_open(struct ls_backend **out, struct ls_errbuf *e);

/* The daemon's memory pool (lockstep-simd --memory-pool): memfds ready, their
 * MiB, and refills still allocating. For benchmarks, which wait for the
 * refills to end so that they do not time them, and say which memory the
 * guests had. */
struct sim_pool_status {
    uint32_t ready, ready_mib, filling;
    uint32_t taken;            /* memfds domains took from the pool so far */
    bool huge_pages;           /* guest memory in 2 MiB pages (--huge-pages) */
};
int sim_pool_status(struct ls_backend *be, struct sim_pool_status *st, struct ls_errbuf *e);

#endif
