/* io/stream_format.h - wire constants and layouts of Xen's migration v2 streams.
 *
 * Three layers, outermost first (spec: shared/spec/xen-streams-and-colo.md):
 *   - the xl save-file header (section 3.3), native endian, optional;
 *   - the libxl stream (section 1): a 16-byte big-endian header, then records;
 *   - the libxc stream (section 2), nested after the LIBXC_CONTEXT record: a
 *     24-byte big-endian image header, a 16-byte domain header, then records.
 * Every record is {u32 type; u32 body_length} + body + zero padding to 8.
 *
 * Only layouts and constants live here: no code, so every module (codec, sim
 * backend, tools) shares one definition of the wire.
 */
#ifndef LOCKSTEP_IO_STREAM_FORMAT_H
#define LOCKSTEP_IO_STREAM_FORMAT_H

#include <stdint.h>

#define STREAM_PAGE_SHIFT 12
#define STREAM_PAGE_SIZE  4096u

/* Every record body is padded with zeros to this alignment. */
#define STREAM_RECORD_ALIGN 8u
#define STREAM_ROUNDUP8(n)  (((n) + 7u) & ~(uint64_t)7u)

/* ---- xl save-file header (3.3) ---------------------------------------- */
#define XL_MAGIC          "Xen saved domain, xl format\n \0 \r"
#define XL_MAGIC_LEN      32u
#define XL_BYTEORDER      0x01020304u
#define XL_MANDATORY_CONFIG_JSON (1u << 0)
#define XL_MANDATORY_STREAM_V2   (1u << 1)
#define XL_MANDATORY_KNOWN (XL_MANDATORY_CONFIG_JSON | XL_MANDATORY_STREAM_V2)

struct xl_header {                 /* follows the 32-byte magic */
    uint32_t byteorder;            /* XL_BYTEORDER, native endian */
    uint32_t mandatory_flags;
    uint32_t optional_flags;
    uint32_t optional_data_len;    /* u32 config_len + config (NUL-terminated JSON) */
};

/* xl migration handshake (3.3), sent on the back channel / main channel. */
#define XL_MIGRATE_RECEIVER_BANNER "xl migration receiver ready, send binary domain data.\n"
#define XL_MIGRATE_RECEIVER_READY  "domain received, ready to unpause"
#define XL_MIGRATE_PERMISSION      "domain is yours, you are cleared to unpause"
#define XL_MIGRATE_REPORT          "my copy unpause results are as follows"

/* ---- libxl stream (1) ------------------------------------------------- */
#define LIBXL_IDENT    UINT64_C(0x4C6962786C466D74)  /* "LibxlFmt", big endian */
#define LIBXL_VERSION  2u
#define LIBXL_OPT_BIG_ENDIAN (1u << 0)
#define LIBXL_OPT_LEGACY     (1u << 1)

struct libxl_header {              /* 16 bytes, all fields BIG endian */
    uint64_t ident;
    uint32_t version;
    uint32_t options;
};

/* Record types of both layers come from io/records.def. */
enum libxl_rec_type {
#define LIBXL_RECORD(name, value, check, doc) LIBXL_REC_##name = value,
#include "io/records.def"
};
enum {
    LIBXL_REC__COUNT = 0
#define LIBXL_RECORD(name, value, check, doc) + 1
#include "io/records.def"
};
#define LIBXL_REC_TYPE_COUNT ((uint32_t)LIBXL_REC__COUNT)

enum libxl_emulator_id {
    LIBXL_EMULATOR_UNKNOWN          = 0,
    LIBXL_EMULATOR_QEMU_TRADITIONAL = 1,
    LIBXL_EMULATOR_QEMU_UPSTREAM    = 2,
};

struct libxl_emulator_hdr {        /* first 8 bytes of both EMULATOR_* bodies */
    uint32_t id;
    uint32_t index;
};

enum libxl_checkpoint_state {
    LIBXL_CHECKPOINT_NEW           = 0,
    LIBXL_CHECKPOINT_SVM_SUSPENDED = 1,
    LIBXL_CHECKPOINT_SVM_READY     = 2,
    LIBXL_CHECKPOINT_SVM_RESUMED   = 3,
};

/* ---- libxc stream (2) ------------------------------------------------- */
#define LIBXC_IHDR_MARKER  UINT64_C(0xFFFFFFFFFFFFFFFF)
#define LIBXC_IHDR_ID      0x58454E46u   /* "XENF" */
#define LIBXC_IHDR_VERSION 3u
#define LIBXC_IHDR_OPT_BIG_ENDIAN (1u << 0)

struct libxc_image_header {        /* 24 bytes, all fields BIG endian */
    uint64_t marker;
    uint32_t id;
    uint32_t version;
    uint16_t options;
    uint16_t reserved1;
    uint32_t reserved2;
};

enum libxc_domain_type {
    LIBXC_DHDR_TYPE_X86_PV  = 1,
    LIBXC_DHDR_TYPE_X86_HVM = 2,
};

struct libxc_domain_header {       /* 16 bytes, little endian */
    uint32_t type;
    uint16_t page_shift;
    uint16_t reserved;
    uint32_t xen_major;
    uint32_t xen_minor;
};

enum libxc_rec_type {
#define LIBXC_RECORD(name, value, domains, since, check, doc) LIBXC_REC_##name = value,
#include "io/records.def"
};
enum {
    LIBXC_REC__COUNT = 0
#define LIBXC_RECORD(name, value, domains, since, check, doc) + 1
#include "io/records.def"
};
#define LIBXC_REC_TYPE_COUNT ((uint32_t)LIBXC_REC__COUNT)
#define LIBXC_REC_OPTIONAL   0x80000000u
#define LIBXC_REC_LENGTH_MAX (128u << 20)   /* REC_LENGTH_MAX */
#define LIBXC_MAX_BATCH_SIZE 1024u          /* pfns per PAGE_DATA */

struct stream_record_header {      /* 8 bytes, stream (little) endian */
    uint32_t type;
    uint32_t length;               /* body length, excluding padding */
};

struct libxc_page_data_header {    /* then u64 pfn[count], then the pages */
    uint32_t count;
    uint32_t reserved;
};

/* PAGE_DATA pfn word: type in bits 63-60, bits 59-52 reserved, pfn in 51-0. */
#define LIBXC_PAGE_TYPE_SHIFT   60
#define LIBXC_PAGE_PFN_MASK     ((UINT64_C(1) << 52) - 1)
#define LIBXC_PAGE_RESERVED_MASK (UINT64_C(0xFF) << 52)
enum libxc_page_type {               /* XEN_DOMCTL_PFINFO_* >> 28 */
    LIBXC_PAGE_NOTAB  = 0x0,
    LIBXC_PAGE_L1TAB  = 0x1,
    LIBXC_PAGE_L2TAB  = 0x2,
    LIBXC_PAGE_L3TAB  = 0x3,
    LIBXC_PAGE_L4TAB  = 0x4,
    LIBXC_PAGE_LPINTAB = 0x8,        /* pinned bit, or'ed with L1..L4 */
    LIBXC_PAGE_BROKEN = 0xD,
    LIBXC_PAGE_XALLOC = 0xE,
    LIBXC_PAGE_XTAB   = 0xF,
};
/* Does a page of this type carry 4096 bytes of data in PAGE_DATA? */
#define LIBXC_PAGE_TYPE_HAS_DATA(t) ((t) <= 0x4 || ((t) >= 0x9 && (t) <= 0xC))
#define LIBXC_PAGE_TYPE_INVALID(t)  ((t) >= 0x5 && (t) <= 0x8)

struct libxc_x86_pv_info {         /* exactly 8 bytes */
    uint8_t guest_width;           /* 4 or 8 */
    uint8_t pt_levels;             /* 3 or 4 */
    uint8_t reserved[6];
};

struct libxc_x86_pv_p2m_frames {   /* then u64 p2m_pfn[] */
    uint32_t start_pfn;
    uint32_t end_pfn;
};

struct libxc_x86_pv_vcpu_hdr {     /* BASIC, EXTENDED, XSAVE, MSRS; then blob */
    uint32_t vcpu_id;
    uint32_t reserved;
};

struct libxc_x86_tsc_info {        /* exactly 24 bytes */
    uint32_t mode;
    uint32_t khz;
    uint64_t nsec;
    uint32_t incarnation;
    uint32_t reserved;
};

struct libxc_hvm_params_header {   /* then {u64 index; u64 value}[count] */
    uint32_t count;
    uint32_t reserved;
};
struct libxc_hvm_param {
    uint64_t index;
    uint64_t value;
};

struct libxc_cpuid_leaf {          /* X86_CPUID_POLICY element, 24 bytes */
    uint32_t leaf, subleaf, a, b, c, d;
};
struct libxc_msr_entry {           /* X86_MSR_POLICY element, 16 bytes */
    uint32_t idx;
    uint32_t flags;
    uint64_t val;
};

/* Sizes Xen's tools use for 64-bit PV vCPU blobs. */
#define LIBXC_X86_64_VCPU_BASIC_SIZE 5168u
#define LIBXC_X86_VCPU_EXTENDED_MAX  128u
#define LIBXC_X86_VCPU_XSAVE_MIN     16u

/* static_data_done(missing) bits, as xenguest.h */
#define LIBXC_SDD_MISSING_CPUID (1u << 0)
#define LIBXC_SDD_MISSING_MSR   (1u << 1)

/* HVM params the 4.17 saver sends when non-zero (xen/hvm/params.h indices). */
#define HVM_PARAM_STORE_PFN            1
#define HVM_PARAM_STORE_EVTCHN         2
#define HVM_PARAM_IOREQ_PFN            5
#define HVM_PARAM_BUFIOREQ_PFN         6
#define HVM_PARAM_CONSOLE_PFN         17
#define HVM_PARAM_CONSOLE_EVTCHN      18
#define HVM_PARAM_IDENT_PT            12
#define HVM_PARAM_PAGING_RING_PFN     27
#define HVM_PARAM_MONITOR_RING_PFN    28
#define HVM_PARAM_SHARING_RING_PFN    29
#define HVM_PARAM_VM86_TSS_SIZED      37
#define HVM_PARAM_IOREQ_SERVER_PFN    32
#define HVM_PARAM_NR_IOREQ_SERVER_PAGES 33

_Static_assert(sizeof(struct xl_header) == 16, "xl header");
_Static_assert(sizeof(struct libxl_header) == 16, "libxl header");
_Static_assert(sizeof(struct libxc_image_header) == 24, "libxc image header");
_Static_assert(sizeof(struct libxc_domain_header) == 16, "libxc domain header");
_Static_assert(sizeof(struct stream_record_header) == 8, "record header");
_Static_assert(sizeof(struct libxc_x86_tsc_info) == 24, "tsc info");
_Static_assert(sizeof(struct libxc_cpuid_leaf) == 24, "cpuid leaf");
_Static_assert(sizeof(struct libxc_msr_entry) == 16, "msr entry");

#endif
