/* backends/sim/guestmem.h - where the sim host's guest memory comes from.
 *
 * By default each domain's memory is a memfd, backed by 4 KiB pages. A Xen
 * host backs HVM guests with 2 MiB superpages where it can, and page size
 * matters to whoever reads guest memory in bulk. On the nested VMs here,
 * measured with 1 GiB: a write() to tmpfs out of a fresh mapping of 4 KiB
 * pages ran at 0.55 GB/s, out of one of 2 MiB pages at 7 GB/s; a sendfile
 * loop at 0.6 and 0.84 of a write loop from one hot buffer (the saver picks
 * its path by page size, sim_save.c). With huge pages on
 * (lockstep-simd --huge-pages), guest memory is files in a tmpfs mounted
 * with huge=always that the daemon creates with fsmount and never attaches
 * to any path: nothing else can see it, and it vanishes with the daemon.
 *
 * The frame-info arrays and everything else stay memfds.
 */
#ifndef LOCKSTEP_SIM_GUESTMEM_H
#define LOCKSTEP_SIM_GUESTMEM_H

#include <stdbool.h>
#include <stddef.h>

/* Mounts the private huge-page tmpfs. Call once, before any thread starts.
 * 0, or -errno with the reason in why (e.g. no CAP_SYS_ADMIN). */
int sim_guestmem_use_huge_pages(char *why, size_t cap);

/* Whether guest memory is in huge pages. */
bool sim_guestmem_huge_pages(void);

/* A new, empty, close-on-exec file for guest memory: -1 and errno on error.
 * Safe from any thread. `name` labels a memfd (in /proc/PID/fd). */
int sim_guestmem_new(const char *name);

#endif
