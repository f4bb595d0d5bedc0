/* lockstep/lockstep.h - the library API for toolstacks.
 *
 * lockstep saves, restores and (later) migrates and COLO-replicates Xen
 * guests. Each operation is a set of table-driven state machines running on
 * the caller's libuv loop; the API starts one and calls back exactly once,
 * from the loop, never inside the starting call.
 *
 *     struct ls_ctx *ctx;
 *     ls_ctx_new(&ctx, loop, LS_BACKEND_SIM, &err);
 *     struct ls_op *op;
 *     struct ls_save_opts so = { .domid = 3, .fd = fd, .format = LS_FORMAT_XL };
 *     ls_save_start(ctx, &so, on_done, NULL, &op, &err);
 *     uv_run(loop, UV_RUN_DEFAULT);          // on_done(op, rc, msg, data)
 *     ls_op_free(op); ls_ctx_free(ctx);
 *
 * Errors are negative errno values with a reason (struct ls_errbuf).
 * File descriptors stay the caller's: lockstep never closes them.
 */
#ifndef LOCKSTEP_LOCKSTEP_H
#define LOCKSTEP_LOCKSTEP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "io/errbuf.h"

struct ls_ctx;
struct ls_op;
struct ls_backend;

enum ls_backend_kind {
    LS_BACKEND_SIM = 0,   /* the simulated hypervisor (lockstep-simd) */
    LS_BACKEND_XEN = 1,   /* real Xen; fails at once (-ENODEV) without /dev/xen/privcmd */
    LS_BACKEND_AUTO = 2,  /* xen on a Xen dom0, sim elsewhere */
};

/* The stream's outer format. */
enum ls_format {
    LS_FORMAT_XL = 0,     /* xl save-file header + JSON config + libxl stream */
    LS_FORMAT_LIBXL = 1,  /* bare libxl stream (what libxl_domain_suspend writes) */
};

int ls_ctx_new(struct ls_ctx **out, uv_loop_t *loop, enum ls_backend_kind kind,
               struct ls_errbuf *err);
/* All operations must have finished (their done callback run). */
void ls_ctx_free(struct ls_ctx *ctx);
struct ls_backend *ls_ctx_backend(struct ls_ctx *ctx);

typedef void ls_op_done_fn(struct ls_op *op, int rc, const char *errmsg, void *data);

struct ls_save_opts {
    uint32_t domid;
    int fd;                    /* where the stream goes: file, pipe or socket */
    enum ls_format format;
    bool keep_domain;          /* resume the guest after a successful save (xl save -c) */
};

struct ls_restore_opts {
    int fd;                    /* the stream: xl or libxl format, detected */
    bool unpause;              /* unpause the restored guest (xl restore does; -p keeps it paused) */
};

int ls_save_start(struct ls_ctx *ctx, const struct ls_save_opts *opts, ls_op_done_fn *done,
                  void *data, struct ls_op **out, struct ls_errbuf *err);
int ls_restore_start(struct ls_ctx *ctx, const struct ls_restore_opts *opts,
                     ls_op_done_fn *done, void *data, struct ls_op **out,
                     struct ls_errbuf *err);

/* Ask the operation to stop; done follows (with -ECANCELED unless it had
 * already finished). The guest is left as before the save; a partial restore
 * is destroyed. */
void ls_op_cancel(struct ls_op *op);
/* Only after done has been called. */
void ls_op_free(struct ls_op *op);

/* Bytes of the stream moved so far, and the expected total (0 if unknown). */
void ls_op_progress(const struct ls_op *op, uint64_t *done_bytes, uint64_t *total_bytes);
/* The domain an operation acted on (restore: the new domain). */
uint32_t ls_op_domid(const struct ls_op *op);
/* Hex digest of the domain's memory, vCPU and HVM state where the backend
 * offers one (sim): for a save, taken once the guest is suspended (the state
 * the stream carries); for a restore, of the restored domain. "" otherwise. */
const char *ls_op_digest(const struct ls_op *op);

#endif
