/* test/sim/test_restore_into.c - restoring into a domain the toolstack made
 * (ls_restore_opts.domid, `lockstep restore --domid N`), on the sim backend.
 *
 * A toolstack that builds its own domains creates an empty paused one
 * (ls_sim_create with populate = false) and hands it over. The restore must
 * go into that domain and no other; a domain that does not fit the stream
 * (type, vCPUs, memory) or is in the wrong state (running, already built) is
 * refused with a reason and left exactly as it was; a restore that fails
 * after it started leaves the domain to the toolstack, never destroyed.
 * Only the public API (include/lockstep/) and the CLI are used.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "lockstep/lockstep.h"
#include "lockstep/sim.h"
#include "simtest.h"

#define GUEST_KIB 4096
#define GUEST_VCPUS 2

struct fixture {
    struct simtest_env env;
    uv_loop_t loop;
    struct ls_ctx *ctx;
    struct ls_backend *be;
};

struct outcome {
    bool called;
    int rc;
    char msg[1024];
};

static void on_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    (void)op;
    struct outcome *o = data;
    o->called = true;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The page phase the memory task timed lies within the operation, and its
 * bytes are the progress count less what the first batch (<= 1024 pages)
 * brought before the phase's first instant. */
static void check_page_phase(const struct ls_op *op, uint64_t started_ns, uint64_t done_ns)
{
    struct ls_page_phase ph;
    uint64_t done = 0, total = 0;
    ls_op_page_phase(op, &ph);
    ls_op_progress(op, &done, &total);
    assert_true(ph.first_ns >= started_ns);
    assert_true(ph.last_ns >= ph.first_ns);
    assert_true(ph.last_ns <= done_ns);
    assert_true(ph.bytes < done);
    assert_true(done - ph.bytes <= 1024u * 4096u);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    simtest_env_init(&f->env, 0);
    uv_loop_init(&f->loop);
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_ctx_new(&f->ctx, &f->loop, LS_BACKEND_SIM, &e) < 0)
        fail_msg("ls_ctx_new: %s", e.msg);
    f->be = ls_ctx_backend(f->ctx);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ls_ctx_free(f->ctx);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    simtest_env_fini(&f->env);
    free(f);
    return 0;
}

static uint32_t make_domain(struct fixture *f, enum ls_guest_type type, unsigned vcpus,
                            uint64_t kib, bool populate, const char *name)
{
    struct ls_sim_create_args a = { .type = type, .vcpus = vcpus, .memory_kib = kib,
                                    .seed = 42, .name = name, .populate = populate };
    struct ls_errbuf e;
    ls_err_clear(&e);
    uint32_t id = 0;
    if (ls_sim_create(f->be, &a, &id, &e) < 0)
        fail_msg("ls_sim_create: %s", e.msg);
    return id;
}

static size_t domain_count(struct fixture *f)
{
    struct ls_domain_info *all = NULL;
    size_t n = 0;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_list(f->be, &all, &n, &e) < 0)
        fail_msg("ls_sim_list: %s", e.msg);
    free(all);
    return n;
}

static struct ls_domain_info info_of(struct fixture *f, uint32_t domid)
{
    struct ls_domain_info info;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_domain_info(f->ctx, domid, &info, &e) < 0)
        fail_msg("domain %u: %s", domid, e.msg);
    return info;
}

/* A saved guest of this type in a memfd (its source domain is gone, as after
 * xl save); *digest is the saved state's. */
static int saved_guest(struct fixture *f, enum ls_guest_type type, char digest[65])
{
    uint32_t src = make_domain(f, type, GUEST_VCPUS, GUEST_KIB, true, "source");
    int fd = memfd_create("stream", MFD_CLOEXEC);
    assert_true(fd >= 0);
    struct ls_save_opts so = { .domid = src, .fd = fd, .format = LS_FORMAT_XL };
    struct outcome o = { 0 };
    struct ls_op *op = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    uint64_t t0 = monotonic_ns();
    if (ls_save_start(f->ctx, &so, on_done, &o, &op, &e) < 0)
        fail_msg("ls_save_start: %s", e.msg);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(o.called);
    if (o.rc != 0)
        fail_msg("save: %s", o.msg);
    check_page_phase(op, t0, monotonic_ns());
    snprintf(digest, 65, "%s", ls_op_digest(op));
    ls_op_free(op);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* Restores fd (from its start) into domid; the outcome, and the op's domid. */
static struct outcome restore_into(struct fixture *f, int fd, uint32_t domid, bool unpause,
                                   uint32_t *restored, char digest[65])
{
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct ls_restore_opts ro = { .fd = fd, .unpause = unpause, .domid = domid };
    struct outcome o = { 0 };
    struct ls_op *op = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    uint64_t t0 = monotonic_ns();
    if (ls_restore_start(f->ctx, &ro, on_done, &o, &op, &e) < 0)
        fail_msg("ls_restore_start: %s", e.msg);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(o.called);
    if (o.rc == 0)
        check_page_phase(op, t0, monotonic_ns());
    if (restored)
        *restored = ls_op_domid(op);
    if (digest)
        snprintf(digest, 65, "%s", ls_op_digest(op));
    ls_op_free(op);
    return o;
}

static void expect_refusal(struct fixture *f, int fd, uint32_t domid, int rc, const char *why)
{
    struct ls_domain_info before = info_of(f, domid);
    size_t n = domain_count(f);
    struct outcome o = restore_into(f, fd, domid, true, NULL, NULL);
    if (o.rc != rc)
        fail_msg("domain %u (%s): rc %d (%s), want %d (%s)", domid, before.name, o.rc, o.msg,
                 rc, why);
    if (!strstr(o.msg, why) || !strstr(o.msg, "left it as it was"))
        fail_msg("domain %u: the refusal says \"%s\", not \"%s\" and that it was left", domid,
                 o.msg, why);
    /* Left exactly as it was, and no other domain made. */
    struct ls_domain_info after = info_of(f, domid);
    assert_int_equal(after.state, before.state);
    assert_int_equal(after.type, before.type);
    assert_int_equal(after.vcpus, before.vcpus);
    assert_int_equal(after.memory_kib, before.memory_kib);
    assert_string_equal(after.name, before.name);
    assert_int_equal(domain_count(f), n);
}

/* The restore goes into the given domain, which keeps its id and name and
 * ends up holding the saved guest. */
static void round_trip(void **state, enum ls_guest_type type)
{
    struct fixture *f = *state;
    char saved[65], restored_digest[65];
    int fd = saved_guest(f, type, saved);
    assert_int_equal(domain_count(f), 0);
    uint32_t target = make_domain(f, type, GUEST_VCPUS, GUEST_KIB, false, "toolstack-made");
    struct ls_domain_info empty = info_of(f, target);
    assert_int_equal(empty.state, LS_RUN_PAUSED);
    assert_int_equal(empty.memory_kib, 0);

    uint32_t restored = 0;
    struct outcome o = restore_into(f, fd, target, true, &restored, restored_digest);
    if (o.rc != 0)
        fail_msg("restore into domain %u: %s", target, o.msg);
    assert_int_equal(restored, target);
    assert_string_equal(restored_digest, saved);
    struct ls_domain_info got = info_of(f, target);
    assert_int_equal(got.state, LS_RUN_RUNNING);
    assert_int_equal(got.type, type);
    assert_string_equal(got.name, "toolstack-made");
    assert_true(got.memory_kib >= GUEST_KIB);
    assert_int_equal(domain_count(f), 1);

    char now[65];
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_domain_pause(f->ctx, target, &e), 0);
    assert_int_equal(ls_domain_digest(f->ctx, target, now, &e), 0);
    assert_string_equal(now, saved);
    close(fd);
}

static void test_round_trip_pv(void **state) { round_trip(state, LS_GUEST_PV); }
static void test_round_trip_hvm(void **state) { round_trip(state, LS_GUEST_HVM); }
static void test_round_trip_pvh(void **state) { round_trip(state, LS_GUEST_PVH); }

/* A target whose type and size the toolstack left unset takes the stream's. */
static void test_unset_type(void **state)
{
    struct fixture *f = *state;
    char saved[65], got[65];
    int fd = saved_guest(f, LS_GUEST_PV, saved);
    uint32_t target = make_domain(f, LS_GUEST_UNSET, 0, 0, false, NULL);
    struct outcome o = restore_into(f, fd, target, false, NULL, got);
    if (o.rc != 0)
        fail_msg("restore into an unset domain: %s", o.msg);
    assert_string_equal(got, saved);
    assert_int_equal(info_of(f, target).type, LS_GUEST_PV);
    assert_int_equal(info_of(f, target).state, LS_RUN_PAUSED);   /* unpause = false */
    close(fd);
}

/* Domains that do not fit the stream, or are not a fresh empty domain. */
static void test_refusals(void **state)
{
    struct fixture *f = *state;
    char saved[65];
    int fd = saved_guest(f, LS_GUEST_HVM, saved);

    expect_refusal(f, fd, make_domain(f, LS_GUEST_PV, GUEST_VCPUS, GUEST_KIB, false, "pv"),
                   -EINVAL, "is a pv domain, but the stream holds a hvm guest");
    expect_refusal(f, fd, make_domain(f, LS_GUEST_PVH, GUEST_VCPUS, GUEST_KIB, false, "pvh"),
                   -EINVAL, "is a pvh domain, but the stream holds a hvm guest");
    expect_refusal(f, fd, make_domain(f, LS_GUEST_HVM, 1, GUEST_KIB, false, "narrow"),
                   -EINVAL, "has 1 vCPU, but the stream's guest has 2");
    expect_refusal(f, fd, make_domain(f, LS_GUEST_HVM, 3, GUEST_KIB, false, "wide"),
                   -EINVAL, "has 3 vCPUs, but the stream's guest has 2");
    /* Memory: a sim domain's room is its address space, which for PV is its
     * RAM (an HVM one always reaches up to its special pages). */
    int pv = saved_guest(f, LS_GUEST_PV, saved);
    expect_refusal(f, pv, make_domain(f, LS_GUEST_PV, GUEST_VCPUS, 1024, false, "small"),
                   -EINVAL, "KiB of memory, but the stream's guest has 4096 KiB");
    close(pv);

    /* A running guest, a paused one that has run, a suspended one. */
    uint32_t running = make_domain(f, LS_GUEST_HVM, GUEST_VCPUS, GUEST_KIB, true, "running");
    expect_refusal(f, fd, running, -EBUSY, "is running: lockstep restores only into a paused");
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_domain_pause(f->ctx, running, &e), 0);
    expect_refusal(f, fd, running, -EBUSY, "KiB of memory: it was built or has run");

    /* No such domain. */
    struct outcome o = restore_into(f, fd, 4000000, true, NULL, NULL);
    assert_int_equal(o.rc, -ESRCH);
    assert_non_null(strstr(o.msg, "domain 4000000, given to restore into, does not exist"));

    /* A given domain is never destroyed, so it cannot be guarded. */
    uint32_t target = make_domain(f, LS_GUEST_HVM, GUEST_VCPUS, GUEST_KIB, false, "guarded");
    struct ls_restore_opts ro = { .fd = fd, .domid = target, .guard = true };
    struct ls_op *op = NULL;
    ls_err_clear(&e);
    assert_int_equal(ls_restore_start(f->ctx, &ro, on_done, NULL, &op, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "cannot be guarded"));
    assert_int_equal(info_of(f, target).state, LS_RUN_PAUSED);
    close(fd);
}

/* Failures after the restore started: the domain stays, paused, the
 * toolstack's to destroy; the error says so. Then it can still be used. */
static void test_failure_leaves_domain(void **state)
{
    struct fixture *f = *state;
    char saved[65];
    int fd = saved_guest(f, LS_GUEST_PV, saved);
    off_t len = lseek(fd, 0, SEEK_END);
    uint8_t *whole = malloc((size_t)len);
    assert_int_equal(pread(fd, whole, (size_t)len, 0), len);

    /* Truncated in the middle of the page data. */
    int cut = memfd_create("cut", MFD_CLOEXEC);
    assert_int_equal(write(cut, whole, (size_t)len / 2), len / 2);
    uint32_t target = make_domain(f, LS_GUEST_PV, GUEST_VCPUS, GUEST_KIB, false, "keep-me");
    struct outcome o = restore_into(f, cut, target, true, NULL, NULL);
    assert_true(o.rc < 0);
    if (!strstr(o.msg, "lockstep did not destroy it; it is paused"))
        fail_msg("the failure says \"%s\", not that the domain was left", o.msg);
    struct ls_domain_info left = info_of(f, target);
    assert_int_equal(left.state, LS_RUN_PAUSED);
    assert_string_equal(left.name, "keep-me");
    assert_int_equal(domain_count(f), 1);

    /* Cancelled while the stream is read: the same. */
    uint32_t second = make_domain(f, LS_GUEST_PV, GUEST_VCPUS, GUEST_KIB, false, "cancelled");
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    struct ls_restore_opts ro = { .fd = fd, .unpause = true, .domid = second };
    struct outcome oc = { 0 };
    struct ls_op *op = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_restore_start(f->ctx, &ro, on_done, &oc, &op, &e), 0);
    ls_op_cancel(op);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(oc.called);
    assert_int_equal(oc.rc, -ECANCELED);
    ls_op_free(op);
    assert_int_equal(info_of(f, second).state, LS_RUN_PAUSED);
    assert_int_equal(domain_count(f), 2);

    /* The toolstack destroys what it made; a fresh domain takes the stream. */
    ls_err_clear(&e);
    assert_int_equal(ls_domain_destroy(f->ctx, target, &e), 0);
    assert_int_equal(ls_domain_destroy(f->ctx, second, &e), 0);
    uint32_t fresh = make_domain(f, LS_GUEST_PV, GUEST_VCPUS, GUEST_KIB, false, "fresh");
    char got[65];
    o = restore_into(f, fd, fresh, true, NULL, got);
    if (o.rc != 0)
        fail_msg("restore into a fresh domain: %s", o.msg);
    assert_string_equal(got, saved);
    free(whole);
    close(cut);
    close(fd);
}

/* The CLI: `lockstep restore --domid N` on the same daemon. */
static int run_cli(const char *args, char *out, size_t outlen)
{
    const char *bin = getenv("LOCKSTEP_BIN");
    if (!bin)
        fail_msg("LOCKSTEP_BIN is not set");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' --backend sim %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A saved guest of this type in a temporary file (path: a mkstemp template,
 * filled in), for the CLI to read; saved gets its digest. */
static void saved_guest_file(struct fixture *f, enum ls_guest_type type, char saved[65],
                             char *path)
{
    int fd = saved_guest(f, type, saved);
    int file = mkstemp(path);
    assert_true(file >= 0);
    off_t len = lseek(fd, 0, SEEK_END);
    uint8_t *bytes = malloc((size_t)len);
    assert_int_equal(pread(fd, bytes, (size_t)len, 0), len);
    assert_int_equal(write(file, bytes, (size_t)len), len);
    free(bytes);
    close(file);
    close(fd);
}

static void test_cli(void **state)
{
    struct fixture *f = *state;
    char saved[65], path[] = "/tmp/lockstep-restore-into.XXXXXX", args[256], out[4096];
    saved_guest_file(f, LS_GUEST_PVH, saved, path);

    uint32_t target = make_domain(f, LS_GUEST_PVH, GUEST_VCPUS, GUEST_KIB, false, "cli-made");
    snprintf(args, sizeof(args), "restore -i %s --domid %u", path, target);
    int rc = run_cli(args, out, sizeof(out));
    if (rc != 0)
        fail_msg("lockstep %s: exit %d: %s", args, rc, out);
    char want[128];
    snprintf(want, sizeof(want), "domid %u\n%s\n", target, saved);
    assert_string_equal(out, want);
    assert_int_equal(info_of(f, target).state, LS_RUN_RUNNING);

    /* Refused: it runs now. Exit 1 with the reason, the domain untouched. */
    rc = run_cli(args, out, sizeof(out));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "is running"));
    assert_non_null(strstr(out, "left it as it was"));
    assert_int_equal(info_of(f, target).state, LS_RUN_RUNNING);

    assert_int_equal(run_cli("restore -i /dev/null --domid x", out, sizeof(out)), 2);
    assert_int_equal(run_cli("restore --help", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--domid N"));
    unlink(path);
}

/* Every dispatch of a restore into a given domain failed, or cancelled
 * (FSM_FAULT, as test/integration/faults.sh does for lockstep's own
 * domains): each run ends cleanly and the given domain is still there, the
 * only domain; a failed run says it was left to the toolstack. */
static void test_fault_sweep(void **state)
{
    struct fixture *f = *state;
    char saved[65], path[] = "/tmp/lockstep-restore-into.XXXXXX", args[512], out[16384];
    saved_guest_file(f, LS_GUEST_PV, saved, path);

    unsigned dispatches = 0, failed = 0;
    for (unsigned k = 0; k == 0 || k <= dispatches; k++) {
        for (int cancel = 0; cancel < (k ? 2 : 1); cancel++) {
            uint32_t target = make_domain(f, LS_GUEST_PV, GUEST_VCPUS, GUEST_KIB, false,
                                          "swept");
            char fault[32] = "";
            if (k)
                snprintf(fault, sizeof(fault), "FSM_FAULT=%u:%s", k, cancel ? "cancel" : "5");
            snprintf(args, sizeof(args), "restore -i %s --domid %u", path, target);
            char cmd[600];
            snprintf(cmd, sizeof(cmd), "env LOCKSTEP_TRACE=1 %s '%s' --backend sim %s 2>&1",
                     fault, getenv("LOCKSTEP_BIN"), args);
            FILE *p = popen(cmd, "r");
            assert_non_null(p);
            size_t n = fread(out, 1, sizeof(out) - 1, p);
            out[n] = '\0';
            int st = pclose(p);
            int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            if (k == 0) {
                /* The clean run counts the dispatches (trace lines "fsm SEQ ..."). */
                assert_int_equal(rc, 0);
                for (const char *l = out; *l;) {
                    if (strncmp(l, "fsm ", 4) == 0) {
                        const char *seq = l + 3 + strspn(l + 3, " ");
                        dispatches += *seq >= '1' && *seq <= '9';
                    }
                    const char *nl = strchr(l, '\n');
                    l = nl ? nl + 1 : l + strlen(l);
                }
                assert_true(dispatches > 10);
            } else if (rc == 1) {
                failed++;
                if (!strstr(out, "is the toolstack's"))
                    fail_msg("%s: the error does not say the domain was left:\n%s", fault, out);
            } else if (rc != 0) {
                fail_msg("%s: exit %d:\n%s", fault, rc, out);
            }
            /* Restored (a moot fault) or not: the given domain is there, alone. */
            struct ls_domain_info info = info_of(f, target);
            if (rc == 1 && info.state != LS_RUN_PAUSED)
                fail_msg("%s: the given domain was left %s, not paused", fault,
                         ls_run_state_name(info.state));
            assert_int_equal(domain_count(f), 1);
            struct ls_errbuf e;
            ls_err_clear(&e);
            assert_int_equal(ls_domain_destroy(f->ctx, target, &e), 0);
        }
    }
    assert_true(failed > dispatches);   /* most faults and cancels made it fail */
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_pv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_hvm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_pvh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unset_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_leaves_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_sweep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
