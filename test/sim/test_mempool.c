/* test/sim/test_mempool.c - the sim host's memory pool (backends/sim/mempool.c)
 * on its own: what a refill allocates, what take hands out, and the capacity.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/sim/mempool.h"

#define MIB (1u << 20)

/* A memfd of `size` bytes with data written in [off, off + len) pairs. */
static int memfd_with_data(uint64_t size, const uint64_t *ranges, unsigned n)
{
    int fd = memfd_create("test-guest", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    char *chunk = malloc(MIB);
    memset(chunk, 0xA5, MIB);
    for (unsigned i = 0; i < n; i++)
        for (uint64_t at = ranges[2 * i]; at < ranges[2 * i] + ranges[2 * i + 1]; at += MIB)
            assert_int_equal(pwrite(fd, chunk, MIB, (off_t)at), MIB);
    free(chunk);
    return fd;
}

static uint64_t allocated_bytes(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

static uint64_t file_size(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (uint64_t)st.st_size;
}

/* Every byte of fd reads as zero. */
static void assert_all_zero(int fd)
{
    uint64_t size = file_size(fd);
    char *buf = malloc(MIB);
    for (uint64_t at = 0; at < size; at += MIB) {
        ssize_t n = pread(fd, buf, MIB, (off_t)at);
        assert_true(n > 0);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i])
                fail_msg("byte %llu of a pooled memfd is 0x%02x, not zero",
                         (unsigned long long)(at + (uint64_t)i), (unsigned char)buf[i]);
    }
    free(buf);
}

static void refill_from(int old_fd)
{
    struct sim_pool_refill *r = sim_pool_plan_refill(old_fd);
    assert_non_null(r);
    close(old_fd);
    sim_pool_refill(r);
}

static int teardown(void **state)
{
    (void)state;
    sim_pool_drain();
    sim_pool_set_capacity(0);
    return 0;
}

static void test_off_by_default(void **state)
{
    (void)state;
    uint64_t ranges[] = { 0, 2 * MIB };
    int fd = memfd_with_data(4 * MIB, ranges, 1);
    assert_null(sim_pool_plan_refill(fd));
    assert_int_equal(sim_pool_take(MIB), -1);
    close(fd);
}

/* A refill allocates the destroyed memory's layout again, no more, and its
 * pages are zero: nothing of the old guest reaches the next one. */
static void test_refill_keeps_layout_not_content(void **state)
{
    (void)state;
    sim_pool_set_capacity(64 * MIB);
    uint64_t ranges[] = { 0, 4 * MIB, 8 * MIB, MIB, 60 * MIB, 4 * MIB };
    int old = memfd_with_data(64 * MIB, ranges, 3);
    refill_from(old);

    uint32_t ready, filling;
    uint64_t ready_bytes;
    sim_pool_stats(&ready, &filling, &ready_bytes, NULL);
    assert_int_equal(ready, 1);
    assert_int_equal(filling, 0);
    assert_int_equal(ready_bytes, 9 * MIB);

    uint32_t taken_before, taken_after;
    sim_pool_stats(NULL, NULL, NULL, &taken_before);
    int fd = sim_pool_take(64 * MIB);
    assert_true(fd >= 0);
    sim_pool_stats(NULL, NULL, NULL, &taken_after);
    assert_int_equal(taken_after, taken_before + 1);
    assert_int_equal(file_size(fd), 64 * MIB);
    assert_int_equal(allocated_bytes(fd), 9 * MIB);
    assert_all_zero(fd);
    sim_pool_stats(&ready, &filling, &ready_bytes, NULL);
    assert_int_equal(ready, 0);
    assert_int_equal(ready_bytes, 0);
    close(fd);
}

/* take picks the smallest memfd that fits and cuts it to size; none fits: -1. */
static void test_take_smallest_that_fits(void **state)
{
    (void)state;
    sim_pool_set_capacity(256 * MIB);
    uint64_t big[] = { 0, 16 * MIB }, small[] = { 0, 8 * MIB };
    refill_from(memfd_with_data(64 * MIB, big, 1));
    refill_from(memfd_with_data(32 * MIB, small, 1));

    assert_int_equal(sim_pool_take(100 * MIB), -1);
    int fd = sim_pool_take(20 * MIB);
    assert_true(fd >= 0);
    assert_int_equal(file_size(fd), 20 * MIB);
    assert_int_equal(allocated_bytes(fd), 8 * MIB);   /* the 32 MiB one, cut */
    close(fd);
    fd = sim_pool_take(20 * MIB);
    assert_true(fd >= 0);
    assert_int_equal(allocated_bytes(fd), 16 * MIB);   /* the 64 MiB one: its tail went back */
    close(fd);
    assert_int_equal(sim_pool_take(MIB), -1);
}

/* The pool never holds more than its capacity, ready and refilling together:
 * a new layout displaces the oldest ready memfds, never a refill in flight,
 * and one bigger than the whole capacity is not pooled. */
static void test_capacity(void **state)
{
    (void)state;
    sim_pool_set_capacity(20 * MIB);
    uint64_t r12[] = { 0, 12 * MIB }, r6[] = { 0, 6 * MIB }, r24[] = { 0, 24 * MIB };
    refill_from(memfd_with_data(16 * MIB, r6, 1));    /* oldest */
    refill_from(memfd_with_data(8 * MIB, r6, 1));
    uint32_t ready;
    uint64_t ready_bytes;
    sim_pool_stats(&ready, NULL, &ready_bytes, NULL);
    assert_int_equal(ready, 2);
    refill_from(memfd_with_data(32 * MIB, r12, 1));   /* 6 + 6 + 12 > 20: the oldest goes */
    sim_pool_stats(&ready, NULL, &ready_bytes, NULL);
    assert_int_equal(ready, 2);
    assert_int_equal(ready_bytes, 18 * MIB);
    int big = memfd_with_data(32 * MIB, r24, 1);
    assert_null(sim_pool_plan_refill(big));           /* 24 > 20 whatever is displaced */
    close(big);
    sim_pool_stats(&ready, NULL, NULL, NULL);
    assert_int_equal(ready, 2);                       /* and nothing was displaced for it */
    /* Left: the 8 MiB and the 32 MiB memfds. Had the newer 6 MiB layout gone
     * instead of the older, 12 MiB would get the 16 MiB memfd. */
    int second = sim_pool_take(12 * MIB);
    assert_true(second >= 0);
    assert_int_equal(allocated_bytes(second), 12 * MIB);
    close(second);
    second = sim_pool_take(8 * MIB);
    assert_true(second >= 0);
    assert_int_equal(allocated_bytes(second), 6 * MIB);
    close(second);

    /* A refill planned but not yet run counts as held (the pool is empty now). */
    uint64_t r8[] = { 0, 8 * MIB }, r16[] = { 0, 16 * MIB };
    int a = memfd_with_data(8 * MIB, r8, 1), b = memfd_with_data(16 * MIB, r16, 1);
    struct sim_pool_refill *pa = sim_pool_plan_refill(a);
    assert_non_null(pa);
    uint32_t filling;
    sim_pool_stats(NULL, &filling, NULL, NULL);
    assert_int_equal(filling, 1);
    assert_null(sim_pool_plan_refill(b));        /* 8 filling + 16 > 20: a refill in flight stays */
    close(a);
    close(b);
    sim_pool_refill(pa);
    sim_pool_stats(NULL, &filling, NULL, NULL);
    assert_int_equal(filling, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_off_by_default, teardown),
        cmocka_unit_test_teardown(test_refill_keeps_layout_not_content, teardown),
        cmocka_unit_test_teardown(test_take_smallest_that_fits, teardown),
        cmocka_unit_test_teardown(test_capacity, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
