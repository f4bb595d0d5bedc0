/* lockstep/qmp.h - QMP to a QEMU, asynchronous, on the context's loop.
 *
 * The client lockstep drives HVM domains' device models with, for a
 * toolstack's own commands (as libxl_qemu_monitor_command): connect to a
 * QMP unix socket (ls_dm_info's qmp_path), take the greeting, negotiate
 * qmp_capabilities, then any number of commands, pipelined, each answered
 * exactly once. Callbacks run from the loop, never inside the call that
 * started the work. Close every connection (and let its closed callback
 * run) before ls_ctx_free.
 */
#ifndef LOCKSTEP_QMP_H
#define LOCKSTEP_QMP_H

#include <stdbool.h>
#include <stddef.h>

#include "lockstep/errbuf.h"
#include "lockstep/version.h"

LS_BEGIN_DECLS

struct ls_ctx;
struct ls_qmp;

/* ready: rc 0, once negotiated. closed: exactly once for every ls_qmp_open
 * that returned 0, after every reply callback: rc 0 after ls_qmp_close,
 * else why the connection failed (errmsg). q is freed when closed returns. */
typedef void ls_qmp_state_fn(struct ls_qmp *q, int rc, const char *errmsg, void *data);
/* rc 0 and QEMU's "return" value as JSON text (valid during the callback),
 * or a negative errno and errmsg: -EREMOTEIO (QEMU's error: its class and
 * desc), -ETIMEDOUT, -ECONNRESET (QEMU went away), -ECANCELED (closed). */
typedef void ls_qmp_reply_fn(struct ls_qmp *q, int rc, const char *ret_json, const char *errmsg,
                             void *data);

struct ls_qmp_opts {
    unsigned setup_timeout_ms;   /* connect, greeting and negotiation; 0 = 10 s */
    unsigned cmd_timeout_ms;     /* every command's reply; 0 = 30 s */
    bool retry_connect;          /* a missing or refusing socket (QEMU still starting):
                                    retry until the setup deadline */
    ls_qmp_state_fn *ready;      /* optional */
    ls_qmp_state_fn *closed;     /* optional */
    void *data;                  /* passed to ready and closed */
};

/* Start connecting to the QMP socket at path. 0 and *out, or a negative
 * errno (nothing is called back then). */
LS_API int ls_qmp_open(struct ls_ctx *ctx, const char *path, const struct ls_qmp_opts *o,
                       struct ls_qmp **out, struct ls_errbuf *err);
/* Send cmd with args_json (a JSON object's text, or NULL for none); commands
 * sent before ready wait for the negotiation. 0 (cb runs once) or a negative
 * errno (cb never runs): -EINVAL (args_json is not a JSON object), -ESHUTDOWN
 * (the connection is closing), -ENOMEM. */
LS_API int ls_qmp_exec(struct ls_qmp *q, const char *cmd, const char *args_json,
                       ls_qmp_reply_fn *cb, void *data, struct ls_errbuf *err);
/* Pending commands fail with -ECANCELED, then closed (rc 0). Idempotent. */
LS_API void ls_qmp_close(struct ls_qmp *q);

LS_END_DECLS

#endif
