/* test/fuzz/fuzz_migrate.c - xl's migration back channel, both roles.
 *
 * First byte, bit 0 clear: lockstep is the sender. A 64 KiB PV sim guest is
 * live-migrated (its stream goes to /dev/null) and the rest of the input is
 * what the receiver says: the banner, "domain received", the unpause report
 * and its status byte, and after a failed report the leave to resume.
 * Bit 0 set: lockstep is the receiver, and the rest of the input is what the
 * sender sends: the stream, then the go-ahead.
 * What must hold, besides a reason for every failure and nothing leaked: at
 * most one copy of the guest. The sender's source domain is gone only when
 * the receiver reported its copy running, and runs again when the migration
 * failed before the go-ahead; the receiver keeps a domain only when it
 * reports one running, and an unfinished receive leaves none. */
#include <fcntl.h>
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

static struct ls_domain_info *domains(size_t *n)
{
    struct ls_domain_info *list = NULL;
    struct ls_errbuf e = { 0 };
    if (ls_sim_list(ls_ctx_backend(ctx), &list, n, &e) < 0) {
        fprintf(stderr, "fuzz_migrate: sim list: %s\n", e.msg);
        abort();
    }
    return list;
}

/* The peer's bytes, all written up front into a pipe (sized to hold them)
 * whose write end is then closed: the end of the input is the peer hanging up. */
static int peer_says(const uint8_t *data, size_t size)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0 || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < 0)
        abort();
    size_t at = 0;
    while (at < size) {
        ssize_t w = write(p[1], data + at, size - at);
        if (w <= 0)
            abort();
        at += (size_t)w;
    }
    close(p[1]);
    return p[0];
}

static void sender(const uint8_t *data, size_t size)
{
    struct ls_sim_create_args a = { .type = LS_GUEST_PV, .vcpus = 1, .memory_kib = 64,
                                    .seed = 1, .populate = true };
    uint32_t domid;
    struct ls_errbuf e = { 0 };
    if (ls_sim_create(ls_ctx_backend(ctx), &a, &domid, &e) < 0) {
        fprintf(stderr, "fuzz_migrate: sim create: %s\n", e.msg);
        abort();
    }
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int in = peer_says(data, size);
    struct ls_migrate_opts mo = { .domid = domid, .send_fd = out, .recv_fd = in,
                                  .timeout_ms = 2000 };
    struct fuzz_outcome o = { 0 };
    struct ls_op *op;
    if (ls_migrate_start(ctx, &mo, fuzz_on_done, &o, &op, &e) < 0)
        abort();
    fuzz_wait_done(&loop, &o);
    enum ls_migrate_outcome oc = ls_op_migrate_outcome(op);
    ls_op_free(op);
    close(in);
    close(out);
    size_t n;
    struct ls_domain_info *list = domains(&n);
    bool present = n == 1 && list[0].domid == domid;
    bool running = present && list[0].state == LS_RUN_RUNNING;
    free(list);
    if ((oc == LS_MIGRATE_DESTINATION_RUNS) == present || (o.rc == 0) != !present ||
        (oc == LS_MIGRATE_SOURCE_RUNS && !running) || n > 1) {
        fprintf(stderr, "fuzz_migrate: sender ended '%s' (rc %d: %s) with %zu domains, "
                "the source %s\n", ls_migrate_outcome_text(oc), o.rc, o.msg, n,
                running ? "running" : present ? "not running" : "gone");
        abort();
    }
    if (present && ls_domain_destroy(ctx, domid, &e) < 0)
        abort();
}

static void receiver(const uint8_t *data, size_t size)
{
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int in = peer_says(data, size);
    struct ls_migrate_receive_opts ro = { .recv_fd = in, .send_fd = out, .timeout_ms = 2000,
                                          .paused = true };
    struct fuzz_outcome o = { 0 };
    struct ls_op *op;
    struct ls_errbuf e = { 0 };
    if (ls_migrate_receive_start(ctx, &ro, fuzz_on_done, &o, &op, &e) < 0)
        abort();
    fuzz_wait_done(&loop, &o);
    enum ls_migrate_outcome oc = ls_op_migrate_outcome(op);
    ls_op_free(op);
    close(in);
    close(out);
    size_t n;
    struct ls_domain_info *list = domains(&n);
    uint32_t domid = n ? list[0].domid : 0;
    free(list);
    bool kept = oc == LS_MIGRATE_DESTINATION_RUNS || oc == LS_MIGRATE_RUNS_UNCONFIRMED;
    if (n != (kept ? 1u : 0u)) {
        fprintf(stderr, "fuzz_migrate: receiver ended '%s' (rc %d: %s) with %zu domains\n",
                ls_migrate_outcome_text(oc), o.rc, o.msg, n);
        abort();
    }
    if (n && ls_domain_destroy(ctx, domid, &e) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (512u << 10))
        return 0;
    int fds = fuzz_count_fds();
    if (data[0] & 1)
        receiver(data + 1, size - 1);
    else
        sender(data + 1, size - 1);
    if (fuzz_count_fds() != fds) {
        fprintf(stderr, "fuzz_migrate: %d fds before, %d after\n", fds, fuzz_count_fds());
        abort();
    }
    return 0;
}
