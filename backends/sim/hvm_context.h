/* backends/sim/hvm_context.h - checks of a Xen HVM save record list.
 *
 * Shared by the daemon (which refuses a bad context, as Xen's hvm_load
 * would) and the restore task (which needs the vCPU count of a context
 * before the domain knows its own).
 */
#ifndef LOCKSTEP_BACKENDS_SIM_HVM_CONTEXT_H
#define LOCKSTEP_BACKENDS_SIM_HVM_CONTEXT_H

#include <stdint.h>

#include "lockstep/errbuf.h"

/* Validates the list: HEADER first (magic, version), every descriptor within
 * the blob, CPU records sized right with instance < vcpus (when vcpus != 0),
 * an END record. *ncpus (may be NULL) gets 1 + the highest CPU instance. */
int sim_hvm_context_check(const uint8_t *b, uint32_t len, unsigned vcpus,
                          unsigned *ncpus, struct ls_errbuf *e);

#endif
