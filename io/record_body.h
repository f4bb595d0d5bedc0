/* io/record_body.h - build whole records and encode/decode record bodies.
 *
 * io/records.h checks records; this file makes and reads them, field by
 * field, in wire byte order (little endian, headers big endian). Two styles:
 *   - body encoders/decoders on fixed-size arrays, for writers that send
 *     header and body with writev (the memory task);
 *   - a growable buffer (`struct stream_buf`) to which whole records with
 *     padding are appended, for tests, tools and small control records.
 * No I/O. Append functions return 0 or -ENOMEM (-E2BIG if the body would
 * exceed LIBXC_REC_LENGTH_MAX); after the first failure a buffer keeps its
 * error in b->rc and further appends do nothing, so callers may check once.
 */
#ifndef LOCKSTEP_IO_RECORD_BODY_H
#define LOCKSTEP_IO_RECORD_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "io/stream_format.h"

/* ---- fixed-size body encoders / decoders ------------------------------- */
void libxc_page_data_hdr_encode(uint8_t out[8], uint32_t count);
void libxc_pv_info_encode(uint8_t out[8], uint8_t guest_width, uint8_t pt_levels);
void libxc_pv_info_decode(const uint8_t in[8], struct libxc_x86_pv_info *info);
void libxc_p2m_frames_hdr_encode(uint8_t out[8], uint32_t start_pfn, uint32_t end_pfn);
void libxc_p2m_frames_hdr_decode(const uint8_t in[8], struct libxc_x86_pv_p2m_frames *f);
void libxc_vcpu_hdr_encode(uint8_t out[8], uint32_t vcpu_id);
void libxc_vcpu_hdr_decode(const uint8_t in[8], struct libxc_x86_pv_vcpu_hdr *h);
void libxc_tsc_info_encode(uint8_t out[24], const struct libxc_x86_tsc_info *tsc);
void libxc_tsc_info_decode(const uint8_t in[24], struct libxc_x86_tsc_info *tsc);
void libxc_hvm_params_hdr_encode(uint8_t out[8], uint32_t count);
void libxl_emulator_hdr_encode(uint8_t out[8], uint32_t emulator_id, uint32_t index);
void libxl_emulator_hdr_decode(const uint8_t in[8], struct libxl_emulator_hdr *h);

/* Element i of an array inside a checked body (body points at the record
 * body; the functions skip the body's own header where it has one). */
uint64_t libxc_page_data_pfn_word(const uint8_t *body, uint32_t i);   /* PAGE_DATA */
uint64_t libxc_p2m_frame(const uint8_t *body, uint32_t i);            /* P2M_FRAMES */
void libxc_hvm_param_at(const uint8_t *body, uint32_t i, struct libxc_hvm_param *p);
void libxc_cpuid_leaf_at(const uint8_t *body, uint32_t i, struct libxc_cpuid_leaf *l);
void libxc_msr_entry_at(const uint8_t *body, uint32_t i, struct libxc_msr_entry *m);
uint64_t libxc_dirty_pfn_at(const uint8_t *body, uint32_t i);        /* DIRTY_PFN_LIST */
uint32_t libxl_checkpoint_state_id(const uint8_t body[4]);

/* HVM_CONTEXT blobs must be in Xen's HVM save format (HEADER entry ... END
 * entry). These wrap an opaque payload as one entry of that format (what the
 * sim backend stores) and find it again. wrap returns 0 or -ENOMEM, *out is
 * malloc'd; payload returns 0 or -EINVAL if the blob has no such entry. */
int libxc_hvm_context_wrap(const void *payload, uint32_t len, uint8_t **out, uint32_t *out_len);
int libxc_hvm_context_payload(const uint8_t *blob, uint32_t len, const uint8_t **payload,
                              uint32_t *payload_len);

/* ---- whole records into a growable buffer ------------------------------ */
struct stream_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int rc;                      /* first error, sticky */
};

void stream_buf_init(struct stream_buf *b);
void stream_buf_release(struct stream_buf *b);        /* frees data, re-inits */
int stream_buf_append(struct stream_buf *b, const void *p, size_t n);

int stream_put_xl_header(struct stream_buf *b, const char *config_json);
int stream_put_libxl_header(struct stream_buf *b);
/* Image header (v3) and domain header. */
int stream_put_libxc_headers(struct stream_buf *b, uint32_t dom_type, uint32_t xen_major,
                             uint32_t xen_minor);
/* Any record: 8-byte header, body, zero padding to 8. Body parts a and c are
 * concatenated (c may be NULL), so fixed headers need no copy. */
int stream_put_record(struct stream_buf *b, uint32_t type, const void *body, uint32_t len);
int stream_put_record2(struct stream_buf *b, uint32_t type, const void *a, uint32_t alen,
                       const void *c, uint32_t clen);

/* PAGE_DATA: pfn_words in host order (see libxc_pfn_word()); pages holds 4096
 * bytes per word whose type carries data, in order. */
int stream_put_page_data(struct stream_buf *b, const uint64_t *pfn_words, uint32_t count,
                         const uint8_t *pages);
int stream_put_pv_info(struct stream_buf *b, uint8_t guest_width, uint8_t pt_levels);
int stream_put_p2m_frames(struct stream_buf *b, uint32_t start_pfn, uint32_t end_pfn,
                          const uint64_t *frames, uint32_t nframes);
/* type: one of the four LIBXC_REC_X86_PV_VCPU_* records. */
int stream_put_vcpu(struct stream_buf *b, uint32_t type, uint32_t vcpu_id, const void *blob,
                    uint32_t len);
int stream_put_tsc_info(struct stream_buf *b, const struct libxc_x86_tsc_info *tsc);
int stream_put_hvm_params(struct stream_buf *b, const struct libxc_hvm_param *params,
                          uint32_t count);
int stream_put_cpuid_policy(struct stream_buf *b, const struct libxc_cpuid_leaf *leaves,
                            uint32_t n);
int stream_put_msr_policy(struct stream_buf *b, const struct libxc_msr_entry *msrs, uint32_t n);
int stream_put_dirty_pfn_list(struct stream_buf *b, const uint64_t *pfns, uint32_t n);
/* type: LIBXL_REC_EMULATOR_CONTEXT or LIBXL_REC_EMULATOR_XENSTORE_DATA (raw pairs). */
int stream_put_emulator(struct stream_buf *b, uint32_t type, uint32_t emulator_id,
                        const void *blob, uint32_t len);
int stream_put_xenstore_data(struct stream_buf *b, uint32_t emulator_id,
                             const char *const *kv, size_t npairs);
int stream_put_checkpoint_state(struct stream_buf *b, uint32_t id);

#endif
