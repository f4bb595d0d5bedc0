/* states/dm_standin.c - the in-process device-model stand-in. */
#include "states/dm_standin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QEVM_MAGIC "QEVM"
#define STANDIN_TAG "lockstep device-model stand-in"

int dm_standin_save(const struct ls_domain_info *info, uint8_t **blob, size_t *len)
{
    char text[256];
    int n = snprintf(text, sizeof(text), "%s: domain %s, %u vcpus, %llu KiB", STANDIN_TAG,
                     info->name, info->vcpus, (unsigned long long)info->memory_kib);
    size_t total = 8 + (size_t)n;
    uint8_t *b = malloc(total);
    if (!b)
        return -ENOMEM;
    memcpy(b, QEVM_MAGIC, 4);
    b[4] = 0; b[5] = 0; b[6] = 0; b[7] = 3;   /* savevm version 3, big endian */
    memcpy(b + 8, text, (size_t)n);
    *blob = b;
    *len = total;
    return 0;
}

int dm_standin_check(const uint8_t *blob, size_t len, struct ls_errbuf *err)
{
    if (len < 8 + sizeof(STANDIN_TAG) - 1 || memcmp(blob, QEVM_MAGIC, 4) != 0)
        return ls_err(err, -EINVAL, "EMULATOR_CONTEXT is not a QEMU savevm image (no QEVM magic)");
    if (memcmp(blob + 8, STANDIN_TAG, sizeof(STANDIN_TAG) - 1) != 0)
        return ls_err(err, -EINVAL,
                      "EMULATOR_CONTEXT holds real QEMU device state, but this restore has no "
                      "device model to load it into");
    return 0;
}
