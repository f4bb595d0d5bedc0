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

#include "lockstep/domain.h"
#include "lockstep/errbuf.h"
#include "lockstep/version.h"

LS_BEGIN_DECLS

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

LS_API int ls_ctx_new(struct ls_ctx **out, uv_loop_t *loop, enum ls_backend_kind kind,
                      struct ls_errbuf *err);
/* All operations must have finished (their done callback run). */
LS_API void ls_ctx_free(struct ls_ctx *ctx);
/* The context's hypervisor backend, for the sim calls of lockstep/sim.h. */
LS_API struct ls_backend *ls_ctx_backend(struct ls_ctx *ctx);

typedef void ls_op_done_fn(struct ls_op *op, int rc, const char *errmsg, void *data);

/* When a live save stops pre-copying (its answer to libxenguest's
 * precopy_policy callback). Zero fields take Xen's default policy: stop after
 * 5 rounds, or as soon as fewer than 50 pages are dirty. */
struct ls_precopy_policy {
    unsigned max_rounds;         /* pre-copy rounds after the first full one; 0 = 5 */
    unsigned dirty_threshold;    /* stop once fewer pages are dirty; 0 = 50 */
    unsigned target_downtime_ms; /* also stop once the dirty pages would take no longer
                                    than this at the throughput measured so far; 0 = off */
};

struct ls_save_opts {
    uint32_t domid;
    int fd;                    /* where the stream goes: file, pipe or socket */
    enum ls_format format;
    bool keep_domain;          /* resume the guest after a successful save (xl save -c) */
    bool live;                 /* pre-copy while the guest runs (XCFLAGS_LIVE) */
    struct ls_precopy_policy precopy;   /* live saves only */
    bool leave_suspended;      /* on success leave the guest suspended: the caller
                                  destroys or resumes it (a migration's sender) */
    bool no_digest;            /* skip the backend's digest at suspend (benchmarks) */
};

struct ls_restore_opts {
    int fd;                    /* the stream: xl or libxl format, detected */
    bool unpause;              /* unpause the restored guest (xl restore does; -p keeps it paused) */
    bool guard;                /* the backend destroys the new domain if this process
                                  dies before unpausing it (a migration's receiver) */
    bool no_digest;            /* skip the backend's digest of the result (benchmarks) */
    uint32_t domid;            /* 0 = lockstep creates the domain from the stream's config.
                                  Else the toolstack's own domain to restore into: paused,
                                  never run, no memory yet (Xen: created, its vCPUs and
                                  memory limit set, not built), of the stream's type, with
                                  its vCPUs and room for its memory. lockstep never destroys
                                  it: on any failure it is left to the toolstack (as it was
                                  if refused before the stream's memory came, else paused
                                  and partly restored). Not with guard. */
    /* An HVM stream whose EMULATOR_CONTEXT is a real QEMU's state: LS_DM_QEMU
     * (the default) starts the domain's QEMU on it (-incoming) once the memory
     * is in, checks that it loaded, and lets it run (cont) when the domain is
     * unpaused (with guard: at once, as the caller unpauses at its go-ahead); LS_DM_STANDIN refuses such a stream (a stand-in's state
     * restores either way). qemu: the binary; NULL = qemu-system-x86_64. */
    enum ls_device_model device_model;
    const char *qemu;
};

/* ---- live migration (xl migrate / xl migrate-receive, spec 3.3) ------------
 *
 * The sender pre-copies a running guest into send_fd as `xl migrate` does
 * (xl header, libxl stream with LIVE) and runs xl's handshake on the back
 * channel: the receiver's banner, "domain received", the sender's go-ahead,
 * the receiver's unpause report and status byte. Rule: at most one copy ever
 * runs. Until the go-ahead is written the sender keeps the guest and resumes
 * it after any failure; after it, the sender never resumes on its own
 * unless the receiver reported that its copy did not start. Both fds (one
 * socket may serve both directions) are switched to non-blocking mode; every
 * wait for the peer gives up after timeout_ms with no byte moving. */
/* TLS 1.3 on a migration's connection (GnuTLS), both ends authenticated by
 * X.509 certificates of one CA. The sender is the TLS client and the
 * receiver the TLS server, which requires the client's certificate. The
 * handshake is the first step of either role (states/migrate_*.def): a peer
 * that fails it is refused before the guard is armed, a byte of the stream
 * moves or a domain is created, and the error says why (GnuTLS's
 * verification text, or the peer's alert). Everything after it, the stream
 * and xl's handshake messages, goes in TLS records over send_fd/recv_fd (a
 * socket, or two fds: records go out on send_fd and come in on recv_fd). */
struct ls_tls_opts {
    /* NULL: a plain connection. Else a directory laid out as QEMU's
     * tls-creds-x509 object wants it: ca-cert.pem (the CA that signs both
     * ends; ca-crl.pem too, if present); the receiver's server-cert.pem and
     * server-key.pem; the sender's client-cert.pem and client-key.pem. */
    const char *creds_dir;
    /* A pattern (fnmatch(3), case-insensitive) that the peer certificate's
     * subject CN or one of its subjectAltNames (DNS name, IP address) must
     * match, e.g. "dst-*.example.org". NULL: the sender checks the
     * receiver's certificate against peer_name (GnuTLS's hostname rules);
     * the receiver accepts any certificate the CA signed. */
    const char *allow;
    /* Sender, with allow NULL: the receiver's name as dialled (NULL: no name
     * check, any certificate of the CA). */
    const char *peer_name;
};

/* Load o's credentials as the receiver (or the sender) would, and say what
 * is wrong with them: for a toolstack (or the CLI) to refuse a bad directory
 * before it listens or connects. 0, or the error ls_migrate_start would give. */
LS_API int ls_tls_check_creds(const struct ls_tls_opts *o, bool receiver, struct ls_errbuf *err);

struct ls_migrate_opts {
    uint32_t domid;
    int send_fd;               /* the stream, then the go-ahead */
    int recv_fd;               /* the receiver's messages (the same fd for a socket) */
    struct ls_precopy_policy precopy;
    unsigned timeout_ms;       /* every wait for the receiver; 0 = 60 s */
    bool no_digest;            /* skip the digest at suspend (benchmarks) */
    struct ls_tls_opts tls;    /* creds_dir NULL: plain */
};

struct ls_migrate_receive_opts {
    int recv_fd;               /* the stream, then the go-ahead */
    int send_fd;               /* banner, confirmations, report (the same fd for a socket) */
    unsigned timeout_ms;       /* every wait for the sender; 0 = 60 s */
    bool paused;               /* leave the guest paused after the go-ahead (xl -p) */
    bool no_digest;            /* skip the digest of the received state (benchmarks) */
    struct ls_tls_opts tls;    /* creds_dir NULL: plain */
};

/* Where the guest is once a migration finished, as each side knows it. */
enum ls_migrate_outcome {
    LS_MIGRATE_UNFINISHED = 0,
    LS_MIGRATE_DESTINATION_RUNS,   /* confirmed: it runs at the destination, the source
                                      copy is destroyed */
    LS_MIGRATE_SOURCE_LEFT,        /* sender: confirmed, but the source copy could not be
                                      destroyed: it is left suspended */
    LS_MIGRATE_RUNS_UNCONFIRMED,   /* receiver: it runs here, but the sender never got the
                                      report: the source copy is left suspended there */
    LS_MIGRATE_SOURCE_RUNS,        /* failed before the go-ahead: it runs at the source,
                                      no copy at the destination */
    LS_MIGRATE_SOURCE_SUSPENDED,   /* sender: failed and the guest could not be resumed:
                                      it is suspended at the source */
    LS_MIGRATE_UNCONFIRMED,        /* sender: the go-ahead was written, no report came:
                                      the guest is left suspended here; the destination
                                      runs it if the go-ahead arrived, else has no copy */
    LS_MIGRATE_NOT_RECEIVED,       /* receiver: no copy here (none was started, any partial
                                      one destroyed): the guest stays with the sender */
};
LS_API const char *ls_migrate_outcome_text(enum ls_migrate_outcome o);

LS_API int ls_save_start(struct ls_ctx *ctx, const struct ls_save_opts *opts, ls_op_done_fn *done,
                         void *data, struct ls_op **out, struct ls_errbuf *err);
LS_API int ls_migrate_start(struct ls_ctx *ctx, const struct ls_migrate_opts *opts,
                            ls_op_done_fn *done, void *data, struct ls_op **out,
                            struct ls_errbuf *err);
LS_API int ls_migrate_receive_start(struct ls_ctx *ctx, const struct ls_migrate_receive_opts *opts,
                                    ls_op_done_fn *done, void *data, struct ls_op **out,
                                    struct ls_errbuf *err);
LS_API int ls_restore_start(struct ls_ctx *ctx, const struct ls_restore_opts *opts,
                            ls_op_done_fn *done, void *data, struct ls_op **out,
                            struct ls_errbuf *err);

/* Ask the operation to stop; done follows (with -ECANCELED unless it had
 * already finished). The guest is left as before the save; a partial restore
 * is destroyed (unless the toolstack gave the domain: ls_restore_opts.domid). */
LS_API void ls_op_cancel(struct ls_op *op);
/* Only after done has been called. */
LS_API void ls_op_free(struct ls_op *op);

/* Bytes of the stream moved so far, and the expected total (0 if unknown). */
LS_API void ls_op_progress(const struct ls_op *op, uint64_t *done_bytes, uint64_t *total_bytes);
/* The memory task's page phase, timed by the task itself: the CLOCK_MONOTONIC
 * times of the first and the last change of ls_op_progress's count, and the
 * bytes that count moved between the two (what the first change brought is
 * before first_ns, so bytes / (last_ns - first_ns) is the phase's rate). All
 * 0 until the count has moved; final once done has been called. */
struct ls_page_phase {
    uint64_t first_ns, last_ns;
    uint64_t bytes;
};
LS_API void ls_op_page_phase(const struct ls_op *op, struct ls_page_phase *out);
/* The domain an operation acted on (restore: the new domain). */
LS_API uint32_t ls_op_domid(const struct ls_op *op);
/* Hex digest of the domain's memory, vCPU and HVM state where the backend
 * offers one (sim): for a save, taken once the guest is suspended (the state
 * the stream carries); for a restore, of the restored domain. "" otherwise. */
LS_API const char *ls_op_digest(const struct ls_op *op);

/* A live save's pre-copy so far (as its precopy_policy answers saw it). */
struct ls_precopy_progress {
    unsigned round;            /* the live round under way or last sent, from 0 (the
                                  full one); round + 1 live rounds once the guest is
                                  suspended */
    uint64_t pages_sent;       /* pages sent in all rounds (precopy_stats.total_written) */
    long dirty_pages;          /* dirty pages found for the latest round; -1 before */
    double pages_per_s;        /* measured send rate; 0 until known */
    bool final_round;          /* the guest is suspended: the last round is under way */
    uint64_t bytes_at_suspend; /* page bytes sent before the suspend (ls_op_progress's
                                  count then): the final round is what came after */
};
LS_API void ls_op_precopy(const struct ls_op *op, struct ls_precopy_progress *out);
/* CLOCK_MONOTONIC ns: when the guest was suspended (save, migrate) or resumed
 * (migrate-receive); 0 if it was not. */
LS_API uint64_t ls_op_suspended_ns(const struct ls_op *op);
LS_API uint64_t ls_op_resumed_ns(const struct ls_op *op);
LS_API enum ls_migrate_outcome ls_op_migrate_outcome(const struct ls_op *op);

/* A size as lockstep's commands take one ("--memory 512M"): decimal digits,
 * then nothing (bytes) or K, M, G, T (either case, powers of 1024),
 * optionally followed by "iB", "i" or "B". 0, -EINVAL (not a size) or
 * -ERANGE (more than 2^64 - 1 bytes). */
LS_API int ls_parse_size(const char *s, uint64_t *bytes);

LS_END_DECLS

#endif
