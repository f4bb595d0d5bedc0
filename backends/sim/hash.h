/* backends/sim/hash.h - a fast 256-bit digest for comparing guest state.
 *
 * Not cryptographic: it detects corruption, it does not resist an attacker.
 * Four 64-bit multiply-rotate lanes (the xxHash64 round) run over 32-byte
 * stripes, so hashing goes at memory speed; the final step mixes every lane
 * into each of the four output words, so each of the 256 output bits depends
 * on the whole input. Deterministic across runs and hosts (little endian).
 */
#ifndef LOCKSTEP_BACKENDS_SIM_HASH_H
#define LOCKSTEP_BACKENDS_SIM_HASH_H

#include <stddef.h>
#include <stdint.h>

struct sim_hash {
    uint64_t lane[4];
    uint64_t total;
    uint8_t buf[32];
    size_t buffered;
};

void sim_hash_init(struct sim_hash *h);
void sim_hash_update(struct sim_hash *h, const void *data, size_t len);
void sim_hash_u64(struct sim_hash *h, uint64_t v);
/* Writes 64 lowercase hex characters and a NUL. */
void sim_hash_final_hex(struct sim_hash *h, char hex[65]);

#endif
