/* test/sim/test_sim_disk.c - a sim guest's disks: drives of its real QEMU,
 * written by its vCPU through QEMU, their bytes a pure function of the seed
 * and the write count; a pause returns with every owed write in the disk;
 * bad disks refused with the reason. About 3 s (a QEMU per test). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "backends/sim/sim.h"
#include "lockstep/sim.h"
#include "simtest.h"

#define DISK_BYTES (1u << 20)
#define BLOCK 4096u

struct t {
    struct simtest_env env;
    char dir[32];
    char disk[2][64];
};

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    simtest_env_init(&t->env, 0);
    snprintf(t->dir, sizeof(t->dir), "/tmp/lssd.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    for (int i = 0; i < 2; i++) {
        snprintf(t->disk[i], sizeof(t->disk[i]), "%s/d%d.raw", t->dir, i);
        FILE *f = fopen(t->disk[i], "w");
        assert_non_null(f);
        assert_int_equal(ftruncate(fileno(f), DISK_BYTES), 0);
        fclose(f);
    }
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    simtest_env_fini(&t->env);
    for (int i = 0; i < 2; i++)
        unlink(t->disk[i]);
    rmdir(t->dir);
    free(t);
    return 0;
}

static uint32_t hvm_guest_dm(struct ls_backend *be, uint64_t seed, enum ls_device_model dm)
{
    struct ls_sim_create_args a = { .type = LS_GUEST_HVM, .memory_kib = 8192, .vcpus = 1,
                                    .seed = seed, .populate = true, .device_model = dm };
    struct ls_errbuf e;
    uint32_t id = 0;
    ls_err_clear(&e);
    if (ls_sim_create(be, &a, &id, &e) < 0)
        fail_msg("create: %s", e.msg);
    return id;
}

static uint32_t hvm_guest(struct ls_backend *be, uint64_t seed)
{
    return hvm_guest_dm(be, seed, LS_DM_QEMU);
}

static void attach(struct ls_backend *be, uint32_t id, const char *path, uint64_t every)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_attach_disk(be, id, path, LS_SIM_DISK_RAW, &e) < 0)
        fail_msg("attach %s: %s", path, e.msg);
    struct ls_sim_disks d = { .every = every, .block = BLOCK };
    if (every && ls_sim_set_disks(be, id, &d, &e) < 0)
        fail_msg("set disks: %s", e.msg);
}

static struct ls_sim_disks disks_of(struct ls_backend *be, uint32_t id)
{
    struct ls_sim_disks d;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_get_disks(be, id, &d, &e) < 0)
        fail_msg("get disks: %s", e.msg);
    return d;
}

/* The disks hold exactly writes 0..n-1 of seed: every byte compared. */
static void check_files(struct t *t, unsigned ndisks, uint64_t seed, uint64_t n)
{
    uint64_t sizes[2] = { DISK_BYTES, DISK_BYTES };
    uint8_t *want[2], *got = malloc(DISK_BYTES);
    for (unsigned i = 0; i < ndisks; i++)
        want[i] = calloc(1, DISK_BYTES);
    for (uint64_t j = 0; j < n; j++) {
        unsigned disk;
        uint64_t off;
        uint8_t fill;
        ls_sim_disk_write_at(seed, j, BLOCK, ndisks, sizes, &disk, &off, &fill);
        assert_true(off + BLOCK <= DISK_BYTES);
        memset(want[disk] + off, fill, BLOCK);
    }
    for (unsigned i = 0; i < ndisks; i++) {
        FILE *f = fopen(t->disk[i], "rb");
        assert_non_null(f);
        assert_int_equal(fread(got, 1, DISK_BYTES, f), DISK_BYTES);
        fclose(f);
        for (size_t b = 0; b < DISK_BYTES; b += BLOCK)
            if (memcmp(got + b, want[i] + b, BLOCK) != 0)
                fail_msg("disk %u block at %zu: 0x%02x, expected 0x%02x (seed %llu, %llu writes)",
                         i, b, got[b], want[i][b], (unsigned long long)seed,
                         (unsigned long long)n);
        free(want[i]);
    }
    free(got);
}

static void destroy(struct ls_backend *be, uint32_t id)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(be->ops->destroy(be, id, &e), 0);
}

/* A paused guest made to write at once (a replay): its disks follow. */
static void test_replayed_writes(void **state)
{
    struct t *t = *state;
    struct ls_backend *be = simtest_open();
    uint32_t id = hvm_guest(be, 11);
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(be->ops->pause(be, id, &e), 0);
    attach(be, id, t->disk[0], 0);
    attach(be, id, t->disk[1], 3);
    struct ls_sim_workload w = { .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 11, .writes = 600 };
    if (ls_sim_set_workload(be, id, &w, &e) < 0)
        fail_msg("workload: %s", e.msg);
    struct ls_sim_disks d = disks_of(be, id);
    assert_int_equal(d.ndisks, 2);
    assert_int_equal(d.owed, 200);
    for (int i = 0; i < 5000 && d.written < d.owed; i++) {
        usleep(1000);
        d = disks_of(be, id);
    }
    assert_int_equal(d.written, 200);
    assert_int_equal(d.failed, 0);
    destroy(be, id);
    check_files(t, 2, 11, 200);
    be->ops->close(be);
}

/* The disks live in a block QEMU of their own: a guest without a device
 * model has them too, and it dies with the domain. */
static void test_block_qemu(void **state)
{
    struct t *t = *state;
    struct ls_backend *be = simtest_open();
    uint32_t id = hvm_guest_dm(be, 14, LS_DM_STANDIN);
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(be->ops->pause(be, id, &e), 0);
    attach(be, id, t->disk[0], 2);
    struct ls_sim_disks d = disks_of(be, id);
    assert_true(d.pid > 0);
    assert_int_equal(kill(d.pid, 0), 0);
    assert_non_null(strstr(d.qmp_path, ".blk/qmp.sock"));
    assert_int_equal(access(d.qmp_path, F_OK), 0);
    struct ls_sim_workload w = { .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 14, .writes = 101 };
    assert_int_equal(ls_sim_set_workload(be, id, &w, &e), 0);
    for (int i = 0; i < 5000 && (d = disks_of(be, id)).written < 50; i++)
        usleep(1000);
    assert_int_equal(d.written, 50);
    destroy(be, id);
    for (int i = 0; i < 2000 && kill(d.pid, 0) == 0; i++)
        usleep(1000);
    assert_int_equal(kill(d.pid, 0), -1);
    check_files(t, 1, 14, 50);
    be->ops->close(be);
}

/* A running guest: a pause returns with every write it owes in its disk. */
static void test_pause_flushes(void **state)
{
    struct t *t = *state;
    struct ls_backend *be = simtest_open();
    uint32_t id = hvm_guest(be, 12);
    attach(be, id, t->disk[0], 4);
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_sim_workload w = { .rate = 2000, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 12 };
    if (ls_sim_set_workload(be, id, &w, &e) < 0)
        fail_msg("workload: %s", e.msg);
    usleep(400 * 1000);
    assert_int_equal(be->ops->pause(be, id, &e), 0);
    struct ls_sim_disks d = disks_of(be, id);
    struct ls_sim_workload now;
    assert_int_equal(ls_sim_get_workload(be, id, &now, &e), 0);
    assert_true(d.owed > 20);
    assert_int_equal(d.owed, now.writes / 4);
    assert_int_equal(d.written, d.owed);
    destroy(be, id);
    check_files(t, 1, 12, d.written);
    be->ops->close(be);
}

/* Refusals name what was wrong; a write QEMU refuses is counted with its words. */
static void test_refusals(void **state)
{
    struct t *t = *state;
    struct ls_backend *be = simtest_open();
    struct ls_errbuf e;
    struct ls_sim_create_args pv = { .type = LS_GUEST_PV, .memory_kib = 8192, .vcpus = 1,
                                     .seed = 1, .populate = true };
    uint32_t pvid = 0, id = hvm_guest(be, 13);
    ls_err_clear(&e);
    assert_int_equal(ls_sim_create(be, &pv, &pvid, &e), 0);
    assert_true(ls_sim_attach_disk(be, pvid, t->disk[0], LS_SIM_DISK_RAW, &e) < 0);
    assert_non_null(strstr(e.msg, "not an HVM domain"));
    ls_err_clear(&e);
    assert_int_equal(ls_sim_attach_disk(be, id, "/nonexistent/x.raw", LS_SIM_DISK_RAW, &e),
                     -ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/x.raw"));
    ls_err_clear(&e);
    assert_true(ls_sim_attach_disk(be, id, t->disk[0], LS_SIM_DISK_QCOW2, &e) < 0);
    assert_non_null(strstr(e.msg, "not a qcow2 image"));
    /* No replication top on this QEMU: the writes through it are refused. */
    attach(be, id, t->disk[0], 0);
    struct ls_sim_disks top = { .every = 1, .block = BLOCK, .top = true };
    ls_err_clear(&e);
    assert_int_equal(ls_sim_set_disks(be, id, &top, &e), 0);
    assert_int_equal(be->ops->pause(be, id, &e), 0);
    struct ls_sim_workload w = { .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 13, .writes = 3 };
    assert_int_equal(ls_sim_set_workload(be, id, &w, &e), 0);
    struct ls_sim_disks d = disks_of(be, id);
    for (int i = 0; i < 5000 && d.written < 3; i++) {
        usleep(1000);
        d = disks_of(be, id);
    }
    assert_int_equal(d.failed, 3);
    assert_non_null(strstr(d.last_error, "lsdisk0-top"));
    destroy(be, id);
    destroy(be, pvid);
    be->ops->close(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replayed_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_qemu, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
