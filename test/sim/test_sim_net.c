/* test/sim/test_sim_net.c - a sim guest's network output: real frames, the
 * same from the same state, nondeterministic ones carried in memory, dropped
 * without a reader, and a running guest's stream contiguous (about 1 s). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/sim/proto.h"
#include "backends/sim/sim.h"
#include "simtest.h"

#define WRITES 2000u
#define EVERY 5u
#define FRAMES (WRITES / EVERY)

static int setup(void **state)
{
    struct simtest_env *t = calloc(1, sizeof(*t));
    simtest_env_init(t, 0);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    simtest_env_fini(*state);
    free(*state);
    return 0;
}

static struct ls_backend *open_be(void)
{
    struct ls_backend *be = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_open(&be, &e) < 0)
        fail_msg("ls_sim_open: %s", e.msg);
    return be;
}

/* A paused PV guest with a network and an attached reader (returned). */
static uint32_t guest(struct ls_backend *be, uint64_t seed, unsigned ppm, uint64_t rng, int *fd)
{
    struct ls_sim_create_args a = { .type = LS_GUEST_PV, .memory_kib = 8192, .vcpus = 1,
                                    .seed = seed, .populate = true };
    struct ls_errbuf e;
    uint32_t id = 0;
    ls_err_clear(&e);
    if (ls_sim_create(be, &a, &id, &e) < 0)
        fail_msg("create: %s", e.msg);
    assert_int_equal(be->ops->pause(be, id, &e), 0);
    struct ls_sim_net n = { .every = EVERY, .nondet_ppm = ppm, .rng_seed = rng };
    if (ls_sim_set_net(be, id, &n, &e) < 0)
        fail_msg("set_net: %s", e.msg);
    if (ls_sim_net_attach(be, id, fd, &e) < 0)
        fail_msg("attach: %s", e.msg);
    return id;
}

/* The guest makes `writes` writes at once (a replay on the paused guest). */
static void replay(struct ls_backend *be, uint32_t id, uint64_t seed, uint64_t writes)
{
    struct ls_sim_workload w = { .pattern = LS_SIM_DIRTY_UNIFORM, .seed = seed, .writes = writes };
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_set_workload(be, id, &w, &e) < 0)
        fail_msg("workload: %s", e.msg);
}

static void read_frames(int fd, struct ls_sim_frame *f, unsigned n, uint8_t (*raw)[LS_SIM_FRAME_LEN])
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t buf[256];
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        assert_int_equal(r, LS_SIM_FRAME_LEN);
        assert_int_equal(ls_sim_frame_parse(buf, (size_t)r, &f[i]), 0);
        if (raw)
            memcpy(raw[i], buf, LS_SIM_FRAME_LEN);
    }
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void digest(struct ls_backend *be, uint32_t id, char hex[65])
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (be->ops->digest(be, id, hex, &e) < 0)
        fail_msg("digest: %s", e.msg);
}

/* Two guests of one seed send byte-identical, numbered, well-formed frames. */
static void test_same_state_same_frames(void **state)
{
    struct ls_backend *be = open_be();
    int fa, fb;
    uint32_t a = guest(be, 7, 0, 0, &fa), b = guest(be, 7, 0, 0, &fb);
    replay(be, a, 7, WRITES);
    replay(be, b, 7, WRITES);
    static struct ls_sim_frame x[FRAMES], y[FRAMES];
    static uint8_t rx[FRAMES][LS_SIM_FRAME_LEN], ry[FRAMES][LS_SIM_FRAME_LEN];
    read_frames(fa, x, FRAMES, rx);
    read_frames(fb, y, FRAMES, ry);
    for (unsigned i = 0; i < FRAMES; i++) {
        assert_int_equal(x[i].seq, i);
        assert_int_equal(x[i].writes, (uint64_t)(i + 1) * EVERY);
        assert_false(x[i].nondet);
        assert_memory_equal(rx[i], ry[i], LS_SIM_FRAME_LEN);
        /* IPv4 header and UDP checksums verify as a receiver checks them */
        assert_int_equal(csum(rx[i] + 14, 20, 0), 0xffff);
        uint32_t pseudo = csum(rx[i] + 26, 8, 0) + 17 + 48;
        assert_int_equal(csum(rx[i] + 34, 48, pseudo), 0xffff);
    }
    rx[3][60] ^= 1;   /* any byte off: not a sim frame */
    assert_int_equal(ls_sim_frame_parse(rx[3], LS_SIM_FRAME_LEN, &x[3]), -EINVAL);
    char da[65], db[65];
    digest(be, a, da);
    digest(be, b, db);
    assert_string_equal(da, db);
    close(fa);
    close(fb);
    be->ops->close(be);
}

/* Nondeterministic frames: flagged, about the rate asked, and stored in
 * memory (the digests part); the same host randomness gives the same ones. */
static void test_nondeterminism(void **state)
{
    struct ls_backend *be = open_be();
    int fa, fb, fc;
    uint32_t a = guest(be, 9, 100000, 11, &fa), b = guest(be, 9, 100000, 12, &fb),
             c = guest(be, 9, 100000, 11, &fc);
    replay(be, a, 9, WRITES);
    replay(be, b, 9, WRITES);
    replay(be, c, 9, WRITES);
    static struct ls_sim_frame x[FRAMES], y[FRAMES], z[FRAMES];
    read_frames(fa, x, FRAMES, NULL);
    read_frames(fb, y, FRAMES, NULL);
    read_frames(fc, z, FRAMES, NULL);
    unsigned nondet = 0, differ = 0;
    for (unsigned i = 0; i < FRAMES; i++) {
        nondet += x[i].nondet;
        bool same = x[i].word == y[i].word && x[i].nondet == y[i].nondet;
        differ += !same;
        /* a frame differs only where one of the two guests was nondeterministic */
        assert_true(same || x[i].nondet || y[i].nondet);
        assert_int_equal(x[i].word, z[i].word);
    }
    assert_in_range(nondet, FRAMES / 20, FRAMES / 5);   /* 10% of 400: 40, binomially */
    assert_true(differ > 0);
    char da[65], db[65], dc[65];
    digest(be, a, da);
    digest(be, b, db);
    digest(be, c, dc);
    assert_string_not_equal(da, db);
    assert_string_equal(da, dc);
    struct ls_sim_net n;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_get_net(be, a, &n, &e), 0);
    assert_int_equal(n.frames, FRAMES);
    assert_int_equal(n.nondet, nondet);
    assert_int_equal(n.sent, FRAMES);
    close(fa);
    close(fb);
    close(fc);
    be->ops->close(be);
}

/* No reader: frames are dropped and counted; a guest without a network has
 * no counters (the reason says so), and a reader may attach before it has. */
static void test_no_reader(void **state)
{
    struct ls_backend *be = open_be();
    int fa;
    uint32_t a = guest(be, 3, 0, 0, &fa);
    close(fa);
    replay(be, a, 3, WRITES);
    struct ls_sim_net n;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_get_net(be, a, &n, &e), 0);
    assert_int_equal(n.frames, FRAMES);
    assert_int_equal(n.dropped, FRAMES);
    assert_int_equal(n.sent, 0);
    struct ls_sim_create_args ca = { .type = LS_GUEST_PV, .memory_kib = 8192, .vcpus = 1,
                                     .seed = 1, .populate = true };
    uint32_t plain;
    assert_int_equal(ls_sim_create(be, &ca, &plain, &e), 0);
    struct ls_sim_net none;
    assert_int_equal(ls_sim_get_net(be, plain, &none, &e), -ENODEV);
    assert_non_null(strstr(e.msg, "no network"));
    /* a reader may attach first: no frames until the network is configured */
    int fd = -1;
    assert_int_equal(ls_sim_net_attach(be, plain, &fd, &e), 0);
    assert_int_equal(ls_sim_get_net(be, plain, &none, &e), 0);
    assert_true(none.attached);
    assert_int_equal(none.every, 0);
    close(fd);
    struct ls_sim_net bad = { .every = 1, .nondet_ppm = 1000001 };
    assert_int_equal(ls_sim_set_net(be, plain, &bad, &e), -EINVAL);
    be->ops->close(be);
}

/* A running guest's frames arrive in order without a gap, and a pause
 * returns with every frame sent before it in the socket. */
static void test_running_guest(void **state)
{
    struct ls_backend *be = open_be();
    int fa;
    uint32_t a = guest(be, 5, 0, 0, &fa);
    struct ls_sim_workload w = { .rate = 50000, .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 5 };
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_set_workload(be, a, &w, &e), 0);
    assert_int_equal(be->ops->unpause(be, a, &e), 0);
    usleep(200000);
    assert_int_equal(be->ops->pause(be, a, &e), 0);
    struct ls_sim_net n;
    assert_int_equal(ls_sim_get_net(be, a, &n, &e), 0);
    assert_true(n.frames > 100);
    assert_int_equal(n.dropped, 0);
    for (uint64_t i = 0; i < n.frames; i++) {
        uint8_t buf[256];
        struct ls_sim_frame f;
        ssize_t r = recv(fa, buf, sizeof(buf), MSG_DONTWAIT);
        assert_int_equal(r, LS_SIM_FRAME_LEN);
        assert_int_equal(ls_sim_frame_parse(buf, (size_t)r, &f), 0);
        assert_int_equal(f.seq, i);
    }
    uint8_t buf[16];
    assert_int_equal(recv(fa, buf, sizeof(buf), MSG_DONTWAIT), -1);   /* nothing after the pause */
    close(fa);
    be->ops->close(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_state_same_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nondeterminism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_running_guest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
