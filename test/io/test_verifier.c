/* test/io/test_verifier.c - streams built by our encoders pass Xen's own
 * verify-stream-v2, and corrupted ones fail it (and our parser) too. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/byteorder.h"
#include "io/records.h"
#include "io/stream_parser.h"
#include "sample_streams.h"

#define VERIFIER   "/usr/lib/xen-4.17/bin/verify-stream-v2"
#define XEN_PYPATH "/usr/lib/xen-4.17/lib/python"

/* Writes the stream to a temp file and returns the verifier's exit code. */
static int run_verifier(const struct stream_buf *b)
{
    char path[] = "/tmp/ls-verify-XXXXXX", cmd[256];
    int fd = mkstemp(path), status;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
    close(fd);
    snprintf(cmd, sizeof(cmd), "PYTHONPATH=%s %s -q -f xl -i %s", XEN_PYPATH, VERIFIER, path);
    status = system(cmd);
    unlink(path);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int our_parser(const struct stream_buf *b, struct ls_errbuf *e)
{
    struct stream_parser p;
    int rc;

    stream_parser_init(&p, STREAM_FORMAT_AUTO, NULL, NULL);
    rc = stream_parser_feed(&p, b->data, b->len, e);
    if (!rc)
        rc = stream_parser_finish(&p, e);
    stream_parser_destroy(&p);
    return rc;
}

static void skip_without_verifier(void)
{
    if (access(VERIFIER, X_OK) != 0)
        skip();
}

static void check_valid_and_corrupted(void (*build)(struct stream_buf *), size_t corrupt_at,
                                      uint8_t value)
{
    struct stream_buf b;
    struct ls_errbuf e = { 0 };

    stream_buf_init(&b);
    build(&b);
    assert_int_equal(b.rc, 0);
    if (our_parser(&b, &e))
        fail_msg("our parser: %s", e.msg);
    assert_int_equal(run_verifier(&b), 0);
    b.data[corrupt_at] = value;
    assert_int_equal(run_verifier(&b), 1);
    assert_true(our_parser(&b, &e) < 0);
    stream_buf_release(&b);
}

/* Offset of the first libxc record of `type` in an xl stream. */
static size_t find_record(const struct stream_buf *b, uint32_t type)
{
    size_t off = 48 + get_ne32(b->data + 44) + 16 + 8 + 24 + 16;    /* first libxc record */

    while (off + 8 <= b->len && get_le32(b->data + off) != type)
        off += 8 + STREAM_ROUNDUP8(get_le32(b->data + off + 4));
    assert_true(off + 8 <= b->len);
    return off;
}

static void test_verifier_accepts_hvm(void **state)
{
    struct stream_buf b;
    size_t tsc;

    skip_without_verifier();
    stream_buf_init(&b);
    sample_xl_hvm(&b);
    tsc = find_record(&b, LIBXC_REC_X86_TSC_INFO);
    stream_buf_release(&b);
    /* corruption: TSC_INFO reserved field */
    check_valid_and_corrupted(sample_xl_hvm, tsc + 8 + 20, 1);
}

static void test_verifier_accepts_pv(void **state)
{
    struct stream_buf b;
    size_t page;

    skip_without_verifier();
    stream_buf_init(&b);
    sample_xl_pv(&b);
    page = find_record(&b, LIBXC_REC_PAGE_DATA);
    stream_buf_release(&b);
    /* corruption: page type 6 (invalid) in the first pfn word */
    check_valid_and_corrupted(sample_xl_pv, page + 8 + 8 + 7, 0x60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verifier_accepts_hvm),
        cmocka_unit_test(test_verifier_accepts_pv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
