/* states/stream_rx.c - actions of the libxl-layer stream reader. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/fdio.h"
#include "io/records.h"
#include "io/stream_rules.h"
#include "io/work.h"
#include "states/restore.h"

#define FSM_PREFIX STREAM_RX
#define FSM_DEF_FILE "states/stream_rx.def"
#include "fsm/gen_table.h"

/* Read exactly len bytes at the reader's offset, naming what on failure. */
static int read_exact(struct restore_role *r, void *buf, size_t len, int cancel_fd,
                      const char *what, struct ls_errbuf *err)
{
    size_t got = 0;
    int rc = io_read_all(r->opts.fd, buf, len, &got, cancel_fd);
    uint64_t at = r->offset;
    r->offset += got;
    if (rc == -ENODATA)
        return ls_err(err, -ENODATA, "offset %llu: stream truncated in the %s (%zu of %zu bytes)",
                      (unsigned long long)(at + got), what, got, len);
    if (rc < 0)
        return ls_err(err, rc, "offset %llu: reading the %s: %s", (unsigned long long)at, what,
                      strerror(-rc));
    return 0;
}

static int read_xl_header(struct restore_role *r, const uint8_t first[16], int cancel_fd,
                          struct ls_errbuf *err)
{
    uint8_t fixed[XL_MAGIC_LEN + sizeof(struct xl_header)];
    memcpy(fixed, first, 16);
    int rc = read_exact(r, fixed + 16, sizeof(fixed) - 16, cancel_fd, "xl header", err);
    if (rc < 0)
        return rc;
    struct xl_header h;
    if ((rc = xl_header_decode(fixed, &h, err)) < 0)
        return rc;
    if (h.optional_data_len > (16u << 20))
        return ls_err(err, -E2BIG, "offset 44: xl header optional data of %u bytes is too large",
                      h.optional_data_len);
    uint64_t data_at = r->offset;
    uint8_t *data = malloc(h.optional_data_len ? h.optional_data_len : 1);
    if (!data)
        return ls_err(err, -ENOMEM, "out of memory reading the xl config");
    rc = read_exact(r, data, h.optional_data_len, cancel_fd, "xl config", err);
    const char *json = NULL;
    uint32_t json_len = 0;
    if (rc == 0 && (h.mandatory_flags & XL_MANDATORY_CONFIG_JSON) && h.optional_data_len)
        rc = xl_header_config(data, h.optional_data_len, &json, &json_len, data_at, err);
    if (rc == 0 && json) {
        r->config_json = strndup(json, json_len);
        if (!r->config_json)
            rc = ls_err(err, -ENOMEM, "out of memory reading the xl config");
    }
    free(data);
    if (rc == 0 && !(h.mandatory_flags & XL_MANDATORY_STREAM_V2))
        rc = ls_err(err, -ENOTSUP,
                    "xl header: the stream is a legacy (pre-v2) image; convert it with Xen's "
                    "convert-legacy-stream first");
    return rc;
}

static int read_headers(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    uint8_t first[16];
    libxl_rules_init(&r->lx);
    int rc = read_exact(r, first, sizeof(first), cancel_fd, "stream header", err);
    if (rc < 0)
        return rc;
    if (xl_header_magic_matches(first, sizeof(first))) {
        r->xl_format = true;
        if ((rc = read_xl_header(r, first, cancel_fd, err)) < 0)
            return rc;
        rc = read_exact(r, first, sizeof(first), cancel_fd, "libxl header", err);
        if (rc < 0)
            return rc;
    } else if (memcmp(first, "\xff\xff\xff\xff\xff\xff\xff\xff", 8) == 0) {
        return ls_err(err, -EINVAL,
                      "offset 0: this is a bare libxc stream with no libxl layer; it cannot be "
                      "restored on its own (lockstep inspect can read it)");
    }
    uint32_t options;
    if ((rc = libxl_header_decode(first, &options, r->offset - 16, err)) < 0)
        return rc;
    if (r->config_json) {
        rc = restore_parse_config(r->config_json, &r->config, err);
        r->config.config_json = r->config_json;
        return rc;
    }
    r->config.type = LS_GUEST_UNSET;
    return 0;
}

/* What restore itself keeps of a record that passed the stream rules. */
static int keep_record(struct restore_role *r, uint32_t type, uint8_t **body, uint32_t len,
                       uint64_t at, struct ls_errbuf *err)
{
    if (type == LIBXL_REC_EMULATOR_XENSTORE_DATA)
        r->seen_xenstore_data = true;
    if (type != LIBXL_REC_EMULATOR_CONTEXT)
        return 0;
    if (r->emulator_context)
        return libxl_rec_err(err, -EINVAL, at, type, "a second EMULATOR_CONTEXT record: "
                             "restore starts one device model");
    memcpy(&r->emulator_id, *body, 4);
    r->emulator_context_len = len - 8;
    memmove(*body, *body + 8, len - 8);
    r->emulator_context = *body;
    *body = NULL;
    return 0;
}

/* Read libxl records until LIBXC_CONTEXT (before the memory image) or END
 * (after it); returns that event. Every record goes through
 * io/stream_rules.h, as `lockstep inspect` checks it (a second
 * LIBXC_CONTEXT is refused there). */
static int read_records(struct restore_role *r, int cancel_fd, bool tail, struct ls_errbuf *err)
{
    for (;;) {
        uint64_t at = r->offset;
        uint8_t hdr[8];
        int rc = read_exact(r, hdr, sizeof(hdr), cancel_fd, "libxl record header", err);
        if (rc < 0)
            return rc;
        uint32_t type, len;
        stream_rec_header_decode(hdr, &type, &len);
        if ((rc = libxl_rules_header(&r->lx, type, len, at, err)) < 0)
            return rc;
        uint32_t padded = (uint32_t)STREAM_ROUNDUP8(len);
        uint8_t *body = malloc(padded ? padded : 1);
        if (!body)
            return ls_err(err, -ENOMEM, "out of memory reading a %u-byte record", len);
        rc = read_exact(r, body, padded, cancel_fd, "libxl record body", err);
        if (rc == 0)
            rc = libxl_rules_padding(type, body + len, padded - len, len, at, err);
        if (rc == 0)
            rc = libxl_rules_record(&r->lx, type, body, len, at, err);
        if (rc == 0)
            rc = keep_record(r, type, &body, len, at, err);
        free(body);
        if (rc < 0)
            return rc;
        if (type == LIBXL_REC_LIBXC_CONTEXT && !tail)
            return STREAM_RX_E_LIBXC_CONTEXT;
        if (type == LIBXL_REC_END && !tail)
            return ls_err(err, -EINVAL, "the stream ended before its memory image");
        if (type == LIBXL_REC_END)
            return STREAM_RX_E_END;
    }
}

static int read_head_records(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    return read_records(arg, cancel_fd, false, err);
}

static int read_tail_records(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    return read_records(arg, cancel_fd, true, err);
}

static int srx_read_headers(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, STREAM_RX_E_HEADERS_READ, read_headers, m->owner,
                         "read stream headers");
}

static int srx_report_config(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    if (r->ckpt_to)   /* a COLO secondary runs this reader */
        fsm_post(r->ckpt_to, r->config_read_ev, 0, NULL);
    else
        fsm_post(&r->m, RESTORE_E_CONFIG_READ, 0, NULL);
    return 0;
}

static int srx_read_records(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, read_head_records, m->owner,
                         "read libxl records");
}

static int srx_read_tail(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    /* Back from the memory task: learn where the fd is now, for offsets. */
    off_t pos = lseek(r->opts.fd, 0, SEEK_CUR);
    if (pos >= 0)
        r->offset = (uint64_t)pos;
    /* A plain restore's memory task stops only at the libxc END. The
     * domain type, for the rule that only HVM streams carry emulator
     * records, is the xl config's; without one it stays unknown here and
     * start_dm (restore.c) refuses such records later. */
    enum ls_guest_type t = r->config.type;
    libxl_rules_libxc_ended(&r->lx, LIBXC_REC_END, t == LS_GUEST_UNSET ? -1 : t != LS_GUEST_PV);
    return io_work_start(m, IO_WORK_EV_FROM_FN, read_tail_records, r, "read libxl records");
}

static int srx_hand_off(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    fsm_post(&r->mem.m, MEMTASK_E_HANDOFF, 0, NULL);
    return 0;
}

/* ---- checkpointed streams ------------------------------------------------ */

/* One libxl record of a checkpoint or a control read, checked. *body is the
 * malloc'd body (NULL when empty). */
static int read_one(struct restore_role *r, int cancel_fd, const char *where, uint32_t *type,
                    uint8_t **body, uint32_t *len, struct ls_errbuf *err)
{
    uint8_t hdr[8];
    *body = NULL;
    int rc = read_exact(r, hdr, sizeof(hdr), cancel_fd, where, err);
    if (rc < 0)
        return rc;
    stream_rec_header_decode(hdr, type, len);
    if (*len > LIBXC_REC_LENGTH_MAX)
        return ls_err(err, -E2BIG, "%s: libxl record %s (0x%x) of %u bytes is over the limit",
                      where, libxl_rec_name(*type), *type, *len);
    uint32_t padded = (uint32_t)STREAM_ROUNDUP8(*len);
    *body = malloc(padded ? padded : 1);
    if (!*body)
        return ls_err(err, -ENOMEM, "out of memory reading a %u-byte record", *len);
    rc = read_exact(r, *body, padded, cancel_fd, where, err);
    if (rc == 0 && !stream_pad_ok(*body + *len, padded - *len))
        rc = ls_err(err, -EINVAL, "%s: libxl record %s (0x%x): non-zero padding", where,
                    libxl_rec_name(*type), *type);
    if (rc == 0)
        rc = libxl_record_check(*type, *body, *len, -1, r->offset, err);
    if (rc < 0) {
        free(*body);
        *body = NULL;
    }
    return rc;
}

/* The libxl part of a checkpoint: [EMULATOR_XENSTORE_DATA], [EMULATOR_CONTEXT],
 * CHECKPOINT_END. The emulator state replaces the last checkpoint's. */
static int read_checkpoint(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    for (;;) {
        uint32_t type, len;
        uint8_t *body;
        int rc = read_one(r, cancel_fd, "libxl part of a checkpoint", &type, &body, &len,
                          err);
        if (rc < 0)
            return rc;
        if (type == LIBXL_REC_CHECKPOINT_END) {
            free(body);
            return STREAM_RX_E_CHECKPOINT_END;
        }
        if (type == LIBXL_REC_EMULATOR_CONTEXT) {
            free(r->emulator_context);
            memcpy(&r->emulator_id, body, 4);
            r->emulator_context_len = len - 8;
            memmove(body, body + 8, len - 8);
            r->emulator_context = body;
            continue;
        }
        free(body);
        if (type == LIBXL_REC_EMULATOR_XENSTORE_DATA) {
            r->seen_xenstore_data = true;
            continue;
        }
        return ls_err(err, -EPROTO, "the primary sent libxl record %s (0x%x) inside a checkpoint, "
                      "where only EMULATOR_* records and CHECKPOINT_END may stand",
                      libxl_rec_name(type), type);
    }
}

/* The primary's word between checkpoints: CHECKPOINT_STATE (its id goes to
 * r->control_id) or END (r->control_type says which). */
static int read_control(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    uint32_t type, len;
    uint8_t *body;
    int rc = read_one(r, cancel_fd, "primary's next control record", &type, &body, &len, err);
    if (rc < 0)
        return rc;
    r->control_type = type;
    if (type == LIBXL_REC_CHECKPOINT_STATE)
        memcpy(&r->control_id, body, 4);
    free(body);
    if (type == LIBXL_REC_END) {
        /* The stop ends the stream as a plain one ends: that END was the
         * libxc layer's, the libxl END follows. */
        rc = read_one(r, cancel_fd, "END of the primary's stream", &type, &body, &len, err);
        free(body);
        if (rc < 0)
            return rc;
        if (type != LIBXL_REC_END)
            return ls_err(err, -EPROTO, "the primary sent libxl record %s (0x%x) after its libxc "
                          "END, where the libxl END was due", libxl_rec_name(type), type);
    }
    if (type != LIBXL_REC_CHECKPOINT_STATE && type != LIBXL_REC_END)
        return ls_err(err, -EPROTO, "the primary sent libxl record %s (0x%x) where "
                      "CHECKPOINT_STATE(NEW) or END was due", libxl_rec_name(type), type);
    return STREAM_RX_E_CONTROL;
}

static int srx_read_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, read_checkpoint, m->owner,
                         "read checkpoint records");
}

static int srx_checkpoint_read(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    fsm_post(r->ckpt_to, r->ckpt_read_ev, 0, NULL);
    return 0;
}

static int srx_read_control(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, IO_WORK_EV_FROM_FN, read_control, m->owner, "read control record");
}

/* The parent hears which word it was: NEW, or the END of an orderly stop. */
static int srx_control_read(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    if (r->control_type == LIBXL_REC_END) {
        fsm_post(r->ckpt_to, r->control_end_ev, 0, NULL);
        return 0;
    }
    if (r->control_id != LIBXL_CHECKPOINT_NEW)
        return fsm_fail(m, -EPROTO, "the primary sent CHECKPOINT_STATE(%s) on the main channel, "
                        "where CHECKPOINT_STATE(NEW) was due",
                        libxl_checkpoint_state_name(r->control_id));
    fsm_post(r->ckpt_to, r->control_new_ev, 0, NULL);
    return 0;
}
