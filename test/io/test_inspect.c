/* test/io/test_inspect.c - `lockstep inspect` text and JSON output. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "lockstep/inspect.h"
#include "io/records.h"
#include "sample_streams.h"

/* Runs ls_inspect on the bytes through a temp file; returns rc, *text the output. */
static int inspect_bytes(const uint8_t *data, size_t len, bool json, char **text,
                         struct ls_errbuf *e)
{
    char path[] = "/tmp/ls-inspect-XXXXXX";
    int fd = mkstemp(path);
    size_t text_len;
    FILE *out;
    int rc;

    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    out = open_memstream(text, &text_len);
    assert_non_null(out);
    rc = ls_inspect(fd, out, json, e);
    fclose(out);
    close(fd);
    return rc;
}

static void expect_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("output lacks \"%s\":\n%s", needle, text);
}

static void test_text_hvm(void **state)
{
    struct stream_buf b;
    struct ls_errbuf e = { 0 };
    char *text;

    stream_buf_init(&b);
    sample_xl_hvm(&b);
    assert_int_equal(inspect_bytes(b.data, b.len, false, &text, &e), 0);
    expect_contains(text, "xl header");
    expect_contains(text, "mandatory_flags=0x3");
    expect_contains(text, "domain_type=x86 HVM");
    expect_contains(text, "xen_minor=17");
    expect_contains(text, "PAGE_DATA");
    expect_contains(text, "count=12 data_pages=9 NOTAB:9 BROKEN:1 XALLOC:1 XTAB:1");
    expect_contains(text, "khz=2394000");
    expect_contains(text, "[1]=0xfeffc");
    expect_contains(text, "leaves=3");
    expect_contains(text, "msrs=2");
    expect_contains(text, "static_data_end=here");
    expect_contains(text, "emulator=qemu-upstream index=0 context_bytes=300");
    expect_contains(text, "summary: ");
    expect_contains(text, "end: complete");
    expect_contains(text, "libxc PAGE_DATA");
    free(text);
    stream_buf_release(&b);
}

static void test_text_pv_and_colo(void **state)
{
    struct stream_buf b;
    struct ls_errbuf e = { 0 };
    char *text;

    stream_buf_init(&b);
    sample_xl_pv(&b);
    assert_int_equal(inspect_bytes(b.data, b.len, false, &text, &e), 0);
    expect_contains(text, "guest_width=8 pt_levels=4");
    expect_contains(text, "start_pfn=0x0 end_pfn=0xf frames=1");
    expect_contains(text, "vcpu_id=1 context_bytes=5168");
    expect_contains(text, "PINNED L4TAB");
    free(text);
    stream_buf_release(&b);

    sample_xl_checkpointed(&b, 2, true);
    assert_int_equal(inspect_bytes(b.data, b.len, false, &text, &e), 0);
    expect_contains(text, "state=CHECKPOINT_NEW");
    expect_contains(text, "physmap/f0000000/name=vga.vram");
    expect_contains(text, "2 checkpoints");
    expect_contains(text, "end: checkpointed");
    free(text);
    stream_buf_release(&b);
}

static yajl_val get(yajl_val v, const char *a, const char *b)
{
    const char *path[] = { a, b, NULL };
    yajl_val r = yajl_tree_get(v, path, yajl_t_any);
    assert_non_null(r);
    return r;
}

static void test_json_hvm(void **state)
{
    struct stream_buf b;
    struct ls_errbuf e = { 0 };
    char *text, err[256];
    yajl_val doc, recs, first;

    stream_buf_init(&b);
    sample_xl_hvm(&b);
    assert_int_equal(inspect_bytes(b.data, b.len, true, &text, &e), 0);
    doc = yajl_tree_parse(text, err, sizeof(err));
    if (!doc)
        fail_msg("bad JSON (%s):\n%s", err, text);
    recs = get(doc, "records", NULL);
    assert_true(YAJL_IS_ARRAY(recs));
    assert_int_equal(recs->u.array.len, 4 + 1 + 9 + 2);  /* headers, LIBXC_CONTEXT, libxc, libxl */
    first = recs->u.array.values[0];
    assert_string_equal(YAJL_GET_STRING(get(first, "type", NULL)), "xl header");
    const char *config = YAJL_GET_STRING(get(first, "config", NULL));
    assert_non_null(config);
    assert_non_null(strstr(config, "\"max_memkb\""));
    assert_string_equal(YAJL_GET_STRING(get(doc, "summary", "end")), "complete");
    assert_int_equal(YAJL_GET_INTEGER(get(get(doc, "summary", "pages_by_type"), "NOTAB", NULL)), 10);
    assert_int_equal(YAJL_GET_INTEGER(get(doc, "summary", "bytes")), b.len);
    assert_null(yajl_tree_get(doc, (const char *[]){ "error", NULL }, yajl_t_any));
    yajl_tree_free(doc);
    free(text);
    stream_buf_release(&b);
}

static void test_invalid_stream_prints_prefix_and_error(void **state)
{
    struct stream_buf b;
    struct ls_errbuf e = { 0 };
    char *text, err[256];
    yajl_val doc;
    size_t cut;

    stream_buf_init(&b);
    sample_xl_hvm(&b);
    cut = b.len - 100;                       /* inside EMULATOR_CONTEXT */
    assert_int_equal(inspect_bytes(b.data, cut, false, &text, &e), -ENODATA);
    expect_contains(text, "X86_TSC_INFO");
    expect_contains(text, "error: offset ");
    expect_contains(text, "truncated");
    expect_contains(e.msg, "truncated inside libxl record EMULATOR_CONTEXT");
    free(text);
    ls_err_clear(&e);
    b.data[b.len - 9] = 1;                   /* last padding byte of EMULATOR_CONTEXT */
    assert_true(inspect_bytes(b.data, b.len, true, &text, &e) < 0);
    doc = yajl_tree_parse(text, err, sizeof(err));
    if (!doc)
        fail_msg("bad JSON (%s):\n%s", err, text);
    assert_string_equal(YAJL_GET_STRING(get(doc, "error", NULL)), e.msg);
    assert_string_equal(YAJL_GET_STRING(get(doc, "summary", "end")), "invalid");
    yajl_tree_free(doc);
    free(text);
    stream_buf_release(&b);
}

static void test_read_error(void **state)
{
    struct ls_errbuf e = { 0 };
    char *text;
    size_t len;
    FILE *out = open_memstream(&text, &len);

    assert_int_equal(ls_inspect(-1, out, false, &e), -EBADF);
    fclose(out);
    assert_non_null(strstr(e.msg, "read failed"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_hvm),
        cmocka_unit_test(test_text_pv_and_colo),
        cmocka_unit_test(test_json_hvm),
        cmocka_unit_test(test_invalid_stream_prints_prefix_and_error),
        cmocka_unit_test(test_read_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
