/* io/records.h - encode, decode and check every record of the v2 streams.
 *
 * Pure functions on memory buffers: no I/O, no allocation unless stated.
 * Checks apply every rule of Xen's restore code and of verify-stream-v2
 * (spec sections 1, 2.3, 2.4, 6) and tolerate what real streams contain
 * (spec 7 items 5-6: HVM_CONTEXT before HVM_PARAMS, zero-length HVM_PARAMS
 * and PV vCPU records). Every check function takes the absolute byte offset
 * of the record's header in the stream and, on failure, records in `e` a
 * reason of the form
 *     "offset 1234: libxc record PAGE_DATA (0x1): pfn word 3 has reserved bits set"
 * and returns a negative errno (-EINVAL for a malformed record, -EPROTO for a
 * record that is well-formed but not allowed where it stands, -E2BIG for a
 * length over the limit, -ENOTSUP for a valid but unsupported feature such as a
 * big-endian stream).
 */
#ifndef LOCKSTEP_IO_RECORDS_H
#define LOCKSTEP_IO_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep/errbuf.h"
#include "io/stream_format.h"

/* ---- names -------------------------------------------------------------- */
const char *libxl_rec_name(uint32_t type);   /* "END", ..., "UNKNOWN" */
const char *libxc_rec_name(uint32_t type);
const char *libxl_checkpoint_state_name(uint32_t id);
const char *libxc_page_type_name(unsigned type);    /* "NOTAB", "L1TAB", "PINNED L4TAB", "XTAB" ... */

/* Records e as "offset N: libxl record NAME (0xT): <fmt...>", the form of
 * every record error; returns rc. */
int libxl_rec_err(struct ls_errbuf *e, int rc, uint64_t offset, uint32_t type,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int libxc_rec_err(struct ls_errbuf *e, int rc, uint64_t offset, uint32_t type,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- padding ---------------------------------------------------------- */
/* Zero bytes for padding writes (at least 8). */
extern const uint8_t stream_zero_pad[8];
static inline uint32_t stream_pad_len(uint32_t body_len) { return (uint32_t)(-body_len & 7u); }
/* True if all pad bytes are zero. */
bool stream_pad_ok(const uint8_t *pad, uint32_t n);

/* ---- xl save-file header ---------------------------------------------- */
/* Encode magic + header + optional data for a JSON config (NUL included) into
 * a malloc'd buffer; *len gets its size. Returns 0 or -ENOMEM. */
int xl_header_encode(const char *config_json, uint8_t **out, size_t *len);
/* Decode the fixed 48 bytes (magic + struct xl_header). On success fills *h
 * (host order) and returns 0; the caller then reads h->optional_data_len
 * bytes and calls xl_header_config() on them. */
int xl_header_decode(const uint8_t buf[XL_MAGIC_LEN + sizeof(struct xl_header)],
                     struct xl_header *h, struct ls_errbuf *e);
/* Extract the JSON config from the optional data (validates config_len and
 * NUL termination). *json points into data. */
int xl_header_config(const uint8_t *data, uint32_t len, const char **json,
                     uint32_t *json_len, uint64_t offset, struct ls_errbuf *e);
bool xl_header_magic_matches(const uint8_t *buf, size_t len);

/* ---- libxl layer ------------------------------------------------------ */
void libxl_header_encode(uint8_t out[16]);    /* ident, version 2, options 0 */
int libxl_header_decode(const uint8_t in[16], uint32_t *options, uint64_t offset,
                        struct ls_errbuf *e);

/* Record header (8 bytes) for a record of `type` whose body is body_len bytes. */
void stream_rec_header_encode(uint8_t out[8], uint32_t type, uint32_t body_len);
void stream_rec_header_decode(const uint8_t in[8], uint32_t *type, uint32_t *body_len);

/* Checks a libxl record's type and body (spec 6, libxl rules). `is_hvm` is
 * -1 when unknown, else whether EMULATOR_* records are allowed. */
int libxl_record_check(uint32_t type, const uint8_t *body, uint32_t len, int is_hvm,
                       uint64_t offset, struct ls_errbuf *e);

/* EMULATOR_XENSTORE_DATA: body = emulator header + key\0value\0 pairs. */
int libxl_xenstore_data_encode(uint32_t emulator_id, const char *const *kv, size_t npairs,
                               uint8_t **out, uint32_t *len);   /* kv: k0,v0,k1,v1... */
/* Iterate pairs of a checked body: returns 1 with *key and *val set, 0 at end. */
int libxl_xenstore_data_next(const uint8_t *body, uint32_t len, uint32_t *pos,
                             const char **key, const char **val);

/* ---- libxc layer ------------------------------------------------------ */
void libxc_image_header_encode(uint8_t out[24]);   /* marker, XENF, v3, options 0 */
/* Returns the stream's version (2 or 3) or a negative errno. */
int libxc_image_header_decode(const uint8_t in[24], uint64_t offset, struct ls_errbuf *e);
void libxc_domain_header_encode(uint8_t out[16], uint32_t type, uint32_t xen_major,
                                uint32_t xen_minor);
int libxc_domain_header_decode(const uint8_t in[16], struct libxc_domain_header *h,
                               uint64_t offset, struct ls_errbuf *e);

/* Checks one libxc record's type, length and body, context-free (spec 2.3 and
 * 6). For PAGE_DATA pass only the first 8 + 8*count bytes (header and pfn
 * array) and the full body length in `len`: the pages are not needed. */
int libxc_record_check(uint32_t version, uint32_t type, const uint8_t *body,
                       uint32_t body_avail, uint32_t len, uint64_t offset,
                       struct ls_errbuf *e);

/* PAGE_DATA helpers. pfn_words are the 8-byte little-endian words. */
static inline unsigned libxc_pfn_type(uint64_t word) { return (unsigned)(word >> LIBXC_PAGE_TYPE_SHIFT); }
static inline uint64_t libxc_pfn_pfn(uint64_t word) { return word & LIBXC_PAGE_PFN_MASK; }
static inline uint64_t libxc_pfn_word(uint64_t pfn, unsigned type)
{
    return (pfn & LIBXC_PAGE_PFN_MASK) | ((uint64_t)type << LIBXC_PAGE_TYPE_SHIFT);
}
/* Number of pages in the pfn array that carry data. */
uint32_t libxc_page_data_npages(const uint64_t *pfn_words, uint32_t count);

/* Restore ordering and dependencies (spec 2.4 "Restore dependencies"), the
 * rules libxc's restore code applies; shared by the stream parser and the
 * backends' restore so they cannot drift. Feed every record type in order. */
struct libxc_order {
    uint32_t version;          /* 2 or 3, from the image header */
    uint32_t dom_type;         /* LIBXC_DHDR_TYPE_* */
    bool seen_pv_info, seen_p2m_frames, seen_static_data_end, seen_vcpu0_basic;
    bool seen_cpuid, seen_msr, seen_shared_info, seen_hvm_context, ended;
    bool checkpointed;         /* CHECKPOINT seen at least once */
};
void libxc_order_init(struct libxc_order *o, uint32_t version, uint32_t dom_type);
/* Returns 0, or a negative errno with the reason. *static_data_done is set to
 * true when this record is where static data ends (STATIC_DATA_END, or in a
 * v2 stream inferred at the first PAGE_DATA (HVM) / P2M_FRAMES (PV)); then
 * *missing gets LIBXC_SDD_MISSING_* bits for the static_data_done callback.
 * `vcpu_id` is the vcpu of a vCPU record (else ignored). */
int libxc_order_note(struct libxc_order *o, uint32_t type, uint32_t vcpu_id,
                     uint64_t offset, bool *static_data_done, unsigned *missing,
                     struct ls_errbuf *e);
/* At END: checks the records that must have been seen (PV: PV_INFO,
 * P2M_FRAMES, SHARED_INFO, vcpu0 BASIC; HVM: HVM_CONTEXT). */
int libxc_order_finish(struct libxc_order *o, uint64_t offset, struct ls_errbuf *e);

#endif
