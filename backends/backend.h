/* backends/backend.h - the one interface between lockstep's tables and a hypervisor.
 *
 * Two parts, as libxl and libxl-save-helper split them:
 *   (a) domain control: info, pause, unpause, suspend, resume, destroy, the
 *       toolstack's config blob, and creating an empty domain to restore into;
 *   (b) the memory task: save_memory / restore_memory read or write the whole
 *       libxc layer of a stream on a file descriptor by themselves and call
 *       back into the toolstack with exactly the contract of libxenguest's
 *       xc_domain_save / xc_domain_restore (Xen 4.17 xenguest.h).
 *
 * Every function here BLOCKS. Callers run them on a worker thread (io/work.h)
 * or on the memory-task helper thread (io/helper.h), never on the loop. All
 * functions are thread-safe for one backend instance. Errors are negative
 * errno values; a human-readable reason is written into the caller's
 * struct ls_errbuf when one is given.
 */
#ifndef LOCKSTEP_BACKEND_H
#define LOCKSTEP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep/domain.h"
#include "lockstep/errbuf.h"

/* What restore needs to create an empty domain (from the xl config, or the
 * stream when there is none: type LS_GUEST_UNSET, sizes 0 = "as it comes"). */
struct ls_domain_config {
    enum ls_guest_type type;
    unsigned vcpus;
    uint64_t memory_kib;
    char name[64];
    const char *config_json;   /* the stream's whole xl config, or NULL (borrowed) */
    bool guard;                /* destroyed by the backend if this process dies before
                                  the domain is unpaused or its guard released */
};

/* What the hypervisor side does to a domain if the toolstack process that set
 * the guard dies before clearing it: a migration's safety net against a
 * SIGKILLed lockstep (states/migrate_send.def, migrate_recv.def). RESUME: a
 * source guest stopped for a migration runs again; DESTROY: a half-received
 * guest is removed. Resuming, destroying or unpausing the domain clears it. */
enum ls_guard { LS_GUARD_NONE = 0, LS_GUARD_RESUME = 1, LS_GUARD_DESTROY = 2 };

/* Mirrors struct precopy_stats. */
struct ls_precopy_stats {
    unsigned iteration;
    unsigned long total_written;
    long dirty_count;          /* -1 if unknown */
};
#define LS_POLICY_ABORT            (-1)
#define LS_POLICY_CONTINUE_PRECOPY   0
#define LS_POLICY_STOP_AND_COPY      1

/* Mirrors struct save_callbacks; same return conventions. */
struct ls_save_callbacks {
    int (*suspend)(void *data);                                   /* 1 ok, 0 error */
    int (*precopy_policy)(struct ls_precopy_stats stats, void *data);
    int (*postcopy)(void *data);
    int (*checkpoint)(void *data);
    int (*wait_checkpoint)(void *data);
    int (*switch_qemu_logdirty)(uint32_t domid, unsigned enable, void *data); /* 0 ok */
    /* Not in xenguest.h, but in libxl-save-helper's protocol: progress. Never blocks. */
    void (*progress)(uint64_t done_bytes, uint64_t total_bytes, void *data);
    void *data;
};

/* Mirrors struct restore_callbacks; same return conventions. */
#define LS_CHECKPOINT_ERROR    0
#define LS_CHECKPOINT_SUCCESS  1
#define LS_CHECKPOINT_FAILOVER 2
struct ls_restore_callbacks {
    int (*static_data_done)(unsigned missing, void *data);       /* 0 ok */
    int (*suspend)(void *data);
    int (*postcopy)(void *data);
    int (*checkpoint)(void *data);
    int (*wait_checkpoint)(void *data);
    void (*restore_results)(uint64_t store_gfn, uint64_t console_gfn, void *data);
    void (*progress)(uint64_t done_bytes, uint64_t total_bytes, void *data);
    void *data;
};

#define LS_SAVE_LIVE  (1u << 0)   /* XCFLAGS_LIVE */
#define LS_SAVE_DEBUG (1u << 1)   /* XCFLAGS_DEBUG */
/* The guest runs again once the stream is written (save --keep): its pages
 * must be in the stream as they were, copied, not lent to a slow reader. */
#define LS_SAVE_RESUMES (1u << 2)

enum ls_stream_type { LS_STREAM_PLAIN = 0, LS_STREAM_REMUS = 1, LS_STREAM_COLO = 2 };

struct ls_save_params {
    uint32_t domid;
    int io_fd;                 /* the stream; the task writes the libxc layer here */
    int recv_fd;               /* COLO back channel, or -1 */
    unsigned flags;            /* LS_SAVE_* */
    enum ls_stream_type stream_type;
    int cancel_fd;             /* readable when the owner cancels; every wait polls it */
};

struct ls_restore_params {
    uint32_t domid;            /* from create_for_restore or adopt_for_restore */
    int io_fd;                 /* positioned at the libxc image header */
    int send_back_fd;          /* COLO back channel, or -1 */
    enum ls_stream_type stream_type;
    int cancel_fd;
    uint64_t stream_offset;    /* byte offset of io_fd's position, for error messages */
};

struct ls_backend;

/* A guest's disks as a QEMU serves them (disk_info). */
struct ls_disk_info {
    unsigned ndisks;
    char qmp_path[112];
    char log_path[256];
};

struct ls_backend_ops {
    const char *name;
    void (*close)(struct ls_backend *be);

    int (*domain_info)(struct ls_backend *be, uint32_t domid,
                       struct ls_domain_info *out, struct ls_errbuf *err);
    int (*pause)(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err);
    int (*unpause)(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err);
    /* Guest suspend protocol; returns once the domain reports "suspended". */
    int (*suspend)(struct ls_backend *be, uint32_t domid, unsigned timeout_ms,
                   struct ls_errbuf *err);
    /* xc_domain_resume: fast = the guest sees its suspend as cancelled. */
    int (*resume)(struct ls_backend *be, uint32_t domid, bool fast,
                  struct ls_errbuf *err);
    int (*destroy)(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err);
    /* The toolstack's config for the xl header (JSON text, malloc'd, NUL-terminated). */
    int (*get_config_json)(struct ls_backend *be, uint32_t domid, char **json,
                           struct ls_errbuf *err);
    /* An empty, paused domain to restore into. */
    int (*create_for_restore)(struct ls_backend *be, const struct ls_domain_config *cfg,
                              uint32_t *domid, struct ls_errbuf *err);
    /* Instead: the toolstack's own empty domain (ls_restore_opts.domid), once
     * states/restore.c found it paused, without memory and of cfg's type and
     * vCPUs. The backend's own checks (Xen: never run, its memory limit) and
     * what create_for_restore sets up that a toolstack's creation does not
     * (Xen: TSC mode, paging pool, the rings' event channels). Never destroys
     * the domain. Optional: NULL = nothing more to check or set up. */
    int (*adopt_for_restore)(struct ls_backend *be, uint32_t domid,
                             const struct ls_domain_config *cfg, struct ls_errbuf *err);
    /* A failed restore gives an adopted domain back: forget it, never destroy
     * it. Optional. */
    void (*release_for_restore)(struct ls_backend *be, uint32_t domid);

    /* The memory task: xc_domain_save / xc_domain_restore. Return 0 or -errno. */
    int (*save_memory)(struct ls_backend *be, const struct ls_save_params *p,
                       const struct ls_save_callbacks *cb, struct ls_errbuf *err);
    int (*restore_memory)(struct ls_backend *be, const struct ls_restore_params *p,
                          const struct ls_restore_callbacks *cb, struct ls_errbuf *err);
    /* Checkpointed streams (stream_type REMUS/COLO): save_memory calls back
     * after each CHECKPOINT record as xc_domain_save does (COLO: checkpoint,
     * postcopy, wait_checkpoint; Remus: postcopy, checkpoint) and reads the
     * secondary's CHECKPOINT_DIRTY_PFN_LIST from recv_fd before each later
     * checkpoint's pages; it returns (an error) once a callback answers <= 0.
     * restore_memory calls checkpoint at each CHECKPOINT, then
     * restore_results once the checkpoint is applied whole (pages after the
     * first are staged until their CHECKPOINT arrives), then (COLO)
     * postcopy, wait_checkpoint, suspend, and writes our dirty pfns to
     * send_back_fd. Unlike libxc, which returns 0 on a COLO failover, it
     * returns the error that ended the stream (EOF, reset, the deadline): the
     * domain then holds the last whole checkpoint, and the caller's tables
     * decide whether that is a failover. */

    /* See enum ls_guard; optional (NULL: the backend has no such safety net). */
    int (*set_guard)(struct ls_backend *be, uint32_t domid, enum ls_guard guard,
                     struct ls_errbuf *err);
    /* Start the domain (unpause it, or resume it: from_suspend) keeping the
     * guard it has, as one step of the hypervisor side: a COLO secondary's
     * copy is guarded from its first instant, so no death of this process
     * falls between its start and its guard (the copy would run on beside
     * the primary's). Optional: without it the caller starts the domain,
     * then sets the guard again. */
    int (*start_guarded)(struct ls_backend *be, uint32_t domid, bool from_suspend,
                         struct ls_errbuf *err);
    /* Write msg (a migration's go-ahead) whole to fd and clear the domain's
     * guard as one step of the hypervisor side, so no death of this process
     * can fall between them (guard released, go-ahead unsent: no copy would
     * run). On error the guard stays, and at most a prefix went out.
     * Optional: without it the caller clears the guard, then writes. */
    int (*hand_off)(struct ls_backend *be, uint32_t domid, int fd, const void *msg, size_t len,
                    struct ls_errbuf *err);

    /* The device model of an HVM domain (struct ls_dm_info); optional (NULL:
     * the backend does not supervise device models). */
    int (*dm_info)(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                   struct ls_errbuf *err);
    /* Start the device model of a restored HVM domain on its saved device state
     * (state_fd, read from its start to its end; the caller keeps it), as libxl
     * starts QEMU after the stream: QEMU loads it at startup (-incoming). qemu
     * is the binary (NULL: the default). Returns once QEMU's QMP socket
     * accepts connections; a QEMU that exits first is an error naming the
     * last line of its log. Optional. */
    int (*dm_start_incoming)(struct ls_backend *be, uint32_t domid, int state_fd,
                             const char *qemu, struct ls_errbuf *err);
    /* Stop (kill) the device model dm_start_incoming started for domid: a
     * failed restore into a domain the toolstack gave hands it back as it
     * came, without one. No device model is no error. Optional (with
     * dm_start_incoming). */
    int (*dm_stop)(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err);

    /* Device states loaded again and again (a COLO secondary's checkpoints) and
     * a migration's QEMU started before its downtime. Debian's QEMU 7.2 loads one
     * state per process, at startup (recipe sections 4, 9), so the backend keeps
     * a standby QEMU per domain, started ahead with -incoming defer, that takes
     * the next state and then replaces the domain's device model.
     *
     * dm_prepare_standby: start that standby (qemu: the binary; NULL: the
     * domain's own, else the default) and return at once, while QEMU starts;
     * a live standby already waiting is no error. HVM only.
     * dm_load_checkpoint: the domain's device model takes the device state in
     * state_fd (a QEMU savevm image, read from its start; the caller keeps
     * the fd). With load_state_in_place (ls_dm_info: configured, never probed)
     * its QEMU loads it itself (stop, xen-load-devices-state); otherwise the
     * standby (started now if none waits, which then costs QEMU's start) is
     * handed it (getfd, migrate-incoming) and, once it holds it, killed-and-
     * reaped old QEMU out, standby in: on return the domain's device model is
     * a QEMU paused with exactly that state (ls_dm_info.pid is the new one);
     * send it cont (devmodel CONT job) when the guest runs again. On error
     * the domain keeps the device model it had, the standby is gone, and the
     * error carries QEMU's own reason (the last lines of its log).
     * dm_discard_standby: kill and reap a standby (none is no error).
     * Destroying the domain, or dm_stop, ends its standby too. Optional. */
    int (*dm_prepare_standby)(struct ls_backend *be, uint32_t domid, const char *qemu,
                              struct ls_errbuf *err);
    int (*dm_load_checkpoint)(struct ls_backend *be, uint32_t domid, int state_fd,
                              struct ls_errbuf *err);
    int (*dm_discard_standby)(struct ls_backend *be, uint32_t domid, struct ls_errbuf *err);
    /* A role that loads the standby itself, over a QMP connection it keeps to
     * it (getfd, migrate-incoming; the QEMU monitor serves one client, so the
     * backend's own load cannot run while it is connected):
     * dm_standby_info: the standby as ls_dm_info (present 0: none; its
     * qmp_path, pid, alive and end); dm_adopt_standby: the standby, which
     * the caller saw paused with its state, replaces the domain's device
     * model (the old one killed and reaped; -ENODEV: no live standby); out
     * is the new device model, as dm_info would tell it.
     * Optional (both or neither). */
    int (*dm_standby_info)(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                           struct ls_errbuf *err);
    int (*dm_adopt_standby)(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                            struct ls_errbuf *err);

    /* No operation runs any more: release what memory tasks left for later
     * so as not to lengthen their operation's end (the sim: unmapping guest
     * memory). Optional. */
    void (*release_deferred)(struct ls_backend *be);

    /* The guest's network output (the COLO proxy's input): net_attach gives
     * an fd that reads one whole frame per recv (SOCK_SEQPACKET; the previous
     * reader is cut off); net_connect plugs the guest's output into the
     * listening SOCK_SEQPACKET unix socket at path (the outside world), so no
     * process need forward it (a COLO secondary that took over).
     * -ENODEV: the guest has no network. Optional. */
    int (*net_attach)(struct ls_backend *be, uint32_t domid, int *fd, struct ls_errbuf *err);
    int (*net_connect)(struct ls_backend *be, uint32_t domid, const char *path,
                       struct ls_errbuf *err);

    /* Why COLO proper (both copies running, their devices replicated) cannot
     * run on this backend: a negative errno with the reason, checked before a
     * COLO role starts. Remus is not asked. Optional (NULL: COLO runs). */
    int (*colo_refusal)(struct ls_backend *be, struct ls_errbuf *err);

    /* Digest of memory + vCPU + HVM state (hex, NUL-terminated); optional. */
    int (*digest)(struct ls_backend *be, uint32_t domid, char hex[65],
                  struct ls_errbuf *err);

    /* An HVM guest's disks as drives lsdisk0..N-1 of a QEMU, each a quorum of
     * one child (libxl's COLO primary drive; states/colo_disk.def replicates
     * them). disk_info: how many, and that QEMU's QMP socket and log
     * (-ENODEV: no disk). disk_attach: one more disk, the image at path
     * (format 0 raw, 1 qcow2); replica: the guest writes it through the
     * replication top (lsdiskN-top) a COLO secondary's setup adds. Optional. */
    int (*disk_info)(struct ls_backend *be, uint32_t domid, struct ls_disk_info *out,
                     struct ls_errbuf *err);
    int (*disk_attach)(struct ls_backend *be, uint32_t domid, const char *path, unsigned format,
                       bool replica, struct ls_errbuf *err);
};

struct ls_backend {
    const struct ls_backend_ops *ops;
};

/* backends/names.c: "pv", "hvm", "pvh", "unset"; "running", "paused", ...;
 * "exited with status 1", "killed by signal 9 (Killed)", "running" (the
 * public ls_guest_type_name, ls_run_state_name and ls_dm_status_text). */
const char *backend_guest_type_name(enum ls_guest_type t);
const char *backend_run_state_name(enum ls_run_state s);
const char *backend_dm_status_text(const struct ls_dm_info *dm, char *buf, size_t len);

#endif
