/* backends/sim/sim_restore.c - the memory task, restore side: xc_domain_restore for the sim.
 *
 * Reads the libxc layer from p->io_fd up to and including libxc END, checks
 * every record with io/stream_rules.h (the rules `lockstep inspect` applies,
 * so a bad stream is refused for the same reason), and applies it to a domain made by
 * create_for_restore. Page data goes straight into guest memory, one copy
 * from the stream to the guest page: runs of pages are spliced into the
 * guest's memfd (through a staging pipe unless the stream is one), and a
 * batch of scattered pages (a later pre-copy round's) is read with one readv
 * into the mapping from the daemon. Only the pages present in the stream are
 * touched (the memfd stays sparse).
 * Memory use is bounded by the largest non-page record (at most
 * REC_LENGTH_MAX) and one pfn array, whatever the guest's size.
 *
 * vCPU, shared-info, TSC and HVM state are stashed and applied at END, after
 * the checks libxc makes there (vcpu0 context present, cr3 naming a pinned
 * L4 table from the stream, start_info and its xenstore/console frames
 * valid). Every error names the absolute stream offset and the record.
 *
 * Checkpointed streams (Remus/COLO), as xc_domain_restore: the stream up to
 * the first CHECKPOINT is read as above; at each CHECKPOINT the checkpoint
 * callback lets the libxl layer read its records, then the state is applied
 * and (COLO) postcopy, wait_checkpoint and suspend are called and the
 * secondary's dirty pages go back as CHECKPOINT_DIRTY_PFN_LIST. After the
 * first, a checkpoint's pages are staged and applied only once its
 * CHECKPOINT has arrived, so a checkpoint cut off midway is never half
 * applied: the domain keeps the last complete one, and the error says so.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/sim/hvm_context.h"
#include "backends/sim/sim.h"
#include "backends/sim/sim_internal.h"
#include "backends/sim/xen_abi.h"
#include "io/fdio.h"
#include "io/records.h"
#include "io/stream_rules.h"

#define MAX_PAGE_DATA_COUNT 32768u   /* Xen writes 1024; bound our buffers */

struct stash {
    uint8_t *data;
    uint32_t len;
    uint64_t off;              /* where its record starts, for messages */
    bool present;
};

struct rvcpu {
    struct stash basic, extended, xsave, msrs;
};

struct restore_ctx {
    struct sim_backend *sb;
    const struct ls_restore_params *p;
    const struct ls_restore_callbacks *cb;
    struct ls_errbuf *e;
    struct ls_domain_info info;
    struct sim_map map;
    uint64_t off;              /* absolute offset of the next unread byte */
    uint32_t version;
    bool pv;
    struct libxc_rules rules;
    uint64_t max_pfn;          /* PV: highest pfn the guest may use */
    bool verify;
    uint64_t pages_done;

    struct stash pv_info, p2m_frames, shared_info, tsc, hvm_context, cpuid, msr;
    struct libxc_hvm_param *params;
    uint32_t nparams;
    uint64_t params_off;
    struct rvcpu *vcpu[SIMP_MAX_VCPUS];

    uint8_t *pbuf;             /* PAGE_DATA header + pfn array */
    size_t pbuf_cap;
    struct iovec *iov;
    size_t iov_cap;
    uint8_t page[STREAM_PAGE_SIZE];   /* VERIFY bounce page */

    /* Page data goes from the stream fd into the guest's memfd by splice:
     * reading into the mapping instead costs a page fault per page, which
     * dominated a restore. */
    enum { SPLICE_UNTRIED, SPLICE_ON, SPLICE_OFF } splice;
    bool in_is_pipe;
    struct io_splice_stage stage;
    bool map_populated;        /* sim_map_populate was done (scattered batches) */

    /* checkpointed streams: after the first CHECKPOINT, pages are staged */
    bool buffering;
    unsigned checkpoints;      /* complete checkpoints applied */
    uint8_t *ckpt_pages;       /* page data of the checkpoint in flight */
    uint64_t *stage_words;     /* its pfn words, in stream order */
    uint64_t nstage_pages, stage_cap, nstage_words, words_cap;
};

/* Splice the batch's runs (r->iov, in stream order) into the memfd. Returns
 * -EINVAL with *got == 0 and r->splice == SPLICE_OFF when the stream fd
 * cannot splice: the caller reads into the mapping instead. */
static int splice_pages(struct restore_ctx *r, int niov, size_t *got)
{
    *got = 0;
    if (r->splice == SPLICE_UNTRIED) {
        struct stat st;
        r->in_is_pipe = fstat(r->p->io_fd, &st) == 0 && S_ISFIFO(st.st_mode);
        r->splice = r->map.mem_fd >= 0 && (r->in_is_pipe || io_splice_stage_open(&r->stage) == 0)
                        ? SPLICE_ON : SPLICE_OFF;
        if (r->splice == SPLICE_OFF)
            return -EINVAL;
    } else if (r->splice == SPLICE_OFF) {
        return -EINVAL;
    }
    for (int i = 0; i < niov; i++) {
        uint64_t at = (uint64_t)((uint8_t *)r->iov[i].iov_base - r->map.mem);
        size_t n = 0;
        int rc = io_splice_to_file(r->p->io_fd, r->in_is_pipe, r->map.mem_fd, at,
                                   r->iov[i].iov_len, &n, &r->stage, r->p->cancel_fd);
        *got += n;
        if (rc == -EINVAL && *got == 0) {
            r->splice = SPLICE_OFF;   /* e.g. a tty: read it the ordinary way */
            if (!r->in_is_pipe)
                io_splice_stage_close(&r->stage);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A batch of more page runs than this is read into the mapping (readv),
 * not spliced a run at a time. */
#define SCATTERED_RUNS 16

/* ---- reading --------------------------------------------------------------- */

static int rd(struct restore_ctx *r, void *buf, size_t len, uint64_t rec_off, uint32_t type,
              const char *what)
{
    size_t got = 0;
    int rc = io_read_all(r->p->io_fd, buf, len, &got, r->p->cancel_fd);
    r->off += got;
    if (rc == 0)
        return 0;
    const char *rec = type == UINT32_MAX ? "" : libxc_rec_name(type);
    if (rc == -ECANCELED)
        return ls_err(r->e, rc, "restore of domain %u cancelled at offset %" PRIu64,
                      r->p->domid, r->off);
    if (rc == -ENODATA)
        return ls_err(r->e, rc, "offset %" PRIu64 ": stream ended inside %s%s%s (record at offset %" PRIu64 "): %zu of %zu bytes read",
                      r->off, what, *rec ? " of libxc record " : "", rec, rec_off, got, len);
    return ls_err(r->e, rc, "offset %" PRIu64 ": reading %s%s%s: %s", r->off, what,
                  *rec ? " of libxc record " : "", rec, strerror(-rc));
}

static int rec_err(struct restore_ctx *r, int rc, uint64_t rec_off, uint32_t type,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int rec_err(struct restore_ctx *r, int rc, uint64_t rec_off, uint32_t type,
                   const char *fmt, ...)
{
    char msg[LS_ERRBUF_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ls_err(r->e, rc, "offset %" PRIu64 ": libxc record %s (0x%x): %s", rec_off,
                  libxc_rec_name(type), type, msg);
}

static int stash_set(struct stash *s, const uint8_t *b, uint32_t len, uint64_t off)
{
    uint8_t *n = NULL;
    if (len) {
        n = malloc(len);
        if (!n)
            return -ENOMEM;
        memcpy(n, b, len);
    }
    free(s->data);
    s->data = n;
    s->len = len;
    s->off = off;
    s->present = true;
    return 0;
}

static void stash_free(struct stash *s)
{
    free(s->data);
    memset(s, 0, sizeof(*s));
}

static int grow(void **buf, size_t *cap, size_t need, size_t unit)
{
    if (*cap >= need)
        return 0;
    void *n = realloc(*buf, need * unit);
    if (!n)
        return -ENOMEM;
    *buf = n;
    *cap = need;
    return 0;
}

static void progress(struct restore_ctx *r)
{
    if (r->cb->progress)
        r->cb->progress(r->pages_done * STREAM_PAGE_SIZE, 0, r->cb->data);
}

/* ---- PAGE_DATA ------------------------------------------------------------- */

/* A PV page table's present entries must name pfns the guest may have
 * (libxc's localise_page refuses the stream otherwise). */
static int check_pagetable(struct restore_ctx *r, uint64_t rec_off, uint64_t pfn, unsigned type)
{
    const uint8_t *pg = r->map.mem + pfn * STREAM_PAGE_SIZE;
    for (unsigned i = 0; i < STREAM_PAGE_SIZE / 8; i++) {
        uint64_t pte;
        memcpy(&pte, pg + 8 * i, 8);
        if (!(pte & SIM_PTE_PRESENT))
            continue;
        uint64_t f = (pte & SIM_PTE_FRAME_MASK) >> 12;
        if (f > r->max_pfn)
            return rec_err(r, -EINVAL, rec_off, LIBXC_REC_PAGE_DATA,
                           "%s page at pfn 0x%" PRIx64 ": entry %u (0x%" PRIx64 ") maps pfn 0x%" PRIx64 ", beyond max pfn 0x%" PRIx64,
                           libxc_page_type_name(type), pfn, i, pte, f, r->max_pfn);
    }
    return 0;
}

/* The frame types of pages now in guest memory (pfn words as in the stream). */
static int note_frames(struct restore_ctx *r, uint64_t rec_off, const uint8_t *words,
                       uint64_t count)
{
    for (uint64_t i = 0; i < count; i++) {
        uint64_t w;
        memcpy(&w, words + 8 * i, 8);
        unsigned type = libxc_pfn_type(w);
        uint64_t pfn = libxc_pfn_pfn(w);
        if (type == LIBXC_PAGE_XTAB || type == LIBXC_PAGE_BROKEN)
            continue;
        if (type == LIBXC_PAGE_XALLOC) {
            /* Allocated without data: a populated page, contents kept. */
            if (r->map.finfo[pfn] == SIMP_FRAME_ABSENT)
                r->map.finfo[pfn] = LIBXC_PAGE_NOTAB;
            continue;
        }
        unsigned level = type & ~(unsigned)LIBXC_PAGE_LPINTAB;
        int rc;
        if (r->pv && level >= LIBXC_PAGE_L1TAB && level <= LIBXC_PAGE_L4TAB &&
            (rc = check_pagetable(r, rec_off, pfn, type)) < 0)
            return rc;
        r->map.finfo[pfn] = (uint8_t)type;
    }
    return 0;
}

/* A checkpoint's PAGE_DATA after the first: its pfn words and page data go
 * to the stage, not into guest memory (checked as any other already). The
 * stage grows by an eighth at a time, so its peak stays near the largest
 * checkpoint's page bytes. */
static int stage_pages(struct restore_ctx *r, uint64_t rec_off, const uint8_t *words,
                       uint32_t count, uint64_t ndata)
{
    uint64_t need = r->nstage_pages + ndata;
    if (need > r->stage_cap) {
        uint64_t cap = need + need / 8 + 16;
        uint8_t *n = realloc(r->ckpt_pages, cap * STREAM_PAGE_SIZE);
        if (!n)
            return ls_err(r->e, -ENOMEM, "out of memory staging %" PRIu64 " pages of a checkpoint",
                          need);
        r->ckpt_pages = n;
        r->stage_cap = cap;
    }
    uint64_t wneed = r->nstage_words + count;
    if (wneed > r->words_cap) {
        uint64_t cap = wneed + wneed / 8 + 1024;
        uint64_t *n = realloc(r->stage_words, cap * sizeof(*n));
        if (!n)
            return ls_err(r->e, -ENOMEM, "out of memory staging a checkpoint's pfns");
        r->stage_words = n;
        r->words_cap = cap;
    }
    int rc = rd(r, r->ckpt_pages + r->nstage_pages * STREAM_PAGE_SIZE, ndata * STREAM_PAGE_SIZE,
                rec_off, LIBXC_REC_PAGE_DATA, "the page data");
    if (rc < 0)
        return rc;
    memcpy(r->stage_words + r->nstage_words, words, 8 * (size_t)count);
    r->nstage_words += count;
    r->nstage_pages += ndata;
    return 0;
}

/* The checkpoint is whole: its staged pages go into guest memory. */
static int apply_staged(struct restore_ctx *r, uint64_t rec_off)
{
    uint64_t k = 0;
    for (uint64_t i = 0; i < r->nstage_words; i++) {
        unsigned type = libxc_pfn_type(r->stage_words[i]);
        if (!LIBXC_PAGE_TYPE_HAS_DATA(type))
            continue;
        uint64_t pfn = libxc_pfn_pfn(r->stage_words[i]);
        memcpy(r->map.mem + pfn * STREAM_PAGE_SIZE, r->ckpt_pages + k++ * STREAM_PAGE_SIZE,
               STREAM_PAGE_SIZE);
    }
    int rc = note_frames(r, rec_off, (const uint8_t *)r->stage_words, r->nstage_words);
    r->pages_done += r->nstage_pages;
    r->nstage_pages = r->nstage_words = 0;
    progress(r);   /* a checkpoint's pages count once applied (its report reads them) */
    return rc;
}

static int static_data_point(struct restore_ctx *r, uint64_t rec_off, uint32_t type,
                             unsigned missing);

static int page_data(struct restore_ctx *r, uint64_t rec_off, uint32_t len)
{
    const uint32_t T = LIBXC_REC_PAGE_DATA;
    struct libxc_page_data_header ph = { 0 };
    int rc;

    if (grow((void **)&r->pbuf, &r->pbuf_cap, 8 + 8 * 64, 1) < 0)
        return ls_err(r->e, -ENOMEM, "out of memory");
    /* libxc_rules_header refused a body too short for the count header. */
    if ((rc = rd(r, r->pbuf, 8, rec_off, T, "the page-data header")) < 0)
        return rc;
    if ((rc = libxc_rules_page_header(&r->rules, r->pbuf, len, rec_off, r->e)) < 0)
        return rc;
    memcpy(&ph, r->pbuf, sizeof(ph));
    if (ph.count > MAX_PAGE_DATA_COUNT)
        return rec_err(r, -E2BIG, rec_off, T, "count %u exceeds the %u pfns per record this restorer accepts",
                       ph.count, MAX_PAGE_DATA_COUNT);
    size_t arr = 8 + 8 * (size_t)ph.count;
    if (grow((void **)&r->pbuf, &r->pbuf_cap, arr, 1) < 0 ||
        grow((void **)&r->iov, &r->iov_cap, ph.count, sizeof(struct iovec)) < 0)
        return ls_err(r->e, -ENOMEM, "out of memory");
    if ((rc = rd(r, r->pbuf + 8, arr - 8, rec_off, T, "the pfn array")) < 0)
        return rc;
    bool sdd = false;
    unsigned missing = 0;
    if ((rc = libxc_rules_record(&r->rules, T, r->pbuf, (uint32_t)arr, len, rec_off, &sdd,
                                 &missing, r->e)) < 0)
        return rc;
    if (sdd && (rc = static_data_point(r, rec_off, T, missing)) < 0)
        return rc;

    const uint8_t *words = r->pbuf + 8;
    uint64_t ndata = 0;
    int niov = 0;
    for (uint32_t i = 0; i < ph.count; i++) {
        uint64_t w;
        memcpy(&w, words + 8 * i, 8);
        unsigned type = libxc_pfn_type(w);
        uint64_t pfn = libxc_pfn_pfn(w);
        if (type == LIBXC_PAGE_XTAB || type == LIBXC_PAGE_BROKEN)
            continue;
        if (pfn >= r->map.p2m_size)
            return rec_err(r, -EINVAL, rec_off, T, "pfn 0x%" PRIx64 " (index %u) is beyond the domain's p2m size 0x%" PRIx64 " (is the restore target big enough?)",
                           pfn, i, r->map.p2m_size);
        if (r->pv && pfn > r->max_pfn)
            return rec_err(r, -EINVAL, rec_off, T, "pfn 0x%" PRIx64 " (index %u) is outside the guest's maximum pfn 0x%" PRIx64,
                           pfn, i, r->max_pfn);
        if (!LIBXC_PAGE_TYPE_HAS_DATA(type))
            continue;
        ndata++;
        if (r->verify || r->buffering)
            continue;
        uint8_t *pg = r->map.mem + pfn * STREAM_PAGE_SIZE;
        struct iovec *last = niov ? &r->iov[niov - 1] : NULL;
        if (last && (uint8_t *)last->iov_base + last->iov_len == pg)
            last->iov_len += STREAM_PAGE_SIZE;
        else
            r->iov[niov++] = (struct iovec){ .iov_base = pg, .iov_len = STREAM_PAGE_SIZE };
    }
    if (8 + 8 * (uint64_t)ph.count + ndata * STREAM_PAGE_SIZE != len)
        return rec_err(r, -EINVAL, rec_off, T, "length %u does not match %u pfns with %" PRIu64 " data pages",
                       len, ph.count, ndata);

    if (r->buffering)
        return stage_pages(r, rec_off, words, ph.count, ndata);
    if (r->verify) {
        /* VERIFY mode: the sender re-sends memory; compare, do not write. */
        for (uint32_t i = 0; i < ph.count; i++) {
            uint64_t w;
            memcpy(&w, words + 8 * i, 8);
            unsigned type = libxc_pfn_type(w);
            uint64_t pfn = libxc_pfn_pfn(w);
            if (!LIBXC_PAGE_TYPE_HAS_DATA(type))
                continue;
            if ((rc = rd(r, r->page, STREAM_PAGE_SIZE, rec_off, T, "page data")) < 0)
                return rc;
            if (memcmp(r->page, r->map.mem + pfn * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE))
                return rec_err(r, -EIO, rec_off, T, "verify: pfn 0x%" PRIx64 " differs from the restored page", pfn);
        }
        return 0;
    }

    if (niov) {
        size_t got = 0;
        if (niov > SCATTERED_RUNS && r->splice != SPLICE_OFF) {
            /* A later round's scattered pages: a splice per page costs two
             * syscalls per page; one readv into the mapping, whose pages
             * (already received once) are mapped in one go per restore,
             * costs one per batch. */
            if (!r->map_populated) {
                sim_map_populate(&r->map, MADV_POPULATE_WRITE);
                r->map_populated = true;
            }
            rc = io_readv_all(r->p->io_fd, r->iov, niov, &got, r->p->cancel_fd);
        } else {
            rc = splice_pages(r, niov, &got);
        }
        if (r->splice == SPLICE_OFF && got == 0 && rc == -EINVAL) {
            /* Allocate and map the target pages per run before the copy: one
             * page fault per page is the slow way (and costs the same memory). */
            for (int i = 0; i < niov; i++)
                (void)madvise(r->iov[i].iov_base, r->iov[i].iov_len, MADV_POPULATE_WRITE);
            rc = io_readv_all(r->p->io_fd, r->iov, niov, &got, r->p->cancel_fd);
        }
        r->off += got;
        if (rc == -ENODATA)
            return ls_err(r->e, rc, "offset %" PRIu64 ": stream ended inside the page data of libxc record PAGE_DATA (0x1) at offset %" PRIu64 " (%zu of %" PRIu64 " bytes)",
                          r->off, rec_off, got, ndata * STREAM_PAGE_SIZE);
        if (rc == -ECANCELED)
            return ls_err(r->e, rc, "restore of domain %u cancelled at offset %" PRIu64,
                          r->p->domid, r->off);
        if (rc < 0)
            return ls_err(r->e, rc, "offset %" PRIu64 ": reading the page data of libxc record PAGE_DATA (0x1) at offset %" PRIu64 ": %s",
                          r->off, rec_off, strerror(-rc));
    }

    if ((rc = note_frames(r, rec_off, words, ph.count)) < 0)
        return rc;
    r->pages_done += ndata;
    progress(r);
    return 0;
}

/* ---- other records ----------------------------------------------------------- */

static int static_data_point(struct restore_ctx *r, uint64_t rec_off, uint32_t type,
                             unsigned missing)
{
    /* libxc applies the policies here, then tells the toolstack what was
     * missing so it can fall back to its legacy CPUID handling. */
    int rc;
    if (r->cpuid.present &&
        (rc = sim_set(r->sb, r->p->domid, SIMP_K_CPUID_POLICY, 0, r->cpuid.data, r->cpuid.len, r->e)) < 0)
        return rc;
    if (r->msr.present &&
        (rc = sim_set(r->sb, r->p->domid, SIMP_K_MSR_POLICY, 0, r->msr.data, r->msr.len, r->e)) < 0)
        return rc;
    if (r->cb->static_data_done && r->cb->static_data_done(missing, r->cb->data) != 0)
        return rec_err(r, -ECANCELED, rec_off, type, "the static_data_done callback failed (missing 0x%x)",
                       missing);
    return 0;
}

static int vcpu_record(struct restore_ctx *r, uint64_t rec_off, uint32_t type,
                       const uint8_t *body, uint32_t len)
{
    struct libxc_x86_pv_vcpu_hdr vh;
    memcpy(&vh, body, sizeof(vh));      /* length >= 8 checked by the codec */
    uint32_t blen = len - (uint32_t)sizeof(vh);
    const uint8_t *blob = body + sizeof(vh);
    unsigned limit = r->info.vcpus ? r->info.vcpus : SIMP_MAX_VCPUS;
    if (vh.vcpu_id >= limit)
        return rec_err(r, -EINVAL, rec_off, type, "vcpu %u out of range (domain %u has %u vcpus)",
                       vh.vcpu_id, r->p->domid, limit);
    /* The blob's size passed the stream rules (64-bit: PV_INFO said width 8). */
    if (blen == 0)
        return 0;   /* Xen 4.6-4.8 wrote empty vcpu records: nothing to apply */
    if (!r->vcpu[vh.vcpu_id] && !(r->vcpu[vh.vcpu_id] = calloc(1, sizeof(struct rvcpu))))
        return ls_err(r->e, -ENOMEM, "out of memory");
    struct rvcpu *v = r->vcpu[vh.vcpu_id];
    struct stash *s = type == LIBXC_REC_X86_PV_VCPU_BASIC ? &v->basic
                    : type == LIBXC_REC_X86_PV_VCPU_EXTENDED ? &v->extended
                    : type == LIBXC_REC_X86_PV_VCPU_XSAVE ? &v->xsave : &v->msrs;
    return stash_set(s, blob, blen, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
}

static int hvm_params_record(struct restore_ctx *r, uint64_t rec_off, const uint8_t *body,
                             uint32_t len)
{
    const uint32_t T = LIBXC_REC_HVM_PARAMS;
    struct libxc_hvm_params_header h = { 0 };
    if (len)                          /* an empty record is tolerated (errata) */
        memcpy(&h, body, sizeof(h));
    struct libxc_hvm_param *n = h.count ? calloc(h.count, sizeof(*n)) : NULL;
    if (h.count && !n)
        return ls_err(r->e, -ENOMEM, "out of memory");
    uint32_t k = 0;
    for (uint32_t i = 0; i < h.count; i++) {
        struct libxc_hvm_param prm;
        memcpy(&prm, body + sizeof(h) + i * sizeof(prm), sizeof(prm));
        if (prm.index >= HVM_NR_PARAMS) {
            free(n);
            return rec_err(r, -EINVAL, rec_off, T, "entry %u: param index %" PRIu64 " out of range (Xen has %u)",
                           i, prm.index, HVM_NR_PARAMS);
        }
        if (prm.index == HVM_PARAM_PAE_ENABLED)
            continue;       /* libxc drops it: the domain's config decides */
        n[k++] = prm;
    }
    free(r->params);
    r->params = n;
    r->nparams = k;
    r->params_off = rec_off;
    return 0;
}

static int body_record(struct restore_ctx *r, uint64_t rec_off, uint32_t type,
                       const uint8_t *body, uint32_t len)
{
    /* The stream rules let through only records of the domain's type. */
    switch (type) {
    case LIBXC_REC_X86_PV_INFO: {
        struct libxc_x86_pv_info pi;
        memcpy(&pi, body, sizeof(pi));
        if (pi.guest_width != 8 || pi.pt_levels != 4)
            return rec_err(r, -EOPNOTSUPP, rec_off, type, "guest width %u with %u page-table levels: the sim runs 64-bit PV guests only",
                           pi.guest_width, pi.pt_levels);
        return stash_set(&r->pv_info, body, len, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
    }
    case LIBXC_REC_X86_PV_P2M_FRAMES: {
        struct libxc_x86_pv_p2m_frames f;
        memcpy(&f, body, sizeof(f));
        if (f.end_pfn >= r->map.p2m_size)
            return rec_err(r, -EINVAL, rec_off, type, "end pfn 0x%x is beyond the domain's p2m size 0x%" PRIx64 " (is the restore target big enough?)",
                           f.end_pfn, r->map.p2m_size);
        for (uint32_t i = 0; i < (len - sizeof(f)) / 8; i++) {
            uint64_t pfn;
            memcpy(&pfn, body + sizeof(f) + 8 * i, 8);
            if (pfn > f.end_pfn)
                return rec_err(r, -EINVAL, rec_off, type, "p2m frame %u is pfn 0x%" PRIx64 ", beyond end pfn 0x%x",
                               i, pfn, f.end_pfn);
        }
        r->max_pfn = f.end_pfn;
        return stash_set(&r->p2m_frames, body, len, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
    }
    case LIBXC_REC_X86_PV_VCPU_BASIC: case LIBXC_REC_X86_PV_VCPU_EXTENDED:
    case LIBXC_REC_X86_PV_VCPU_XSAVE: case LIBXC_REC_X86_PV_VCPU_MSRS:
        return vcpu_record(r, rec_off, type, body, len);
    case LIBXC_REC_SHARED_INFO:
        return stash_set(&r->shared_info, body, len, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
    case LIBXC_REC_X86_TSC_INFO:
        return stash_set(&r->tsc, body, len, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
    case LIBXC_REC_HVM_CONTEXT:
        return stash_set(&r->hvm_context, body, len, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
    case LIBXC_REC_HVM_PARAMS:
        return hvm_params_record(r, rec_off, body, len);
    case LIBXC_REC_X86_CPUID_POLICY:
        return stash_set(&r->cpuid, body, len, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
    case LIBXC_REC_X86_MSR_POLICY:
        return stash_set(&r->msr, body, len, rec_off) ? ls_err(r->e, -ENOMEM, "out of memory") : 0;
    case LIBXC_REC_VERIFY:
        r->verify = true;
        return 0;
    case LIBXC_REC_CHECKPOINT:
        if (r->p->stream_type == LS_STREAM_PLAIN)
            return rec_err(r, -EPROTO, rec_off, type, "checkpoint in a plain (non-checkpointed) stream");
        return 0;   /* restore_stream handles it */
    case LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST:
        return rec_err(r, -EPROTO, rec_off, type, "belongs on the COLO back channel, not in the main stream");
    case LIBXC_REC_STATIC_DATA_END:
    case LIBXC_REC_TOOLSTACK:       /* deprecated; nothing to apply */
    case LIBXC_REC_END:             /* handled by the caller */
        return 0;
    default:
        if (type & LIBXC_REC_OPTIONAL)
            return 0;   /* unknown optional records are ignored, as libxc does */
        return rec_err(r, -EPROTO, rec_off, type, "unknown mandatory record type");
    }
}

/* ---- END: checks, then apply ------------------------------------------------- */

static const char *finfo_desc(uint8_t t, char buf[32])
{
    if (t == SIMP_FRAME_ABSENT)
        return "not populated";
    snprintf(buf, 32, "a %s page", libxc_page_type_name(t));
    return buf;
}

/* Like libxl's rewrite of the shared-info page on restore: keep the guest's
 * vcpu_info and arch parts, clear pending events and mask them all. */
static void rewrite_shared_info(uint8_t *page)
{
    struct shared_info *s = (struct shared_info *)(void *)page;
    s->arch.pfn_to_mfn_frame_list_list = 0;
    memset(s->evtchn_pending, 0, sizeof(s->evtchn_pending));
    for (unsigned i = 0; i < XEN_LEGACY_MAX_VCPUS; i++)
        s->vcpu_info[i].evtchn_pending_sel = 0;
    memset(s->evtchn_mask, 0xff, sizeof(s->evtchn_mask));
}

static int finish_pv(struct restore_ctx *r, uint64_t end_off, uint64_t *store, uint64_t *console)
{
    const uint32_t B = LIBXC_REC_X86_PV_VCPU_BASIC;
    char d1[32];
    unsigned nv = 0;
    int rc;

    if (!r->vcpu[0] || !r->vcpu[0]->basic.present)
        return rec_err(r, -EINVAL, end_off, LIBXC_REC_END, "no X86_PV_VCPU_BASIC record for vcpu 0");
    for (unsigned v = 0; v < SIMP_MAX_VCPUS; v++) {
        if (!r->vcpu[v] || !r->vcpu[v]->basic.present)
            continue;
        nv = v + 1;
        struct vcpu_guest_context c;
        memcpy(&c, r->vcpu[v]->basic.data, sizeof(c));
        uint64_t off = r->vcpu[v]->basic.off;
        uint64_t cr3 = xen_cr3_to_pfn(c.ctrlreg[3]);
        if (cr3 > r->max_pfn || r->map.finfo[cr3] != (LIBXC_PAGE_LPINTAB | LIBXC_PAGE_L4TAB))
            return rec_err(r, -EINVAL, off, B, "vcpu %u cr3 points at pfn 0x%" PRIx64 ", which is %s, not a pinned L4 table from the stream",
                           v, cr3, cr3 > r->max_pfn ? "beyond the guest's max pfn"
                                                    : finfo_desc(r->map.finfo[cr3], d1));
    }
    struct vcpu_guest_context c0;
    memcpy(&c0, r->vcpu[0]->basic.data, sizeof(c0));
    uint64_t si = c0.user_regs.rdx;
    if (si > r->max_pfn || r->map.finfo[si] == SIMP_FRAME_ABSENT)
        return rec_err(r, -EINVAL, r->vcpu[0]->basic.off, B, "vcpu 0 start_info pfn 0x%" PRIx64 " (rdx) is %s",
                       si, si > r->max_pfn ? "beyond the guest's max pfn" : "not populated");
    struct start_info sinfo;
    memcpy(&sinfo, r->map.mem + si * STREAM_PAGE_SIZE, sizeof(sinfo));
    uint64_t fr[2] = { sinfo.store_mfn, sinfo.console.domU.mfn };
    static const char *const fname[2] = { "xenstore", "console" };
    for (int i = 0; i < 2; i++)
        if (fr[i] > r->max_pfn || r->map.finfo[fr[i]] == SIMP_FRAME_ABSENT)
            return rec_err(r, -EINVAL, r->vcpu[0]->basic.off, B, "start_info at pfn 0x%" PRIx64 " names %s pfn 0x%" PRIx64 ", which is %s",
                           si, fname[i], fr[i], fr[i] > r->max_pfn ? "beyond the guest's max pfn" : "not populated");
    *store = fr[0];
    *console = fr[1];

    /* Apply. */
    uint32_t nv32 = nv;
    if (r->info.vcpus == 0 &&
        (rc = sim_set(r->sb, r->p->domid, SIMP_K_VCPUS, 0, &nv32, sizeof(nv32), r->e)) < 0)
        return rc;
    r->info.vcpus = nv32;      /* a checkpointed stream applies state again */
    if ((rc = sim_set(r->sb, r->p->domid, SIMP_K_PV_INFO, 0, r->pv_info.data, r->pv_info.len, r->e)) < 0 ||
        (rc = sim_set(r->sb, r->p->domid, SIMP_K_P2M_FRAMES, 0, r->p2m_frames.data, r->p2m_frames.len, r->e)) < 0)
        return rc;
    for (unsigned v = 0; v < SIMP_MAX_VCPUS; v++) {
        struct rvcpu *x = r->vcpu[v];
        if (!x)
            continue;
        const struct { unsigned kind; uint32_t type; struct stash *s; } parts[] = {
            { SIMP_K_VCPU_BASIC, LIBXC_REC_X86_PV_VCPU_BASIC, &x->basic },
            { SIMP_K_VCPU_EXTENDED, LIBXC_REC_X86_PV_VCPU_EXTENDED, &x->extended },
            { SIMP_K_VCPU_XSAVE, LIBXC_REC_X86_PV_VCPU_XSAVE, &x->xsave },
            { SIMP_K_VCPU_MSRS, LIBXC_REC_X86_PV_VCPU_MSRS, &x->msrs },
        };
        for (unsigned k = 0; k < 4; k++) {
            if (!parts[k].s->present)
                continue;
            if (!x->basic.present)
                return rec_err(r, -EINVAL, parts[k].s->off, parts[k].type,
                               "state for vcpu %u, which has no X86_PV_VCPU_BASIC record", v);
            if ((rc = sim_set(r->sb, r->p->domid, parts[k].kind, v, parts[k].s->data,
                              parts[k].s->len, r->e)) < 0)
                return rc;
        }
    }
    uint8_t page[STREAM_PAGE_SIZE];
    memcpy(page, r->shared_info.data, sizeof(page));
    rewrite_shared_info(page);
    return sim_set(r->sb, r->p->domid, SIMP_K_SHARED_INFO, 0, page, sizeof(page), r->e);
}

static int finish_hvm(struct restore_ctx *r, uint64_t end_off, uint64_t *store, uint64_t *console)
{
    const uint32_t C = LIBXC_REC_HVM_CONTEXT;
    unsigned ncpus = 0;
    int rc;
    struct ls_errbuf ce;

    if (!r->hvm_context.present || r->hvm_context.len == 0)
        return rec_err(r, -EINVAL, end_off, LIBXC_REC_END, "no HVM_CONTEXT record");
    ls_err_clear(&ce);
    if (sim_hvm_context_check(r->hvm_context.data, r->hvm_context.len, r->info.vcpus, &ncpus, &ce) < 0)
        return rec_err(r, ce.rc, r->hvm_context.off, C, "%s", ce.msg);
    uint32_t nv = ncpus ? ncpus : 1;
    if (r->info.vcpus == 0 &&
        (rc = sim_set(r->sb, r->p->domid, SIMP_K_VCPUS, 0, &nv, sizeof(nv), r->e)) < 0)
        return rc;
    if (r->info.vcpus == 0)
        r->info.vcpus = nv;
    if ((rc = sim_set(r->sb, r->p->domid, SIMP_K_HVM_CONTEXT, 0, r->hvm_context.data,
                      r->hvm_context.len, r->e)) < 0)
        return rc;

    *store = *console = 0;
    if (r->nparams &&
        (rc = sim_set(r->sb, r->p->domid, SIMP_K_HVM_PARAMS, 0, r->params,
                      r->nparams * (uint32_t)sizeof(*r->params), r->e)) < 0)
        return rc;
    /* The rings start clean on the new host, as libxc clears them. */
    for (uint32_t i = 0; i < r->nparams; i++) {
        uint64_t idx = r->params[i].index, pfn = r->params[i].value;
        if (idx == HVM_PARAM_STORE_PFN)
            *store = pfn;
        if (idx == HVM_PARAM_CONSOLE_PFN)
            *console = pfn;
        if (idx != HVM_PARAM_STORE_PFN && idx != HVM_PARAM_CONSOLE_PFN &&
            idx != HVM_PARAM_IOREQ_PFN && idx != HVM_PARAM_BUFIOREQ_PFN)
            continue;
        if (pfn >= r->map.p2m_size || r->map.finfo[pfn] == SIMP_FRAME_ABSENT)
            return rec_err(r, -EINVAL, r->params_off, LIBXC_REC_HVM_PARAMS, "param %" PRIu64 " names pfn 0x%" PRIx64 ", which is not a populated page",
                           idx, pfn);
        memset(r->map.mem + pfn * STREAM_PAGE_SIZE, 0, STREAM_PAGE_SIZE);
    }
    return 0;
}

/* stream_complete: the stashed state into the domain, restore_results. */
static int apply_state(struct restore_ctx *r, uint64_t end_off)
{
    uint64_t store = 0, console = 0;
    int rc = r->pv ? finish_pv(r, end_off, &store, &console) : finish_hvm(r, end_off, &store, &console);
    if (rc == 0 && r->tsc.present)
        rc = sim_set(r->sb, r->p->domid, SIMP_K_TSC_INFO, 0, r->tsc.data, r->tsc.len, r->e);
    if (rc < 0)
        return rc;
    if (r->cb->restore_results)
        r->cb->restore_results(store, console, r->cb->data);
    progress(r);
    return 0;
}

static int finish(struct restore_ctx *r, uint64_t end_off)
{
    int rc = libxc_rules_finish(&r->rules, end_off, r->e);
    return rc < 0 ? rc : apply_state(r, end_off);
}

/* ---- checkpoints ------------------------------------------------------------------ */

/* A COLO callback's answer: 1 goes on; 2 (the channel broke) and 0 end it. */
static int colo_answer(struct restore_ctx *r, int ok, const char *which)
{
    if (ok == LS_CHECKPOINT_SUCCESS)
        return 0;
    return ls_err(r->e, ok == LS_CHECKPOINT_FAILOVER ? -ENOTCONN : -ECANCELED,
                  "restore of domain %u: after checkpoint %u the %s callback answered %s",
                  r->p->domid, r->checkpoints, which,
                  ok == LS_CHECKPOINT_FAILOVER ? "failover (the channel broke)" : "error");
}

/* The secondary's pages dirtied since the last checkpoint, on the back channel. */
static int send_dirty_pfn_list(struct restore_ctx *r)
{
    uint64_t *bitmap = NULL, dirty = 0;
    int rc = sim_logdirty_op(r->sb, r->p->domid, SIMP_LOGDIRTY_CLEAN, &bitmap, &dirty, r->e);
    if (rc < 0)
        return rc;
    uint64_t *rec = malloc(8 + 8 * dirty);
    if (!rec) {
        free(bitmap);
        return ls_err(r->e, -ENOMEM, "out of memory for %" PRIu64 " dirty pfns", dirty);
    }
    uint64_t n = 0;
    for (uint64_t pfn = 0; pfn < r->map.p2m_size && n < dirty; pfn++)
        if (bitmap[pfn / 64] & (UINT64_C(1) << (pfn % 64)))
            rec[1 + n++] = pfn;
    free(bitmap);
    stream_rec_header_encode((uint8_t *)rec, LIBXC_REC_CHECKPOINT_DIRTY_PFN_LIST,
                             (uint32_t)(8 * n));
    rc = io_write_all(r->p->send_back_fd, rec, 8 + 8 * n, r->p->cancel_fd);
    free(rec);
    if (rc < 0)
        return ls_err(r->e, rc == -EPIPE || rc == -ECONNRESET ? -ENOTCONN : rc,
                      "restore of domain %u: writing the dirty page list after checkpoint %u: %s",
                      r->p->domid, r->checkpoints, strerror(-rc));
    return 0;
}

/* handle_checkpoint in libxc's restore: the libxl layer reads its part, the
 * checkpoint is applied, and (COLO) the secondary runs until the next one. */
static int handle_checkpoint(struct restore_ctx *r, uint64_t rec_off)
{
    const struct ls_restore_callbacks *cb = r->cb;
    int ok = cb->checkpoint(cb->data);
    if (ok != LS_CHECKPOINT_SUCCESS)
        return colo_answer(r, ok, "checkpoint");
    int rc = r->buffering ? apply_staged(r, rec_off) : 0;
    if (rc == 0)
        rc = apply_state(r, rec_off);
    if (rc < 0)
        return rc;
    r->checkpoints++;
    bool first = !r->buffering;
    r->buffering = true;
    if (r->p->stream_type != LS_STREAM_COLO)
        return 0;
    if (first && (rc = sim_logdirty_op(r->sb, r->p->domid, SIMP_LOGDIRTY_ENABLE, NULL, NULL,
                                       r->e)) < 0)
        return rc;
    if ((rc = colo_answer(r, cb->postcopy(cb->data), "postcopy")) < 0 ||
        (rc = colo_answer(r, cb->wait_checkpoint(cb->data), "wait_checkpoint")) < 0 ||
        (rc = colo_answer(r, cb->suspend(cb->data), "suspend")) < 0)
        return rc;
    return send_dirty_pfn_list(r);
}

/* ---- the task ----------------------------------------------------------------- */

static int read_headers(struct restore_ctx *r)
{
    uint8_t ih[24], dh[16];
    struct libxc_domain_header h;
    uint64_t o = r->off;
    int rc;

    if ((rc = rd(r, ih, sizeof(ih), o, UINT32_MAX, "the libxc image header")) < 0)
        return rc;
    if ((rc = libxc_image_header_decode(ih, o, r->e)) < 0)
        return rc;
    r->version = (uint32_t)rc;
    o = r->off;
    if ((rc = rd(r, dh, sizeof(dh), o, UINT32_MAX, "the libxc domain header")) < 0)
        return rc;
    if ((rc = libxc_domain_header_decode(dh, &h, o, r->e)) < 0)
        return rc;
    bool stream_pv = h.type == LIBXC_DHDR_TYPE_X86_PV;
    if (r->info.type == LS_GUEST_UNSET) {
        uint32_t t = stream_pv ? LS_GUEST_PV : LS_GUEST_HVM;
        if ((rc = sim_set(r->sb, r->p->domid, SIMP_K_DOMAIN_TYPE, 0, &t, sizeof(t), r->e)) < 0)
            return rc;
        r->info.type = (enum ls_guest_type)t;
    } else if (stream_pv != (r->info.type == LS_GUEST_PV)) {
        return ls_err(r->e, -EINVAL, "offset %" PRIu64 ": libxc domain header type %u (%s) does not match domain %u, which is %s",
                      o, h.type, stream_pv ? "x86 PV" : "x86 HVM", r->p->domid,
                      backend_guest_type_name(r->info.type));
    }
    r->pv = stream_pv;
    r->max_pfn = r->map.p2m_size - 1;
    libxc_rules_init(&r->rules, r->version, h.type);
    return 0;
}

static int restore_stream(struct restore_ctx *r)
{
    uint8_t *body = NULL;
    size_t body_cap = 0;
    int rc = read_headers(r);

    while (rc == 0) {
        uint64_t rec_off = r->off;
        uint8_t rh[8];
        uint32_t type, len;
        if ((rc = rd(r, rh, sizeof(rh), rec_off, UINT32_MAX, "a libxc record header")) < 0)
            break;
        stream_rec_header_decode(rh, &type, &len);
        if ((rc = libxc_rules_header(&r->rules, type, len, rec_off, r->e)) < 0)
            break;
        if (type == LIBXC_REC_PAGE_DATA) {
            rc = page_data(r, rec_off, len);
            continue;
        }
        uint32_t padded = (uint32_t)STREAM_ROUNDUP8(len);
        if (grow((void **)&body, &body_cap, padded ? padded : 1, 1) < 0) {
            rc = ls_err(r->e, -ENOMEM, "out of memory for a %u-byte record", len);
            break;
        }
        assert(body);   /* grow() allocated it: body_cap > 0 only once it has */
        if ((rc = rd(r, body, padded, rec_off, type, "the body")) < 0)
            break;
        if ((rc = libxc_rules_padding(type, body + len, padded - len, len, rec_off, r->e)) < 0)
            break;
        bool sdd = false;
        unsigned missing = 0;
        if ((rc = libxc_rules_record(&r->rules, type, body, len, len, rec_off, &sdd, &missing,
                                     r->e)) < 0)
            break;
        if ((rc = body_record(r, rec_off, type, body, len)) < 0)
            break;
        if (sdd && (rc = static_data_point(r, rec_off, type, missing)) < 0)
            break;
        if (type == LIBXC_REC_CHECKPOINT) {
            rc = handle_checkpoint(r, rec_off);
            continue;
        }
        if (type == LIBXC_REC_END) {
            rc = finish(r, rec_off);
            break;
        }
    }
    free(body);
    if (rc < 0 && r->checkpoints && rc != -ECANCELED) {
        /* Whatever ended it, the domain holds checkpoint N whole. */
        char why[LS_ERRBUF_LEN];
        snprintf(why, sizeof(why), "%s", r->e->msg);
        ls_err_clear(r->e);
        ls_err(r->e, rc, "after checkpoint %u (applied whole; %s): %s", r->checkpoints,
               r->nstage_words ? "the one in flight is dropped" : "none in flight", why);
    }
    return rc;
}

static void ctx_free(struct restore_ctx *r)
{
    struct stash *st[] = { &r->pv_info, &r->p2m_frames, &r->shared_info, &r->tsc,
                           &r->hvm_context, &r->cpuid, &r->msr };
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        stash_free(st[i]);
    for (unsigned v = 0; v < SIMP_MAX_VCPUS; v++) {
        if (!r->vcpu[v])
            continue;
        stash_free(&r->vcpu[v]->basic);
        stash_free(&r->vcpu[v]->extended);
        stash_free(&r->vcpu[v]->xsave);
        stash_free(&r->vcpu[v]->msrs);
        free(r->vcpu[v]);
    }
    free(r->params);
    free(r->ckpt_pages);
    free(r->stage_words);
    free(r->pbuf);
    free(r->iov);
    if (r->splice == SPLICE_ON && !r->in_is_pipe)
        io_splice_stage_close(&r->stage);
    sim_retire_map(r->sb, &r->map);
    free(r);
}

int sim_restore_memory(struct ls_backend *be, const struct ls_restore_params *p,
                       const struct ls_restore_callbacks *cb, struct ls_errbuf *e)
{
    if (!p || !cb || p->io_fd < 0)
        return ls_err(e, -EINVAL, "restore_memory: missing parameters or stream fd");
    if (p->stream_type != LS_STREAM_PLAIN &&
        (!cb->checkpoint || (p->stream_type == LS_STREAM_COLO &&
                             (!cb->postcopy || !cb->wait_checkpoint || !cb->suspend ||
                              p->send_back_fd < 0))))
        return ls_err(e, -EINVAL, "restore of domain %u: a %s stream needs the checkpoint callbacks%s",
                      p->domid, p->stream_type == LS_STREAM_COLO ? "COLO" : "Remus",
                      p->stream_type == LS_STREAM_COLO ? " and a back channel" : "");
    struct restore_ctx *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(e, -ENOMEM, "out of memory");
    r->sb = sim_of(be);
    r->p = p;
    r->cb = cb;
    r->e = e;
    r->off = p->stream_offset;

    int rc = sim_info(r->sb, p->domid, &r->info, e);
    if (rc == 0)
        rc = sim_map_domain(r->sb, p->domid, true, &r->map, e);
    if (rc == 0)
        rc = restore_stream(r);
    ctx_free(r);
    return rc;
}
