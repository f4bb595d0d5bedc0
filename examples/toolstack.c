/* examples/toolstack.c - a toolstack in one file: liblockstep's tutorial.
 *
 *     lockstep-example [MEMORY_MIB [DIRTY_PAGES_PER_S [MAX_ROUNDS]]]
 *
 * On a loop of its own, it creates a simulated guest, saves it to a file
 * (the guest is destroyed, as `xl save` does), restores the file into a new
 * domain, then live-migrates that domain to a receiver running on the same
 * loop, over a socketpair, while its vCPU dirties DIRTY_PAGES_PER_S pages a
 * second. Each step checks that the state's digest arrived unchanged.
 * MAX_ROUNDS: pre-copy stops only after that many rounds (or with no page
 * dirty), instead of Xen's default policy.
 *
 * The API is asynchronous: every ls_*_start() returns at once and reports
 * once, through its done callback, from the loop. Progress is polled from a
 * timer. SIGINT cancels whatever runs: the tables tear down (a saved guest
 * runs on, a partial domain is destroyed) before the done callbacks come.
 *
 * Exit status: 0 all steps done; 1 a step failed; 130 interrupted.
 * Build: see examples/CMakeLists.txt (in the tree, or with pkg-config).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <lockstep/lockstep.h>
#include <lockstep/sim.h>

/* One operation in flight. */
struct job {
    const char *name;
    struct ls_op *op;
    bool done;
    int rc;
};

static uv_loop_t loop;
static struct job *running[2];   /* what SIGINT cancels and the timer reports */
static bool interrupted;

static void on_done(struct ls_op *op, int rc, const char *errmsg, void *data)
{
    struct job *j = data;
    j->done = true;
    j->rc = rc;
    if (rc < 0)
        fprintf(stderr, "%s: failed: %s\n", j->name, errmsg);
}

/* Run the loop until every job started has reported. */
static int wait_jobs(struct job *a, struct job *b)
{
    running[0] = a;
    running[1] = b;
    while (!a->done || (b && !b->done))
        uv_run(&loop, UV_RUN_ONCE);
    running[0] = running[1] = NULL;
    return a->rc < 0 ? a->rc : b ? b->rc : 0;
}

static void on_timer(uv_timer_t *t)
{
    for (int i = 0; i < 2; i++) {
        struct job *j = running[i];
        if (!j || j->done)
            continue;
        uint64_t done, total;
        struct ls_precopy_progress p;
        ls_op_progress(j->op, &done, &total);
        ls_op_precopy(j->op, &p);
        fprintf(stderr, "%s: %.1f MiB", j->name, done / 1048576.0);
        if (total)
            fprintf(stderr, " of %.1f", total / 1048576.0);
        if (strcmp(j->name, "migrate") == 0)
            fprintf(stderr, ", round %u, %ld pages dirty%s", p.round, p.dirty_pages,
                    p.final_round ? ", guest suspended" : "");
        fputc('\n', stderr);
    }
}

static void on_sigint(uv_signal_t *s, int signum)
{
    fprintf(stderr, "interrupted: cancelling\n");
    interrupted = true;
    for (int i = 0; i < 2; i++)
        if (running[i] && !running[i]->done)
            ls_op_cancel(running[i]->op);   /* done follows, after the teardown */
}

static int fail(const char *what, const struct ls_errbuf *err)
{
    fprintf(stderr, "%s: %s\n", what, err->msg);
    return 1;
}

static int run(struct ls_ctx *ctx, uint64_t mib, uint64_t dirty_rate, unsigned max_rounds)
{
    struct ls_errbuf err = { 0 };
    char file[] = "/tmp/lockstep-example.XXXXXX";
    int fd;

    /* 1. A guest to work on: a simulated PV domain, running. */
    struct ls_sim_create_args ca = { .type = LS_GUEST_PV, .vcpus = 1, .seed = 42,
                                     .memory_kib = mib * 1024, .populate = true };
    uint32_t domid;
    if (ls_sim_create(ls_ctx_backend(ctx), &ca, &domid, &err) < 0)
        return fail("create", &err);
    printf("created domain %u\n", domid);

    /* 2. Save it to a file. */
    if ((fd = mkstemp(file)) < 0) {
        perror("mkstemp");
        return 1;
    }
    struct job save = { .name = "save" };
    struct ls_save_opts so = { .domid = domid, .fd = fd, .format = LS_FORMAT_XL };
    if (ls_save_start(ctx, &so, on_done, &save, &save.op, &err) < 0)
        return fail("save", &err);
    int rc = wait_jobs(&save, NULL);
    char saved[65];
    snprintf(saved, sizeof(saved), "%s", ls_op_digest(save.op));
    ls_op_free(save.op);
    close(fd);
    if (rc < 0) {
        unlink(file);
        if (interrupted)
            printf("interrupted: domain %u runs on\n", domid);
        return interrupted ? 130 : 1;
    }
    printf("saved domain %u to %s, digest %s\n", domid, file, saved);

    /* 3. Restore the file into a new domain. */
    fd = open(file, O_RDONLY);
    unlink(file);
    struct job restore = { .name = "restore" };
    struct ls_restore_opts ro = { .fd = fd, .unpause = true };
    if (ls_restore_start(ctx, &ro, on_done, &restore, &restore.op, &err) < 0)
        return fail("restore", &err);
    rc = wait_jobs(&restore, NULL);
    domid = ls_op_domid(restore.op);
    bool same = strcmp(saved, ls_op_digest(restore.op)) == 0;
    ls_op_free(restore.op);
    close(fd);
    if (rc < 0)
        return interrupted ? 130 : 1;
    printf("restored domain %u, digest %s\n", domid, same ? "unchanged" : "DIFFERENT");
    if (!same)
        return 1;

    /* 4. Live-migrate it to a receiver on this same loop: its vCPU writes
     * dirty_rate pages a second meanwhile, so pre-copy takes rounds. */
    struct ls_sim_workload w = { .rate = dirty_rate, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 1 };
    if (dirty_rate && ls_sim_set_workload(ls_ctx_backend(ctx), domid, &w, &err) < 0)
        return fail("workload", &err);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        return 1;
    }
    struct job send = { .name = "migrate" }, recv = { .name = "migrate-receive" };
    struct ls_migrate_receive_opts mr = { .recv_fd = sv[1], .send_fd = sv[1] };
    struct ls_migrate_opts mo = { .domid = domid, .send_fd = sv[0], .recv_fd = sv[0],
                                  .precopy = { .max_rounds = max_rounds,
                                               .dirty_threshold = max_rounds ? 1 : 0 } };
    if (ls_migrate_receive_start(ctx, &mr, on_done, &recv, &recv.op, &err) < 0)
        return fail("migrate-receive", &err);
    if (ls_migrate_start(ctx, &mo, on_done, &send, &send.op, &err) < 0) {
        ls_op_cancel(recv.op);
        wait_jobs(&recv, NULL);
        return fail("migrate", &err);
    }
    wait_jobs(&send, &recv);
    struct ls_precopy_progress p;
    ls_op_precopy(send.op, &p);
    enum ls_migrate_outcome out = ls_op_migrate_outcome(send.op);
    uint32_t new_domid = ls_op_domid(recv.op);
    same = strcmp(ls_op_digest(send.op), ls_op_digest(recv.op)) == 0;
    printf("migrate: %s\n", ls_migrate_outcome_text(out));
    ls_op_free(send.op);
    ls_op_free(recv.op);
    close(sv[0]);
    close(sv[1]);
    if (out != LS_MIGRATE_DESTINATION_RUNS) {
        if (out == LS_MIGRATE_SOURCE_RUNS)
            printf("the guest runs on as domain %u\n", domid);
        return interrupted ? 130 : 1;
    }
    printf("migrated domain %u to domain %u in %u live rounds, digest %s\n", domid, new_domid,
           p.round + 1, same ? "unchanged" : "DIFFERENT");
    if (ls_domain_destroy(ctx, new_domid, &err) < 0)
        return fail("destroy", &err);
    return same ? 0 : 1;
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 64;
    uint64_t dirty_rate = argc > 2 ? strtoull(argv[2], NULL, 0) : 5000;
    unsigned max_rounds = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 0;
    if (argc > 4 || mib == 0) {
        fprintf(stderr, "usage: %s [MEMORY_MIB [DIRTY_PAGES_PER_S [MAX_ROUNDS]]]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);   /* a dead peer is an error from write, not a death */

    uv_timer_t timer;
    uv_signal_t sigint;
    struct ls_ctx *ctx;
    struct ls_errbuf err = { 0 };
    uv_loop_init(&loop);
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, on_timer, 500, 500);
    uv_signal_init(&loop, &sigint);
    uv_signal_start(&sigint, on_sigint, SIGINT);
    if (ls_ctx_new(&ctx, &loop, LS_BACKEND_SIM, &err) < 0)
        return fail("context", &err);

    int status = run(ctx, mib, dirty_rate, max_rounds);

    ls_ctx_free(ctx);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);   /* let the closes finish */
    uv_loop_close(&loop);
    return status;
}
