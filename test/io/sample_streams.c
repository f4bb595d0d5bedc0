/* test/io/sample_streams.c - realistic streams shaped like Xen 4.17's saver. */
#include "sample_streams.h"

#include <stdlib.h>
#include <string.h>

#include "io/records.h"

#define CONFIG_JSON "{\"c_info\":{\"type\":\"hvm\",\"name\":\"guest\"},\"b_info\":{\"max_memkb\":65536}}"

void sample_outer_headers(struct stream_buf *b)
{
    stream_put_xl_header(b, CONFIG_JSON);
    stream_put_libxl_header(b);
    stream_put_record(b, LIBXL_REC_LIBXC_CONTEXT, NULL, 0);
}

static void put_policies(struct stream_buf *b)
{
    static const struct libxc_cpuid_leaf leaves[3] = {
        { 0, 0xffffffffu, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69 },
        { 1, 0xffffffffu, 0x306c3, 0x100800, 0x7ffafbff, 0xbfebfbff },
        { 7, 0, 0, 0x27ab, 0, 0x9c000400 },
    };
    static const struct libxc_msr_entry msrs[2] = { { 0xce, 0, 0 }, { 0x10a, 0, 0x4 } };

    stream_put_cpuid_policy(b, leaves, 3);
    stream_put_msr_policy(b, msrs, 2);
}

void sample_hvm_static(struct stream_buf *b)
{
    stream_put_libxc_headers(b, LIBXC_DHDR_TYPE_X86_HVM, 4, 17);
    put_policies(b);
    stream_put_record(b, LIBXC_REC_STATIC_DATA_END, NULL, 0);
}

void sample_pv_static(struct stream_buf *b)
{
    static const uint64_t frames[1] = { 3 };

    stream_put_libxc_headers(b, LIBXC_DHDR_TYPE_X86_PV, 4, 17);
    stream_put_pv_info(b, 8, 4);
    put_policies(b);
    stream_put_record(b, LIBXC_REC_STATIC_DATA_END, NULL, 0);
    stream_put_p2m_frames(b, 0, 15, frames, 1);
}

static void fill_pages(uint8_t *pages, unsigned n, unsigned seed)
{
    for (unsigned i = 0; i < n * STREAM_PAGE_SIZE; i++)
        pages[i] = (uint8_t)(i * 31 + seed);
}

/* Batch 0: mixed types as the saver sends them; batch >0: a few dirty pages. */
void sample_hvm_memory(struct stream_buf *b, int batch)
{
    uint64_t words[12];
    uint8_t *pages = malloc(12 * STREAM_PAGE_SIZE);
    unsigned n = 0, data = 0;

    if (!pages)
        abort();
    if (batch == 0) {
        for (unsigned pfn = 0; pfn < 8; pfn++, data++)
            words[n++] = libxc_pfn_word(pfn, LIBXC_PAGE_NOTAB);
        words[n++] = libxc_pfn_word(0xa0, LIBXC_PAGE_XTAB);     /* VGA hole */
        words[n++] = libxc_pfn_word(0xfeff0, LIBXC_PAGE_XALLOC);
        words[n++] = libxc_pfn_word(0xfeff1, LIBXC_PAGE_BROKEN);
        words[n++] = libxc_pfn_word(0xfeffc, LIBXC_PAGE_NOTAB);
        data++;
    } else {
        for (unsigned pfn = 0; pfn < 3; pfn++, data++)
            words[n++] = libxc_pfn_word(pfn * 2 + (unsigned)batch, LIBXC_PAGE_NOTAB);
    }
    fill_pages(pages, data, (unsigned)batch);
    stream_put_page_data(b, words, n, pages);
    if (batch == 0) {                        /* a second, single-page batch */
        words[0] = libxc_pfn_word(0xfefff, LIBXC_PAGE_NOTAB);
        stream_put_page_data(b, words, 1, pages);
    }
    free(pages);
}

void sample_pv_memory(struct stream_buf *b)
{
    static const unsigned types[10] = { LIBXC_PAGE_NOTAB, LIBXC_PAGE_NOTAB, LIBXC_PAGE_NOTAB,
                                        0xC, 0xB, 0xA, LIBXC_PAGE_L1TAB, 0x9,
                                        LIBXC_PAGE_XTAB, LIBXC_PAGE_NOTAB };
    uint64_t words[10];
    uint8_t *pages = malloc(9 * STREAM_PAGE_SIZE);

    if (!pages)
        abort();
    for (unsigned i = 0; i < 10; i++)
        words[i] = libxc_pfn_word(i, types[i]);
    fill_pages(pages, 9, 7);
    stream_put_page_data(b, words, 10, pages);
    free(pages);
}

void sample_hvm_tail(struct stream_buf *b)
{
    static const struct libxc_hvm_param params[6] = {
        { HVM_PARAM_STORE_PFN, 0xfeffc }, { HVM_PARAM_IOREQ_PFN, 0xfeff0 },
        { HVM_PARAM_BUFIOREQ_PFN, 0xfeff1 }, { HVM_PARAM_IDENT_PT, 0xfeffd000 },
        { HVM_PARAM_CONSOLE_PFN, 0xfefff }, { HVM_PARAM_NR_IOREQ_SERVER_PAGES, 1 },
    };
    struct libxc_x86_tsc_info tsc = { 0, 2394000, UINT64_C(81234567890), 1, 0 };
    uint8_t cpu[1024], *ctx;
    uint32_t ctx_len;

    memset(cpu, 0x5a, sizeof(cpu));
    stream_put_tsc_info(b, &tsc);
    if (libxc_hvm_context_wrap(cpu, sizeof(cpu), &ctx, &ctx_len))
        abort();
    /* The 4.17 saver sends HVM_CONTEXT before HVM_PARAMS (spec 7 item 5). */
    stream_put_record(b, LIBXC_REC_HVM_CONTEXT, ctx, ctx_len);
    free(ctx);
    stream_put_hvm_params(b, params, 6);
}

void sample_pv_tail(struct stream_buf *b)
{
    struct libxc_x86_tsc_info tsc = { 0, 2394000, UINT64_C(91234567890), 2, 0 };
    static uint8_t blob[LIBXC_X86_64_VCPU_BASIC_SIZE], shared[STREAM_PAGE_SIZE];

    memset(blob, 0x11, sizeof(blob));
    memset(shared, 0x22, sizeof(shared));
    stream_put_tsc_info(b, &tsc);
    stream_put_record(b, LIBXC_REC_SHARED_INFO, shared, sizeof(shared));
    for (uint32_t vcpu = 0; vcpu < 2; vcpu++) {
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_BASIC, vcpu, blob, LIBXC_X86_64_VCPU_BASIC_SIZE);
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_EXTENDED, vcpu, blob, 128);
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_XSAVE, vcpu, blob, 576);
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_MSRS, vcpu, blob, 32);
    }
}

void sample_emulator(struct stream_buf *b)
{
    uint8_t qemu[300];

    memset(qemu, 0x33, sizeof(qemu));
    memcpy(qemu, "QEVM\0\0\0\3", 8);
    stream_put_emulator(b, LIBXL_REC_EMULATOR_CONTEXT, LIBXL_EMULATOR_QEMU_UPSTREAM, qemu,
                        sizeof(qemu));
}

void sample_put_raw(struct stream_buf *b, uint32_t type, const void *body, uint32_t len,
                    uint8_t pad)
{
    uint8_t hdr[8], padding[8];

    stream_rec_header_encode(hdr, type, len);
    memset(padding, pad, sizeof(padding));
    stream_buf_append(b, hdr, 8);
    stream_buf_append(b, body, len);
    stream_buf_append(b, padding, stream_pad_len(len));
}

void sample_xl_hvm(struct stream_buf *b)
{
    sample_outer_headers(b);
    sample_hvm_static(b);
    sample_hvm_memory(b, 0);
    sample_hvm_tail(b);
    stream_put_record(b, LIBXC_REC_END, NULL, 0);
    sample_emulator(b);
    stream_put_record(b, LIBXL_REC_END, NULL, 0);
}

void sample_xl_pv(struct stream_buf *b)
{
    sample_outer_headers(b);
    sample_pv_static(b);
    sample_pv_memory(b);
    sample_pv_tail(b);
    stream_put_record(b, LIBXC_REC_END, NULL, 0);
    stream_put_record(b, LIBXL_REC_END, NULL, 0);
}

void sample_xl_checkpointed(struct stream_buf *b, int checkpoints, bool colo)
{
    static const char *const kv[] = { "physmap/f0000000/start_addr", "f0000000",
                                      "physmap/f0000000/size", "800000",
                                      "physmap/f0000000/name", "vga.vram" };

    sample_outer_headers(b);
    sample_hvm_static(b);
    for (int i = 0; i < checkpoints; i++) {
        sample_hvm_memory(b, i);
        sample_hvm_tail(b);
        stream_put_record(b, LIBXC_REC_CHECKPOINT, NULL, 0);
        stream_put_xenstore_data(b, LIBXL_EMULATOR_QEMU_UPSTREAM, kv, 3);
        sample_emulator(b);
        stream_put_record(b, LIBXL_REC_CHECKPOINT_END, NULL, 0);
        if (colo)
            stream_put_checkpoint_state(b, LIBXL_CHECKPOINT_NEW);
    }
}
