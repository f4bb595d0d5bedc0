/* lockstep/sim.h - the simulated hypervisor: create and drive sim domains.
 *
 * The sim backend (ls_ctx_new with LS_BACKEND_SIM) talks to lockstep-simd,
 * the daemon that holds the simulated domains outside the lockstep process,
 * as Xen holds real ones: killing lockstep leaves a guest where it was, and
 * killing the daemon is a host dying. A context starts the daemon when it is
 * not running: the binary is $LOCKSTEP_SIMD, else lockstep-simd next to
 * /proc/self/exe (or in ../backends/sim/ of a build tree), else the first one
 * in $PATH. The runtime directory is $LOCKSTEP_RUNDIR, else
 * $XDG_RUNTIME_DIR/lockstep, else /run/lockstep (root) or /tmp/lockstep-$UID.
 *
 * These calls take the context's backend (ls_ctx_backend) and BLOCK for one
 * request to the daemon. Errors: negative errno, reason in the errbuf;
 * -ECONNRESET when the daemon went away (its domains are gone with it),
 * -ESRCH for an unknown domain, -EOPNOTSUPP on a context that is not sim.
 */
#ifndef LOCKSTEP_SIM_H
#define LOCKSTEP_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockstep/domain.h"
#include "lockstep/errbuf.h"
#include "lockstep/version.h"

LS_BEGIN_DECLS

struct ls_backend;

struct ls_sim_create_args {
    enum ls_guest_type type;   /* PV, HVM or PVH */
    unsigned vcpus;            /* 1..128 */
    uint64_t memory_kib;       /* RAM, a multiple of 4; page tables etc. come on top */
    uint64_t seed;             /* content is a pure function of the seed */
    const char *name;          /* NULL or "" = "sim<domid>" */
    bool populate;             /* false: an empty, paused restore target */
    /* HVM only: LS_DM_QEMU (the default) starts a real QEMU as the domain's
     * device model (populated domains; a restore target's QEMU starts once
     * the stream's device state is in). ls_sim_create returns once its QMP
     * socket accepts connections, or fails (the domain is then destroyed)
     * naming the last line of QEMU's log if it exited first. */
    enum ls_device_model device_model;
    const char *qemu;          /* the QEMU binary; NULL = qemu-system-x86_64 from PATH */
    /* Configuration (never probed): this QEMU can load a device state while
     * running (xen-load-devices-state), which a COLO secondary needs. Only
     * for a device model known to (a patched QEMU); Debian's QEMU 7.2 aborts
     * on it. Reported by ls_domain_dm_info as load_state_in_place. */
    bool dm_load_state_in_place;
};

/* Creates a running (populate) domain. */
LS_API int ls_sim_create(struct ls_backend *be, const struct ls_sim_create_args *a, uint32_t *domid,
                         struct ls_errbuf *e);

/* All domains, sorted by domid; *out is malloc'd (free it), *n may be 0. */
LS_API int ls_sim_list(struct ls_backend *be, struct ls_domain_info **out, size_t *n,
                       struct ls_errbuf *e);

/* Domain id of the domain with this name (the first, by domid), or -ESRCH. */
LS_API int ls_sim_find(struct ls_backend *be, const char *name, uint32_t *domid, struct ls_errbuf *e);

/* Store the toolstack config (xl JSON) on a domain: get_config_json returns
 * it from then on, as libxl keeps the config of a restored domain. */
LS_API int ls_sim_set_config_json(struct ls_backend *be, uint32_t domid, const char *json,
                                  struct ls_errbuf *e);

/* The guest's own vCPU workload (backends/sim/dirty.h): while the domain
 * runs, its vCPU writes `rate` pages per second chosen by `pattern`. Write k
 * is a pure function of (seed, pattern, hot_percent, k): a fresh domain of
 * the same creation seed given `writes` (paused, rate 0) holds the state a
 * running one held after that many writes. */
enum ls_sim_dirty_pattern {
    LS_SIM_DIRTY_UNIFORM = 0, LS_SIM_DIRTY_HOTSET = 1, LS_SIM_DIRTY_SEQUENTIAL = 2,
};
struct ls_sim_workload {
    uint64_t rate;             /* pages per second while running; 0 = none */
    enum ls_sim_dirty_pattern pattern;
    unsigned hot_percent;      /* HOTSET: 1..100 */
    uint64_t seed;
    uint64_t writes;           /* get: made so far; set: replay up to this many first */
    uint64_t data_pages;       /* get: pages the vCPU may write */
};
LS_API int ls_sim_set_workload(struct ls_backend *be, uint32_t domid, const struct ls_sim_workload *w,
                               struct ls_errbuf *e);
LS_API int ls_sim_get_workload(struct ls_backend *be, uint32_t domid, struct ls_sim_workload *w,
                               struct ls_errbuf *e);
/* "uniform", "sequential" or "hotset:PERCENT"; -EINVAL otherwise. */
LS_API int ls_sim_parse_pattern(const char *s, enum ls_sim_dirty_pattern *p, unsigned *hot_percent);
/* The same spelling back ("hotset:5"), into buf. */
LS_API const char *ls_sim_pattern_name(enum ls_sim_dirty_pattern p, unsigned hot_percent, char *buf,
                                       size_t len);

/* The guest's network output (backends/sim/README.md, "Network"): every
 * `every` writes its vCPU sends one frame, a pure function of its state, so
 * two copies at the same state send the same frames; nondet_ppm per million
 * of them carry a host-random value instead (stored in guest memory first).
 * set: every, nondet_ppm, rng_seed (0 = from the clock); get: all. */
struct ls_sim_net {
    uint64_t every;            /* a frame every this many writes; 0 = no network */
    unsigned nondet_ppm;       /* nondeterministic frames per million, 0..1000000 */
    uint64_t rng_seed;         /* the host-local randomness; 0 = from the clock */
    bool attached;             /* get: a reader is attached */
    uint64_t frames, nondet;   /* get: frames made so far; of them nondeterministic */
    uint64_t dropped, sent;    /* get: lost (no reader, queue full); handed to the reader */
};
LS_API int ls_sim_set_net(struct ls_backend *be, uint32_t domid, const struct ls_sim_net *n,
                          struct ls_errbuf *e);
LS_API int ls_sim_get_net(struct ls_backend *be, uint32_t domid, struct ls_sim_net *n,
                          struct ls_errbuf *e);
/* The guest's frames from now on: *fd reads one whole frame per recv()
 * (a SOCK_SEQPACKET socket; EOF when the domain goes or another reader
 * attaches). Close it when done. */
LS_API int ls_sim_net_attach(struct ls_backend *be, uint32_t domid, int *fd, struct ls_errbuf *e);

/* A sim frame: Ethernet II 02:4c:53:00:00:02 -> 02:4c:53:00:00:01, IPv4
 * 10.76.83.2 -> 10.76.83.1 (id = seq & 0xffff, header checksum set), UDP
 * from port 49152 + seq % 16384 (a port per frame, as DNS clients do) to 9
 * (checksum set), then 40 payload bytes, big endian: "LSNT", u32 flags
 * (1 = nondeterministic), u64 seq, u64 writes (k + 1), u64 word, u64 check
 * (a hash of the four before it). */
#define LS_SIM_FRAME_LEN 82u
struct ls_sim_frame {
    uint64_t seq;              /* frame number: 0, 1, 2, ... */
    uint64_t writes;           /* the guest's write count when it sent it */
    uint64_t word;             /* the word that write left in its memory */
    bool nondet;
};
/* 0, or -EINVAL if buf is not a well-formed sim frame (any byte). */
LS_API int ls_sim_frame_parse(const void *buf, size_t len, struct ls_sim_frame *f);

/* The guest's disks (backends/sim/README.md, "Disks"): an HVM guest's file
 * becomes drive lsdiskN of its block QEMU (a QEMU of its own beside the
 * device model, so that a device-state swap leaves the disks alone; the
 * drive is a quorum of one child, libxl's COLO primary drive, so either COLO
 * role can stack on it). With every > 0, every
 * `every`-th write of its vCPU also writes one disk block through QEMU: disk
 * write j fills `block` bytes of disk j % ndisks at a block picked by (seed,
 * j) with the byte 1 + j % 255, so the disks after K vCPU writes are a pure
 * function of the seed and K (ls_sim_disk_write_at says where write j went).
 * A pause or suspend returns once every owed write is in QEMU. top: write
 * through lsdiskN-top, a COLO replica's view (states/colo_disk.def). */
enum ls_sim_disk_format { LS_SIM_DISK_RAW = 0, LS_SIM_DISK_QCOW2 = 1 };
struct ls_sim_disks {
    uint64_t every;            /* a disk write every this many vCPU writes; 0 = none */
    unsigned block;            /* bytes per disk write: a power of two, 512..1 MiB (0: 64 KiB) */
    bool top;                  /* write lsdiskN-top (a COLO replica), not lsdiskN */
    unsigned ndisks;           /* get: disks attached */
    uint64_t owed, written;    /* get: disk writes the vCPU asked for; of them made */
    unsigned failed;           /* get: writes QEMU refused */
    char last_error[200];      /* get: QEMU's last refusal, "" if none */
    int pid;                   /* get: the block QEMU's pid (0: none runs) */
    char qmp_path[112];        /* get: its QMP socket, for COLO's disk jobs */
    char log_path[256];        /* get: its log */
};
/* Attach a disk image (an absolute path without ','): it is a drive of
 * every QEMU the domain gets, at once for a running one. */
LS_API int ls_sim_attach_disk(struct ls_backend *be, uint32_t domid, const char *path,
                              enum ls_sim_disk_format format, struct ls_errbuf *e);
LS_API int ls_sim_set_disks(struct ls_backend *be, uint32_t domid, const struct ls_sim_disks *d,
                            struct ls_errbuf *e);
LS_API int ls_sim_get_disks(struct ls_backend *be, uint32_t domid, struct ls_sim_disks *d,
                            struct ls_errbuf *e);
/* Where disk write j of a guest created with seed went: its disk, byte offset
 * and fill byte, for disks of `sizes` bytes each (ndisks of them). */
LS_API void ls_sim_disk_write_at(uint64_t seed, uint64_t j, unsigned block, unsigned ndisks,
                                 const uint64_t *sizes, unsigned *disk, uint64_t *offset,
                                 uint8_t *fill);

/* The pid of the daemon this backend talks to. */
LS_API int ls_sim_daemon_pid(struct ls_backend *be, int *pid, struct ls_errbuf *e);

/* The runtime directory the client and daemon agree on (see above). */
LS_API int ls_sim_rundir(char *buf, size_t len);

/* The daemon's memory pool (lockstep-simd --memory-pool: a destroyed guest's
 * memory allocated again in the background, as Xen's heap keeps pages for
 * the next guest). For benchmarks, which wait for refills to end so that
 * they do not time one, and say which memory a guest had. */
struct ls_sim_pool_status {
    uint32_t ready;            /* memory files ready for the next guests */
    uint32_t ready_mib;        /* their size */
    uint32_t filling;          /* refills still allocating */
    uint32_t taken;            /* memory files domains took from the pool so far */
    bool huge_pages;           /* guest memory in 2 MiB pages (--huge-pages) */
};
LS_API int ls_sim_pool_status(struct ls_backend *be, struct ls_sim_pool_status *st,
                              struct ls_errbuf *e);

/* A sim domain's memory mapped into this process, as a save maps a guest's
 * pages (Xen: privcmd's foreign mappings): for tools and benchmarks that read
 * or prepare a guest's memory outside an operation. Page pfn is at
 * mem + pfn * 4096 and at offset pfn * 4096 of fd; frame[pfn] is
 * LS_SIM_FRAME_ABSENT for a pfn without memory (reading it gives zeros).
 * Unmap it (which closes fd) before destroying the domain. */
#define LS_SIM_FRAME_ABSENT 0xFFu
struct ls_sim_memory {
    uint8_t *mem;              /* p2m_size pages, shared with the guest */
    const uint8_t *frame;      /* p2m_size bytes: LS_SIM_FRAME_ABSENT or a page type */
    uint64_t p2m_size;         /* pages */
    int fd;                    /* the guest's memory file (a memfd, or a huge-page file) */
};
LS_API int ls_sim_map_memory(struct ls_backend *be, uint32_t domid, bool writable,
                             struct ls_sim_memory *out, struct ls_errbuf *e);
LS_API void ls_sim_unmap_memory(struct ls_sim_memory *m);

/* The standby QEMU ls_domain_dm_prepare_standby started for the domain's next
 * device state (present false when there is none), as ls_domain_dm_info
 * describes the one in service: its pid, and the QMP socket that greets once
 * it is ready to take a state. */
LS_API int ls_sim_dm_standby_info(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                                  struct ls_errbuf *e);

LS_END_DECLS

#endif
