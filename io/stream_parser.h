/* io/stream_parser.h - push parser and validator for whole migration streams.
 *
 * Feed it bytes in chunks of any size, as they arrive; it calls back once per
 * header and per record, in stream order, after checking every rule of
 * io/records.h plus the ordering rules of both layers:
 *   - format xl (xl save-file header), libxl ("LibxlFmt") or bare libxc
 *     (all-ones marker), chosen by the caller or auto-detected;
 *   - at libxl LIBXC_CONTEXT it descends into the nested libxc stream and
 *     returns to libxl records after the libxc END;
 *   - checkpointed (Remus/COLO) streams: a libxc CHECKPOINT hands back to libxl
 *     records up to CHECKPOINT_END, optionally followed by CHECKPOINT_STATE
 *     (NEW), then the next libxc batch follows with no new headers. EOF right
 *     after a complete checkpoint is a clean end of such a stream.
 *
 * Memory is bounded: PAGE_DATA pages are never buffered (only the 8-byte
 * count header and the pfn array are; the page bytes can be streamed to an
 * optional page callback); other record bodies are buffered whole, up to
 * LIBXC_REC_LENGTH_MAX (also applied to libxl records).
 *
 * Every error is recorded in the caller's ls_errbuf as
 *     "offset N: <layer> record NAME (0xT): <rule that was broken>"
 * (or "offset N: <layer> header: ..." / "offset N: stream truncated: ...") and
 * returned as a negative errno: -EINVAL malformed, -EPROTO misplaced record,
 * -E2BIG over-long record, -ENOTSUP unsupported variant (big endian, legacy
 * v1 image), -ENODATA truncated stream (from stream_parser_finish), or the
 * callback's own error. After an error the parser refuses further input.
 */
#ifndef LOCKSTEP_IO_STREAM_PARSER_H
#define LOCKSTEP_IO_STREAM_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep/errbuf.h"
#include "io/records.h"
#include "io/stream_format.h"
#include "io/stream_rules.h"

enum stream_format {
    STREAM_FORMAT_AUTO,        /* detect from the first 8 bytes */
    STREAM_FORMAT_XL,
    STREAM_FORMAT_LIBXL,
    STREAM_FORMAT_LIBXC,
};

enum stream_layer {
    STREAM_LAYER_XL,
    STREAM_LAYER_LIBXL,
    STREAM_LAYER_LIBXC,
};

/* For headers, stream_item.type is one of these. */
enum stream_header_kind {
    STREAM_HDR_XL,             /* magic + struct xl_header + optional data */
    STREAM_HDR_LIBXL,
    STREAM_HDR_LIBXC_IMAGE,
    STREAM_HDR_LIBXC_DOMAIN,
};

enum stream_end {
    STREAM_END_NONE,           /* not (yet) a valid end */
    STREAM_END_COMPLETE,       /* the outermost END record was seen */
    STREAM_END_CHECKPOINTED,   /* EOF right after a complete checkpoint */
};

/* One header or record, valid only during the callback. */
struct stream_item {
    uint64_t offset;           /* absolute offset of its first byte */
    enum stream_layer layer;
    bool is_header;
    uint32_t type;             /* record type, or enum stream_header_kind */
    uint32_t length;           /* record body_length; header: its size in bytes */
    const uint8_t *body;       /* record body; PAGE_DATA: count header + pfn array
                                * only; headers: their raw bytes */
    uint32_t body_len;         /* bytes at body */
    unsigned checkpoint;       /* libxc CHECKPOINT records before this item */

    /* Decoded header fields (for the matching header kind). */
    struct xl_header xl;
    const char *xl_config;     /* NUL-terminated JSON in body, or NULL */
    uint32_t xl_config_len;
    uint32_t libxl_options;
    uint32_t libxc_version;
    struct libxc_domain_header dhdr;

    /* PAGE_DATA summary. */
    uint32_t page_count;
    uint32_t data_pages;       /* pages carrying 4096 bytes */
    uint32_t pages_by_type[16];

    /* Static data ends here (STATIC_DATA_END, or inferred in a v2 stream);
     * sdd_missing has LIBXC_SDD_MISSING_* bits for static_data_done. */
    bool static_data_done;
    unsigned sdd_missing;
};

/* Called per header and record after it passed every check. Return 0 to go
 * on, or a negative errno (ideally with a reason in e) to stop parsing. */
typedef int stream_item_fn(void *data, const struct stream_item *item, struct ls_errbuf *e);

/* Optional: receives PAGE_DATA page bytes in order as they stream through,
 * before the record's item callback. `offset` is absolute. */
typedef int stream_page_fn(void *data, uint64_t offset, const uint8_t *bytes, size_t len,
                           struct ls_errbuf *e);

/* Opaque to users; in the header so it can live on the stack. */
struct stream_parser {
    enum stream_format format;
    stream_item_fn *item_fn;
    stream_page_fn *page_fn;
    void *data;

    int step;                  /* what the buffered bytes will be */
    enum stream_layer layer;   /* layer of the next record */
    bool libxl_framed;         /* libxc nested in a libxl stream */
    bool failed;
    bool complete;
    bool clean_eof_here;       /* EOF now ends a checkpointed stream cleanly */
    int rc;

    uint8_t *buf;
    size_t have, want, cap;
    uint64_t pos;              /* absolute offset of the next input byte */
    uint64_t item_offset;      /* where the current header/record starts */
    uint32_t rec_type, rec_len;
    uint64_t skip_left;        /* PAGE_DATA page bytes still to stream through */

    uint32_t libxc_version;
    unsigned checkpoints;
    struct libxl_rules lx;     /* the libxl records' rules (io/stream_rules.h) */
    struct libxc_rules xc;     /* the libxc records' rules */
    struct stream_item item;   /* built for the callback */
};

void stream_parser_init(struct stream_parser *p, enum stream_format format,
                        stream_item_fn *item_fn, void *data);
void stream_parser_set_page_fn(struct stream_parser *p, stream_page_fn *page_fn);
/* Frees the parser's buffer; the struct may be re-initialised afterwards. */
void stream_parser_destroy(struct stream_parser *p);

/* Consumes len bytes. Returns 0 or the first error (kept for later calls).
 * Bytes after the final END are an error. Never keeps a pointer to buf. */
int stream_parser_feed(struct stream_parser *p, const void *buf, size_t len,
                       struct ls_errbuf *e);
/* Declares EOF. Returns 0 if the stream ended validly (see stream_parser_end),
 * -ENODATA "truncated" otherwise, or the earlier error. */
int stream_parser_finish(struct stream_parser *p, struct ls_errbuf *e);
enum stream_end stream_parser_end(const struct stream_parser *p);
uint64_t stream_parser_offset(const struct stream_parser *p);   /* bytes consumed */

#endif
