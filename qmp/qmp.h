/* qmp/qmp.h - an asynchronous QMP client on the libuv loop.
 *
 * One struct qmp_conn is one QMP session with a QEMU: connect (unix socket
 * path, or TCP host:port), read the greeting, negotiate qmp_capabilities,
 * then any number of pipelined commands, each tagged with a unique "id" and
 * matched to its reply; asynchronous events go to subscribers. The
 * connection's life is the table states/qmp_conn.def, run on an io_sched;
 * commands are plain callbacks.
 *
 * Threading: everything here is called on the loop thread of the io_sched.
 *
 * Callbacks: never called from inside the call that started the work. A
 * command's callback runs exactly once if qmp_exec*() returned 0 (reply,
 * timeout, close or connection failure), never if it returned < 0. The done
 * callback runs exactly once if qmp_conn_open_*() returned 0, after every
 * command callback and every handle is closed; the connection frees itself
 * right after done returns.
 *
 * Replies and events are delivered as yajl_val trees (yajl/yajl_tree.h) that
 * are valid only during the callback; copy what you keep. Do not free them.
 *
 * Wire format: commands are generated with yajl_gen (every string escaped,
 * UTF-8 validated), one JSON object after another with no newline, and ids
 * are the smallest free numbers (QEMU 7.2 reads its monitor one byte per
 * main-loop iteration, so every byte sent costs). Input is parsed with yajl's
 * streaming parser: several messages per read, a message split over many
 * reads, any whitespace between them. A message larger than max_msg_bytes
 * (checked every 64 KiB read), nested deeper than 64, or with more than a
 * million values fails the connection with -EMSGSIZE before it is buffered
 * whole.
 *
 * Errors are negative errno values with a reason (struct ls_errbuf):
 *   -EREMOTEIO   QEMU answered with {"error": ...} (class and desc given), or
 *                a human-monitor-command printed text (class "HMPError");
 *   -ETIMEDOUT   no reply within the command's deadline (the connection
 *                stays open: QEMU may only be slow; a late reply is counted
 *                and dropped), or no greeting / negotiation within the
 *                setup deadline (the connection fails);
 *   -ECONNRESET  QEMU closed the socket or reset it (pending commands fail
 *                with this too), also mid-message;
 *   -EPROTO      the peer sent something that is not QMP (invalid JSON, a
 *                reply with an unknown id, no greeting); the pending
 *                commands of a connection whose qmp_capabilities QEMU
 *                refused (the connection itself ends with -EREMOTEIO);
 *   -EMSGSIZE    a message over the size/depth/value caps;
 *   -ECANCELED   the owner closed the connection (pending commands);
 *   -ESHUTDOWN   qmp_exec*() on a connection that is closing;
 *   -EHOSTUNREACH  the TCP host name did not resolve;
 *   -ENOMEM, -EILSEQ (a string argument that is not UTF-8), -EOPNOTSUPP (fd
 *   passing over TCP), other -errno from socket calls.
 *
 * Writes never raise SIGPIPE (send with MSG_NOSIGNAL).
 */
#ifndef LOCKSTEP_QMP_QMP_H
#define LOCKSTEP_QMP_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "lockstep/errbuf.h"
#include "io/sched_uv.h"

struct qmp_conn;
struct qmp_args;

/* ---- arguments ---------------------------------------------------------- */

/* A JSON object (or array) of command arguments, built member by member.
 * Setters copy keys and values. Errors (out of memory, a setter used on the
 * wrong kind of node) are sticky: nothing to check per call, qmp_exec*()
 * reports the first one. qmp_args_new() never returns NULL. */
struct qmp_args *qmp_args_new(void);
void qmp_args_free(struct qmp_args *a);
/* key names the member in an object; it must be NULL when a is an array. */
void qmp_args_str(struct qmp_args *a, const char *key, const char *val);
void qmp_args_int(struct qmp_args *a, const char *key, long long val);
void qmp_args_bool(struct qmp_args *a, const char *key, bool val);
void qmp_args_double(struct qmp_args *a, const char *key, double val);
void qmp_args_null(struct qmp_args *a, const char *key);
/* A nested object / array member; the result belongs to a (never NULL). */
struct qmp_args *qmp_args_obj(struct qmp_args *a, const char *key);
struct qmp_args *qmp_args_array(struct qmp_args *a, const char *key);
/* The first error recorded on the tree a belongs to (0: none). */
int qmp_args_error(const struct qmp_args *a);
/* The arguments as JSON text (malloc'd, NUL-terminated), for logs and tests.
 * Returns 0, or -ENOMEM / -EILSEQ (err says which key). */
int qmp_args_to_json(const struct qmp_args *a, char **out, size_t *len, struct ls_errbuf *err);

/* A JSON object's text as arguments (for callers that hold JSON text): 0 and
 * a tree to pass to qmp_exec*(), or -EINVAL (not a JSON object, err says
 * why), -EMSGSIZE (nested deeper than 32), -ENOMEM. */
int qmp_args_from_json(const char *json, struct qmp_args **out, struct ls_errbuf *err);

/* ---- replies and events --------------------------------------------------- */

struct qmp_reply {
    int rc;                      /* 0 or a negative errno (see above) */
    uint64_t id;                 /* the id this client gave the command */
    const char *command;         /* e.g. "query-status" */
    yajl_val ret;                /* the "return" value when rc == 0 */
    yajl_val msg;                /* the whole reply object, NULL if none came */
    const char *err_class;       /* QMP error class, "HMPError", or NULL */
    const char *err_desc;        /* QMP error desc / HMP text, or NULL */
    const struct ls_errbuf *err; /* rc and a reason naming the command */
};
typedef void qmp_reply_fn(struct qmp_conn *c, const struct qmp_reply *r, void *data);

struct qmp_event {
    const char *name;            /* e.g. "STOP" */
    yajl_val data;               /* the "data" member, or NULL */
    long long seconds, microseconds;  /* QEMU's timestamp, -1 if absent */
    yajl_val msg;                /* the whole event object */
};
typedef void qmp_event_fn(struct qmp_conn *c, const struct qmp_event *ev, void *data);

/* v as JSON text in g's buffer (NUL-terminated, as yajl keeps its buffers;
 * valid until g is used again). 0 or -ENOMEM. */
int qmp_value_to_json(yajl_val v, yajl_gen g, const char **out, size_t *len);

/* ---- connections ------------------------------------------------------------ */

typedef void qmp_ready_fn(struct qmp_conn *c, void *data);
/* rc 0 after qmp_conn_close(); otherwise the first error and its reason. */
typedef void qmp_done_fn(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data);

struct qmp_conn_opts {
    const char *name;             /* instance name for traces; default "qmp" */
    unsigned setup_timeout_ms;    /* connect + greeting + negotiation; 0: 10 s */
    unsigned cmd_timeout_ms;      /* default command deadline; 0: 30 s */
    size_t max_msg_bytes;         /* 0: 16 MiB */
    /* Unix sockets: keep retrying a missing or refusing socket (QEMU still
     * starting) every 2 ms until the setup deadline. */
    bool retry_connect;
    qmp_ready_fn *ready;          /* optional: negotiation done */
    qmp_done_fn *done;            /* optional: the connection is finished */
    void *data;                   /* passed to ready and done */
};

/* Start connecting. On success *out is the connection (valid until its done
 * callback returns). Returns 0, or -ENAMETOOLONG (path), -EINVAL (host,
 * port), -ENOMEM, or a uv error; then nothing is called back. */
int qmp_conn_open_unix(struct io_sched *s, const char *path,
                       const struct qmp_conn_opts *o, struct qmp_conn **out);
int qmp_conn_open_tcp(struct io_sched *s, const char *host, int port,
                      const struct qmp_conn_opts *o, struct qmp_conn **out);

/* Close: pending commands fail with -ECANCELED, then done(rc 0) once every
 * handle is closed. Idempotent; never calls back inline. */
void qmp_conn_close(struct qmp_conn *c);

/* The connection's machine, e.g. to join it from a parent machine or cancel
 * it (fsm_cancel ends in FAILED with the cancel reason). */
struct fsm *qmp_conn_fsm(struct qmp_conn *c);
const char *qmp_conn_state(const struct qmp_conn *c);
bool qmp_conn_is_ready(const struct qmp_conn *c);
/* "major.minor.micro" from the greeting, "" before it. */
const char *qmp_conn_qemu_version(const struct qmp_conn *c);

struct qmp_stats {
    uint64_t bytes_in, bytes_out;
    uint64_t msgs_in, replies, events;
    uint64_t late_replies;        /* replies to commands that had timed out */
    uint64_t fds_sent;
    size_t max_msg_bytes;         /* largest message seen, in bytes */
    unsigned pending;             /* commands awaiting a reply */
};
void qmp_conn_get_stats(const struct qmp_conn *c, struct qmp_stats *st);

/* ---- commands --------------------------------------------------------------- */

/* A human-monitor-command whose "return" is a non-empty string is an error
 * (HMP reports failures that way) unless this flag is given (info commands). */
#define QMP_EXEC_HMP_OUTPUT_OK (1u << 0)

struct qmp_exec_opts {
    unsigned timeout_ms;          /* 0: the connection's cmd_timeout_ms */
    unsigned flags;               /* QMP_EXEC_* */
    /* Send fd with the command's first byte (SCM_RIGHTS; unix sockets only).
     * The client sends a duplicate; the caller keeps fd. */
    bool send_fd;
    int fd;
    struct ls_errbuf *err;        /* optional: why qmp_exec_ex() returned < 0 */
};

/* Queue command cmd with args (consumed, even on failure; NULL for none).
 * Commands issued before the connection is ready wait for negotiation.
 * Returns 0 (cb will be called exactly once) or a negative errno. */
int qmp_exec(struct qmp_conn *c, const char *cmd, struct qmp_args *args,
             qmp_reply_fn *cb, void *data);
int qmp_exec_ex(struct qmp_conn *c, const char *cmd, struct qmp_args *args,
                const struct qmp_exec_opts *o, qmp_reply_fn *cb, void *data);

/* human-monitor-command {"command-line": cmdline}; non-empty output = error. */
int qmp_hmp(struct qmp_conn *c, const char *cmdline, qmp_reply_fn *cb, void *data);

/* add-fd with fd attached: QEMU puts it in fdset fdset_id (< 0: a new set),
 * usable as "/dev/fdset/<id>". opaque may be NULL. Parse the reply with
 * qmp_reply_add_fd(). */
int qmp_add_fd(struct qmp_conn *c, int fd, int fdset_id, const char *opaque,
               qmp_reply_fn *cb, void *data);
/* From a successful add-fd reply: the fdset id and QEMU's fd number.
 * Returns 0 or -EPROTO. */
int qmp_reply_add_fd(const struct qmp_reply *r, long long *fdset_id, long long *fd);
/* getfd {"fdname": name} with fd attached (for commands taking an fd name). */
int qmp_getfd(struct qmp_conn *c, int fd, const char *name, qmp_reply_fn *cb, void *data);

/* ---- events ----------------------------------------------------------------- */

/* Call cb for every event named event; NULL or "*" means all events, and a
 * trailing '*' matches a prefix ("BLOCK_JOB_*"). Returns a subscription id
 * (> 0) or -ENOMEM. Subscribers run in subscription order; a callback may
 * subscribe or unsubscribe (a new subscriber sees the next event). */
int qmp_subscribe(struct qmp_conn *c, const char *event, qmp_event_fn *cb, void *data);
/* Returns 0 or -ENOENT. */
int qmp_unsubscribe(struct qmp_conn *c, int sub_id);

#endif
