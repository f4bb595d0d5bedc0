/* states/migrate.h - the migration roles (migrate_send.def, migrate_receive.def)
 * and what they share: xl's handshake messages (spec 3.3) and their I/O. */
#ifndef LOCKSTEP_STATES_MIGRATE_H
#define LOCKSTEP_STATES_MIGRATE_H

#include "io/tls.h"
#include "states/op.h"
#include "states/devmodel.h"

#define FSM_PREFIX MIGRATE_SEND
#define FSM_DEF_FILE "states/migrate_send.def"
#include "fsm/gen_enums.h"

#define FSM_PREFIX MIGRATE_RECEIVE
#define FSM_DEF_FILE "states/migrate_receive.def"
#include "fsm/gen_enums.h"

/* xl's messages. The banner goes without its NUL; the others with it. */
#define MIG_BANNER   "xl migration receiver ready, send binary domain data.\n"
#define MIG_RECEIVED "domain received, ready to unpause"
#define MIG_GO       "domain is yours, you are cleared to unpause"
#define MIG_REPORT   "my copy unpause results are as follows"
#define MIG_BANNER_LEN   (sizeof(MIG_BANNER) - 1)
#define MIG_RECEIVED_LEN sizeof(MIG_RECEIVED)
#define MIG_GO_LEN       sizeof(MIG_GO)
#define MIG_REPORT_LEN   sizeof(MIG_REPORT)

#define MIG_DEFAULT_TIMEOUT_MS 60000u

/* Read exactly `len` bytes of fd and check they are `want`. Errors name the
 * peer, what was awaited and what came instead: -ENODATA (the peer closed the
 * connection), -ETIMEDOUT, -EPROTO (other bytes), or the read's error. */
int mig_expect(int fd, const char *want, size_t len, int cancel_fd, const char *peer,
               const char *what, unsigned timeout_ms, struct ls_errbuf *err);
/* Write a message whole; errors name the peer and the message. */
int mig_send(int fd, const void *msg, size_t len, int cancel_fd, const char *peer,
             const char *what, struct ls_errbuf *err);
/* The TLS handshake on a role's fds (tls NULL: a plain connection, nothing
 * to do): the step's event is ok_ev, or failed_ev with io_err saying why. */
int mig_tls_handshake(struct io_tls *tls, int recv_fd, int send_fd, int cancel_fd,
                      struct ls_errbuf *io_err, int ok_ev, int failed_ev);
/* A role's session for opts (NULL when opts->creds_dir is NULL). */
int mig_tls_new(struct io_tls **out, const struct ls_tls_opts *opts, enum io_tls_role role,
                struct ls_errbuf *err);
/* Prepare a peer fd: non-blocking, with the stall limit. */
int mig_prepare_fd(int fd, unsigned timeout_ms, struct ls_errbuf *err);

struct migrate_send_role {
    struct ls_op op;               /* first: the API's handle */
    struct fsm m;                  /* migrate_send.def */
    struct ls_migrate_opts opts;
    struct ls_op *save;            /* the save role, a joined child */
    struct fsm_join join;
    /* An HVM guest's QEMU, stopped by the completed save: let run again
     * (cont) with our copy after a failure (CONTINUING_DM). */
    struct dm_task dm_cont;
    struct fsm_join dm_cont_join;
    uint8_t status;                /* the receiver's status byte */
    bool source_suspended;         /* known after a failed resume or a settle */
    struct ls_errbuf io_err;       /* a work's failure it reports as an event */
    struct ls_errbuf settle_err;   /* why the settle failed (SETTLE_FAILED) */
    struct io_tls *tls;            /* opts.tls: the session, credentials loaded at start */
};

struct migrate_receive_role {
    struct ls_op op;
    struct fsm m;                  /* migrate_receive.def */
    struct ls_migrate_receive_opts opts;
    struct ls_op *restore;         /* the restore role, a joined child */
    struct fsm_join join;
    uint32_t domid;                /* our copy, once the restore reported it (0: none) */
    uint8_t status;                /* what we report (0 = runs) */
    struct ls_errbuf io_err;       /* a work's failure it reports as an event */
    struct io_tls *tls;            /* opts.tls: the session, credentials loaded at start */
};

/* ls_tls_check_creds: load o's credentials as that side would. */
int mig_tls_check_creds(const struct ls_tls_opts *o, bool receiver, struct ls_errbuf *err);

/* Start a migration's sender or receiver (ls_migrate_start,
 * ls_migrate_receive_start); the role reports through op->done. */
int migrate_send_start(struct ls_ctx *ctx, const struct ls_migrate_opts *opts,
                       ls_op_done_fn *done, void *data, struct ls_op **out,
                       struct ls_errbuf *err);
int migrate_receive_start(struct ls_ctx *ctx, const struct ls_migrate_receive_opts *opts,
                          ls_op_done_fn *done, void *data, struct ls_op **out,
                          struct ls_errbuf *err);

#endif
