/* test/sim/test_rules_agree.c - inspect and restore refuse a bad stream for
 * the same rule.
 *
 * Both go through io/stream_rules.h: `lockstep inspect`'s push parser, and a
 * real restore (the restore role's libxl reader, the sim backend's libxc
 * reader, on a private lockstep-simd). For each bad stream below, built
 * around one bad record with the sample builders, the parser's error must
 * name the marked offset, and the restore must fail with the same code and
 * the parser's message word for word (offset, layer, record type, rule),
 * leaving no domain behind.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "io/byteorder.h"
#include "io/record_body.h"
#include "io/records.h"
#include "io/stream_parser.h"
#include "lockstep/lockstep.h"
#include "lockstep/sim.h"
#include "../io/sample_streams.h"
#include "simtest.h"

#define PV_CONFIG "{\"c_info\":{\"type\":\"pv\",\"name\":\"guest\"},\"b_info\":{\"max_memkb\":65536}}"

struct fixture {
    struct simtest_env env;
    uv_loop_t loop;
    struct ls_ctx *ctx;
    unsigned streams;
    /* Real streams the sim saved, up to and including their libxc END: a
     * memory image restore accepts, for bad libxl records after it. */
    struct stream_buf saved[2];          /* [0] PV, [1] HVM */
};

struct outcome {
    bool called;
    int rc;
    char msg[1024];
};

static struct fixture *fx;

static void on_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    (void)op;
    struct outcome *o = data;
    o->called = true;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
}

/* Offset just past the libxc END record of a saved xl stream. */
static size_t libxc_end(const struct stream_buf *b)
{
    size_t p = 48 + get_ne32(b->data + 44) + 16 + 8 + 24 + 16;

    for (;;) {
        uint32_t type = get_le32(b->data + p), len = get_le32(b->data + p + 4);
        p += 8 + STREAM_ROUNDUP8(len);
        if (type == LIBXC_REC_END)
            return p;
        assert_true(p < b->len);
    }
}

static void save_guest(struct fixture *f, enum ls_guest_type type, struct stream_buf *out)
{
    struct ls_sim_create_args a = { .type = type, .vcpus = 1, .memory_kib = 2048, .seed = 7,
                                    .name = "source", .populate = true };
    struct ls_save_opts so = { .format = LS_FORMAT_XL };
    struct outcome o = { 0 };
    struct ls_op *op = NULL;
    struct ls_errbuf e;
    struct stat st;
    int fd = memfd_create("saved", MFD_CLOEXEC);

    ls_err_clear(&e);
    if (ls_sim_create(ls_ctx_backend(f->ctx), &a, &so.domid, &e) < 0)
        fail_msg("ls_sim_create: %s", e.msg);
    so.fd = fd;
    if (ls_save_start(f->ctx, &so, on_done, &o, &op, &e) < 0)
        fail_msg("ls_save_start: %s", e.msg);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (!o.called || o.rc)
        fail_msg("save: %s", o.msg);
    ls_op_free(op);
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *bytes = malloc((size_t)st.st_size);
    assert_non_null(bytes);
    assert_int_equal(pread(fd, bytes, (size_t)st.st_size, 0), st.st_size);
    stream_buf_init(out);
    stream_buf_append(out, bytes, (size_t)st.st_size);
    free(bytes);
    out->len = libxc_end(out);
    close(fd);                           /* the save destroyed its domain, as xl save */
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ls_errbuf e;

    simtest_env_init(&f->env, 0);
    uv_loop_init(&f->loop);
    ls_err_clear(&e);
    if (ls_ctx_new(&f->ctx, &f->loop, LS_BACKEND_SIM, &e) < 0)
        fail_msg("ls_ctx_new: %s", e.msg);
    fx = f;
    save_guest(f, LS_GUEST_PV, &f->saved[0]);
    save_guest(f, LS_GUEST_HVM, &f->saved[1]);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    stream_buf_release(&f->saved[0]);
    stream_buf_release(&f->saved[1]);
    ls_ctx_free(f->ctx);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    simtest_env_fini(&f->env);
    free(f);
    return 0;
}

static size_t domain_count(void)
{
    struct ls_domain_info *all = NULL;
    size_t n = 0;
    struct ls_errbuf e;

    ls_err_clear(&e);
    if (ls_sim_list(ls_ctx_backend(fx->ctx), &all, &n, &e) < 0)
        fail_msg("ls_sim_list: %s", e.msg);
    free(all);
    return n;
}

static int parse_all(const struct stream_buf *b, struct ls_errbuf *e)
{
    struct stream_parser p;
    int rc;

    stream_parser_init(&p, STREAM_FORMAT_AUTO, NULL, NULL);
    rc = stream_parser_feed(&p, b->data, b->len, e);
    if (rc == 0)
        rc = stream_parser_finish(&p, e);
    stream_parser_destroy(&p);
    return rc;
}

static struct outcome restore_all(const struct stream_buf *b)
{
    struct ls_restore_opts ro = { 0 };
    struct outcome o = { 0 };
    struct ls_op *op = NULL;
    struct ls_errbuf e;
    int fd = memfd_create("stream", MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    ro.fd = fd;
    ls_err_clear(&e);
    if (ls_restore_start(fx->ctx, &ro, on_done, &o, &op, &e) < 0)
        fail_msg("ls_restore_start: %s", e.msg);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(o.called);
    ls_op_free(op);
    close(fd);
    return o;
}

static void expect_same(const struct stream_buf *b, uint64_t off, const char *rule, int line)
{
    struct ls_errbuf e = { 0 };
    char want[40];
    int rc;
    struct outcome o;

    assert_int_equal(b->rc, 0);
    snprintf(want, sizeof(want), "offset %" PRIu64 ": ", off);
    rc = parse_all(b, &e);
    if (rc >= 0 || !strstr(e.msg, want) || !strstr(e.msg, rule))
        fail_msg("line %d: inspect: expected \"%s...%s\", got rc %d \"%s\"", line, want, rule,
                 rc, e.msg);
    o = restore_all(b);
    if (o.rc != rc || !strstr(o.msg, e.msg))
        fail_msg("line %d: inspect refused with rc %d \"%s\"\n  but restore got rc %d \"%s\"",
                 line, rc, e.msg, o.rc, o.msg);
    if (domain_count() != 0)
        fail_msg("line %d: restore left a domain behind", line);
    fx->streams++;
}

/* SAME(rule, statements...): statements build a stream into `b` and MARK the
 * offset of the bad record. */
#define SAME(rule, ...) do {                                     \
        struct stream_buf bb_; uint64_t off_ = UINT64_MAX;        \
        stream_buf_init(&bb_);                                    \
        { struct stream_buf *b = &bb_; __VA_ARGS__; }             \
        expect_same(&bb_, off_, rule, __LINE__);                  \
        stream_buf_release(&bb_);                                 \
    } while (0)
#define MARK (off_ = b->len)

static const uint8_t zeros[8192];

static void hvm_headers(struct stream_buf *b)
{
    sample_outer_headers(b);             /* its config says hvm */
}

static void pv_headers(struct stream_buf *b)
{
    stream_put_xl_header(b, PV_CONFIG);
    stream_put_libxl_header(b);
    stream_put_record(b, LIBXL_REC_LIBXC_CONTEXT, NULL, 0);
}

static void hvm_prefix(struct stream_buf *b)
{
    hvm_headers(b);
    sample_hvm_static(b);
}

static void pv_prefix(struct stream_buf *b)
{
    pv_headers(b);
    sample_pv_static(b);
}

/* A whole libxc layer that restores on the sim (a real saved one), for the
 * libxl records after it. */
static void libxc_done(struct stream_buf *b, bool hvm)
{
    stream_buf_append(b, fx->saved[hvm].data, fx->saved[hvm].len);
}

static void hvm_libxc_done(struct stream_buf *b)
{
    libxc_done(b, true);
}

static void libxl_only(struct stream_buf *b, const char *config)
{
    stream_put_xl_header(b, config);
    stream_put_libxl_header(b);
}

static void test_libxl_records(void **state)
{
    static const char bad_pairs[] = "key\0value\0k2";
    uint8_t emu[24] = { 2, 0, 0, 0, 0, 0, 0, 0 };
    const char *hvm = "{\"c_info\":{\"type\":\"hvm\"}}";

    SAME("unknown record type", libxl_only(b, hvm); MARK; sample_put_raw(b, 6, NULL, 0, 0));
    SAME("optional bit set", libxl_only(b, hvm); MARK; sample_put_raw(b, 0x80000001u, NULL, 0, 0));
    SAME("exceeds", libxl_only(b, hvm); MARK; sample_put_raw(b, LIBXL_REC_EMULATOR_CONTEXT, NULL, 0, 0);
         put_le32(b->data + off_ + 4, LIBXC_REC_LENGTH_MAX + 1));
    SAME("must be empty", libxl_only(b, hvm); MARK;
         sample_put_raw(b, LIBXL_REC_LIBXC_CONTEXT, zeros, 8, 0));
    SAME("padding", hvm_libxc_done(b); MARK; sample_put_raw(b, LIBXL_REC_EMULATOR_CONTEXT, emu, 9, 0xee));
    SAME("8-byte emulator header", hvm_libxc_done(b); MARK;
         sample_put_raw(b, LIBXL_REC_EMULATOR_CONTEXT, emu, 6, 0));
    emu[0] = 3;
    SAME("unknown emulator id 3", hvm_libxc_done(b); MARK;
         sample_put_raw(b, LIBXL_REC_EMULATOR_CONTEXT, emu, 16, 0));
    emu[0] = 2;
    SAME("not NUL-terminated", hvm_libxc_done(b); MARK; memcpy(emu + 8, "key\0val", 7);
         sample_put_raw(b, LIBXL_REC_EMULATOR_XENSTORE_DATA, emu, 15, 0));
    SAME("odd number", hvm_libxc_done(b); MARK; memcpy(emu + 8, bad_pairs, sizeof(bad_pairs));
         sample_put_raw(b, LIBXL_REC_EMULATOR_XENSTORE_DATA, emu, 8 + sizeof(bad_pairs), 0));
    SAME("must be empty", hvm_libxc_done(b); MARK; sample_put_raw(b, LIBXL_REC_END, zeros, 4, 0));
}

static void test_libxl_order(void **state)
{
    const char *hvm = "{\"c_info\":{\"type\":\"hvm\"}}";

    SAME("before LIBXC_CONTEXT", libxl_only(b, hvm); MARK; sample_emulator(b));
    SAME("no domain", libxl_only(b, hvm); MARK; stream_put_record(b, LIBXL_REC_END, NULL, 0));
    SAME("outside a checkpoint", libxl_only(b, hvm); MARK;
         stream_put_record(b, LIBXL_REC_CHECKPOINT_END, NULL, 0));
    SAME("outside a checkpoint", libxl_only(b, hvm); MARK; stream_put_checkpoint_state(b, 0));
    SAME("outside a checkpoint", hvm_libxc_done(b); MARK;
         stream_put_record(b, LIBXL_REC_CHECKPOINT_END, NULL, 0));
    SAME("second LIBXC_CONTEXT", hvm_libxc_done(b); MARK;
         stream_put_record(b, LIBXL_REC_LIBXC_CONTEXT, NULL, 0));
}

static void test_libxc_records(void **state)
{
    uint8_t body[64] = { 0 };

    SAME("unknown record type", hvm_prefix(b); MARK; sample_put_raw(b, 0x13, NULL, 0, 0));
    SAME("optional bit set", hvm_prefix(b); MARK; sample_put_raw(b, 0x80000013u, NULL, 0, 0));
    SAME("exceeds", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_CONTEXT, NULL, 0, 0);
         put_le32(b->data + off_ + 4, LIBXC_REC_LENGTH_MAX + 1));
    SAME("padding", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_CONTEXT, body, 3, 1));
    SAME("must be empty", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_VERIFY, body, 1, 0));
    SAME("shorter than the 8-byte header", hvm_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_HVM_PARAMS, body, 4, 0));
    body[0] = 1;
    SAME("8 + 16*1", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_PARAMS, body, 8, 0));
    body[0] = 0;
    SAME("empty HVM context", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_CONTEXT, NULL, 0, 0));
    SAME("24 bytes", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_TSC_INFO, body, 16, 0));
    SAME("back channel", hvm_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST, body, 16, 0));
    SAME("deprecated", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_TOOLSTACK, body, 8, 0));
    SAME("multiple of 24", hvm_headers(b); stream_put_libxc_headers(b, 2, 4, 17); MARK;
         sample_put_raw(b, LIBXC_REC_X86_CPUID_POLICY, body, 20, 0));
}

static void test_page_data(void **state)
{
    uint8_t body[16 + 4096] = { 0 };

    SAME("no pfn", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 8, 0));
    SAME("count is 0", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
    put_le32(body, 1); put_le32(body + 4, 5);
    SAME("reserved field", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
    put_le32(body + 4, 0); put_le32(body, 3);
    SAME("too short for the array", hvm_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
    put_le32(body, 1);
    put_le64(body + 8, UINT64_C(1) << 53);
    SAME("reserved bits 52-59", hvm_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16 + 4096, 0));
    put_le64(body + 8, libxc_pfn_word(1, 6));
    SAME("invalid page type", hvm_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16 + 4096, 0));
    put_le64(body + 8, libxc_pfn_word(1, LIBXC_PAGE_NOTAB));
    SAME("4096*1 data pages", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
}

static void test_pv_records(void **state)
{
    uint8_t body[5200] = { 0 };
    size_t info;

    SAME("must be 8 bytes", pv_headers(b); stream_put_libxc_headers(b, 1, 4, 17); MARK;
         sample_put_raw(b, LIBXC_REC_X86_PV_INFO, body, 16, 0));
    SAME("guest_width 2", pv_headers(b); stream_put_libxc_headers(b, 1, 4, 17);
         MARK; info = b->len + 8; stream_put_pv_info(b, 8, 4); b->data[info] = 2);
    SAME("multiple of 8", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_PV_P2M_FRAMES, body, 12, 0));
    put_le32(body, 0); put_le32(body + 4, 1000);
    SAME("of a 64-bit guest", pv_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_X86_PV_P2M_FRAMES, body, 16, 0));
    memset(body, 0, 16);
    SAME("vcpu header", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_BASIC, body, 4, 0));
    SAME("64-bit guest's is 5168", pv_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_BASIC, body, 8 + 5160, 0));
    SAME("exceeds 128", pv_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_EXTENDED, body, 8 + 136, 0));
    SAME("multiple of 16", pv_prefix(b); MARK;
         sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_MSRS, body, 8 + 8, 0));
    SAME("4096-byte page", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_SHARED_INFO, body, 4088, 0));
}

static void test_libxc_order(void **state)
{
    static const uint8_t leaf[24];

    SAME("must come first", pv_headers(b); stream_put_libxc_headers(b, 1, 4, 17); MARK;
         stream_put_record(b, LIBXC_REC_STATIC_DATA_END, NULL, 0));
    SAME("must come first", pv_headers(b); stream_put_libxc_headers(b, 1, 4, 17); MARK;
         stream_put_record(b, LIBXC_REC_SHARED_INFO, zeros, 4096));
    SAME("second X86_PV_INFO", pv_prefix(b); MARK; stream_put_pv_info(b, 8, 4));
    SAME("no STATIC_DATA_END", pv_headers(b); stream_put_libxc_headers(b, 1, 4, 17);
         stream_put_pv_info(b, 8, 4); MARK;
         stream_put_p2m_frames(b, 0, 15, (uint64_t[]){ 3 }, 1));
    SAME("second STATIC_DATA_END", hvm_prefix(b); MARK;
         stream_put_record(b, LIBXC_REC_STATIC_DATA_END, NULL, 0));
    SAME("after STATIC_DATA_END", hvm_prefix(b); MARK;
         stream_put_record(b, LIBXC_REC_X86_CPUID_POLICY, leaf, 24));
    SAME("x86 PV record in an HVM stream", hvm_prefix(b); MARK; stream_put_pv_info(b, 8, 4));
    SAME("HVM record in an x86 PV stream", pv_prefix(b); MARK;
         stream_put_hvm_params(b, NULL, 0));
    SAME("has no HVM_CONTEXT", hvm_prefix(b); MARK; stream_put_record(b, LIBXC_REC_END, NULL, 0));
    SAME("has no SHARED_INFO", pv_prefix(b); MARK; stream_put_record(b, LIBXC_REC_END, NULL, 0));
}

static void test_emulator_in_pv_stream(void **state)
{
    /* The xl config says pv: restore knows the domain type, as inspect does
     * from the libxc domain header. */
    SAME("only allowed for HVM", libxc_done(b, false); MARK; sample_emulator(b));
}

static void test_count(void **state)
{
    struct fixture *f = *state;
    print_message("%u bad streams refused alike by inspect and restore\n", f->streams);
    assert_true(f->streams >= 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libxl_records),
        cmocka_unit_test(test_libxl_order),
        cmocka_unit_test(test_libxc_records),
        cmocka_unit_test(test_page_data),
        cmocka_unit_test(test_pv_records),
        cmocka_unit_test(test_libxc_order),
        cmocka_unit_test(test_emulator_in_pv_stream),
        cmocka_unit_test(test_count),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
