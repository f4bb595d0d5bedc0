/* backends/sim/disk.h - a sim guest's disks, written by its vCPU through its QEMU.
 *
 * Daemon side. An HVM guest's disk N (SIMP_OP_DISK ATTACH: a raw or qcow2
 * file) is a drive "lsdiskN" of the domain's block QEMU: a quorum of one
 * child (vote threshold 1), libxl's COLO primary drive, so the same QEMU can
 * become a COLO primary (a second child is added) or secondary (a
 * replication top is stacked on it) without a restart. The block QEMU
 * (-machine none, <rundir>/domain-N.blk/) is the guest's QEMU in its qdisk
 * role; its device model stays a QEMU of its own, because QEMU 7.2 takes a
 * device state only by being replaced with a standby (a COLO secondary's
 * every checkpoint), and the replication top, the NBD server and the
 * primary's NBD connection must outlive those swaps. It has a second QMP
 * monitor, dsk.sock, that only the disk writer uses.
 *
 * Writes: with `every` > 0 (SIMP_OP_DISK CONFIG), vCPU write k with
 * (k + 1) % every == 0 owes disk write j = (k + 1) / every - 1: a block of
 * `block` bytes on disk j % ndisks, at block index mix(seed, j) % blocks,
 * filled with byte 1 + j % 255 (never 0: a fresh disk reads 0). So a guest's
 * disks after K vCPU writes are a pure function of (seed, K), as its memory
 * is. A thread of the daemon makes the owed writes in order through QEMU
 * (HMP qemu-io on dsk.sock) and never drops one; the vCPU never waits for
 * it. Parking the vCPU (pause, suspend) waits until every owed write is in
 * QEMU, so a suspended guest's disks hold exactly its first K / every
 * writes. A guest that takes a vCPU count from a checkpoint (a COLO
 * secondary) takes its disks' count too: those writes are in its disk by
 * replication, not made again.
 *
 * `top` set (a COLO secondary's replica, or after its failover): writes go
 * to "lsdiskN-top", the replication drive over lsdiskN that colo_disk.def
 * adds, as the replica's guest sees its disk.
 *
 * Threading: the vCPU thread calls sim_disks_on_write; the writer thread is
 * the disks' own; everything else is the main thread's.
 */
#ifndef LOCKSTEP_BACKENDS_SIM_DISK_H
#define LOCKSTEP_BACKENDS_SIM_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/sim/proto.h"
#include "lockstep/errbuf.h"

struct sim_disks;

/* NULL when out of memory. domid names the guest in errors. */
struct sim_disks *sim_disks_new(uint32_t domid, uint64_t seed);
/* Stops the writer (waiting for the write in flight) and frees. NULL is fine. */
void sim_disks_free(struct sim_disks *s);

/* Record disk N+1 (path, SIMP_DISK_RAW or _QCOW2). The caller adds it to a
 * running QEMU (sim_disks_drive_opts of the new index). */
int sim_disks_attach(struct sim_disks *s, const char *path, unsigned format, unsigned *index,
                     struct ls_errbuf *e);
unsigned sim_disks_count(const struct sim_disks *s);
/* Forget the disk attached last (its QEMU refused it). */
void sim_disks_detach_last(struct sim_disks *s);
/* The -drive value of disk n ("if=none,id=lsdiskN,driver=quorum,..."). */
void sim_disks_drive_opts(const struct sim_disks *s, unsigned n, char *buf, size_t len);

/* CONFIG: every, block (a power of two, 512..1 MiB), top; needs a disk. */
int sim_disks_config(struct sim_disks *s, const struct simp_disk *in, struct ls_errbuf *e);
void sim_disks_stats(struct sim_disks *s, struct simp_disk *out);

/* The QMP socket of the QEMU in service changed (a standby replaced it):
 * the writer reconnects to dir/dsk.sock. */
void sim_disks_set_dir(struct sim_disks *s, const char *dm_dir);

/* vCPU write k was made. Cheap; wakes the writer when a disk write is owed. */
void sim_disks_on_write(struct sim_disks *s, uint64_t k);
/* Wait (at most timeout_ms) until every owed write is in QEMU. */
void sim_disks_flush(struct sim_disks *s, int timeout_ms);
/* The vCPU count is now k from elsewhere (a checkpoint): its writes are
 * in the disks already. Only while the vCPU is parked. */
void sim_disks_adopt(struct sim_disks *s, uint64_t k);

#endif
