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

#endif
