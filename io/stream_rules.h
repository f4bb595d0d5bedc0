/* io/stream_rules.h - the record-order and record-content rules of a v2
 * stream, once.
 *
 * Every reader of a stream feeds its records through these: the push parser
 * behind `lockstep inspect` (io/stream_parser.c), the restore role's libxl
 * reader (states/stream_rx.c) and the sim backend's libxc reader
 * (backends/sim/sim_restore.c). A stream is then refused by each of them at
 * the same record, for the same rule, in the same words:
 *     "offset N: <layer> record NAME (0xT): <rule>"
 * Content checks are io/records.h's (generated from io/records.def); the
 * order rules are the libxl phases below and libxc_order (io/records.h).
 * Pure functions of their arguments and the rules struct: no I/O.
 */
#ifndef LOCKSTEP_IO_STREAM_RULES_H
#define LOCKSTEP_IO_STREAM_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "lockstep/errbuf.h"
#include "io/records.h"

/* Where a stream is among its libxl records (spec 1.3). */
enum libxl_phase {
    LX_BEFORE_LIBXC,           /* only LIBXC_CONTEXT may come */
    LX_IN_LIBXC,               /* the libxc layer is being read */
    LX_AFTER_LIBXC_END,        /* emulator records, then END */
    LX_IN_CHECKPOINT,          /* emulator records, then CHECKPOINT_END */
    LX_AFTER_CHECKPOINT_END,   /* CHECKPOINT_STATE or the next libxc batch */
};

struct libxl_rules {
    enum libxl_phase phase;
    int is_hvm;                /* -1 until the libxc domain header is known */
};

void libxl_rules_init(struct libxl_rules *r);
/* The 8-byte record header alone: an unknown type or an over-long record is
 * refused before its body is read. */
int libxl_rules_header(const struct libxl_rules *r, uint32_t type, uint32_t len,
                       uint64_t offset, struct ls_errbuf *e);
/* A record's padding (pad_len bytes at pad) must be zero. */
int libxl_rules_padding(uint32_t type, const uint8_t *pad, uint32_t pad_len, uint32_t len,
                        uint64_t offset, struct ls_errbuf *e);
/* A record's content, then its place among the libxl records; on success
 * the phase moves past it. */
int libxl_rules_record(struct libxl_rules *r, uint32_t type, const uint8_t *body,
                       uint32_t len, uint64_t offset, struct ls_errbuf *e);
/* The nested libxc stream stopped at its END or CHECKPOINT record (type);
 * is_hvm is its domain type (1 HVM, 0 PV, -1 unknown). */
void libxl_rules_libxc_ended(struct libxl_rules *r, uint32_t libxc_type, int is_hvm);

struct libxc_rules {
    struct libxc_order order;
    unsigned guest_width;      /* from X86_PV_INFO, 0 until then */
};

void libxc_rules_init(struct libxc_rules *r, uint32_t version, uint32_t dom_type);
/* The 8-byte record header alone (unknown type, over-long, PAGE_DATA too
 * short for a pfn). */
int libxc_rules_header(const struct libxc_rules *r, uint32_t type, uint32_t len,
                       uint64_t offset, struct ls_errbuf *e);
/* PAGE_DATA's first 8 bytes (count, reserved): can its pfn array be read? */
int libxc_rules_page_header(const struct libxc_rules *r, const uint8_t hdr[8], uint32_t len,
                            uint64_t offset, struct ls_errbuf *e);
/* A record's padding (pad_len bytes at pad) must be zero. */
int libxc_rules_padding(uint32_t type, const uint8_t *pad, uint32_t pad_len, uint32_t len,
                        uint64_t offset, struct ls_errbuf *e);
/* A record's content and place: body_avail bytes at body (PAGE_DATA: its
 * header and pfn array only), len from its header. *static_data_done and
 * *missing as libxc_order_note (either may be NULL). */
int libxc_rules_record(struct libxc_rules *r, uint32_t type, const uint8_t *body,
                       uint32_t body_avail, uint32_t len, uint64_t offset,
                       bool *static_data_done, unsigned *missing, struct ls_errbuf *e);
/* The stream ended without END (a reader's own stop): what must have been seen. */
int libxc_rules_finish(struct libxc_rules *r, uint64_t offset, struct ls_errbuf *e);

/* Checks that need the PV guest width announced by X86_PV_INFO (0 = unknown,
 * then nothing is checked): X86_PV_P2M_FRAMES must be exactly
 * 8 + 8*(end/fpp - start/fpp + 1) bytes with fpp = 4096/width, and a
 * non-empty X86_PV_VCPU_BASIC of a 64-bit guest must carry 5168 bytes.
 * Same error conventions as io/records.h. */
int libxc_record_check_width(uint32_t type, const uint8_t *body, uint32_t len,
                             unsigned guest_width, uint64_t offset, struct ls_errbuf *e);

#endif
