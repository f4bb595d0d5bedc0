/* backends/sim/guest.c - simulated domains: layout, content, state, digest.
 *
 * Content is a pure function of (type, memory, vcpus, seed): each page's
 * bytes depend only on the seed and its pfn, so generation order does not
 * matter and two daemons build identical guests.
 *
 * PV guests look like a 64-bit Linux PV kernel after xen_pre_suspend: a
 * direct map of all RAM through a real 4-level page-table tree (L4 pinned),
 * a linear p2m list, a start_info page whose store/console frames are pfns,
 * mfn == pfn (the sim's machine frames are the guest's pfns). HVM guests have
 * RAM below the VGA hole and the MMIO hole plus the special pages libxl puts
 * just below 0xff000.
 */
#include "backends/sim/guest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/sim/hash.h"
#include "backends/sim/guestmem.h"
#include "backends/sim/hvm_context.h"
#include "backends/sim/mempool.h"
#include "backends/sim/xen_abi.h"

_Static_assert(SIM_NR_PARAMS >= HVM_NR_PARAMS, "room for every HVM param");

#define PAGE STREAM_PAGE_SIZE
#define PTES_PER_PAGE 512u
#define SIM_DIRECTMAP UINT64_C(0xffff888000000000)   /* L4 slot 273 */
#define SIM_DIRECTMAP_SLOT 273u
#define PTE_TABLE UINT64_C(0x67)                       /* present|rw|user|accessed|dirty */
#define PTE_KERNEL_RW UINT64_C(0x8000000000000163)    /* + global, NX */
#define PTE_KERNEL_RO UINT64_C(0x8000000000000161)    /* page tables are read-only */
#define HVM_VGA_START 0xA0u
#define HVM_VGA_PAGES 0x20u
#define HVM_MMIO_START 0xF0000u
#define HVM_MMIO_PAGES 0x10000u

/* ---- deterministic numbers --------------------------------------------- */

static inline uint64_t mix64(uint64_t z)
{
    z += UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Allocate guest pages in bulk: page faults one at a time cost ~10 us each
 * under nested virtualization, MADV_POPULATE_WRITE a small fraction of it.
 * Failing (older kernel) only costs time: the writes fault the pages in. */
static void prefault(uint8_t *mem, uint64_t first_pfn, uint64_t npages)
{
    if (npages)
        (void)madvise(mem + first_pfn * PAGE, npages * PAGE, MADV_POPULATE_WRITE);
}

/* One data page: 40% zero (allocated, nothing written), 20% a
 * repeating pattern, 40% random. Written 8 bytes at a time. */
static void fill_data_page(uint8_t *page, uint64_t seed, uint64_t pfn)
{
    uint64_t h = mix64(seed ^ mix64(pfn));
    unsigned r = (unsigned)(h % 100);
    uint64_t *w = (uint64_t *)(void *)page;

    if (r < 40)
        return;
    if (r < 60) {
        uint64_t v;
        switch ((h >> 8) & 3) {
        case 0: v = mix64(seed); break;
        case 1: v = UINT64_C(0x0706050403020100); break;
        case 2: v = UINT64_C(0x2020646c726f7720); break;   /* " world  " */
        default: v = UINT64_C(0xFEEDFACE00000000) | (pfn & 0xFFFFFFFFu); break;
        }
        for (unsigned i = 0; i < PAGE / 8; i++)
            w[i] = v;
        return;
    }
    uint64_t s = h | 1;
    for (unsigned i = 0; i < PAGE / 8; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        w[i] = s * UINT64_C(0x2545F4914F6CDD1D);
    }
}

/* ---- layouts ------------------------------------------------------------ */

struct pv_layout {
    uint64_t n;                /* pages */
    uint64_t l4, l3, n_l3, l2, n_l2, l1, n_l1, p2m, n_p2m;
    uint64_t start_info, store, console, first_data;
};

/* The layout of a PV guest of n pages in all: the structure pages first. */
static void pv_layout(uint64_t n, struct pv_layout *l)
{
    l->n = n;
    l->n_l1 = (n + PTES_PER_PAGE - 1) / PTES_PER_PAGE;
    l->n_l2 = (l->n_l1 + PTES_PER_PAGE - 1) / PTES_PER_PAGE;
    l->n_l3 = (l->n_l2 + PTES_PER_PAGE - 1) / PTES_PER_PAGE;
    l->n_p2m = (n + PTES_PER_PAGE - 1) / PTES_PER_PAGE;
    l->l4 = 0;
    l->l3 = 1;
    l->l2 = l->l3 + l->n_l3;
    l->l1 = l->l2 + l->n_l2;
    l->p2m = l->l1 + l->n_l1;
    l->start_info = l->p2m + l->n_p2m;
    l->store = l->start_info + 1;
    l->console = l->store + 1;
    l->first_data = l->console + 1;
}

/* A PV guest's page tables, p2m list, start_info, xenstore and console
 * pages come on top of its RAM, as the special pages of an HVM guest do:
 * the least total whose structure plus `ram` data pages fills it. */
static uint64_t pv_total_pages(uint64_t ram)
{
    uint64_t t = ram;
    for (;;) {
        struct pv_layout l;
        pv_layout(t, &l);
        if (ram + l.first_data == t)
            return t;
        t = ram + l.first_data;   /* grows monotonically to the fixed point */
    }
}

/* The i-th RAM page of an HVM/PVH guest, skipping the holes. */
static uint64_t hvm_ram_pfn(enum ls_guest_type type, uint64_t i)
{
    uint64_t p = i;
    if (type == LS_GUEST_HVM && p >= HVM_VGA_START)
        p += HVM_VGA_PAGES;
    if (p >= HVM_MMIO_START)
        p += HVM_MMIO_PAGES;
    return p;
}

static uint64_t hvm_p2m_size(enum ls_guest_type type, uint64_t pages)
{
    uint64_t top = pages ? hvm_ram_pfn(type, pages - 1) + 1 : 0;
    return top > SIM_HVM_SPECIAL_END ? top : SIM_HVM_SPECIAL_END;
}

/* ---- blobs -------------------------------------------------------------- */

static void blob_free(struct sim_blob *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

#pragma GCC diagnostic push
/* analyzer: b->data owns the copy, freed with the domain */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static int blob_set(struct sim_blob *b, const void *data, uint32_t len)
{
    uint8_t *n = NULL;
    if (len) {
        n = malloc(len);
        if (!n)
            return -ENOMEM;
        memcpy(n, data, len);
    }
    free(b->data);
    b->data = n;
    b->len = len;
    return 0;
}
#pragma GCC diagnostic pop

/* ---- content ------------------------------------------------------------ */

static void gen_pv_pagetables(uint8_t *mem, uint8_t *finfo, const struct pv_layout *l)
{
    uint64_t *e;

    e = (uint64_t *)(void *)(mem + l->l4 * PAGE);
    for (uint64_t i = 0; i < l->n_l3; i++)
        e[SIM_DIRECTMAP_SLOT + i] = ((l->l3 + i) << 12) | PTE_TABLE;
    finfo[l->l4] = LIBXC_PAGE_LPINTAB | LIBXC_PAGE_L4TAB;

    for (uint64_t j = 0; j < l->n_l3; j++) {
        e = (uint64_t *)(void *)(mem + (l->l3 + j) * PAGE);
        for (uint64_t i = 0; i < PTES_PER_PAGE && j * PTES_PER_PAGE + i < l->n_l2; i++)
            e[i] = ((l->l2 + j * PTES_PER_PAGE + i) << 12) | PTE_TABLE;
        finfo[l->l3 + j] = LIBXC_PAGE_L3TAB;
    }
    for (uint64_t j = 0; j < l->n_l2; j++) {
        e = (uint64_t *)(void *)(mem + (l->l2 + j) * PAGE);
        for (uint64_t i = 0; i < PTES_PER_PAGE && j * PTES_PER_PAGE + i < l->n_l1; i++)
            e[i] = ((l->l1 + j * PTES_PER_PAGE + i) << 12) | PTE_TABLE;
        finfo[l->l2 + j] = LIBXC_PAGE_L2TAB;
    }
    for (uint64_t j = 0; j < l->n_l1; j++) {
        e = (uint64_t *)(void *)(mem + (l->l1 + j) * PAGE);
        for (uint64_t i = 0; i < PTES_PER_PAGE; i++) {
            uint64_t pfn = j * PTES_PER_PAGE + i;
            if (pfn >= l->n)
                break;
            bool is_pt = pfn >= l->l4 && pfn < l->l1 + l->n_l1;
            e[i] = (pfn << 12) | (is_pt ? PTE_KERNEL_RO : PTE_KERNEL_RW);
        }
        finfo[l->l1 + j] = LIBXC_PAGE_L1TAB;
    }
}

static void gen_pv_memory(struct sim_domain *d, uint8_t *mem, uint64_t seed)
{
    struct pv_layout l;
    pv_layout(d->p2m_size, &l);
    uint8_t *finfo = d->finfo;

    prefault(mem, 0, l.n);
    gen_pv_pagetables(mem, finfo, &l);

    /* The p2m list: mfn of every pfn (mfn == pfn here), ~0 past the end. */
    for (uint64_t j = 0; j < l.n_p2m; j++) {
        uint64_t *e = (uint64_t *)(void *)(mem + (l.p2m + j) * PAGE);
        for (uint64_t i = 0; i < PTES_PER_PAGE; i++) {
            uint64_t pfn = j * PTES_PER_PAGE + i;
            e[i] = pfn < l.n ? pfn : ~UINT64_C(0);
        }
        finfo[l.p2m + j] = LIBXC_PAGE_NOTAB;
    }

    struct start_info *si = (struct start_info *)(void *)(mem + l.start_info * PAGE);
    snprintf(si->magic, sizeof(si->magic), "xen-3.0-x86_64");
    si->nr_pages = l.n;
    si->shared_info = UINT64_C(0xfee00000);
    si->flags = 0;
    si->store_mfn = l.store;            /* canonicalised to pfns by the guest's suspend */
    si->store_evtchn = SIM_STORE_EVTCHN;
    si->console.domU.mfn = l.console;
    si->console.domU.evtchn = SIM_CONSOLE_EVTCHN;
    si->pt_base = SIM_DIRECTMAP + l.l4 * PAGE;
    si->nr_pt_frames = 1 + l.n_l3 + l.n_l2 + l.n_l1;
    si->mfn_list = SIM_DIRECTMAP + l.p2m * PAGE;
    snprintf((char *)si->cmd_line, sizeof(si->cmd_line),
             "root=/dev/xvda1 console=hvc0 sim.seed=%" PRIu64, seed);
    si->first_p2m_pfn = l.p2m;
    si->nr_p2m_frames = l.n_p2m;
    finfo[l.start_info] = LIBXC_PAGE_NOTAB;

    /* xenstore ring: a few requests' worth of indices; console: a banner. */
    uint32_t *ring_idx = (uint32_t *)(void *)(mem + l.store * PAGE + 2048);
    ring_idx[0] = ring_idx[1] = (uint32_t)(seed & 0xFF);
    ring_idx[2] = ring_idx[3] = (uint32_t)((seed >> 8) & 0xFF);
    finfo[l.store] = LIBXC_PAGE_NOTAB;
    snprintf((char *)mem + l.console * PAGE + 1024, 1024,
             "Linux version 6.1.0-sim (lockstep-simd) seed %" PRIu64 "\n", seed);
    finfo[l.console] = LIBXC_PAGE_NOTAB;

    for (uint64_t pfn = l.first_data; pfn < l.n; pfn++) {
        fill_data_page(mem + pfn * PAGE, seed, pfn);
        finfo[pfn] = LIBXC_PAGE_NOTAB;
    }
}

static void gen_hvm_memory(struct sim_domain *d, uint8_t *mem, uint64_t pages, uint64_t seed)
{
    /* RAM runs between the holes, then the special pages. */
    uint64_t run_start = hvm_ram_pfn(d->type, 0), run_len = 0;
    for (uint64_t i = 0; i < pages; i++) {
        uint64_t pfn = hvm_ram_pfn(d->type, i);
        if (pfn != run_start + run_len) {
            prefault(mem, run_start, run_len);
            run_start = pfn;
            run_len = 0;
        }
        run_len++;
    }
    prefault(mem, run_start, run_len);
    prefault(mem, SIM_HVM_IOREQ_SERVER_PFN, SIM_HVM_SPECIAL_END - SIM_HVM_IOREQ_SERVER_PFN);
    for (uint64_t i = 0; i < pages; i++) {
        uint64_t pfn = hvm_ram_pfn(d->type, i);
        fill_data_page(mem + pfn * PAGE, seed, pfn);
        d->finfo[pfn] = LIBXC_PAGE_NOTAB;
    }
    /* Special pages: rings and ioreq pages start zeroed (restore zeroes them
     * again); the identity page table for real mode has 4 MiB PSE entries. */
    uint64_t first = d->type == LS_GUEST_HVM ? SIM_HVM_IOREQ_SERVER_PFN : SIM_HVM_SPECIAL_PAGING;
    for (uint64_t pfn = first; pfn < SIM_HVM_SPECIAL_END; pfn++)
        d->finfo[pfn] = LIBXC_PAGE_NOTAB;
    if (d->type == LS_GUEST_HVM) {
        uint32_t *pt = (uint32_t *)(void *)(mem + (uint64_t)SIM_HVM_SPECIAL_IDENT_PT * PAGE);
        for (uint32_t i = 0; i < PAGE / 4; i++)
            pt[i] = (i << 22) | 0xE7u;
    }
}

static void gen_hvm_params(struct sim_domain *d)
{
    d->params[HVM_PARAM_STORE_EVTCHN] = SIM_STORE_EVTCHN;
    d->params[HVM_PARAM_CONSOLE_EVTCHN] = SIM_CONSOLE_EVTCHN;
    d->params[HVM_PARAM_STORE_PFN] = SIM_HVM_SPECIAL_XENSTORE;
    d->params[HVM_PARAM_CONSOLE_PFN] = SIM_HVM_SPECIAL_CONSOLE;
    d->params[HVM_PARAM_PAGING_RING_PFN] = SIM_HVM_SPECIAL_PAGING;
    d->params[HVM_PARAM_MONITOR_RING_PFN] = SIM_HVM_SPECIAL_ACCESS;
    d->params[HVM_PARAM_SHARING_RING_PFN] = SIM_HVM_SPECIAL_SHARING;
    if (d->type == LS_GUEST_HVM) {
        d->params[HVM_PARAM_IOREQ_PFN] = SIM_HVM_SPECIAL_IOREQ;
        d->params[HVM_PARAM_BUFIOREQ_PFN] = SIM_HVM_SPECIAL_BUFIOREQ;
        d->params[HVM_PARAM_IDENT_PT] = (uint64_t)SIM_HVM_SPECIAL_IDENT_PT << 12;
        d->params[HVM_PARAM_IOREQ_SERVER_PFN] = SIM_HVM_IOREQ_SERVER_PFN;
        d->params[HVM_PARAM_NR_IOREQ_SERVER_PAGES] = SIM_HVM_IOREQ_SERVER_PAGES;
    }
}

static void put_desc(uint8_t **p, uint16_t type, uint16_t inst, uint32_t len)
{
    struct hvm_save_descriptor dsc = { .typecode = type, .instance = inst, .length = len };
    memcpy(*p, &dsc, sizeof(dsc));
    *p += sizeof(dsc);
}

static int gen_hvm_context(struct sim_domain *d, uint64_t seed, uint32_t khz)
{
    size_t len = 8 + sizeof(struct hvm_save_header) +
                 d->vcpus * (8 + sizeof(struct hvm_hw_cpu)) + 8;
    uint8_t *b = calloc(1, len), *p = b;
    if (!b)
        return -ENOMEM;

    struct hvm_save_header h = {
        .magic = SIM_HVM_MAGIC, .version = SIM_HVM_VERSION,
        .changeset = UINT64_C(0x417), .cpuid = 0x000806ecu, .gtsc_khz = khz,
    };
    put_desc(&p, SIM_HVM_TYPE_HEADER, 0, sizeof(h));
    memcpy(p, &h, sizeof(h));
    p += sizeof(h);

    uint64_t ram = d->memory_kib / 4;
    uint64_t pt = ram > 0x1000 ? 0x1000 : 0;
    for (unsigned v = 0; v < d->vcpus; v++) {
        struct hvm_hw_cpu c;
        memset(&c, 0, sizeof(c));
        uint64_t r = mix64(seed + v);
        c.fpu_regs[0] = 0x7f;      /* FCW 0x037f */
        c.fpu_regs[1] = 0x03;
        c.fpu_regs[24] = 0x80;     /* MXCSR 0x1f80 */
        c.fpu_regs[25] = 0x1f;
        c.rax = r;
        c.rbx = mix64(r);
        c.rsp = UINT64_C(0xffffc90000000000) + (uint64_t)v * 0x4000 + 0x3f00;
        c.rip = UINT64_C(0xffffffff81000000) + (r & 0xFFFFF0);
        c.rflags = 0x246;
        c.cr0 = 0x80050033;
        c.cr3 = pt << 12;
        c.cr4 = 0x3706f0;
        c.dr6 = 0xffff0ff0;
        c.dr7 = 0x400;
        c.cs_sel = 0x10;
        c.ds_sel = c.es_sel = c.ss_sel = 0x18;
        c.tr_sel = 0x40;
        c.cs_limit = c.ds_limit = c.es_limit = c.fs_limit = c.gs_limit = c.ss_limit = 0xffffffff;
        c.tr_limit = 0x206f;
        c.idtr_limit = 0xfff;
        c.gdtr_limit = 0x7f;
        c.gdtr_base = UINT64_C(0xfffffe0000001000) + (uint64_t)v * 0x10000;
        c.idtr_base = UINT64_C(0xfffffe0000000000);
        c.cs_arbytes = 0xa09b;
        c.ds_arbytes = c.es_arbytes = c.ss_arbytes = 0xc093;
        c.fs_arbytes = c.gs_arbytes = 0x1c000;   /* unusable */
        c.tr_arbytes = 0x8b;
        c.ldtr_arbytes = 0x1c000;
        c.msr_lstar = UINT64_C(0xffffffff81a00080);
        c.msr_star = UINT64_C(0x0023001000000000);
        c.msr_syscall_mask = 0x47700;
        c.msr_efer = 0xd01;
        c.msr_tsc_aux = v;
        c.tsc = (seed & 0xFFFFFFFFFFu) * 1000 + v;
        c.flags = XEN_X86_FPU_INITIALISED;
        put_desc(&p, SIM_HVM_TYPE_CPU, (uint16_t)v, sizeof(c));
        memcpy(p, &c, sizeof(c));
        p += sizeof(c);
    }
    put_desc(&p, SIM_HVM_TYPE_END, 0, 0);
    int rc = blob_set(&d->hvm_context, b, (uint32_t)(p - b));
    free(b);
    return rc;
}

#pragma GCC diagnostic push
/* analyzer: blob_set() stores into the domain (see blob_set) */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static int gen_pv_vcpus(struct sim_domain *d, uint64_t seed)
{
    struct pv_layout l;
    pv_layout(d->p2m_size, &l);
    int rc = 0;

    for (unsigned v = 0; v < d->vcpus && rc == 0; v++) {
        struct vcpu_guest_context c;
        memset(&c, 0, sizeof(c));
        uint64_t r = mix64(seed ^ (0xC0DEu + v));
        c.fpu_ctxt.x[0] = 0x7f;
        c.fpu_ctxt.x[1] = 0x03;
        c.fpu_ctxt.x[24] = (char)0x80;
        c.fpu_ctxt.x[25] = 0x1f;
        c.flags = VGCF_i387_valid | VGCF_in_kernel | VGCF_online;
        c.user_regs.rax = (uint64_t)-1;           /* in the suspend hypercall */
        c.user_regs.rbx = r;
        c.user_regs.rdx = v == 0 ? l.start_info : mix64(r) & 0xFFFF;
        c.user_regs.rip = UINT64_C(0xffffffff81001000) + (r & 0xFF0);
        c.user_regs.cs = 0xe033;
        c.user_regs.rflags = 0x246;
        c.user_regs.rsp = UINT64_C(0xffffc90000000000) + (uint64_t)v * 0x4000 + 0x3e00;
        c.user_regs.ss = 0xe02b;
        c.kernel_ss = 0xe02b;
        c.kernel_sp = c.user_regs.rsp + 0x100;
        c.ctrlreg[0] = 0x80050033;
        c.ctrlreg[3] = xen_pfn_to_cr3(l.l4);
        c.ctrlreg[4] = 0x2660;
        c.event_callback_eip = UINT64_C(0xffffffff81a01000);
        c.failsafe_callback_eip = UINT64_C(0xffffffff81a01040);
        c.syscall_callback_eip = UINT64_C(0xffffffff81a01080);
        c.vm_assist = 0x2d;
        c.gs_base_kernel = UINT64_C(0xffff88807fc00000) + (uint64_t)v * 0x40000;
        rc = blob_set(&d->pv[v].basic, &c, sizeof(c));

        uint8_t ext[64] = { 0 };
        uint32_t ext_hdr[2] = { v, sizeof(ext) };      /* vcpu, size */
        memcpy(ext, ext_hdr, sizeof(ext_hdr));
        uint64_t mcg_cap = 0x1000009;
        memcpy(ext + 48, &mcg_cap, 8);
        if (rc == 0)
            rc = blob_set(&d->pv[v].extended, ext, sizeof(ext));

        /* XCR0, XCR0_ACCUM, then the XSAVE area (legacy 512 + header 64 + AVX 256). */
        uint8_t xs[16 + 832] = { 0 };
        uint64_t xcr0 = 7, bv = 7;
        memcpy(xs, &xcr0, 8);
        memcpy(xs + 8, &xcr0, 8);
        xs[16] = 0x7f;
        xs[17] = 0x03;
        xs[16 + 24] = 0x80;
        xs[16 + 25] = 0x1f;
        memcpy(xs + 16 + 512, &bv, 8);
        for (unsigned i = 0; i < 256; i += 8) {
            uint64_t y = mix64(r + i);
            memcpy(xs + 16 + 576 + i, &y, 8);
        }
        if (rc == 0)
            rc = blob_set(&d->pv[v].xsave, xs, sizeof(xs));

        struct libxc_msr_entry msrs[2] = {
            { .idx = 0x48, .flags = 0, .val = 1 },                 /* SPEC_CTRL: IBRS */
            { .idx = 0xc0000103, .flags = 0, .val = v },           /* TSC_AUX */
        };
        if (rc == 0)
            rc = blob_set(&d->pv[v].msrs, msrs, sizeof(msrs));
    }
    return rc;
}
#pragma GCC diagnostic pop

/* shared_info as it looks after libxc restore would rewrite it: no pending
 * events, everything masked, no frame-list-list; vcpu_info times set. */
static int gen_shared_info(struct sim_domain *d, uint64_t seed)
{
    uint8_t page[PAGE] = { 0 };
    struct shared_info *s = (struct shared_info *)(void *)page;
    for (unsigned v = 0; v < d->vcpus && v < XEN_LEGACY_MAX_VCPUS; v++) {
        s->vcpu_info[v].evtchn_upcall_mask = 1;
        s->vcpu_info[v].time.version = 2;
        s->vcpu_info[v].time.tsc_timestamp = mix64(seed + v) & 0xFFFFFFFFFFFu;
        s->vcpu_info[v].time.system_time = (seed & 0xFFFFFFu) * 1000000u;
        s->vcpu_info[v].time.tsc_to_system_mul = 0xd5555555u;
        s->vcpu_info[v].time.tsc_shift = -1;
    }
    memset(s->evtchn_mask, 0xff, sizeof(s->evtchn_mask));
    s->arch.max_pfn = d->p2m_size;
    s->arch.p2m_vaddr = SIM_DIRECTMAP;
    s->arch.p2m_generation = 4;
    return blob_set(&d->shared_info, page, sizeof(page));
}

static int gen_policies(struct sim_domain *d)
{
    static const struct libxc_cpuid_leaf cpuid[] = {
        { 0x0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69 },   /* "GenuineIntel" */
        { 0x1, 0, 0x000806ec, 0x00100800, 0xf6f82203, 0x178bfbff },
        { 0x7, 0, 0x0, 0x009c4fbb, 0x00000004, 0xbc000400 },
        { 0xd, 0, 0x7, 0x340, 0x340, 0x0 },
        { 0xd, 1, 0x1, 0x0, 0x0, 0x0 },
        { 0x80000000, 0, 0x80000008, 0, 0, 0 },
        { 0x80000001, 0, 0, 0, 0x00000121, 0x2c100800 },
    };
    static const struct libxc_msr_entry msr[] = {
        { .idx = 0xce, .flags = 0, .val = UINT64_C(0x80000000) },   /* PLATFORM_INFO: CPUID faulting */
        { .idx = 0x10a, .flags = 0, .val = 0 },                     /* ARCH_CAPABILITIES */
    };
    int rc = blob_set(&d->cpuid, cpuid, sizeof(cpuid));
    return rc ? rc : blob_set(&d->msr, msr, sizeof(msr));
}

/* ---- create / free ------------------------------------------------------ */

static bool name_ok(const char *name, size_t cap)
{
    size_t n = strnlen(name, cap);
    if (n == cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '/')
            return false;
    }
    return true;
}

static const char *type_name(enum ls_guest_type t)
{
    switch (t) {
    case LS_GUEST_PV: return "pv";
    case LS_GUEST_HVM: return "hvm";
    case LS_GUEST_PVH: return "pvh";
    default: return "unset";
    }
}

static int make_memfds(struct sim_domain *d, struct ls_errbuf *e)
{
    char n[64];
    snprintf(n, sizeof(n), "sim-dom%u-mem", d->domid);
    d->mem_fd = sim_pool_take(d->p2m_size * PAGE);
    d->memory_from_pool = d->mem_fd >= 0;
    if (d->mem_fd < 0)
        d->mem_fd = sim_guestmem_new(n);
    snprintf(n, sizeof(n), "sim-dom%u-frameinfo", d->domid);
    d->finfo_fd = memfd_create(n, MFD_CLOEXEC);
    if (d->mem_fd < 0 || d->finfo_fd < 0)
        return ls_err(e, -errno, "allocating the memory of domain %u: %s", d->domid, strerror(errno));
    if ((!d->memory_from_pool && ftruncate(d->mem_fd, (off_t)(d->p2m_size * PAGE)) < 0) ||
        ftruncate(d->finfo_fd, (off_t)d->p2m_size) < 0)
        return ls_err(e, -errno, "sizing guest memory of %" PRIu64 " pages: %s",
                      d->p2m_size, strerror(errno));
    void *m = mmap(NULL, d->p2m_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->finfo_fd, 0);
    if (m == MAP_FAILED)
        return ls_err(e, -errno, "mapping frame info: %s", strerror(errno));
    d->finfo = m;
    memset(d->finfo, SIMP_FRAME_ABSENT, d->p2m_size);
    return 0;
}

int sim_domain_create(struct sim_domain *d, uint32_t domid, const struct simp_create *c,
                      struct ls_errbuf *e)
{
    bool populate = c->flags & SIMP_CREATE_POPULATE;

    memset(d, 0, sizeof(*d));
    d->mem_fd = d->finfo_fd = -1;
    d->domid = domid;

    if (c->flags & ~(SIMP_CREATE_POPULATE | SIMP_CREATE_GUARD | SIMP_CREATE_DM_LOAD_STATE_IN_PLACE))
        return ls_err(e, -EINVAL, "create: unknown flags 0x%x", c->flags);
    if (c->device_model > SIMP_DM_STANDIN)
        return ls_err(e, -EINVAL, "create: unknown device model %u", c->device_model);
    if (c->type > LS_GUEST_PVH || (populate && c->type == LS_GUEST_UNSET))
        return ls_err(e, -EINVAL, "create: bad guest type %u (want pv, hvm or pvh%s)",
                      c->type, populate ? "" : ", or unset for a restore target");
    if (c->vcpus > SIMP_MAX_VCPUS || (populate && c->vcpus == 0))
        return ls_err(e, -EINVAL, "create: %u vcpus (want 1..%u)", c->vcpus, SIMP_MAX_VCPUS);
    if (c->memory_kib > SIMP_MAX_MEMORY_KIB || c->memory_kib % 4 ||
        (populate && c->memory_kib == 0))
        return ls_err(e, -EINVAL, "create: memory %" PRIu64 " KiB (want a multiple of 4, 4..%" PRIu64 ")",
                      c->memory_kib, (uint64_t)SIMP_MAX_MEMORY_KIB);
    if (!name_ok(c->name, sizeof(c->name)))
        return ls_err(e, -EINVAL, "create: name must be printable ASCII without spaces, quotes, '\\' or '/', under %u bytes",
                      SIMP_NAME_LEN);

    uint64_t pages = c->memory_kib / 4;
    d->type = (enum ls_guest_type)c->type;
    d->vcpus = c->vcpus;
    d->memory_kib = c->memory_kib;
    d->paused = !populate;
    if (c->name[0])
        snprintf(d->name, sizeof(d->name), "%s", c->name);
    else
        snprintf(d->name, sizeof(d->name), "sim%u", domid);

    if (pages == 0)
        d->p2m_size = SIMP_RESTORE_DEFAULT_P2M;
    else if (d->type == LS_GUEST_PV)
        d->p2m_size = pv_total_pages(pages);
    else if (d->type == LS_GUEST_UNSET)     /* room for either kind */
        d->p2m_size = hvm_p2m_size(LS_GUEST_HVM, pages) > pv_total_pages(pages)
                          ? hvm_p2m_size(LS_GUEST_HVM, pages) : pv_total_pages(pages);
    else
        d->p2m_size = hvm_p2m_size(d->type, pages);

    d->pv = calloc(SIMP_MAX_VCPUS, sizeof(*d->pv));
    if (!d->pv)
        return ls_err(e, -ENOMEM, "out of memory");
    int rc = make_memfds(d, e);
    if (rc < 0)
        return rc;

    if (d->type == LS_GUEST_HVM || d->type == LS_GUEST_PVH || d->type == LS_GUEST_UNSET) {
        /* The toolstack binds these at build, restore target or not. */
        d->params[HVM_PARAM_STORE_EVTCHN] = SIM_STORE_EVTCHN;
        d->params[HVM_PARAM_CONSOLE_EVTCHN] = SIM_CONSOLE_EVTCHN;
    }
    if (!populate)
        return 0;

    void *mem = mmap(NULL, d->p2m_size * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, d->mem_fd, 0);
    if (mem == MAP_FAILED)
        return ls_err(e, -errno, "mapping guest memory: %s", strerror(errno));
    if (d->type == LS_GUEST_PV)
        gen_pv_memory(d, mem, c->seed);
    else
        gen_hvm_memory(d, mem, pages, c->seed);
    munmap(mem, d->p2m_size * PAGE);

    uint32_t khz = 2000000u + (uint32_t)(mix64(c->seed) % 1000000u);
    struct libxc_x86_tsc_info tsc = {
        .mode = 0, .khz = khz, .nsec = mix64(c->seed + 1) & 0xFFFFFFFFFFFFu,
        .incarnation = 0, .reserved = 0,
    };
    rc = blob_set(&d->tsc, &tsc, sizeof(tsc));
    if (rc == 0)
        rc = gen_policies(d);
    if (rc == 0 && d->type == LS_GUEST_PV) {
        struct libxc_x86_pv_info pi = { .guest_width = 8, .pt_levels = 4 };
        rc = blob_set(&d->pv_info, &pi, sizeof(pi));
        struct pv_layout l;
        pv_layout(d->p2m_size, &l);
        uint32_t flen = (uint32_t)(sizeof(struct libxc_x86_pv_p2m_frames) + 8 * l.n_p2m);
        uint8_t *f = rc == 0 ? malloc(flen) : NULL;
        if (rc == 0 && !f)
            rc = -ENOMEM;
        if (rc == 0) {
            struct libxc_x86_pv_p2m_frames h = { .start_pfn = 0, .end_pfn = (uint32_t)(l.n - 1) };
            memcpy(f, &h, sizeof(h));
            for (uint64_t i = 0; i < l.n_p2m; i++) {
                uint64_t pfn = l.p2m + i;
                memcpy(f + sizeof(h) + 8 * i, &pfn, 8);
            }
            rc = blob_set(&d->p2m_frames, f, flen);
        }
        free(f);
        if (rc == 0)
            rc = gen_pv_vcpus(d, c->seed);
        if (rc == 0)
            rc = gen_shared_info(d, c->seed);
    } else if (rc == 0) {
        gen_hvm_params(d);
        rc = gen_hvm_context(d, c->seed, khz);
    }
    if (rc < 0)
        return ls_err(e, rc, "out of memory building the guest");
    return 0;
}

void sim_domain_free(struct sim_domain *d)
{
    if (d->finfo)
        munmap(d->finfo, d->p2m_size);
    if (d->mem_fd >= 0)
        close(d->mem_fd);
    if (d->finfo_fd >= 0)
        close(d->finfo_fd);
    if (d->pv) {
        for (unsigned v = 0; v < SIMP_MAX_VCPUS; v++) {
            blob_free(&d->pv[v].basic);
            blob_free(&d->pv[v].extended);
            blob_free(&d->pv[v].xsave);
            blob_free(&d->pv[v].msrs);
        }
        free(d->pv);
    }
    struct sim_blob *bl[] = { &d->shared_info, &d->tsc, &d->hvm_context, &d->cpuid, &d->msr,
                              &d->pv_info, &d->p2m_frames, &d->config };
    for (size_t i = 0; i < sizeof(bl) / sizeof(bl[0]); i++)
        blob_free(bl[i]);
    memset(d, 0, sizeof(*d));
    d->mem_fd = d->finfo_fd = -1;
}

/* ---- queries ------------------------------------------------------------ */

enum ls_run_state sim_domain_state(const struct sim_domain *d)
{
    if (d->suspended)
        return LS_RUN_SUSPENDED;
    return d->paused ? LS_RUN_PAUSED : LS_RUN_RUNNING;
}

/* Every domain info call counts the frames (a client's restore fills them
 * through its mapping, so no count can be kept): an HVM p2m is ~1M entries
 * whatever the memory, so eight at a time, absent bytes (0xff) found as the
 * zero bytes of the complement. */
uint64_t sim_domain_populated(const struct sim_domain *d)
{
    _Static_assert(SIMP_FRAME_ABSENT == 0xFFu, "the count below looks for 0xff bytes");
    const uint64_t lo7 = UINT64_C(0x7f7f7f7f7f7f7f7f);
    uint64_t absent = 0, pfn = 0;
    for (; pfn + 8 <= d->p2m_size; pfn += 8) {
        uint64_t w;
        memcpy(&w, d->finfo + pfn, sizeof(w));
        uint64_t x = ~w;   /* an absent frame's byte is now 0 */
        absent += (uint64_t)__builtin_popcountll(~(((x & lo7) + lo7) | x | lo7));
    }
    for (; pfn < d->p2m_size; pfn++)
        absent += d->finfo[pfn] == SIMP_FRAME_ABSENT;
    return d->p2m_size - absent;
}

bool sim_domain_is_data_page(const struct sim_domain *d, uint64_t pfn)
{
    if (pfn >= d->p2m_size || d->finfo[pfn] != LIBXC_PAGE_NOTAB)
        return false;
    if (d->type == LS_GUEST_PV) {
        struct pv_layout l;
        pv_layout(d->p2m_size, &l);
        return pfn >= l.first_data;
    }
    uint64_t first_special = d->type == LS_GUEST_HVM ? SIM_HVM_IOREQ_SERVER_PFN
                                                      : SIM_HVM_SPECIAL_PAGING;
    return pfn < first_special || pfn >= SIM_HVM_SPECIAL_END;
}

void sim_domain_info(const struct sim_domain *d, struct simp_dominfo *out)
{
    memset(out, 0, sizeof(*out));
    out->domid = d->domid;
    out->type = d->type;
    out->state = sim_domain_state(d);
    out->vcpus = d->vcpus;
    out->memory_kib = sim_domain_populated(d) * 4;
    out->p2m_size = d->p2m_size;
    memcpy(out->name, d->name, sizeof(out->name));
}

static void hash_blob(struct sim_hash *h, const struct sim_blob *b)
{
    sim_hash_u64(h, b->len);
    if (b->len)
        sim_hash_update(h, b->data, b->len);
}

#define DIGEST_RUN 256u   /* pages per pread */

int sim_domain_digest(const struct sim_domain *d, char hex[65], struct ls_errbuf *e)
{
    struct sim_hash h;
    uint8_t *buf = malloc((size_t)DIGEST_RUN * PAGE);
    if (!buf)
        return ls_err(e, -ENOMEM, "out of memory");

    sim_hash_init(&h);
    sim_hash_update(&h, "lockstep-sim-digest-v1", 22);
    sim_hash_u64(&h, d->type);
    sim_hash_u64(&h, d->vcpus);
    if (d->type == LS_GUEST_PV) {
        hash_blob(&h, &d->pv_info);
        hash_blob(&h, &d->p2m_frames);
    }

    /* pread, not mmap: reading a hole of the memfd must not allocate it. */
    uint64_t npages = 0;
    for (uint64_t pfn = 0; pfn < d->p2m_size;) {
        if (d->finfo[pfn] == SIMP_FRAME_ABSENT) {
            pfn++;
            continue;
        }
        uint64_t n = 1;
        while (n < DIGEST_RUN && pfn + n < d->p2m_size && d->finfo[pfn + n] != SIMP_FRAME_ABSENT)
            n++;
        size_t want = (size_t)n * PAGE, got = 0;
        while (got < want) {
            ssize_t r = pread(d->mem_fd, buf + got, want - got, (off_t)(pfn * PAGE + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                free(buf);
                return ls_err(e, r < 0 ? -errno : -EIO, "reading guest page 0x%" PRIx64 ": %s",
                              pfn, r < 0 ? strerror(errno) : "short read");
            }
            got += (size_t)r;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint64_t hdr[2] = { pfn + i, d->finfo[pfn + i] };
            sim_hash_update(&h, hdr, sizeof(hdr));
            sim_hash_update(&h, buf + i * PAGE, PAGE);
        }
        npages += n;
        pfn += n;
    }
    free(buf);
    sim_hash_u64(&h, npages);

    if (d->type == LS_GUEST_PV) {
        for (unsigned v = 0; v < d->vcpus; v++) {
            hash_blob(&h, &d->pv[v].basic);
            hash_blob(&h, &d->pv[v].extended);
            hash_blob(&h, &d->pv[v].xsave);
            hash_blob(&h, &d->pv[v].msrs);
        }
        hash_blob(&h, &d->shared_info);
    }
    hash_blob(&h, &d->tsc);
    if (d->type == LS_GUEST_HVM || d->type == LS_GUEST_PVH) {
        hash_blob(&h, &d->hvm_context);
        /* Only the params a save carries: the rest (event channels) belong to
         * the host the domain runs on. */
        size_t np;
        const uint32_t *pl = sim_hvm_saved_params(&np);
        for (size_t i = 0; i < np; i++) {
            sim_hash_u64(&h, pl[i]);
            sim_hash_u64(&h, d->params[pl[i]]);
        }
    }
    hash_blob(&h, &d->cpuid);
    hash_blob(&h, &d->msr);
    sim_hash_final_hex(&h, hex);
    return 0;
}

/* ---- get / set ---------------------------------------------------------- */

static bool is_hvmlike(const struct sim_domain *d)
{
    return d->type == LS_GUEST_HVM || d->type == LS_GUEST_PVH;
}

static int dup_out(const void *src, uint32_t len, uint8_t **out, uint32_t *olen,
                   struct ls_errbuf *e)
{
    *out = NULL;
    *olen = len;
    if (!len)
        return 0;
    *out = malloc(len);
    if (!*out)
        return ls_err(e, -ENOMEM, "out of memory");
    memcpy(*out, src, len);
    return 0;
}

static char *config_json(const struct sim_domain *d)
{
    char *s = NULL;
    char type[32] = "";
    if (d->type != LS_GUEST_UNSET)
        snprintf(type, sizeof(type), "\"type\":\"%s\",", type_name(d->type));
    if (asprintf(&s, "{\"c_info\":{%s\"name\":\"%s\"},\"b_info\":{\"max_vcpus\":%u,"
                     "\"max_memkb\":%" PRIu64 ",\"target_memkb\":%" PRIu64 "}}",
                 type, d->name, d->vcpus, d->memory_kib, d->memory_kib) < 0)
        return NULL;
    return s;
}

static struct sim_blob *pv_vcpu_blob(struct sim_domain *d, unsigned kind, unsigned v)
{
    switch (kind) {
    case SIMP_K_VCPU_BASIC: return &d->pv[v].basic;
    case SIMP_K_VCPU_EXTENDED: return &d->pv[v].extended;
    case SIMP_K_VCPU_XSAVE: return &d->pv[v].xsave;
    default: return &d->pv[v].msrs;
    }
}

static int check_kind_type(const struct sim_domain *d, unsigned kind, struct ls_errbuf *e)
{
    switch (kind) {
    case SIMP_K_VCPU_BASIC: case SIMP_K_VCPU_EXTENDED: case SIMP_K_VCPU_XSAVE:
    case SIMP_K_VCPU_MSRS: case SIMP_K_SHARED_INFO: case SIMP_K_PV_INFO:
    case SIMP_K_P2M_FRAMES:
        if (d->type != LS_GUEST_PV)
            return ls_err(e, -EINVAL, "%s: domain %u is %s, not PV", simp_kind_name(kind),
                          d->domid, type_name(d->type));
        return 0;
    case SIMP_K_HVM_CONTEXT: case SIMP_K_HVM_PARAMS:
        if (!is_hvmlike(d))
            return ls_err(e, -EINVAL, "%s: domain %u is %s, not HVM or PVH", simp_kind_name(kind),
                          d->domid, type_name(d->type));
        return 0;
    case SIMP_K_TSC_INFO: case SIMP_K_CPUID_POLICY: case SIMP_K_MSR_POLICY:
    case SIMP_K_DOMAIN_TYPE: case SIMP_K_VCPUS: case SIMP_K_CONFIG_JSON:
        return 0;
    default:
        return ls_err(e, -EINVAL, "unknown state kind %u", kind);
    }
}

static int check_vcpu_index(const struct sim_domain *d, unsigned kind, unsigned index,
                            struct ls_errbuf *e)
{
    if (kind < SIMP_K_VCPU_BASIC || kind > SIMP_K_VCPU_MSRS)
        return 0;
    if (index >= d->vcpus)
        return ls_err(e, -EINVAL, "%s: vcpu %u out of range (domain %u has %u vcpus)",
                      simp_kind_name(kind), index, d->domid, d->vcpus);
    return 0;
}

int sim_domain_get(const struct sim_domain *d, unsigned kind, unsigned index,
                   uint8_t **out, uint32_t *len, struct ls_errbuf *e)
{
    int rc = check_kind_type(d, kind, e);
    if (rc == 0)
        rc = check_vcpu_index(d, kind, index, e);
    if (rc < 0)
        return rc;
    switch (kind) {
    case SIMP_K_VCPU_BASIC: case SIMP_K_VCPU_EXTENDED: case SIMP_K_VCPU_XSAVE:
    case SIMP_K_VCPU_MSRS: {
        const struct sim_blob *b = pv_vcpu_blob((struct sim_domain *)d, kind, index);
        return dup_out(b->data, b->len, out, len, e);
    }
    case SIMP_K_SHARED_INFO: return dup_out(d->shared_info.data, d->shared_info.len, out, len, e);
    case SIMP_K_TSC_INFO: return dup_out(d->tsc.data, d->tsc.len, out, len, e);
    case SIMP_K_HVM_CONTEXT: return dup_out(d->hvm_context.data, d->hvm_context.len, out, len, e);
    case SIMP_K_CPUID_POLICY: return dup_out(d->cpuid.data, d->cpuid.len, out, len, e);
    case SIMP_K_MSR_POLICY: return dup_out(d->msr.data, d->msr.len, out, len, e);
    case SIMP_K_PV_INFO: return dup_out(d->pv_info.data, d->pv_info.len, out, len, e);
    case SIMP_K_P2M_FRAMES: return dup_out(d->p2m_frames.data, d->p2m_frames.len, out, len, e);
    case SIMP_K_HVM_PARAMS: {
        struct libxc_hvm_param p[SIM_NR_PARAMS];
        uint32_t n = 0;
        for (uint32_t i = 0; i < HVM_NR_PARAMS; i++)
            if (d->params[i])
                p[n++] = (struct libxc_hvm_param){ .index = i, .value = d->params[i] };
        return dup_out(p, n * (uint32_t)sizeof(p[0]), out, len, e);
    }
    case SIMP_K_DOMAIN_TYPE: {
        uint32_t t = d->type;
        return dup_out(&t, sizeof(t), out, len, e);
    }
    case SIMP_K_VCPUS: {
        uint32_t v = d->vcpus;
        return dup_out(&v, sizeof(v), out, len, e);
    }
    default: {   /* SIMP_K_CONFIG_JSON */
        if (d->config.len)
            return dup_out(d->config.data, d->config.len, out, len, e);
        char *s = config_json(d);
        if (!s)
            return ls_err(e, -ENOMEM, "out of memory");
        rc = dup_out(s, (uint32_t)strlen(s), out, len, e);
        free(s);
        return rc;
    }
    }
}

#define SIM_BLOB_MAX (1u << 20)   /* XSAVE areas, policies, config */

static int set_p2m_frames(struct sim_domain *d, const uint8_t *in, uint32_t len,
                          struct ls_errbuf *e)
{
    struct libxc_x86_pv_p2m_frames h;
    if (len < sizeof(h) || (len - sizeof(h)) % 8)
        return ls_err(e, -EINVAL, "p2m-frames: %u bytes, want 8 + 8 * frames", len);
    memcpy(&h, in, sizeof(h));
    if (h.start_pfn > h.end_pfn || h.end_pfn >= d->p2m_size)
        return ls_err(e, -EINVAL, "p2m-frames: pfn range 0x%x-0x%x does not fit p2m size 0x%" PRIx64,
                      h.start_pfn, h.end_pfn, d->p2m_size);
    uint32_t want = h.end_pfn / PTES_PER_PAGE - h.start_pfn / PTES_PER_PAGE + 1;
    if ((len - sizeof(h)) / 8 != want)
        return ls_err(e, -EINVAL, "p2m-frames: %u frames for pfns 0x%x-0x%x, want %u",
                      (uint32_t)((len - sizeof(h)) / 8), h.start_pfn, h.end_pfn, want);
    for (uint32_t i = 0; i < want; i++) {
        uint64_t pfn;
        memcpy(&pfn, in + sizeof(h) + 8 * i, 8);
        if (pfn >= d->p2m_size)
            return ls_err(e, -EINVAL, "p2m-frames: frame %u is pfn 0x%" PRIx64 ", beyond p2m size 0x%" PRIx64,
                          i, pfn, d->p2m_size);
    }
    return blob_set(&d->p2m_frames, in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
}

#pragma GCC diagnostic push
/* analyzer: blob_set() stores into the domain (see blob_set) */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static int set_vcpu_blob(struct sim_domain *d, unsigned kind, unsigned v, const uint8_t *in,
                         uint32_t len, struct ls_errbuf *e)
{
    const char *k = simp_kind_name(kind);
    switch (kind) {
    case SIMP_K_VCPU_BASIC:
        if (len != 0 && len != LIBXC_X86_64_VCPU_BASIC_SIZE)
            return ls_err(e, -EINVAL, "%s: %u bytes, want %u", k, len, LIBXC_X86_64_VCPU_BASIC_SIZE);
        break;
    case SIMP_K_VCPU_EXTENDED:
        if (len > LIBXC_X86_VCPU_EXTENDED_MAX)
            return ls_err(e, -EINVAL, "%s: %u bytes, at most %u", k, len, LIBXC_X86_VCPU_EXTENDED_MAX);
        break;
    case SIMP_K_VCPU_XSAVE:
        if ((len != 0 && len < LIBXC_X86_VCPU_XSAVE_MIN) || len > SIM_BLOB_MAX)
            return ls_err(e, -EINVAL, "%s: %u bytes, want %u..%u", k, len, LIBXC_X86_VCPU_XSAVE_MIN, SIM_BLOB_MAX);
        break;
    default:
        if (len % 16 || len > SIM_BLOB_MAX)
            return ls_err(e, -EINVAL, "%s: %u bytes, want a multiple of 16", k, len);
        break;
    }
    return blob_set(pv_vcpu_blob(d, kind, v), in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
}
#pragma GCC diagnostic pop

static int set_u32(const uint8_t *in, uint32_t len, uint32_t *v, unsigned kind, struct ls_errbuf *e)
{
    if (len != 4)
        return ls_err(e, -EINVAL, "%s: %u bytes, want 4", simp_kind_name(kind), len);
    memcpy(v, in, 4);
    return 0;
}

#pragma GCC diagnostic push
/* analyzer: blob_set() stores into the domain (see blob_set) */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
int sim_domain_set(struct sim_domain *d, unsigned kind, unsigned index,
                   const uint8_t *in, uint32_t len, struct ls_errbuf *e)
{
    int rc = check_kind_type(d, kind, e);
    if (rc == 0)
        rc = check_vcpu_index(d, kind, index, e);
    if (rc < 0)
        return rc;
    const char *k = simp_kind_name(kind);
    uint32_t v = 0;

    switch (kind) {
    case SIMP_K_VCPU_BASIC: case SIMP_K_VCPU_EXTENDED: case SIMP_K_VCPU_XSAVE:
    case SIMP_K_VCPU_MSRS:
        return set_vcpu_blob(d, kind, index, in, len, e);
    case SIMP_K_SHARED_INFO:
        if (len != PAGE)
            return ls_err(e, -EINVAL, "%s: %u bytes, want %u", k, len, PAGE);
        return blob_set(&d->shared_info, in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
    case SIMP_K_TSC_INFO: {
        struct libxc_x86_tsc_info t;
        if (len != sizeof(t))
            return ls_err(e, -EINVAL, "%s: %u bytes, want %zu", k, len, sizeof(t));
        memcpy(&t, in, sizeof(t));
        if (t.reserved)
            return ls_err(e, -EINVAL, "%s: reserved field is 0x%x", k, t.reserved);
        if (t.mode > 3)
            return ls_err(e, -EINVAL, "%s: unknown TSC mode %u", k, t.mode);
        return blob_set(&d->tsc, in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
    }
    case SIMP_K_HVM_CONTEXT: {
        unsigned ncpus;
        rc = sim_hvm_context_check(in, len, d->vcpus, &ncpus, e);
        if (rc < 0)
            return rc;
        return blob_set(&d->hvm_context, in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
    }
    case SIMP_K_HVM_PARAMS: {
        if (len % sizeof(struct libxc_hvm_param))
            return ls_err(e, -EINVAL, "%s: %u bytes, want a multiple of 16", k, len);
        for (uint32_t i = 0; i < len / 16; i++) {
            struct libxc_hvm_param p;
            memcpy(&p, in + 16 * i, sizeof(p));
            if (p.index >= HVM_NR_PARAMS)
                return ls_err(e, -EINVAL, "%s: param index %" PRIu64 " out of range (< %u)",
                              k, p.index, HVM_NR_PARAMS);
        }
        for (uint32_t i = 0; i < len / 16; i++) {
            struct libxc_hvm_param p;
            memcpy(&p, in + 16 * i, sizeof(p));
            d->params[p.index] = p.value;
        }
        return 0;
    }
    case SIMP_K_CPUID_POLICY: case SIMP_K_MSR_POLICY: {
        unsigned unit = kind == SIMP_K_CPUID_POLICY ? 24 : 16;
        if (len % unit || len > SIM_BLOB_MAX)
            return ls_err(e, -EINVAL, "%s: %u bytes, want a multiple of %u", k, len, unit);
        struct sim_blob *b = kind == SIMP_K_CPUID_POLICY ? &d->cpuid : &d->msr;
        return blob_set(b, in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
    }
    case SIMP_K_PV_INFO: {
        struct libxc_x86_pv_info pi;
        if (len != sizeof(pi))
            return ls_err(e, -EINVAL, "%s: %u bytes, want 8", k, len);
        memcpy(&pi, in, sizeof(pi));
        if (pi.guest_width != 8 || pi.pt_levels != 4)
            return ls_err(e, -EOPNOTSUPP, "%s: guest width %u, %u page-table levels: the sim runs only 64-bit PV guests (width 8, 4 levels)",
                          k, pi.guest_width, pi.pt_levels);
        return blob_set(&d->pv_info, in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
    }
    case SIMP_K_P2M_FRAMES:
        return set_p2m_frames(d, in, len, e);
    case SIMP_K_DOMAIN_TYPE:
        rc = set_u32(in, len, &v, kind, e);
        if (rc < 0)
            return rc;
        if (v < LS_GUEST_PV || v > LS_GUEST_PVH)
            return ls_err(e, -EINVAL, "%s: bad type %u", k, v);
        if (d->type != LS_GUEST_UNSET && d->type != v)
            return ls_err(e, -EPERM, "%s: domain %u is already %s", k, d->domid, type_name(d->type));
        d->type = (enum ls_guest_type)v;
        return 0;
    case SIMP_K_VCPUS:
        rc = set_u32(in, len, &v, kind, e);
        if (rc < 0)
            return rc;
        if (v == 0 || v > SIMP_MAX_VCPUS)
            return ls_err(e, -EINVAL, "%s: %u (want 1..%u)", k, v, SIMP_MAX_VCPUS);
        if (d->vcpus != 0 && d->vcpus != v)
            return ls_err(e, -EPERM, "%s: domain %u already has %u vcpus", k, d->domid, d->vcpus);
        d->vcpus = v;
        return 0;
    default:   /* SIMP_K_CONFIG_JSON */
        if (len > SIM_BLOB_MAX)
            return ls_err(e, -E2BIG, "%s: %u bytes, at most %u", k, len, SIM_BLOB_MAX);
        while (len && in[len - 1] == '\0')
            len--;
        if (memchr(in, '\0', len))
            return ls_err(e, -EINVAL, "%s: NUL byte inside the text", k);
        return blob_set(&d->config, in, len) ? ls_err(e, -ENOMEM, "out of memory") : 0;
    }
}
#pragma GCC diagnostic pop
