/* test/fuzz/fuzz_colo.c - COLO's back channel: the CHECKPOINT_STATE records
 * each side reads (colo_read_state, states/colo_primary.c).
 *
 * The input's first byte picks which state each read awaits (two bits per
 * read, four reads: SVM_SUSPENDED, SVM_READY, SVM_RESUMED, NEW); the
 * rest is what the peer sent, in a pipe whose write end is then closed.
 * Reads go on while they succeed. What must hold: a read that fails names
 * why, and one that succeeds consumed a well-formed record of the awaited
 * state (checked against the bytes). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/fuzz_common.h"
#include "io/records.h"
#include "states/colo.h"

static const uint32_t states[4] = { LIBXL_CHECKPOINT_SVM_SUSPENDED, LIBXL_CHECKPOINT_SVM_READY,
                                    LIBXL_CHECKPOINT_SVM_RESUMED, LIBXL_CHECKPOINT_NEW };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 60000)
        return 0;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        abort();
    if (size > 1 && write(p[1], data + 1, size - 1) != (ssize_t)(size - 1))
        abort();
    close(p[1]);
    size_t at = 1;
    for (int i = 0; i < 4; i++) {
        uint32_t want = states[(data[0] >> (2 * i)) & 3];
        struct ls_errbuf e = { 0 };
        int rc = colo_read_state(p[0], want, -1, "peer", &e);
        if (rc < 0) {
            if (!e.msg[0])
                abort();
            break;
        }
        uint8_t rec[16];
        colo_state_record(rec, want);
        if (at + 16 > size || memcmp(data + at, rec, 16) != 0)
            abort();   /* accepted something other than the awaited record */
        at += 16;
    }
    close(p[0]);
    return 0;
}
