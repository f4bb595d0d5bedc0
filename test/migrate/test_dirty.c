/* test/migrate/test_dirty.c - a running sim guest's own vCPU, log-dirty and guards.
 *
 * Against a private lockstep-simd: the vCPU writes at its rate only while
 * the domain runs (a pause or suspend returns with no write in flight), its
 * writes are a replayable function of the write count (memory and vCPU
 * registers), each pattern touches the pages it should, log-dirty has Xen's
 * peek-and-clean semantics, and guards act when their client is lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/sim/proto.h"
#include "backends/sim/sim.h"
#include "backends/sim/sim_internal.h"
#include "sim/simtest.h"

struct fix {
    struct simtest_env env;
    struct ls_backend *be;
    struct ls_errbuf e;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    simtest_env_init(&f->env, 0);
    ls_err_clear(&f->e);
    assert_int_equal(ls_sim_open(&f->be, &f->e), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    f->be->ops->close(f->be);
    simtest_env_fini(&f->env);
    free(f);
    return 0;
}

static uint32_t create(struct fix *f, enum ls_guest_type type, uint64_t seed)
{
    struct ls_sim_create_args a = { .type = type, .vcpus = 2, .memory_kib = 16 * 1024,
                                    .seed = seed, .populate = true };
    uint32_t domid;
    assert_int_equal(ls_sim_create(f->be, &a, &domid, &f->e), 0);
    return domid;
}

static void set_load(struct fix *f, uint32_t domid, uint64_t rate, enum ls_sim_dirty_pattern p,
                     unsigned hot, uint64_t seed, uint64_t replay)
{
    struct ls_sim_workload w = { .rate = rate, .pattern = p, .hot_percent = hot, .seed = seed,
                                 .writes = replay };
    int rc = ls_sim_set_workload(f->be, domid, &w, &f->e);
    if (rc < 0)
        fail_msg("set workload: %s", f->e.msg);
}

static uint64_t writes_of(struct fix *f, uint32_t domid)
{
    struct ls_sim_workload w;
    assert_int_equal(ls_sim_get_workload(f->be, domid, &w, &f->e), 0);
    return w.writes;
}

/* The running vCPU's write count once it passes `than`: polled, because on a
 * loaded machine the vCPU thread may not run for a while (10 s at most). */
static uint64_t writes_beyond(struct fix *f, uint32_t domid, uint64_t than)
{
    uint64_t k = writes_of(f, domid);
    for (int i = 0; i < 1000 && k <= than; i++) {
        usleep(10000);
        k = writes_of(f, domid);
    }
    return k;
}

static void digest(struct fix *f, uint32_t domid, char hex[65])
{
    assert_int_equal(f->be->ops->digest(f->be, domid, hex, &f->e), 0);
}

static uint64_t popcount_bitmap(const uint64_t *b, uint64_t p2m)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < (p2m + 63) / 64; i++)
        n += (uint64_t)__builtin_popcountll(b[i]);
    return n;
}

/* The vCPU writes only while running, and a pause returns with it parked. */
static void test_writes_only_while_running(void **state)
{
    struct fix *f = *state;
    uint32_t d = create(f, LS_GUEST_PV, 3);
    set_load(f, d, 20000, LS_SIM_DIRTY_UNIFORM, 0, 3, 0);
    uint64_t k1 = writes_beyond(f, d, 0);
    assert_true(k1 > 0);
    assert_int_equal(f->be->ops->pause(f->be, d, &f->e), 0);
    uint64_t k2 = writes_of(f, d);
    char a[65], b[65];
    digest(f, d, a);
    usleep(100000);
    assert_int_equal(writes_of(f, d), k2);
    digest(f, d, b);
    assert_string_equal(a, b);
    assert_int_equal(f->be->ops->unpause(f->be, d, &f->e), 0);
    assert_true(writes_beyond(f, d, k2) > k2);
    /* Suspend parks it too; resume lets it go on. */
    assert_int_equal(f->be->ops->suspend(f->be, d, 1000, &f->e), 0);
    uint64_t k3 = writes_of(f, d);
    usleep(50000);
    assert_int_equal(writes_of(f, d), k3);
    assert_int_equal(f->be->ops->resume(f->be, d, true, &f->e), 0);
    assert_true(writes_beyond(f, d, k3) > k3);
    assert_int_equal(f->be->ops->destroy(f->be, d, &f->e), 0);
}

/* After K writes a guest equals a fresh one of its seed with K writes
 * replayed, vCPU and HVM state included, for every pattern and type. */
static void test_replay_equals_running(void **state)
{
    struct fix *f = *state;
    static const struct { enum ls_sim_dirty_pattern p; unsigned hot; } pats[] = {
        { LS_SIM_DIRTY_UNIFORM, 0 }, { LS_SIM_DIRTY_HOTSET, 5 }, { LS_SIM_DIRTY_SEQUENTIAL, 0 },
    };
    enum ls_guest_type types[] = { LS_GUEST_PV, LS_GUEST_HVM, LS_GUEST_PVH };
    for (size_t t = 0; t < 3; t++) {
        for (size_t i = 0; i < 3; i++) {
            uint32_t d = create(f, types[t], 11);
            char before[65], after[65], replayed[65];
            digest(f, d, before);
            set_load(f, d, 30000, pats[i].p, pats[i].hot, 99, 0);
            assert_true(writes_beyond(f, d, 0) > 0);
            assert_int_equal(f->be->ops->pause(f->be, d, &f->e), 0);
            uint64_t k = writes_of(f, d);
            assert_true(k > 0);
            digest(f, d, after);
            assert_string_not_equal(before, after);

            uint32_t r = create(f, types[t], 11);
            assert_int_equal(f->be->ops->pause(f->be, r, &f->e), 0);
            set_load(f, r, 0, pats[i].p, pats[i].hot, 99, k);
            assert_int_equal(writes_of(f, r), k);
            digest(f, r, replayed);
            assert_string_equal(after, replayed);
            f->be->ops->destroy(f->be, d, &f->e);
            f->be->ops->destroy(f->be, r, &f->e);
        }
    }
}

static void test_workload_rules(void **state)
{
    struct fix *f = *state;
    uint32_t d = create(f, LS_GUEST_HVM, 5);
    struct ls_sim_workload w = { .rate = 1000, .pattern = LS_SIM_DIRTY_HOTSET, .hot_percent = 0 };
    assert_int_equal(ls_sim_set_workload(f->be, d, &w, &f->e), -EINVAL);
    w.hot_percent = 101;
    assert_int_equal(ls_sim_set_workload(f->be, d, &w, &f->e), -EINVAL);
    w.pattern = 7;
    assert_int_equal(ls_sim_set_workload(f->be, d, &w, &f->e), -EINVAL);
    /* Replaying on a running domain is refused; so is changing the pattern
     * once writes were made. */
    set_load(f, d, 0, LS_SIM_DIRTY_UNIFORM, 0, 1, 0);
    w = (struct ls_sim_workload){ .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 1, .writes = 10 };
    assert_int_equal(ls_sim_set_workload(f->be, d, &w, &f->e), -EBUSY);
    assert_int_equal(f->be->ops->pause(f->be, d, &f->e), 0);
    set_load(f, d, 0, LS_SIM_DIRTY_UNIFORM, 0, 1, 10);
    w.pattern = LS_SIM_DIRTY_SEQUENTIAL;
    w.writes = 0;
    ls_err_clear(&f->e);   /* an errbuf keeps its first error */
    assert_int_equal(ls_sim_set_workload(f->be, d, &w, &f->e), -EBUSY);
    if (!strstr(f->e.msg, "pattern"))
        fail_msg("unexpected reason: %s", f->e.msg);
    /* Replaying backwards is refused. */
    w = (struct ls_sim_workload){ .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 1, .writes = 5 };
    assert_int_equal(ls_sim_set_workload(f->be, d, &w, &f->e), -EINVAL);
    f->be->ops->destroy(f->be, d, &f->e);
}

/* ENABLE clears; PEEK reads without clearing; CLEAN reads and clears in one
 * step; double ENABLE is EBUSY; CLEAN without ENABLE is EINVAL. */
static void test_logdirty_peek_and_clean(void **state)
{
    struct fix *f = *state;
    struct sim_backend *sb = sim_of(f->be);
    uint32_t d = create(f, LS_GUEST_PV, 8);
    uint64_t *bm = NULL, *bm2 = NULL, n = 0, n2 = 0;
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), -EINVAL);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_ENABLE, NULL, NULL, &f->e), 0);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_ENABLE, NULL, NULL, &f->e), -EBUSY);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), 0);
    assert_int_equal(n, 0);
    free(bm);

    /* A sequential guest writes K distinct pages with its first K writes. */
    assert_int_equal(f->be->ops->pause(f->be, d, &f->e), 0);
    set_load(f, d, 0, LS_SIM_DIRTY_SEQUENTIAL, 0, 8, 300);
    struct ls_domain_info info;
    assert_int_equal(f->be->ops->domain_info(f->be, d, &info, &f->e), 0);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_PEEK, &bm, &n, &f->e), 0);
    assert_int_equal(n, 300);
    assert_int_equal(popcount_bitmap(bm, info.p2m_size), 300);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_PEEK, &bm2, &n2, &f->e), 0);
    assert_int_equal(n2, 300);
    assert_memory_equal(bm, bm2, (info.p2m_size + 63) / 64 * 8);
    free(bm2);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm2, &n2, &f->e), 0);
    assert_int_equal(n2, 300);
    assert_memory_equal(bm, bm2, (info.p2m_size + 63) / 64 * 8);
    free(bm2);
    free(bm);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), 0);
    assert_int_equal(n, 0);
    free(bm);

    /* Running: every page counted is one the guest wrote, and a write lands
     * in exactly one CLEAN. */
    set_load(f, d, 20000, LS_SIM_DIRTY_SEQUENTIAL, 0, 8, 0);
    assert_int_equal(f->be->ops->unpause(f->be, d, &f->e), 0);
    uint64_t total = 0;
    for (int i = 0; i < 5; i++) {
        usleep(20000);
        assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), 0);
        total += n;
        free(bm);
    }
    assert_int_equal(f->be->ops->pause(f->be, d, &f->e), 0);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), 0);
    total += n;
    free(bm);
    /* Sequential writes wrap only after every data page: distinct == writes. */
    assert_int_equal(total, writes_of(f, d) - 300);

    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_DISABLE, NULL, NULL, &f->e), 0);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_PEEK, &bm, &n, &f->e), -EINVAL);
    f->be->ops->destroy(f->be, d, &f->e);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The dirty rate follows the clock, whatever the host's scheduler does with
 * the vCPU thread: a CLEAN first makes the writes owed for the time elapsed,
 * so the pages between two CLEANs are the rate times the time between them
 * (bounded on both sides by the client's own clock), never fewer because the
 * thread did not run. A sequential guest's writes are distinct pages. */
static void test_dirty_rate_follows_clock(void **state)
{
    struct fix *f = *state;
    struct sim_backend *sb = sim_of(f->be);
    /* Short gaps at a high rate: the shape of a pre-copy round on a small
     * guest, where a vCPU thread that was not scheduled meant no dirty page. */
    const double rate = 100000;
    uint32_t d = create(f, LS_GUEST_PV, 12);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_ENABLE, NULL, NULL, &f->e), 0);
    set_load(f, d, (uint64_t)rate, LS_SIM_DIRTY_SEQUENTIAL, 0, 12, 0);
    struct ls_sim_workload w;
    assert_int_equal(ls_sim_get_workload(f->be, d, &w, &f->e), 0);
    uint64_t *bm, n;
    double send1 = mono_s();
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), 0);
    double recv1 = mono_s();
    free(bm);
    for (int i = 0; i < 30; i++) {
        usleep(2000);
        double send2 = mono_s();
        assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), 0);
        double recv2 = mono_s();
        free(bm);
        /* Sequential writes are distinct pages until they wrap. */
        double lo = (send2 - recv1) * rate - 1, hi = (recv2 - send1) * rate + 1;
        if (lo > (double)w.data_pages)
            lo = (double)w.data_pages;
        if ((double)n < lo || (double)n > hi)
            fail_msg("CLEAN %d: %" PRIu64 " pages dirty, want %.0f..%.0f", i, n, lo, hi);
        send1 = send2;
        recv1 = recv2;
    }
    f->be->ops->destroy(f->be, d, &f->e);
}

/* A hot set of 5% touches at most 5% of the data pages. */
static void test_hotset_stays_hot(void **state)
{
    struct fix *f = *state;
    struct sim_backend *sb = sim_of(f->be);
    uint32_t d = create(f, LS_GUEST_HVM, 4);
    assert_int_equal(f->be->ops->pause(f->be, d, &f->e), 0);
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_ENABLE, NULL, NULL, &f->e), 0);
    set_load(f, d, 0, LS_SIM_DIRTY_HOTSET, 5, 4, 20000);
    struct ls_sim_workload w;
    assert_int_equal(ls_sim_get_workload(f->be, d, &w, &f->e), 0);
    uint64_t *bm, n;
    assert_int_equal(sim_logdirty_op(sb, d, SIMP_LOGDIRTY_CLEAN, &bm, &n, &f->e), 0);
    free(bm);
    assert_true(n <= (w.data_pages * 5 + 99) / 100);
    assert_true(n >= (w.data_pages * 5 / 100) * 9 / 10);   /* 20000 writes cover the hot set */
    f->be->ops->destroy(f->be, d, &f->e);
}

/* A child process sets a guard and dies: the daemon acts on it. */
static void test_guards(void **state)
{
    struct fix *f = *state;
    uint32_t src = create(f, LS_GUEST_PV, 6);
    uint32_t kept = create(f, LS_GUEST_PV, 6);
    uint32_t target = 0, started = 0;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    if (child == 0) {
        struct ls_backend *be;
        struct ls_errbuf e;
        ls_err_clear(&e);
        if (ls_sim_open(&be, &e) < 0)
            _exit(1);
        struct ls_domain_config cfg = { .type = LS_GUEST_PV, .vcpus = 1, .memory_kib = 4096,
                                        .guard = true };
        uint32_t ids[2];
        if (be->ops->set_guard(be, src, LS_GUARD_RESUME, &e) < 0 ||
            be->ops->suspend(be, src, 1000, &e) < 0 ||
            be->ops->set_guard(be, kept, LS_GUARD_RESUME, &e) < 0 ||
            be->ops->suspend(be, kept, 1000, &e) < 0 ||
            be->ops->set_guard(be, kept, LS_GUARD_NONE, &e) < 0 ||
            be->ops->create_for_restore(be, &cfg, &ids[0], &e) < 0 ||
            be->ops->create_for_restore(be, &cfg, &ids[1], &e) < 0 ||
            be->ops->unpause(be, ids[1], &e) < 0)
            _exit(2);
        (void)!write(p[1], ids, sizeof(ids));
        pause();                       /* SIGKILLed here, its connection open */
        _exit(0);
    }
    close(p[1]);
    uint32_t ids[2];
    assert_int_equal(read(p[0], ids, sizeof(ids)), (ssize_t)sizeof(ids));
    close(p[0]);
    target = ids[0];
    started = ids[1];
    struct ls_domain_info info;
    assert_int_equal(f->be->ops->domain_info(f->be, src, &info, &f->e), 0);
    assert_int_equal(info.state, LS_RUN_SUSPENDED);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* The daemon notices the lost client on its next poll. */
    for (int i = 0; i < 200; i++) {
        if (f->be->ops->domain_info(f->be, target, &info, &f->e) == -ESRCH)
            break;
        usleep(10000);
    }
    assert_int_equal(f->be->ops->domain_info(f->be, target, &info, &f->e), -ESRCH);
    assert_int_equal(f->be->ops->domain_info(f->be, src, &info, &f->e), 0);
    assert_int_equal(info.state, LS_RUN_RUNNING);          /* resumed */
    assert_int_equal(f->be->ops->domain_info(f->be, kept, &info, &f->e), 0);
    assert_int_equal(info.state, LS_RUN_SUSPENDED);        /* its guard was released */
    assert_int_equal(f->be->ops->domain_info(f->be, started, &info, &f->e), 0);
    assert_int_equal(info.state, LS_RUN_RUNNING);          /* unpausing cleared its guard */
    f->be->ops->destroy(f->be, src, &f->e);
    f->be->ops->destroy(f->be, kept, &f->e);
    f->be->ops->destroy(f->be, started, &f->e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writes_only_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_equals_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workload_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logdirty_peek_and_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_rate_follows_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotset_stays_hot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guards, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
