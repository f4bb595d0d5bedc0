/* cli/jsonl.c - JSON lines for --json (see jsonl.h). */
#include "jsonl.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            /* Reasons may quote what a peer sent: control bytes are escaped,
             * and a byte above ASCII becomes U+FFFD unless the message is
             * valid UTF-8 there (checked by the lead byte's run). */
            if (*p < 0x20) {
                fprintf(f, "\\u%04x", *p);
            } else if (*p < 0x80) {
                fputc(*p, f);
            } else {
                int n = *p >= 0xf0 && *p < 0xf5 ? 3 : *p >= 0xe0 ? 2 : *p >= 0xc2 ? 1 : -1;
                int k = 0;
                while (n > 0 && k < n && (p[k + 1] & 0xc0) == 0x80)
                    k++;
                if (n > 0 && k == n) {
                    fwrite(p, 1, (size_t)n + 1, f);
                    p += n;
                } else {
                    fputs("\\ufffd", f);
                }
            }
        }
    }
    fputc('"', f);
}

static void key(struct jl *j, const char *k)
{
    fputs(j->first ? "{" : ", ", j->f);
    j->first = false;
    put_string(j->f, k);
    fputs(": ", j->f);
}

void jl_open(struct jl *j, FILE *f, const char *event, const char *cmd)
{
    j->f = f;
    j->first = true;
    jl_str(j, "event", event);
    jl_str(j, "command", cmd);
}

void jl_str(struct jl *j, const char *k, const char *val)
{
    key(j, k);
    if (val)
        put_string(j->f, val);
    else
        fputs("null", j->f);
}

void jl_u64(struct jl *j, const char *k, uint64_t val)
{
    key(j, k);
    fprintf(j->f, "%" PRIu64, val);
}

void jl_i64(struct jl *j, const char *k, int64_t val)
{
    key(j, k);
    fprintf(j->f, "%" PRId64, val);
}

void jl_dbl(struct jl *j, const char *k, double val)
{
    key(j, k);
    if (isfinite(val))
        fprintf(j->f, "%.3f", val);
    else
        fputs("null", j->f);
}

void jl_bool(struct jl *j, const char *k, bool val)
{
    key(j, k);
    fputs(val ? "true" : "false", j->f);
}

void jl_result(struct jl *j, int rc, const char *msg)
{
    jl_bool(j, "ok", rc == 0);
    jl_i64(j, "rc", rc);
    jl_str(j, "errno", rc < 0 ? strerrorname_np(-rc) : NULL);
    jl_str(j, "error", rc == 0 ? NULL : msg && *msg ? msg : strerror(-rc));
}

void jl_close(struct jl *j)
{
    fputs("}\n", j->f);
    fflush(j->f);
}

void jl_round(FILE *f, const char *cmd, const struct ls_op *op, struct jl_rounds *seen)
{
    struct ls_precopy_progress p;
    ls_op_precopy(op, &p);
    if (seen->seen && p.round == seen->round && p.final_round == seen->final_round)
        return;
    *seen = (struct jl_rounds){ .seen = true, .round = p.round, .final_round = p.final_round };
    struct jl j;
    jl_open(&j, f, "round", cmd);
    jl_u64(&j, "round", p.round);
    jl_bool(&j, "final_round", p.final_round);
    jl_i64(&j, "dirty_pages", p.dirty_pages);
    jl_u64(&j, "pages_sent", p.pages_sent);
    jl_close(&j);
}

void jl_progress(FILE *f, const char *cmd, const struct ls_op *op, double secs, bool live)
{
    uint64_t done, total;
    struct jl j;
    ls_op_progress(op, &done, &total);
    jl_open(&j, f, "progress", cmd);
    jl_u64(&j, "bytes", done);
    jl_u64(&j, "total_bytes", total);
    jl_dbl(&j, "elapsed_s", secs);
    if (live) {
        struct ls_precopy_progress p;
        ls_op_precopy(op, &p);
        jl_u64(&j, "round", p.round);
        jl_bool(&j, "final_round", p.final_round);
        jl_u64(&j, "pages_sent", p.pages_sent);
        jl_i64(&j, "dirty_pages", p.dirty_pages);
        jl_dbl(&j, "pages_per_s", p.pages_per_s);
    }
    jl_close(&j);
}
