/* qmp/qmp_internal.h - the connection object shared by the qmp/ files.
 *
 * qmp_conn.c: the table's actions, open/close, handles.
 * qmp_io.c:   the socket: reads into the streaming parser, writes (sendmsg,
 *             with SCM_RIGHTS when a command carries an fd).
 * qmp_cmd.c:  commands (ids, deadlines, replies), events, subscribers.
 * qmp_args.c: the argument builder and JSON generation.
 *
 * Why the socket is a uv_poll_t and not a uv_stream_t: a command carrying an
 * fd must leave in order with the command bytes, and uv_write2() can only pass
 * fds that are themselves uv handles over an ipc pipe (wrapping an arbitrary fd
 * in a uv_pipe_t would set O_NONBLOCK on the caller's open file description).
 * Owning the socket's reads and writes also lets every write use MSG_NOSIGNAL
 * and keeps the fast path free of per-write allocations.
 */
#ifndef LOCKSTEP_QMP_INTERNAL_H
#define LOCKSTEP_QMP_INTERNAL_H

#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "qmp/qmp.h"

#define FSM_PREFIX QMP_CONN
#define FSM_DEF_FILE "states/qmp_conn.def"
#include "fsm/gen_enums.h"

#define QMP_READ_CHUNK (64 * 1024)
#define QMP_MAX_DEPTH 64
#define QMP_MAX_VALUES (1u << 20)
#define QMP_CONNECT_RETRY_MS 2

struct qmp_cmd {
    struct qmp_cmd *prev, *next;     /* the pending list, in send order */
    uint64_t id;
    uint64_t deadline;               /* loop time, ms */
    unsigned timeout_ms;
    unsigned flags;
    bool hmp;                        /* human-monitor-command */
    qmp_reply_fn *cb;
    void *data;
    char name[];
};

/* Bytes not yet accepted by the kernel, in order. */
struct qmp_tx {
    struct qmp_tx *next;
    bool gated;                      /* held back until negotiation is done */
    int fd;                          /* our dup to attach to the first byte, or -1 */
    size_t off, len;
    char buf[];
};

struct qmp_sub {
    struct qmp_sub *next;
    int id;
    bool dead;                       /* unsubscribed while callbacks were walking */
    bool all, prefix;
    uint64_t since;                  /* events delivered before it subscribed */
    size_t name_len;
    qmp_event_fn *cb;
    void *data;
    char name[];
};

/* One open container of the message being parsed. */
struct qmp_frame {
    yajl_val v;
    size_t cap;
    char *key;                       /* the member name awaiting its value */
};

struct qmp_conn {
    struct fsm fsm;
    struct io_sched *sched;
    uv_loop_t *loop;

    /* options */
    unsigned setup_timeout_ms, cmd_timeout_ms;
    size_t max_msg_bytes;
    bool retry_connect;
    qmp_ready_fn *ready_cb;
    qmp_done_fn *done_cb;
    void *data;

    /* address */
    bool tcp;
    char *path;                      /* unix */
    char *host;                      /* tcp */
    int port;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char where[160];                 /* "unix:/path" or "tcp:host:port" for messages */
    int last_connect_errno;

    /* handles: all initialised at open except poll (needs the fd) */
    int fd;
    uv_poll_t poll;
    bool poll_inited;
    int poll_events;
    uv_timer_t setup_timer, cmd_timer, retry_timer;
    uv_getaddrinfo_t gai;
    bool gai_busy;
    bool handles_inited;             /* the timers exist (conn_start got that far) */
    unsigned open_handles;           /* initialised, close callback not yet run */
    bool undo_waiting;               /* the cleanup undo awaits the last close */

    /* io state */
    bool connect_in_progress;        /* tcp: awaiting writability */
    bool reading;                    /* read interest: on from the rows that read, off
                                        after the greeting (until its row) and at the end */
    /* io's end: the first fatal error or the peer's hang-up (rc -ECONNRESET),
     * posted as IO_FAILED or PEER_CLOSED, whose row adopts it; io does
     * nothing more once it is set. */
    struct ls_errbuf io_err;
    struct qmp_tx *txq_head, *txq_tail;

    /* commands */
    uint64_t *id_used;               /* bit per id: pending, or timed out awaiting its reply */
    uint64_t *id_late;               /* bit per id: timed out, a late reply may still come */
    size_t id_words;
    struct qmp_cmd *pend_head, *pend_tail;
    unsigned npending;
    uint64_t cmd_timer_due;          /* 0: not armed */
    char version[32];

    /* events */
    struct qmp_sub *subs;
    int next_sub_id;
    unsigned sub_walkers;

    /* parser */
    yajl_handle parser;
    struct qmp_frame *stack;
    unsigned depth, stack_cap;
    size_t msg_bytes;                /* bytes of the current message, 64 KiB steps */
    size_t msg_values;
    size_t chunk_msg_start;          /* where the current message began in this chunk */
    uint64_t chunk_base;             /* stream offset of the current chunk */

    /* generator, reused for every command */
    yajl_gen gen;

    struct qmp_stats stats;
    char rbuf[QMP_READ_CHUNK];
};

/* Teardown began (a row into CLOSING or FAILED, or the cleanup undo): it
 * closes the timers first, so their closing is the fact; from then on no
 * command is accepted and no handle's callback runs. */
static inline bool qmp__tearing_down(const struct qmp_conn *c)
{
    return c->handles_inited && uv_is_closing((const uv_handle_t *)&c->setup_timer);
}

/* io ended (an error or the peer's hang-up was posted): it reads, writes
 * and posts nothing more. */
static inline bool qmp__io_ended(const struct qmp_conn *c) { return c->io_err.rc != 0; }

/* User commands go on the wire only in READY (the negotiated state); the
 * ones queued before wait, gated, until the row into READY releases them. */
static inline bool qmp__negotiated(const struct qmp_conn *c)
{
    return c->fsm.state == QMP_CONN_S_READY;
}

/* qmp_io.c */
int qmp__parser_init(struct qmp_conn *c);
void qmp__parser_free(struct qmp_conn *c);
int qmp__poll_start(struct qmp_conn *c, int fd);
void qmp__poll_update(struct qmp_conn *c);
/* Send bytes (copied if they cannot all go now). fd (ours, or -1) is attached
 * to the first byte and closed once sent (or at teardown). gated: the bytes
 * wait for negotiation. Returns 0 or -ENOMEM (nothing was sent); a socket
 * error fails the connection (qmp__io_fail) and returns 0. */
int qmp__tx(struct qmp_conn *c, const struct iovec *iov, int niov, int fd, bool gated);
int qmp__tx_flush(struct qmp_conn *c);
void qmp__tx_free(struct qmp_conn *c);
/* Record a fatal io error (first one wins), stop reading, post IO_FAILED. */
void qmp__io_fail(struct qmp_conn *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record why the peer went away, stop reading, post PEER_CLOSED. */
void qmp__io_eof(struct qmp_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void qmp__tcp_connected(struct qmp_conn *c);
/* The row into READY: release the commands queued before negotiation, in
 * order, and send what the socket takes. */
void qmp__tx_release(struct qmp_conn *c);

/* qmp_cmd.c */
/* Handle one complete message (the tree stays the caller's). */
void qmp__handle_msg(struct qmp_conn *c, yajl_val msg);
/* Complete every pending command with rc and reason. */
void qmp__fail_pending(struct qmp_conn *c, int rc, const char *reason);
int qmp__submit(struct qmp_conn *c, const char *cmd, struct qmp_args *args,
                const struct qmp_exec_opts *o, bool gated, qmp_reply_fn *cb, void *data);
void qmp__cmd_timer_cb(uv_timer_t *t);
void qmp__subs_free(struct qmp_conn *c);
void qmp__ids_free(struct qmp_conn *c);

/* qmp_args.c */
int qmp__gen_command(yajl_gen g, const char *cmd, const struct qmp_args *args, uint64_t id,
                     struct ls_errbuf *err);

/* A yajl_val tree built by our parser (not by yajl_tree_parse). */
void qmp__val_free(yajl_val v);

#endif
