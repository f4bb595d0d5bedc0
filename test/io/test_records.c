/* test/io/test_records.c - every record type encoded, then checked and decoded;
 * the context-free rejection rules and the libxc ordering rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/byteorder.h"
#include "io/record_body.h"
#include "io/records.h"

/* A record appended to an empty buffer: returns its body, checks header and padding. */
static const uint8_t *only_record(const struct stream_buf *b, uint32_t want_type,
                                  uint32_t *len)
{
    uint32_t type;

    assert_int_equal(b->rc, 0);
    assert_true(b->len >= 8);
    stream_rec_header_decode(b->data, &type, len);
    assert_int_equal(type, want_type);
    assert_int_equal(b->len, 8 + STREAM_ROUNDUP8(*len));
    assert_true(stream_pad_ok(b->data + 8 + *len, stream_pad_len(*len)));
    return b->data + 8;
}

static void expect_libxc_ok(uint32_t version, uint32_t type, const uint8_t *body, uint32_t len)
{
    struct ls_errbuf e = { 0 };
    int rc = libxc_record_check(version, type, body, len, len, 64, &e);
    if (rc)
        fail_msg("unexpected: %s", e.msg);
}

static void expect_libxc_err(uint32_t version, uint32_t type, const uint8_t *body,
                             uint32_t len, int want_rc, const char *keyword)
{
    struct ls_errbuf e = { 0 };
    int rc = libxc_record_check(version, type, body, len, len, 4096, &e);

    assert_int_equal(rc, want_rc);
    if (!strstr(e.msg, "offset 4096: libxc record ") || !strstr(e.msg, keyword))
        fail_msg("message \"%s\" lacks offset or \"%s\"", e.msg, keyword);
}

static void expect_libxl_err(uint32_t type, const uint8_t *body, uint32_t len, int is_hvm,
                             int want_rc, const char *keyword)
{
    struct ls_errbuf e = { 0 };
    int rc = libxl_record_check(type, body, len, is_hvm, 200, &e);

    assert_int_equal(rc, want_rc);
    if (!strstr(e.msg, "offset 200: libxl record ") || !strstr(e.msg, keyword))
        fail_msg("message \"%s\" lacks offset or \"%s\"", e.msg, keyword);
}

/* ---- round trips ------------------------------------------------------ */

static void test_headers_round_trip(void **state)
{
    uint8_t l[16], ih[24], dh[16], *xl;
    struct libxc_domain_header d;
    struct xl_header h;
    struct ls_errbuf e = { 0 };
    const char *json;
    uint32_t opts = 99, json_len;
    size_t xl_len;

    libxl_header_encode(l);
    assert_memory_equal(l, "LibxlFmt\0\0\0\2\0\0\0\0", 16);   /* big endian */
    assert_int_equal(libxl_header_decode(l, &opts, 0, &e), 0);
    assert_int_equal(opts, 0);
    libxc_image_header_encode(ih);
    assert_memory_equal(ih + 8, "XENF\0\0\0\3", 8);
    assert_int_equal(libxc_image_header_decode(ih, 16, &e), 3);
    libxc_domain_header_encode(dh, LIBXC_DHDR_TYPE_X86_HVM, 4, 17);
    assert_int_equal(dh[0], 2);                                   /* little endian */
    assert_int_equal(libxc_domain_header_decode(dh, &d, 40, &e), 0);
    assert_int_equal(d.type, 2);
    assert_int_equal(d.page_shift, 12);
    assert_int_equal(d.xen_major, 4);
    assert_int_equal(d.xen_minor, 17);
    assert_int_equal(xl_header_encode("{\"a\":1}", &xl, &xl_len), 0);
    /* The config is padded with spaces so the header ends 8-aligned. */
    assert_int_equal(xl_len, 48 + 4 + 12);
    assert_true(xl_header_magic_matches(xl, 8));
    assert_int_equal(xl_header_decode(xl, &h, &e), 0);
    assert_int_equal(h.mandatory_flags, 3);
    assert_int_equal(h.optional_data_len, 16);
    assert_int_equal(xl_header_config(xl + 48, h.optional_data_len, &json, &json_len, 48, &e), 0);
    assert_int_equal(json_len, 11);
    assert_memory_equal(json, "{\"a\":1}    ", 12);
    free(xl);
    for (size_t text = 0; text < 24; text++) {   /* every padding length */
        char cfg[32];
        memset(cfg, 'x', text);
        cfg[text] = '\0';
        assert_int_equal(xl_header_encode(cfg, &xl, &xl_len), 0);
        assert_int_equal(xl_len % 8, 0);
        assert_int_equal(xl_header_decode(xl, &h, &e), 0);
        assert_int_equal(xl_header_config(xl + 48, h.optional_data_len, &json, &json_len, 48,
                                          &e), 0);
        assert_memory_equal(json, cfg, text);
        assert_true(json_len - text < 8);
        free(xl);
    }
    xl = NULL;
    free(xl);
    assert_int_equal(e.rc, 0);
}

static void test_page_data_round_trip(void **state)
{
    uint64_t words[5] = { libxc_pfn_word(1, LIBXC_PAGE_NOTAB), libxc_pfn_word(2, LIBXC_PAGE_XTAB),
                          libxc_pfn_word(3, 0x9), libxc_pfn_word(4, LIBXC_PAGE_XALLOC),
                          libxc_pfn_word((UINT64_C(1) << 52) - 1, LIBXC_PAGE_L4TAB) };
    uint8_t pages[3 * 4096];
    struct stream_buf b;
    const uint8_t *body;
    uint32_t len;

    memset(pages, 0xab, sizeof(pages));
    stream_buf_init(&b);
    stream_put_page_data(&b, words, 5, pages);
    body = only_record(&b, LIBXC_REC_PAGE_DATA, &len);
    assert_int_equal(len, 8 + 40 + 3 * 4096);
    assert_int_equal(get_le32(body), 5);
    for (uint32_t i = 0; i < 5; i++)
        assert_true(libxc_page_data_pfn_word(body, i) == words[i]);
    assert_int_equal(libxc_page_data_npages((const uint64_t *)(body + 8), 5), 3);
    assert_int_equal(libxc_pfn_type(words[2]), 9);
    assert_string_equal(libxc_page_type_name(9), "PINNED L1TAB");
    /* The check needs only header and pfn array. */
    struct ls_errbuf e = { 0 };
    assert_int_equal(libxc_record_check(3, LIBXC_REC_PAGE_DATA, body, 48, len, 0, &e), 0);
    stream_buf_release(&b);
}

static void test_libxc_fixed_records_round_trip(void **state)
{
    struct libxc_x86_tsc_info tsc = { 1, 2000000, UINT64_C(123456789012), 7, 0 }, t2;
    struct libxc_x86_pv_info pv;
    struct libxc_x86_pv_p2m_frames f;
    struct stream_buf b;
    const uint8_t *body;
    uint32_t len;

    stream_buf_init(&b);
    stream_put_tsc_info(&b, &tsc);
    body = only_record(&b, LIBXC_REC_X86_TSC_INFO, &len);
    expect_libxc_ok(3, LIBXC_REC_X86_TSC_INFO, body, len);
    libxc_tsc_info_decode(body, &t2);
    assert_memory_equal(&tsc, &t2, sizeof(tsc));
    stream_buf_release(&b);

    stream_put_pv_info(&b, 8, 4);
    body = only_record(&b, LIBXC_REC_X86_PV_INFO, &len);
    expect_libxc_ok(3, LIBXC_REC_X86_PV_INFO, body, len);
    libxc_pv_info_decode(body, &pv);
    assert_int_equal(pv.guest_width, 8);
    assert_int_equal(pv.pt_levels, 4);
    stream_buf_release(&b);

    uint64_t frames[3] = { 100, 101, 102 };
    stream_put_p2m_frames(&b, 0, 1100, frames, 3);     /* 1100/512 = 2 -> 3 frames */
    body = only_record(&b, LIBXC_REC_X86_PV_P2M_FRAMES, &len);
    expect_libxc_ok(3, LIBXC_REC_X86_PV_P2M_FRAMES, body, len);
    libxc_p2m_frames_hdr_decode(body, &f);
    assert_int_equal(f.end_pfn, 1100);
    assert_int_equal(libxc_p2m_frame(body, 2), 102);
    stream_buf_release(&b);

    uint8_t page[4096] = { 1 };
    stream_put_record(&b, LIBXC_REC_SHARED_INFO, page, sizeof(page));
    body = only_record(&b, LIBXC_REC_SHARED_INFO, &len);
    expect_libxc_ok(3, LIBXC_REC_SHARED_INFO, body, len);
    stream_buf_release(&b);
}

static void test_vcpu_records_round_trip(void **state)
{
    static const uint32_t types[4] = { LIBXC_REC_X86_PV_VCPU_BASIC, LIBXC_REC_X86_PV_VCPU_EXTENDED,
                                       LIBXC_REC_X86_PV_VCPU_XSAVE, LIBXC_REC_X86_PV_VCPU_MSRS };
    static const uint32_t sizes[4] = { 5168, 128, 832, 32 };
    static uint8_t blob[5168];
    struct libxc_x86_pv_vcpu_hdr h;
    struct stream_buf b;

    stream_buf_init(&b);
    for (int i = 0; i < 4; i++) {
        const uint8_t *body;
        uint32_t len;

        memset(blob, i + 1, sizes[i]);
        stream_put_vcpu(&b, types[i], 3, blob, sizes[i]);
        body = only_record(&b, types[i], &len);
        assert_int_equal(len, 8 + sizes[i]);
        expect_libxc_ok(3, types[i], body, len);
        libxc_vcpu_hdr_decode(body, &h);
        assert_int_equal(h.vcpu_id, 3);
        assert_memory_equal(body + 8, blob, sizes[i]);
        stream_buf_release(&b);
        /* Zero-content records from Xen 4.6-4.8 are tolerated. */
        stream_put_vcpu(&b, types[i], 0, NULL, 0);
        body = only_record(&b, types[i], &len);
        expect_libxc_ok(3, types[i], body, len);
        stream_buf_release(&b);
    }
}

static void test_hvm_records_round_trip(void **state)
{
    struct libxc_hvm_param params[3] = { { HVM_PARAM_STORE_PFN, 0xfeffc },
                                         { HVM_PARAM_CONSOLE_PFN, 0xfefff },
                                         { HVM_PARAM_IDENT_PT, 0xfeffd000 } }, p;
    const uint8_t *body, *payload;
    uint8_t *ctx;
    uint32_t len, ctx_len, plen;
    struct stream_buf b;

    stream_buf_init(&b);
    stream_put_hvm_params(&b, params, 3);
    body = only_record(&b, LIBXC_REC_HVM_PARAMS, &len);
    assert_int_equal(len, 8 + 48);
    expect_libxc_ok(3, LIBXC_REC_HVM_PARAMS, body, len);
    libxc_hvm_param_at(body, 2, &p);
    assert_true(p.index == HVM_PARAM_IDENT_PT && p.value == 0xfeffd000);
    stream_buf_release(&b);
    stream_put_hvm_params(&b, NULL, 0);                 /* count 0 tolerated */
    body = only_record(&b, LIBXC_REC_HVM_PARAMS, &len);
    expect_libxc_ok(3, LIBXC_REC_HVM_PARAMS, body, len);
    stream_buf_release(&b);

    assert_int_equal(libxc_hvm_context_wrap("device state", 12, &ctx, &ctx_len), 0);
    stream_put_record(&b, LIBXC_REC_HVM_CONTEXT, ctx, ctx_len);
    body = only_record(&b, LIBXC_REC_HVM_CONTEXT, &len);
    expect_libxc_ok(3, LIBXC_REC_HVM_CONTEXT, body, len);
    assert_int_equal(libxc_hvm_context_payload(body, len, &payload, &plen), 0);
    assert_int_equal(plen, 12);
    assert_memory_equal(payload, "device state", 12);
    free(ctx);
    stream_buf_release(&b);
}

static void test_policy_and_marker_records_round_trip(void **state)
{
    struct libxc_cpuid_leaf leaves[2] = { { 0, 0, 0xd, 1, 2, 3 }, { 7, 0, 4, 5, 6, 7 } }, l;
    struct libxc_msr_entry msrs[1] = { { 0xce, 0, UINT64_C(0x80000000) } }, m;
    uint64_t dirty[2] = { 5, 9 };
    struct stream_buf b;
    const uint8_t *body;
    uint32_t len;

    stream_buf_init(&b);
    stream_put_cpuid_policy(&b, leaves, 2);
    body = only_record(&b, LIBXC_REC_X86_CPUID_POLICY, &len);
    expect_libxc_ok(3, LIBXC_REC_X86_CPUID_POLICY, body, len);
    libxc_cpuid_leaf_at(body, 1, &l);
    assert_memory_equal(&l, &leaves[1], sizeof(l));
    stream_buf_release(&b);
    stream_put_msr_policy(&b, msrs, 1);
    body = only_record(&b, LIBXC_REC_X86_MSR_POLICY, &len);
    expect_libxc_ok(3, LIBXC_REC_X86_MSR_POLICY, body, len);
    libxc_msr_entry_at(body, 0, &m);
    assert_memory_equal(&m, &msrs[0], sizeof(m));
    stream_buf_release(&b);
    stream_put_dirty_pfn_list(&b, dirty, 2);
    body = only_record(&b, LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST, &len);
    expect_libxc_ok(3, LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST, body, len);
    assert_int_equal(libxc_dirty_pfn_at(body, 1), 9);
    stream_buf_release(&b);
    static const uint32_t empties[] = { LIBXC_REC_END, LIBXC_REC_VERIFY, LIBXC_REC_CHECKPOINT,
                                        LIBXC_REC_STATIC_DATA_END };
    for (size_t i = 0; i < 4; i++) {
        stream_put_record(&b, empties[i], NULL, 0);
        body = only_record(&b, empties[i], &len);
        assert_int_equal(len, 0);
        expect_libxc_ok(3, empties[i], body, len);
        stream_buf_release(&b);
    }
}

static void test_libxl_records_round_trip(void **state)
{
    const char *kv[] = { "physmap/1/start_addr", "f0000000", "physmap/1/size", "800000" };
    struct libxl_emulator_hdr h;
    struct ls_errbuf e = { 0 };
    const char *key, *val;
    const uint8_t *body;
    uint32_t len, pos = 0;
    struct stream_buf b;

    stream_buf_init(&b);
    stream_put_xenstore_data(&b, LIBXL_EMULATOR_QEMU_UPSTREAM, kv, 2);
    body = only_record(&b, LIBXL_REC_EMULATOR_XENSTORE_DATA, &len);
    assert_int_equal(libxl_record_check(LIBXL_REC_EMULATOR_XENSTORE_DATA, body, len, 1, 0, &e), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(libxl_xenstore_data_next(body, len, &pos, &key, &val), 1);
        assert_string_equal(key, kv[2 * i]);
        assert_string_equal(val, kv[2 * i + 1]);
    }
    assert_int_equal(libxl_xenstore_data_next(body, len, &pos, &key, &val), 0);
    stream_buf_release(&b);

    stream_put_emulator(&b, LIBXL_REC_EMULATOR_CONTEXT, LIBXL_EMULATOR_QEMU_UPSTREAM, "QEVM", 4);
    body = only_record(&b, LIBXL_REC_EMULATOR_CONTEXT, &len);
    assert_int_equal(libxl_record_check(LIBXL_REC_EMULATOR_CONTEXT, body, len, 1, 0, &e), 0);
    libxl_emulator_hdr_decode(body, &h);
    assert_int_equal(h.id, 2);
    assert_int_equal(h.index, 0);
    stream_buf_release(&b);

    stream_put_checkpoint_state(&b, LIBXL_CHECKPOINT_SVM_READY);
    body = only_record(&b, LIBXL_REC_CHECKPOINT_STATE, &len);
    assert_int_equal(libxl_record_check(LIBXL_REC_CHECKPOINT_STATE, body, len, 1, 0, &e), 0);
    assert_int_equal(libxl_checkpoint_state_id(body), 2);
    assert_string_equal(libxl_checkpoint_state_name(2), "CHECKPOINT_SVM_READY");
    stream_buf_release(&b);
    static const uint32_t empties[] = { LIBXL_REC_END, LIBXL_REC_LIBXC_CONTEXT,
                                        LIBXL_REC_CHECKPOINT_END };
    for (size_t i = 0; i < 3; i++) {
        stream_put_record(&b, empties[i], NULL, 0);
        body = only_record(&b, empties[i], &len);
        assert_int_equal(libxl_record_check(empties[i], body, len, -1, 0, &e), 0);
        stream_buf_release(&b);
    }
    assert_int_equal(e.rc, 0);
}

/* ---- rejections, context free ---------------------------------------- */

static void test_page_data_rejections(void **state)
{
    uint8_t body[8 + 16 + 4096] = { 0 };

    expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 8, -EINVAL, "no pfn");
    put_le32(body, 0);
    expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 16, -EINVAL, "count is 0");
    put_le32(body, 1);
    put_le32(body + 4, 1);
    expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 16, -EINVAL, "reserved field");
    put_le32(body + 4, 0);
    put_le32(body, 2);
    expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 16, -EINVAL, "too short for the array");
    put_le32(body, 1);
    put_le64(body + 8, libxc_pfn_word(5, 0) | (UINT64_C(1) << 55));
    expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 16 + 4096, -EINVAL, "reserved bits 52-59");
    for (unsigned t = 5; t <= 8; t++) {
        put_le64(body + 8, libxc_pfn_word(5, t));
        expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 16, -EINVAL, "invalid page type");
    }
    put_le64(body + 8, libxc_pfn_word(5, LIBXC_PAGE_NOTAB));
    expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 16, -EINVAL, "4096*1 data pages");
    put_le64(body + 8, libxc_pfn_word(5, LIBXC_PAGE_XTAB));
    expect_libxc_err(3, LIBXC_REC_PAGE_DATA, body, 16 + 4096, -EINVAL, "4096*0 data pages");
    expect_libxc_ok(3, LIBXC_REC_PAGE_DATA, body, 16);
}

static void test_libxc_record_rejections(void **state)
{
    uint8_t body[4104] = { 0 };

    expect_libxc_err(3, 0x13, body, 0, -EINVAL, "unknown record type");
    expect_libxc_err(3, 0x80000013u, body, 0, -EINVAL, "optional bit set");
    expect_libxc_err(3, LIBXC_REC_HVM_CONTEXT, body, LIBXC_REC_LENGTH_MAX + 1, -E2BIG, "limit");
    expect_libxc_err(3, LIBXC_REC_END, body, 8, -EINVAL, "must be empty");
    expect_libxc_err(3, LIBXC_REC_VERIFY, body, 8, -EINVAL, "must be empty");
    expect_libxc_err(3, LIBXC_REC_CHECKPOINT, body, 8, -EINVAL, "must be empty");
    expect_libxc_err(3, LIBXC_REC_STATIC_DATA_END, body, 8, -EINVAL, "must be empty");
    expect_libxc_err(2, LIBXC_REC_STATIC_DATA_END, body, 0, -EINVAL, "v2 stream");
    expect_libxc_err(2, LIBXC_REC_X86_CPUID_POLICY, body, 24, -EINVAL, "v2 stream");
    expect_libxc_err(2, LIBXC_REC_X86_MSR_POLICY, body, 16, -EINVAL, "v2 stream");
    expect_libxc_err(3, LIBXC_REC_X86_CPUID_POLICY, body, 0, -EINVAL, "positive multiple of 24");
    expect_libxc_err(3, LIBXC_REC_X86_CPUID_POLICY, body, 30, -EINVAL, "positive multiple of 24");
    expect_libxc_err(3, LIBXC_REC_X86_MSR_POLICY, body, 24, -EINVAL, "positive multiple of 16");
    expect_libxc_err(3, LIBXC_REC_X86_PV_INFO, body, 16, -EINVAL, "must be 8 bytes");
    body[0] = 6; body[1] = 4;
    expect_libxc_err(3, LIBXC_REC_X86_PV_INFO, body, 8, -EINVAL, "guest_width 6");
    body[0] = 8; body[1] = 2;
    expect_libxc_err(3, LIBXC_REC_X86_PV_INFO, body, 8, -EINVAL, "pt_levels 2");
    body[0] = 8; body[1] = 3;
    expect_libxc_err(3, LIBXC_REC_X86_PV_INFO, body, 8, -EINVAL, "combination");
    body[1] = 4; body[5] = 1;
    expect_libxc_err(3, LIBXC_REC_X86_PV_INFO, body, 8, -EINVAL, "reserved");
    memset(body, 0, sizeof(body));
    expect_libxc_err(3, LIBXC_REC_X86_PV_P2M_FRAMES, body, 4, -EINVAL, "shorter than 8");
    expect_libxc_err(3, LIBXC_REC_X86_PV_P2M_FRAMES, body, 12, -EINVAL, "multiple of 8");
    put_le32(body, 10); put_le32(body + 4, 5);
    expect_libxc_err(3, LIBXC_REC_X86_PV_P2M_FRAMES, body, 16, -EINVAL, "exceeds end_pfn");
    put_le32(body, 0); put_le32(body + 4, 600);
    expect_libxc_err(3, LIBXC_REC_X86_PV_P2M_FRAMES, body, 40, -EINVAL, "fits neither");
    memset(body, 0, 16);
    expect_libxc_err(3, LIBXC_REC_X86_PV_VCPU_BASIC, body, 4, -EINVAL, "vcpu header");
    body[4] = 1;
    expect_libxc_err(3, LIBXC_REC_X86_PV_VCPU_MSRS, body, 8, -EINVAL, "reserved field");
    body[4] = 0;
    expect_libxc_err(3, LIBXC_REC_X86_PV_VCPU_EXTENDED, body, 8 + 136, -EINVAL, "exceeds 128");
    expect_libxc_err(3, LIBXC_REC_X86_PV_VCPU_XSAVE, body, 8 + 8, -EINVAL, "shorter than 16");
    expect_libxc_err(3, LIBXC_REC_X86_PV_VCPU_MSRS, body, 8 + 24, -EINVAL, "multiple of 16");
    expect_libxc_err(3, LIBXC_REC_SHARED_INFO, body, 4000, -EINVAL, "4096-byte page");
    expect_libxc_err(3, LIBXC_REC_X86_TSC_INFO, body, 16, -EINVAL, "24 bytes");
    body[20] = 1;
    expect_libxc_err(3, LIBXC_REC_X86_TSC_INFO, body, 24, -EINVAL, "reserved");
    memset(body, 0, 32);
    expect_libxc_err(3, LIBXC_REC_HVM_CONTEXT, body, 0, -EINVAL, "empty HVM context");
    expect_libxc_err(3, LIBXC_REC_HVM_CONTEXT, body, 40, -EINVAL, "HEADER entry");
    expect_libxc_err(3, LIBXC_REC_HVM_PARAMS, body, 4, -EINVAL, "shorter than the 8-byte");
    body[4] = 1;
    expect_libxc_err(3, LIBXC_REC_HVM_PARAMS, body, 8, -EINVAL, "reserved");
    body[4] = 0; body[0] = 2;
    expect_libxc_err(3, LIBXC_REC_HVM_PARAMS, body, 24, -EINVAL, "8 + 16*2");
    expect_libxc_err(3, LIBXC_REC_TOOLSTACK, body, 8, -EINVAL, "deprecated");
}

static void test_hvm_context_structure(void **state)
{
    uint8_t *ctx;
    uint32_t len;

    assert_int_equal(libxc_hvm_context_wrap("abc", 3, &ctx, &len), 0);
    expect_libxc_ok(3, LIBXC_REC_HVM_CONTEXT, ctx, len);
    expect_libxc_err(3, LIBXC_REC_HVM_CONTEXT, ctx, len - 8, -EINVAL, "END entry");
    put_le32(ctx + 8, 0x12345678);
    expect_libxc_err(3, LIBXC_REC_HVM_CONTEXT, ctx, len, -EINVAL, "magic");
    free(ctx);
}

static void test_libxl_record_rejections(void **state)
{
    uint8_t body[64] = { 0 };

    expect_libxl_err(6, body, 0, -1, -EINVAL, "unknown record type");
    expect_libxl_err(0x80000002u, body, 0, -1, -EINVAL, "optional bit set");
    expect_libxl_err(LIBXL_REC_END, body, 8, -1, -EINVAL, "must be empty");
    expect_libxl_err(LIBXL_REC_LIBXC_CONTEXT, body, 8, -1, -EINVAL, "must be empty");
    expect_libxl_err(LIBXL_REC_CHECKPOINT_END, body, 8, -1, -EINVAL, "must be empty");
    expect_libxl_err(LIBXL_REC_EMULATOR_CONTEXT, body, 4, 1, -EINVAL, "8-byte emulator header");
    expect_libxl_err(LIBXL_REC_EMULATOR_XENSTORE_DATA, body, 7, 1, -EINVAL, "8-byte emulator");
    body[0] = 3;
    expect_libxl_err(LIBXL_REC_EMULATOR_CONTEXT, body, 8, 1, -EINVAL, "unknown emulator id 3");
    body[0] = 2;
    expect_libxl_err(LIBXL_REC_EMULATOR_CONTEXT, body, 8, 0, -EPROTO, "only allowed for HVM");
    memcpy(body + 8, "key\0val", 7);
    expect_libxl_err(LIBXL_REC_EMULATOR_XENSTORE_DATA, body, 15, 1, -EINVAL, "not NUL-terminated");
    memcpy(body + 8, "key\0val\0k2\0", 11);
    expect_libxl_err(LIBXL_REC_EMULATOR_XENSTORE_DATA, body, 19, 1, -EINVAL, "odd number");
    memcpy(body + 8, "/abs\0v\0", 7);
    expect_libxl_err(LIBXL_REC_EMULATOR_XENSTORE_DATA, body, 15, 1, -EINVAL, "absolute");
    memcpy(body + 8, "\0v\0", 3);
    expect_libxl_err(LIBXL_REC_EMULATOR_XENSTORE_DATA, body, 11, 1, -EINVAL, "empty xenstore key");
    expect_libxl_err(LIBXL_REC_CHECKPOINT_STATE, body, 0, 1, -EINVAL, "4-byte control id");
    body[0] = 4;
    expect_libxl_err(LIBXL_REC_CHECKPOINT_STATE, body, 4, 1, -EINVAL, "unknown checkpoint state");
}

static void test_header_rejections(void **state)
{
    uint8_t l[16], ih[24], dh[16], xl[48];
    struct libxc_domain_header d;
    struct xl_header h;
    struct ls_errbuf e;

#define EXPECT(call, rc_want, word) do { ls_err_clear(&e); assert_int_equal((call), rc_want); \
        if (!strstr(e.msg, word)) fail_msg("\"%s\" lacks \"%s\"", e.msg, word); } while (0)
    libxl_header_encode(l); l[0] = 'X';
    EXPECT(libxl_header_decode(l, NULL, 0, &e), -EINVAL, "offset 0: libxl header: ident");
    libxl_header_encode(l); l[11] = 3;
    EXPECT(libxl_header_decode(l, NULL, 0, &e), -EINVAL, "version 3");
    libxl_header_encode(l); l[15] = 1;
    EXPECT(libxl_header_decode(l, NULL, 0, &e), -ENOTSUP, "big-endian");
    libxl_header_encode(l); l[15] = 4;
    EXPECT(libxl_header_decode(l, NULL, 0, &e), -EINVAL, "reserved option bits");
    libxl_header_encode(l); l[13] = 1;          /* bits 16-31: ignored like libxl */
    assert_int_equal(libxl_header_decode(l, NULL, 0, &e), 0);

    libxc_image_header_encode(ih); ih[3] = 0;
    EXPECT(libxc_image_header_decode(ih, 72, &e), -EINVAL, "offset 72: libxc image header: marker");
    libxc_image_header_encode(ih); ih[8] = 'Y';
    EXPECT(libxc_image_header_decode(ih, 72, &e), -EINVAL, "id 0x");
    libxc_image_header_encode(ih); ih[15] = 4;
    EXPECT(libxc_image_header_decode(ih, 72, &e), -EINVAL, "version 4");
    libxc_image_header_encode(ih); ih[15] = 1;
    EXPECT(libxc_image_header_decode(ih, 72, &e), -EINVAL, "version 1");
    libxc_image_header_encode(ih); ih[15] = 2;
    assert_int_equal(libxc_image_header_decode(ih, 72, &e), 2);
    libxc_image_header_encode(ih); ih[17] = 1;
    EXPECT(libxc_image_header_decode(ih, 72, &e), -ENOTSUP, "big-endian");
    libxc_image_header_encode(ih); ih[17] = 2;
    EXPECT(libxc_image_header_decode(ih, 72, &e), -EINVAL, "reserved option bits");
    libxc_image_header_encode(ih); ih[19] = 1;
    EXPECT(libxc_image_header_decode(ih, 72, &e), -EINVAL, "reserved fields");
    libxc_image_header_encode(ih); ih[23] = 1;
    EXPECT(libxc_image_header_decode(ih, 72, &e), -EINVAL, "reserved fields");

    libxc_domain_header_encode(dh, 3, 4, 17);
    EXPECT(libxc_domain_header_decode(dh, &d, 96, &e), -EINVAL, "offset 96: libxc domain header: type 3");
    libxc_domain_header_encode(dh, 1, 4, 17); dh[4] = 13;
    EXPECT(libxc_domain_header_decode(dh, &d, 96, &e), -EINVAL, "page_shift 13");
    libxc_domain_header_encode(dh, 1, 4, 17); dh[6] = 1;
    EXPECT(libxc_domain_header_decode(dh, &d, 96, &e), -EINVAL, "reserved");

    memcpy(xl, XL_MAGIC, 32); put_ne32(xl + 32, XL_BYTEORDER); put_ne32(xl + 36, 3);
    put_ne32(xl + 40, 0); put_ne32(xl + 44, 0);
    assert_int_equal(xl_header_decode(xl, &h, &e), 0);
    xl[5] = 'x';
    EXPECT(xl_header_decode(xl, &h, &e), -EINVAL, "magic");
    xl[5] = 'a'; put_ne32(xl + 32, 0x04030201);
    EXPECT(xl_header_decode(xl, &h, &e), -ENOTSUP, "byteorder");
    put_ne32(xl + 32, XL_BYTEORDER); put_ne32(xl + 36, 7);
    EXPECT(xl_header_decode(xl, &h, &e), -ENOTSUP, "unknown mandatory flags 0x4");
#undef EXPECT
}

/* ---- ordering ----------------------------------------------------------- */

struct order_step {
    uint32_t type;
    uint32_t vcpu;
};

/* Runs steps; all but the last must pass; the last must give want_rc (0 = pass). */
static void run_order(uint32_t version, uint32_t dom, const struct order_step *s, size_t n,
                      int want_rc, const char *keyword)
{
    struct libxc_order o;
    struct ls_errbuf e = { 0 };

    libxc_order_init(&o, version, dom);
    for (size_t i = 0; i < n; i++) {
        bool sdd;
        unsigned missing;
        int rc = libxc_order_note(&o, s[i].type, s[i].vcpu, 1000 + 8 * i, &sdd, &missing, &e);

        if (i + 1 < n && rc)
            fail_msg("step %zu: %s", i, e.msg);
        if (i + 1 == n) {
            char off[32];
            assert_int_equal(rc, want_rc);
            snprintf(off, sizeof(off), "offset %zu:", 1000 + 8 * i);
            if (rc && (!strstr(e.msg, off) || !strstr(e.msg, keyword)))
                fail_msg("\"%s\" lacks \"%s\" or \"%s\"", e.msg, off, keyword);
        }
    }
}

#define RUN(v, d, want, kw, ...) do { const struct order_step s_[] = { __VA_ARGS__ }; \
        run_order(v, d, s_, sizeof(s_) / sizeof(s_[0]), want, kw); } while (0)
#define PV LIBXC_DHDR_TYPE_X86_PV
#define HVM LIBXC_DHDR_TYPE_X86_HVM
#define R(t) { LIBXC_REC_##t, 0 }

static void test_order_valid_streams(void **state)
{
    RUN(3, HVM, 0, "", R(X86_CPUID_POLICY), R(X86_MSR_POLICY), R(STATIC_DATA_END), R(PAGE_DATA),
        R(PAGE_DATA), R(X86_TSC_INFO), R(HVM_CONTEXT), R(HVM_PARAMS), R(END));
    /* HVM_PARAMS before or after HVM_CONTEXT: both fine (spec 7 item 5). */
    RUN(3, HVM, 0, "", R(STATIC_DATA_END), R(PAGE_DATA), R(HVM_PARAMS), R(HVM_CONTEXT), R(END));
    RUN(3, PV, 0, "", R(X86_PV_INFO), R(X86_CPUID_POLICY), R(STATIC_DATA_END),
        R(X86_PV_P2M_FRAMES), R(PAGE_DATA), R(X86_TSC_INFO), R(SHARED_INFO),
        R(X86_PV_VCPU_BASIC), R(X86_PV_VCPU_EXTENDED), { LIBXC_REC_X86_PV_VCPU_BASIC, 1 },
        R(END));
    /* v2: STATIC_DATA_END inferred */
    RUN(2, PV, 0, "", R(X86_PV_INFO), R(X86_PV_P2M_FRAMES), R(PAGE_DATA), R(SHARED_INFO),
        R(X86_PV_VCPU_BASIC), R(END));
    /* checkpointed: batches after CHECKPOINT */
    RUN(3, HVM, 0, "", R(STATIC_DATA_END), R(PAGE_DATA), R(HVM_CONTEXT), R(CHECKPOINT),
        R(PAGE_DATA), R(X86_TSC_INFO), R(HVM_CONTEXT), R(HVM_PARAMS), R(CHECKPOINT),
        R(PAGE_DATA), R(HVM_CONTEXT), R(END));
}

static void test_order_static_data_inference(void **state)
{
    struct libxc_order o;
    bool sdd;
    unsigned missing;

    libxc_order_init(&o, 2, HVM);
    assert_int_equal(libxc_order_note(&o, LIBXC_REC_X86_TSC_INFO, 0, 0, &sdd, &missing, NULL), 0);
    assert_false(sdd);
    assert_int_equal(libxc_order_note(&o, LIBXC_REC_PAGE_DATA, 0, 0, &sdd, &missing, NULL), 0);
    assert_true(sdd);
    assert_int_equal(missing, LIBXC_SDD_MISSING_CPUID | LIBXC_SDD_MISSING_MSR);
    assert_int_equal(libxc_order_note(&o, LIBXC_REC_PAGE_DATA, 0, 0, &sdd, &missing, NULL), 0);
    assert_false(sdd);
    libxc_order_init(&o, 3, HVM);
    assert_int_equal(libxc_order_note(&o, LIBXC_REC_X86_CPUID_POLICY, 0, 0, &sdd, &missing, NULL), 0);
    assert_int_equal(libxc_order_note(&o, LIBXC_REC_STATIC_DATA_END, 0, 0, &sdd, &missing, NULL), 0);
    assert_true(sdd);
    assert_int_equal(missing, LIBXC_SDD_MISSING_MSR);
}

static void test_order_rejections(void **state)
{
    RUN(3, PV, -EPROTO, "second X86_PV_INFO", R(X86_PV_INFO), R(X86_PV_INFO));
    RUN(3, PV, -EPROTO, "must come first", R(STATIC_DATA_END));
    RUN(3, PV, -EPROTO, "must come first", R(SHARED_INFO));
    RUN(3, PV, -EPROTO, "must come first", R(X86_PV_P2M_FRAMES));
    RUN(3, PV, -EPROTO, "no STATIC_DATA_END", R(X86_PV_INFO), R(X86_PV_P2M_FRAMES));
    RUN(3, HVM, -EPROTO, "no STATIC_DATA_END", R(PAGE_DATA));
    RUN(3, HVM, -EPROTO, "second STATIC_DATA_END", R(STATIC_DATA_END), R(STATIC_DATA_END));
    RUN(2, HVM, -EPROTO, "v2 stream", R(STATIC_DATA_END));
    RUN(2, HVM, -EPROTO, "v2 stream", R(X86_CPUID_POLICY));
    RUN(3, HVM, -EPROTO, "after STATIC_DATA_END", R(STATIC_DATA_END), R(X86_MSR_POLICY));
    RUN(3, HVM, -EPROTO, "x86 PV record in an HVM stream", R(STATIC_DATA_END), R(X86_PV_INFO));
    RUN(3, HVM, -EPROTO, "x86 PV record in an HVM stream", R(X86_PV_VCPU_BASIC));
    RUN(3, HVM, -EPROTO, "x86 PV record in an HVM stream", R(SHARED_INFO));
    RUN(3, PV, -EPROTO, "HVM record in an x86 PV stream", R(X86_PV_INFO), R(HVM_CONTEXT));
    RUN(3, PV, -EPROTO, "HVM record in an x86 PV stream", R(X86_PV_INFO), R(HVM_PARAMS));
    RUN(3, HVM, -EPROTO, "has no HVM_CONTEXT", R(STATIC_DATA_END), R(PAGE_DATA), R(END));
    RUN(3, HVM, -EPROTO, "has no HVM_CONTEXT", R(STATIC_DATA_END), R(PAGE_DATA), R(CHECKPOINT));
    RUN(3, HVM, -EPROTO, "has no STATIC_DATA_END", R(HVM_CONTEXT), R(END));
    RUN(3, PV, -EPROTO, "vcpu 0", R(X86_PV_INFO), R(STATIC_DATA_END), R(X86_PV_P2M_FRAMES),
        R(SHARED_INFO), { LIBXC_REC_X86_PV_VCPU_BASIC, 1 }, R(END));
    RUN(3, PV, -EPROTO, "vcpu 0", R(X86_PV_INFO), R(STATIC_DATA_END), R(X86_PV_P2M_FRAMES),
        R(SHARED_INFO), { LIBXC_REC_X86_PV_VCPU_BASIC, UINT32_MAX }, R(END));
    RUN(3, PV, -EPROTO, "no SHARED_INFO", R(X86_PV_INFO), R(STATIC_DATA_END),
        R(X86_PV_P2M_FRAMES), R(X86_PV_VCPU_BASIC), R(END));
    RUN(3, PV, -EPROTO, "no X86_PV_P2M_FRAMES", R(X86_PV_INFO), R(STATIC_DATA_END),
        R(SHARED_INFO), R(X86_PV_VCPU_BASIC), R(END));
    RUN(3, HVM, -EPROTO, "after the libxc END", R(STATIC_DATA_END), R(HVM_CONTEXT), R(END),
        R(PAGE_DATA));
    RUN(3, HVM, -EPROTO, "back channel", R(CHECKPOINT_DIRTY_PFN_LIST));
    RUN(3, HVM, -EPROTO, "TOOLSTACK", R(TOOLSTACK));
    RUN(3, HVM, -EINVAL, "unknown", { 0x80000020u, 0 });
}

/* io/records.def is dense: every type below the count has its name, the
 * values match the spec's, and the type just past the end is unknown. */
static void test_record_list_complete(void **state)
{
    for (uint32_t t = 0; t < LIBXL_REC_TYPE_COUNT; t++) {
        assert_non_null(libxl_rec_name(t));
        assert_string_not_equal(libxl_rec_name(t), "UNKNOWN");
    }
    for (uint32_t t = 0; t < LIBXC_REC_TYPE_COUNT; t++) {
        assert_non_null(libxc_rec_name(t));
        assert_string_not_equal(libxc_rec_name(t), "UNKNOWN");
    }
    assert_int_equal(LIBXL_REC_TYPE_COUNT, 6);
    assert_int_equal(LIBXC_REC_TYPE_COUNT, 0x13);
    assert_int_equal(LIBXC_REC_X86_MSR_POLICY, 0x12);
    assert_int_equal(LIBXL_REC_CHECKPOINT_STATE, 5);
    assert_string_equal(libxc_rec_name(LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST),
                        "CHECKPOINT_DIRTY_PFN_LIST");
    assert_string_equal(libxl_rec_name(LIBXL_REC_EMULATOR_XENSTORE_DATA),
                        "EMULATOR_XENSTORE_DATA");
    assert_string_equal(libxc_rec_name(LIBXC_REC_TYPE_COUNT), "UNKNOWN");
    assert_string_equal(libxl_rec_name(LIBXL_REC_TYPE_COUNT), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_list_complete),
        cmocka_unit_test(test_headers_round_trip),
        cmocka_unit_test(test_page_data_round_trip),
        cmocka_unit_test(test_libxc_fixed_records_round_trip),
        cmocka_unit_test(test_vcpu_records_round_trip),
        cmocka_unit_test(test_hvm_records_round_trip),
        cmocka_unit_test(test_policy_and_marker_records_round_trip),
        cmocka_unit_test(test_libxl_records_round_trip),
        cmocka_unit_test(test_page_data_rejections),
        cmocka_unit_test(test_libxc_record_rejections),
        cmocka_unit_test(test_hvm_context_structure),
        cmocka_unit_test(test_libxl_record_rejections),
        cmocka_unit_test(test_header_rejections),
        cmocka_unit_test(test_order_valid_streams),
        cmocka_unit_test(test_order_static_data_inference),
        cmocka_unit_test(test_order_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
