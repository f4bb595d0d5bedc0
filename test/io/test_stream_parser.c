/* test/io/test_stream_parser.c - the push parser on valid, truncated, chunked
 * and deliberately broken streams. Every rejection must name the byte offset
 * of the offending header or record and the rule. */
#include <errno.h>
#include <inttypes.h>
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
#include "io/stream_parser.h"
#include "sample_streams.h"

/* ---- collecting what the parser reports ------------------------------- */

struct seen {
    uint64_t offset;
    int layer;
    bool is_header;
    uint32_t type, length, body_len, page_count, data_pages;
    unsigned checkpoint;
    uint64_t body_sum;
};

struct collect {
    struct seen *v;
    size_t n, cap;
    uint64_t page_bytes, page_sum;
};

static uint64_t checksum(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(1099511628211);
    return h;
}

static int collect_item(void *data, const struct stream_item *it, struct ls_errbuf *e)
{
    struct collect *c = data;

    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        assert_non_null(c->v);
    }
    c->v[c->n++] = (struct seen){ it->offset, it->layer, it->is_header, it->type, it->length,
                                  it->body_len, it->page_count, it->data_pages, it->checkpoint,
                                  checksum(it->body, it->body_len, 14695981039346656037u) };
    return 0;
}

static int collect_pages(void *data, uint64_t offset, const uint8_t *bytes, size_t len,
                         struct ls_errbuf *e)
{
    struct collect *c = data;

    c->page_bytes += len;
    c->page_sum = checksum(bytes, len, c->page_sum);
    return 0;
}

/* Parses buf in chunks of `chunk` bytes; returns the parser's result. */
static int parse(const uint8_t *buf, size_t len, size_t chunk, struct collect *c,
                 struct ls_errbuf *e, enum stream_end *end)
{
    struct stream_parser p;
    int rc = 0;

    stream_parser_init(&p, STREAM_FORMAT_AUTO, collect_item, c);
    stream_parser_set_page_fn(&p, collect_pages);
    for (size_t off = 0; off < len && !rc; off += chunk)
        rc = stream_parser_feed(&p, buf + off, len - off < chunk ? len - off : chunk, e);
    if (!rc)
        rc = stream_parser_finish(&p, e);
    if (end)
        *end = stream_parser_end(&p);
    stream_parser_destroy(&p);
    return rc;
}

static void collect_free(struct collect *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}

typedef void sample_fn(struct stream_buf *b);

static void sample_colo3(struct stream_buf *b) { sample_xl_checkpointed(b, 3, true); }
static void sample_remus2(struct stream_buf *b) { sample_xl_checkpointed(b, 2, false); }

static sample_fn *const samples[] = { sample_xl_hvm, sample_xl_pv, sample_colo3, sample_remus2 };

/* ---- valid streams ----------------------------------------------------- */

static void test_valid_streams_parse(void **state)
{
    static const enum stream_end ends[] = { STREAM_END_COMPLETE, STREAM_END_COMPLETE,
                                            STREAM_END_CHECKPOINTED, STREAM_END_CHECKPOINTED };
    for (size_t s = 0; s < 4; s++) {
        struct stream_buf b;
        struct collect c = { 0 };
        struct ls_errbuf e = { 0 };
        enum stream_end end;

        stream_buf_init(&b);
        samples[s](&b);
        assert_int_equal(b.rc, 0);
        if (parse(b.data, b.len, b.len, &c, &e, &end))
            fail_msg("sample %zu: %s", s, e.msg);
        assert_int_equal(end, ends[s]);
        assert_true(c.v[0].is_header && c.v[0].layer == STREAM_LAYER_XL);
        assert_true(c.v[1].is_header && c.v[1].type == STREAM_HDR_LIBXL);
        assert_true(c.v[3].is_header && c.v[3].type == STREAM_HDR_LIBXC_IMAGE);
        assert_true(c.v[4].is_header && c.v[4].type == STREAM_HDR_LIBXC_DOMAIN);
        for (size_t i = 1; i < c.n; i++)
            assert_true(c.v[i].offset > c.v[i - 1].offset);
        collect_free(&c);
        stream_buf_release(&b);
    }
}

static void test_checkpointed_layers(void **state)
{
    struct stream_buf b;
    struct collect c = { 0 };
    struct ls_errbuf e = { 0 };
    unsigned states = 0, ends = 0, batches_after = 0;

    stream_buf_init(&b);
    sample_xl_checkpointed(&b, 3, true);
    assert_int_equal(parse(b.data, b.len, 4096, &c, &e, NULL), 0);
    for (size_t i = 0; i < c.n; i++) {
        if (c.v[i].layer == STREAM_LAYER_LIBXL && c.v[i].type == LIBXL_REC_CHECKPOINT_STATE)
            states++;
        if (c.v[i].layer == STREAM_LAYER_LIBXL && c.v[i].type == LIBXL_REC_CHECKPOINT_END)
            ends++;
        if (c.v[i].layer == STREAM_LAYER_LIBXC && c.v[i].type == LIBXC_REC_PAGE_DATA &&
            c.v[i].checkpoint > 0)
            batches_after++;
    }
    assert_int_equal(states, 3);
    assert_int_equal(ends, 3);
    assert_int_equal(batches_after, 2);
    collect_free(&c);
    stream_buf_release(&b);
}

static void test_formats_detected(void **state)
{
    struct stream_buf b, x;
    struct collect c = { 0 };
    struct ls_errbuf e = { 0 };
    enum stream_end end;
    size_t libxl_at;

    stream_buf_init(&b);
    sample_xl_hvm(&b);
    libxl_at = 48 + b.data[44] + (b.data[45] << 8);       /* skip xl header */
    assert_int_equal(parse(b.data + libxl_at, b.len - libxl_at, 100, &c, &e, &end), 0);
    assert_true(c.v[0].is_header && c.v[0].type == STREAM_HDR_LIBXL && c.v[0].offset == 0);
    collect_free(&c);
    /* bare libxc: the nested stream alone */
    stream_buf_init(&x);
    sample_hvm_static(&x);
    sample_hvm_memory(&x, 0);
    sample_hvm_tail(&x);
    stream_put_record(&x, LIBXC_REC_END, NULL, 0);
    if (parse(x.data, x.len, 3, &c, &e, &end))
        fail_msg("%s", e.msg);
    assert_int_equal(end, STREAM_END_COMPLETE);
    assert_true(c.v[0].layer == STREAM_LAYER_LIBXC && c.v[0].type == STREAM_HDR_LIBXC_IMAGE);
    collect_free(&c);
    stream_buf_release(&x);
    stream_buf_release(&b);
}

static void test_v2_stream_accepted(void **state)
{
    struct stream_buf b;
    struct collect c = { 0 };
    struct ls_errbuf e = { 0 };
    static const uint64_t frames[1] = { 3 };
    size_t ihdr;

    stream_buf_init(&b);
    sample_outer_headers(&b);
    ihdr = b.len;
    stream_put_libxc_headers(&b, LIBXC_DHDR_TYPE_X86_PV, 4, 13);
    b.data[ihdr + 15] = 2;                                  /* image version 2 */
    stream_put_pv_info(&b, 8, 4);
    stream_put_p2m_frames(&b, 0, 15, frames, 1);
    sample_pv_memory(&b);
    sample_pv_tail(&b);
    stream_put_record(&b, LIBXC_REC_END, NULL, 0);
    stream_put_record(&b, LIBXL_REC_END, NULL, 0);
    if (parse(b.data, b.len, b.len, &c, &e, NULL))
        fail_msg("%s", e.msg);
    collect_free(&c);
    struct stream_parser p;
    stream_parser_init(&p, STREAM_FORMAT_XL, NULL, NULL);
    assert_int_equal(stream_parser_feed(&p, b.data, b.len, &e), 0);
    assert_int_equal(stream_parser_finish(&p, &e), 0);
    assert_int_equal(stream_parser_end(&p), STREAM_END_COMPLETE);
    stream_parser_destroy(&p);
    stream_buf_release(&b);
}

static int find_sdd(void *data, const struct stream_item *it, struct ls_errbuf *e)
{
    if (it->static_data_done)
        *(uint32_t *)data = it->type | (it->sdd_missing << 8);
    return 0;
}

static void test_static_data_done_reported(void **state)
{
    struct stream_buf b;
    struct stream_parser p;
    struct ls_errbuf e = { 0 };
    uint32_t at = UINT32_MAX;

    stream_buf_init(&b);
    sample_xl_hvm(&b);
    stream_parser_init(&p, STREAM_FORMAT_AUTO, find_sdd, &at);
    assert_int_equal(stream_parser_feed(&p, b.data, b.len, &e), 0);
    assert_int_equal(stream_parser_finish(&p, &e), 0);
    assert_int_equal(at, LIBXC_REC_STATIC_DATA_END);       /* both policies present */
    stream_parser_destroy(&p);
    stream_buf_release(&b);
}

/* ---- (d) byte-at-a-time equals whole ------------------------------------- */

static void test_one_byte_feeding_matches_whole(void **state)
{
    for (size_t s = 0; s < 4; s++) {
        struct stream_buf b;
        struct collect whole = { 0 }, bytes = { 0 };
        struct ls_errbuf e = { 0 };

        stream_buf_init(&b);
        samples[s](&b);
        assert_int_equal(parse(b.data, b.len, b.len, &whole, &e, NULL), 0);
        assert_int_equal(parse(b.data, b.len, 1, &bytes, &e, NULL), 0);
        assert_int_equal(whole.n, bytes.n);
        assert_memory_equal(whole.v, bytes.v, whole.n * sizeof(*whole.v));
        assert_true(whole.page_bytes == bytes.page_bytes && whole.page_sum == bytes.page_sum);
        assert_true(whole.page_bytes > 0 && whole.page_bytes % STREAM_PAGE_SIZE == 0);
        collect_free(&whole);
        collect_free(&bytes);
        stream_buf_release(&b);
    }
}

/* ---- (c) truncation ----------------------------------------------------- */

/* Is EOF at `cut` a clean end of a checkpointed stream? (right after
 * CHECKPOINT_END or CHECKPOINT_STATE) */
static bool clean_cut(const struct collect *c, uint64_t cut)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct seen *s = &c->v[i];
        uint64_t end = s->offset + 8 + STREAM_ROUNDUP8(s->length);

        if (!s->is_header && s->layer == STREAM_LAYER_LIBXL && end == cut &&
            (s->type == LIBXL_REC_CHECKPOINT_END || s->type == LIBXL_REC_CHECKPOINT_STATE))
            return true;
    }
    return false;
}

static void expect_truncated(const uint8_t *buf, uint64_t cut, const struct collect *full,
                             size_t chunk)
{
    struct collect c = { 0 };
    struct ls_errbuf e = { 0 };
    enum stream_end end;
    char off[40];
    int rc = parse(buf, (size_t)cut, chunk, &c, &e, &end);

    if (clean_cut(full, cut)) {
        if (rc || end != STREAM_END_CHECKPOINTED)
            fail_msg("cut %" PRIu64 " should end a checkpointed stream cleanly: %s", cut, e.msg);
    } else {
        snprintf(off, sizeof(off), "offset %" PRIu64 ": ", cut);
        if (rc != -ENODATA || !strstr(e.msg, "truncated") || !strstr(e.msg, off))
            fail_msg("cut %" PRIu64 ": rc %d \"%s\"", cut, rc, e.msg);
        assert_int_equal(end, STREAM_END_NONE);
    }
    collect_free(&c);
}

static void test_truncation_everywhere(void **state)
{
    unsigned clean = 0;

    for (size_t s = 0; s < 4; s++) {
        struct stream_buf b;
        struct collect full = { 0 };
        struct ls_errbuf e = { 0 };

        stream_buf_init(&b);
        samples[s](&b);
        assert_int_equal(parse(b.data, b.len, b.len, &full, &e, NULL), 0);
        for (size_t i = 0; i < full.n; i++) {
            uint64_t start = full.v[i].offset;
            uint64_t next = i + 1 < full.n ? full.v[i + 1].offset : b.len;
            const uint64_t cuts[] = { start, start + 1, start + 4, start + 7, start + 9,
                                      start + 17, (start + next) / 2, next - 1 };
            for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
                if (cuts[k] >= next && !(k == 0))
                    continue;
                expect_truncated(b.data, cuts[k], &full, k % 2 ? 5 : 4096);
                clean += clean_cut(&full, cuts[k]);
            }
        }
        collect_free(&full);
        stream_buf_release(&b);
    }
    assert_true(clean >= 4);       /* the clean checkpoint ends were exercised */
}

static void test_empty_input_truncated(void **state)
{
    struct ls_errbuf e = { 0 };
    struct stream_parser p;

    stream_parser_init(&p, STREAM_FORMAT_AUTO, NULL, NULL);
    assert_int_equal(stream_parser_finish(&p, &e), -ENODATA);
    assert_non_null(strstr(e.msg, "offset 0: stream truncated"));
    stream_parser_destroy(&p);
}

/* ---- bounded memory ------------------------------------------------------ */

static void test_page_data_not_buffered(void **state)
{
    uint64_t words[LIBXC_MAX_BATCH_SIZE];
    uint8_t *pages = calloc(LIBXC_MAX_BATCH_SIZE, STREAM_PAGE_SIZE);
    struct stream_buf b;
    struct stream_parser p;
    struct ls_errbuf e = { 0 };

    assert_non_null(pages);
    stream_buf_init(&b);
    sample_outer_headers(&b);
    sample_hvm_static(&b);
    for (unsigned i = 0; i < LIBXC_MAX_BATCH_SIZE; i++)
        words[i] = libxc_pfn_word(i, LIBXC_PAGE_NOTAB);
    for (int r = 0; r < 3; r++)
        stream_put_page_data(&b, words, LIBXC_MAX_BATCH_SIZE, pages);
    sample_hvm_tail(&b);
    stream_put_record(&b, LIBXC_REC_END, NULL, 0);
    stream_put_record(&b, LIBXL_REC_END, NULL, 0);
    free(pages);
    stream_parser_init(&p, STREAM_FORMAT_AUTO, NULL, NULL);
    for (size_t off = 0; off < b.len; off += 65536)
        assert_int_equal(stream_parser_feed(&p, b.data + off,
                                            b.len - off < 65536 ? b.len - off : 65536, &e), 0);
    assert_int_equal(stream_parser_finish(&p, &e), 0);
    /* 12 MiB of pages went through; the buffer only ever held a pfn array
     * (8 KiB) or the largest other body (the 1 KiB HVM context). */
    assert_true(p.cap <= 8 + 8 * LIBXC_MAX_BATCH_SIZE);
    stream_parser_destroy(&p);
    stream_buf_release(&b);
}

/* ---- (b) rejections ------------------------------------------------------ */

static void expect_reject(const struct stream_buf *b, uint64_t off, const char *keyword,
                          int line)
{
    struct ls_errbuf e1 = { 0 }, e2 = { 0 };
    struct collect c = { 0 };
    char want[40];
    int rc1, rc2;

    assert_int_equal(b->rc, 0);
    snprintf(want, sizeof(want), "offset %" PRIu64 ": ", off);
    rc1 = parse(b->data, b->len, b->len, &c, &e1, NULL);
    collect_free(&c);
    rc2 = parse(b->data, b->len, 3, &c, &e2, NULL);
    collect_free(&c);
    if (rc1 >= 0 || !strstr(e1.msg, want) || !strstr(e1.msg, keyword))
        fail_msg("line %d: expected \"%s...%s\", got rc %d \"%s\"", line, want, keyword, rc1,
                 e1.msg);
    if (rc2 != rc1 || strcmp(e1.msg, e2.msg))
        fail_msg("line %d: chunked parse differs: \"%s\"", line, e2.msg);
}

/* BAD(keyword, statements...): statements build a stream into `b` and set the
 * expected offset with MARK before the bad header or record. */
#define BAD(keyword, ...) do {                                   \
        struct stream_buf bb_; uint64_t off_ = UINT64_MAX;        \
        stream_buf_init(&bb_);                                    \
        { struct stream_buf *b = &bb_; __VA_ARGS__; }             \
        expect_reject(&bb_, off_, keyword, __LINE__);             \
        stream_buf_release(&bb_);                                 \
    } while (0)
#define MARK (off_ = b->len)

static const uint8_t zeros[8192];

static void hvm_prefix(struct stream_buf *b)
{
    sample_outer_headers(b);
    sample_hvm_static(b);
}

static void pv_prefix(struct stream_buf *b)
{
    sample_outer_headers(b);
    sample_pv_static(b);
}

static void xl_libxl_headers(struct stream_buf *b)
{
    stream_put_xl_header(b, "{}");
}

static void test_reject_headers(void **state)
{
    BAD("unknown stream format", MARK; stream_buf_append(b, "XXXXXXXXXXXXXXXX", 16));
    BAD("magic", sample_xl_hvm(b); b->data[20] = '?'; off_ = 0);
    BAD("unknown mandatory flags", sample_xl_hvm(b); b->data[36] |= 8; off_ = 36);
    BAD("legacy (v1)", sample_xl_hvm(b); b->data[36] &= (uint8_t)~2; off_ = 36);
    BAD("not native", sample_xl_hvm(b); put_be32(b->data + 32, XL_BYTEORDER); off_ = 32);
    BAD("config is not NUL-terminated", xl_libxl_headers(b); b->data[b->len - 1] = '}';
        off_ = 48; stream_put_libxl_header(b));
    BAD("ident", xl_libxl_headers(b); MARK; stream_put_libxl_header(b); b->data[off_ + 2] = 0);
    BAD("version 3", xl_libxl_headers(b); MARK; stream_put_libxl_header(b); b->data[off_ + 11] = 3);
    BAD("reserved option bits", xl_libxl_headers(b); MARK; stream_put_libxl_header(b);
        b->data[off_ + 14] = 1);
    BAD("big-endian", xl_libxl_headers(b); MARK; stream_put_libxl_header(b); b->data[off_ + 15] = 1);
    BAD("marker", sample_outer_headers(b); MARK; sample_hvm_static(b); b->data[off_ + 1] = 0);
    BAD("id 0x", sample_outer_headers(b); MARK; sample_hvm_static(b); b->data[off_ + 9] = 0);
    BAD("version 4", sample_outer_headers(b); MARK; sample_hvm_static(b); b->data[off_ + 15] = 4);
    BAD("reserved option bits", sample_outer_headers(b); MARK; sample_hvm_static(b);
        b->data[off_ + 16] = 0x80);
    BAD("big-endian", sample_outer_headers(b); MARK; sample_hvm_static(b); b->data[off_ + 17] = 1);
    BAD("reserved fields", sample_outer_headers(b); MARK; sample_hvm_static(b);
        b->data[off_ + 18] = 1);
    BAD("reserved fields", sample_outer_headers(b); MARK; sample_hvm_static(b);
        b->data[off_ + 23] = 1);
}

static void test_reject_domain_header(void **state)
{
    size_t d;
    BAD("type 3", sample_outer_headers(b); d = b->len + 24; sample_hvm_static(b);
        b->data[d] = 3; off_ = d);
    BAD("page_shift 13", sample_outer_headers(b); d = b->len + 24; sample_hvm_static(b);
        b->data[d + 4] = 13; off_ = d);
    BAD("reserved field", sample_outer_headers(b); d = b->len + 24; sample_hvm_static(b);
        b->data[d + 7] = 1; off_ = d);
}

static void test_reject_libxl_records(void **state)
{
    static const char bad_pairs[] = "key\0value\0k2";
    uint8_t emu[24] = { 2, 0, 0, 0, 0, 0, 0, 0 };

    BAD("unknown record type", xl_libxl_headers(b); stream_put_libxl_header(b); MARK;
        sample_put_raw(b, 6, NULL, 0, 0));
    BAD("optional bit set", xl_libxl_headers(b); stream_put_libxl_header(b); MARK;
        sample_put_raw(b, 0x80000001u, NULL, 0, 0));
    BAD("must be empty", xl_libxl_headers(b); stream_put_libxl_header(b); MARK;
        sample_put_raw(b, LIBXL_REC_LIBXC_CONTEXT, zeros, 8, 0));
    BAD("must be empty", sample_xl_hvm(b); b->len -= 8; MARK;
        sample_put_raw(b, LIBXL_REC_END, zeros, 4, 0));
    BAD("padding", sample_xl_hvm(b); b->len -= 8; MARK;
        sample_put_raw(b, LIBXL_REC_EMULATOR_CONTEXT, emu, 9, 0xee));
    BAD("8-byte emulator header", sample_xl_hvm(b); b->len -= 8; MARK;
        sample_put_raw(b, LIBXL_REC_EMULATOR_CONTEXT, emu, 6, 0));
    BAD("8-byte emulator header", sample_xl_hvm(b); b->len -= 8; MARK;
        sample_put_raw(b, LIBXL_REC_EMULATOR_XENSTORE_DATA, emu, 4, 0));
    emu[0] = 3;
    BAD("unknown emulator id 3", sample_xl_hvm(b); b->len -= 8; MARK;
        sample_put_raw(b, LIBXL_REC_EMULATOR_CONTEXT, emu, 16, 0));
    emu[0] = 2;
    BAD("not NUL-terminated", sample_xl_hvm(b); b->len -= 8; MARK;
        memcpy(emu + 8, "key\0val", 7); sample_put_raw(b, LIBXL_REC_EMULATOR_XENSTORE_DATA, emu, 15, 0));
    BAD("odd number", sample_xl_hvm(b); b->len -= 8; MARK;
        memcpy(emu + 8, bad_pairs, sizeof(bad_pairs));
        sample_put_raw(b, LIBXL_REC_EMULATOR_XENSTORE_DATA, emu, 8 + sizeof(bad_pairs), 0));
    BAD("4-byte control id", sample_xl_checkpointed(b, 1, false); MARK;
        sample_put_raw(b, LIBXL_REC_CHECKPOINT_STATE, NULL, 0, 0));
    BAD("must be empty", sample_xl_checkpointed(b, 1, false); b->len -= 8; MARK;
        sample_put_raw(b, LIBXL_REC_CHECKPOINT_END, zeros, 8, 0));
    BAD("unknown checkpoint state", sample_xl_checkpointed(b, 1, false); MARK;
        sample_put_raw(b, LIBXL_REC_CHECKPOINT_STATE, "\x09\0\0\0", 4, 0));
}

static void test_reject_libxl_order(void **state)
{
    BAD("before LIBXC_CONTEXT", xl_libxl_headers(b); stream_put_libxl_header(b); MARK;
        sample_emulator(b));
    BAD("no domain", xl_libxl_headers(b); stream_put_libxl_header(b); MARK;
        stream_put_record(b, LIBXL_REC_END, NULL, 0));
    BAD("outside a checkpoint", xl_libxl_headers(b); stream_put_libxl_header(b); MARK;
        stream_put_record(b, LIBXL_REC_CHECKPOINT_END, NULL, 0));
    BAD("only allowed for HVM", sample_xl_pv(b); b->len -= 8; MARK; sample_emulator(b));
    BAD("outside a checkpoint", sample_xl_hvm(b); b->len -= 8; MARK;
        stream_put_record(b, LIBXL_REC_CHECKPOINT_END, NULL, 0));
    BAD("outside a checkpoint", sample_xl_hvm(b); b->len -= 8; MARK;
        stream_put_checkpoint_state(b, 0));
    BAD("second LIBXC_CONTEXT", sample_xl_hvm(b); b->len -= 8; MARK;
        stream_put_record(b, LIBXL_REC_LIBXC_CONTEXT, NULL, 0));
    BAD("trailing", sample_xl_hvm(b); MARK; stream_buf_append(b, zeros, 1));
    BAD("trailing", sample_xl_hvm(b); MARK; stream_put_record(b, LIBXL_REC_END, NULL, 0));
    BAD("END inside a checkpoint", sample_xl_checkpointed(b, 1, false); b->len -= 8; MARK;
        stream_put_record(b, LIBXL_REC_END, NULL, 0));
    BAD("LIBXC_CONTEXT inside a checkpoint", sample_xl_checkpointed(b, 1, false); b->len -= 8;
        MARK; stream_put_record(b, LIBXL_REC_LIBXC_CONTEXT, NULL, 0));
    BAD("before CHECKPOINT_END", sample_xl_checkpointed(b, 1, false); b->len -= 8; MARK;
        stream_put_checkpoint_state(b, 0));
    BAD("back channel", sample_xl_checkpointed(b, 1, false); MARK;
        stream_put_checkpoint_state(b, LIBXL_CHECKPOINT_SVM_READY));
    /* the next batch after a checkpoint must be libxc records, with no new headers */
    BAD("unknown record type", sample_xl_checkpointed(b, 1, true); MARK;
        stream_put_libxc_headers(b, LIBXC_DHDR_TYPE_X86_HVM, 4, 17));
}

static void test_reject_libxc_records(void **state)
{
    uint8_t body[64] = { 0 };

    BAD("unknown record type", hvm_prefix(b); MARK; sample_put_raw(b, 0x13, NULL, 0, 0));
    BAD("optional bit set", hvm_prefix(b); MARK; sample_put_raw(b, 0x80000013u, NULL, 0, 0));
    BAD("exceeds", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_CONTEXT, NULL, 0, 0);
        put_le32(b->data + off_ + 4, LIBXC_REC_LENGTH_MAX + 1));
    BAD("padding", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_CONTEXT, body, 3, 1));
    BAD("must be empty", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_END, body, 8, 0));
    BAD("must be empty", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_VERIFY, body, 1, 0));
    BAD("must be empty", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_CHECKPOINT, body, 8, 0));
    BAD("must be empty", sample_outer_headers(b); stream_put_libxc_headers(b, 2, 4, 17); MARK;
        sample_put_raw(b, LIBXC_REC_STATIC_DATA_END, body, 8, 0));
    BAD("shorter than the 8-byte header", hvm_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_HVM_PARAMS, body, 4, 0));
    body[4] = 1;
    BAD("reserved field", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_PARAMS, body, 8, 0));
    body[4] = 0; body[0] = 1;
    BAD("8 + 16*1", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_PARAMS, body, 8, 0));
    body[0] = 0;
    BAD("empty HVM context", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_HVM_CONTEXT, NULL, 0, 0));
    BAD("24 bytes", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_TSC_INFO, body, 16, 0));
    body[20] = 1;
    BAD("reserved", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_TSC_INFO, body, 24, 0));
    body[20] = 0;
    BAD("back channel", hvm_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST, body, 16, 0));
    BAD("deprecated", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_TOOLSTACK, body, 8, 0));
    BAD("multiple of 24", sample_outer_headers(b); stream_put_libxc_headers(b, 2, 4, 17); MARK;
        sample_put_raw(b, LIBXC_REC_X86_CPUID_POLICY, body, 20, 0));
    BAD("multiple of 24", sample_outer_headers(b); stream_put_libxc_headers(b, 2, 4, 17); MARK;
        sample_put_raw(b, LIBXC_REC_X86_CPUID_POLICY, NULL, 0, 0));
    BAD("multiple of 16", sample_outer_headers(b); stream_put_libxc_headers(b, 2, 4, 17); MARK;
        sample_put_raw(b, LIBXC_REC_X86_MSR_POLICY, body, 24, 0));
}

/* libxc headers with image version 2. */
static void v2_headers(struct stream_buf *b, uint32_t dom)
{
    size_t at = b->len;
    stream_put_libxc_headers(b, dom, 4, 13);
    b->data[at + 15] = 2;
}

static void test_reject_v3_only_records_in_v2(void **state)
{
    static const uint8_t leaf[24];
    BAD("v2 stream", sample_outer_headers(b); v2_headers(b, 2); MARK;
        stream_put_record(b, LIBXC_REC_STATIC_DATA_END, NULL, 0));
    BAD("v2 stream", sample_outer_headers(b); v2_headers(b, 2); MARK;
        stream_put_record(b, LIBXC_REC_X86_CPUID_POLICY, leaf, 24));
    BAD("v2 stream", sample_outer_headers(b); v2_headers(b, 2); MARK;
        stream_put_record(b, LIBXC_REC_X86_MSR_POLICY, leaf, 16));
}

static void test_reject_page_data(void **state)
{
    uint8_t body[16 + 4096] = { 0 };

    BAD("no pfn", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 8, 0));
    BAD("no pfn", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 0, 0));
    BAD("count is 0", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
    put_le32(body, 1); put_le32(body + 4, 5);
    BAD("reserved field", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
    put_le32(body + 4, 0); put_le32(body, 3);
    BAD("too short for the array", hvm_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
    put_le32(body, 1);
    put_le64(body + 8, UINT64_C(1) << 53);
    BAD("reserved bits 52-59", hvm_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16 + 4096, 0));
    for (unsigned t = 5; t <= 8; t++) {
        put_le64(body + 8, libxc_pfn_word(1, t));
        BAD("invalid page type", hvm_prefix(b); MARK;
            sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16 + 4096, 0));
    }
    put_le64(body + 8, libxc_pfn_word(1, LIBXC_PAGE_NOTAB));
    BAD("4096*1 data pages", hvm_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16, 0));
    put_le64(body + 8, libxc_pfn_word(1, LIBXC_PAGE_XTAB));
    BAD("4096*0 data pages", hvm_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_PAGE_DATA, body, 16 + 4096, 0));
}

static void test_reject_pv_records(void **state)
{
    uint8_t body[5200] = { 0 };
    size_t info;

    BAD("must be 8 bytes", sample_outer_headers(b); stream_put_libxc_headers(b, 1, 4, 17); MARK;
        sample_put_raw(b, LIBXC_REC_X86_PV_INFO, body, 16, 0));
    BAD("guest_width 2", sample_outer_headers(b); stream_put_libxc_headers(b, 1, 4, 17);
        MARK; info = b->len + 8; stream_put_pv_info(b, 8, 4); b->data[info] = 2);
    BAD("pt_levels 5", sample_outer_headers(b); stream_put_libxc_headers(b, 1, 4, 17);
        MARK; info = b->len + 8; stream_put_pv_info(b, 8, 4); b->data[info + 1] = 5);
    BAD("shorter than 8", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_PV_P2M_FRAMES, body, 4, 0));
    BAD("multiple of 8", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_PV_P2M_FRAMES, body, 12, 0));
    put_le32(body, 9); put_le32(body + 4, 3);
    BAD("exceeds end_pfn", pv_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_X86_PV_P2M_FRAMES, body, 16, 0));
    /* 1000 pfns: 2 frames for a 64-bit guest, 1 for a 32-bit one; we are 64-bit */
    put_le32(body, 0); put_le32(body + 4, 1000);
    BAD("of a 64-bit guest", pv_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_X86_PV_P2M_FRAMES, body, 16, 0));
    memset(body, 0, 16);
    BAD("vcpu header", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_BASIC, body, 4, 0));
    body[4] = 1;
    BAD("reserved field", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_XSAVE, body, 24, 0));
    body[4] = 0;
    BAD("64-bit guest's is 5168", pv_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_BASIC, body, 8 + 5160, 0));
    BAD("exceeds 128", pv_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_EXTENDED, body, 8 + 136, 0));
    BAD("multiple of 16", pv_prefix(b); MARK;
        sample_put_raw(b, LIBXC_REC_X86_PV_VCPU_MSRS, body, 8 + 8, 0));
    BAD("4096-byte page", pv_prefix(b); MARK; sample_put_raw(b, LIBXC_REC_SHARED_INFO, body, 4088, 0));
}

static void test_reject_libxc_order(void **state)
{
    static const uint8_t leaf[24];
    uint8_t vcpu[8 + LIBXC_X86_64_VCPU_BASIC_SIZE] = { 0 };

    BAD("must come first", sample_outer_headers(b); stream_put_libxc_headers(b, 1, 4, 17); MARK;
        stream_put_record(b, LIBXC_REC_STATIC_DATA_END, NULL, 0));
    BAD("must come first", sample_outer_headers(b); stream_put_libxc_headers(b, 1, 4, 17); MARK;
        stream_put_p2m_frames(b, 0, 15, (uint64_t[]){ 3 }, 1));
    BAD("must come first", sample_outer_headers(b); stream_put_libxc_headers(b, 1, 4, 17); MARK;
        stream_put_record(b, LIBXC_REC_SHARED_INFO, zeros, 4096));
    BAD("second X86_PV_INFO", pv_prefix(b); MARK; stream_put_pv_info(b, 8, 4));
    BAD("no STATIC_DATA_END", sample_outer_headers(b); stream_put_libxc_headers(b, 1, 4, 17);
        stream_put_pv_info(b, 8, 4); MARK; stream_put_p2m_frames(b, 0, 15, (uint64_t[]){ 3 }, 1));
    BAD("no STATIC_DATA_END", sample_outer_headers(b); stream_put_libxc_headers(b, 2, 4, 17);
        MARK; sample_hvm_memory(b, 1));
    BAD("second STATIC_DATA_END", hvm_prefix(b); MARK;
        stream_put_record(b, LIBXC_REC_STATIC_DATA_END, NULL, 0));
    BAD("after STATIC_DATA_END", hvm_prefix(b); MARK;
        stream_put_record(b, LIBXC_REC_X86_CPUID_POLICY, leaf, 24));
    BAD("x86 PV record in an HVM stream", hvm_prefix(b); MARK; stream_put_pv_info(b, 8, 4));
    BAD("x86 PV record in an HVM stream", hvm_prefix(b); MARK;
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_BASIC, 0, vcpu, 8));
    BAD("HVM record in an x86 PV stream", pv_prefix(b); MARK; stream_put_hvm_params(b, NULL, 0));
    BAD("has no HVM_CONTEXT", hvm_prefix(b); sample_hvm_memory(b, 0); MARK;
        stream_put_record(b, LIBXC_REC_END, NULL, 0));
    BAD("has no HVM_CONTEXT", hvm_prefix(b); sample_hvm_memory(b, 0); MARK;
        stream_put_record(b, LIBXC_REC_CHECKPOINT, NULL, 0));
    BAD("no X86_PV_VCPU_BASIC for vcpu 0", pv_prefix(b); sample_pv_memory(b);
        stream_put_record(b, LIBXC_REC_SHARED_INFO, zeros, 4096);
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_BASIC, 1, vcpu, LIBXC_X86_64_VCPU_BASIC_SIZE);
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_BASIC, 0, NULL, 0);   /* empty: not state */
        MARK; stream_put_record(b, LIBXC_REC_END, NULL, 0));
    BAD("has no SHARED_INFO", pv_prefix(b); sample_pv_memory(b);
        stream_put_vcpu(b, LIBXC_REC_X86_PV_VCPU_BASIC, 0, vcpu, LIBXC_X86_64_VCPU_BASIC_SIZE);
        MARK; stream_put_record(b, LIBXC_REC_END, NULL, 0));
    /* bare libxc: nothing may follow END */
    BAD("trailing", sample_hvm_static(b); sample_hvm_memory(b, 0); sample_hvm_tail(b);
        stream_put_record(b, LIBXC_REC_END, NULL, 0); MARK; sample_hvm_memory(b, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_streams_parse),
        cmocka_unit_test(test_checkpointed_layers),
        cmocka_unit_test(test_formats_detected),
        cmocka_unit_test(test_v2_stream_accepted),
        cmocka_unit_test(test_static_data_done_reported),
        cmocka_unit_test(test_one_byte_feeding_matches_whole),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_empty_input_truncated),
        cmocka_unit_test(test_page_data_not_buffered),
        cmocka_unit_test(test_reject_headers),
        cmocka_unit_test(test_reject_domain_header),
        cmocka_unit_test(test_reject_libxl_records),
        cmocka_unit_test(test_reject_libxl_order),
        cmocka_unit_test(test_reject_libxc_records),
        cmocka_unit_test(test_reject_v3_only_records_in_v2),
        cmocka_unit_test(test_reject_page_data),
        cmocka_unit_test(test_reject_pv_records),
        cmocka_unit_test(test_reject_libxc_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
