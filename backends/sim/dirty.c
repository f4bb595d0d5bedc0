/* backends/sim/dirty.c - a running sim guest's own vCPU, and log-dirty (see dirty.h).
 *
 * The vCPU is a thread of the daemon, one per domain with a workload: the
 * guest writes its memory itself, as a real guest does, never the toolstack.
 * It paces itself against the clock (rate pages per second, in bursts of at
 * most a few thousand writes) and parks whenever the domain stops running;
 * pause and suspend return only once it is parked, so nothing is written
 * after the guest is suspended.
 *
 * The rate follows the clock, not the scheduler: the pace (t0, base) is set
 * when the guest starts running, and a log-dirty read, a pause or a suspend
 * first makes the writes owed for the time elapsed (sim_vcpu_settle), so a
 * vCPU thread that a loaded host did not run still shows its writes. Without
 * that a pre-copy round on a busy machine could see no dirty page at all.
 *
 * Write k goes to a data page chosen from a hash of (seed, k) by the pattern
 * and stores a hash of (seed, k) in one 8-byte word of it, so the memory after
 * K writes is a pure function of the domain's creation and K (replayable).
 */
#include "backends/sim/dirty.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "backends/sim/disk.h"
#include "backends/sim/net.h"
#include "backends/sim/xen_abi.h"

#define PAGE STREAM_PAGE_SIZE
#define BURST_MAX 4096u              /* writes between two looks at the clock and the lock */
#define PARK_CHECK_EVERY 64u         /* writes between two looks at a park request */
#define IDLE_WAIT_NS 10000000u       /* longest sleep between bursts: 10 ms */
#define RATE_MAX UINT64_C(100000000) /* pages per second a SET may ask for */
#define SETTLE_MAX (UINT64_C(1) << 20) /* owed writes one settle makes (a few ms) */

struct sim_vcpu {
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* the thread waits here; so does a parker */
    pthread_t thread;
    bool thread_started;
    bool run;                     /* main: the domain runs and rate > 0 */
    atomic_bool stopping;         /* main: park now; the thread cuts its burst short */
    bool parked;                  /* thread: no write in flight */
    bool hold;                    /* main: park without stopping (a settle) */
    bool quit;
    uint64_t t0, base;            /* the pace: writes owed = base + (now - t0) * rate */
    /* the workload */
    uint64_t rate;
    uint32_t pattern, hot_percent;
    uint64_t seed;
    uint8_t *mem;                 /* the daemon's own mapping of guest memory */
    size_t mem_len;
    uint64_t *pfns;               /* the data pages, in pfn order */
    uint64_t npfns, nhot;
    _Atomic uint64_t writes;      /* made so far (released after the bytes and the bit) */
    uint64_t synced;              /* writes reflected in the vCPU registers (main thread) */
    /* log-dirty */
    atomic_bool logdirty;
    _Atomic uint64_t *bitmap;
    uint64_t words;
    struct sim_net *net;          /* the guest's network output (net.h); set while parked */
    struct sim_disks *disks;      /* the domain's disks (disk.h, d->disks); set while parked */
    bool configured;              /* a workload was set (its seed and pattern are fixed) */
};

static inline uint64_t mix64(uint64_t z)
{
    z += UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- one write -------------------------------------------------------------- */

static uint64_t pick_index(const struct sim_vcpu *v, uint64_t h, uint64_t k)
{
    switch (v->pattern) {
    case SIMP_DIRTY_SEQUENTIAL: return k % v->npfns;
    case SIMP_DIRTY_HOTSET: return ((h % v->nhot) * v->npfns) / v->nhot;  /* spread out */
    default: return h % v->npfns;
    }
}

/* Write number k: the bytes, then the dirty bit, then the count, so whoever
 * sees the count or the bit sees the write. */
static void write_one(struct sim_vcpu *v, uint64_t k)
{
    uint64_t h = mix64(v->seed ^ mix64(k));
    uint64_t pfn = v->pfns[pick_index(v, h, k)];
    uint64_t *word = (uint64_t *)(void *)(v->mem + pfn * PAGE) + ((h >> 40) & (PAGE / 8 - 1));
    __atomic_store_n(word, mix64(h + k), __ATOMIC_RELAXED);
    if (v->net)
        sim_net_on_write(v->net, k, word);   /* before the bit: a nondet value is a write too */
    if (v->disks)
        sim_disks_on_write(v->disks, k);
    if (atomic_load_explicit(&v->logdirty, memory_order_acquire))
        atomic_fetch_or_explicit(&v->bitmap[pfn / 64], UINT64_C(1) << (pfn % 64),
                                 memory_order_release);
    atomic_store_explicit(&v->writes, k + 1, memory_order_release);
}

/* ---- the vCPU thread ------------------------------------------------------------ */

/* Writes owed at `now` by the pace (lock held, guest running). */
static uint64_t owed_target(const struct sim_vcpu *v, uint64_t now)
{
    return v->base + (uint64_t)((double)(now - v->t0) * (double)v->rate / 1e9);
}

static void *vcpu_main(void *arg)
{
    struct sim_vcpu *v = arg;

    pthread_mutex_lock(&v->lock);
    while (!v->quit) {
        if (!v->run || v->hold) {
            v->parked = true;
            pthread_cond_broadcast(&v->cond);
            pthread_cond_wait(&v->cond, &v->lock);
            continue;
        }
        v->parked = false;
        uint64_t now = now_ns(), have = atomic_load(&v->writes);
        uint64_t target = owed_target(v, now);
        if (have >= target) {
            uint64_t next = v->t0 + (uint64_t)((double)(have - v->base + 1) * 1e9 / (double)v->rate);
            uint64_t wait = next > now ? next - now : 0;
            if (wait > IDLE_WAIT_NS)
                wait = IDLE_WAIT_NS;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + wait;
            ts.tv_sec += (time_t)(ns / 1000000000u);
            ts.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&v->cond, &v->lock, &ts);
            continue;
        }
        uint64_t n = target - have;
        if (n > BURST_MAX)
            n = BURST_MAX;
        pthread_mutex_unlock(&v->lock);
        /* A pause or suspend waits for the park: it should not wait a burst. */
        for (uint64_t i = 0; i < n; i++) {
            if (!(i % PARK_CHECK_EVERY) &&
                atomic_load_explicit(&v->stopping, memory_order_relaxed))
                break;
            write_one(v, have + i);
        }
        pthread_mutex_lock(&v->lock);
    }
    v->parked = true;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

/* ---- setup ---------------------------------------------------------------------- */

static struct sim_vcpu *vcpu_get(struct sim_domain *d, struct ls_errbuf *e)
{
    if (d->vcpu)
        return d->vcpu;
    struct sim_vcpu *v = calloc(1, sizeof(*v));
    if (!v) {
        ls_err(e, -ENOMEM, "out of memory");
        return NULL;
    }
    v->words = (d->p2m_size + 63) / 64;
    v->bitmap = calloc(v->words, sizeof(v->bitmap[0]));
    if (!v->bitmap) {
        free(v);
        ls_err(e, -ENOMEM, "out of memory for a log-dirty bitmap of %" PRIu64 " pages",
               d->p2m_size);
        return NULL;
    }
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->parked = true;
    v->disks = d->disks;
    d->vcpu = v;
    return v;
}

/* The guest memory mapping and the data-page list, on first need. */
#pragma GCC diagnostic push
/* analyzer: v->pfns belongs to the vCPU, freed by sim_vcpu_free */
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
static int vcpu_prepare_writes(struct sim_domain *d, struct sim_vcpu *v, struct ls_errbuf *e)
{
    if (v->mem)
        return 0;
    if (d->type == LS_GUEST_UNSET)
        return ls_err(e, -EINVAL, "workload: domain %u has no type yet (an unfinished restore target)",
                      d->domid);
    uint64_t n = 0;
    for (uint64_t pfn = 0; pfn < d->p2m_size; pfn++)
        n += sim_domain_is_data_page(d, pfn);
    if (n == 0)
        return ls_err(e, -EINVAL, "workload: domain %u has no data pages to write", d->domid);
    v->pfns = malloc(n * sizeof(v->pfns[0]));
    if (!v->pfns)
        return ls_err(e, -ENOMEM, "out of memory");
    v->npfns = 0;
    for (uint64_t pfn = 0; pfn < d->p2m_size; pfn++)
        if (sim_domain_is_data_page(d, pfn))
            v->pfns[v->npfns++] = pfn;
    v->mem_len = (size_t)d->p2m_size * PAGE;
    void *m = mmap(NULL, v->mem_len, PROT_READ | PROT_WRITE, MAP_SHARED, d->mem_fd, 0);
    if (m == MAP_FAILED) {
        int rc = -errno;
        free(v->pfns);
        v->pfns = NULL;
        return ls_err(e, rc, "workload: mapping the memory of domain %u: %s", d->domid,
                      strerror(-rc));
    }
    v->mem = m;
    /* Map the data pages into this mapping now, as a running guest's memory
     * is: the first write to each page would otherwise take a page fault
     * (several microseconds on a nested VM) inside the vCPU's bursts, and a
     * pause or suspend would wait for them. */
    for (uint64_t i = 0, run; i < v->npfns; i += run) {
        for (run = 1; i + run < v->npfns && v->pfns[i + run] == v->pfns[i] + run; run++)
            ;
        (void)madvise(v->mem + v->pfns[i] * PAGE, run * PAGE, MADV_POPULATE_WRITE);
    }
    return 0;
}
#pragma GCC diagnostic pop

/* Lock held, the thread parked (or never started), the guest running until
 * now: make the writes its pace owes, whether or not the thread ran. */
static void settle_locked(struct sim_vcpu *v)
{
    uint64_t have = atomic_load(&v->writes), target = owed_target(v, now_ns());
    if (target <= have)
        return;
    if (target - have > SETTLE_MAX) {
        /* Far behind (a rate no thread could hold): re-pace rather than stall. */
        v->base += target - have - SETTLE_MAX;
        target = have + SETTLE_MAX;
    }
    for (uint64_t k = have; k < target; k++)
        write_one(v, k);
}

static void vcpu_park(struct sim_vcpu *v)
{
    atomic_store_explicit(&v->stopping, true, memory_order_relaxed);
    pthread_mutex_lock(&v->lock);
    bool was_running = v->run;
    v->run = false;
    pthread_cond_broadcast(&v->cond);
    while (v->thread_started && !v->parked)
        pthread_cond_wait(&v->cond, &v->lock);
    if (was_running)
        settle_locked(v);   /* it ran until now: what it owes happened before the stop */
    pthread_mutex_unlock(&v->lock);
    if (v->net)
        sim_net_flush(v->net, 200);   /* what it sent before the stop is out when it returns */
    if (v->disks)
        sim_disks_flush(v->disks, 5000);   /* and what it wrote is in its disks */
}

void sim_vcpu_settle(struct sim_domain *d)
{
    struct sim_vcpu *v = d->vcpu;
    if (!v)
        return;
    pthread_mutex_lock(&v->lock);
    if (v->run) {
        v->hold = true;
        atomic_store_explicit(&v->stopping, true, memory_order_relaxed);
        pthread_cond_broadcast(&v->cond);
        while (v->thread_started && !v->parked)
            pthread_cond_wait(&v->cond, &v->lock);
        settle_locked(v);
        v->hold = false;
        atomic_store_explicit(&v->stopping, false, memory_order_relaxed);
        pthread_cond_broadcast(&v->cond);
    }
    pthread_mutex_unlock(&v->lock);
}

/* ---- vCPU state ------------------------------------------------------------------ */

/* Every vCPU's r12 = writes made, r13 = a hash of them: a guest's registers
 * move as it runs, and the state after K writes stays a function of K. */
static void patch_regs(uint64_t *r12, uint64_t *r13, uint64_t seed, uint64_t k)
{
    *r12 = k;
    *r13 = mix64(seed + k);
}

void sim_vcpu_sync(struct sim_domain *d)
{
    struct sim_vcpu *v = d->vcpu;
    if (!v)
        return;
    uint64_t k = atomic_load_explicit(&v->writes, memory_order_acquire);
    if (k == v->synced)
        return;
    v->synced = k;
    if (d->type == LS_GUEST_PV) {
        for (unsigned i = 0; i < d->vcpus; i++) {
            struct sim_blob *b = &d->pv[i].basic;
            struct vcpu_guest_context c;
            if (b->len != sizeof(c))
                continue;
            memcpy(&c, b->data, sizeof(c));
            patch_regs(&c.user_regs.r12, &c.user_regs.r13, v->seed, k);
            memcpy(b->data, &c, sizeof(c));
        }
        return;
    }
    /* HVM/PVH: the CPU records of the HVM context. */
    uint8_t *p = d->hvm_context.data, *end = p + d->hvm_context.len;
    while (p + sizeof(struct hvm_save_descriptor) <= end) {
        struct hvm_save_descriptor dsc;
        memcpy(&dsc, p, sizeof(dsc));
        p += sizeof(dsc);
        if ((size_t)(end - p) < dsc.length)
            break;
        if (dsc.typecode == SIM_HVM_TYPE_CPU && dsc.length == sizeof(struct hvm_hw_cpu)) {
            struct hvm_hw_cpu c;
            memcpy(&c, p, sizeof(c));
            patch_regs(&c.r12, &c.r13, v->seed, k);
            memcpy(p, &c, sizeof(c));
        }
        if (dsc.typecode == SIM_HVM_TYPE_END)
            break;
        p += dsc.length;
    }
}

/* ---- the API ---------------------------------------------------------------------- */

void sim_vcpu_runstate_changed(struct sim_domain *d)
{
    struct sim_vcpu *v = d->vcpu;
    if (!v)
        return;
    bool want = sim_domain_state(d) == LS_RUN_RUNNING && v->rate > 0 && v->mem;
    if (!want) {
        vcpu_park(v);
        sim_vcpu_sync(d);
        return;
    }
    pthread_mutex_lock(&v->lock);
    if (!v->run) {
        /* (Re)started: pace from here; a stopped guest does not catch up. */
        v->t0 = now_ns();
        v->base = atomic_load(&v->writes);
    }
    v->run = true;
    atomic_store_explicit(&v->stopping, false, memory_order_relaxed);
    if (!v->thread_started && pthread_create(&v->thread, NULL, vcpu_main, v) == 0)
        v->thread_started = true;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
}

int sim_vcpu_set_workload(struct sim_domain *d, const struct simp_workload *w,
                          struct ls_errbuf *e)
{
    if (w->pattern > SIMP_DIRTY_SEQUENTIAL)
        return ls_err(e, -EINVAL, "workload: unknown pattern %u", w->pattern);
    if (w->pattern == SIMP_DIRTY_HOTSET && (w->hot_percent < 1 || w->hot_percent > 100))
        return ls_err(e, -EINVAL, "workload: hot set of %u%% (want 1..100)", w->hot_percent);
    if (w->rate > RATE_MAX)
        return ls_err(e, -EINVAL, "workload: %" PRIu64 " pages/s is over the %" PRIu64 " limit",
                      w->rate, RATE_MAX);
    struct sim_vcpu *v = vcpu_get(d, e);
    if (!v)
        return e->rc;
    int rc = vcpu_prepare_writes(d, v, e);
    if (rc < 0)
        return rc;
    vcpu_park(v);
    uint64_t k = atomic_load(&v->writes);
    uint32_t hot = w->pattern == SIMP_DIRTY_HOTSET ? w->hot_percent : 0;
    /* A count only adopted from a checkpoint (a COLO replica whose network came
     * first) was made with another guest's workload: this one may still choose. */
    if (k > 0 && v->configured &&
        (w->pattern != v->pattern || hot != v->hot_percent || w->seed != v->seed))
        rc = ls_err(e, -EBUSY, "workload: domain %u has made %" PRIu64 " writes; its pattern "
                    "and seed can no longer change (only its rate)", d->domid, k);
    else if (w->writes && sim_domain_state(d) == LS_RUN_RUNNING)
        rc = ls_err(e, -EBUSY, "workload: domain %u is running; pause it before replaying writes",
                    d->domid);
    else if (w->writes && w->writes < k)
        rc = ls_err(e, -EINVAL, "workload: domain %u has already made %" PRIu64 " writes, "
                    "more than the %" PRIu64 " to replay", d->domid, k, w->writes);
    if (rc == 0) {
        v->configured = true;
        v->pattern = w->pattern;
        v->hot_percent = hot;
        v->seed = w->seed;
        v->nhot = hot ? (v->npfns * hot + 99) / 100 : 0;
        if (hot && v->nhot == 0)
            v->nhot = 1;
        for (uint64_t i = k; i < w->writes; i++)
            write_one(v, i);
        pthread_mutex_lock(&v->lock);
        v->rate = w->rate;   /* parked: the restart below paces at the new rate */
        pthread_mutex_unlock(&v->lock);
    }
    sim_vcpu_sync(d);
    sim_vcpu_runstate_changed(d);
    return rc;
}

/* The write count a guest carries in vCPU 0's r12: how many writes a
 * migrated-in guest had made, with no vCPU thread here yet. */
static uint64_t writes_in_regs(const struct sim_domain *d)
{
    if (d->type == LS_GUEST_PV) {
        struct vcpu_guest_context c;
        if (!d->vcpus || d->pv[0].basic.len != sizeof(c))
            return 0;
        memcpy(&c, d->pv[0].basic.data, sizeof(c));
        return c.user_regs.r12;
    }
    const uint8_t *p = d->hvm_context.data, *end = p + d->hvm_context.len;
    while (p + sizeof(struct hvm_save_descriptor) <= end) {
        struct hvm_save_descriptor dsc;
        memcpy(&dsc, p, sizeof(dsc));
        p += sizeof(dsc);
        if ((size_t)(end - p) < dsc.length || dsc.typecode == SIM_HVM_TYPE_END)
            break;
        if (dsc.typecode == SIM_HVM_TYPE_CPU && dsc.instance == 0 &&
            dsc.length == sizeof(struct hvm_hw_cpu)) {
            struct hvm_hw_cpu c;
            memcpy(&c, p, sizeof(c));
            return c.r12;
        }
        p += dsc.length;
    }
    return 0;
}

/* A checkpoint set the vCPU state of a domain whose vCPU may have run on its
 * own since the last one (a COLO secondary): from here the guest has made
 * the writes its registers say, not those its thread counted, so it goes on
 * from the primary's count. */
void sim_vcpu_adopt_regs(struct sim_domain *d)
{
    struct sim_vcpu *v = d->vcpu;
    if (!v)
        return;
    vcpu_park(v);
    uint64_t k = writes_in_regs(d);
    atomic_store(&v->writes, k);
    v->synced = k;
    if (v->disks)
        sim_disks_adopt(v->disks, k);   /* those disk writes came by replication */
    pthread_mutex_lock(&v->lock);
    v->base = k;          /* its pace starts again from here when it runs */
    v->t0 = now_ns();
    pthread_mutex_unlock(&v->lock);
    sim_vcpu_runstate_changed(d);
}

void sim_vcpu_disks_changed(struct sim_domain *d)
{
    struct sim_vcpu *v = d->vcpu;
    if (!v || v->disks == d->disks)
        return;
    vcpu_park(v);       /* the vCPU reads v->disks on every write */
    v->disks = d->disks;
    sim_vcpu_runstate_changed(d);
}

int sim_vcpu_net(struct sim_domain *d, unsigned op, const struct simp_net *in,
                 const char *path, struct simp_net *out, int *fd, struct ls_errbuf *e)
{
    if (op > SIMP_NET_CONNECT)
        return ls_err(e, -EINVAL, "net: unknown operation %u (0 config, 1 stats, 2 attach, "
                      "3 connect)", op);
    /* A reader may come first (a COLO secondary's proxy attaches to a replica
     * whose network the checkpoint's owner configures later): no frames until
     * then. Only STATS wants one that exists. */
    struct sim_vcpu *v = op != SIMP_NET_STATS ? vcpu_get(d, e) : d->vcpu;
    if (op != SIMP_NET_STATS && !v)
        return e->rc;
    if (!v || !v->net) {
        if (op == SIMP_NET_STATS)
            return ls_err(e, -ENODEV, "net: domain %u has no network (configure one first)",
                          d->domid);
        struct sim_net *n = sim_net_new();
        if (!n)
            return ls_err(e, -ENOMEM, "out of memory");
        vcpu_park(v);       /* the vCPU reads v->net on every write */
        v->net = n;
        sim_vcpu_runstate_changed(d);
    }
    int rc = 0;
    if (op == SIMP_NET_CONFIG)
        rc = sim_net_config(v->net, in, e);
    else if (op == SIMP_NET_ATTACH)
        rc = sim_net_attach(v->net, fd, e);
    else if (op == SIMP_NET_CONNECT)
        rc = sim_net_connect(v->net, path, e);
    if (rc == 0 && out)
        sim_net_stats(v->net, out);
    return rc;
}

void sim_vcpu_get_workload(struct sim_domain *d, struct simp_workload *out)
{
    memset(out, 0, sizeof(*out));
    struct sim_vcpu *v = d->vcpu;
    if (!v) {
        out->writes = writes_in_regs(d);
        return;
    }
    pthread_mutex_lock(&v->lock);
    out->rate = v->rate;
    out->pattern = v->pattern;
    out->hot_percent = v->hot_percent;
    out->seed = v->seed;
    pthread_mutex_unlock(&v->lock);
    out->writes = atomic_load(&v->writes);
    out->data_pages = v->npfns;
}

int sim_logdirty(struct sim_domain *d, unsigned op, uint8_t **out, uint32_t *len,
                 struct ls_errbuf *e)
{
    *out = NULL;
    *len = 0;
    if (op < SIMP_LOGDIRTY_ENABLE || op > SIMP_LOGDIRTY_PEEK)
        return ls_err(e, -EINVAL, "logdirty: unknown operation %u", op);
    struct sim_vcpu *v = op == SIMP_LOGDIRTY_ENABLE ? vcpu_get(d, e) : d->vcpu;
    if (op == SIMP_LOGDIRTY_ENABLE && !v)
        return e->rc;
    bool on = v && atomic_load(&v->logdirty);
    switch (op) {
    case SIMP_LOGDIRTY_ENABLE:
        if (on)
            return ls_err(e, -EBUSY, "logdirty: already enabled on domain %u", d->domid);
        for (uint64_t i = 0; i < v->words; i++)
            atomic_store_explicit(&v->bitmap[i], 0, memory_order_relaxed);
        atomic_store_explicit(&v->logdirty, true, memory_order_release);
        return 0;
    case SIMP_LOGDIRTY_DISABLE:
        if (v)
            atomic_store(&v->logdirty, false);
        return 0;
    default:
        break;
    }
    if (!on)
        return ls_err(e, -EINVAL, "logdirty: not enabled on domain %u", d->domid);
    sim_vcpu_settle(d);   /* the bitmap shows every write the clock says was made */
    size_t bytes = sizeof(struct simp_logdirty) + v->words * 8;
    uint8_t *buf = malloc(bytes);
    if (!buf)
        return ls_err(e, -ENOMEM, "out of memory");
    uint64_t *words = (uint64_t *)(void *)(buf + sizeof(struct simp_logdirty));
    uint64_t count = 0;
    for (uint64_t i = 0; i < v->words; i++) {
        uint64_t w = op == SIMP_LOGDIRTY_CLEAN
                         ? atomic_exchange_explicit(&v->bitmap[i], 0, memory_order_acq_rel)
                         : atomic_load_explicit(&v->bitmap[i], memory_order_acquire);
        words[i] = w;
        count += (uint64_t)__builtin_popcountll(w);
    }
    struct simp_logdirty hdr = { .dirty_count = count, .p2m_size = d->p2m_size };
    memcpy(buf, &hdr, sizeof(hdr));
    *out = buf;
    *len = (uint32_t)bytes;
    return 0;
}

void sim_vcpu_free(struct sim_domain *d)
{
    void *mem;
    size_t len;
    sim_vcpu_free_but_mapping(d, &mem, &len);
    if (mem)
        munmap(mem, len);
}

void sim_vcpu_free_but_mapping(struct sim_domain *d, void **mem, size_t *len)
{
    struct sim_vcpu *v = d->vcpu;
    *mem = NULL;
    *len = 0;
    if (!v)
        return;
    if (v->thread_started) {
        pthread_mutex_lock(&v->lock);
        v->quit = true;
        pthread_cond_broadcast(&v->cond);
        pthread_mutex_unlock(&v->lock);
        pthread_join(v->thread, NULL);
    }
    *mem = v->mem;
    *len = v->mem_len;
    sim_net_free(v->net);
    free(v->pfns);
    free((void *)v->bitmap);
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cond);
    free(v);
    d->vcpu = NULL;
}
