/* cli/run.h - one library operation run to its end on a loop of its own,
 * for every long command: SIGINT/SIGTERM cancel it through its tables (a
 * second signal forces the exit), a progress line on a terminal or, with
 * --json, JSON lines (jsonl.h). */
#ifndef LOCKSTEP_CLI_RUN_H
#define LOCKSTEP_CLI_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "jsonl.h"
#include "lockstep/lockstep.h"

struct cli_run {
    uv_loop_t loop;
    struct ls_ctx *ctx;
    struct ls_op *op;          /* set by the command's ls_*_start(.., cli_run_done, r, &r->op, ..) */
    const char *verb;          /* the command, for messages */
    bool live;                 /* pre-copy rounds to show (migrate) */
    FILE *json;                /* --json: the events go here, and no progress line */
    /* A command's own progress line (colo: checkpoints and pauses) instead of
     * the bytes and rounds; data is status_data. NULL: the default. */
    void (*status_line)(struct cli_run *r, bool final);
    void *status_data;
    /* private */
    uv_timer_t progress;
    uv_check_t rounds_check;
    uv_signal_t sigint, sigterm;
    struct jl_rounds rounds;
    bool show_progress, done;
    int interrupted, rc;
    char errmsg[LS_ERRBUF_LEN];
    uint64_t start_ns;
};

/* A loop and a context on it; the error is printed. */
int cli_run_open(struct cli_run *r, const char *verb, enum ls_backend_kind kind);
/* The done callback to give the ls_*_start call (data: r). */
ls_op_done_fn cli_run_done;
/* Run the loop until the operation reports; returns its rc, and leaves its
 * reason in r->errmsg. */
int cli_run_wait(struct cli_run *r);
/* Free the operation and the context, and close the loop. */
void cli_run_close(struct cli_run *r);

#endif
