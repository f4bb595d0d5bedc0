/* states/stream_tx.c - actions of the libxl-layer stream writer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/fdio.h"
#include "io/records.h"
#include "io/work.h"
#include "states/save.h"

#define FSM_PREFIX STREAM_TX
#define FSM_DEF_FILE "states/stream_tx.def"
#include "fsm/gen_table.h"

int write_job_run(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct write_job *j = arg;
    int rc = io_write_all(j->fd, j->buf, j->len, cancel_fd);
    if (rc < 0)
        return ls_err(err, rc, "writing the %s: %s", j->what,
                      rc == -EPIPE ? "the reader closed the stream" : strerror(-rc));
    return 0;
}

/* [xl header + config] + libxl header + LIBXC_CONTEXT, in one buffer. */
#pragma GCC diagnostic push
/* analyzer: r->head owns the buffer (freed with the role); GCC 12 loses it. */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static int build_head(struct save_role *r)
{
    uint8_t *xl = NULL;
    size_t xl_len = 0;
    if (r->opts.format == LS_FORMAT_XL) {
        int rc = xl_header_encode(r->config_json, &xl, &xl_len);
        if (rc < 0)
            return rc;
    }
    size_t len = xl_len + 16 + 8;
    r->head = malloc(len);
    if (!r->head) {
        free(xl);
        return -ENOMEM;
    }
    if (xl_len)
        memcpy(r->head, xl, xl_len);
    free(xl);
    libxl_header_encode(r->head + xl_len);
    stream_rec_header_encode(r->head + xl_len + 16, LIBXL_REC_LIBXC_CONTEXT, 0);
    r->head_job = (struct write_job){ r->opts.fd, r->head, len, "libxl stream header" };
    return 0;
}
#pragma GCC diagnostic pop

/* [EMULATOR_CONTEXT] (HVM) + END. EMULATOR_XENSTORE_DATA is written only
 * when the device model has physmap keys; lockstep's device models have none. */
static int build_tail(struct save_role *r)
{
    size_t emu = 0;
    if (r->dm_len)
        emu = 8 + STREAM_ROUNDUP8(8 + r->dm_len);
    size_t len = emu + 8;
    r->tail = calloc(1, len);
    if (!r->tail)
        return -ENOMEM;
    uint8_t *p = r->tail;
    if (emu) {
        stream_rec_header_encode(p, LIBXL_REC_EMULATOR_CONTEXT, (uint32_t)(8 + r->dm_len));
        uint32_t hdr[2] = { LIBXL_EMULATOR_QEMU_UPSTREAM, 0 };
        memcpy(p + 8, hdr, 8);
        memcpy(p + 16, r->dm_state, r->dm_len);
        p += emu;      /* padding is already zero (calloc) */
    }
    stream_rec_header_encode(p, LIBXL_REC_END, 0);
    r->tail_job = (struct write_job){ r->opts.fd, r->tail, len, "libxl stream tail" };
    return 0;
}

static int stx_write_head(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    int rc = build_head(r);
    if (rc < 0)
        return fsm_fail(m, rc, "%s: cannot build the stream header: %s", m->name, strerror(-rc));
    return io_work_start(m, STREAM_TX_E_WRITTEN, write_job_run, &r->head_job, "write stream header");
}

static int stx_hand_off(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    fsm_post(&r->mem.m, MEMTASK_E_HANDOFF, 0, NULL);
    return 0;
}

static int stx_write_tail(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    int rc = build_tail(r);
    if (rc < 0)
        return fsm_fail(m, rc, "%s: cannot build the stream tail: %s", m->name, strerror(-rc));
    return io_work_start(m, STREAM_TX_E_WRITTEN, write_job_run, &r->tail_job, "write stream tail");
}

/* A checkpoint's libxl part: [EMULATOR_CONTEXT] + CHECKPOINT_END (spec 1.3). */
static int stx_write_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    free(r->ckpt);
    size_t emu = r->dm_len ? 8 + STREAM_ROUNDUP8(8 + r->dm_len) : 0;
    r->ckpt = calloc(1, emu + 8);
    if (!r->ckpt)
        return fsm_fail(m, -ENOMEM, "%s: out of memory for a checkpoint's records", m->name);
    if (emu) {
        stream_rec_header_encode(r->ckpt, LIBXL_REC_EMULATOR_CONTEXT, (uint32_t)(8 + r->dm_len));
        uint32_t hdr[2] = { LIBXL_EMULATOR_QEMU_UPSTREAM, 0 };
        memcpy(r->ckpt + 8, hdr, 8);
        memcpy(r->ckpt + 16, r->dm_state, r->dm_len);
    }
    stream_rec_header_encode(r->ckpt + emu, LIBXL_REC_CHECKPOINT_END, 0);
    r->ckpt_job = (struct write_job){ r->opts.fd, r->ckpt, emu + 8, "checkpoint's libxl records" };
    return io_work_start(m, STREAM_TX_E_WRITTEN, write_job_run, &r->ckpt_job,
                         "write checkpoint records");
}

static int stx_checkpoint_written(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    fsm_post(r->ckpt_to, r->ckpt_written_ev, 0, NULL);
    return 0;
}

/* r->control holds the record (the parent built it); len in control_job. */
static int stx_write_control(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    return io_work_start(m, STREAM_TX_E_WRITTEN, write_job_run, &r->control_job,
                         "write control record");
}

static int stx_control_written(struct fsm *m, const struct fsm_ev *ev)
{
    struct save_role *r = m->owner;
    fsm_post(r->ckpt_to, r->control_written_ev, 0, NULL);
    return 0;
}
