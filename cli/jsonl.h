/* cli/jsonl.h - `--json`: one JSON object per line for the long commands
 * (save, restore, migrate, migrate-receive), so a toolstack driving the CLI
 * parses events instead of scraping text. Every line is a whole object with
 * an "event" key: "start", "progress", "round" (live migration) and, last,
 * "outcome". The keys are listed in man/lockstep.1 (JSON OUTPUT). */
#ifndef LOCKSTEP_CLI_JSONL_H
#define LOCKSTEP_CLI_JSONL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lockstep/lockstep.h"

/* One object being written: jl_open, then keys, then jl_close (which ends
 * the line and flushes, so a reader sees each event as it happens). */
struct jl {
    FILE *f;
    bool first;
};
void jl_open(struct jl *j, FILE *f, const char *event, const char *cmd);
void jl_str(struct jl *j, const char *key, const char *val);   /* val NULL: null */
void jl_u64(struct jl *j, const char *key, uint64_t val);
void jl_i64(struct jl *j, const char *key, int64_t val);
void jl_dbl(struct jl *j, const char *key, double val);
void jl_bool(struct jl *j, const char *key, bool val);
/* "ok", "rc", "errno" (its name, e.g. "EIO") and "error" (the reason, or null). */
void jl_result(struct jl *j, int rc, const char *msg);
void jl_close(struct jl *j);

/* What the last "round" event said, to emit one only on a change. */
struct jl_rounds {
    bool seen, final_round;
    unsigned round;
};
/* A "round" event (live migration) when the pre-copy round moved since the
 * last call: the round, whether it is the final one, dirty pages, pages sent. */
void jl_round(FILE *f, const char *cmd, const struct ls_op *op, struct jl_rounds *seen);
/* A "progress" event: bytes moved, the total if known (else 0), seconds since
 * the start; with live, the pre-copy round, pages sent, dirty pages, rate. */
void jl_progress(FILE *f, const char *cmd, const struct ls_op *op, double secs, bool live);

#endif
