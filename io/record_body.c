/* io/record_body.c - record builders and body field codecs. */
#include "io/record_body.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/byteorder.h"
#include "io/records.h"

/* ---- fixed-size bodies ----------------------------------------------- */

static void put_two_le32(uint8_t out[8], uint32_t a, uint32_t b)
{
    put_le32(out, a);
    put_le32(out + 4, b);
}

void libxc_page_data_hdr_encode(uint8_t out[8], uint32_t count)
{
    put_two_le32(out, count, 0);
}

void libxc_pv_info_encode(uint8_t out[8], uint8_t guest_width, uint8_t pt_levels)
{
    memset(out, 0, 8);
    out[0] = guest_width;
    out[1] = pt_levels;
}

void libxc_pv_info_decode(const uint8_t in[8], struct libxc_x86_pv_info *info)
{
    info->guest_width = in[0];
    info->pt_levels = in[1];
    memcpy(info->reserved, in + 2, sizeof(info->reserved));
}

void libxc_p2m_frames_hdr_encode(uint8_t out[8], uint32_t start_pfn, uint32_t end_pfn)
{
    put_two_le32(out, start_pfn, end_pfn);
}

void libxc_p2m_frames_hdr_decode(const uint8_t in[8], struct libxc_x86_pv_p2m_frames *f)
{
    f->start_pfn = get_le32(in);
    f->end_pfn = get_le32(in + 4);
}

void libxc_vcpu_hdr_encode(uint8_t out[8], uint32_t vcpu_id)
{
    put_two_le32(out, vcpu_id, 0);
}

void libxc_vcpu_hdr_decode(const uint8_t in[8], struct libxc_x86_pv_vcpu_hdr *h)
{
    h->vcpu_id = get_le32(in);
    h->reserved = get_le32(in + 4);
}

void libxc_tsc_info_encode(uint8_t out[24], const struct libxc_x86_tsc_info *tsc)
{
    put_le32(out, tsc->mode);
    put_le32(out + 4, tsc->khz);
    put_le64(out + 8, tsc->nsec);
    put_le32(out + 16, tsc->incarnation);
    put_le32(out + 20, 0);
}

void libxc_tsc_info_decode(const uint8_t in[24], struct libxc_x86_tsc_info *tsc)
{
    tsc->mode = get_le32(in);
    tsc->khz = get_le32(in + 4);
    tsc->nsec = get_le64(in + 8);
    tsc->incarnation = get_le32(in + 16);
    tsc->reserved = get_le32(in + 20);
}

void libxc_hvm_params_hdr_encode(uint8_t out[8], uint32_t count)
{
    put_two_le32(out, count, 0);
}

void libxl_emulator_hdr_encode(uint8_t out[8], uint32_t emulator_id, uint32_t index)
{
    put_two_le32(out, emulator_id, index);
}

void libxl_emulator_hdr_decode(const uint8_t in[8], struct libxl_emulator_hdr *h)
{
    h->id = get_le32(in);
    h->index = get_le32(in + 4);
}

uint64_t libxc_page_data_pfn_word(const uint8_t *body, uint32_t i)
{
    return get_le64(body + 8 + 8 * (size_t)i);
}

uint64_t libxc_p2m_frame(const uint8_t *body, uint32_t i)
{
    return get_le64(body + 8 + 8 * (size_t)i);
}

void libxc_hvm_param_at(const uint8_t *body, uint32_t i, struct libxc_hvm_param *p)
{
    p->index = get_le64(body + 8 + 16 * (size_t)i);
    p->value = get_le64(body + 16 + 16 * (size_t)i);
}

void libxc_cpuid_leaf_at(const uint8_t *body, uint32_t i, struct libxc_cpuid_leaf *l)
{
    const uint8_t *p = body + 24 * (size_t)i;
    l->leaf = get_le32(p);
    l->subleaf = get_le32(p + 4);
    l->a = get_le32(p + 8);
    l->b = get_le32(p + 12);
    l->c = get_le32(p + 16);
    l->d = get_le32(p + 20);
}

void libxc_msr_entry_at(const uint8_t *body, uint32_t i, struct libxc_msr_entry *m)
{
    const uint8_t *p = body + 16 * (size_t)i;
    m->idx = get_le32(p);
    m->flags = get_le32(p + 4);
    m->val = get_le64(p + 8);
}

uint64_t libxc_dirty_pfn_at(const uint8_t *body, uint32_t i)
{
    return get_le64(body + 8 * (size_t)i);
}

uint32_t libxl_checkpoint_state_id(const uint8_t body[4])
{
    return get_le32(body);
}

/* ---- HVM save-format wrapper ----------------------------------------- */

#define HVM_DESC_LEN        8u
#define HVM_HEADER_LEN      24u
#define HVM_FILE_MAGIC      0x54381286u
#define HVM_FILE_VERSION    1u
/* Not a Xen type: marks lockstep's opaque (simulated) device state. */
#define HVM_CODE_OPAQUE     0xff00u

static void put_hvm_desc(uint8_t *p, uint16_t code, uint32_t len)
{
    put_le16(p, code);
    put_le16(p + 2, 0);
    put_le32(p + 4, len);
}

int libxc_hvm_context_wrap(const void *payload, uint32_t len, uint8_t **out, uint32_t *out_len)
{
    uint64_t total = 3 * (uint64_t)HVM_DESC_LEN + HVM_HEADER_LEN + len;
    uint8_t *p;

    if (total > LIBXC_REC_LENGTH_MAX)
        return -E2BIG;
    p = calloc(1, (size_t)total);
    if (!p)
        return -ENOMEM;
    put_hvm_desc(p, 1, HVM_HEADER_LEN);
    put_le32(p + HVM_DESC_LEN, HVM_FILE_MAGIC);
    put_le32(p + HVM_DESC_LEN + 4, HVM_FILE_VERSION);
    put_hvm_desc(p + HVM_DESC_LEN + HVM_HEADER_LEN, HVM_CODE_OPAQUE, len);
    if (len)
        memcpy(p + 2 * HVM_DESC_LEN + HVM_HEADER_LEN, payload, len);
    put_hvm_desc(p + 2 * HVM_DESC_LEN + HVM_HEADER_LEN + len, 0, 0);
    *out = p;
    *out_len = (uint32_t)total;
    return 0;
}

int libxc_hvm_context_payload(const uint8_t *blob, uint32_t len, const uint8_t **payload,
                              uint32_t *payload_len)
{
    uint64_t pos = 0;

    while (pos + HVM_DESC_LEN <= len) {
        uint16_t code = get_le16(blob + pos);
        uint32_t elen = get_le32(blob + pos + 4);

        if (pos + HVM_DESC_LEN + elen > len)
            return -EINVAL;
        if (code == HVM_CODE_OPAQUE) {
            *payload = blob + pos + HVM_DESC_LEN;
            *payload_len = elen;
            return 0;
        }
        if (code == 0)
            break;
        pos += HVM_DESC_LEN + (uint64_t)elen;
    }
    return -EINVAL;
}

/* ---- growable buffer ---------------------------------------------------- */

void stream_buf_init(struct stream_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void stream_buf_release(struct stream_buf *b)
{
    free(b->data);
    stream_buf_init(b);
}

static int stream_buf_reserve(struct stream_buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 4096;
    uint8_t *p;

    if (b->rc)
        return b->rc;
    if (b->len + n <= b->cap)
        return 0;
    while (cap < b->len + n)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return b->rc = -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int stream_buf_append(struct stream_buf *b, const void *p, size_t n)
{
    int rc = stream_buf_reserve(b, n);

    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int stream_put_xl_header(struct stream_buf *b, const char *config_json)
{
    uint8_t *hdr;
    size_t len;
    int rc;

    if (b->rc)
        return b->rc;
    rc = xl_header_encode(config_json, &hdr, &len);
    if (rc)
        return b->rc = rc;
    rc = stream_buf_append(b, hdr, len);
    free(hdr);
    return rc;
}

int stream_put_libxl_header(struct stream_buf *b)
{
    uint8_t hdr[16];

    libxl_header_encode(hdr);
    return stream_buf_append(b, hdr, sizeof(hdr));
}

int stream_put_libxc_headers(struct stream_buf *b, uint32_t dom_type, uint32_t xen_major,
                             uint32_t xen_minor)
{
    uint8_t hdr[24 + 16];

    libxc_image_header_encode(hdr);
    libxc_domain_header_encode(hdr + 24, dom_type, xen_major, xen_minor);
    return stream_buf_append(b, hdr, sizeof(hdr));
}

int stream_put_record2(struct stream_buf *b, uint32_t type, const void *a, uint32_t alen,
                       const void *c, uint32_t clen)
{
    uint64_t len = (uint64_t)alen + clen;
    uint8_t hdr[8];
    int rc;

    if (b->rc)
        return b->rc;
    if (len > LIBXC_REC_LENGTH_MAX)
        return b->rc = -E2BIG;
    stream_rec_header_encode(hdr, type, (uint32_t)len);
    if ((rc = stream_buf_reserve(b, 8 + STREAM_ROUNDUP8(len))))
        return rc;
    stream_buf_append(b, hdr, 8);
    stream_buf_append(b, a, alen);
    stream_buf_append(b, c, clen);
    return stream_buf_append(b, stream_zero_pad, stream_pad_len((uint32_t)len));
}

int stream_put_record(struct stream_buf *b, uint32_t type, const void *body, uint32_t len)
{
    return stream_put_record2(b, type, body, len, NULL, 0);
}

/* Body = fixed 8-byte header + count 8-byte little-endian words. */
static int put_header_and_words(struct stream_buf *b, uint32_t type, const uint8_t hdr[8],
                                size_t hdr_len, const uint64_t *words, uint32_t n,
                                const uint8_t *tail, uint64_t tail_len)
{
    uint64_t len = hdr_len + 8 * (uint64_t)n + tail_len;
    uint8_t rh[8], w[8];
    int rc;

    if (b->rc)
        return b->rc;
    if (len > LIBXC_REC_LENGTH_MAX)
        return b->rc = -E2BIG;
    if ((rc = stream_buf_reserve(b, 8 + STREAM_ROUNDUP8(len))))
        return rc;
    stream_rec_header_encode(rh, type, (uint32_t)len);
    stream_buf_append(b, rh, 8);
    stream_buf_append(b, hdr, hdr_len);
    for (uint32_t i = 0; i < n; i++) {
        put_le64(w, words[i]);
        stream_buf_append(b, w, 8);
    }
    stream_buf_append(b, tail, (size_t)tail_len);
    return stream_buf_append(b, stream_zero_pad, stream_pad_len((uint32_t)len));
}

int stream_put_page_data(struct stream_buf *b, const uint64_t *pfn_words, uint32_t count,
                         const uint8_t *pages)
{
    uint8_t hdr[8];
    uint64_t data_pages = 0;

    for (uint32_t i = 0; i < count; i++)
        if (LIBXC_PAGE_TYPE_HAS_DATA(libxc_pfn_type(pfn_words[i])))
            data_pages++;
    libxc_page_data_hdr_encode(hdr, count);
    return put_header_and_words(b, LIBXC_REC_PAGE_DATA, hdr, 8, pfn_words, count, pages,
                                data_pages * STREAM_PAGE_SIZE);
}

int stream_put_pv_info(struct stream_buf *b, uint8_t guest_width, uint8_t pt_levels)
{
    uint8_t body[8];

    libxc_pv_info_encode(body, guest_width, pt_levels);
    return stream_put_record(b, LIBXC_REC_X86_PV_INFO, body, 8);
}

int stream_put_p2m_frames(struct stream_buf *b, uint32_t start_pfn, uint32_t end_pfn,
                          const uint64_t *frames, uint32_t nframes)
{
    uint8_t hdr[8];

    libxc_p2m_frames_hdr_encode(hdr, start_pfn, end_pfn);
    return put_header_and_words(b, LIBXC_REC_X86_PV_P2M_FRAMES, hdr, 8, frames, nframes,
                                NULL, 0);
}

int stream_put_vcpu(struct stream_buf *b, uint32_t type, uint32_t vcpu_id, const void *blob,
                    uint32_t len)
{
    uint8_t hdr[8];

    libxc_vcpu_hdr_encode(hdr, vcpu_id);
    return stream_put_record2(b, type, hdr, 8, blob, len);
}

int stream_put_tsc_info(struct stream_buf *b, const struct libxc_x86_tsc_info *tsc)
{
    uint8_t body[24];

    libxc_tsc_info_encode(body, tsc);
    return stream_put_record(b, LIBXC_REC_X86_TSC_INFO, body, 24);
}

int stream_put_hvm_params(struct stream_buf *b, const struct libxc_hvm_param *params,
                          uint32_t count)
{
    uint64_t *words = malloc(2 * sizeof(uint64_t) * (count ? count : 1));
    uint8_t hdr[8];
    int rc;

    if (!words)
        return b->rc ? b->rc : (b->rc = -ENOMEM);
    for (uint32_t i = 0; i < count; i++) {
        words[2 * i] = params[i].index;
        words[2 * i + 1] = params[i].value;
    }
    libxc_hvm_params_hdr_encode(hdr, count);
    rc = put_header_and_words(b, LIBXC_REC_HVM_PARAMS, hdr, 8, words, 2 * count, NULL, 0);
    free(words);
    return rc;
}

int stream_put_cpuid_policy(struct stream_buf *b, const struct libxc_cpuid_leaf *leaves,
                            uint32_t n)
{
    uint8_t *body = malloc(24 * (size_t)(n ? n : 1));
    int rc;

    if (!body)
        return b->rc ? b->rc : (b->rc = -ENOMEM);
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t v[6] = { leaves[i].leaf, leaves[i].subleaf, leaves[i].a, leaves[i].b,
                                leaves[i].c, leaves[i].d };
        for (int j = 0; j < 6; j++)
            put_le32(body + 24 * (size_t)i + 4 * j, v[j]);
    }
    rc = stream_put_record(b, LIBXC_REC_X86_CPUID_POLICY, body, 24 * n);
    free(body);
    return rc;
}

int stream_put_msr_policy(struct stream_buf *b, const struct libxc_msr_entry *msrs, uint32_t n)
{
    uint8_t *body = malloc(16 * (size_t)(n ? n : 1));
    int rc;

    if (!body)
        return b->rc ? b->rc : (b->rc = -ENOMEM);
    for (uint32_t i = 0; i < n; i++) {
        put_le32(body + 16 * (size_t)i, msrs[i].idx);
        put_le32(body + 16 * (size_t)i + 4, msrs[i].flags);
        put_le64(body + 16 * (size_t)i + 8, msrs[i].val);
    }
    rc = stream_put_record(b, LIBXC_REC_X86_MSR_POLICY, body, 16 * n);
    free(body);
    return rc;
}

int stream_put_dirty_pfn_list(struct stream_buf *b, const uint64_t *pfns, uint32_t n)
{
    return put_header_and_words(b, LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST, NULL, 0, pfns, n,
                                NULL, 0);
}

int stream_put_emulator(struct stream_buf *b, uint32_t type, uint32_t emulator_id,
                        const void *blob, uint32_t len)
{
    uint8_t hdr[8];

    libxl_emulator_hdr_encode(hdr, emulator_id, 0);
    return stream_put_record2(b, type, hdr, 8, blob, len);
}

int stream_put_xenstore_data(struct stream_buf *b, uint32_t emulator_id,
                             const char *const *kv, size_t npairs)
{
    uint8_t *body;
    uint32_t len;
    int rc;

    if (b->rc)
        return b->rc;
    rc = libxl_xenstore_data_encode(emulator_id, kv, npairs, &body, &len);
    if (rc)
        return b->rc = rc;
    rc = stream_put_record(b, LIBXL_REC_EMULATOR_XENSTORE_DATA, body, len);
    free(body);
    return rc;
}

int stream_put_checkpoint_state(struct stream_buf *b, uint32_t id)
{
    uint8_t body[4];

    put_le32(body, id);
    return stream_put_record(b, LIBXL_REC_CHECKPOINT_STATE, body, 4);
}
