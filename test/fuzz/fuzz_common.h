/* test/fuzz/fuzz_common.h - what every libFuzzer harness here shares. */
#ifndef LOCKSTEP_TEST_FUZZ_COMMON_H
#define LOCKSTEP_TEST_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep/lockstep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A memfd holding the input, positioned at 0: a seekable "file" as the
 * commands' -i FILE gives them. Aborts on failure (the harness, not the
 * code under test, is broken then). */
int fuzz_memfd(const void *data, size_t size);

/* Open file descriptors of this process (compare two counts only). */
int fuzz_count_fds(void);

/* A private run directory for a sim daemon of the harness's own
 * (LOCKSTEP_RUNDIR), removed with the daemon at exit. LOCKSTEP_SIMD must
 * name the daemon binary; the fuzz build's CMake bakes its path in. */
void fuzz_private_rundir(void);

/* A library context on the loop, backed by a sim daemon of the harness's
 * own (fuzz_private_rundir; the fuzz build's daemon unless LOCKSTEP_SIMD). */
struct ls_ctx *fuzz_sim_ctx(uv_loop_t *loop);

/* An operation's outcome: fuzz_on_done records it (data = the outcome);
 * fuzz_wait_done runs the loop until then and aborts on a failure that
 * gives no reason. */
struct fuzz_outcome {
    bool done;
    int rc;
    char msg[LS_ERRBUF_LEN];
};
void fuzz_on_done(struct ls_op *op, int rc, const char *msg, void *data);
void fuzz_wait_done(uv_loop_t *loop, struct fuzz_outcome *o);

#endif
