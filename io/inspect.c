/* io/inspect.c - print a stream's records as text or JSON (see lockstep/inspect.h). */
#include "io/inspect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "io/byteorder.h"
#include "io/record_body.h"
#include "io/records.h"
#include "io/stream_parser.h"

#define INSPECT_READ_CHUNK (1u << 20)

struct inspect_totals {
    uint64_t libxl_records[LIBXL_REC_TYPE_COUNT];
    uint64_t libxc_records[LIBXC_REC_TYPE_COUNT];
    uint64_t pages_by_type[16];
    uint64_t records;
};

struct inspect {
    FILE *out;
    yajl_gen g;                 /* NULL for text output */
    struct inspect_totals t;
};

/* ---- JSON helpers ------------------------------------------------------ */

static void js(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void js_kv_str(yajl_gen g, const char *k, const char *v)
{
    js(g, k);
    js(g, v);
}

static void js_kv_u64(yajl_gen g, const char *k, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, v);

    js(g, k);
    yajl_gen_number(g, num, (size_t)n);    /* exact, even above 2^53 */
}

static void json_print(void *ctx, const char *s, size_t len)
{
    fwrite(s, 1, len, (FILE *)ctx);
}

/* ---- per-item field printers: text and JSON side by side ---------------- */

static void field_u64(struct inspect *in, const char *k, uint64_t v)
{
    if (in->g)
        js_kv_u64(in->g, k, v);
    else
        fprintf(in->out, " %s=%" PRIu64, k, v);
}

static void field_hex(struct inspect *in, const char *k, uint64_t v)
{
    if (in->g)
        js_kv_u64(in->g, k, v);
    else
        fprintf(in->out, " %s=0x%" PRIx64, k, v);
}

static void field_str(struct inspect *in, const char *k, const char *v)
{
    if (in->g)
        js_kv_str(in->g, k, v);
    else
        fprintf(in->out, " %s=%s", k, v);
}

static void print_headers(struct inspect *in, const struct stream_item *it)
{
    switch (it->type) {
    case STREAM_HDR_XL:
        field_hex(in, "mandatory_flags", it->xl.mandatory_flags);
        field_hex(in, "optional_flags", it->xl.optional_flags);
        field_u64(in, "optional_data_len", it->xl.optional_data_len);
        field_u64(in, "config_len", it->xl_config_len);
        if (in->g && it->xl_config)
            js_kv_str(in->g, "config", it->xl_config);
        break;
    case STREAM_HDR_LIBXL:
        field_u64(in, "version", LIBXL_VERSION);
        field_hex(in, "options", it->libxl_options);
        if (it->libxl_options & LIBXL_OPT_LEGACY)
            field_str(in, "legacy", "converted from a legacy stream");
        break;
    case STREAM_HDR_LIBXC_IMAGE:
        field_u64(in, "version", it->libxc_version);
        break;
    default:
        field_str(in, "domain_type",
                  it->dhdr.type == LIBXC_DHDR_TYPE_X86_HVM ? "x86 HVM" : "x86 PV");
        field_u64(in, "page_shift", it->dhdr.page_shift);
        field_u64(in, "xen_major", it->dhdr.xen_major);
        field_u64(in, "xen_minor", it->dhdr.xen_minor);
        break;
    }
}

static void print_page_data(struct inspect *in, const struct stream_item *it)
{
    field_u64(in, "count", it->page_count);
    field_u64(in, "data_pages", it->data_pages);
    if (in->g) {
        js(in->g, "pages_by_type");
        yajl_gen_map_open(in->g);
    }
    for (unsigned t = 0; t < 16; t++) {
        if (!it->pages_by_type[t])
            continue;
        if (in->g)
            js_kv_u64(in->g, libxc_page_type_name(t), it->pages_by_type[t]);
        else
            fprintf(in->out, " %s:%u", libxc_page_type_name(t), it->pages_by_type[t]);
        in->t.pages_by_type[t] += it->pages_by_type[t];
    }
    if (in->g)
        yajl_gen_map_close(in->g);
}

static void print_hvm_params(struct inspect *in, const struct stream_item *it)
{
    uint32_t count = get_le32(it->body);

    field_u64(in, "count", count);
    if (in->g) {
        js(in->g, "params");
        yajl_gen_array_open(in->g);
    }
    for (uint32_t i = 0; i < count; i++) {
        struct libxc_hvm_param prm;

        libxc_hvm_param_at(it->body, i, &prm);
        if (in->g) {
            yajl_gen_map_open(in->g);
            js_kv_u64(in->g, "index", prm.index);
            js_kv_u64(in->g, "value", prm.value);
            yajl_gen_map_close(in->g);
        } else {
            fprintf(in->out, " [%" PRIu64 "]=0x%" PRIx64, prm.index, prm.value);
        }
    }
    if (in->g)
        yajl_gen_array_close(in->g);
}

static void print_vcpu(struct inspect *in, const struct stream_item *it)
{
    struct libxc_x86_pv_vcpu_hdr h;

    libxc_vcpu_hdr_decode(it->body, &h);
    field_u64(in, "vcpu_id", h.vcpu_id);
    field_u64(in, "context_bytes", it->length - 8);
}

static void print_libxc_record(struct inspect *in, const struct stream_item *it)
{
    struct libxc_x86_pv_info pv;
    struct libxc_x86_pv_p2m_frames f;
    struct libxc_x86_tsc_info tsc;

    switch (it->type) {
    case LIBXC_REC_PAGE_DATA:
        print_page_data(in, it);
        break;
    case LIBXC_REC_X86_PV_INFO:
        libxc_pv_info_decode(it->body, &pv);
        field_u64(in, "guest_width", pv.guest_width);
        field_u64(in, "pt_levels", pv.pt_levels);
        break;
    case LIBXC_REC_X86_PV_P2M_FRAMES:
        libxc_p2m_frames_hdr_decode(it->body, &f);
        field_hex(in, "start_pfn", f.start_pfn);
        field_hex(in, "end_pfn", f.end_pfn);
        field_u64(in, "frames", (it->length - 8) / 8);
        break;
    case LIBXC_REC_X86_PV_VCPU_BASIC:
    case LIBXC_REC_X86_PV_VCPU_EXTENDED:
    case LIBXC_REC_X86_PV_VCPU_XSAVE:
    case LIBXC_REC_X86_PV_VCPU_MSRS:
        print_vcpu(in, it);
        break;
    case LIBXC_REC_X86_TSC_INFO:
        libxc_tsc_info_decode(it->body, &tsc);
        field_u64(in, "mode", tsc.mode);
        field_u64(in, "khz", tsc.khz);
        field_u64(in, "nsec", tsc.nsec);
        field_u64(in, "incarnation", tsc.incarnation);
        break;
    case LIBXC_REC_HVM_PARAMS:
        print_hvm_params(in, it);
        break;
    case LIBXC_REC_X86_CPUID_POLICY:
        field_u64(in, "leaves", it->length / sizeof(struct libxc_cpuid_leaf));
        break;
    case LIBXC_REC_X86_MSR_POLICY:
        field_u64(in, "msrs", it->length / sizeof(struct libxc_msr_entry));
        break;
    case LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST:
        field_u64(in, "pfns", it->length / 8);
        break;
    default:
        break;
    }
    if (it->static_data_done) {
        field_str(in, "static_data_end", it->type == LIBXC_REC_STATIC_DATA_END ? "here"
                                                                                : "inferred (v2)");
        field_hex(in, "static_data_missing", it->sdd_missing);
    }
}

static void print_xenstore_pairs(struct inspect *in, const struct stream_item *it)
{
    const char *key, *val;
    uint32_t pos = 0;

    if (in->g) {
        js(in->g, "xenstore");
        yajl_gen_map_open(in->g);
    }
    while (libxl_xenstore_data_next(it->body, it->length, &pos, &key, &val)) {
        if (in->g)
            js_kv_str(in->g, key, val);
        else
            fprintf(in->out, " %s=%s", key, val);
    }
    if (in->g)
        yajl_gen_map_close(in->g);
}

static const char *emulator_name(uint32_t id)
{
    static const char *const names[] = { "unknown", "qemu-traditional", "qemu-upstream" };
    return id < 3 ? names[id] : "invalid";
}

static void print_libxl_record(struct inspect *in, const struct stream_item *it)
{
    struct libxl_emulator_hdr h;

    switch (it->type) {
    case LIBXL_REC_EMULATOR_XENSTORE_DATA:
    case LIBXL_REC_EMULATOR_CONTEXT:
        libxl_emulator_hdr_decode(it->body, &h);
        field_str(in, "emulator", emulator_name(h.id));
        field_u64(in, "index", h.index);
        if (it->type == LIBXL_REC_EMULATOR_XENSTORE_DATA)
            print_xenstore_pairs(in, it);
        else
            field_u64(in, "context_bytes", it->length - 8);
        break;
    case LIBXL_REC_CHECKPOINT_STATE:
        field_str(in, "state", libxl_checkpoint_state_name(libxl_checkpoint_state_id(it->body)));
        break;
    default:
        break;
    }
}

static const char *header_name(uint32_t kind)
{
    static const char *const names[] = { "xl header", "libxl header", "libxc image header",
                                         "libxc domain header" };
    return kind < 4 ? names[kind] : "header";
}

static const char *layer_str(enum stream_layer l)
{
    return l == STREAM_LAYER_XL ? "xl" : l == STREAM_LAYER_LIBXL ? "libxl" : "libxc";
}

static const char *item_name(const struct stream_item *it)
{
    if (it->is_header)
        return header_name(it->type);
    return it->layer == STREAM_LAYER_LIBXC ? libxc_rec_name(it->type) : libxl_rec_name(it->type);
}

static void item_open(struct inspect *in, const struct stream_item *it)
{
    if (!in->g) {
        if (it->is_header)
            fprintf(in->out, "%12" PRIu64 "  %-5s %-29s %10u ", it->offset,
                    layer_str(it->layer), header_name(it->type), it->length);
        else
            fprintf(in->out, "%12" PRIu64 "  %-5s %-22s (0x%02x) %10u ", it->offset,
                    layer_str(it->layer), item_name(it), it->type, it->length);
        return;
    }
    yajl_gen_map_open(in->g);
    js_kv_u64(in->g, "offset", it->offset);
    js_kv_str(in->g, "layer", layer_str(it->layer));
    js_kv_str(in->g, "kind", it->is_header ? "header" : "record");
    js_kv_str(in->g, "type", item_name(it));
    if (!it->is_header)
        js_kv_u64(in->g, "type_id", it->type);
    js_kv_u64(in->g, "length", it->length);
    if (it->checkpoint)
        js_kv_u64(in->g, "checkpoint", it->checkpoint);
}

static int inspect_item(void *data, const struct stream_item *it, struct ls_errbuf *e)
{
    struct inspect *in = data;

    item_open(in, it);
    if (it->is_header) {
        print_headers(in, it);
    } else if (it->layer == STREAM_LAYER_LIBXC) {
        print_libxc_record(in, it);
        in->t.libxc_records[it->type]++;
    } else {
        print_libxl_record(in, it);
        in->t.libxl_records[it->type]++;
    }
    in->t.records += !it->is_header;
    if (in->g)
        yajl_gen_map_close(in->g);
    else
        fputc('\n', in->out);
    return 0;
}

/* ---- summary ------------------------------------------------------------ */

static const char *end_name(enum stream_end end)
{
    return end == STREAM_END_COMPLETE ? "complete" :
           end == STREAM_END_CHECKPOINTED ? "checkpointed (EOF after a complete checkpoint)"
                                          : "invalid";
}

static void summary_counts(struct inspect *in, const char *title, const char *layer,
                           const uint64_t *counts, unsigned n, const char *(*name)(uint32_t))
{
    for (unsigned t = 0; t < n; t++) {
        char key[64];

        if (!counts[t])
            continue;
        snprintf(key, sizeof(key), "%s%s%s", layer, *layer ? " " : "", name(t));
        if (in->g)
            js_kv_u64(in->g, key, counts[t]);
        else
            fprintf(in->out, "  %-14s %-36s %" PRIu64 "\n", title, key, counts[t]);
    }
}

static const char *page_type_name32(uint32_t t)
{
    return libxc_page_type_name(t);
}

static void print_summary(struct inspect *in, const struct stream_parser *p,
                          const struct ls_errbuf *err)
{
    enum stream_end end = stream_parser_end(p);

    if (in->g) {
        js(in->g, "summary");
        yajl_gen_map_open(in->g);
        js_kv_u64(in->g, "records", in->t.records);
        js_kv_u64(in->g, "bytes", stream_parser_offset(p));
        js_kv_u64(in->g, "checkpoints", p->checkpoints);
        js_kv_str(in->g, "end", end_name(end));
        js(in->g, "records_by_type");
        yajl_gen_map_open(in->g);
    } else {
        fprintf(in->out, "summary: %" PRIu64 " records, %" PRIu64 " bytes, %u checkpoints, "
                "end: %s\n", in->t.records, stream_parser_offset(p), p->checkpoints,
                end_name(end));
    }
    summary_counts(in, "records", "libxl", in->t.libxl_records, LIBXL_REC_TYPE_COUNT,
                   libxl_rec_name);
    summary_counts(in, "records", "libxc", in->t.libxc_records, LIBXC_REC_TYPE_COUNT,
                   libxc_rec_name);
    if (in->g) {
        yajl_gen_map_close(in->g);
        js(in->g, "pages_by_type");
        yajl_gen_map_open(in->g);
    }
    summary_counts(in, "pages", "", in->t.pages_by_type, 16, page_type_name32);
    if (in->g) {
        yajl_gen_map_close(in->g);
        yajl_gen_map_close(in->g);
        if (err->rc)
            js_kv_str(in->g, "error", err->msg);
    } else if (err->rc) {
        fprintf(in->out, "error: %s\n", err->msg);
    }
}

/* ---- driver ------------------------------------------------------------- */

static int read_some(int fd, uint8_t *buf, size_t len, ssize_t *got, struct ls_errbuf *e,
                     uint64_t offset)
{
    do {
        *got = read(fd, buf, len);
    } while (*got < 0 && errno == EINTR);
    if (*got < 0)
        return ls_err(e, -errno, "offset %" PRIu64 ": read failed: %s", offset, strerror(errno));
    return 0;
}

/* ---- the COLO back channel ------------------------------------------------ */

/* The secondary's side of a COLO pair (spec 1.5): xl's banner, then bare
 * records with no headers, strictly SVM_READY, SVM_RESUMED, then per later
 * checkpoint SVM_SUSPENDED, CHECKPOINT_DIRTY_PFN_LIST, SVM_READY,
 * SVM_RESUMED. Each record is checked, and its place in that order. */
#define BACK_BANNER "xl migration receiver ready, send binary domain data.\n"

struct back_channel {
    uint8_t *buf;
    size_t len, at;            /* bytes held, bytes decoded */
    uint64_t base;             /* stream offset of buf[0] */
    unsigned step, acks, records;
};

/* The record expected at step (0: READY, 1: RESUMED, 2: SUSPENDED, 3: the list). */
static bool back_step_ok(unsigned step, uint32_t type, uint32_t id)
{
    static const uint32_t want[3] = { LIBXL_CHECKPOINT_SVM_READY, LIBXL_CHECKPOINT_SVM_RESUMED,
                                      LIBXL_CHECKPOINT_SVM_SUSPENDED };
    if (step == 3)
        return type == LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST;
    return type == LIBXL_REC_CHECKPOINT_STATE && id == want[step];
}

static const char *back_step_name(unsigned step)
{
    static const char *const n[4] = { "CHECKPOINT_STATE(SVM_READY)",
                                      "CHECKPOINT_STATE(SVM_RESUMED)",
                                      "CHECKPOINT_STATE(SVM_SUSPENDED)",
                                      "CHECKPOINT_DIRTY_PFN_LIST" };
    return n[step];
}

/* Decode the whole records in bc->buf; leaves a partial one for more input. */
static int back_decode(struct inspect *in, struct back_channel *bc, struct ls_errbuf *e)
{
    while (bc->len - bc->at >= 8) {
        uint64_t off = bc->base + bc->at;
        uint32_t type, len;
        stream_rec_header_decode(bc->buf + bc->at, &type, &len);
        if (len > LIBXC_REC_LENGTH_MAX)
            return ls_err(e, -E2BIG, "offset %" PRIu64 ": back-channel record 0x%x of %u bytes "
                          "is over the limit", off, type, len);
        size_t padded = STREAM_ROUNDUP8(len);
        if (bc->len - bc->at < 8 + padded)
            return 0;
        const uint8_t *body = bc->buf + bc->at + 8;
        bool libxl = type == LIBXL_REC_CHECKPOINT_STATE;
        int rc = libxl ? libxl_record_check(type, body, len, -1, off, e)
                       : libxc_record_check(3, type, body, len, len, off, e);
        if (rc < 0)
            return rc;
        if (!stream_pad_ok(body + len, (uint32_t)(padded - len)))
            return ls_err(e, -EINVAL, "offset %" PRIu64 ": back-channel record: non-zero padding",
                          off);
        uint32_t id = libxl && len >= 4 ? libxl_checkpoint_state_id(body) : 0;
        if (!back_step_ok(bc->step, type, id))
            return ls_err(e, -EPROTO, "offset %" PRIu64 ": back channel: %s record %s (0x%x)%s%s "
                          "where %s was due", off, libxl ? "libxl" : "libxc",
                          libxl ? libxl_rec_name(type) : libxc_rec_name(type), type,
                          libxl ? " " : "", libxl ? libxl_checkpoint_state_name(id) : "",
                          back_step_name(bc->step));
        struct stream_item it = { .offset = off, .layer = libxl ? STREAM_LAYER_LIBXL
                                                                : STREAM_LAYER_LIBXC,
                                  .type = type, .length = len, .body = body, .body_len = len,
                                  .checkpoint = bc->acks };
        item_open(in, &it);
        if (libxl)
            print_libxl_record(in, &it);
        else
            field_u64(in, "pfns", len / 8);
        if (in->g)
            yajl_gen_map_close(in->g);
        else
            fputc('\n', in->out);
        bc->acks += bc->step == 1;
        bc->step = (bc->step + 1) % 4;
        bc->records++;
        bc->at += 8 + padded;
    }
    return 0;
}

static int inspect_back_channel(struct inspect *in, int fd, uint8_t *buf, size_t len,
                                struct ls_errbuf *e)
{
    struct back_channel bc = { .buf = buf, .len = len, .base = 0 };
    int rc = 0;
    if (len < sizeof(BACK_BANNER) - 1)
        rc = ls_err(e, -ENODATA, "offset %zu: back channel: stream truncated in xl's banner", len);
    else if (memcmp(buf, BACK_BANNER, sizeof(BACK_BANNER) - 1) != 0)
        rc = ls_err(e, -EINVAL, "offset 0: back channel: not xl's receiver banner");
    if (rc == 0) {
        if (in->g) {
            yajl_gen_map_open(in->g);
            js_kv_u64(in->g, "offset", 0);
            js_kv_str(in->g, "layer", "xl");
            js_kv_str(in->g, "kind", "banner");
            yajl_gen_map_close(in->g);
        } else {
            fprintf(in->out, "%12u  %-5s %-29s %10zu \n", 0u, "xl", "receiver banner",
                    sizeof(BACK_BANNER) - 1);
        }
        bc.at = sizeof(BACK_BANNER) - 1;
    }
    while (rc == 0) {
        if ((rc = back_decode(in, &bc, e)) < 0)
            break;
        /* Keep the undecoded tail at the front, read more behind it. */
        memmove(bc.buf, bc.buf + bc.at, bc.len - bc.at);
        bc.base += bc.at;
        bc.len -= bc.at;
        bc.at = 0;
        ssize_t got;
        if ((rc = read_some(fd, bc.buf + bc.len, INSPECT_READ_CHUNK - bc.len, &got, e,
                            bc.base + bc.len)) < 0)
            break;
        if (got == 0) {
            if (bc.len)
                rc = ls_err(e, -ENODATA, "offset %" PRIu64 ": back channel: stream truncated "
                            "inside a record (%zu bytes)", bc.base, bc.len);
            break;
        }
        bc.len += (size_t)got;
    }
    uint64_t bytes = bc.base + bc.len;
    if (in->g) {
        yajl_gen_array_close(in->g);
        js_kv_str(in->g, "format", "colo back channel");
        js_kv_u64(in->g, "bytes", bytes);
        js_kv_u64(in->g, "checkpoints_acknowledged", bc.acks);
        if (e->rc)
            js_kv_str(in->g, "error", e->msg);
    } else {
        fprintf(in->out, "summary: COLO back channel: %u records, %" PRIu64 " bytes, %u "
                "checkpoints acknowledged, end: %s\n", bc.records, bytes, bc.acks,
                e->rc ? "invalid" : "after a whole record");
        if (e->rc)
            fprintf(in->out, "error: %s\n", e->msg);
    }
    return rc;
}

/* Up to len bytes from the start of fd (fewer only at EOF). */
static int io_read_prefix(int fd, uint8_t *buf, size_t len, size_t *have, struct ls_errbuf *e)
{
    *have = 0;
    while (*have < len) {
        ssize_t got;
        int rc = read_some(fd, buf + *have, len - *have, &got, e, *have);
        if (rc < 0)
            return rc;
        if (got == 0)
            break;
        *have += (size_t)got;
    }
    return 0;
}

static int inspect_stream(int fd, struct stream_parser *p, struct ls_errbuf *e)
{
    uint8_t *buf = malloc(INSPECT_READ_CHUNK);
    ssize_t got;
    int rc = 0;

    if (!buf)
        return ls_err(e, -ENOMEM, "out of memory for the read buffer");
    for (;;) {
        if ((rc = read_some(fd, buf, INSPECT_READ_CHUNK, &got, e, stream_parser_offset(p))))
            break;
        if (got == 0) {
            rc = stream_parser_finish(p, e);
            break;
        }
        if ((rc = stream_parser_feed(p, buf, (size_t)got, e)))
            break;
    }
    free(buf);
    return rc;
}

static void json_begin(struct inspect *in)
{
    yajl_gen_config(in->g, yajl_gen_beautify, 1);
    yajl_gen_config(in->g, yajl_gen_print_callback, json_print, (void *)in->out);
    yajl_gen_map_open(in->g);
    js(in->g, "records");
    yajl_gen_array_open(in->g);
}

int stream_inspect(int fd, FILE *out, bool json, struct ls_errbuf *e)
{
    struct inspect in = { .out = out };
    struct ls_errbuf local = { 0 };
    struct stream_parser p;
    int rc;

    if (json) {
        in.g = yajl_gen_alloc(NULL);
        if (!in.g)
            return ls_err(e, -ENOMEM, "out of memory for the JSON generator");
        json_begin(&in);
    } else {
        fprintf(out, "%12s  %-5s %-29s %10s  fields\n", "offset", "layer", "type", "length");
    }
    /* A COLO back channel starts with xl's banner, not a stream header. */
    uint8_t *first = malloc(INSPECT_READ_CHUNK);
    size_t have = 0;
    if (!first)
        rc = ls_err(&local, -ENOMEM, "out of memory for the read buffer");
    else
        rc = io_read_prefix(fd, first, sizeof(BACK_BANNER) - 1, &have, &local);
    if (rc == 0 && have >= 8 && memcmp(first, BACK_BANNER, 8) == 0) {
        rc = inspect_back_channel(&in, fd, first, have, &local);
        free(first);
        if (in.g) {
            yajl_gen_map_close(in.g);
            fputc('\n', out);
            yajl_gen_free(in.g);
        }
        fflush(out);
        ls_err_copy(e, &local);
        return rc;
    }
    stream_parser_init(&p, STREAM_FORMAT_AUTO, inspect_item, &in);
    if (rc == 0 && have)
        rc = stream_parser_feed(&p, first, have, &local);
    free(first);
    if (rc == 0)
        rc = inspect_stream(fd, &p, &local);
    if (in.g)
        yajl_gen_array_close(in.g);
    print_summary(&in, &p, &local);
    if (in.g) {
        yajl_gen_map_close(in.g);
        fputc('\n', out);
        yajl_gen_free(in.g);
    }
    stream_parser_destroy(&p);
    fflush(out);
    ls_err_copy(e, &local);
    return rc;
}
