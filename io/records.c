/* io/records.c - the record codec: names, headers, per-record checks and the
 * libxc restore ordering rules (spec sections 1, 2 and 6).
 *
 * Fields are always read and written through io/byteorder.h, never through
 * struct pointers: the wire is little endian except the libxl and libxc image
 * headers, and bodies may be unaligned.
 */
#include "io/records.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/byteorder.h"

const uint8_t stream_zero_pad[8];

/* ---- names ----------------------------------------------------------- */

static const char *const libxl_names[LIBXL_REC_TYPE_COUNT] = {
#define LIBXL_RECORD(name, value, check, doc) [value] = #name,
#include "io/records.def"
};

static const char *const libxc_names[LIBXC_REC_TYPE_COUNT] = {
#define LIBXC_RECORD(name, value, domains, since, check, doc) [value] = #name,
#include "io/records.def"
};

static const char *const checkpoint_state_names[] = {
    "CHECKPOINT_NEW", "CHECKPOINT_SVM_SUSPENDED", "CHECKPOINT_SVM_READY",
    "CHECKPOINT_SVM_RESUMED",
};

static const char *const page_type_names[16] = {
    "NOTAB", "L1TAB", "L2TAB", "L3TAB", "L4TAB", "INVALID5", "INVALID6", "INVALID7",
    "INVALID8", "PINNED L1TAB", "PINNED L2TAB", "PINNED L3TAB", "PINNED L4TAB",
    "BROKEN", "XALLOC", "XTAB",
};

const char *libxl_rec_name(uint32_t type)
{
    return type < LIBXL_REC_TYPE_COUNT ? libxl_names[type] : "UNKNOWN";
}

const char *libxc_rec_name(uint32_t type)
{
    return type < LIBXC_REC_TYPE_COUNT ? libxc_names[type] : "UNKNOWN";
}

const char *libxl_checkpoint_state_name(uint32_t id)
{
    return id < 4 ? checkpoint_state_names[id] : "UNKNOWN";
}

const char *libxc_page_type_name(unsigned type)
{
    return type < 16 ? page_type_names[type] : "UNKNOWN";
}

bool stream_pad_ok(const uint8_t *pad, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (pad[i])
            return false;
    return true;
}

/* ---- error helpers ----------------------------------------------------- */

static int vrec_err(struct ls_errbuf *e, int rc, uint64_t offset, const char *layer,
                    const char *name, uint32_t type, const char *fmt, va_list ap)
{
    char why[400];

    vsnprintf(why, sizeof(why), fmt, ap);
    return ls_err(e, rc, "offset %" PRIu64 ": %s record %s (0x%x): %s", offset, layer, name,
                  type, why);
}

/* "offset N: <layer> record NAME (0xT): why" */
static int __attribute__((format(printf, 7, 8)))
rec_err(struct ls_errbuf *e, int rc, uint64_t offset, const char *layer, const char *name,
        uint32_t type, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = vrec_err(e, rc, offset, layer, name, type, fmt, ap);
    va_end(ap);
    return rc;
}

int libxl_rec_err(struct ls_errbuf *e, int rc, uint64_t offset, uint32_t type,
                  const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = vrec_err(e, rc, offset, "libxl", libxl_rec_name(type), type, fmt, ap);
    va_end(ap);
    return rc;
}

int libxc_rec_err(struct ls_errbuf *e, int rc, uint64_t offset, uint32_t type,
                  const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = vrec_err(e, rc, offset, "libxc", libxc_rec_name(type), type, fmt, ap);
    va_end(ap);
    return rc;
}

#define XC_ERR(rc, ...) \
    rec_err(c->e, rc, c->offset, "libxc", libxc_rec_name(c->type), c->type, __VA_ARGS__)
#define XL_ERR(rc, ...) \
    rec_err(c->e, rc, c->offset, "libxl", libxl_rec_name(c->type), c->type, __VA_ARGS__)

/* Everything a per-type check needs; one struct keeps signatures short. */
struct rec_check {
    uint32_t version;        /* libxc stream version */
    uint32_t type;
    const uint8_t *body;
    uint32_t avail;          /* bytes present at body */
    uint32_t len;            /* body_length from the record header */
    int is_hvm;              /* libxl: -1 unknown */
    bool libxl;              /* which layer's record */
    uint64_t offset;
    struct ls_errbuf *e;
};

static int check_empty(const struct rec_check *c)
{
    if (c->len == 0)
        return 0;
    return rec_err(c->e, -EINVAL, c->offset, c->libxl ? "libxl" : "libxc",
                   c->libxl ? libxl_rec_name(c->type) : libxc_rec_name(c->type),
                   c->type, "body must be empty, has %u bytes", c->len);
}

typedef int rec_check_fn(const struct rec_check *c);

/* ---- xl save-file header --------------------------------------------- */

/* The config text is padded with spaces (JSON whitespace, as xl's parser
 * takes it) so that the header ends on an 8-byte boundary of the file: the
 * libxl records that follow are then 8-aligned in the file, and a saver can
 * place page data on page boundaries (sim_save.c, batch_capacity). */
int xl_header_encode(const char *config_json, uint8_t **out, size_t *len)
{
    size_t text_len = config_json ? strlen(config_json) : 0;
    size_t fixed = XL_MAGIC_LEN + sizeof(struct xl_header) + 4;
    size_t config_len = config_json ? text_len + 1 : 0;
    if (config_json)
        config_len += (8 - (fixed + config_len) % 8) % 8;
    size_t opt_len = config_json ? 4 + config_len : 0;
    size_t total = XL_MAGIC_LEN + sizeof(struct xl_header) + opt_len;
    uint8_t *buf;

    if (opt_len > UINT32_MAX)
        return -E2BIG;
    buf = malloc(total);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, XL_MAGIC, XL_MAGIC_LEN);
    put_ne32(buf + 32, XL_BYTEORDER);
    put_ne32(buf + 36, XL_MANDATORY_CONFIG_JSON | XL_MANDATORY_STREAM_V2);
    put_ne32(buf + 40, 0);
    put_ne32(buf + 44, (uint32_t)opt_len);
    if (config_json) {
        put_ne32(buf + 48, (uint32_t)config_len);
        memcpy(buf + 52, config_json, text_len);
        memset(buf + 52 + text_len, ' ', config_len - 1 - text_len);
        buf[52 + config_len - 1] = '\0';
    }
    *out = buf;
    *len = total;
    return 0;
}

bool xl_header_magic_matches(const uint8_t *buf, size_t len)
{
    size_t n = len < XL_MAGIC_LEN ? len : XL_MAGIC_LEN;
    return memcmp(buf, XL_MAGIC, n) == 0;
}

int xl_header_decode(const uint8_t buf[XL_MAGIC_LEN + sizeof(struct xl_header)],
                     struct xl_header *h, struct ls_errbuf *e)
{
    if (memcmp(buf, XL_MAGIC, XL_MAGIC_LEN) != 0)
        return ls_err(e, -EINVAL, "offset 0: xl header: magic is not \"Xen saved domain, xl format\"");
    h->byteorder = get_ne32(buf + 32);
    h->mandatory_flags = get_ne32(buf + 36);
    h->optional_flags = get_ne32(buf + 40);
    h->optional_data_len = get_ne32(buf + 44);
    /* xl refuses foreign-endian files; the verifier does not check this. */
    if (h->byteorder != XL_BYTEORDER)
        return ls_err(e, -ENOTSUP, "offset 32: xl header: byteorder 0x%08x is not native (0x%08x)",
                      h->byteorder, XL_BYTEORDER);
    if (h->mandatory_flags & ~XL_MANDATORY_KNOWN)
        return ls_err(e, -ENOTSUP, "offset 36: xl header: unknown mandatory flags 0x%x",
                      h->mandatory_flags & ~XL_MANDATORY_KNOWN);
    return 0;
}

int xl_header_config(const uint8_t *data, uint32_t len, const char **json,
                     uint32_t *json_len, uint64_t offset, struct ls_errbuf *e)
{
    uint32_t config_len;

    if (len < 4)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": xl header: optional data of %u bytes "
                      "is too short for the config length", offset, len);
    config_len = get_ne32(data);
    if (config_len > len - 4)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": xl header: config length %u exceeds the "
                      "%u bytes of optional data", offset, config_len, len - 4);
    *json = (const char *)data + 4;
    *json_len = 0;
    if (config_len == 0)
        return 0;
    if (data[4 + config_len - 1] != '\0')
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": xl header: config is not NUL-terminated",
                      offset);
    *json_len = config_len - 1;
    return 0;
}

/* ---- libxl layer ------------------------------------------------------ */

void libxl_header_encode(uint8_t out[16])
{
    put_be64(out, LIBXL_IDENT);
    put_be32(out + 8, LIBXL_VERSION);
    put_be32(out + 12, 0);
}

int libxl_header_decode(const uint8_t in[16], uint32_t *options, uint64_t offset,
                        struct ls_errbuf *e)
{
    uint64_t ident = get_be64(in);
    uint32_t version = get_be32(in + 8);
    uint32_t opts = get_be32(in + 12);

    if (ident != LIBXL_IDENT)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxl header: ident 0x%016" PRIx64
                      " is not \"LibxlFmt\"%s", offset, ident,
                      ident >> 48 == 0x1603 ? " (it is the start of a TLS handshake: the "
                      "sender uses TLS, so must the receiver)" : "");
    if (version != LIBXL_VERSION)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxl header: version %u, expected 2",
                      offset, version);
    if (opts & LIBXL_OPT_BIG_ENDIAN)
        return ls_err(e, -ENOTSUP, "offset %" PRIu64 ": libxl header: big-endian streams are "
                      "not supported", offset);
    /* The verifier rejects reserved bits 2-15; neither it nor libxl looks at 16-31. */
    if (opts & 0xfffcu)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxl header: reserved option bits 0x%x set",
                      offset, opts & 0xfffcu);
    if (options)
        *options = opts;
    return 0;
}

void stream_rec_header_encode(uint8_t out[8], uint32_t type, uint32_t body_len)
{
    put_le32(out, type);
    put_le32(out + 4, body_len);
}

void stream_rec_header_decode(const uint8_t in[8], uint32_t *type, uint32_t *body_len)
{
    *type = get_le32(in);
    *body_len = get_le32(in + 4);
}

static int check_xenstore_pairs(const struct rec_check *c)
{
    const uint8_t *data = c->body + 8;
    uint32_t n = c->len - 8, pos = 0, strings = 0;

    if (n == 0)
        return 0;
    if (data[n - 1] != '\0')
        return XL_ERR(-EINVAL, "xenstore data is not NUL-terminated");
    while (pos < n) {
        const char *s = (const char *)data + pos;
        uint32_t slen = (uint32_t)strlen(s);

        if (strings % 2 == 0 && slen == 0)
            return XL_ERR(-EINVAL, "empty xenstore key at body byte %u", 8 + pos);
        if (strings % 2 == 0 && s[0] == '/')
            return XL_ERR(-EINVAL, "xenstore key \"%.64s\" is absolute (starts with '/')", s);
        pos += slen + 1;
        strings++;
    }
    if (strings % 2)
        return XL_ERR(-EINVAL, "odd number of xenstore strings (%u): a key has no value", strings);
    return 0;
}

static int check_emulator(const struct rec_check *c)
{
    uint32_t id;

    if (c->len < 8)
        return XL_ERR(-EINVAL, "body of %u bytes is shorter than the 8-byte emulator header",
                      c->len);
    id = get_le32(c->body);
    if (id > LIBXL_EMULATOR_QEMU_UPSTREAM)
        return XL_ERR(-EINVAL, "unknown emulator id %u", id);
    if (c->is_hvm == 0)
        return XL_ERR(-EPROTO, "emulator records are only allowed for HVM domains");
    if (c->type == LIBXL_REC_EMULATOR_XENSTORE_DATA)
        return check_xenstore_pairs(c);
    return 0;
}

static int check_checkpoint_state(const struct rec_check *c)
{
    uint32_t id;

    if (c->len != 4)
        return XL_ERR(-EINVAL, "body must be a 4-byte control id, has %u bytes", c->len);
    id = get_le32(c->body);
    if (id > LIBXL_CHECKPOINT_SVM_RESUMED)
        return XL_ERR(-EINVAL, "unknown checkpoint state %u", id);
    return 0;
}

int libxl_record_check(uint32_t type, const uint8_t *body, uint32_t len, int is_hvm,
                       uint64_t offset, struct ls_errbuf *e)
{
    static rec_check_fn *const checks[LIBXL_REC_TYPE_COUNT] = {
#define LIBXL_RECORD(name, value, check, doc) [value] = check_##check,
#include "io/records.def"
    };
    struct rec_check cc = { .type = type, .body = body, .avail = len, .len = len,
                            .is_hvm = is_hvm, .libxl = true, .offset = offset, .e = e };
    const struct rec_check *c = &cc;

    if (type >= LIBXL_REC_TYPE_COUNT)
        /* libxl's reader and the verifier reject optional types too (spec 7 item 3). */
        return XL_ERR(-EINVAL, "unknown record type%s",
                      (type & LIBXC_REC_OPTIONAL) ? " (optional bit set, still rejected)" : "");
    /* libxl itself has no limit; we bound memory with libxc's. */
    if (len > LIBXC_REC_LENGTH_MAX)
        return XL_ERR(-E2BIG, "length %u exceeds the %u-byte record limit", len,
                      LIBXC_REC_LENGTH_MAX);
    return checks[type](c);
}

int libxl_xenstore_data_encode(uint32_t emulator_id, const char *const *kv, size_t npairs,
                               uint8_t **out, uint32_t *len)
{
    size_t total = 8, pos;
    uint8_t *buf;

    for (size_t i = 0; i < 2 * npairs; i++) {
        if (i % 2 == 0 && (kv[i][0] == '\0' || kv[i][0] == '/'))
            return -EINVAL;
        total += strlen(kv[i]) + 1;
    }
    if (total > LIBXC_REC_LENGTH_MAX)
        return -E2BIG;
    buf = malloc(total);
    if (!buf)
        return -ENOMEM;
    put_le32(buf, emulator_id);
    put_le32(buf + 4, 0);
    pos = 8;
    for (size_t i = 0; i < 2 * npairs; i++) {
        size_t n = strlen(kv[i]) + 1;
        memcpy(buf + pos, kv[i], n);
        pos += n;
    }
    *out = buf;
    *len = (uint32_t)total;
    return 0;
}

int libxl_xenstore_data_next(const uint8_t *body, uint32_t len, uint32_t *pos,
                             const char **key, const char **val)
{
    uint32_t p = *pos < 8 ? 8 : *pos;
    size_t klen, vlen;

    if (p >= len)
        return 0;
    klen = strnlen((const char *)body + p, len - p);
    if (p + klen + 1 >= len)
        return 0;
    vlen = strnlen((const char *)body + p + klen + 1, len - p - klen - 1);
    if (p + klen + 1 + vlen >= len)
        return 0;
    *key = (const char *)body + p;
    *val = (const char *)body + p + klen + 1;
    *pos = (uint32_t)(p + klen + 1 + vlen + 1);
    return 1;
}

/* ---- libxc headers ----------------------------------------------------- */

void libxc_image_header_encode(uint8_t out[24])
{
    put_be64(out, LIBXC_IHDR_MARKER);
    put_be32(out + 8, LIBXC_IHDR_ID);
    put_be32(out + 12, LIBXC_IHDR_VERSION);
    put_be16(out + 16, 0);
    put_be16(out + 18, 0);
    put_be32(out + 20, 0);
}

int libxc_image_header_decode(const uint8_t in[24], uint64_t offset, struct ls_errbuf *e)
{
    uint64_t marker = get_be64(in);
    uint32_t id = get_be32(in + 8), version = get_be32(in + 12);
    uint16_t options = get_be16(in + 16), res1 = get_be16(in + 18);
    uint32_t res2 = get_be32(in + 20);

    if (marker != LIBXC_IHDR_MARKER)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc image header: marker 0x%016" PRIx64
                      " is not all ones (a legacy pre-v2 image?)", offset, marker);
    if (id != LIBXC_IHDR_ID)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc image header: id 0x%08x is not "
                      "\"XENF\"", offset, id);
    if (version < 2 || version > 3)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc image header: version %u, expected "
                      "2 or 3", offset, version);
    if (options & LIBXC_IHDR_OPT_BIG_ENDIAN)
        return ls_err(e, -ENOTSUP, "offset %" PRIu64 ": libxc image header: big-endian streams "
                      "are not supported", offset);
    if (options & 0xfffeu)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc image header: reserved option bits "
                      "0x%x set", offset, options & 0xfffeu);
    if (res1 || res2)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc image header: reserved fields "
                      "0x%04x:0x%08x not zero", offset, res1, res2);
    return (int)version;
}

void libxc_domain_header_encode(uint8_t out[16], uint32_t type, uint32_t xen_major,
                                uint32_t xen_minor)
{
    put_le32(out, type);
    put_le16(out + 4, STREAM_PAGE_SHIFT);
    put_le16(out + 6, 0);
    put_le32(out + 8, xen_major);
    put_le32(out + 12, xen_minor);
}

int libxc_domain_header_decode(const uint8_t in[16], struct libxc_domain_header *h,
                               uint64_t offset, struct ls_errbuf *e)
{
    h->type = get_le32(in);
    h->page_shift = get_le16(in + 4);
    h->reserved = get_le16(in + 6);
    h->xen_major = get_le32(in + 8);
    h->xen_minor = get_le32(in + 12);
    if (h->type != LIBXC_DHDR_TYPE_X86_PV && h->type != LIBXC_DHDR_TYPE_X86_HVM)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc domain header: type %u is neither "
                      "x86 PV (1) nor x86 HVM (2)", offset, h->type);
    if (h->page_shift != STREAM_PAGE_SHIFT)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc domain header: page_shift %u, "
                      "expected 12", offset, h->page_shift);
    if (h->reserved)
        return ls_err(e, -EINVAL, "offset %" PRIu64 ": libxc domain header: reserved field "
                      "0x%04x not zero", offset, h->reserved);
    return 0;
}

/* ---- libxc record checks ---------------------------------------------- */

uint32_t libxc_page_data_npages(const uint64_t *pfn_words, uint32_t count)
{
    const uint8_t *p = (const uint8_t *)pfn_words;
    uint32_t n = 0;

    for (uint32_t i = 0; i < count; i++)
        if (LIBXC_PAGE_TYPE_HAS_DATA(libxc_pfn_type(get_le64(p + 8 * i))))
            n++;
    return n;
}

static int check_avail(const struct rec_check *c, uint64_t need)
{
    if (c->avail >= need)
        return 0;
    return XC_ERR(-EINVAL, "only %u body bytes given to the check, %" PRIu64 " needed",
                  c->avail, need);
}

static int check_pfn_words(const struct rec_check *c, uint32_t count, uint64_t *data_pages)
{
    *data_pages = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t word = get_le64(c->body + 8 + 8 * (uint64_t)i);
        unsigned type = libxc_pfn_type(word);

        if (word & LIBXC_PAGE_RESERVED_MASK)
            return XC_ERR(-EINVAL, "pfn word %u (0x%016" PRIx64 ") has reserved bits 52-59 set",
                          i, word);
        if (LIBXC_PAGE_TYPE_INVALID(type))
            return XC_ERR(-EINVAL, "pfn word %u (0x%016" PRIx64 ") has invalid page type 0x%x",
                          i, word, type);
        if (LIBXC_PAGE_TYPE_HAS_DATA(type))
            (*data_pages)++;
    }
    return 0;
}

static int check_page_data(const struct rec_check *c)
{
    uint32_t count;
    uint64_t pfn_end, data_pages, want;
    int rc;

    if (c->len <= 8)
        return XC_ERR(-EINVAL, "body of %u bytes has no pfn (must exceed 8 bytes)", c->len);
    if ((rc = check_avail(c, 8)))
        return rc;
    count = get_le32(c->body);
    if (count == 0)
        return XC_ERR(-EINVAL, "count is 0, at least one pfn required");
    if (get_le32(c->body + 4))
        return XC_ERR(-EINVAL, "reserved field 0x%x not zero", get_le32(c->body + 4));
    pfn_end = 8 + 8 * (uint64_t)count;
    if (pfn_end > c->len)
        return XC_ERR(-EINVAL, "body of %u bytes is too short for the array of %u pfns",
                      c->len, count);
    if ((rc = check_avail(c, pfn_end)) || (rc = check_pfn_words(c, count, &data_pages)))
        return rc;
    want = pfn_end + STREAM_PAGE_SIZE * data_pages;
    if (c->len != want)
        return XC_ERR(-EINVAL, "length %u != 8 + 8*%u pfns + 4096*%" PRIu64 " data pages = %"
                      PRIu64, c->len, count, data_pages, want);
    return 0;
}

static int check_pv_info(const struct rec_check *c)
{
    uint8_t width, levels;

    if (c->len != 8)
        return XC_ERR(-EINVAL, "body must be 8 bytes, has %u", c->len);
    width = c->body[0];
    levels = c->body[1];
    if (width != 4 && width != 8)
        return XC_ERR(-EINVAL, "guest_width %u, expected 4 or 8", width);
    if (levels != 3 && levels != 4)
        return XC_ERR(-EINVAL, "pt_levels %u, expected 3 or 4", levels);
    /* Restore accepts only the real combinations: 32-bit PAE or 64-bit 4-level. */
    if ((width == 4) != (levels == 3))
        return XC_ERR(-EINVAL, "guest_width %u with pt_levels %u is not a valid combination",
                      width, levels);
    if (!stream_pad_ok(c->body + 2, 6))
        return XC_ERR(-EINVAL, "reserved bytes 2-7 not zero");
    return 0;
}

static uint64_t p2m_frames_len(uint32_t start, uint32_t end, unsigned width)
{
    uint32_t fpp = STREAM_PAGE_SIZE / width;
    return 8 + 8 * ((uint64_t)(end / fpp) - start / fpp + 1);
}

static int check_p2m_frames(const struct rec_check *c)
{
    uint32_t start, end;

    if (c->len < 8)
        return XC_ERR(-EINVAL, "body of %u bytes is shorter than 8", c->len);
    if (c->len % 8)
        return XC_ERR(-EINVAL, "length %u is not a multiple of 8", c->len);
    start = get_le32(c->body);
    end = get_le32(c->body + 4);
    if (start > end)
        return XC_ERR(-EINVAL, "start_pfn 0x%x exceeds end_pfn 0x%x", start, end);
    /* The exact size needs the guest width (X86_PV_INFO); accept either width here. */
    if (c->len != p2m_frames_len(start, end, 8) && c->len != p2m_frames_len(start, end, 4))
        return XC_ERR(-EINVAL, "length %u fits neither a 64-bit (%" PRIu64 ") nor a 32-bit (%"
                      PRIu64 ") guest for pfns 0x%x-0x%x", c->len, p2m_frames_len(start, end, 8),
                      p2m_frames_len(start, end, 4), start, end);
    return 0;
}

static int check_vcpu(const struct rec_check *c)
{
    uint32_t blob;

    if (c->len < 8)
        return XC_ERR(-EINVAL, "body of %u bytes is shorter than the 8-byte vcpu header", c->len);
    if (get_le32(c->body + 4))
        return XC_ERR(-EINVAL, "reserved field 0x%x not zero", get_le32(c->body + 4));
    blob = c->len - 8;
    if (blob == 0)          /* Xen 4.6-4.8 senders emitted these (spec 7 item 6) */
        return 0;
    if (c->type == LIBXC_REC_X86_PV_VCPU_EXTENDED && blob > LIBXC_X86_VCPU_EXTENDED_MAX)
        return XC_ERR(-EINVAL, "context of %u bytes exceeds %u", blob, LIBXC_X86_VCPU_EXTENDED_MAX);
    if (c->type == LIBXC_REC_X86_PV_VCPU_XSAVE && blob < LIBXC_X86_VCPU_XSAVE_MIN)
        return XC_ERR(-EINVAL, "context of %u bytes is shorter than %u", blob,
                      LIBXC_X86_VCPU_XSAVE_MIN);
    if (c->type == LIBXC_REC_X86_PV_VCPU_MSRS && blob % 16)
        return XC_ERR(-EINVAL, "context of %u bytes is not a multiple of 16", blob);
    return 0;
}

static int check_shared_info(const struct rec_check *c)
{
    if (c->len != STREAM_PAGE_SIZE)
        return XC_ERR(-EINVAL, "body must be one 4096-byte page, has %u bytes", c->len);
    return 0;
}

static int check_tsc_info(const struct rec_check *c)
{
    if (c->len != 24)
        return XC_ERR(-EINVAL, "body must be 24 bytes, has %u", c->len);
    if (get_le32(c->body + 20))
        return XC_ERR(-EINVAL, "reserved field 0x%x not zero", get_le32(c->body + 20));
    return 0;
}

/* Xen HVM save format (public/hvm/save.h): {u16 typecode; u16 instance;
 * u32 length} descriptors, first the HEADER (typecode 1) whose data opens with
 * the file magic, last the END (typecode 0, length 0). */
#define HVM_SAVE_DESC_LEN     8u
#define HVM_SAVE_CODE_END     0u
#define HVM_SAVE_CODE_HEADER  1u
#define HVM_SAVE_HEADER_LEN   24u
#define HVM_SAVE_FILE_MAGIC   0x54381286u

static int check_hvm_context_header(const struct rec_check *c)
{
    if (c->len < HVM_SAVE_DESC_LEN + HVM_SAVE_HEADER_LEN ||
        get_le16(c->body) != HVM_SAVE_CODE_HEADER)
        return XC_ERR(-EINVAL, "blob does not start with an HVM save HEADER entry");
    if (get_le32(c->body + 4) < HVM_SAVE_HEADER_LEN)
        return XC_ERR(-EINVAL, "HVM save HEADER entry of %u bytes is shorter than %u",
                      get_le32(c->body + 4), HVM_SAVE_HEADER_LEN);
    if (get_le32(c->body + HVM_SAVE_DESC_LEN) != HVM_SAVE_FILE_MAGIC)
        return XC_ERR(-EINVAL, "HVM save header magic 0x%08x, expected 0x%08x",
                      get_le32(c->body + HVM_SAVE_DESC_LEN), HVM_SAVE_FILE_MAGIC);
    return 0;
}

static int check_hvm_context(const struct rec_check *c)
{
    uint64_t pos = 0;
    int rc;

    if (c->len == 0)
        return XC_ERR(-EINVAL, "empty HVM context");
    if ((rc = check_hvm_context_header(c)))
        return rc;
    while (pos + HVM_SAVE_DESC_LEN <= c->len) {
        uint16_t code = get_le16(c->body + pos);
        uint32_t len = get_le32(c->body + pos + 4);

        if (code == HVM_SAVE_CODE_END) {
            if (len != 0 || pos + HVM_SAVE_DESC_LEN != c->len)
                return XC_ERR(-EINVAL, "HVM save END entry at blob byte %" PRIu64
                              " is not the last 8 bytes", pos);
            return 0;
        }
        pos += HVM_SAVE_DESC_LEN + (uint64_t)len;
    }
    return XC_ERR(-EINVAL, "HVM save entries overrun the blob or lack the END entry");
}

static int check_hvm_params(const struct rec_check *c)
{
    uint32_t count;
    uint64_t want;

    if (c->len < 8)
        return XC_ERR(-EINVAL, "body of %u bytes is shorter than the 8-byte header", c->len);
    count = get_le32(c->body);
    if (get_le32(c->body + 4))
        return XC_ERR(-EINVAL, "reserved field 0x%x not zero", get_le32(c->body + 4));
    want = 8 + 16 * (uint64_t)count;      /* count 0 tolerated (spec 7 item 6) */
    if (c->len != want)
        return XC_ERR(-EINVAL, "length %u != 8 + 16*%u params = %" PRIu64, c->len, count, want);
    return 0;
}

static int check_toolstack(const struct rec_check *c)
{
    return XC_ERR(-EINVAL, "deprecated record: neither restore nor the verifier accept it");
}

static int check_dirty_pfn_list(const struct rec_check *c)
{
    /* Only valid on the COLO back channel; the stream-order check rejects it
     * in a main stream. */
    if (c->len % 8)
        return XC_ERR(-EINVAL, "length %u is not a multiple of 8", c->len);
    return 0;
}

static int check_policy(const struct rec_check *c, uint32_t entry)
{
    if (c->len == 0 || c->len % entry)
        return XC_ERR(-EINVAL, "length %u is not a positive multiple of %u", c->len, entry);
    return 0;
}

static int check_cpuid_policy(const struct rec_check *c)
{
    return check_policy(c, sizeof(struct libxc_cpuid_leaf));
}

static int check_msr_policy(const struct rec_check *c)
{
    return check_policy(c, sizeof(struct libxc_msr_entry));
}

static rec_check_fn *const libxc_checks[LIBXC_REC_TYPE_COUNT] = {
#define LIBXC_RECORD(name, value, domains, since, check, doc) [value] = check_##check,
#include "io/records.def"
};

/* The stream version that introduced each type. */
static const uint8_t libxc_since[LIBXC_REC_TYPE_COUNT] = {
#define LIBXC_RECORD(name, value, domains, since, check, doc) [value] = since,
#include "io/records.def"
};

#define LIBXC_DOMAINS_ANY 0u
#define LIBXC_DOMAINS_PV  LIBXC_DHDR_TYPE_X86_PV
#define LIBXC_DOMAINS_HVM LIBXC_DHDR_TYPE_X86_HVM
/* The one domain type that may carry each type, or 0 for any. */
static const uint8_t libxc_domains[LIBXC_REC_TYPE_COUNT] = {
#define LIBXC_RECORD(name, value, domains, since, check, doc) [value] = LIBXC_DOMAINS_##domains,
#include "io/records.def"
};

int libxc_record_check(uint32_t version, uint32_t type, const uint8_t *body,
                       uint32_t body_avail, uint32_t len, uint64_t offset,
                       struct ls_errbuf *e)
{
    struct rec_check cc = { .version = version, .type = type, .body = body,
                            .avail = body_avail, .len = len, .offset = offset, .e = e };
    const struct rec_check *c = &cc;
    int rc;

    if (type >= LIBXC_REC_TYPE_COUNT)
        /* Like the verifier, refuse optional types too (spec 7 item 3). */
        return XC_ERR(-EINVAL, "unknown record type%s",
                      type == 0xffffffffu ? " (a libxc image marker? later batches of a "
                                            "checkpointed stream have no new headers)" :
                      (type & LIBXC_REC_OPTIONAL) ? " (optional bit set, still rejected)" : "");
    if (len > LIBXC_REC_LENGTH_MAX)
        return XC_ERR(-E2BIG, "length %u exceeds the %u-byte record limit", len,
                      LIBXC_REC_LENGTH_MAX);
    if (version < libxc_since[type])
        return XC_ERR(-EINVAL, "not allowed in a v%u stream (introduced in v%u)", version,
                      libxc_since[type]);
    if (type != LIBXC_REC_PAGE_DATA && (rc = check_avail(c, len)))
        return rc;
    return libxc_checks[type](c);
}

/* ---- libxc restore ordering ------------------------------------------- */

#define ORDER_ERR(rc, ...) \
    rec_err(e, rc, offset, "libxc", libxc_rec_name(type), type, __VA_ARGS__)

void libxc_order_init(struct libxc_order *o, uint32_t version, uint32_t dom_type)
{
    memset(o, 0, sizeof(*o));
    o->version = version;
    o->dom_type = dom_type;
}

static bool type_is_policy(uint32_t type)
{
    return type == LIBXC_REC_X86_CPUID_POLICY || type == LIBXC_REC_X86_MSR_POLICY;
}

static int order_check_domain_type(const struct libxc_order *o, uint32_t type, uint64_t offset,
                                   struct ls_errbuf *e)
{
    bool hvm = o->dom_type == LIBXC_DHDR_TYPE_X86_HVM;

    if (hvm && libxc_domains[type] == LIBXC_DHDR_TYPE_X86_PV)
        return ORDER_ERR(-EPROTO, "x86 PV record in an HVM stream");
    if (!hvm && libxc_domains[type] == LIBXC_DHDR_TYPE_X86_HVM)
        return ORDER_ERR(-EPROTO, "HVM record in an x86 PV stream");
    /* Restore needs the guest width before anything that depends on it; the
     * saver sends X86_PV_INFO first, with only the CPU policy possibly ahead. */
    if (!hvm && !o->seen_pv_info && type != LIBXC_REC_X86_PV_INFO && !type_is_policy(type))
        return ORDER_ERR(-EPROTO, "X86_PV_INFO must come first in an x86 PV stream");
    return 0;
}

static void order_static_data_done(struct libxc_order *o, bool *done, unsigned *missing)
{
    o->seen_static_data_end = true;
    *done = true;
    *missing = (o->seen_cpuid ? 0 : LIBXC_SDD_MISSING_CPUID) |
               (o->seen_msr ? 0 : LIBXC_SDD_MISSING_MSR);
}

/* PAGE_DATA and P2M_FRAMES need the static data (CPU policy) applied first;
 * a v2 stream has no STATIC_DATA_END, so restore infers it here. */
static int order_need_static_data(struct libxc_order *o, uint32_t type, uint64_t offset,
                                  bool *done, unsigned *missing, struct ls_errbuf *e)
{
    if (o->seen_static_data_end)
        return 0;
    if (o->version < 3) {
        order_static_data_done(o, done, missing);
        return 0;
    }
    return ORDER_ERR(-EPROTO, "no STATIC_DATA_END before it in a v3 stream");
}

static int order_check_complete(const struct libxc_order *o, uint32_t type, uint64_t offset,
                                struct ls_errbuf *e)
{
    if (o->version >= 3 && !o->seen_static_data_end)
        return ORDER_ERR(-EPROTO, "stream has no STATIC_DATA_END");
    if (o->dom_type == LIBXC_DHDR_TYPE_X86_HVM) {
        if (!o->seen_hvm_context)
            return ORDER_ERR(-EPROTO, "HVM stream has no HVM_CONTEXT");
        return 0;
    }
    if (!o->seen_pv_info)
        return ORDER_ERR(-EPROTO, "x86 PV stream has no X86_PV_INFO");
    if (!o->seen_p2m_frames)
        return ORDER_ERR(-EPROTO, "x86 PV stream has no X86_PV_P2M_FRAMES");
    if (!o->seen_shared_info)
        return ORDER_ERR(-EPROTO, "x86 PV stream has no SHARED_INFO");
    if (!o->seen_vcpu0_basic)
        return ORDER_ERR(-EPROTO, "x86 PV stream has no X86_PV_VCPU_BASIC for vcpu 0");
    return 0;
}

static int order_note_policy(struct libxc_order *o, uint32_t type, uint64_t offset,
                             struct ls_errbuf *e)
{
    if (o->version < 3)
        return ORDER_ERR(-EPROTO, "CPU policy records are not allowed in a v2 stream");
    /* Restore applies the policy at STATIC_DATA_END; a later one would be ignored. */
    if (o->seen_static_data_end)
        return ORDER_ERR(-EPROTO, "CPU policy after STATIC_DATA_END would never be applied");
    if (type == LIBXC_REC_X86_CPUID_POLICY)
        o->seen_cpuid = true;
    else
        o->seen_msr = true;
    return 0;
}

static int order_note_type(struct libxc_order *o, uint32_t type, uint32_t vcpu_id,
                           uint64_t offset, bool *done, unsigned *missing, struct ls_errbuf *e)
{
    switch (type) {
    case LIBXC_REC_X86_PV_INFO:
        if (o->seen_pv_info)
            return ORDER_ERR(-EPROTO, "second X86_PV_INFO");
        o->seen_pv_info = true;
        return 0;
    case LIBXC_REC_STATIC_DATA_END:
        if (o->version < 3)
            return ORDER_ERR(-EPROTO, "STATIC_DATA_END is not allowed in a v2 stream");
        if (o->seen_static_data_end)
            return ORDER_ERR(-EPROTO, "second STATIC_DATA_END");
        order_static_data_done(o, done, missing);
        return 0;
    case LIBXC_REC_X86_CPUID_POLICY:
    case LIBXC_REC_X86_MSR_POLICY:
        return order_note_policy(o, type, offset, e);
    case LIBXC_REC_PAGE_DATA:
        return order_need_static_data(o, type, offset, done, missing, e);
    case LIBXC_REC_X86_PV_P2M_FRAMES:
        o->seen_p2m_frames = true;
        return order_need_static_data(o, type, offset, done, missing, e);
    case LIBXC_REC_X86_PV_VCPU_BASIC:
        if (vcpu_id == 0)
            o->seen_vcpu0_basic = true;
        return 0;
    case LIBXC_REC_SHARED_INFO:
        o->seen_shared_info = true;
        return 0;
    case LIBXC_REC_HVM_CONTEXT:
        o->seen_hvm_context = true;
        return 0;
    case LIBXC_REC_TOOLSTACK:
        return ORDER_ERR(-EPROTO, "deprecated TOOLSTACK record is not handled by restore");
    case LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST:
        return ORDER_ERR(-EPROTO, "only allowed on the COLO back channel, not in the stream");
    case LIBXC_REC_CHECKPOINT:
        /* Restore may resume the guest from this checkpoint, so it must be whole. */
        o->checkpointed = true;
        return order_check_complete(o, type, offset, e);
    case LIBXC_REC_END:
        o->ended = true;
        return order_check_complete(o, type, offset, e);
    default:
        return 0;
    }
}

/* vcpu_id: pass UINT32_MAX for an empty (zero-content) vCPU record, which
 * restore skips, so it does not count as vcpu0's state. */
int libxc_order_note(struct libxc_order *o, uint32_t type, uint32_t vcpu_id,
                     uint64_t offset, bool *static_data_done, unsigned *missing,
                     struct ls_errbuf *e)
{
    bool done_local = false;
    unsigned missing_local = 0;
    int rc;

    if (!static_data_done)
        static_data_done = &done_local;
    if (!missing)
        missing = &missing_local;
    *static_data_done = false;
    *missing = 0;
    if (o->ended)
        return ORDER_ERR(-EPROTO, "record after the libxc END record");
    if (type >= LIBXC_REC_TYPE_COUNT)
        return ORDER_ERR(-EINVAL, "unknown record type");
    if ((rc = order_check_domain_type(o, type, offset, e)))
        return rc;
    return order_note_type(o, type, vcpu_id, offset, static_data_done, missing, e);
}

int libxc_order_finish(struct libxc_order *o, uint64_t offset, struct ls_errbuf *e)
{
    int rc = order_check_complete(o, LIBXC_REC_END, offset, e);

    o->ended = true;
    return rc;
}
