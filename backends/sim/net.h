/* backends/sim/net.h - a sim guest's network output (daemon side).
 *
 * A guest with a network (SIMP_OP_NET CONFIG, every > 0) sends one frame
 * from its vCPU every `every` writes: write k with (k + 1) % every == 0 sends
 * frame number (k + 1) / every - 1. The frame is a real Ethernet II + IPv4 +
 * UDP datagram (layout in lockstep/sim.h, LS_SIM_FRAME_*) whose payload is
 * the frame number, k and the 8-byte word write k left in guest memory, read
 * back from memory: two copies of a guest at the same write count (a COLO
 * primary and its secondary after a checkpoint) send the same frames.
 *
 * Nondeterminism: with probability nondet_ppm / 10^6 (from the host's own
 * generator, not the guest's seed) the guest first stores a random value in
 * that word, so its memory and its frame both depart from what another copy
 * would do, and flags the frame. A checkpoint carries the word across.
 *
 * Frames go to the reader attached last (a SOCK_SEQPACKET pair, one frame per
 * message) through a queue of SIM_NET_QUEUE frames; a frame that finds no
 * reader or a full queue is dropped and counted, as a NIC drops on a full
 * ring: the guest never blocks on its network. Parking the vCPU (pause,
 * suspend) flushes the queue first, waiting at most 200 ms for the reader, so
 * every frame sent before a suspend is in the reader's socket when it ends.
 *
 * Threading: one lock per guest network; emission runs on the vCPU thread or
 * on the main thread while that is parked; the rest is main-thread only.
 */
#ifndef LOCKSTEP_BACKENDS_SIM_NET_H
#define LOCKSTEP_BACKENDS_SIM_NET_H

#include <stdint.h>

#include "backends/sim/proto.h"
#include "lockstep/errbuf.h"

#define SIM_NET_QUEUE 2048u

struct sim_net;

struct sim_net *sim_net_new(void);
void sim_net_free(struct sim_net *n);
/* CONFIG: every, nondet_ppm, rng_seed from in (the counters are kept). */
int sim_net_config(struct sim_net *n, const struct simp_net *in, struct ls_errbuf *e);
void sim_net_stats(struct sim_net *n, struct simp_net *out);
/* A fresh pair: the daemon keeps one end, *fd is the reader's (close it). */
int sim_net_attach(struct sim_net *n, int *fd, struct ls_errbuf *e);
/* The same with the daemon's end connected to a listening SOCK_SEQPACKET
 * unix socket at path instead of a pair. */
int sim_net_connect(struct sim_net *n, const char *path, struct ls_errbuf *e);
/* Write k just stored *word: send the frame it owes, if any. Cheap when none. */
void sim_net_on_write(struct sim_net *n, uint64_t k, uint64_t *word);
/* Send what is queued, waiting up to timeout_ms for room. */
void sim_net_flush(struct sim_net *n, int timeout_ms);

#endif
