/* backends/sim/proto.h - the wire between lockstep (client) and lockstep-simd.
 *
 * The sim daemon plays the hypervisor: domains live in it, outside any
 * lockstep process, as Xen domains live outside the toolstack. The protocol is
 * request/response on a unix stream socket, one request in flight per
 * connection:
 *
 *     request:  struct simp_hdr (status 0) + len bytes of payload
 *     reply:    struct simp_hdr (same op, status 0 or -errno) + len bytes
 *
 * All integers are host endian (both ends run on the same host). An error
 * reply's payload is a human-readable reason (no NUL). File descriptors
 * (MAP) travel as SCM_RIGHTS ancillary data with the first bytes of the
 * reply header.
 *
 * Guest memory sharing (the privcmd analogue): MAP returns two memfds,
 *   [0] guest memory, p2m_size * 4096 bytes, sparse (holes read as zero);
 *   [1] frame info, p2m_size bytes, one per pfn: SIMP_FRAME_ABSENT if the pfn
 *       is not populated, else the libxc page type (enum libxc_page_type:
 *       NOTAB, L1TAB..L4TAB, optionally | LPINTAB).
 * Both are mapped MAP_SHARED by the client. A restorer populates pages by
 * writing the page bytes into [0] and then the type byte into [1] itself:
 * there is no per-page request, the daemon reads [1] whenever it needs the
 * populated set (info, digest). This keeps restore at one copy per page.
 *
 * Versioning: HELLO carries SIMP_VERSION both ways; the daemon refuses any
 * other version in any header (error reply, then it closes the connection).
 */
#ifndef LOCKSTEP_BACKENDS_SIM_PROTO_H
#define LOCKSTEP_BACKENDS_SIM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SIMP_MAGIC   0x4D49534Cu          /* "LSIM" read as little endian */
#define SIMP_VERSION 2u
#define SIMP_MAX_PAYLOAD (16u << 20)      /* largest request or reply body */
#define SIMP_ERRMSG_MAX 400u
#define SIMP_NAME_LEN 64u
#define SIMP_PATH_LEN 256u               /* a device-model binary or file path */
#define SIMP_SUN_LEN 112u                /* a unix socket path (sun_path is 108) */
#define SIMP_FRAME_ABSENT 0xFFu

/* Limits the daemon enforces (a hypervisor has them too). */
#define SIMP_MAX_DOMAINS 1024u
#define SIMP_MAX_VCPUS   128u
#define SIMP_MAX_MEMORY_KIB (UINT64_C(64) << 20)      /* 64 GiB */
#define SIMP_MAX_P2M  (SIMP_MAX_MEMORY_KIB / 4 + 0x100000u)
/* p2m size of a restore target whose memory size is unknown (16 GiB). */
#define SIMP_RESTORE_DEFAULT_P2M 0x400000u

/* Flags of UNPAUSE and RESUME: starting a domain clears its guard (it is
 * whole, or runs again) unless KEEP_GUARD says the client still wants it. */
#define SIMP_RUN_FAST       1u
#define SIMP_RUN_KEEP_GUARD 2u

enum simp_op {
    SIMP_OP_HELLO    = 1,   /* -> struct simp_hello */
    SIMP_OP_CREATE   = 2,   /* struct simp_create -> u32 domid */
    SIMP_OP_LIST     = 3,   /* -> struct simp_dominfo[] */
    SIMP_OP_INFO     = 4,   /* domid -> struct simp_dominfo */
    SIMP_OP_PAUSE    = 5,
    SIMP_OP_UNPAUSE  = 6,   /* kind: SIMP_RUN_KEEP_GUARD or 0 */
    SIMP_OP_SUSPEND  = 7,   /* a running guest cooperates at once */
    SIMP_OP_RESUME   = 8,   /* kind: SIMP_RUN_FAST (a cancelled suspend) | SIMP_RUN_KEEP_GUARD */
    SIMP_OP_DESTROY  = 9,
    SIMP_OP_MAP      = 10,  /* -> u64 p2m_size + 2 fds (see above) */
    SIMP_OP_GET      = 11,  /* kind, index -> blob */
    SIMP_OP_SET      = 12,  /* kind, index, blob */
    SIMP_OP_DIGEST   = 13,  /* -> 64 hex characters */
    SIMP_OP_LOGDIRTY = 14,  /* kind = enum simp_logdirty_op -> struct simp_logdirty [+ bitmap] */
    SIMP_OP_GUARD    = 15,  /* kind = enum simp_guard: what happens if this client is lost */
    SIMP_OP_HANDOFF  = 16,  /* payload = a message, 1 fd: write it there, then clear the guard */
    SIMP_OP_DM_INFO  = 17,  /* -> struct simp_dm_info: the domain's device model */
    SIMP_OP_DM_START = 18,  /* struct simp_dm_start + 1 fd (device state): start its QEMU
                               with -incoming on that state (a restore) */
    SIMP_OP_DM_STOP  = 19,  /* kill and reap the QEMU DM_START started (and any standby):
                               a failed restore gives the domain back without one */
    SIMP_OP_DM_STANDBY = 20, /* kind 0: struct simp_dm_start: start a standby QEMU
                                (-incoming defer) unless a live one waits; kind 1:
                                kill and reap the standby */
    SIMP_OP_DM_LOAD  = 21,  /* 1 fd (a device state): the domain's device model takes it
                               (in place if configured so, else the standby, which then
                               replaces it); replies once QEMU is paused with it */
    SIMP_OP_NET      = 22,    /* kind = enum simp_net_op: the guest's network output */
    SIMP_OP_DISK     = 23,    /* kind = enum simp_disk_op: the guest's disks (disk.h) */
    SIMP_OP_MAX_     = 24,
};

/* State kinds for GET/SET; `index` is the vCPU for the VCPU_* kinds. */
enum simp_kind {
    SIMP_K_VCPU_BASIC    = 1,   /* PV: 64-bit vcpu_guest_context, 5168 bytes */
    SIMP_K_VCPU_EXTENDED = 2,   /* PV: <= 128 bytes */
    SIMP_K_VCPU_XSAVE    = 3,   /* PV: >= 16 bytes */
    SIMP_K_VCPU_MSRS     = 4,   /* PV: multiple of 16 bytes */
    SIMP_K_SHARED_INFO   = 5,   /* PV: 4096 bytes */
    SIMP_K_TSC_INFO      = 6,   /* struct libxc_x86_tsc_info */
    SIMP_K_HVM_CONTEXT   = 7,   /* HVM/PVH: Xen save record list */
    SIMP_K_HVM_PARAMS    = 8,   /* HVM/PVH: struct libxc_hvm_param[]; GET gives the non-zero ones */
    SIMP_K_CPUID_POLICY  = 9,   /* struct libxc_cpuid_leaf[] */
    SIMP_K_MSR_POLICY    = 10,  /* struct libxc_msr_entry[] */
    SIMP_K_PV_INFO       = 11,  /* struct libxc_x86_pv_info */
    SIMP_K_P2M_FRAMES    = 12,  /* PV: struct libxc_x86_pv_p2m_frames + u64 pfn[] */
    SIMP_K_DOMAIN_TYPE   = 13,  /* u32 enum ls_guest_type; SET only while UNSET */
    SIMP_K_VCPUS         = 14,  /* u32; SET only while 0 (unknown) */
    SIMP_K_CONFIG_JSON   = 15,  /* toolstack config text (GET generates one if unset) */
    SIMP_K_WORKLOAD      = 16,  /* struct simp_workload: the guest vCPU's memory writes */
    SIMP_K_MAX_          = 17,
};

struct simp_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t op;
    uint32_t domid;
    uint16_t kind;
    uint16_t index;
    uint32_t len;      /* payload bytes following the header */
    int32_t status;    /* replies: 0 or -errno */
};

struct simp_hello {
    uint32_t version;
    uint32_t pid;
    uint32_t ndomains;
    uint32_t pool_filling;     /* memory pool (mempool.h): refills still allocating, */
    uint32_t pool_ready;       /* memfds ready, */
    uint32_t pool_ready_mib;   /* their allocated MiB, */
    uint32_t pool_taken;       /* and memfds domains took from it so far */
    uint32_t flags;            /* SIMP_HELLO_* */
};
/* Guest memory is backed by 2 MiB pages (lockstep-simd --huge-pages). */
#define SIMP_HELLO_HUGE_PAGES 1u

#define SIMP_CREATE_POPULATE 1u
/* A restore target the daemon destroys if the creating client is lost before
 * it unpauses or releases it (SIMP_GUARD_NONE): no orphan partial domain. */
#define SIMP_CREATE_GUARD    2u
/* Configuration, never probed: this domain's QEMU can take
 * xen-load-devices-state while running (SIMP_DM_CAP_LOAD_STATE_IN_PLACE). */
#define SIMP_CREATE_DM_LOAD_STATE_IN_PLACE 4u
struct simp_create {
    uint32_t type;         /* enum ls_guest_type */
    uint32_t vcpus;        /* 0 = unknown (restore target only) */
    uint64_t memory_kib;   /* 0 = unknown (restore target only) */
    uint64_t seed;
    uint32_t flags;        /* SIMP_CREATE_* */
    uint32_t device_model; /* enum simp_dm: what a populated HVM domain gets */
    char name[SIMP_NAME_LEN];  /* NUL-terminated; empty = "sim<domid>" */
    char qemu[SIMP_PATH_LEN];  /* the QEMU binary; empty = qemu-system-x86_64 in PATH */
};

/* The device model of an HVM domain, as libxl starts one per HVM guest: the
 * daemon (the host) spawns a real QEMU for a populated HVM domain at create,
 * or, for a restore target, once the stream's device state is in hand
 * (DM_START). The QEMU runs headless and paused (-S), QMP on a unix socket in
 * the domain's private directory <rundir>/domain-<domid>/ (mode 0700), its
 * output in qemu.log there. It dies with the domain (destroy kills and reaps
 * it) and with the daemon (PR_SET_PDEATHSIG). A QEMU that dies on its own is
 * reaped and reported by DM_INFO (alive 0, its wait status), not hidden. */
enum simp_dm {
    SIMP_DM_QEMU    = 0,   /* HVM: a real QEMU; PV/PVH: none */
    SIMP_DM_STANDIN = 1,   /* HVM without a process (lockstep's in-process stand-in) */
};
/* Capabilities a device model reports (simp_dm_info.caps). */
#define SIMP_DM_CAP_LOAD_STATE_IN_PLACE 1u   /* xen-load-devices-state into a running
                                                QEMU is safe (never for QEMU 7.2: it aborts) */
struct simp_dm_info {
    uint32_t present;      /* a QEMU was started for this domain */
    uint32_t alive;        /* it has not exited (the daemon reaps it when it does) */
    int32_t pid;
    int32_t wait_status;   /* once !alive: the raw waitpid status */
    uint32_t incoming;     /* started with -incoming on a restored device state */
    uint32_t caps;         /* SIMP_DM_CAP_* */
    char qmp_path[SIMP_SUN_LEN];
    char log_path[SIMP_PATH_LEN];
    char qemu[SIMP_PATH_LEN];
    uint32_t loads;        /* device states the domain's device model took (DM_LOAD) */
    int32_t standby_pid;   /* a live standby QEMU waiting for a state, or 0 */
};
struct simp_dm_start {
    char qemu[SIMP_PATH_LEN];  /* as simp_create.qemu; for a standby, empty = the binary
                                  of the domain's device model (else the default) */
};
/* DM_INFO kind: the device model in service, or the standby that waits. */
#define SIMP_DM_INFO_CURRENT 0u
#define SIMP_DM_INFO_STANDBY 1u
#define SIMP_DM_STANDBY_START   0u
#define SIMP_DM_STANDBY_DISCARD 1u
#define SIMP_DM_STANDBY_ADOPT   2u   /* the client loaded it over its QMP: it replaces the dm */

struct simp_dominfo {
    uint32_t domid;
    uint32_t type;         /* enum ls_guest_type */
    uint32_t state;        /* enum ls_run_state */
    uint32_t vcpus;
    uint64_t memory_kib;   /* populated pages * 4 */
    uint64_t p2m_size;
    char name[SIMP_NAME_LEN];
};

/* The guest's own vCPU (backends/sim/dirty.c): while the domain runs, it
 * writes one 8-byte word into `rate` pages per second, chosen by `pattern`
 * from the guest's data pages (never page tables, rings or special pages).
 * Write k is a pure function of (seed, pattern, hot_percent, k): a fresh
 * domain with the same creation seed and `writes` replayed holds exactly the
 * state a running one held after that many writes (vCPU registers included). */
enum simp_dirty_pattern {
    SIMP_DIRTY_UNIFORM    = 0,   /* any data page, uniformly */
    SIMP_DIRTY_HOTSET     = 1,   /* hot_percent % of the data pages, spread out */
    SIMP_DIRTY_SEQUENTIAL = 2,   /* every data page in turn, wrapping */
};
struct simp_workload {
    uint64_t rate;         /* pages per second while running; 0 = the vCPU writes nothing */
    uint32_t pattern;      /* enum simp_dirty_pattern; fixed once a write was made */
    uint32_t hot_percent;  /* HOTSET: 1..100 */
    uint64_t seed;         /* of the write sequence; fixed once a write was made */
    uint64_t writes;       /* GET: writes made so far (a guest with no vCPU thread here,
                              e.g. one migrated in: the count its registers carry);
                              SET: replay writes up to this count first (the domain
                              must not be running), 0 = none */
    uint64_t data_pages;   /* GET: pages the vCPU may write; SET: ignored */
};

/* Log-dirty, as XEN_DOMCTL_SHADOW_OP_*: ENABLE clears the bitmap and starts
 * tracking the guest's own writes (-EBUSY if already on); CLEAN returns the
 * bitmap and clears it in one step; PEEK returns it and leaves it. The reply
 * of CLEAN/PEEK is struct simp_logdirty then (p2m_size + 63) / 64 u64 words,
 * bit pfn % 64 of word pfn / 64 set when the guest wrote the page. */
enum simp_logdirty_op {
    SIMP_LOGDIRTY_ENABLE  = 1,
    SIMP_LOGDIRTY_DISABLE = 2,
    SIMP_LOGDIRTY_CLEAN   = 3,
    SIMP_LOGDIRTY_PEEK    = 4,
};
struct simp_logdirty {
    uint64_t dirty_count;  /* bits set in the bitmap that follows */
    uint64_t p2m_size;
};

/* What the daemon does to a domain if the client that set the guard is lost
 * (its lockstep process died) before clearing it, as a hypervisor would do for
 * a dead toolstack: a source guest suspended for a migration is resumed (and
 * its log-dirty switched off); a restore target is destroyed. Resuming,
 * destroying or unpausing the domain clears a guard. */
/* HANDOFF: the migration's point of no return as one step of the daemon.
 * The request carries an fd (SCM_RIGHTS) and a short message (the go-ahead);
 * the daemon writes the whole message to the fd (waiting at most 1 s for
 * room) and only then clears the domain's guard, so no death of the client
 * can fall between the two. If the message cannot be written whole, the
 * guard stays and the error says how much went out. */
enum simp_guard {
    SIMP_GUARD_NONE    = 0,
    SIMP_GUARD_RESUME  = 1,
    SIMP_GUARD_DESTROY = 2,
};

/* The guest's network output (net.h): while its vCPU writes, every `every`-th
 * write k also sends one Ethernet/IPv4/UDP frame whose payload is the frame
 * number, k and the word that write put in memory, so two copies of a guest
 * at the same state send the same frames. With probability nondet_ppm per
 * million a frame is nondeterministic: the guest stores a host-random value
 * in that word first (its memory diverges too) and sends it flagged.
 *   CONFIG: payload struct simp_net (every, nondet_ppm, rng_seed), replies it
 *           with the counters; STATS: the same without a payload;
 *   ATTACH: replies one fd (SCM_RIGHTS), the reading end of a fresh
 *           SOCK_SEQPACKET pair, one frame per message; the previous reader's
 *           pair is closed. Without a reader frames are dropped (link down).
 *   CONNECT: payload a unix socket path (SOCK_SEQPACKET, listening): the
 *           daemon connects there and that is the reader from now on (the
 *           guest's NIC plugged into the world: a COLO secondary that took
 *           over needs no lockstep to forward its frames). */
enum simp_net_op {
    SIMP_NET_CONFIG  = 0,
    SIMP_NET_STATS   = 1,
    SIMP_NET_ATTACH  = 2,
    SIMP_NET_CONNECT = 3,
};
struct simp_net {
    uint64_t every;        /* a frame every this many writes; 0 = no network */
    uint32_t nondet_ppm;   /* nondeterministic frames per million */
    uint32_t attached;     /* reply: a reader is attached */
    uint64_t rng_seed;     /* the host-local randomness (0 = from the clock) */
    uint64_t frames;       /* reply: frames made so far */
    uint64_t nondet;       /* reply: of them nondeterministic */
    uint64_t dropped;      /* reply: lost (no reader, queue full, reader gone) */
    uint64_t sent;         /* reply: handed to the reader's socket */
};

/* The guest's disks (disk.h), HVM with a QEMU only:
 *   ATTACH: payload struct simp_disk_attach; the file becomes drive lsdiskN
 *           of the domain's block QEMU (started by the first attach, the
 *           next ones added to it); replies struct simp_disk;
 *   CONFIG: payload struct simp_disk (every, block, top), replies it with the
 *           counters; STATS: the same without a payload. */
enum simp_disk_op {
    SIMP_DISK_ATTACH = 0,
    SIMP_DISK_CONFIG = 1,
    SIMP_DISK_STATS  = 2,
};
enum simp_disk_format { SIMP_DISK_RAW = 0, SIMP_DISK_QCOW2 = 1 };
struct simp_disk_attach {
    char path[SIMP_PATH_LEN];  /* NUL-terminated; no ',' (QEMU's option syntax) */
    uint32_t format;           /* enum simp_disk_format */
    uint32_t pad;
};
struct simp_disk {
    uint64_t every;        /* a disk write every this many vCPU writes; 0 = none */
    uint32_t block;        /* bytes per disk write (a power of two, 512..1 MiB) */
    uint32_t top;          /* write lsdiskN-top (a COLO replica's view), not lsdiskN */
    uint32_t ndisks;       /* reply: disks attached */
    uint32_t failed;       /* reply: writes QEMU refused (the writer goes on) */
    uint64_t owed;         /* reply: disk writes the vCPU's count asks for */
    uint64_t written;      /* reply: of them made through QEMU (or adopted) */
    char last_error[200];  /* reply: QEMU's last refusal, "" if none */
    char qmp_path[SIMP_SUN_LEN];  /* reply: the block QEMU's QMP socket (lockstep's jobs) */
    char log_path[SIMP_PATH_LEN]; /* reply: its log */
    int32_t pid;           /* reply: its pid, 0 if none runs */
    uint32_t pad;
};

/* Where disk write j goes (disk.h): disk j % ndisks, a block picked by
 * (seed, j) among sizes[disk] / block, filled with 1 + j % 255. */
void simp_disk_write_at(uint64_t seed, uint64_t j, unsigned block, unsigned ndisks,
                        const uint64_t *sizes, unsigned *disk, uint64_t *offset, uint8_t *fill);

_Static_assert(sizeof(struct simp_disk) == 616, "simp disk");
_Static_assert(sizeof(struct simp_disk_attach) == 264, "simp disk attach");
_Static_assert(sizeof(struct simp_net) == 56, "simp net");
_Static_assert(sizeof(struct simp_workload) == 40, "simp workload");
_Static_assert(sizeof(struct simp_hdr) == 24, "simp header");
_Static_assert(sizeof(struct simp_create) == 352, "simp create");
_Static_assert(sizeof(struct simp_dm_info) == 656, "simp dm info");
_Static_assert(sizeof(struct simp_dominfo) == 96, "simp dominfo");

/* A sim guest's frame (layout: lockstep/sim.h, LS_SIM_FRAME_LEN): build one
 * into out[SIMP_FRAME_LEN]; parse checks every byte it can (0 or -EINVAL). */
#define SIMP_FRAME_LEN 82u
void simp_frame_build(uint8_t out[SIMP_FRAME_LEN], uint64_t seq, uint64_t writes, uint64_t word,
                      int nondet);
int simp_frame_parse(const uint8_t *buf, size_t len, uint64_t *seq, uint64_t *writes,
                     uint64_t *word, int *nondet);

const char *simp_op_name(unsigned op);
const char *simp_kind_name(unsigned kind);

/* The runtime directory, as xenstored's: $LOCKSTEP_RUNDIR if set, else
 * $XDG_RUNTIME_DIR/lockstep, else /run/lockstep for root, else
 * /tmp/lockstep-$UID. Returns 0 or -ENAMETOOLONG. */
int simp_rundir(char *buf, size_t len);
/* "<rundir>/<file>"; -ENAMETOOLONG if it does not fit (sockets: 108 bytes). */
int simp_rundir_file(const char *rundir, const char *file, char *buf, size_t len);
#define SIMP_SOCK_NAME "simd.sock"
#define SIMP_PID_NAME  "simd.pid"
#define SIMP_LOG_NAME  "simd.log"

/* Send one message (header + payload) whole, with optional fds attached to the
 * first bytes. Blocking socket. Returns 0 or -errno. */
int simp_send(int fd, const struct simp_hdr *h, const void *payload,
              const int *fds, int nfds);

#endif
