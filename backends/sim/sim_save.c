/* backends/sim/sim_save.c - the memory task, save side: xc_domain_save for the sim.
 *
 * Writes the libxc layer of a stream (spec 2.4, the 4.17 saver's order) on
 * p->io_fd from guest memory mapped out of lockstep-simd, and calls back as
 * xc_domain_save does. We never copy a page ourselves: each PAGE_DATA is its
 * headers and pfn array, then its pages straight from guest memory, by
 * sendfile from the guest's memfd a run of adjacent pages at a time (to
 * sockets, pipes and files; a checkpointed or kept guest's only to files), or by
 * one writev of iovecs into the mapping
 * (to a character device such as /dev/null, which never reads them, for a
 * batch of scattered pages, where a sendfile per page would cost a syscall
 * per page, and into a file or a TCP socket from guest memory in huge pages,
 * see sim_save_memory). Into a regular file, batches are sized so page data
 * sits on page boundaries of the file (batch_capacity).
 *
 * Live saves (LS_SAVE_LIVE) pre-copy as xc_domain_save does: log-dirty on,
 * round 0 sends every populated page while the guest runs (its own vCPU in
 * the daemon keeps writing), each later round sends the pages the log-dirty
 * bitmap (CLEAN: read and cleared in one step) says were written since the
 * last, and precopy_policy is asked before and after every round with
 * libxc's arguments; once it says stop, the guest is suspended and the final
 * round sends what is still dirty.
 *
 * Checkpointed streams (Remus/COLO) go on after that final round as
 * xc_domain_save does: CHECKPOINT instead of END, then the callbacks (COLO:
 * checkpoint, postcopy, wait_checkpoint; Remus: postcopy, checkpoint), and
 * while they answer 1 another checkpoint: suspend, the pages dirtied since
 * the last one (COLO: merged with the secondary's CHECKPOINT_DIRTY_PFN_LIST,
 * read from the back channel), the tail and CHECKPOINT again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/sim/sim.h"
#include "backends/sim/sim_internal.h"
#include "backends/sim/xen_abi.h"
#include "io/fdio.h"
#include "io/records.h"

#define XEN_MAJOR 4
#define XEN_MINOR 17
#define PRECOPY_MAX_ITERATIONS 5    /* libxc's default policy */
#define PRECOPY_DIRTY_THRESHOLD 50
/* A batch of more page runs than this goes by writev, not a sendfile per run. */
#define SCATTERED_RUNS 16

struct save_ctx {
    struct sim_backend *sb;
    const struct ls_save_params *p;
    const struct ls_save_callbacks *cb;
    struct ls_errbuf *e;
    struct ls_domain_info info;
    struct sim_map map;
    bool sendfile_off;         /* pages are written from the map (see send_batch_bytes) */
    bool populate_for_writev;  /* ...and the kernel reads them: map them ahead */
    bool map_populated;        /* sim_map_populate was done (scattered batches) */
    bool align_pages;          /* a regular file: size batches so page data lands page-aligned */
    uint64_t file_base;        /* the file offset of libxc stream byte 0, when align_pages */
    uint64_t written;          /* libxc stream bytes so far, for messages */
    uint64_t populated;        /* pages, for progress */
    uint64_t pages_sent;
    /* One PAGE_DATA batch: headers + pfn words, then iovecs into guest memory. */
    uint8_t hdr[16 + 8 * LIBXC_MAX_BATCH_SIZE];
    struct iovec iov[1 + LIBXC_MAX_BATCH_SIZE];
};

static int io_fail(struct save_ctx *s, int rc, const char *what)
{
    if (rc == -ECANCELED)
        return ls_err(s->e, rc, "save of domain %u cancelled while writing %s (libxc stream byte %" PRIu64 ")",
                      s->p->domid, what, s->written);
    return ls_err(s->e, rc, "save of domain %u: writing %s at libxc stream byte %" PRIu64 ": %s",
                  s->p->domid, what, s->written, strerror(-rc));
}

/* One record from parts, with the zero padding to 8. */
static int write_record(struct save_ctx *s, uint32_t type, const struct iovec *parts, int n)
{
    uint8_t rh[8];
    struct iovec v[6];
    uint64_t len = 0;
    for (int i = 0; i < n; i++)
        len += parts[i].iov_len;
    if (len > LIBXC_REC_LENGTH_MAX)
        return ls_err(s->e, -E2BIG, "save of domain %u: %s record of %" PRIu64 " bytes exceeds the %u-byte limit",
                      s->p->domid, libxc_rec_name(type), len, LIBXC_REC_LENGTH_MAX);
    stream_rec_header_encode(rh, type, (uint32_t)len);
    v[0] = (struct iovec){ .iov_base = rh, .iov_len = 8 };
    for (int i = 0; i < n; i++)
        v[1 + i] = parts[i];
    v[1 + n] = (struct iovec){ .iov_base = (void *)stream_zero_pad,
                               .iov_len = stream_pad_len((uint32_t)len) };
    int rc = io_writev_all(s->p->io_fd, v, n + 2, s->p->cancel_fd);
    if (rc < 0)
        return io_fail(s, rc, libxc_rec_name(type));
    s->written += 8 + STREAM_ROUNDUP8(len);
    return 0;
}

static int write_blob_record(struct save_ctx *s, uint32_t type, const void *b, uint32_t len)
{
    struct iovec v = { .iov_base = (void *)b, .iov_len = len };
    return write_record(s, type, &v, len ? 1 : 0);
}

/* ---- pages ---------------------------------------------------------------- */

/* The batch's bytes: s->iov[0] is the header and pfn array, the rest are
 * runs of guest pages. The pages go by sendfile from the memfd: the kernel
 * reads them through its own mapping, where a copy out of ours would fault
 * on every page of a mapping this fresh (the cost of a save, measured). When
 * the fd cannot take sendfile, the pages are written from the mapping. */
static int send_batch_bytes(struct save_ctx *s, int niov)
{
    int fd = s->p->io_fd, cancel = s->p->cancel_fd;
    if (!s->sendfile_off && s->map.mem_fd >= 0 && niov - 1 > SCATTERED_RUNS) {
        /* A later round's scattered dirty pages: a sendfile per page costs a
         * syscall per page; one writev from the mapping, mapped whole once
         * per save, costs one per batch. */
        if (!s->map_populated) {
            sim_map_populate(&s->map, MADV_POPULATE_READ);
            s->map_populated = true;
        }
        return io_writev_all(fd, s->iov, niov, cancel);
    }
    if (!s->sendfile_off && s->map.mem_fd >= 0) {
        int rc = io_write_all(fd, s->iov[0].iov_base, s->iov[0].iov_len, cancel);
        for (int i = 1; rc == 0 && i < niov; i++) {
            uint64_t at = (uint64_t)((uint8_t *)s->iov[i].iov_base - s->map.mem);
            size_t sent = 0;
            rc = io_sendfile_all(fd, s->map.mem_fd, at, s->iov[i].iov_len, &sent, cancel);
            if (rc == -EINVAL && sent == 0 && i == 1) {
                s->sendfile_off = s->populate_for_writev = true;
                return io_writev_all(fd, &s->iov[1], niov - 1, cancel);
            }
        }
        return rc;
    }
    /* A device such as /dev/null takes the iovecs without reading them, so
     * the pages are not touched here; where the kernel will copy them out,
     * map them in one go per run rather than a page fault at a time. */
    if (s->populate_for_writev)
        for (int i = 1; i < niov; i++)
            (void)madvise(s->iov[i].iov_base, s->iov[i].iov_len, MADV_POPULATE_READ);
    return io_writev_all(fd, s->iov, niov, cancel);
}

/* One PAGE_DATA record for pfns[0..n). The type comes from the frame info at
 * send time; a pfn no longer populated goes out as XTAB, as libxc does. */
static int send_batch(struct save_ctx *s, const uint64_t *pfns, unsigned n)
{
    uint8_t *pw = s->hdr + 16;
    int niov = 1;
    uint64_t ndata = 0;

    for (unsigned i = 0; i < n; i++) {
        uint8_t t = s->map.finfo[pfns[i]];
        unsigned type = t == SIMP_FRAME_ABSENT ? LIBXC_PAGE_XTAB : t;
        if (t != SIMP_FRAME_ABSENT && !LIBXC_PAGE_TYPE_HAS_DATA(type))
            return ls_err(s->e, -EINVAL, "save of domain %u: pfn 0x%" PRIx64 " has page type 0x%x in the frame info, which carries no data",
                          s->p->domid, pfns[i], type);
        uint64_t w = libxc_pfn_word(pfns[i], type);
        memcpy(pw + 8 * i, &w, 8);
        if (!LIBXC_PAGE_TYPE_HAS_DATA(type))
            continue;
        uint8_t *page = s->map.mem + pfns[i] * STREAM_PAGE_SIZE;
        struct iovec *last = &s->iov[niov - 1];
        if (niov > 1 && (uint8_t *)last->iov_base + last->iov_len == page)
            last->iov_len += STREAM_PAGE_SIZE;
        else
            s->iov[niov++] = (struct iovec){ .iov_base = page, .iov_len = STREAM_PAGE_SIZE };
        ndata++;
    }
    uint32_t body = (uint32_t)(8 + 8 * (uint64_t)n + STREAM_PAGE_SIZE * ndata);
    struct libxc_page_data_header ph = { .count = n, .reserved = 0 };
    stream_rec_header_encode(s->hdr, LIBXC_REC_PAGE_DATA, body);
    memcpy(s->hdr + 8, &ph, sizeof(ph));
    s->iov[0] = (struct iovec){ .iov_base = s->hdr, .iov_len = 16 + 8 * (size_t)n };

    int rc = send_batch_bytes(s, niov);
    if (rc < 0)
        return io_fail(s, rc, "PAGE_DATA");
    s->written += 8 + (uint64_t)body;
    s->pages_sent += ndata;
    if (s->cb->progress)
        s->cb->progress(s->pages_sent * STREAM_PAGE_SIZE, s->populated * STREAM_PAGE_SIZE,
                        s->cb->data);
    return 0;
}

/* How many pfns the next batch takes. Any count up to 1024 is valid on the
 * wire; into a regular file we pick the one that puts the batch's page data
 * on a page boundary of the file (record header + page-data header + 8 bytes
 * per pfn in front of it), so that each guest page fills one page of the
 * file's page cache instead of straddling two, and a reader can take it
 * page for page (bench_stream, tmpfs, alternating runs: page phase 0.59 ->
 * 0.66 of a write loop). Once aligned, 1022 pfns keep it so
 * (16 + 8 * 1022 = 8192). */
static unsigned batch_capacity(const struct save_ctx *s)
{
    if (!s->align_pages)
        return LIBXC_MAX_BATCH_SIZE;
    uint64_t data_at = s->file_base + s->written + 16;     /* with no pfn yet */
    unsigned words_to_boundary = (unsigned)((STREAM_PAGE_SIZE - data_at % STREAM_PAGE_SIZE) %
                                            STREAM_PAGE_SIZE) / 8;
    unsigned per_page = STREAM_PAGE_SIZE / 8;              /* 512 pfn words fill a page */
    unsigned n = words_to_boundary;
    while (n + per_page <= LIBXC_MAX_BATCH_SIZE)
        n += per_page;
    return n ? n : LIBXC_MAX_BATCH_SIZE;
}

/* Sends every populated pfn set in `dirty` (NULL: all of them) in pfn order,
 * in batches of up to 1024 (batch_capacity). */
static int send_pages(struct save_ctx *s, const uint64_t *dirty)
{
    uint64_t batch[LIBXC_MAX_BATCH_SIZE];
    unsigned n = 0, cap = batch_capacity(s);
    for (uint64_t pfn = 0; pfn < s->map.p2m_size; pfn++) {
        if (dirty && !(pfn % 64) && !dirty[pfn / 64]) {
            pfn += 63;      /* a clean word: skip its 64 pfns */
            continue;
        }
        if (dirty && !(dirty[pfn / 64] & (UINT64_C(1) << (pfn % 64))))
            continue;
        if (s->map.finfo[pfn] == SIMP_FRAME_ABSENT)
            continue;
        batch[n++] = pfn;
        if (n == cap) {
            int rc = send_batch(s, batch, n);
            if (rc < 0)
                return rc;
            n = 0;
            cap = batch_capacity(s);
        }
    }
    return n ? send_batch(s, batch, n) : 0;
}

static int send_all_pages(struct save_ctx *s)
{
    return send_pages(s, NULL);
}

static uint64_t count_populated(const struct sim_map *m)
{
    uint64_t n = 0;
    for (uint64_t pfn = 0; pfn < m->p2m_size; pfn++)
        n += m->finfo[pfn] != SIMP_FRAME_ABSENT;
    return n;
}

/* ---- state records -------------------------------------------------------- */

/* A state blob from the daemon, written as one record if non-empty. */
static int send_state(struct save_ctx *s, unsigned kind, uint32_t type, bool required)
{
    uint8_t *b;
    uint32_t len;
    int rc = sim_get(s->sb, s->p->domid, kind, 0, &b, &len, s->e);
    if (rc < 0)
        return rc;
    if (len == 0) {
        free(b);
        if (required)
            return ls_err(s->e, -ENODATA, "save of domain %u: the domain has no %s to send as %s",
                          s->p->domid, simp_kind_name(kind), libxc_rec_name(type));
        return 0;
    }
    rc = write_blob_record(s, type, b, len);
    free(b);
    return rc;
}

static int send_pv_vcpus(struct save_ctx *s)
{
    static const struct { unsigned kind; uint32_t type; } recs[] = {
        { SIMP_K_VCPU_BASIC, LIBXC_REC_X86_PV_VCPU_BASIC },
        { SIMP_K_VCPU_EXTENDED, LIBXC_REC_X86_PV_VCPU_EXTENDED },
        { SIMP_K_VCPU_XSAVE, LIBXC_REC_X86_PV_VCPU_XSAVE },
        { SIMP_K_VCPU_MSRS, LIBXC_REC_X86_PV_VCPU_MSRS },
    };
    for (unsigned v = 0; v < s->info.vcpus; v++) {
        for (unsigned r = 0; r < sizeof(recs) / sizeof(recs[0]); r++) {
            uint8_t *b;
            uint32_t len;
            int rc = sim_get(s->sb, s->p->domid, recs[r].kind, v, &b, &len, s->e);
            if (rc < 0)
                return rc;
            if (len == 0) {
                free(b);
                if (r == 0)
                    break;      /* no context: the vcpu is offline, libxc skips it */
                continue;       /* nothing of this kind (e.g. no MSRs) */
            }
            struct libxc_x86_pv_vcpu_hdr vh = { .vcpu_id = v, .reserved = 0 };
            struct iovec parts[2] = { { .iov_base = &vh, .iov_len = sizeof(vh) },
                                      { .iov_base = b, .iov_len = len } };
            rc = write_record(s, recs[r].type, parts, 2);
            free(b);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int send_hvm_params(struct save_ctx *s)
{
    uint8_t *b;
    uint32_t len;
    int rc = sim_get(s->sb, s->p->domid, SIMP_K_HVM_PARAMS, 0, &b, &len, s->e);
    if (rc < 0)
        return rc;
    size_t nsaved;
    const uint32_t *saved = sim_hvm_saved_params(&nsaved);
    struct libxc_hvm_param out[32];
    uint32_t n = 0;
    /* The saver's fixed list, in its order, non-zero ones only. */
    for (size_t i = 0; i < nsaved; i++) {
        for (uint32_t k = 0; k < len / sizeof(struct libxc_hvm_param); k++) {
            struct libxc_hvm_param prm;
            memcpy(&prm, b + k * sizeof(prm), sizeof(prm));
            if (prm.index == saved[i] && prm.value != 0 && n < 32)
                out[n++] = prm;
        }
    }
    free(b);
    struct libxc_hvm_params_header h = { .count = n, .reserved = 0 };
    struct iovec parts[2] = { { .iov_base = &h, .iov_len = sizeof(h) },
                              { .iov_base = out, .iov_len = n * sizeof(out[0]) } };
    return write_record(s, LIBXC_REC_HVM_PARAMS, parts, 2);
}

/* The tail of every checkpoint (end_of_checkpoint in libxc). */
static int send_tail(struct save_ctx *s)
{
    int rc = send_state(s, SIMP_K_TSC_INFO, LIBXC_REC_X86_TSC_INFO, false);
    if (rc < 0)
        return rc;
    if (s->info.type == LS_GUEST_PV) {
        rc = send_state(s, SIMP_K_SHARED_INFO, LIBXC_REC_SHARED_INFO, true);
        return rc < 0 ? rc : send_pv_vcpus(s);
    }
    rc = send_state(s, SIMP_K_HVM_CONTEXT, LIBXC_REC_HVM_CONTEXT, true);
    return rc < 0 ? rc : send_hvm_params(s);
}

/* ---- the task ------------------------------------------------------------- */

static int suspend_domain(struct save_ctx *s)
{
    if (s->cb->suspend(s->cb->data) != 1)
        return ls_err(s->e, -ECANCELED, "save of domain %u: the suspend callback failed",
                      s->p->domid);
    struct ls_domain_info now;
    int rc = sim_info(s->sb, s->p->domid, &now, s->e);
    if (rc < 0)
        return rc;
    if (now.state != LS_RUN_SUSPENDED)
        return ls_err(s->e, -EINVAL, "save of domain %u: domain has not been suspended (it is %s)",
                      s->p->domid, backend_run_state_name(now.state));
    return 0;
}

static int policy_default(struct ls_precopy_stats st, void *unused)
{
    (void)unused;
    if (st.dirty_count >= 0 && st.dirty_count < PRECOPY_DIRTY_THRESHOLD)
        return LS_POLICY_STOP_AND_COPY;
    return st.iteration >= PRECOPY_MAX_ITERATIONS ? LS_POLICY_STOP_AND_COPY
                                                   : LS_POLICY_CONTINUE_PRECOPY;
}

/* Log-dirty on. Left on by a saver that died? Switch it off and on again,
 * as libxc does when something else had it enabled. */
static int logdirty_enable(struct save_ctx *s)
{
    struct ls_errbuf busy;
    ls_err_clear(&busy);
    int rc = sim_logdirty_op(s->sb, s->p->domid, SIMP_LOGDIRTY_ENABLE, NULL, NULL, &busy);
    if (rc == -EBUSY &&
        (rc = sim_logdirty_op(s->sb, s->p->domid, SIMP_LOGDIRTY_DISABLE, NULL, NULL, s->e)) == 0)
        rc = sim_logdirty_op(s->sb, s->p->domid, SIMP_LOGDIRTY_ENABLE, NULL, NULL, s->e);
    else if (rc < 0)
        ls_err_copy(s->e, &busy);
    return rc;
}

/* The pages dirtied since the last call (read and cleared at once). */
static int logdirty_clean(struct save_ctx *s, uint64_t **bitmap, uint64_t *dirty)
{
    free(*bitmap);
    *bitmap = NULL;
    return sim_logdirty_op(s->sb, s->p->domid, SIMP_LOGDIRTY_CLEAN, bitmap, dirty, s->e);
}

/* The rounds, with precopy_policy asked exactly where xc_domain_save asks it:
 * before a round (dirty_count known) and after it (dirty_count -1). A "stop"
 * before a round still lets that round go out live, as in libxc. */
static int send_memory_live(struct save_ctx *s, uint64_t **bitmap)
{
    int (*policy)(struct ls_precopy_stats, void *) =
        s->cb->precopy_policy ? s->cb->precopy_policy : policy_default;
    struct ls_precopy_stats st = { .iteration = 0, .total_written = 0,
                                   .dirty_count = (long)s->populated };
    uint64_t dirty = s->populated;
    int decision;
    for (unsigned round = 0;; round++) {
        decision = policy(st, s->cb->data);
        if (dirty > 0 && decision != LS_POLICY_ABORT) {
            int rc = send_pages(s, round == 0 ? NULL : *bitmap);
            if (rc < 0)
                return rc;
        }
        if (decision != LS_POLICY_CONTINUE_PRECOPY)
            break;
        st.iteration = round + 1;
        st.total_written += (unsigned long)st.dirty_count;
        st.dirty_count = -1;
        decision = policy(st, s->cb->data);
        if (decision != LS_POLICY_CONTINUE_PRECOPY)
            break;
        int rc = logdirty_clean(s, bitmap, &dirty);
        if (rc < 0)
            return rc;
        st.dirty_count = (long)dirty;
    }
    if (decision == LS_POLICY_ABORT)
        return ls_err(s->e, -ECANCELED, "save of domain %u: the precopy policy aborted after %u rounds",
                      s->p->domid, st.iteration);
    return 0;
}

/* Suspend, then the final round: what the guest wrote since the last CLEAN. */
static int suspend_and_send_dirty(struct save_ctx *s, uint64_t **bitmap)
{
    int rc = suspend_domain(s);
    uint64_t dirty = 0;
    if (rc == 0)
        rc = logdirty_clean(s, bitmap, &dirty);
    if (rc == 0 && dirty)
        rc = send_pages(s, *bitmap);
    return rc;
}

/* ---- checkpointed streams (Remus / COLO) ------------------------------------ */

/* COLO, every checkpoint after the first: the secondary's dirty pages, a
 * CHECKPOINT_DIRTY_PFN_LIST record on the back channel, ORed into ours. */
static int merge_secondary_dirty(struct save_ctx *s, uint64_t *bitmap, uint64_t *merged)
{
    const uint32_t T = LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST;
    uint8_t rh[8];
    size_t got = 0;
    int rc = io_read_all(s->p->recv_fd, rh, sizeof(rh), &got, s->p->cancel_fd);
    if (rc < 0)
        return ls_err(s->e, rc, "save of domain %u: reading the secondary's dirty page list: %s",
                      s->p->domid, rc == -ENODATA ? "the secondary closed the back channel"
                                                  : strerror(-rc));
    uint32_t type, len;
    stream_rec_header_decode(rh, &type, &len);
    if (type != T || len % 8 || len > LIBXC_REC_LENGTH_MAX)
        return ls_err(s->e, -EPROTO, "save of domain %u: the secondary sent a %s record (0x%x) of %u "
                      "bytes where its CHECKPOINT_DIRTY_PFN_LIST was due", s->p->domid,
                      libxc_rec_name(type), type, len);
    uint64_t *pfns = malloc(len ? len : 1);
    if (!pfns)
        return ls_err(s->e, -ENOMEM, "out of memory for %u bytes of dirty pfns", len);
    rc = io_read_all(s->p->recv_fd, pfns, len, &got, s->p->cancel_fd);
    if (rc < 0) {
        free(pfns);
        return ls_err(s->e, rc, "save of domain %u: the secondary's dirty page list was cut at "
                      "%zu of %u bytes: %s", s->p->domid, got, len, strerror(-rc));
    }
    *merged = 0;
    for (uint32_t i = 0; i < len / 8; i++) {
        if (pfns[i] >= s->map.p2m_size) {
            rc = ls_err(s->e, -EINVAL, "save of domain %u: the secondary's dirty page list names "
                        "pfn 0x%" PRIx64 ", beyond the p2m size 0x%" PRIx64, s->p->domid,
                        pfns[i], s->map.p2m_size);
            break;
        }
        uint64_t bit = UINT64_C(1) << (pfns[i] % 64);
        *merged += !(bitmap[pfns[i] / 64] & bit);
        bitmap[pfns[i] / 64] |= bit;
    }
    free(pfns);
    return rc;
}

/* The callbacks after a CHECKPOINT record, in xc_domain_save's order. */
static int checkpoint_callbacks(struct save_ctx *s)
{
    const struct ls_save_callbacks *cb = s->cb;
    bool colo = s->p->stream_type == LS_STREAM_COLO;
    const char *which = "checkpoint";
    int ok = colo ? cb->checkpoint(cb->data) : 1;
    if (ok > 0 && (which = "postcopy"))
        ok = cb->postcopy(cb->data);
    if (ok > 0 && (which = colo ? "wait_checkpoint" : "checkpoint"))
        ok = colo ? cb->wait_checkpoint(cb->data) : cb->checkpoint(cb->data);
    if (ok > 0)
        return 0;
    return ls_err(s->e, -ECANCELED, "save of domain %u: replication ended: the %s callback "
                  "answered %d", s->p->domid, which, ok);
}

static int save_checkpoints(struct save_ctx *s)
{
    uint64_t *bitmap = NULL;
    bool live = s->p->flags & LS_SAVE_LIVE;
    int rc = logdirty_enable(s);
    if (rc == 0 && live)
        rc = send_memory_live(s, &bitmap);
    for (unsigned n = 0; rc == 0; n++) {
        uint64_t dirty = 0, merged = 0;
        rc = suspend_domain(s);
        if (rc == 0)
            rc = logdirty_clean(s, &bitmap, &dirty);
        if (rc == 0 && n > 0 && s->p->stream_type == LS_STREAM_COLO)
            rc = merge_secondary_dirty(s, bitmap, &merged);
        if (rc == 0)
            rc = n == 0 && !live ? send_all_pages(s) : send_pages(s, bitmap);
        if (rc == 0)
            rc = send_tail(s);
        if (rc == 0)
            rc = write_blob_record(s, LIBXC_REC_CHECKPOINT, NULL, 0);
        if (rc == 0)
            rc = checkpoint_callbacks(s);
    }
    free(bitmap);
    struct ls_errbuf ignored;
    sim_logdirty_op(s->sb, s->p->domid, SIMP_LOGDIRTY_DISABLE, NULL, NULL, &ignored);
    return rc;
}

static int save_stream(struct save_ctx *s)
{
    bool pv = s->info.type == LS_GUEST_PV;
    uint8_t ih[24], dh[16];
    libxc_image_header_encode(ih);
    libxc_domain_header_encode(dh, pv ? LIBXC_DHDR_TYPE_X86_PV : LIBXC_DHDR_TYPE_X86_HVM,
                               XEN_MAJOR, XEN_MINOR);
    struct iovec hv[2] = { { .iov_base = ih, .iov_len = sizeof(ih) },
                           { .iov_base = dh, .iov_len = sizeof(dh) } };
    int rc = io_writev_all(s->p->io_fd, hv, 2, s->p->cancel_fd);
    if (rc < 0)
        return io_fail(s, rc, "the libxc image and domain headers");
    s->written += sizeof(ih) + sizeof(dh);

    /* Static data. */
    if (pv && (rc = send_state(s, SIMP_K_PV_INFO, LIBXC_REC_X86_PV_INFO, true)) < 0)
        return rc;
    if ((rc = send_state(s, SIMP_K_CPUID_POLICY, LIBXC_REC_X86_CPUID_POLICY, false)) < 0 ||
        (rc = send_state(s, SIMP_K_MSR_POLICY, LIBXC_REC_X86_MSR_POLICY, false)) < 0 ||
        (rc = write_blob_record(s, LIBXC_REC_STATIC_DATA_END, NULL, 0)) < 0)
        return rc;
    /* Start of stream. */
    if (pv && (rc = send_state(s, SIMP_K_P2M_FRAMES, LIBXC_REC_X86_PV_P2M_FRAMES, true)) < 0)
        return rc;

    if (s->p->stream_type != LS_STREAM_PLAIN)
        return save_checkpoints(s);
    if (s->p->flags & LS_SAVE_LIVE) {
        uint64_t *bitmap = NULL;
        rc = logdirty_enable(s);
        if (rc == 0)
            rc = send_memory_live(s, &bitmap);
        if (rc == 0)
            rc = suspend_and_send_dirty(s, &bitmap);
        free(bitmap);
        struct ls_errbuf ignored;
        sim_logdirty_op(s->sb, s->p->domid, SIMP_LOGDIRTY_DISABLE, NULL, NULL, &ignored);
    } else {
        rc = suspend_domain(s);
        if (rc == 0)
            rc = send_all_pages(s);
    }
    if (rc < 0)
        return rc;
    rc = send_tail(s);
    return rc < 0 ? rc : write_blob_record(s, LIBXC_REC_END, NULL, 0);
}

int sim_save_memory(struct ls_backend *be, const struct ls_save_params *p,
                    const struct ls_save_callbacks *cb, struct ls_errbuf *e)
{
    struct save_ctx *s;
    int rc;

    if (!p || !cb || p->io_fd < 0)
        return ls_err(e, -EINVAL, "save_memory: missing parameters or stream fd");
    if (!cb->suspend)
        return ls_err(e, -EINVAL, "save of domain %u: no suspend callback provided", p->domid);
    if (p->stream_type != LS_STREAM_PLAIN &&
        (!cb->checkpoint || !cb->postcopy ||
         (p->stream_type == LS_STREAM_COLO && (!cb->wait_checkpoint || p->recv_fd < 0))))
        return ls_err(e, -EINVAL, "save of domain %u: a %s stream needs the checkpoint callbacks%s",
                      p->domid, p->stream_type == LS_STREAM_COLO ? "COLO" : "Remus",
                      p->stream_type == LS_STREAM_COLO ? " and a back channel" : "");
    s = calloc(1, sizeof(*s));
    if (!s)
        return ls_err(e, -ENOMEM, "out of memory");
    s->sb = sim_of(be);
    s->p = p;
    s->cb = cb;
    s->e = e;

    rc = sim_info(s->sb, p->domid, &s->info, e);
    if (rc == 0 && s->info.type == LS_GUEST_UNSET)
        rc = ls_err(e, -EINVAL, "save of domain %u: the domain has no type yet (an unfinished restore target)",
                    p->domid);
    bool hvm = s->info.type == LS_GUEST_HVM || s->info.type == LS_GUEST_PVH;
    if (rc == 0 && hvm && !cb->switch_qemu_logdirty)
        rc = ls_err(e, -EINVAL, "save of domain %u: no switch_qemu_logdirty callback provided (an HVM save needs one)",
                    p->domid);
    if (rc == 0)
        rc = sim_map_domain(s->sb, p->domid, false, &s->map, e);
    /* sendfile pays off where the kernel must copy the bytes (a socket, a
     * pipe, a file); a character device such as /dev/null takes a writev
     * without touching the pages, which sendfile would read. */
    struct stat st;
    s->sendfile_off = fstat(p->io_fd, &st) < 0 ||
                      !(S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode));
    if (!s->sendfile_off && S_ISREG(st.st_mode)) {
        off_t at = lseek(p->io_fd, 0, SEEK_CUR);
        s->align_pages = at >= 0;
        s->file_base = at >= 0 ? (uint64_t)at : 0;
    }
    /* Guest memory in huge pages (lockstep-simd --huge-pages; tmpfs reports
     * its page size as st_blksize) is mapped whole at 512 entries per GiB,
     * and then one writev per batch from the mapping beats a sendfile per
     * run into a file (tmpfs: 0.88 against 0.82 of a write loop from one hot
     * buffer) and into a TCP socket (4.2 against 1.4 GB/s on loopback: the
     * socket holds a reference on each page it sends, all on one 2 MiB
     * page's count, which sender and receiver then fight over). A unix
     * socket or a pipe keeps sendfile, which stays ahead there (6.5 against
     * 4-5 GB/s). */
    struct stat mst;
    int domain = 0;
    socklen_t dlen = sizeof(domain);
    if (rc == 0 && !s->sendfile_off && fstat(s->map.mem_fd, &mst) == 0 &&
        mst.st_blksize >= (2 << 20) &&
        (S_ISREG(st.st_mode) ||
         (S_ISSOCK(st.st_mode) && getsockopt(p->io_fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) == 0 &&
          (domain == AF_INET || domain == AF_INET6)))) {
        s->sendfile_off = true;
        sim_map_populate(&s->map, MADV_POPULATE_READ);
        s->map_populated = true;
    }
    /* A checkpointed stream's guest runs again after every checkpoint, as a
     * kept one's (save --keep) after the save, and sendfile into a socket or
     * a pipe only lends the memfd's pages: their bytes are read when the peer
     * reads them, by then perhaps written again (a Remus secondary under load
     * got writes made after the checkpoint it applied, issue 15). writev
     * copies them while the guest is suspended. */
    if (rc == 0 && !s->sendfile_off &&
        (p->stream_type != LS_STREAM_PLAIN || (p->flags & LS_SAVE_RESUMES)) &&
        !S_ISREG(st.st_mode)) {
        s->sendfile_off = true;
        sim_map_populate(&s->map, MADV_POPULATE_READ);
        s->map_populated = true;
    }
    if (rc == 0) {
        s->populated = count_populated(&s->map);
        bool logdirty = false;
        /* As libxc does for every HVM save, live or not: on at setup, off at cleanup. */
        if (hvm) {
            if (cb->switch_qemu_logdirty(p->domid, 1, cb->data) != 0)
                rc = ls_err(e, -EIO, "save of domain %u: could not enable qemu's log-dirty mode",
                            p->domid);
            else
                logdirty = true;
        }
        if (rc == 0)
            rc = save_stream(s);
        if (logdirty && cb->switch_qemu_logdirty(p->domid, 0, cb->data) != 0 && rc == 0)
            rc = ls_err(e, -EIO, "save of domain %u: could not disable qemu's log-dirty mode",
                        p->domid);
    }
    sim_retire_map(s->sb, &s->map);
    free(s);
    return rc;
}
