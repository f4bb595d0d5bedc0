/* states/dm_standin.h - the in-process device-model stand-in (--no-device-model).
 *
 * An HVM stream needs an EMULATOR_CONTEXT record (spec 1.3). When no real
 * QEMU serves the domain, lockstep writes a small, deterministic QEMU-savevm
 * shaped blob ("QEVM" magic, version 3) naming the domain, and on restore
 * checks that shape. It stands in for device state; it is not device state.
 */
#ifndef LOCKSTEP_STATES_DM_STANDIN_H
#define LOCKSTEP_STATES_DM_STANDIN_H

#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"

/* malloc'd blob for the domain; returns 0 or -ENOMEM. */
int dm_standin_save(const struct ls_domain_info *info, uint8_t **blob, size_t *len);
/* 0 if blob has the stand-in's shape, else -EINVAL with a reason. */
int dm_standin_check(const uint8_t *blob, size_t len, struct ls_errbuf *err);

#endif
