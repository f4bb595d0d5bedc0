/* backends/xen/xen.h - the Xen backend: real guests through libxenctrl,
 * libxenstore and (in lockstep-xen-helper) libxenguest.
 *
 * ls_xen_open() needs a Xen dom0: /dev/xen/privcmd and a running xenstored.
 * Elsewhere it fails at once with -ENODEV and a message naming what is
 * missing; nothing is started and nothing waits.
 *
 * Domain control runs in the calling thread (all calls are thread-safe).
 * The memory task runs xc_domain_save / xc_domain_restore in a child
 * process, lockstep-xen-helper, found as $LOCKSTEP_XEN_HELPER, else next to
 * /proc/self/exe (or in ../backends/xen/ of a build tree), else in $PATH.
 * Its callbacks reach the save/restore tables exactly as the sim's do.
 *
 * Domains lockstep restores get what libxl would give a device-less PV or
 * PVH guest: xenstore directories, store and console rings introduced to
 * xenstored and xenconsoled, and libxl's per-domain config file, so `xl`
 * can list, save, migrate and destroy them.
 */
#ifndef LOCKSTEP_BACKENDS_XEN_XEN_H
#define LOCKSTEP_BACKENDS_XEN_XEN_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "lockstep/errbuf.h"

#define LS_XEN_PRIVCMD "/dev/xen/privcmd"

/* True when this host is a Xen dom0 (/dev/xen/privcmd exists). */
bool ls_xen_available(void);

int ls_xen_open(struct ls_backend **out, struct ls_errbuf *e);

/* The domain named `name` (xenstore's /local/domain/N/name), or -ESRCH. */
int ls_xen_find(struct ls_backend *be, const char *name, uint32_t *domid, struct ls_errbuf *e);

#endif
