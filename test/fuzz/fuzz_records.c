/* test/fuzz/fuzz_records.c - libxc and libxl records, one at a time.
 *
 * Input: one control byte (bit 0: libxc stream version 2 or 3; bits 1-2:
 * the PV guest width X86_PV_INFO announced, none, 4 or 8 bytes; bit 3: a
 * libxl record instead of a libxc one), the record type (4 bytes, little
 * endian; only the low 5 bits unless bit 4 asks for all 32, so most inputs
 * name a real type), then the body. The body is copied into a buffer of
 * exactly its size, so a check or accessor reading past it is an ASan
 * report. A record that passes its checks is walked with every accessor
 * its type has, over every element the checks said is there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_common.h"
#include "io/byteorder.h"
#include "io/record_body.h"
#include "io/records.h"
#include "io/stream_parser.h"

static volatile uint64_t sink;

static void walk_libxc(uint32_t type, const uint8_t *b, uint32_t len)
{
    uint32_t n;
    switch (type) {
    case LIBXC_REC_PAGE_DATA: {
        n = get_le32(b);
        uint64_t words[64];
        uint32_t k = n < 64 ? n : 64;
        for (uint32_t i = 0; i < n; i++)
            sink += libxc_page_data_pfn_word(b, i);
        for (uint32_t i = 0; i < k; i++)
            words[i] = libxc_page_data_pfn_word(b, i);
        sink += libxc_page_data_npages(words, k);
        break;
    }
    case LIBXC_REC_X86_PV_INFO: {
        struct libxc_x86_pv_info info;
        libxc_pv_info_decode(b, &info);
        sink += info.guest_width;
        break;
    }
    case LIBXC_REC_X86_PV_P2M_FRAMES: {
        struct libxc_x86_pv_p2m_frames f;
        libxc_p2m_frames_hdr_decode(b, &f);
        for (uint32_t i = 0; i < (len - 8) / 8; i++)
            sink += libxc_p2m_frame(b, i);
        break;
    }
    case LIBXC_REC_X86_PV_VCPU_BASIC:
    case LIBXC_REC_X86_PV_VCPU_EXTENDED:
    case LIBXC_REC_X86_PV_VCPU_XSAVE:
    case LIBXC_REC_X86_PV_VCPU_MSRS: {
        struct libxc_x86_pv_vcpu_hdr h;
        libxc_vcpu_hdr_decode(b, &h);
        sink += h.vcpu_id;
        break;
    }
    case LIBXC_REC_X86_TSC_INFO: {
        struct libxc_x86_tsc_info t;
        libxc_tsc_info_decode(b, &t);
        sink += t.mode;
        break;
    }
    case LIBXC_REC_HVM_CONTEXT: {
        const uint8_t *payload;
        uint32_t plen;
        if (libxc_hvm_context_payload(b, len, &payload, &plen) == 0) {
            if (payload < b || plen > len || payload + plen > b + len)
                abort();
            for (uint32_t i = 0; i < plen; i++)
                sink += payload[i];
        }
        break;
    }
    case LIBXC_REC_HVM_PARAMS:
        n = get_le32(b);
        for (uint32_t i = 0; i < n; i++) {
            struct libxc_hvm_param p;
            libxc_hvm_param_at(b, i, &p);
            sink += p.value;
        }
        break;
    case LIBXC_REC_X86_CPUID_POLICY:
        for (uint32_t i = 0; i < len / sizeof(struct libxc_cpuid_leaf); i++) {
            struct libxc_cpuid_leaf l;
            libxc_cpuid_leaf_at(b, i, &l);
            sink += l.a;
        }
        break;
    case LIBXC_REC_X86_MSR_POLICY:
        for (uint32_t i = 0; i < len / sizeof(struct libxc_msr_entry); i++) {
            struct libxc_msr_entry m;
            libxc_msr_entry_at(b, i, &m);
            sink += m.val;
        }
        break;
    case LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST:
        for (uint32_t i = 0; i < len / 8; i++)
            sink += libxc_dirty_pfn_at(b, i);
        break;
    default:
        break;
    }
}

static void walk_libxl(uint32_t type, const uint8_t *b, uint32_t len)
{
    if (type == LIBXL_REC_EMULATOR_XENSTORE_DATA) {
        uint32_t pos = 0;
        const char *k, *v;
        unsigned pairs = 0;
        while (libxl_xenstore_data_next(b, len, &pos, &k, &v) == 1) {
            sink += strlen(k) + strlen(v);
            if (++pairs > len)
                abort();   /* no progress: an endless walk */
        }
    } else if (type == LIBXL_REC_EMULATOR_CONTEXT) {
        struct libxl_emulator_hdr h;
        libxl_emulator_hdr_decode(b, &h);
        sink += h.id;
    } else if (type == LIBXL_REC_CHECKPOINT_STATE) {
        sink += libxl_checkpoint_state_id(b);
        sink += (uintptr_t)libxl_checkpoint_state_name(libxl_checkpoint_state_id(b));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5 || size - 5 > (1u << 20))
        return 0;
    unsigned ctl = data[0];
    uint32_t type = get_le32(data + 1);
    if (!(ctl & 0x10))
        type &= 0x1f;
    uint32_t len = (uint32_t)(size - 5);
    uint8_t *body = malloc(len ? len : 1);
    if (!body)
        abort();
    memcpy(body, data + 5, len);
    struct ls_errbuf e = { 0 };
    int rc;
    if (ctl & 0x08) {
        int is_hvm = (int)((ctl >> 5) & 3) - 1;   /* -1 unknown, 0, 1 */
        if (is_hvm > 1)
            is_hvm = 1;
        rc = libxl_record_check(type, body, len, is_hvm, 0, &e);
        if (rc == 0)
            walk_libxl(type, body, len);
        sink += (uintptr_t)libxl_rec_name(type);
    } else {
        uint32_t version = ctl & 1 ? 3 : 2;
        unsigned width = ((ctl >> 1) & 3) == 1 ? 4 : ((ctl >> 1) & 3) == 2 ? 8 : 0;
        /* PAGE_DATA checks see the count header and the pfn array only. */
        uint32_t avail = len;
        if (type == LIBXC_REC_PAGE_DATA && len >= 8) {
            uint64_t arr = 8 + 8 * (uint64_t)get_le32(body);
            avail = arr < len ? (uint32_t)arr : len;
        }
        rc = libxc_record_check(version, type, body, avail, len, 0, &e);
        if (rc == 0)
            rc = libxc_record_check_width(type, body, len, width, 0, &e);
        if (rc == 0)
            walk_libxc(type, body, len);
        sink += (uintptr_t)libxc_rec_name(type);
    }
    if (rc < 0 && !e.msg[0]) {
        fprintf(stderr, "record check failed (%d) with no reason\n", rc);
        abort();
    }
    free(body);
    return 0;
}
