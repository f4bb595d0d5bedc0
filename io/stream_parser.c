/* io/stream_parser.c - push parser for xl / libxl / libxc streams.
 *
 * The parser is a small state machine over "steps": each step names what the
 * next `want` bytes are (a header, a record header, a body, a PAGE_DATA pfn
 * array). Bytes are copied into one buffer until the step is satisfied, then
 * the step's handler validates them, reports the item and picks the next
 * step. Only PAGE_DATA pages bypass the buffer (STEP_PAGE_SKIP).
 */
#include "io/stream_parser.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/byteorder.h"
#include "io/record_body.h"

enum parser_step {
    STEP_DETECT,               /* first 8 bytes: which format */
    STEP_XL_FIXED,             /* magic + struct xl_header (48 bytes) */
    STEP_XL_OPTIONAL,          /* the xl header's optional data */
    STEP_LIBXL_HEADER,
    STEP_LIBXC_IMAGE,
    STEP_LIBXC_DOMAIN,
    STEP_REC_HEADER,
    STEP_REC_BODY,             /* body + padding */
    STEP_PAGE_HEADER,          /* PAGE_DATA count + reserved */
    STEP_PAGE_PFNS,            /* ... + pfn array */
    STEP_PAGE_SKIP,            /* pages: streamed, not buffered */
    STEP_DONE,
};

#define XL_FIXED_LEN (XL_MAGIC_LEN + sizeof(struct xl_header))

/* ---- small helpers ----------------------------------------------------- */

static const char *layer_name(enum stream_layer l)
{
    return l == STREAM_LAYER_XL ? "xl" : l == STREAM_LAYER_LIBXL ? "libxl" : "libxc";
}

static const char *rec_name(enum stream_layer l, uint32_t type)
{
    return l == STREAM_LAYER_LIBXC ? libxc_rec_name(type) : libxl_rec_name(type);
}

static int parser_fail(struct stream_parser *p, int rc, struct ls_errbuf *e)
{
    p->failed = true;
    p->rc = rc;
    if (e && e->rc == 0)
        ls_err(e, rc, "offset %" PRIu64 ": stream rejected (error %d)", p->item_offset, rc);
    return rc;
}

static int set_want(struct stream_parser *p, int step, size_t want)
{
    if (want > p->cap) {
        uint8_t *nb = realloc(p->buf, want);
        if (!nb)
            return -ENOMEM;
        p->buf = nb;
        p->cap = want;
    }
    p->step = step;
    p->want = want;
    return 0;
}

/* Begin a new header or record at the current position. */
static int start_item(struct stream_parser *p, int step, size_t want)
{
    p->have = 0;
    p->item_offset = p->pos;
    return set_want(p, step, want);
}

static void item_reset(struct stream_parser *p)
{
    memset(&p->item, 0, sizeof(p->item));
    p->item.offset = p->item_offset;
    p->item.checkpoint = p->checkpoints;
}

static int emit(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    if (!p->item_fn)
        return 0;
    rc = p->item_fn(p->data, &p->item, e);
    if (rc)
        return parser_fail(p, rc < 0 ? rc : -ECANCELED, e);
    return 0;
}

static int emit_record(struct stream_parser *p, const uint8_t *body, uint32_t body_len,
                       struct ls_errbuf *e)
{
    p->item.layer = p->layer;
    p->item.type = p->rec_type;
    p->item.length = p->rec_len;
    p->item.body = body;
    p->item.body_len = body_len;
    return emit(p, e);
}

/* ---- headers ------------------------------------------------------------ */

static int begin_libxc(struct stream_parser *p)
{
    p->layer = STREAM_LAYER_LIBXC;
    return start_item(p, STEP_LIBXC_IMAGE, 24);
}

static int begin_records(struct stream_parser *p)
{
    return start_item(p, STEP_REC_HEADER, 8);
}

static int on_detect(struct stream_parser *p, struct ls_errbuf *e)
{
    static const uint8_t libxl_ident[8] = { 'L', 'i', 'b', 'x', 'l', 'F', 'm', 't' };
    static const uint8_t ones[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

    if (xl_header_magic_matches(p->buf, 8)) {
        p->format = STREAM_FORMAT_XL;
        return set_want(p, STEP_XL_FIXED, XL_FIXED_LEN);
    }
    if (memcmp(p->buf, libxl_ident, 8) == 0) {
        p->format = STREAM_FORMAT_LIBXL;
        return set_want(p, STEP_LIBXL_HEADER, 16);
    }
    if (memcmp(p->buf, ones, 8) == 0) {
        p->format = STREAM_FORMAT_LIBXC;
        p->layer = STREAM_LAYER_LIBXC;
        return set_want(p, STEP_LIBXC_IMAGE, 24);
    }
    ls_err(e, -EINVAL, "offset 0: unknown stream format: first bytes are neither the xl magic, "
           "\"LibxlFmt\" nor a libxc image marker");
    return parser_fail(p, -EINVAL, e);
}

static int on_xl_fixed(struct stream_parser *p, struct ls_errbuf *e)
{
    struct xl_header h;
    int rc = xl_header_decode(p->buf, &h, e);

    if (rc)
        return parser_fail(p, rc, e);
    if (!(h.mandatory_flags & XL_MANDATORY_STREAM_V2)) {
        ls_err(e, -ENOTSUP, "offset 36: xl header: STREAM_V2 flag clear: legacy (v1) streams "
               "are not supported");
        return parser_fail(p, -ENOTSUP, e);
    }
    if (h.optional_data_len > LIBXC_REC_LENGTH_MAX) {
        ls_err(e, -E2BIG, "offset 44: xl header: optional data of %u bytes exceeds %u",
               h.optional_data_len, LIBXC_REC_LENGTH_MAX);
        return parser_fail(p, -E2BIG, e);
    }
    return set_want(p, STEP_XL_OPTIONAL, XL_FIXED_LEN + h.optional_data_len);
}

static int on_xl_optional(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    item_reset(p);
    xl_header_decode(p->buf, &p->item.xl, NULL);
    if (p->item.xl.optional_data_len) {
        rc = xl_header_config(p->buf + XL_FIXED_LEN, p->item.xl.optional_data_len,
                              &p->item.xl_config, &p->item.xl_config_len, XL_FIXED_LEN, e);
        if (rc)
            return parser_fail(p, rc, e);
        if (p->item.xl_config_len == 0)
            p->item.xl_config = NULL;
    }
    p->item.layer = STREAM_LAYER_XL;
    p->item.is_header = true;
    p->item.type = STREAM_HDR_XL;
    p->item.length = p->item.body_len = (uint32_t)p->want;
    p->item.body = p->buf;
    if ((rc = emit(p, e)))
        return rc;
    return start_item(p, STEP_LIBXL_HEADER, 16);
}

static int emit_header(struct stream_parser *p, enum stream_layer layer, uint32_t kind,
                       struct ls_errbuf *e)
{
    p->item.layer = layer;
    p->item.is_header = true;
    p->item.type = kind;
    p->item.length = p->item.body_len = (uint32_t)p->want;
    p->item.body = p->buf;
    return emit(p, e);
}

static int on_libxl_header(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    item_reset(p);
    rc = libxl_header_decode(p->buf, &p->item.libxl_options, p->item_offset, e);
    if (rc)
        return parser_fail(p, rc, e);
    if ((rc = emit_header(p, STREAM_LAYER_LIBXL, STREAM_HDR_LIBXL, e)))
        return rc;
    p->libxl_framed = true;
    p->layer = STREAM_LAYER_LIBXL;
    libxl_rules_init(&p->lx);
    return begin_records(p);
}

static int on_libxc_image(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    item_reset(p);
    rc = libxc_image_header_decode(p->buf, p->item_offset, e);
    if (rc < 0)
        return parser_fail(p, rc, e);
    p->libxc_version = (uint32_t)rc;
    p->item.libxc_version = p->libxc_version;
    if ((rc = emit_header(p, STREAM_LAYER_LIBXC, STREAM_HDR_LIBXC_IMAGE, e)))
        return rc;
    return start_item(p, STEP_LIBXC_DOMAIN, 16);
}

static int on_libxc_domain(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    item_reset(p);
    rc = libxc_domain_header_decode(p->buf, &p->item.dhdr, p->item_offset, e);
    if (rc)
        return parser_fail(p, rc, e);
    p->lx.is_hvm = p->item.dhdr.type == LIBXC_DHDR_TYPE_X86_HVM;
    libxc_rules_init(&p->xc, p->libxc_version, p->item.dhdr.type);
    if ((rc = emit_header(p, STREAM_LAYER_LIBXC, STREAM_HDR_LIBXC_DOMAIN, e)))
        return rc;
    return begin_records(p);
}

/* ---- libxc records ------------------------------------------------------ */

/* After a libxc END or CHECKPOINT: where the stream goes next. */
static int libxc_after_record(struct stream_parser *p)
{
    if (p->rec_type == LIBXC_REC_CHECKPOINT) {
        p->checkpoints++;
        if (p->libxl_framed) {
            p->layer = STREAM_LAYER_LIBXL;
            libxl_rules_libxc_ended(&p->lx, p->rec_type, p->lx.is_hvm);
        } else {
            p->clean_eof_here = true;     /* bare libxc: next batch or EOF */
        }
    } else if (p->rec_type == LIBXC_REC_END) {
        if (!p->libxl_framed) {
            p->complete = true;
            p->step = STEP_DONE;
            return 0;
        }
        p->layer = STREAM_LAYER_LIBXL;
        libxl_rules_libxc_ended(&p->lx, p->rec_type, p->lx.is_hvm);
    }
    return begin_records(p);
}

static int on_libxc_body(struct stream_parser *p, struct ls_errbuf *e)
{
    const uint8_t *body = p->buf;
    int rc;

    item_reset(p);
    rc = libxc_rules_record(&p->xc, p->rec_type, body, p->rec_len, p->rec_len, p->item_offset,
                            &p->item.static_data_done, &p->item.sdd_missing, e);
    if (rc)
        return parser_fail(p, rc, e);
    if ((rc = emit_record(p, body, p->rec_len, e)))
        return rc;
    return libxc_after_record(p);
}

/* PAGE_DATA count header in: sanity-check count before buffering its pfns. */
static int on_page_header(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc = libxc_rules_page_header(&p->xc, p->buf, p->rec_len, p->item_offset, e);

    if (rc)
        return parser_fail(p, rc, e);
    return set_want(p, STEP_PAGE_PFNS, 8 + 8 * (size_t)get_le32(p->buf));
}

static void summarise_pages(struct stream_parser *p)
{
    uint32_t count = get_le32(p->buf);

    p->item.page_count = count;
    for (uint32_t i = 0; i < count; i++) {
        unsigned type = libxc_pfn_type(get_le64(p->buf + 8 + 8 * (size_t)i));
        p->item.pages_by_type[type]++;
        if (LIBXC_PAGE_TYPE_HAS_DATA(type))
            p->item.data_pages++;
    }
}

static int on_page_pfns(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    item_reset(p);
    rc = libxc_rules_record(&p->xc, p->rec_type, p->buf, (uint32_t)p->have, p->rec_len,
                            p->item_offset, &p->item.static_data_done, &p->item.sdd_missing, e);
    if (rc)
        return parser_fail(p, rc, e);
    summarise_pages(p);
    /* The exact-length check passed, so there is no padding after the pages. */
    p->skip_left = p->rec_len - p->have;
    p->step = STEP_PAGE_SKIP;
    return 0;
}

static int on_page_skipped(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc = emit_record(p, p->buf, (uint32_t)p->have, e);

    return rc ? rc : begin_records(p);
}

/* ---- libxl records ------------------------------------------------------ */

static int libxl_after_record(struct stream_parser *p)
{
    switch (p->rec_type) {
    case LIBXL_REC_LIBXC_CONTEXT:
        return begin_libxc(p);
    case LIBXL_REC_END:
        p->complete = true;
        p->step = STEP_DONE;
        return 0;
    case LIBXL_REC_CHECKPOINT_END:
        p->clean_eof_here = true;
        return begin_records(p);
    case LIBXL_REC_CHECKPOINT_STATE:
        p->layer = STREAM_LAYER_LIBXC;
        p->clean_eof_here = true;
        return begin_records(p);
    default:
        return begin_records(p);
    }
}

static int on_libxl_body(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    item_reset(p);
    rc = libxl_rules_record(&p->lx, p->rec_type, p->buf, p->rec_len, p->item_offset, e);
    if (rc)
        return parser_fail(p, rc, e);
    if ((rc = emit_record(p, p->buf, p->rec_len, e)))
        return rc;
    return libxl_after_record(p);
}

/* ---- record headers and bodies ----------------------------------------- */

/* After CHECKPOINT_END the next record is either libxl CHECKPOINT_STATE (COLO)
 * or the first record of the next libxc batch. Real libxl knows which from
 * its mode; we tell them apart by shape: CHECKPOINT_STATE is type 5 with a
 * 4-byte body, while libxc type 5 (X86_PV_VCPU_EXTENDED) needs >= 8 bytes,
 * so a type 5 shorter than 8 can only be a (possibly bad) CHECKPOINT_STATE. */
static void route_after_checkpoint_end(struct stream_parser *p)
{
    if (p->lx.phase != LX_AFTER_CHECKPOINT_END)
        return;
    if (p->rec_type == LIBXL_REC_CHECKPOINT_STATE && p->rec_len < 8)
        return;
    p->lx.phase = LX_IN_LIBXC;
    p->layer = STREAM_LAYER_LIBXC;
}

/* Reject what we can from the header alone, before buffering a body. */
static int precheck_record_header(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc = p->layer == STREAM_LAYER_LIBXC
                 ? libxc_rules_header(&p->xc, p->rec_type, p->rec_len, p->item_offset, e)
                 : libxl_rules_header(&p->lx, p->rec_type, p->rec_len, p->item_offset, e);

    return rc ? parser_fail(p, rc, e) : 0;
}

static int on_rec_header(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    stream_rec_header_decode(p->buf, &p->rec_type, &p->rec_len);
    p->clean_eof_here = false;
    route_after_checkpoint_end(p);
    if ((rc = precheck_record_header(p, e)))
        return rc;
    p->have = 0;                        /* the body replaces the header bytes */
    if (p->layer == STREAM_LAYER_LIBXC && p->rec_type == LIBXC_REC_PAGE_DATA)
        return set_want(p, STEP_PAGE_HEADER, 8);
    rc = set_want(p, STEP_REC_BODY, (size_t)STREAM_ROUNDUP8(p->rec_len));
    return rc;
}

static int on_rec_body(struct stream_parser *p, struct ls_errbuf *e)
{
    const uint8_t *pad = p->buf + p->rec_len;
    uint32_t pad_len = (uint32_t)(p->want - p->rec_len);
    int rc = p->layer == STREAM_LAYER_LIBXC
                 ? libxc_rules_padding(p->rec_type, pad, pad_len, p->rec_len, p->item_offset, e)
                 : libxl_rules_padding(p->rec_type, pad, pad_len, p->rec_len, p->item_offset, e);

    if (rc)
        return parser_fail(p, rc, e);
    if (p->layer == STREAM_LAYER_LIBXC)
        return on_libxc_body(p, e);
    return on_libxl_body(p, e);
}

/* ---- driver ------------------------------------------------------------- */

static int step_complete(struct stream_parser *p, struct ls_errbuf *e)
{
    int rc;

    switch (p->step) {
    case STEP_DETECT:       rc = on_detect(p, e); break;
    case STEP_XL_FIXED:     rc = on_xl_fixed(p, e); break;
    case STEP_XL_OPTIONAL:  rc = on_xl_optional(p, e); break;
    case STEP_LIBXL_HEADER: rc = on_libxl_header(p, e); break;
    case STEP_LIBXC_IMAGE:  rc = on_libxc_image(p, e); break;
    case STEP_LIBXC_DOMAIN: rc = on_libxc_domain(p, e); break;
    case STEP_REC_HEADER:   rc = on_rec_header(p, e); break;
    case STEP_REC_BODY:     rc = on_rec_body(p, e); break;
    case STEP_PAGE_HEADER:  rc = on_page_header(p, e); break;
    case STEP_PAGE_PFNS:    rc = on_page_pfns(p, e); break;
    default:                rc = on_page_skipped(p, e); break;
    }
    if (rc && !p->failed) {             /* allocation failures */
        ls_err(e, rc, "offset %" PRIu64 ": out of memory buffering %zu bytes", p->item_offset,
               p->want);
        return parser_fail(p, rc, e);
    }
    return rc;
}

static int stream_pages(struct stream_parser *p, const uint8_t *in, size_t n,
                        struct ls_errbuf *e)
{
    int rc;

    if (!p->page_fn)
        return 0;
    rc = p->page_fn(p->data, p->pos, in, n, e);
    return rc ? parser_fail(p, rc < 0 ? rc : -ECANCELED, e) : 0;
}

static int reject_trailing(struct stream_parser *p, size_t len, struct ls_errbuf *e)
{
    /* Xen's verifier stops reading at END and ignores what follows; a
     * trailing byte means a confused writer, so lockstep refuses it. */
    p->item_offset = p->pos;
    ls_err(e, -EINVAL, "offset %" PRIu64 ": trailing data after the final %s END record",
           p->pos, p->libxl_framed ? "libxl" : "libxc");
    return parser_fail(p, -EINVAL, e);
}

int stream_parser_feed(struct stream_parser *p, const void *buf, size_t len,
                       struct ls_errbuf *e)
{
    const uint8_t *in = buf;
    int rc;

    for (;;) {
        if (p->failed)
            return p->rc;
        if (p->step == STEP_DONE)
            return len ? reject_trailing(p, len, e) : 0;
        if (p->step == STEP_PAGE_SKIP && p->skip_left == 0) {
            if ((rc = step_complete(p, e)))
                return rc;
            continue;
        }
        if (p->step != STEP_PAGE_SKIP && p->have == p->want) {
            if ((rc = step_complete(p, e)))
                return rc;
            continue;
        }
        if (len == 0)
            return 0;
        if (!p->buf && (rc = set_want(p, p->step, p->want)))
            return parser_fail(p, rc, e);
        if (p->step == STEP_PAGE_SKIP) {
            size_t n = p->skip_left < len ? (size_t)p->skip_left : len;
            if ((rc = stream_pages(p, in, n, e)))
                return rc;
            p->skip_left -= n;
            in += n, len -= n, p->pos += n;
        } else {
            size_t n = p->want - p->have < len ? p->want - p->have : len;
            memcpy(p->buf + p->have, in, n);
            p->have += n;
            in += n, len -= n, p->pos += n;
        }
    }
}

static const char *step_what(const struct stream_parser *p, char *out, size_t n)
{
    switch (p->step) {
    case STEP_DETECT:       return "the stream's first 8 bytes";
    case STEP_XL_FIXED:
    case STEP_XL_OPTIONAL:  return "the xl header";
    case STEP_LIBXL_HEADER: return "the libxl header";
    case STEP_LIBXC_IMAGE:  return "the libxc image header";
    case STEP_LIBXC_DOMAIN: return "the libxc domain header";
    case STEP_REC_HEADER:
        snprintf(out, n, "a %s record header", layer_name(p->layer));
        return out;
    default:
        snprintf(out, n, "%s record %s (0x%x)", layer_name(p->layer),
                 rec_name(p->layer, p->rec_type), p->rec_type);
        return out;
    }
}

int stream_parser_finish(struct stream_parser *p, struct ls_errbuf *e)
{
    char what[96];
    uint64_t missing;

    if (p->failed)
        return p->rc;
    if (p->step == STEP_DONE)
        return 0;
    if (p->step == STEP_REC_HEADER && p->have == 0) {
        if (p->clean_eof_here)
            return 0;
        ls_err(e, -ENODATA, "offset %" PRIu64 ": stream truncated: EOF between %s records, "
               "before the final END", p->pos, layer_name(p->layer));
        return parser_fail(p, -ENODATA, e);
    }
    missing = p->step == STEP_PAGE_SKIP ? p->skip_left : (uint64_t)(p->want - p->have);
    if (p->step == STEP_PAGE_PFNS || p->step == STEP_PAGE_HEADER)
        missing += p->rec_len - p->want;
    ls_err(e, -ENODATA, "offset %" PRIu64 ": stream truncated inside %s starting at offset %"
           PRIu64 " (%" PRIu64 " more bytes needed)", p->pos, step_what(p, what, sizeof(what)),
           p->item_offset, missing);
    return parser_fail(p, -ENODATA, e);
}

enum stream_end stream_parser_end(const struct stream_parser *p)
{
    if (p->failed)
        return STREAM_END_NONE;
    if (p->complete)
        return STREAM_END_COMPLETE;
    if (p->step == STEP_REC_HEADER && p->have == 0 && p->clean_eof_here)
        return STREAM_END_CHECKPOINTED;
    return STREAM_END_NONE;
}

uint64_t stream_parser_offset(const struct stream_parser *p)
{
    return p->pos;
}

void stream_parser_init(struct stream_parser *p, enum stream_format format,
                        stream_item_fn *item_fn, void *data)
{
    memset(p, 0, sizeof(*p));
    p->format = format;
    p->item_fn = item_fn;
    p->data = data;
    libxl_rules_init(&p->lx);
    p->layer = STREAM_LAYER_LIBXL;
    switch (format) {
    case STREAM_FORMAT_XL:    p->step = STEP_XL_FIXED; p->want = XL_FIXED_LEN; break;
    case STREAM_FORMAT_LIBXL: p->step = STEP_LIBXL_HEADER; p->want = 16; break;
    case STREAM_FORMAT_LIBXC:
        p->step = STEP_LIBXC_IMAGE;
        p->want = 24;
        p->layer = STREAM_LAYER_LIBXC;
        break;
    default:                  p->step = STEP_DETECT; p->want = 8; break;
    }
}

void stream_parser_set_page_fn(struct stream_parser *p, stream_page_fn *page_fn)
{
    p->page_fn = page_fn;
}

void stream_parser_destroy(struct stream_parser *p)
{
    free(p->buf);
    p->buf = NULL;
    p->cap = 0;
}
