/* test/cli/test_hist.c - cli/hist.c: percentiles in bounded memory, exact to
 * within 1/64 of the value, against the sorted samples' own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cli/hist.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* hist_pct agrees with the nearest-rank percentile of the sorted values
 * within 1/64 (a bucket's half-width relative to its value). */
static void agrees(const uint64_t *v, size_t n)
{
    struct hist *h = calloc(1, sizeof(*h));
    uint64_t *s = malloc(n * sizeof(*s));
    assert_non_null(h);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        hist_add(h, v[i]);
        s[i] = v[i];
    }
    qsort(s, n, sizeof(*s), cmp_u64);
    static const double ps[] = { 0, 1, 50, 90, 99, 99.9, 100 };
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        uint64_t want = s[(size_t)(ps[k] / 100.0 * (double)(n - 1) + 0.5)];
        uint64_t got = hist_pct(h, ps[k]);
        uint64_t d = got > want ? got - want : want - got;
        if (d * 64 > want) {
            print_error("p%.1f: got %llu, want %llu\n", ps[k], (unsigned long long)got,
                        (unsigned long long)want);
            fail();
        }
    }
    assert_int_equal(h->n, n);
    free(s);
    free(h);
}

static void test_empty_is_zero(void **state)
{
    (void)state;
    struct hist h = { 0 };
    assert_int_equal(hist_pct(&h, 50), 0);
    assert_int_equal(hist_pct(&h, 99), 0);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    uint64_t v[] = { 3, 1, 2, 0, 31, 17 };
    struct hist h = { 0 };
    for (size_t i = 0; i < 6; i++)
        hist_add(&h, v[i]);
    assert_int_equal(hist_pct(&h, 0), 0);      /* one bucket per value below 32 */
    assert_int_equal(hist_pct(&h, 100), 31);
    assert_int_equal(hist_pct(&h, 50), 3);     /* rank 4 of 0 1 2 3 17 31 */
}

static void test_uniform(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < N; i++)
        v[i] = 1000 + i * 37;            /* pauses of 1 µs to 3.7 ms, in ns */
    agrees(v, N);
    free(v);
}

static void test_skewed_and_huge(void **state)
{
    (void)state;
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof(*v));
    assert_non_null(v);
    uint64_t x = 88172645463325252ull;    /* xorshift: a long tail over many octaves */
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = x >> (x % 60);
    }
    v[0] = UINT64_MAX;                   /* the last octave's last bucket */
    agrees(v, N);
    free(v);
}

static void test_constant(void **state)
{
    (void)state;
    uint64_t v[1000];
    for (size_t i = 0; i < 1000; i++)
        v[i] = 2500000;                  /* 2.5 ms */
    agrees(v, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_is_zero),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_skewed_and_huge),
        cmocka_unit_test(test_constant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
