/* backends/sim/simd.c - lockstep-simd, the simulated hypervisor daemon.
 *
 * Domains live here, outside every lockstep process, so killing lockstep
 * leaves the guests running, and killing this daemon is "the host died".
 * Single-threaded poll() server on a unix socket in the runtime directory
 * (see proto.h for the protocol). Started on demand by the client; exits by
 * itself after --idle-exit seconds with no domain and no client.
 *
 * Usage: lockstep-simd [--rundir DIR] [--idle-exit SECONDS] [--foreground]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/sim/dirty.h"
#include "backends/sim/disk.h"
#include "backends/sim/guest.h"
#include "backends/sim/guestmem.h"
#include "backends/sim/mempool.h"
#include "backends/sim/proto.h"
#include "io/size.h"

#define MAX_CONNS 256
#define DEFAULT_IDLE_EXIT 30
/* A local root service bounds what one client can make it hold or do. */
#define SMALL_REQUEST_MAX 4096u              /* every op's payload but SET's */
#define INFLIGHT_MAX (UINT32_C(64) << 20)    /* payload bytes buffered over all clients */
#define REFUSED_MAX 8                        /* other uids' connections awaiting their refusal */
#define DEFAULT_REQUEST_RATE 50000u          /* requests per second per client (a burst of 1/10 s) */

struct conn {
    int fd;
    uint64_t id;           /* never reused: a guard names the client that set it */
    pid_t pid;             /* SO_PEERCRED's, for the log: who changed a domain's state */
    uint8_t hdr[sizeof(struct simp_hdr)];
    size_t hgot;
    uint8_t *payload;
    uint32_t pgot;
    bool have_hdr;
    /* Pending reply: not reading further requests until it is flushed. */
    uint8_t *out;
    size_t olen, osent;
    int ofds[2];
    int nofds;
    bool close_after;      /* framing lost or protocol violated: close once sent */
    int in_fd;             /* an fd that came with the request (HANDOFF), or -1 */
    char refused[160];     /* another uid (SO_PEERCRED): its first request gets this */
    double tokens;         /* requests it may still send now (a token bucket) */
    uint64_t tokens_ms;    /* when tokens was last topped up */
};

static struct {
    char rundir[PATH_MAX];
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char pid_path[PATH_MAX];
    int listen_fd, sig_fd, pid_fd;
    unsigned idle_exit;
    struct conn *conns[MAX_CONNS];
    size_t nconns;
    struct sim_domain *doms[SIMP_MAX_DOMAINS];
    size_t ndoms;
    uint32_t next_domid;
    uint64_t next_client;
    bool quit;
    bool huge_pages;   /* --huge-pages: guest memory in 2 MiB pages (guestmem.h) */
    unsigned request_rate;   /* --request-rate: per client, per second */
    uint64_t inflight;       /* payload bytes allocated for requests being read */
    unsigned nrefused;
} g = { .listen_fd = -1, .sig_fd = -1, .pid_fd = -1, .idle_exit = DEFAULT_IDLE_EXIT,
        .next_domid = 1, .request_rate = DEFAULT_REQUEST_RATE };

#define DOMID_LAST 0x7FEFu   /* Xen's DOMID_FIRST_RESERVED - 1 */

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    flockfile(stderr);   /* one line, whichever thread logs (memory release threads do) */
    fprintf(stderr, "%s.%03ld simd[%d]: ", stamp, ts.tv_nsec / 1000000, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    funlockfile(stderr);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- domains ------------------------------------------------------------ */

static struct sim_domain *dom_find(uint32_t domid)
{
    for (size_t i = 0; i < g.ndoms; i++)
        if (g.doms[i]->domid == domid)
            return g.doms[i];
    return NULL;
}

static uint32_t dom_alloc_id(void)
{
    for (unsigned tries = 0; tries < DOMID_LAST; tries++) {
        uint32_t id = g.next_domid;
        g.next_domid = id >= DOMID_LAST ? 1 : id + 1;
        if (!dom_find(id))
            return id;
    }
    return 0;
}

struct memory_release {
    void *vcpu_map;
    size_t vcpu_map_len;
    int mem_fd;
    uint32_t domid;
    struct sim_pool_refill *refill;   /* planned at the destroy, so the pool counts it at once */
};

static void *release_memory(void *arg)
{
    struct memory_release *r = arg;
    if (r->vcpu_map)
        munmap(r->vcpu_map, r->vcpu_map_len);
    struct sim_pool_refill *refill = r->refill;
    if (r->mem_fd >= 0)
        close(r->mem_fd);   /* the last reference here frees the guest's pages */
    if (refill) {   /* ...and, with a pool, the host takes as much back */
        uint64_t t0 = now_ms(), mib = sim_pool_refill_bytes(refill) >> 20;
        int rc = sim_pool_refill(refill);
        if (rc == 0)
            logmsg("memory pool: %" PRIu64 " MiB in domain %u's layout allocated again in %" PRIu64 " ms",
                   mib, r->domid, now_ms() - t0);
        else
            logmsg("memory pool: allocating %" PRIu64 " MiB in domain %u's layout failed: %s",
                   mib, r->domid, strerror(-rc));
    }
    free(r);
    return NULL;
}

/* Giving a destroyed domain's memory back (unmapping the vCPU's mapping, the
 * close that frees the memfd's pages) takes a few hundred ms per GiB here; a
 * detached thread does it, as Xen relinquishes a dying domain's memory after
 * the destroy has returned. The domain itself is gone at once. */
static void release_memory_later(struct sim_domain *d)
{
    struct memory_release *r = malloc(sizeof(*r));
    void *map;
    size_t len;
    sim_vcpu_free_but_mapping(d, &map, &len);
    if (!r) {
        if (map)
            munmap(map, len);
        return;     /* sim_domain_free closes the memfd */
    }
    *r = (struct memory_release){ .vcpu_map = map, .vcpu_map_len = len, .mem_fd = d->mem_fd,
                                  .domid = d->domid,
                                  .refill = d->mem_fd >= 0 ? sim_pool_plan_refill(d->mem_fd) : NULL };
    d->mem_fd = -1;
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, release_memory, r) != 0)
        release_memory(r);
    pthread_attr_destroy(&at);
}

static void dm_discard_standby(struct sim_domain *d, const char *why);

/* The guest's disks as -drive values for a QEMU of it (disk.h). */
struct drives {
    char opt[4][SIMP_PATH_LEN + 160];
    const char *list[5];
};
static const char *const *drive_list(const struct sim_domain *d, struct drives *dr)
{
    unsigned n = sim_disks_count(d->disks);
    for (unsigned i = 0; i < n && i < 4; i++) {
        sim_disks_drive_opts(d->disks, i, dr->opt[i], sizeof(dr->opt[i]));
        dr->list[i] = dr->opt[i];
    }
    dr->list[n < 4 ? n : 4] = NULL;
    return dr->list;
}

/* The disk writer writes through the block QEMU while it lives. */
static void disks_follow_blk(struct sim_domain *d)
{
    if (d->disks)
        sim_disks_set_dir(d->disks, d->blk.pid > 0 && d->blk.alive ? d->blk.dir : "");
}

static void dom_remove(struct sim_domain *d)
{
    if (d->dm.pid > 0)
        logmsg("domain %u: killing its device model (pid %d)", d->domid, (int)d->dm.pid);
    sim_dm_kill(&d->dm);   /* the device model never outlives its domain */
    dm_discard_standby(d, "its domain is destroyed");
    if (d->blk.pid > 0)
        logmsg("domain %u: killing its block QEMU (pid %d)", d->domid, (int)d->blk.pid);
    sim_dm_kill(&d->blk);
    release_memory_later(d);      /* the vCPU stops: nothing owes disk writes any more */
    sim_disks_free(d->disks);
    d->disks = NULL;
    for (size_t i = 0; i < g.ndoms; i++) {
        if (g.doms[i] == d) {
            memmove(&g.doms[i], &g.doms[i + 1], (g.ndoms - i - 1) * sizeof(g.doms[0]));
            g.ndoms--;
            break;
        }
    }
    sim_domain_free(d);
    free(d);
}

/* ---- replies ------------------------------------------------------------ */

static void conn_set_reply(struct conn *c, const struct simp_hdr *req, int status,
                           const void *payload, uint32_t len, const int *fds, int nfds)
{
    struct simp_hdr h = {
        .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = req->op, .domid = req->domid,
        .kind = req->kind, .index = req->index, .len = len, .status = status,
    };
    c->out = malloc(sizeof(h) + len);
    if (!c->out) {
        /* No memory for a reply: the only honest thing left is to hang up. */
        c->close_after = true;
        c->olen = c->osent = 0;
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return;
    }
    memcpy(c->out, &h, sizeof(h));
    if (len)
        memcpy(c->out + sizeof(h), payload, len);
    c->olen = sizeof(h) + len;
    c->osent = 0;
    c->nofds = nfds;
    for (int i = 0; i < nfds; i++)
        c->ofds[i] = fds[i];
}

static void conn_reply_err(struct conn *c, const struct simp_hdr *req, int rc, const char *msg)
{
    size_t n = strlen(msg);
    if (n > SIMP_ERRMSG_MAX)
        n = SIMP_ERRMSG_MAX;
    if (rc >= 0)
        rc = -EIO;
    conn_set_reply(c, req, rc, msg, (uint32_t)n, NULL, 0);
}

/* ---- request handling --------------------------------------------------- */

static int need_len(const struct simp_hdr *h, uint32_t want, struct ls_errbuf *e)
{
    if (h->len != want)
        return ls_err(e, -EINVAL, "%s: payload of %u bytes, want %u", simp_op_name(h->op),
                      h->len, want);
    return 0;
}

static struct sim_domain *need_dom(const struct simp_hdr *h, struct ls_errbuf *e)
{
    struct sim_domain *d = dom_find(h->domid);
    if (!d)
        ls_err(e, -ESRCH, "%s: no domain %u", simp_op_name(h->op), h->domid);
    return d;
}

static int op_create(struct conn *c, const struct simp_hdr *h, const uint8_t *p,
                     struct ls_errbuf *e)
{
    struct simp_create cr;
    int rc = need_len(h, sizeof(cr), e);
    if (rc < 0)
        return rc;
    memcpy(&cr, p, sizeof(cr));
    if (g.ndoms >= SIMP_MAX_DOMAINS)
        return ls_err(e, -ENOSPC, "create: already %zu domains, the limit", g.ndoms);
    uint32_t domid = dom_alloc_id();
    struct sim_domain *d = calloc(1, sizeof(*d));
    if (!d || !domid) {
        free(d);
        return ls_err(e, -ENOSPC, "create: no free domain id or memory");
    }
    uint64_t t0 = now_ms();
    rc = sim_domain_create(d, domid, &cr, e);
    d->seed = cr.seed;
    if (rc < 0) {
        sim_domain_free(d);
        free(d);
        return rc;
    }
    /* libxl starts a new HVM guest's device model with the domain; a restore
     * target's QEMU waits for the stream's device state (DM_START). */
    if (d->type == LS_GUEST_HVM && (cr.flags & SIMP_CREATE_POPULATE) &&
        cr.device_model == SIMP_DM_QEMU) {
        cr.qemu[sizeof(cr.qemu) - 1] = '\0';
        rc = sim_dm_spawn(&d->dm, g.rundir, domid, cr.qemu, -1, e);
        if (rc == 0 && (cr.flags & SIMP_CREATE_DM_LOAD_STATE_IN_PLACE))
            d->dm.caps |= SIMP_DM_CAP_LOAD_STATE_IN_PLACE;
        if (rc < 0) {
            sim_vcpu_free(d);
            sim_domain_free(d);
            free(d);
            return rc;
        }
        logmsg("domain %u: device model %s started, pid %d, QMP %s", domid, d->dm.qemu,
               (int)d->dm.pid, d->dm.qmp_path);
    }
    g.doms[g.ndoms++] = d;
    if (cr.flags & SIMP_CREATE_GUARD) {
        d->guard = SIMP_GUARD_DESTROY;
        d->guard_client = c->id;
    }
    logmsg("created domain %u '%s' type %u vcpus %u memory %" PRIu64 " KiB p2m 0x%" PRIx64
           "%s in %" PRIu64 " ms%s", domid, d->name, d->type, d->vcpus, d->memory_kib, d->p2m_size,
           (cr.flags & SIMP_CREATE_POPULATE) ? " populated" : " (restore target)", now_ms() - t0,
           d->memory_from_pool ? ", memory from the pool" : "");
    uint32_t out[2] = { domid, 0 };
    conn_set_reply(c, h, 0, out, sizeof(out), NULL, 0);
    return 0;
}

static int cmp_info(const void *a, const void *b)
{
    const struct simp_dominfo *x = a, *y = b;
    return x->domid < y->domid ? -1 : x->domid > y->domid;
}

static int op_list(struct conn *c, const struct simp_hdr *h, struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    struct simp_dominfo *v = calloc(g.ndoms ? g.ndoms : 1, sizeof(*v));
    if (!v)
        return ls_err(e, -ENOMEM, "list: out of memory");
    for (size_t i = 0; i < g.ndoms; i++)
        sim_domain_info(g.doms[i], &v[i]);
    qsort(v, g.ndoms, sizeof(*v), cmp_info);
    conn_set_reply(c, h, 0, v, (uint32_t)(g.ndoms * sizeof(*v)), NULL, 0);
    free(v);
    return 0;
}

static int op_runstate(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                       struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    switch (h->op) {
    case SIMP_OP_PAUSE:
        d->paused = true;
        break;
    case SIMP_OP_UNPAUSE:
        if (h->kind & ~SIMP_RUN_KEEP_GUARD)
            return ls_err(e, -EINVAL, "unpause: bad flags %u", h->kind);
        d->paused = false;
        if (d->guard == SIMP_GUARD_DESTROY && !(h->kind & SIMP_RUN_KEEP_GUARD))
            d->guard = SIMP_GUARD_NONE;     /* started: no longer a partial domain */
        break;
    case SIMP_OP_SUSPEND:
        if (d->suspended)
            break;
        if (d->paused)
            return ls_err(e, -ETIMEDOUT, "suspend: domain %u is paused, so the guest cannot acknowledge the suspend request",
                          d->domid);
        d->suspended = true;   /* a running sim guest cooperates at once */
        break;
    case SIMP_OP_RESUME:
        if (h->kind & ~(SIMP_RUN_FAST | SIMP_RUN_KEEP_GUARD))
            return ls_err(e, -EINVAL, "resume: bad flags %u", h->kind);
        d->suspended = false;
        if (!(h->kind & SIMP_RUN_KEEP_GUARD))
            d->guard = SIMP_GUARD_NONE;
        break;
    default:
        break;
    }
    sim_vcpu_runstate_changed(d);   /* parks the vCPU before a pause or suspend is answered */
    logmsg("domain %u: %s -> state %d%s (client %" PRIu64 ", pid %d)", d->domid,
           simp_op_name(h->op), sim_domain_state(d),
           (h->kind & SIMP_RUN_KEEP_GUARD) && d->guard ? ", guard kept" : "", c->id, (int)c->pid);
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

static int op_map(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                  struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    /* Duplicates: the domain may be destroyed before the reply is flushed. */
    int fds[2] = { fcntl(d->mem_fd, F_DUPFD_CLOEXEC, 3), fcntl(d->finfo_fd, F_DUPFD_CLOEXEC, 3) };
    if (fds[0] < 0 || fds[1] < 0) {
        rc = -errno;
        if (fds[0] >= 0)
            close(fds[0]);
        if (fds[1] >= 0)
            close(fds[1]);
        return ls_err(e, rc, "map: dup: %s", strerror(-rc));
    }
    uint64_t p2m = d->p2m_size;
    conn_set_reply(c, h, 0, &p2m, sizeof(p2m), fds, 2);
    return 0;
}

static int op_logdirty(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                       struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    uint8_t *out;
    uint32_t len;
    rc = sim_logdirty(d, h->kind, &out, &len, e);
    if (rc < 0)
        return rc;
    if (h->kind == SIMP_LOGDIRTY_ENABLE || h->kind == SIMP_LOGDIRTY_DISABLE)
        logmsg("domain %u: log-dirty %s", d->domid, h->kind == SIMP_LOGDIRTY_ENABLE ? "on" : "off");
    conn_set_reply(c, h, 0, out, len, NULL, 0);
    free(out);
    return 0;
}

static int op_guard(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                    struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    if (h->kind > SIMP_GUARD_DESTROY)
        return ls_err(e, -EINVAL, "guard: unknown action %u", h->kind);
    if (d->guard && d->guard_client != c->id && h->kind != SIMP_GUARD_NONE)
        return ls_err(e, -EBUSY, "guard: domain %u is already guarded by another client", d->domid);
    d->guard = h->kind;
    d->guard_client = h->kind ? c->id : 0;
    logmsg("domain %u: guard %s (client %" PRIu64 ", pid %d)", d->domid,
           h->kind == SIMP_GUARD_RESUME ? "resume-if-client-lost"
           : h->kind == SIMP_GUARD_DESTROY ? "destroy-if-client-lost" : "released",
           c->id, (int)c->pid);
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

#define HANDOFF_MAX 256u
#define HANDOFF_WAIT_MS 1000

static int op_handoff(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                      const uint8_t *p, struct ls_errbuf *e)
{
    if (c->in_fd < 0)
        return ls_err(e, -EINVAL, "handoff: no fd came with the request");
    if (h->len == 0 || h->len > HANDOFF_MAX)
        return ls_err(e, -EINVAL, "handoff: a message of %u bytes (want 1..%u)", h->len, HANDOFF_MAX);
    if (d->guard && d->guard_client != c->id)
        return ls_err(e, -EBUSY, "handoff: domain %u is guarded by another client", d->domid);
    size_t sent = 0;
    uint64_t deadline = now_ms() + HANDOFF_WAIT_MS;
    int rc = 0;
    while (sent < h->len && rc == 0) {
        ssize_t w = send(c->in_fd, p + sent, h->len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(c->in_fd, p + sent, h->len - sent);   /* a pipe (xl over ssh) */
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && now_ms() < deadline) {
            struct pollfd pf = { .fd = c->in_fd, .events = POLLOUT };
            poll(&pf, 1, 50);
            continue;
        }
        rc = w < 0 ? -errno : -EIO;
    }
    if (rc < 0 || sent < h->len)
        return ls_err(e, rc < 0 ? rc : -ETIMEDOUT, "handoff: wrote %zu of %u bytes of the message: %s; "
                      "domain %u keeps its guard", sent, h->len,
                      rc < 0 ? strerror(-rc) : "no room", d->domid);
    d->guard = SIMP_GUARD_NONE;
    d->guard_client = 0;
    logmsg("domain %u: handed off (%u-byte message written, guard released)", d->domid, h->len);
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

static int op_set_workload(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                           const uint8_t *p, struct ls_errbuf *e)
{
    struct simp_workload w;
    int rc = need_len(h, sizeof(w), e);
    if (rc < 0)
        return rc;
    memcpy(&w, p, sizeof(w));
    rc = sim_vcpu_set_workload(d, &w, e);
    if (rc < 0)
        return rc;
    logmsg("domain %u: workload %" PRIu64 " pages/s pattern %u hot %u%%%s", d->domid, w.rate,
           w.pattern, w.hot_percent, w.writes ? " (writes replayed)" : "");
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

static int op_net(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                  const uint8_t *p, struct ls_errbuf *e)
{
    struct simp_net in = { 0 }, out;
    char path[SIMP_SUN_LEN] = "";
    int rc = 0, fd = -1;
    if (h->kind == SIMP_NET_CONNECT) {
        if (h->len == 0 || h->len >= sizeof(path))
            return ls_err(e, -EINVAL, "net connect: a socket path of 1..%u bytes is due, not %u",
                          (unsigned)sizeof(path) - 1, h->len);
        memcpy(path, p, h->len);
        if (memchr(path, 0, h->len))
            return ls_err(e, -EINVAL, "net connect: the path has a NUL byte");
    } else if ((rc = need_len(h, h->kind == SIMP_NET_CONFIG ? sizeof(in) : 0, e)) < 0) {
        return rc;
    }
    if (h->kind == SIMP_NET_CONFIG)
        memcpy(&in, p, sizeof(in));
    rc = sim_vcpu_net(d, h->kind, &in, path, &out, &fd, e);
    if (rc < 0)
        return rc;
    if (h->kind == SIMP_NET_CONFIG)
        logmsg("domain %u: network: a frame every %" PRIu64 " writes, %u nondeterministic per "
               "million", d->domid, out.every, out.nondet_ppm);
    if (h->kind == SIMP_NET_ATTACH)
        logmsg("domain %u: network reader attached", d->domid);
    if (h->kind == SIMP_NET_CONNECT)
        logmsg("domain %u: network connected to %s", d->domid, path);
    conn_set_reply(c, h, 0, &out, sizeof(out), fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
    return 0;
}

/* The guest's disks (disk.h): drives of its block QEMU, written by its vCPU. */
static int disk_attach(struct sim_domain *d, const uint8_t *p, struct ls_errbuf *e)
{
    struct simp_disk_attach a;
    memcpy(&a, p, sizeof(a));
    a.path[sizeof(a.path) - 1] = '\0';
    unsigned n;
    int rc = sim_disks_attach(d->disks, a.path, a.format, &n, e);
    if (rc < 0)
        return rc;
    if (d->blk.pid > 0 && d->blk.alive) {
        /* The running block QEMU takes it as the drive a new one would get. */
        char line[SIMP_PATH_LEN + 200];
        struct qmp_peer *q = NULL;
        int n_len = snprintf(line, sizeof(line), "drive_add buddy ");
        sim_disks_drive_opts(d->disks, n, line + n_len, sizeof(line) - (size_t)n_len);
        rc = sim_qmp_open(d->blk.qmp_path, 5000, &q, e);
        if (rc == 0)
            rc = sim_qmp_hmp(q, line, 5000, e);
        sim_qmp_close(q);
    } else {
        sim_dm_kill(&d->blk);   /* the files of one that died */
        struct drives dr;
        rc = sim_dm_spawn_block(&d->blk, g.rundir, d->domid, d->dm.pid > 0 ? d->dm.qemu : "",
                                drive_list(d, &dr), 10000, e);
        if (rc == 0)
            logmsg("domain %u: block QEMU started, pid %d, QMP %s", d->domid, (int)d->blk.pid,
                   d->blk.qmp_path);
        disks_follow_blk(d);
    }
    if (rc < 0) {
        sim_disks_detach_last(d->disks);
        return rc;
    }
    logmsg("domain %u: disk %u: %s (%s)", d->domid, n, a.path,
           a.format == SIMP_DISK_QCOW2 ? "qcow2" : "raw");
    return 0;
}

static int op_disk(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                   const uint8_t *p, struct ls_errbuf *e)
{
    size_t want = h->kind == SIMP_DISK_ATTACH ? sizeof(struct simp_disk_attach)
                  : h->kind == SIMP_DISK_CONFIG ? sizeof(struct simp_disk) : 0;
    if (h->kind > SIMP_DISK_STATS)
        return ls_err(e, -EINVAL, "disk: unknown operation %u (0 attach, 1 config, 2 stats)",
                      h->kind);
    int rc = need_len(h, want, e);
    if (rc < 0)
        return rc;
    if (h->kind != SIMP_DISK_STATS && d->type != LS_GUEST_HVM)
        return ls_err(e, -EINVAL, "disk: domain %u is not an HVM domain: its disks would be "
                      "QEMU's (qdisk), which only an HVM guest has", d->domid);
    if (!d->disks && h->kind != SIMP_DISK_STATS) {
        d->disks = sim_disks_new(d->domid, d->seed);
        if (!d->disks)
            return ls_err(e, -ENOMEM, "out of memory");
        sim_vcpu_disks_changed(d);
    }
    if (h->kind == SIMP_DISK_ATTACH) {
        rc = disk_attach(d, p, e);
    } else if (h->kind == SIMP_DISK_CONFIG) {
        struct simp_disk in;
        memcpy(&in, p, sizeof(in));
        rc = sim_disks_config(d->disks, &in, e);
        if (rc == 0)
            logmsg("domain %u: disks: a write of %u bytes every %" PRIu64 " vCPU writes%s",
                   d->domid, in.block, in.every, in.top ? ", through the replication top" : "");
    } else if (!d->disks) {
        rc = ls_err(e, -ENODEV, "disk: domain %u has no disk", d->domid);
    }
    if (rc < 0)
        return rc;
    struct simp_disk out;
    sim_disks_stats(d->disks, &out);
    if (d->blk.pid > 0 && d->blk.alive) {
        memcpy(out.qmp_path, d->blk.qmp_path, sizeof(out.qmp_path));
        memcpy(out.log_path, d->blk.log_path, sizeof(out.log_path));
        out.pid = d->blk.pid;
    }
    conn_set_reply(c, h, 0, &out, sizeof(out), NULL, 0);
    return 0;
}

static int op_dm_info(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                      struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    if (h->kind > SIMP_DM_INFO_STANDBY)
        return ls_err(e, -EINVAL, "dm-info: unknown kind %u (0: the device model, 1: its standby)",
                      h->kind);
    struct simp_dm_info info;
    sim_dm_describe(h->kind == SIMP_DM_INFO_STANDBY ? &d->standby : &d->dm, &info);
    info.loads = d->dm_loads;
    info.standby_pid = d->standby.alive ? d->standby.pid : 0;
    conn_set_reply(c, h, 0, &info, sizeof(info), NULL, 0);
    return 0;
}

static int op_dm_start(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                       const uint8_t *p, struct ls_errbuf *e)
{
    struct simp_dm_start st;
    int rc = need_len(h, sizeof(st), e);
    if (rc < 0)
        return rc;
    memcpy(&st, p, sizeof(st));
    st.qemu[sizeof(st.qemu) - 1] = '\0';
    if (c->in_fd < 0)
        return ls_err(e, -EINVAL, "dm-start: no device state fd came with the request");
    if (d->type != LS_GUEST_HVM)
        return ls_err(e, -EINVAL, "dm-start: domain %u is %s, only an HVM domain has a device "
                      "model", d->domid, d->type == LS_GUEST_PV ? "PV" : d->type == LS_GUEST_PVH
                      ? "PVH" : "of no type yet");
    if (d->dm.pid > 0)
        return ls_err(e, -EEXIST, "dm-start: domain %u already has a device model (pid %d)",
                      d->domid, (int)d->dm.pid);
    rc = sim_dm_spawn(&d->dm, g.rundir, d->domid, st.qemu, c->in_fd, e);
    if (rc < 0)
        return rc;
    logmsg("domain %u: device model %s started on the restored state, pid %d, QMP %s", d->domid,
           d->dm.qemu, (int)d->dm.pid, d->dm.qmp_path);
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

/* A restore that failed gives its domain back as it came: the QEMU it
 * started on the restored state (DM_START) is killed and reaped. Only such a
 * QEMU: a populated domain's own is not a restore's to stop. */
static int op_dm_stop(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                      struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    if (d->dm.pid > 0 && !d->dm.incoming)
        return ls_err(e, -EPERM, "dm-stop: the device model of domain %u (pid %d) was not "
                      "started on a restored state: only a restore's own is stopped", d->domid,
                      (int)d->dm.pid);
    dm_discard_standby(d, "the restore gives the domain back without a device model");
    if (d->dm.pid > 0) {
        logmsg("domain %u: stopping its device model (pid %d): the restore gives the domain "
               "back without one", d->domid, (int)d->dm.pid);
        sim_dm_kill(&d->dm);
    }
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

/* ---- standby device models (COLO checkpoints, migration downtime) -------------
 * QEMU 7.2 loads one device state per process, and only with -incoming
 * (recipe section 9): each load is a fresh QEMU started ahead of time with
 * -incoming defer, handed the state by QMP (migrate-incoming) and swapped in
 * for the domain's device model. A QEMU configured load-state-in-place loads
 * it itself instead. Blocking here: the QMP load (a few ms); the client
 * waits for the standby's socket before asking, not the daemon. */

#define DM_LOAD_TIMEOUT_MS 10000

static void dm_discard_standby(struct sim_domain *d, const char *why)
{
    if (d->standby.pid <= 0)
        return;
    if (d->standby.alive)
        logmsg("domain %u: killing its standby device model (pid %d): %s", d->domid,
               (int)d->standby.pid, why);
    sim_dm_kill(&d->standby);
}

static bool dm_standby_reaped(struct sim_domain *d, pid_t pid, int st)
{
    if (!sim_dm_reaped(&d->standby, pid, st))
        return false;
    char how[64];
    logmsg("domain %u: its standby device model (pid %d) %s; see %s", d->domid, (int)pid,
           sim_dm_status_text(st, how, sizeof(how)), d->standby.log_path);
    return true;
}

/* The client gave the standby its state over the standby's own QMP socket
 * (a COLO secondary's kept connection) and saw it paused with it: the
 * standby replaces the domain's device model, as after op_dm_load, and the
 * reply describes it (struct simp_dm_info). The
 * daemon cannot ask it (the client holds its only monitor): it checks it is
 * alive, and the client answers for its state. */
static int dm_adopt_standby(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                            struct ls_errbuf *e)
{
    if (d->standby.pid <= 0 || !d->standby.alive) {
        char how[64];
        return ls_err(e, -ENODEV, "dm-adopt: domain %u has no live standby device model%s%s",
                      d->domid, d->standby.pid > 0 ? ": it " : "",
                      d->standby.pid > 0 ? sim_dm_status_text(d->standby.wait_status, how,
                                                              sizeof(how)) : "");
    }
    pid_t old = d->dm.pid > 0 && d->dm.alive ? d->dm.pid : 0;
    sim_dm_replace(&d->dm, &d->standby);
    d->dm_loads++;
    logmsg("domain %u: device state %u loaded by its client into the standby device model "
           "(pid %d), which replaces %s%.0d", d->domid, d->dm_loads, (int)d->dm.pid,
           old ? "pid " : "no device model", (int)old);
    struct simp_dm_info info;   /* the new device model, as DM_INFO kind 0 tells it */
    sim_dm_describe(&d->dm, &info);
    info.loads = d->dm_loads;
    info.standby_pid = 0;
    conn_set_reply(c, h, 0, &info, sizeof(info), NULL, 0);
    return 0;
}

static int op_dm_standby(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                         const uint8_t *p, struct ls_errbuf *e)
{
    if (h->kind == SIMP_DM_STANDBY_DISCARD) {
        int rc = need_len(h, 0, e);
        if (rc < 0)
            return rc;
        dm_discard_standby(d, "discarded by its client");
        conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
        return 0;
    }
    if (h->kind == SIMP_DM_STANDBY_ADOPT) {
        int rc = need_len(h, 0, e);
        if (rc < 0)
            return rc;
        return dm_adopt_standby(c, h, d, e);
    }
    if (h->kind != SIMP_DM_STANDBY_START)
        return ls_err(e, -EINVAL, "dm-standby: unknown kind %u (0: start, 1: discard, 2: adopt)",
                      h->kind);
    struct simp_dm_start st;
    int rc = need_len(h, sizeof(st), e);
    if (rc < 0)
        return rc;
    memcpy(&st, p, sizeof(st));
    st.qemu[sizeof(st.qemu) - 1] = '\0';
    if (d->type != LS_GUEST_HVM)
        return ls_err(e, -EINVAL, "dm-standby: domain %u is not an HVM domain (%s): it has no "
                      "device model", d->domid, d->type == LS_GUEST_PV ? "PV" :
                      d->type == LS_GUEST_PVH ? "PVH" : "of no type yet");
    if (d->standby.alive) {   /* one waits already: it serves */
        conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
        return 0;
    }
    dm_discard_standby(d, "it died");   /* the files of one that died */
    const char *qemu = st.qemu[0] ? st.qemu : d->dm.pid > 0 ? d->dm.qemu : "";
    rc = sim_dm_spawn_standby(&d->standby, g.rundir, d->domid, ++d->dm_gen, qemu, e);
    if (rc < 0)
        return rc;
    logmsg("domain %u: standby device model %s started (-incoming defer), pid %d, QMP %s",
           d->domid, d->standby.qemu, (int)d->standby.pid, d->standby.qmp_path);
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

static int op_dm_load(struct conn *c, const struct simp_hdr *h, struct sim_domain *d,
                      struct ls_errbuf *e)
{
    int rc = need_len(h, 0, e);
    if (rc < 0)
        return rc;
    if (c->in_fd < 0)
        return ls_err(e, -EINVAL, "dm-load: no device state fd came with the request");
    if (d->type != LS_GUEST_HVM)
        return ls_err(e, -EINVAL, "dm-load: domain %u is not an HVM domain: it has no device "
                      "model", d->domid);
    uint64_t t0 = now_ms();
    if ((d->dm.caps & SIMP_DM_CAP_LOAD_STATE_IN_PLACE) && d->dm.alive) {
        rc = sim_dm_load_in_place(&d->dm, c->in_fd, DM_LOAD_TIMEOUT_MS, e);
        if (rc < 0) {
            logmsg("domain %u: its device model failed to load a device state in place: %s",
                   d->domid, e->msg);
            return rc;
        }
        d->dm_loads++;
        logmsg("domain %u: device state %u loaded in place by its QEMU (pid %d) in %" PRIu64
               " ms", d->domid, d->dm_loads, (int)d->dm.pid, now_ms() - t0);
        conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
        return 0;
    }
    if (d->standby.pid <= 0)
        return ls_err(e, -ENODEV, "dm-load: domain %u has no standby device model to take the "
                      "state (start one first: dm-standby)", d->domid);
    rc = sim_dm_load_standby(&d->standby, c->in_fd, DM_LOAD_TIMEOUT_MS, e);
    if (rc < 0) {
        logmsg("domain %u: its standby device model did not take the device state: %s",
               d->domid, e->msg);
        dm_discard_standby(d, "it did not take the device state");
        return rc;
    }
    pid_t old = d->dm.pid > 0 && d->dm.alive ? d->dm.pid : 0;
    uint64_t t1 = now_ms();
    sim_dm_replace(&d->dm, &d->standby);
    d->dm_loads++;
    logmsg("domain %u: device state %u loaded by the standby device model (pid %d) in %" PRIu64
           " ms; it replaces %s%.0d (killed in %" PRIu64 " ms, reaped later)", d->domid,
           d->dm_loads, (int)d->dm.pid, t1 - t0, old ? "pid " : "no device model", (int)old,
           now_ms() - t1);
    conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
    return 0;
}

/* SIGCHLD: reap every exited QEMU; one that died on its own stays reported
 * (DM_INFO alive 0 with its status) until its domain is destroyed. */
static void reap_children(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (size_t i = 0; i < g.ndoms; i++) {
            struct sim_domain *d = g.doms[i];
            if (sim_dm_reaped(&d->dm, pid, st)) {
                char why[64];
                logmsg("domain %u: its device model (pid %d) %s; see %s", d->domid, (int)pid,
                       sim_dm_status_text(st, why, sizeof(why)), d->dm.log_path);
                break;
            }
            if (dm_standby_reaped(d, pid, st))
                break;
            if (sim_dm_reaped(&d->blk, pid, st)) {
                char why[64];
                logmsg("domain %u: its block QEMU (pid %d) %s; see %s", d->domid, (int)pid,
                       sim_dm_status_text(st, why, sizeof(why)), d->blk.log_path);
                disks_follow_blk(d);
                break;
            }
        }
    }
}

/* A guest the guard resumed runs again, and so must its QEMU if the lost
 * client's save had stopped it (libxl's resume conts the device model too).
 * Only a "paused" QEMU is let run: one that never ran (-S: "prelaunch") or
 * runs is left as it is. The daemon waits for QEMU here, boundedly. */
#define GUARD_DM_CONT_TIMEOUT_MS 3000
static void cont_stopped_dm(struct sim_domain *d)
{
    if (d->dm.pid <= 0 || !d->dm.alive)
        return;
    char status[32];
    struct ls_errbuf e;
    ls_err_clear(&e);
    int rc = sim_dm_cont_paused(&d->dm, GUARD_DM_CONT_TIMEOUT_MS, status, sizeof(status), &e);
    if (rc > 0)
        logmsg("domain %u: its device model (pid %d) was paused: let run again (cont)", d->domid,
               (int)d->dm.pid);
    else if (rc == 0)
        logmsg("domain %u: its device model (pid %d) is %s: left as it is", d->domid,
               (int)d->dm.pid, status);
    else
        logmsg("domain %u runs again, but its device model (pid %d) could not be let run: %s",
               d->domid, (int)d->dm.pid, e.msg);
}

/* A guest the guard resumes runs alone: if a COLO primary had its disks
 * replicated (states/colo_disk.def: an NBD client as each quorum's
 * children.1), that is dropped first, as the primary's own teardown would,
 * so that none of its writes reaches a secondary's copy, which may take
 * over from the last checkpoint. A disk without one refuses: nothing to do. */
#define GUARD_DISK_TIMEOUT_MS 3000
static void unreplicate_disks(struct sim_domain *d)
{
    if (!d->disks || d->blk.pid <= 0 || !d->blk.alive)
        return;
    struct qmp_peer *p = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (sim_qmp_open(d->blk.qmp_path, GUARD_DISK_TIMEOUT_MS, &p, &e) < 0) {
        logmsg("domain %u: its disks' QEMU does not answer (%s): resumed as it is", d->domid,
               e.msg);
        sim_qmp_close(p);
        return;
    }
    ls_err_clear(&e);
    bool replicated = sim_qmp_exec(p, "xen-set-replication", "{\"enable\": false, "
                                   "\"primary\": true}", GUARD_DISK_TIMEOUT_MS, &e) == 0;
    unsigned dropped = 0;
    for (unsigned n = 0; replicated && n < sim_disks_count(d->disks); n++) {
        char args[96], line[48];
        snprintf(args, sizeof(args), "{\"parent\": \"lsdisk%u\", \"child\": \"children.1\"}", n);
        snprintf(line, sizeof(line), "drive_del lsdisk%u-nbd", n);
        ls_err_clear(&e);
        if (sim_qmp_exec(p, "x-blockdev-change", args, GUARD_DISK_TIMEOUT_MS, &e) == 0) {
            dropped++;
            ls_err_clear(&e);
            sim_qmp_hmp(p, line, GUARD_DISK_TIMEOUT_MS, &e);
        }
    }
    if (replicated)
        logmsg("domain %u: its disks' replication stopped, %u NBD clients dropped, before it "
               "runs alone", d->domid, dropped);
    sim_qmp_close(p);
}

/* The client holding a guard is gone: act as the guard says. */
static void apply_guards(uint64_t client)
{
    for (size_t i = g.ndoms; i-- > 0;) {
        struct sim_domain *d = g.doms[i];
        if (!d->guard || d->guard_client != client)
            continue;
        if (d->guard == SIMP_GUARD_DESTROY) {
            logmsg("domain %u: its client was lost before finishing it: destroying the partial domain",
                   d->domid);
            dom_remove(d);
            continue;
        }
        logmsg("domain %u: its client (%" PRIu64 ") was lost while it was stopped for a save: "
               "resuming it", d->domid, client);
        uint8_t *none;
        uint32_t len;
        struct ls_errbuf e;
        ls_err_clear(&e);
        sim_logdirty(d, SIMP_LOGDIRTY_DISABLE, &none, &len, &e);
        bool was_suspended = d->suspended;
        unreplicate_disks(d);
        d->guard = SIMP_GUARD_NONE;
        d->suspended = false;
        sim_vcpu_runstate_changed(d);
        if (was_suspended && sim_domain_state(d) == LS_RUN_RUNNING)
            cont_stopped_dm(d);
    }
}

static int dispatch(struct conn *c, const struct simp_hdr *h, const uint8_t *p,
                    struct ls_errbuf *e)
{
    struct sim_domain *d = NULL;
    int rc;

    if (h->op == 0 || h->op >= SIMP_OP_MAX_)
        return ls_err(e, -EOPNOTSUPP, "unknown request op %u", h->op);
    switch (h->op) {
    case SIMP_OP_HELLO: {
        struct simp_hello hi = { .version = SIMP_VERSION, .pid = (uint32_t)getpid(),
                                 .ndomains = (uint32_t)g.ndoms };
        uint64_t ready_bytes;
        sim_pool_stats(&hi.pool_ready, &hi.pool_filling, &ready_bytes, &hi.pool_taken);
        hi.flags = sim_guestmem_huge_pages() ? SIMP_HELLO_HUGE_PAGES : 0;
        hi.pool_ready_mib = (uint32_t)(ready_bytes >> 20);
        conn_set_reply(c, h, 0, &hi, sizeof(hi), NULL, 0);
        return 0;
    }
    case SIMP_OP_CREATE:
        return op_create(c, h, p, e);
    case SIMP_OP_LIST:
        return op_list(c, h, e);
    default:
        break;
    }

    d = need_dom(h, e);
    if (!d)
        return e->rc;
    switch (h->op) {
    case SIMP_OP_INFO: {
        struct simp_dominfo info;
        if ((rc = need_len(h, 0, e)) < 0)
            return rc;
        sim_domain_info(d, &info);
        conn_set_reply(c, h, 0, &info, sizeof(info), NULL, 0);
        return 0;
    }
    case SIMP_OP_PAUSE: case SIMP_OP_UNPAUSE: case SIMP_OP_SUSPEND: case SIMP_OP_RESUME:
        return op_runstate(c, h, d, e);
    case SIMP_OP_DESTROY:
        if ((rc = need_len(h, 0, e)) < 0)
            return rc;
        d->guard = SIMP_GUARD_NONE;
        logmsg("destroying domain %u '%s'", d->domid, d->name);
        dom_remove(d);
        conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
        return 0;
    case SIMP_OP_MAP:
        return op_map(c, h, d, e);
    case SIMP_OP_LOGDIRTY:
        return op_logdirty(c, h, d, e);
    case SIMP_OP_GUARD:
        return op_guard(c, h, d, e);
    case SIMP_OP_HANDOFF:
        return op_handoff(c, h, d, p, e);
    case SIMP_OP_DM_INFO:
        return op_dm_info(c, h, d, e);
    case SIMP_OP_DM_START:
        return op_dm_start(c, h, d, p, e);
    case SIMP_OP_DM_STOP:
        return op_dm_stop(c, h, d, e);
    case SIMP_OP_DM_STANDBY:
        return op_dm_standby(c, h, d, p, e);
    case SIMP_OP_DM_LOAD:
        return op_dm_load(c, h, d, e);
    case SIMP_OP_NET:
        return op_net(c, h, d, p, e);
    case SIMP_OP_DISK:
        return op_disk(c, h, d, p, e);
    case SIMP_OP_GET: {
        uint8_t *out = NULL;
        uint32_t len = 0;
        if ((rc = need_len(h, 0, e)) < 0)
            return rc;
        if (h->kind == SIMP_K_WORKLOAD) {
            struct simp_workload w;
            sim_vcpu_get_workload(d, &w);
            conn_set_reply(c, h, 0, &w, sizeof(w), NULL, 0);
            return 0;
        }
        sim_vcpu_sync(d);
        rc = sim_domain_get(d, h->kind, h->index, &out, &len, e);
        if (rc < 0)
            return rc;
        conn_set_reply(c, h, 0, out, len, NULL, 0);
        free(out);
        return 0;
    }
    case SIMP_OP_SET:
        if (h->kind == SIMP_K_WORKLOAD)
            return op_set_workload(c, h, d, p, e);
        sim_vcpu_sync(d);
        rc = sim_domain_set(d, h->kind, h->index, p, h->len, e);
        if (rc < 0)
            return rc;
        if ((h->kind == SIMP_K_VCPU_BASIC && h->index == 0) || h->kind == SIMP_K_HVM_CONTEXT)
            sim_vcpu_adopt_regs(d);
        conn_set_reply(c, h, 0, NULL, 0, NULL, 0);
        return 0;
    case SIMP_OP_DIGEST: {
        char hex[65];
        if ((rc = need_len(h, 0, e)) < 0)
            return rc;
        uint64_t t0 = now_ms();
        sim_vcpu_sync(d);
        rc = sim_domain_digest(d, hex, e);
        if (rc < 0)
            return rc;
        logmsg("domain %u: digest %.16s... in %" PRIu64 " ms", d->domid, hex, now_ms() - t0);
        conn_set_reply(c, h, 0, hex, 64, NULL, 0);
        return 0;
    }
    default:
        return ls_err(e, -EOPNOTSUPP, "unknown request op %u", h->op);
    }
}

/* ---- connections -------------------------------------------------------- */

static void conn_close(size_t i)
{
    struct conn *c = g.conns[i];
    apply_guards(c->id);
    close(c->fd);
    if (c->payload)
        g.inflight -= ((struct simp_hdr *)(void *)c->hdr)->len;
    if (c->refused[0])
        g.nrefused--;
    free(c->payload);
    free(c->out);
    for (int k = 0; k < c->nofds; k++)
        close(c->ofds[k]);
    if (c->in_fd >= 0)
        close(c->in_fd);
    free(c);
    g.conns[i] = g.conns[--g.nconns];
}

/* The largest payload an op may carry: only SET moves state blobs; the
 * rest carry a small struct or nothing, so a client cannot make the daemon
 * allocate megabytes for a request that must fail anyway. */
static uint32_t op_max_payload(unsigned op)
{
    return op == SIMP_OP_SET ? SIMP_MAX_PAYLOAD : SMALL_REQUEST_MAX;
}

/* Header complete: a broken header loses the framing, so reply and hang up. */
static bool header_ok(struct conn *c, const struct simp_hdr *h)
{
    char msg[200];
    if (h->magic != SIMP_MAGIC)
        snprintf(msg, sizeof(msg), "bad magic 0x%08x (not a lockstep-simd client?)", h->magic);
    else if (h->version != SIMP_VERSION)
        snprintf(msg, sizeof(msg), "protocol version %u not supported (daemon speaks %u)",
                 h->version, SIMP_VERSION);
    else if (h->len > op_max_payload(h->op))
        snprintf(msg, sizeof(msg), "payload of %u bytes exceeds the %u-byte limit of %s", h->len,
                 op_max_payload(h->op), simp_op_name(h->op));
    else if (g.inflight + h->len > INFLIGHT_MAX)
        snprintf(msg, sizeof(msg), "busy: %" PRIu64 " bytes of requests are being read; a "
                 "%u-byte one would pass the %u-byte limit", g.inflight, h->len, INFLIGHT_MAX);
    else if (h->status != 0)
        snprintf(msg, sizeof(msg), "request with non-zero status %d", h->status);
    else
        return true;
    logmsg("client fd %d: %s; closing", c->fd, msg);
    conn_reply_err(c, h, h->magic != SIMP_MAGIC || h->version != SIMP_VERSION ? -EPROTO : -E2BIG,
                   msg);
    c->close_after = true;
    return false;
}

static void conn_handle(struct conn *c)
{
    struct simp_hdr h;
    struct ls_errbuf e;
    memcpy(&h, c->hdr, sizeof(h));
    ls_err_clear(&e);
    int rc = dispatch(c, &h, c->payload, &e);
    if (c->in_fd >= 0) {
        close(c->in_fd);
        c->in_fd = -1;
    }
    if (rc < 0) {
        if (!e.rc)
            ls_err(&e, rc, "%s failed", simp_op_name(h.op));
        logmsg("request %s dom %u kind %u: %s", simp_op_name(h.op), h.domid, h.kind, e.msg);
        conn_reply_err(c, &h, rc, e.msg);
    }
    g.inflight -= h.len;
    free(c->payload);
    c->payload = NULL;
    c->have_hdr = false;
    c->hgot = 0;
    c->pgot = 0;
}

/* recv, keeping one fd that rides on the request (a second one is closed). */
static ssize_t recv_some(struct conn *c, void *dst, size_t want)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 2)];
        struct cmsghdr align;
    } ctl;
    struct iovec v = { .iov_base = dst, .iov_len = want };
    struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf) };
    ssize_t r = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    for (struct cmsghdr *cm = r >= 0 ? CMSG_FIRSTHDR(&m) : NULL; cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int f;
            memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->in_fd < 0)
                c->in_fd = f;
            else
                close(f);
        }
    }
    return r;
}

/* Returns false when the connection must be closed. */
static bool conn_read(struct conn *c)
{
    for (;;) {
        uint8_t *dst;
        size_t want;
        if (!c->have_hdr) {
            dst = c->hdr + c->hgot;
            want = sizeof(c->hdr) - c->hgot;
        } else {
            struct simp_hdr *h = (struct simp_hdr *)(void *)c->hdr;
            dst = c->payload + c->pgot;
            want = h->len - c->pgot;
        }
        ssize_t r = want ? recv_some(c, dst, want) : 0;
        if (want && r < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        if (want && r == 0)
            return false;   /* peer closed (possibly mid-request) */
        if (!c->have_hdr) {
            c->hgot += (size_t)r;
            if (c->hgot < sizeof(c->hdr))
                continue;
            struct simp_hdr h;
            memcpy(&h, c->hdr, sizeof(h));
            if (c->refused[0]) {
                /* Its first request learns why; nothing of it is read further. */
                conn_reply_err(c, &h, -EACCES, c->refused);
                c->close_after = true;
                return true;
            }
            if (!header_ok(c, &h))
                return true;     /* reply queued; closed after it is sent */
            c->have_hdr = true;
            c->payload = malloc(h.len ? h.len : 1);
            if (!c->payload)
                return false;
            g.inflight += h.len;
            if (h.len)
                continue;
        } else {
            c->pgot += (uint32_t)r;
            struct simp_hdr *h = (struct simp_hdr *)(void *)c->hdr;
            if (c->pgot < h->len)
                continue;
        }
        conn_handle(c);
        return true;   /* one request at a time: its reply goes out first */
    }
}

/* Returns false when the connection must be closed. */
static bool conn_write(struct conn *c)
{
    while (c->osent < c->olen) {
        struct iovec v = { .iov_base = c->out + c->osent, .iov_len = c->olen - c->osent };
        struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
        union {
            char buf[CMSG_SPACE(sizeof(int) * 2)];
            struct cmsghdr align;
        } ctl;
        if (c->nofds) {
            memset(&ctl, 0, sizeof(ctl));
            m.msg_control = ctl.buf;
            m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)c->nofds);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)c->nofds);
            memcpy(CMSG_DATA(cm), c->ofds, sizeof(int) * (size_t)c->nofds);
        }
        ssize_t w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        for (int k = 0; k < c->nofds; k++)
            close(c->ofds[k]);
        c->nofds = 0;
        c->osent += (size_t)w;
    }
    free(c->out);
    c->out = NULL;
    c->olen = c->osent = 0;
    return !c->close_after;
}

/* Requests a client may send at once before the rate applies. */
static double rate_burst(void)
{
    return g.request_rate / 10 > 16 ? g.request_rate / 10.0 : 16.0;
}

/* Tops up a client's token bucket; false when it must wait (*wait_ms: until
 * its next token, if sooner than what was there). */
static bool conn_may_send(struct conn *c, uint64_t now, int *wait_ms)
{
    c->tokens += (double)(now - c->tokens_ms) * g.request_rate / 1000.0;
    c->tokens_ms = now;
    if (c->tokens > rate_burst())
        c->tokens = rate_burst();
    if (c->tokens >= 1.0)
        return true;
    int w = (int)((1.0 - c->tokens) * 1000.0 / g.request_rate) + 1;
    if (*wait_ms < 0 || w < *wait_ms)
        *wait_ms = w;
    return false;
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(g.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        if (g.nconns >= MAX_CONNS) {
            logmsg("refusing client: %d connections already", MAX_CONNS);
            close(fd);
            continue;
        }
        /* The socket's mode is not the gate (a directory's or socket's mode
         * can be changed, a descriptor passed on): the kernel's word on who
         * connected is. Only our own uid drives the hypervisor. */
        struct ucred cr;
        socklen_t crl = sizeof(cr);
        char why[160] = "";
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0)
            snprintf(why, sizeof(why), "lockstep-simd: cannot tell who connected (SO_PEERCRED: "
                     "%s): refused", strerror(errno));
        else if (cr.uid != geteuid())
            snprintf(why, sizeof(why), "lockstep-simd serves uid %u only; uid %u (pid %d) is "
                     "refused", (unsigned)geteuid(), (unsigned)cr.uid, (int)cr.pid);
        if (why[0]) {
            logmsg("client fd %d: %s", fd, why);
            if (g.nrefused >= REFUSED_MAX) {
                close(fd);
                continue;
            }
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->in_fd = -1;
        c->id = ++g.next_client;
        c->pid = why[0] ? 0 : cr.pid;
        c->tokens = rate_burst();
        c->tokens_ms = now_ms();
        if (why[0]) {
            snprintf(c->refused, sizeof(c->refused), "%s", why);
            g.nrefused++;
        }
        g.conns[g.nconns++] = c;
    }
}

/* ---- startup ------------------------------------------------------------ */

static int ensure_dir(const char *dir, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
            return -1;
        }
        *s = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "runtime dir %s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "runtime dir %s belongs to uid %u, not to us (uid %u)", dir,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        return -1;
    }
    /* Only its own uid may enter: an existing directory is narrowed to 0700. */
    if ((st.st_mode & 077) && chmod(dir, 0700) < 0) {
        snprintf(err, errlen, "runtime dir %s is open to others (mode %03o) and cannot be made "
                 "0700: %s", dir, (unsigned)(st.st_mode & 0777), strerror(errno));
        return -1;
    }
    return 0;
}

/* Returns 1 locked, 0 someone else holds it, -1 error. The lock lives as long
 * as the daemon: SIGKILL releases it, so a stale pid file never blocks. */
static int lock_pidfile(char *err, size_t errlen)
{
    uint64_t deadline = now_ms() + 3000;
    for (;;) {
        int fd = open(g.pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", g.pid_path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            struct stat a, b;
            /* An exiting daemon unlinks the file while it holds the lock. */
            if (fstat(fd, &a) == 0 && stat(g.pid_path, &b) == 0 && a.st_ino == b.st_ino &&
                a.st_dev == b.st_dev) {
                g.pid_fd = fd;
                return 1;
            }
            close(fd);
            continue;
        }
        close(fd);
        if (errno != EWOULDBLOCK) {
            snprintf(err, errlen, "cannot lock %s: %s", g.pid_path, strerror(errno));
            return -1;
        }
        if (now_ms() > deadline)
            return 0;
        usleep(20000);
    }
}

static int listen_socket(char *err, size_t errlen)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", g.sock_path);
    unlink(g.sock_path);   /* we hold the lock: any socket file is stale */
    g.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (g.listen_fd < 0 || bind(g.listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        chmod(g.sock_path, 0600) < 0 || listen(g.listen_fd, 64) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", g.sock_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Forks twice; the original process waits for the grandchild's verdict on
 * `ready` and exits 0 (serving, or another daemon already is) or 1. Returns
 * the write end in the grandchild. */
static int daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("lockstep-simd: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("lockstep-simd: fork");
        exit(1);
    }
    if (pid > 0) {
        close(p[1]);
        int st;
        waitpid(pid, &st, 0);
        char buf[512];
        size_t got = 0;
        for (;;) {
            struct pollfd pf = { .fd = p[0], .events = POLLIN };
            if (poll(&pf, 1, 20000) <= 0)
                break;
            ssize_t r = read(p[0], buf + got, sizeof(buf) - 1 - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
            if (got == sizeof(buf) - 1)
                break;
        }
        buf[got] = '\0';
        if (got > 0 && (buf[0] == 'K' || buf[0] == 'R'))
            exit(0);
        fprintf(stderr, "lockstep-simd: %s\n", got > 1 ? buf + 1 : "daemon died during startup");
        exit(1);
    }
    close(p[0]);
    setsid();
    pid = fork();
    if (pid < 0)
        _exit(1);
    if (pid > 0)
        _exit(0);
    return p[1];
}

static void startup_fail(int ready, const char *msg)
{
    if (ready >= 0) {
        char buf[512];
        int n = snprintf(buf, sizeof(buf), "E%s", msg);
        (void)!write(ready, buf, (size_t)n);
    }
    logmsg("startup failed: %s", msg);
    exit(1);
}

static void usage(FILE *out)
{
    fprintf(out,
"Usage: lockstep-simd [--rundir DIR] [--idle-exit SECONDS] [--memory-pool SIZE]\n"
"                     [--huge-pages] [--foreground]\n"
"\n"
"The simulated Xen host of lockstep's sim backend: it holds the domains (guest\n"
"memory as memfds, vCPU, HVM and TSC state, a run state, an HVM domain's QEMU)\n"
"outside every lockstep process, as Xen does. lockstep starts it on demand;\n"
"killing it (SIGKILL) is the host dying, and its domains go with it.\n"
"\n"
"Options:\n"
"  --rundir DIR        the runtime directory: simd.sock, simd.pid (locked for the\n"
"                      daemon's life), simd.log, domain-N/ (default\n"
"                      $LOCKSTEP_RUNDIR, else $XDG_RUNTIME_DIR/lockstep, else\n"
"                      /run/lockstep for root or /tmp/lockstep-$UID)\n"
"  --idle-exit SECONDS exit after this long with no domain and no client\n"
"                      (default %d; 0: never)\n"
"  --memory-pool SIZE  keep up to SIZE (K, M, G) of destroyed domains' memory\n"
"                      allocated again, for the next domains, as Xen's heap\n"
"                      keeps free pages (default 0: every domain gets fresh memory)\n"
"  --huge-pages        back guest memory with 2 MiB pages, as Xen backs HVM\n"
"                      guests with superpages: files in a private tmpfs\n"
"                      (huge=always) mounted on no path; needs CAP_SYS_ADMIN\n"
"                      (default: memfds, 4 KiB pages)\n"
"  --request-rate N    requests per second each client may send (default %u;\n"
"                      a burst of a tenth of it at once, then its requests wait)\n"
"  -f, --foreground    stay in the foreground, logging to standard error\n"
"                      (default: detach, log to simd.log)\n"
"  -h, --help          this help\n"
"\n"
"A second daemon on the same directory leaves the first to serve and exits 0.\n"
"SIGTERM, SIGINT and SIGHUP exit cleanly (the domains vanish, their QEMUs are\n"
"killed).\n"
"Exit status: 0 done; 1 it could not start (the reason is logged and given to\n"
"the starter); 2 usage.\n"
"Only the daemon's own uid is served (SO_PEERCRED); it starts with known\n"
"limits (no address-space, data or CPU limit) and a clean environment (PATH\n"
"only), whatever the process that started it had.\n", DEFAULT_IDLE_EXIT, DEFAULT_REQUEST_RATE);
}

static void parse_args(int argc, char **argv, bool *fg)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f")) {
            *fg = true;
        } else if (!strcmp(argv[i], "--rundir") && i + 1 < argc) {
            snprintf(g.rundir, sizeof(g.rundir), "%s", argv[++i]);
        } else if (!strcmp(argv[i], "--idle-exit") && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v > 86400 * 365) {
                usage(stderr);
                exit(2);
            }
            g.idle_exit = (unsigned)v;
        } else if (!strcmp(argv[i], "--request-rate") && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v < 1 || v > 10000000) {
                usage(stderr);
                exit(2);
            }
            g.request_rate = (unsigned)v;
        } else if (!strcmp(argv[i], "--huge-pages")) {
            g.huge_pages = true;
        } else if (!strcmp(argv[i], "--memory-pool") && i + 1 < argc) {
            uint64_t bytes;
            if (io_parse_size(argv[++i], &bytes) < 0) {
                usage(stderr);
                exit(2);
            }
            sim_pool_set_capacity(bytes);
        } else {
            usage(stderr);
            exit(2);
        }
    }
}

/* The daemon outlives whichever command started it and serves every later
 * one, so it must not keep that command's limits, signal settings or
 * environment: a daemon started under `ulimit -v 2000000` once made every
 * later HVM create fail. Called first thing in main(). Returns false, with
 * the reason in *note, when a hard limit stays (lifting it needs
 * CAP_SYS_RESOURCE): the daemon then refuses to start rather than serve
 * every later caller under it. */
static bool reset_inherited_state(char *note, size_t notelen)
{
    static const struct { int res; const char *name; rlim_t want; } lim[] = {
        { RLIMIT_AS, "address space", RLIM_INFINITY },
        { RLIMIT_DATA, "data", RLIM_INFINITY },
        { RLIMIT_FSIZE, "file size", RLIM_INFINITY },
        { RLIMIT_CPU, "CPU time", RLIM_INFINITY },
        { RLIMIT_STACK, "stack", 8u << 20 },        /* the vCPU threads' stacks follow it */
        { RLIMIT_NOFILE, "open files", 65536 },
        { RLIMIT_CORE, "core size", 0 },            /* guest memory never lands in a core */
    };
    note[0] = '\0';
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        struct rlimit r;
        if (getrlimit(lim[i].res, &r) < 0)
            continue;
        struct rlimit w = { lim[i].want, lim[i].want };
        if (lim[i].want != RLIM_INFINITY)
            w.rlim_max = r.rlim_max;   /* a soft value; the hard one is not ours to lower */
        if (w.rlim_max != RLIM_INFINITY && w.rlim_cur > w.rlim_max)
            w.rlim_cur = w.rlim_max;
        if (setrlimit(lim[i].res, &w) == 0)
            continue;
        /* Not root: as high as the hard limit allows, and say so. */
        w.rlim_cur = r.rlim_max;
        w.rlim_max = r.rlim_max;
        (void)setrlimit(lim[i].res, &w);
        if (lim[i].want == RLIM_INFINITY && r.rlim_max != RLIM_INFINITY) {
            size_t n = strlen(note);
            snprintf(note + n, notelen - n, "%s%s limit of %llu", n ? ", " : "", lim[i].name,
                     (unsigned long long)r.rlim_max);
        }
    }
    if (note[0]) {
        char limits[256];
        snprintf(limits, sizeof(limits), "%s", note);
        snprintf(note, notelen, "started under a hard %s (ulimit) that it cannot lift "
                 "without CAP_SYS_RESOURCE; it would keep it for every later caller, so it does "
                 "not start: start it (or the first lockstep) without that limit", limits);
    }
    (void)setpriority(PRIO_PROCESS, 0, 0);   /* not a starter's nice (root only can lower it) */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);   /* an ignored SIGHUP or SIGTERM would never reach the signalfd */
    /* A clean environment: QEMU is found on PATH (kept; the same uid gave
     * it), everything else (LD_PRELOAD, locale, test variables) is dropped,
     * for the daemon and the device models it starts. */
    char path[4096] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    const char *p = getenv("PATH");
    if (p && strlen(p) < sizeof(path))
        snprintf(path, sizeof(path), "%s", p);
    clearenv();
    setenv("PATH", path, 1);
    return note[0] == '\0';
}

static void cleanup(void)
{
    sim_pool_set_capacity(0);   /* the host is going down: nothing to refill */
    sim_pool_drain();
    while (g.nconns)
        conn_close(g.nconns - 1);
    while (g.ndoms)
        dom_remove(g.doms[g.ndoms - 1]);
    if (g.listen_fd >= 0) {
        close(g.listen_fd);
        unlink(g.sock_path);
    }
    if (g.sig_fd >= 0)
        close(g.sig_fd);
    if (g.pid_fd >= 0) {
        unlink(g.pid_path);   /* still locked: a newcomer re-checks the inode */
        close(g.pid_fd);
    }
}

static void serve(void)
{
    uint64_t idle_since = 0;
    struct pollfd pf[MAX_CONNS + 2];

    while (!g.quit) {
        int timeout = -1;
        if (g.ndoms == 0 && g.nconns == 0 && g.idle_exit) {
            uint64_t now = now_ms();
            if (!idle_since)
                idle_since = now;
            uint64_t limit = (uint64_t)g.idle_exit * 1000;
            if (now - idle_since >= limit) {
                logmsg("idle for %u s with no domains and no clients: exiting", g.idle_exit);
                return;
            }
            timeout = (int)(limit - (now - idle_since));
        } else {
            idle_since = 0;
        }

        pf[0] = (struct pollfd){ .fd = g.listen_fd, .events = POLLIN };
        pf[1] = (struct pollfd){ .fd = g.sig_fd, .events = POLLIN };
        size_t n = g.nconns;
        uint64_t now = now_ms();
        for (size_t i = 0; i < n; i++) {
            struct conn *c = g.conns[i];
            /* A client over its rate is not read until it may send again. */
            short ev = c->olen ? POLLOUT : conn_may_send(c, now, &timeout) ? POLLIN : 0;
            pf[2 + i] = (struct pollfd){ .fd = c->fd, .events = ev };
        }
        int r = poll(pf, n + 2, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            logmsg("poll: %s", strerror(errno));
            return;
        }
        if (pf[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(g.sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD) {
                    reap_children();
                    continue;
                }
                logmsg("signal %u: exiting, %zu domain(s) vanish", si.ssi_signo, g.ndoms);
                return;
            }
        }
        /* Walk backwards: conn_close moves the last connection into slot i. */
        for (size_t i = n; i-- > 0;) {
            struct conn *c = g.conns[i];
            short re = pf[2 + i].revents;
            bool keep = true;
            if (!re)
                continue;
            if (c->olen)
                keep = conn_write(c);
            else if (re & (POLLIN | POLLHUP | POLLERR)) {
                keep = conn_read(c);
                if (keep && c->olen)
                    c->tokens -= 1.0;   /* a request was answered (or refused) */
            }
            if (keep && c->olen)
                keep = conn_write(c);   /* most replies go out at once */
            if (keep && c->close_after && !c->olen)
                keep = false;
            if (!keep)
                conn_close(i);
        }
        if (pf[0].revents & POLLIN)
            accept_clients();
    }
}

int main(int argc, char **argv)
{
    bool fg = false;
    char err[PATH_MAX + 200];
    int ready = -1;

    /* Whatever the spawning process leaked to us (pipes of a test, say) must
     * not be held open for the daemon's lifetime. */
    close_range(3, ~0U, 0);
    parse_args(argc, argv, &fg);
    if (!g.rundir[0] && simp_rundir(g.rundir, sizeof(g.rundir)) < 0) {
        fprintf(stderr, "lockstep-simd: runtime directory path too long\n");
        return 1;
    }
    char limits_note[512];
    bool limits_ok = reset_inherited_state(limits_note, sizeof(limits_note));
    if (simp_rundir_file(g.rundir, SIMP_SOCK_NAME, g.sock_path, sizeof(g.sock_path)) < 0 ||
        simp_rundir_file(g.rundir, SIMP_PID_NAME, g.pid_path, sizeof(g.pid_path)) < 0) {
        fprintf(stderr, "lockstep-simd: runtime directory %s: socket path too long (max %zu)\n",
                g.rundir, sizeof(g.sock_path) - 1);
        return 1;
    }
    if (ensure_dir(g.rundir, err, sizeof(err)) < 0) {
        fprintf(stderr, "lockstep-simd: %s\n", err);
        return 1;
    }
    if (!fg)
        ready = daemonize();

    umask(077);
    (void)!chdir("/");
    if (!fg) {
        char log_path[PATH_MAX];
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        int lf = -1;
        if (simp_rundir_file(g.rundir, SIMP_LOG_NAME, log_path, sizeof(log_path)) == 0)
            lf = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        dup2(lf >= 0 ? lf : nul, 2);
        if (nul > 2)
            close(nul);
        if (lf > 2)
            close(lf);
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigaddset(&ss, SIGCHLD);   /* device models exiting (devmodel.h) */
    sigprocmask(SIG_BLOCK, &ss, NULL);
    g.sig_fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
    if (g.sig_fd < 0)
        startup_fail(ready, "signalfd failed");

    int lk = lock_pidfile(err, sizeof(err));
    if (lk < 0)
        startup_fail(ready, err);
    if (lk == 0) {
        if (ready >= 0)
            (void)!write(ready, "R", 1);
        logmsg("another lockstep-simd holds %s; leaving it to serve", g.pid_path);
        close(g.sig_fd);
        return 0;
    }
    if (!limits_ok)   /* only the one that would serve: a running daemon is fine */
        startup_fail(ready, limits_note);
    if (g.huge_pages && sim_guestmem_use_huge_pages(err, sizeof(err)) < 0)
        startup_fail(ready, err);
    if (listen_socket(err, sizeof(err)) < 0)
        startup_fail(ready, err);
    char pid[32];
    int pn = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(g.pid_fd, 0) < 0 || pwrite(g.pid_fd, pid, (size_t)pn, 0) != pn)
        startup_fail(ready, "cannot write the pid file");
    logmsg("serving on %s (idle exit %u s, guest memory in %s pages, uid %u only, %u requests/s "
           "per client)", g.sock_path, g.idle_exit, sim_guestmem_huge_pages() ? "2 MiB" : "4 KiB",
           (unsigned)geteuid(), g.request_rate);
    if (ready >= 0) {
        (void)!write(ready, "K", 1);
        close(ready);
    }
    serve();
    cleanup();
    return 0;
}
