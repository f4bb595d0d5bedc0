/* backends/sim/dirty.h - a running sim guest's own vCPU, and log-dirty.
 *
 * Daemon side. While a domain runs, a thread of the daemon (its simulated
 * vCPU) writes guest memory at the configured rate and pattern
 * (struct simp_workload), and moves the vCPU state with it: every vCPU's r12
 * holds the number of writes made, r13 a hash of it. Log-dirty follows Xen's
 * shadow-op semantics (enum simp_logdirty_op): a write sets its page's bit
 * after the bytes land, so a page caught mid-copy is always sent again.
 *
 * Threading: the vCPU thread writes guest memory and the bitmap bits, and so
 * does the main thread while that thread is parked (sim_vcpu_settle); only
 * the main (poll) thread touches the domain's state blobs. The vCPU
 * state is brought up to date on the main thread (sim_vcpu_sync) before any
 * state is read, and when the vCPU parks. Every call here is main-thread only.
 */
#ifndef LOCKSTEP_BACKENDS_SIM_DIRTY_H
#define LOCKSTEP_BACKENDS_SIM_DIRTY_H

#include <stdint.h>

#include "backends/sim/guest.h"
#include "backends/sim/proto.h"
#include "lockstep/errbuf.h"

/* SET of SIMP_K_WORKLOAD: change the rate (any time), pattern and seed (only
 * before the first write), and replay writes up to w->writes (domain not
 * running). Starts or parks the vCPU thread as the run state says. */
int sim_vcpu_set_workload(struct sim_domain *d, const struct simp_workload *w,
                          struct ls_errbuf *e);
void sim_vcpu_get_workload(struct sim_domain *d, struct simp_workload *out);

/* The run state changed (pause, unpause, suspend, resume): park the vCPU
 * (returns once no write is in flight and the vCPU state is synced) or let it
 * run. */
void sim_vcpu_runstate_changed(struct sim_domain *d);

/* Make the writes a running guest owes by the clock, whether or not its
 * thread was scheduled (log-dirty reads do this first; so do pause and
 * suspend), so its dirty rate holds on a loaded host. */
void sim_vcpu_settle(struct sim_domain *d);

/* Bring the vCPU registers up to the writes made so far (before GET/DIGEST). */
void sim_vcpu_sync(struct sim_domain *d);
/* After a SET of vCPU 0's state (a checkpoint applied to a COLO secondary):
 * the write count follows the registers it now has. */
void sim_vcpu_adopt_regs(struct sim_domain *d);

/* A log-dirty operation; for CLEAN/PEEK *out (malloc'd) is the reply payload. */
int sim_logdirty(struct sim_domain *d, unsigned op, uint8_t **out, uint32_t *len,
                 struct ls_errbuf *e);

/* The guest's network (SIMP_OP_NET, net.h): op CONFIG creates it on first
 * use; ATTACH sets *fd to the new reader's end; CONNECT plugs it into the
 * socket at path. *out (may be NULL) gets the configuration and counters.
 * -ENODEV: no network configured. */
int sim_vcpu_net(struct sim_domain *d, unsigned op, const struct simp_net *in, const char *path,
                 struct simp_net *out, int *fd, struct ls_errbuf *e);

/* d->disks was created (disk.h): the vCPU writes them from now on. */
void sim_vcpu_disks_changed(struct sim_domain *d);

/* Stops the thread and frees everything (before sim_domain_free). */
void sim_vcpu_free(struct sim_domain *d);
/* The same, but the vCPU's mapping of guest memory (NULL when it had none) is
 * handed to the caller to unmap. */
void sim_vcpu_free_but_mapping(struct sim_domain *d, void **mem, size_t *len);

#endif
