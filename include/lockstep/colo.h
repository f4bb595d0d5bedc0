/* lockstep/colo.h - COLO and Remus replication (xl remus -c / migrate-receive --colo).
 *
 * The primary checkpoints a running guest to a secondary continuously; the
 * wire is Xen 4.17's, byte for byte (spec 4): xl's banner and header, a
 * checkpointed libxl/libxc stream on the main channel, libxl
 * CHECKPOINT_STATE records and libxc CHECKPOINT_DIRTY_PFN_LIST on the back
 * channel (the same fd for a socket). COLO: both guests run, and at each
 * checkpoint the secondary's is brought to the primary's state. Remus: the
 * secondary's copy stays paused and only stores checkpoints.
 *
 * No split brain: before the secondary holds a whole checkpoint only the
 * primary's guest runs. When the link fails the primary goes on unprotected;
 * the secondary takes over only after its fencing command (exit status 0 =
 * the primary is fenced) succeeded, else it stays paused and says why.
 * Without a fencing command it takes over as libxl does (and warns).
 *
 * Both operations run until replication ends; ls_op_cancel on the primary
 * stops in order (the secondary is told, destroys its copy and does not take
 * over); on the secondary it destroys its copy (the primary goes on
 * unprotected). Each reports once to its done callback; the outcome is
 * ls_op_colo_role() then.
 */
#ifndef LOCKSTEP_COLO_H
#define LOCKSTEP_COLO_H

#include <stdbool.h>
#include <stdint.h>

#include "lockstep/lockstep.h"

enum ls_colo_mode { LS_COLO_MODE_COLO = 0, LS_COLO_MODE_REMUS = 1 };

/* Where the guest runs, as this side knows it. */
enum ls_colo_role {
    LS_COLO_STARTING = 0,     /* before the first checkpoint completed */
    LS_COLO_PROTECTED,        /* primary: a checkpoint was acknowledged (COLO) or sent (Remus) */
    LS_COLO_UNPROTECTED,      /* primary: the secondary is lost; the guest runs on here */
    LS_COLO_STOPPED,          /* primary: stopped in order; secondary: told so, copy destroyed */
    LS_COLO_STANDBY,          /* secondary: holds a whole checkpoint (COLO: its guest runs) */
    LS_COLO_ACTIVE,           /* secondary: took over; its guest is now the only copy */
    LS_COLO_FENCE_FAILED,     /* secondary: the primary could not be fenced; copy left paused */
    LS_COLO_ENDED,            /* neither: replication never started, or this side was stopped */
};
LS_API const char *ls_colo_role_name(enum ls_colo_role r);   /* "protected", "active", ... */

struct ls_colo_checkpoint {
    unsigned number;          /* 1 = the initial migration's */
    uint32_t domid;           /* this side's domain */
    uint64_t pages;           /* primary: pages sent in it (both sides' dirty pages);
                                 secondary: pages it received and applied in it (0 on a
                                 backend whose restore reports no progress: Xen) */
    uint64_t secondary_dirty; /* primary, COLO: pages the secondary reported dirty */
    uint64_t bytes;           /* memory-task bytes of it: those pages' data */
    uint64_t pause_ns;        /* primary: suspend to resume of its guest; secondary (COLO):
                                 of its own guest at the previous checkpoint (it starts
                                 after this report) */
    char digest[65];          /* the guest's digest (primary: at suspend; secondary: once
                                 applied, before it runs); "" unless opts.digest */
};
typedef void ls_colo_checkpoint_fn(struct ls_op *op, const struct ls_colo_checkpoint *c,
                                   void *data);
typedef void ls_colo_role_fn(struct ls_op *op, enum ls_colo_role role, const char *why,
                             void *data);

struct ls_colo_primary_opts {
    uint32_t domid;
    int send_fd;               /* main channel */
    int recv_fd;               /* back channel (the same fd for a socket) */
    enum ls_colo_mode mode;
    unsigned interval_ms;      /* between checkpoints; 0 = libxl's (COLO 5000, Remus 200) */
    unsigned timeout_ms;       /* every wait for the secondary; 0 = 10 s */
    bool digest;               /* a digest at every suspend (tests; costs a pass over memory) */
    ls_colo_checkpoint_fn *on_checkpoint;
    ls_colo_role_fn *on_role;
    void *cb_data;
};

struct ls_colo_secondary_opts {
    int recv_fd;               /* main channel */
    int send_fd;               /* back channel (the same fd for a socket) */
    enum ls_colo_mode mode;
    unsigned timeout_ms;       /* deadline for the primary's next word; 0 = 10 s */
    const char *fence_cmd;     /* run by /bin/sh before taking over after a loss; NULL = none */
    bool digest;
    ls_colo_checkpoint_fn *on_checkpoint;
    ls_colo_role_fn *on_role;
    void *cb_data;
};

LS_API int ls_colo_primary_start(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                          ls_op_done_fn *done, void *data, struct ls_op **out,
                          struct ls_errbuf *err);
LS_API int ls_colo_secondary_start(struct ls_ctx *ctx, const struct ls_colo_secondary_opts *opts,
                            ls_op_done_fn *done, void *data, struct ls_op **out,
                            struct ls_errbuf *err);
/* The guest's network output (issue 16; the sim's guests have one):
 * compared as libxl's userspace proxy does it, with QEMU's colo-compare.
 * COLO primary: colo-compare (started here from `qemu`) compares our guest's
 * frames with those the secondary's proxy sends to `listen`, releases the
 * primary's to `world` while they agree and, when they do not, asks a
 * checkpoint (DO_CHECKPOINT), at whose end (COLO_CHECKPOINT) it releases
 * what it holds. Remus primary: our guest's frames go to `world` only once
 * the checkpoint covering them is sent. Secondary: our guest's frames go to
 * the primary at `peer`; after a failover what the world has not had goes
 * to `world`, and then the guest's own network does. `world` is a
 * listening SOCK_SEQPACKET unix socket, one frame per message. */
struct ls_colo_net_opts {
    const char *world;         /* the outside world's socket path; NULL = no network */
    const char *listen;        /* primary (COLO): tcp:HOST:PORT or unix:PATH for the secondary */
    const char *peer;          /* secondary (COLO): the primary's listen address */
    const char *qemu;          /* primary (COLO): the QEMU binary; NULL = qemu-system-x86_64 */
    const char *dir;           /* primary (COLO): colo-compare's sockets and log; NULL = a new
                                  directory under $TMPDIR (removed at the end) */
    unsigned compare_timeout_ms; /* colo-compare's compare_timeout; 0 = 10000 */
};
struct ls_colo_net_stats {
    uint64_t compared;         /* primary: our guest's frames given to the comparator */
    uint64_t secondary;        /* primary: the secondary's frames given to it */
    uint64_t released;         /* frames released to the world */
    uint64_t held;             /* held now: primary (COLO) compared and not released; Remus
                                  buffered; secondary: sent and not acknowledged */
    uint64_t divergences;      /* primary: DO_CHECKPOINT messages from the comparator */
    uint64_t stale;            /* primary: secondary frames of a checkpoint already past */
    uint64_t direct;           /* secondary: frames it gave the world at its failover */
    unsigned checkpoints_periodic, checkpoints_divergence, checkpoints_manual;   /* primary */
};
LS_API int ls_colo_primary_start_net(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                                     const struct ls_colo_net_opts *net, ls_op_done_fn *done,
                                     void *data, struct ls_op **out, struct ls_errbuf *err);
LS_API int ls_colo_secondary_start_net(struct ls_ctx *ctx,
                                       const struct ls_colo_secondary_opts *opts,
                                       const struct ls_colo_net_opts *net, ls_op_done_fn *done,
                                       void *data, struct ls_op **out, struct ls_errbuf *err);
/* The counters so far (any time until the op is freed); -EINVAL if op is not a COLO role. */
LS_API int ls_colo_net_stats(const struct ls_op *op, struct ls_colo_net_stats *st);

/* The guest's disks (issue 16; COLO only, HVM): replicated as libxl does
 * it, with QEMU's block replication over NBD (states/colo_disk.def). The
 * guest's disks are drives lsdisk0..N-1 of a QEMU (the sim's block QEMU).
 * As with libxl, both sides' disks must hold the same data when
 * replication starts; lockstep does not copy them. Primary: every disk of
 * the domain is replicated to the secondary's NBD server at `nbd`, from the
 * first checkpoint on (the primary's QEMU holds each as a quorum whose
 * second child is an NBD client); the disks are checkpointed before our
 * guest runs again, their replication queried after every suspend, and
 * dropped (our guest's disks run on alone, intact) when the secondary is
 * lost, replication is reported broken, or we stop. Secondary: `files` are
 * our copy's disks (the copy gets them as it is created); before its first
 * SVM_READY its QEMU exports them at `nbd` behind a replication drive whose
 * active and hidden qcow2 images go to `image_dir`, and every checkpoint
 * is applied to them before SVM_READY; at a failover the exports stop
 * first, then the replica's disks become its own. */
#define LS_COLO_DISKS_MAX 4
struct ls_colo_disk_opts {
    const char *nbd;           /* both: unix:PATH (one host) or tcp:HOST:PORT (the secondary's) */
    unsigned ndisks;           /* secondary: files given */
    const char *files[LS_COLO_DISKS_MAX];      /* secondary: absolute paths, no ',' */
    unsigned formats[LS_COLO_DISKS_MAX];       /* secondary: 0 raw, 1 qcow2 */
    const char *image_dir;     /* secondary: the active and hidden images; NULL = a new
                                  directory under $TMPDIR (removed at the end unless our
                                  copy outlives us, active or left paused: its disks use
                                  them) */
    const char *qemu_img;      /* secondary: NULL = qemu-img from PATH */
};
LS_API int ls_colo_primary_start_disks(struct ls_ctx *ctx, const struct ls_colo_primary_opts *opts,
                                       const struct ls_colo_net_opts *net,
                                       const struct ls_colo_disk_opts *disks, ls_op_done_fn *done,
                                       void *data, struct ls_op **out, struct ls_errbuf *err);
LS_API int ls_colo_secondary_start_disks(struct ls_ctx *ctx,
                                         const struct ls_colo_secondary_opts *opts,
                                         const struct ls_colo_net_opts *net,
                                         const struct ls_colo_disk_opts *disks,
                                         ls_op_done_fn *done, void *data, struct ls_op **out,
                                         struct ls_errbuf *err);
enum ls_colo_disk_state {
    LS_COLO_DISK_NONE = 0,     /* no disk replicated */
    LS_COLO_DISK_STARTING,     /* before the first checkpoint set replication up */
    LS_COLO_DISK_REPLICATING,  /* every checkpoint is applied to the secondary's disks */
    LS_COLO_DISK_BROKEN,       /* primary: QEMU reported it broken, or the secondary was lost:
                                  our guest's disks run on alone */
    LS_COLO_DISK_FAILED_OVER,  /* secondary: took over; its disks are its own */
    LS_COLO_DISK_STOPPED,      /* replication stopped in order, or ended with the role */
    LS_COLO_DISK_FAILED,       /* a disk step failed; note says QEMU's reason */
};
LS_API const char *ls_colo_disk_state_name(enum ls_colo_disk_state s);   /* "replicating", ... */
struct ls_colo_disk_stats {
    enum ls_colo_disk_state state;
    unsigned ndisks;
    unsigned checkpoints;      /* disk checkpoints (xen-colo-do-checkpoint) done */
    uint64_t checkpoint_ns;    /* the last one's QMP time (the first: the setup's) */
    char note[320];            /* why broken or failed, or what QEMU refused ("" if nothing) */
};
/* The counters so far; -EINVAL if op is not a COLO role. */
LS_API int ls_colo_disk_stats(const struct ls_op *op, struct ls_colo_disk_stats *st);

/* 0 when ctx's backend can run a role in this mode; else a negative errno
 * with the reason in err (the Xen backend refuses COLO: Debian's QEMU has no
 * block replication). The start calls check it too; a command checks it
 * before it connects or listens. */
LS_API int ls_colo_mode_supported(struct ls_ctx *ctx, enum ls_colo_mode mode,
                                  struct ls_errbuf *err);

/* Primary: take a checkpoint now instead of at the interval's end. */
LS_API int ls_colo_checkpoint(struct ls_op *op);
/* Secondary: take over now (fencing first, as after a loss). -EINVAL on a primary. */
LS_API int ls_colo_failover(struct ls_op *op);
LS_API enum ls_colo_role ls_op_colo_role(const struct ls_op *op);

/* An HVM guest's device state (EMULATOR_CONTEXT) at the checkpoint the last
 * checkpoint callback reported: digest, 16 hex digits (FNV-1a 64) of its bytes
 * as the primary's QEMU saved them, and as the secondary applied them (its
 * QEMU takes them before its guest runs; a load that fails ends replication);
 * bytes, their size; pid, the primary's QEMU that saved them (0: the stand-in
 * of --no-device-model, or the secondary); ns, the primary's QMP time for
 * them (its QEMU's stop and save, then cont), or the secondary's time to load
 * a checkpoint's into its QEMU and let it run (set once its guest runs: in a
 * checkpoint's report, the previous one's, as pause_ns). */
struct ls_colo_dm_state {
    char digest[17];
    uint64_t bytes;
    int pid;
    uint64_t ns;
};
/* Fills *out: 0; -EINVAL: op is not a COLO role; -ENOENT: no device state
 * (a PV guest, or no checkpoint yet). */
LS_API int ls_colo_dm_state(const struct ls_op *op, struct ls_colo_dm_state *out);

#endif
