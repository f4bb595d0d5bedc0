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
#define SIMP_VERSION 1u
#define SIMP_MAX_PAYLOAD (16u << 20)      /* largest request or reply body */
#define SIMP_ERRMSG_MAX 400u
#define SIMP_NAME_LEN 64u
#define SIMP_FRAME_ABSENT 0xFFu

/* Limits the daemon enforces (a hypervisor has them too). */
#define SIMP_MAX_DOMAINS 1024u
#define SIMP_MAX_VCPUS   128u
#define SIMP_MAX_MEMORY_KIB (UINT64_C(64) << 20)      /* 64 GiB */
#define SIMP_MAX_P2M  (SIMP_MAX_MEMORY_KIB / 4 + 0x100000u)
/* p2m size of a restore target whose memory size is unknown (16 GiB). */
#define SIMP_RESTORE_DEFAULT_P2M 0x400000u

enum simp_op {
    SIMP_OP_HELLO    = 1,   /* -> struct simp_hello */
    SIMP_OP_CREATE   = 2,   /* struct simp_create -> u32 domid */
    SIMP_OP_LIST     = 3,   /* -> struct simp_dominfo[] */
    SIMP_OP_INFO     = 4,   /* domid -> struct simp_dominfo */
    SIMP_OP_PAUSE    = 5,
    SIMP_OP_UNPAUSE  = 6,
    SIMP_OP_SUSPEND  = 7,   /* a running guest cooperates at once */
    SIMP_OP_RESUME   = 8,   /* kind = 1 for a fast (cancelled-suspend) resume */
    SIMP_OP_DESTROY  = 9,
    SIMP_OP_MAP      = 10,  /* -> u64 p2m_size + 2 fds (see above) */
    SIMP_OP_GET      = 11,  /* kind, index -> blob */
    SIMP_OP_SET      = 12,  /* kind, index, blob */
    SIMP_OP_DIGEST   = 13,  /* -> 64 hex characters */
    SIMP_OP_MAX_     = 14,
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
    SIMP_K_MAX_          = 16,
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
    uint32_t reserved;
};

#define SIMP_CREATE_POPULATE 1u
struct simp_create {
    uint32_t type;         /* enum ls_guest_type */
    uint32_t vcpus;        /* 0 = unknown (restore target only) */
    uint64_t memory_kib;   /* 0 = unknown (restore target only) */
    uint64_t seed;
    uint32_t flags;        /* SIMP_CREATE_* */
    uint32_t reserved;
    char name[SIMP_NAME_LEN];  /* NUL-terminated; empty = "sim<domid>" */
};

struct simp_dominfo {
    uint32_t domid;
    uint32_t type;         /* enum ls_guest_type */
    uint32_t state;        /* enum ls_run_state */
    uint32_t vcpus;
    uint64_t memory_kib;   /* populated pages * 4 */
    uint64_t p2m_size;
    char name[SIMP_NAME_LEN];
};

_Static_assert(sizeof(struct simp_hdr) == 24, "simp header");
_Static_assert(sizeof(struct simp_create) == 96, "simp create");
_Static_assert(sizeof(struct simp_dominfo) == 96, "simp dominfo");

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
