/* io/stream_rules.c - the record-order and record-content rules, shared by
 * every reader of a stream (see io/stream_rules.h). */
#include "io/stream_rules.h"

#include <errno.h>
#include <inttypes.h>

#include "io/byteorder.h"

/* ---- libxl layer --------------------------------------------------------- */

void libxl_rules_init(struct libxl_rules *r)
{
    r->phase = LX_BEFORE_LIBXC;
    r->is_hvm = -1;
}

int libxl_rules_header(const struct libxl_rules *r, uint32_t type, uint32_t len,
                       uint64_t offset, struct ls_errbuf *e)
{
    int rc;

    if (type < LIBXL_REC_TYPE_COUNT && len <= LIBXC_REC_LENGTH_MAX)
        return 0;
    /* These paths of the content check fail before looking at the body. */
    rc = libxl_record_check(type, NULL, len, r->is_hvm, offset, e);
    return rc ? rc : -EINVAL;
}

static int padding(bool libxc, uint32_t type, const uint8_t *pad, uint32_t pad_len,
                   uint32_t len, uint64_t offset, struct ls_errbuf *e)
{
    if (stream_pad_ok(pad, pad_len))
        return 0;
    return (libxc ? libxc_rec_err : libxl_rec_err)(e, -EINVAL, offset, type,
                                                   "padding after the %u-byte body is not zero",
                                                   len);
}

int libxl_rules_padding(uint32_t type, const uint8_t *pad, uint32_t pad_len, uint32_t len,
                        uint64_t offset, struct ls_errbuf *e)
{
    return padding(false, type, pad, pad_len, len, offset, e);
}

int libxc_rules_padding(uint32_t type, const uint8_t *pad, uint32_t pad_len, uint32_t len,
                        uint64_t offset, struct ls_errbuf *e)
{
    return padding(true, type, pad, pad_len, len, offset, e);
}

/* May a record of this type stand here? */
static int libxl_check_phase(const struct libxl_rules *r, uint32_t t, const uint8_t *body,
                             uint64_t offset, struct ls_errbuf *e)
{
#define PHASE_ERR(...) libxl_rec_err(e, -EPROTO, offset, t, __VA_ARGS__)
    bool emulator = t == LIBXL_REC_EMULATOR_XENSTORE_DATA || t == LIBXL_REC_EMULATOR_CONTEXT;

    switch (r->phase) {
    case LX_BEFORE_LIBXC:
        if (t == LIBXL_REC_LIBXC_CONTEXT)
            return 0;
        if (t == LIBXL_REC_END)
            return PHASE_ERR("END before LIBXC_CONTEXT: the stream has no domain");
        if (emulator)
            return PHASE_ERR("emulator record before LIBXC_CONTEXT (the domain type is not "
                             "known yet)");
        return PHASE_ERR("checkpoint record outside a checkpoint");
    case LX_IN_LIBXC:
        /* A reader hands the libxl layer back only after the libxc END or
         * CHECKPOINT (libxl_rules_libxc_ended); nothing else lands here. */
        return PHASE_ERR("libxl record inside the libxc stream");
    case LX_AFTER_LIBXC_END:
        if (t == LIBXL_REC_END || emulator)
            return 0;
        if (t == LIBXL_REC_LIBXC_CONTEXT)
            return PHASE_ERR("second LIBXC_CONTEXT");
        return PHASE_ERR("checkpoint record outside a checkpoint (the libxc stream ended with "
                         "END, not CHECKPOINT)");
    case LX_IN_CHECKPOINT:
        if (t == LIBXL_REC_CHECKPOINT_END || emulator)
            return 0;
        if (t == LIBXL_REC_END)
            return PHASE_ERR("END inside a checkpoint (expected CHECKPOINT_END)");
        if (t == LIBXL_REC_LIBXC_CONTEXT)
            return PHASE_ERR("LIBXC_CONTEXT inside a checkpoint: later batches continue the "
                             "libxc stream without one");
        return PHASE_ERR("CHECKPOINT_STATE before CHECKPOINT_END");
    default:   /* LX_AFTER_CHECKPOINT_END: a reader routes only CHECKPOINT_STATE here */
        if (t != LIBXL_REC_CHECKPOINT_STATE)
            return PHASE_ERR("only CHECKPOINT_STATE or the next libxc batch may follow "
                             "CHECKPOINT_END");
        if (get_le32(body) != LIBXL_CHECKPOINT_NEW)
            return PHASE_ERR("state %s belongs on the COLO back channel; the main stream "
                             "carries only CHECKPOINT_NEW",
                             libxl_checkpoint_state_name(get_le32(body)));
        return 0;
    }
#undef PHASE_ERR
}

static void libxl_advance(struct libxl_rules *r, uint32_t t)
{
    if (t == LIBXL_REC_LIBXC_CONTEXT || t == LIBXL_REC_CHECKPOINT_STATE)
        r->phase = LX_IN_LIBXC;
    else if (t == LIBXL_REC_CHECKPOINT_END)
        r->phase = LX_AFTER_CHECKPOINT_END;
}

int libxl_rules_record(struct libxl_rules *r, uint32_t type, const uint8_t *body,
                       uint32_t len, uint64_t offset, struct ls_errbuf *e)
{
    int rc = libxl_record_check(type, body, len, r->is_hvm, offset, e);

    if (rc || (rc = libxl_check_phase(r, type, body, offset, e)))
        return rc;
    libxl_advance(r, type);
    return 0;
}

void libxl_rules_libxc_ended(struct libxl_rules *r, uint32_t libxc_type, int is_hvm)
{
    r->phase = libxc_type == LIBXC_REC_CHECKPOINT ? LX_IN_CHECKPOINT : LX_AFTER_LIBXC_END;
    r->is_hvm = is_hvm;
}

/* ---- libxc layer --------------------------------------------------------- */

void libxc_rules_init(struct libxc_rules *r, uint32_t version, uint32_t dom_type)
{
    libxc_order_init(&r->order, version, dom_type);
    r->guest_width = 0;
}

int libxc_rules_header(const struct libxc_rules *r, uint32_t type, uint32_t len,
                       uint64_t offset, struct ls_errbuf *e)
{
    bool short_page = type == LIBXC_REC_PAGE_DATA && len <= 8;
    int rc;

    if (type < LIBXC_REC_TYPE_COUNT && !short_page && len <= LIBXC_REC_LENGTH_MAX)
        return 0;
    rc = libxc_record_check(r->order.version, type, NULL, 0, len, offset, e);
    return rc ? rc : -EINVAL;
}

int libxc_rules_page_header(const struct libxc_rules *r, const uint8_t hdr[8], uint32_t len,
                            uint64_t offset, struct ls_errbuf *e)
{
    uint32_t count = get_le32(hdr);
    int rc;

    if (count != 0 && get_le32(hdr + 4) == 0 && 8 + 8 * (uint64_t)count <= len)
        return 0;
    /* The full check reports these from the first 8 bytes alone. */
    rc = libxc_record_check(r->order.version, LIBXC_REC_PAGE_DATA, hdr, 8, len, offset, e);
    return rc ? rc : -EINVAL;
}

int libxc_record_check_width(uint32_t type, const uint8_t *body, uint32_t len,
                             unsigned guest_width, uint64_t offset, struct ls_errbuf *e)
{
    if (guest_width == 0)
        return 0;
    if (type == LIBXC_REC_X86_PV_P2M_FRAMES && len >= 8) {
        uint32_t fpp = STREAM_PAGE_SIZE / guest_width;
        uint32_t start = get_le32(body), end = get_le32(body + 4);
        uint64_t want = 8 + 8 * ((uint64_t)(end / fpp) - start / fpp + 1);

        if (start <= end && len != want)
            return libxc_rec_err(e, -EINVAL, offset, type, "length %u, expected %" PRIu64
                                 " for pfns 0x%x-0x%x of a %u-bit guest", len, want, start,
                                 end, guest_width * 8);
    }
    /* 32-bit guests' context size is not fixed here; Xen checks it. */
    if (type == LIBXC_REC_X86_PV_VCPU_BASIC && guest_width == 8 && len > 8 &&
        len - 8 != LIBXC_X86_64_VCPU_BASIC_SIZE)
        return libxc_rec_err(e, -EINVAL, offset, type, "context of %u bytes, a 64-bit "
                             "guest's is %u", len - 8, LIBXC_X86_64_VCPU_BASIC_SIZE);
    return 0;
}

static bool is_vcpu_record(uint32_t type)
{
    return type == LIBXC_REC_X86_PV_VCPU_BASIC || type == LIBXC_REC_X86_PV_VCPU_EXTENDED ||
           type == LIBXC_REC_X86_PV_VCPU_XSAVE || type == LIBXC_REC_X86_PV_VCPU_MSRS;
}

int libxc_rules_record(struct libxc_rules *r, uint32_t type, const uint8_t *body,
                       uint32_t body_avail, uint32_t len, uint64_t offset,
                       bool *static_data_done, unsigned *missing, struct ls_errbuf *e)
{
    uint32_t vcpu = 0;
    int rc = libxc_record_check(r->order.version, type, body, body_avail, len, offset, e);

    if (rc || (rc = libxc_record_check_width(type, body, len, r->guest_width, offset, e)))
        return rc;
    /* An empty vCPU record is skipped by restore: it is nobody's state. */
    if (is_vcpu_record(type))
        vcpu = len > 8 ? get_le32(body) : UINT32_MAX;
    rc = libxc_order_note(&r->order, type, vcpu, offset, static_data_done, missing, e);
    if (rc == 0 && type == LIBXC_REC_X86_PV_INFO)
        r->guest_width = body[0];
    return rc;
}

int libxc_rules_finish(struct libxc_rules *r, uint64_t offset, struct ls_errbuf *e)
{
    return libxc_order_finish(&r->order, offset, e);
}
