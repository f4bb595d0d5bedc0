/* test/fuzz/seeds.c - write the generated seed corpora: seeds DIR.
 *
 * Streams come from lockstep's own encoders (test/io/sample_streams.c, the
 * streams the parser and inspect tests check), cut into what each harness
 * takes: whole streams, their xl headers and configs, each record on its
 * own, the back channel of a migration around them, and a sim daemon
 * session. Hand-written inputs (QMP transcripts, real saves) live in
 * test/fuzz/seeds/ instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/sim/proto.h"
#include "io/byteorder.h"
#include "io/record_body.h"
#include "io/records.h"
#include "io/stream_parser.h"
#include "states/migrate.h"
#include "test/io/sample_streams.h"

static const char *out_dir;

static void put(const char *harness, const char *name, const void *a, size_t alen,
                const void *b, size_t blen)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, harness);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- records, one per seed ------------------------------------------------ */

struct cut {
    const char *stream;
    unsigned n;
};

static int cut_record(void *data, const struct stream_item *it, struct ls_errbuf *e)
{
    struct cut *c = data;
    char name[96];
    if (it->is_header) {
        if (it->type == STREAM_HDR_XL) {
            snprintf(name, sizeof(name), "%s-xl-header", c->stream);
            put("xl_header", name, it->body, it->body_len, NULL, 0);
            if (it->xl_config) {
                snprintf(name, sizeof(name), "%s-config", c->stream);
                put("xl_header", name, it->xl_config, strlen(it->xl_config), NULL, 0);
            }
        }
        return 0;
    }
    /* ctl: version 3, width 8 for libxc; the libxl bit for libxl records. */
    uint8_t hdr[5] = { it->layer == STREAM_LAYER_LIBXL ? 0x08 | 0x40 : 0x01 | 0x04 };
    put_le32(hdr + 1, it->type);
    size_t len = it->length;
    uint8_t *body = calloc(1, len ? len : 1);
    if (!body)
        exit(1);
    memcpy(body, it->body, it->body_len);   /* PAGE_DATA: page bytes stay zero */
    snprintf(name, sizeof(name), "%s-%02u-%s-%s", c->stream, c->n++,
             it->layer == STREAM_LAYER_LIBXL ? "libxl" : "libxc",
             it->layer == STREAM_LAYER_LIBXL ? libxl_rec_name(it->type) : libxc_rec_name(it->type));
    put("records", name, hdr, sizeof(hdr), body, len);
    free(body);
    return 0;
}

static void cut_stream(const char *name, const struct stream_buf *b)
{
    struct stream_parser p;
    struct cut c = { name, 0 };
    struct ls_errbuf e = { 0 };
    stream_parser_init(&p, STREAM_FORMAT_AUTO, cut_record, &c);
    if (stream_parser_feed(&p, b->data, b->len, &e) < 0 || stream_parser_finish(&p, &e) < 0) {
        fprintf(stderr, "seeds: sample stream %s does not parse: %s\n", name, e.msg);
        exit(1);
    }
    stream_parser_destroy(&p);
}

/* ---- the sim daemon: a session as the client library runs one ----------------- */

struct session {
    uint8_t buf[4096];
    size_t len;
};

static void req(struct session *s, unsigned op, unsigned kind, unsigned index, unsigned sel,
                unsigned flags, const void *payload, uint16_t len)
{
    uint8_t h[8] = { (uint8_t)op, (uint8_t)kind, (uint8_t)index, (uint8_t)(index >> 8),
                     (uint8_t)sel, (uint8_t)flags, (uint8_t)len, (uint8_t)(len >> 8) };
    memcpy(s->buf + s->len, h, sizeof(h));
    s->len += sizeof(h);
    if (len)
        memcpy(s->buf + s->len, payload, len);
    s->len += len;
}

static void simd_seeds(void)
{
    struct simp_create cr = { .type = 1, .vcpus = 2, .memory_kib = 256, .seed = 7,
                              .flags = SIMP_CREATE_POPULATE, .device_model = SIMP_DM_STANDIN };
    struct session s = { .len = 0 };
    req(&s, SIMP_OP_HELLO, 0, 0, 1, 0, NULL, 0);
    req(&s, SIMP_OP_CREATE, 0, 0, 1, 0, &cr, sizeof(cr));
    req(&s, SIMP_OP_INFO, 0, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_GET, SIMP_K_VCPU_BASIC, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_GET, SIMP_K_HVM_CONTEXT, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_GET, SIMP_K_CONFIG_JSON, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_MAP, 0, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_LOGDIRTY, SIMP_LOGDIRTY_ENABLE, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_LOGDIRTY, SIMP_LOGDIRTY_CLEAN, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_GUARD, SIMP_GUARD_RESUME, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_SUSPEND, 0, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_HANDOFF, 0, 0, 0, 1, MIG_GO, MIG_GO_LEN);
    req(&s, SIMP_OP_DIGEST, 0, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_DESTROY, 0, 0, 0, 0, NULL, 0);
    put("simd", "session-pv", s.buf, s.len, NULL, 0);

    s.len = 0;
    cr.type = 2;   /* HVM, a restore target */
    cr.flags = SIMP_CREATE_GUARD;
    cr.memory_kib = 0;
    cr.vcpus = 0;
    uint32_t hvm = 2, one = 1;
    req(&s, SIMP_OP_CREATE, 0, 0, 1, 0, &cr, sizeof(cr));
    req(&s, SIMP_OP_SET, SIMP_K_DOMAIN_TYPE, 0, 0, 0, &hvm, 4);
    req(&s, SIMP_OP_SET, SIMP_K_VCPUS, 0, 0, 0, &one, 4);
    req(&s, SIMP_OP_SET, SIMP_K_CONFIG_JSON, 0, 0, 0, "{\"c_info\":{}}", 13);
    struct simp_workload w = { .rate = 100, .pattern = SIMP_DIRTY_HOTSET, .hot_percent = 5 };
    req(&s, SIMP_OP_SET, SIMP_K_WORKLOAD, 0, 0, 0, &w, sizeof(w));
    req(&s, SIMP_OP_DM_INFO, 0, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_UNPAUSE, 0, 0, 0, 0, NULL, 0);
    req(&s, SIMP_OP_LIST, 0, 0, 1, 0, NULL, 0);
    put("simd", "session-hvm-target", s.buf, s.len, NULL, 0);
}

/* ---- the migration back channel ------------------------------------------------- */

static void migrate_seeds(const struct stream_buf *pv)
{
    uint8_t buf[512];
    size_t n = 0;
    buf[n++] = 0;   /* lockstep sends */
    memcpy(buf + n, MIG_BANNER, MIG_BANNER_LEN); n += MIG_BANNER_LEN;
    memcpy(buf + n, MIG_RECEIVED, MIG_RECEIVED_LEN); n += MIG_RECEIVED_LEN;
    memcpy(buf + n, MIG_REPORT, MIG_REPORT_LEN); n += MIG_REPORT_LEN;
    buf[n++] = 0;   /* the copy runs */
    put("migrate", "sender-ok", buf, n, NULL, 0);
    buf[n - 1] = 1; /* it did not start: the receiver gives leave to resume */
    memcpy(buf + n, MIG_GO, MIG_GO_LEN);
    put("migrate", "sender-copy-failed", buf, n + MIG_GO_LEN, NULL, 0);
    put("migrate", "sender-no-received", buf, 1 + MIG_BANNER_LEN, NULL, 0);

    uint8_t *rx = malloc(1 + pv->len + MIG_GO_LEN);
    if (!rx)
        exit(1);
    rx[0] = 1;   /* lockstep receives */
    memcpy(rx + 1, pv->data, pv->len);
    memcpy(rx + 1 + pv->len, MIG_GO, MIG_GO_LEN);
    put("migrate", "receiver-sample-pv", rx, 1 + pv->len + MIG_GO_LEN, NULL, 0);
    put("migrate", "receiver-no-go", rx, 1 + pv->len, NULL, 0);
    free(rx);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seeds DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    struct stream_buf hvm, pv, cp, colo;
    stream_buf_init(&hvm);
    stream_buf_init(&pv);
    stream_buf_init(&cp);
    stream_buf_init(&colo);
    sample_xl_hvm(&hvm);
    sample_xl_pv(&pv);
    sample_xl_checkpointed(&cp, 2, false);
    sample_xl_checkpointed(&colo, 2, true);
    put("inspect", "sample-hvm", hvm.data, hvm.len, NULL, 0);
    put("inspect", "sample-pv", pv.data, pv.len, NULL, 0);
    put("inspect", "sample-remus", cp.data, cp.len, NULL, 0);
    put("inspect", "sample-colo", colo.data, colo.len, NULL, 0);
    put("restore", "sample-hvm", hvm.data, hvm.len, NULL, 0);
    put("restore", "sample-pv", pv.data, pv.len, NULL, 0);
    cut_stream("hvm", &hvm);
    cut_stream("pv", &pv);
    cut_stream("colo", &colo);
    migrate_seeds(&pv);
    simd_seeds();
    stream_buf_release(&hvm);
    stream_buf_release(&pv);
    stream_buf_release(&cp);
    stream_buf_release(&colo);
    return 0;
}
