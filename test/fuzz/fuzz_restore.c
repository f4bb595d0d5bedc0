/* test/fuzz/fuzz_restore.c - the stream reader as `lockstep restore` runs it.
 *
 * Each input is a stream restored through the library against the sim
 * daemon (a private one, started on demand, as the CLI would): the libxl
 * reader (states/stream_rx.c), the xl config, the memory task's libxc
 * reader (backends/sim/sim_restore.c) and the device-model stand-in's state
 * all run on it, with the tables driving every failure path. What must hold
 * for any input: a failure comes with a reason, no domain is left behind (a
 * failed restore destroys its partial domain; a restored one the harness
 * destroys), and no file descriptor leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/fuzz_common.h"
#include "lockstep/lockstep.h"
#include "lockstep/sim.h"

static uv_loop_t loop;
static struct ls_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ctx = fuzz_sim_ctx(&loop);
    return 0;
}

static size_t domains(void)
{
    struct ls_domain_info *list = NULL;
    size_t n = 0;
    struct ls_errbuf e = { 0 };
    if (ls_sim_list(ls_ctx_backend(ctx), &list, &n, &e) < 0) {
        fprintf(stderr, "fuzz_restore: sim list: %s\n", e.msg);
        abort();
    }
    free(list);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds = fuzz_count_fds();
    int fd = fuzz_memfd(data, size);
    struct ls_restore_opts ro = { .fd = fd, .unpause = false, .device_model = LS_DM_STANDIN };
    struct fuzz_outcome o = { 0 };
    struct ls_op *op = NULL;
    struct ls_errbuf e = { 0 };
    int rc = ls_restore_start(ctx, &ro, fuzz_on_done, &o, &op, &e);
    if (rc == 0) {
        fuzz_wait_done(&loop, &o);
        rc = o.rc;
        if (rc == 0 && ls_domain_destroy(ctx, ls_op_domid(op), &e) < 0) {
            fprintf(stderr, "fuzz_restore: destroying the restored domain: %s\n", e.msg);
            abort();
        }
        ls_op_free(op);
    } else if (!e.msg[0]) {
        abort();
    }
    close(fd);
    if (domains() != 0) {
        fprintf(stderr, "fuzz_restore: a domain outlived the restore (rc %d: %s)\n", rc, o.msg);
        abort();
    }
    if (fuzz_count_fds() != fds) {
        fprintf(stderr, "fuzz_restore: %d fds before, %d after (rc %d: %s)\n", fds,
                fuzz_count_fds(), rc, o.msg);
        abort();
    }
    return 0;
}
