/* cli/cmd_migrate.c - `lockstep migrate` and `lockstep migrate-receive`.
 *
 * The transports (TCP, unix socket, stdin/stdout) are set up here; the
 * migration itself is the library's (ls_migrate_start,
 * ls_migrate_receive_start: states/migrate_send.def, migrate_receive.def).
 */
#include "cmd_migrate.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "jsonl.h"
#include "run.h"
#include "lockstep/sim.h"

#define EXIT_USAGE 2
#define EXIT_ATTENTION 3          /* the outcome needs a human: see the message */
#define DEFAULT_TIMEOUT_S 60

static const char migrate_help[] =
"Usage: lockstep migrate (--domid N | --sim pv|hvm --memory SIZE [--vcpus N] [--seed S]\n"
"                         [--dirty-rate PAGES/S] [--dirty-pattern PATTERN]\n"
"                         [--disk FILE[,format=F] [--disk-every N] [--disk-block SIZE]])\n"
"                        --to tcp:HOST:PORT|tls:HOST:PORT|unix:PATH|-\n"
"                        [--tls-creds DIR [--tls-allow PATTERN]]\n"
"                        [--max-rounds N] [--dirty-threshold PAGES] [--target-downtime MS]\n"
"                        [--timeout SECONDS] [--no-digest] [--json]\n"
"\n"
"Live-migrate a running domain to `lockstep migrate-receive`, as `xl migrate`\n"
"does: the guest keeps running while its memory is copied in rounds (each\n"
"round sends what the guest wrote during the last, from the log-dirty\n"
"bitmap), then it is suspended for a short final round, and the receiver\n"
"starts it once given the go-ahead. The stream is Xen's migration v2 with the\n"
"xl header; the handshake is xl's (the receiver's banner, \"domain received\",\n"
"the go-ahead, the receiver's unpause report).\n"
"\n"
"At most one copy of the guest ever runs. Until the go-ahead is sent, any\n"
"failure (a dead receiver, a broken connection, a timeout, SIGINT, an error\n"
"at the receiver) resumes the guest here; if this process is killed, the\n"
"backend resumes it. After the go-ahead only the receiver's report decides:\n"
"success destroys the guest here; a failure report resumes it; no report\n"
"leaves it suspended here and says so.\n"
"\n"
"Options:\n"
"  --domid N              migrate the existing domain N\n"
"  --sim pv|hvm           create a one-off simulated domain of this type first\n"
"  --memory SIZE          its memory (e.g. 256M, 1G); --vcpus N (default 1),\n"
"                         --seed S (default 1) as for `lockstep save`\n"
"  --dirty-rate PAGES/S   its vCPU writes this many pages per second while it runs\n"
"  --dirty-pattern P      uniform (default), hotset:PERCENT or sequential\n"
"  --disk FILE[,format=raw|qcow2], --disk-every N, --disk-block SIZE\n"
"                         an HVM guest's disks (up to 4), written by its vCPU every\n"
"                         N writes (see `lockstep sim disk`); they stay on this\n"
"                         host: the receiver's copy gets no disks (no shared storage)\n"
"  --to DEST              tcp:HOST:PORT or unix:PATH: connect to a receiver there;\n"
"                         tls:HOST:PORT: the same over TLS 1.3 (--tls-creds);\n"
"                         '-': the stream goes to standard output and the\n"
"                         receiver's messages come from standard input (the shape\n"
"                         of `xl migrate` through ssh: two pipes)\n"
"  --tls-creds DIR        with tls:: the CA and this end's certificate, laid out as\n"
"                         QEMU's tls-creds-x509 wants them: DIR/ca-cert.pem,\n"
"                         DIR/client-cert.pem, DIR/client-key.pem (DIR/ca-crl.pem\n"
"                         if present). The receiver's certificate must be of that\n"
"                         CA and name HOST (or match --tls-allow); it checks ours\n"
"  --tls-allow PATTERN    accept a receiver whose certificate's subject CN or one\n"
"                         of its subjectAltNames (DNS name, IP address) matches\n"
"                         PATTERN (fnmatch, case-insensitive: 'dst-*.example.org')\n"
"                         instead of checking it against HOST\n"
"  --max-rounds N         pre-copy rounds after the first full one before the\n"
"                         guest is suspended regardless (default 5, Xen's)\n"
"  --dirty-threshold N    suspend once fewer than N pages are dirty (default 50)\n"
"  --target-downtime MS   also suspend once the dirty pages would take at most MS\n"
"                         to send at the throughput measured so far\n"
"  --timeout SECONDS      give up any wait for the receiver after this long\n"
"                         without a byte moving (default 60)\n"
"  --no-digest            skip the state digest at suspend (it lengthens the\n"
"                         downtime by a full read of guest memory)\n"
"  --json                 report as JSON lines instead of text: start, a round\n"
"                         event per pre-copy round (and the final one), progress\n"
"                         every 0.5 s, then the outcome with its keyword, the\n"
"                         figures below and the error (JSON OUTPUT in lockstep(1))\n"
"  -h, --help             this help\n"
"\n"
"Output (standard output, or standard error with --to -): 'digest HEX' (the\n"
"state at the moment of suspend, as the stream carries it), 'precopy live_rounds\n"
"N pages_sent N last_dirty N pages_per_s N final_pages N' (the live rounds, the\n"
"pages sent in all rounds including the final one, the dirty count the policy\n"
"last saw, the measured rate, the pages of the final round), 'suspended_ns N'\n"
"(CLOCK_MONOTONIC), and\n"
"'outcome KEYWORD: text', KEYWORD one of destination-runs, source-left,\n"
"source-runs, source-suspended, unconfirmed. A progress line (round, pages\n"
"sent, dirty pages, rate) is shown on standard error when it is a terminal.\n"
"Exit status: 0 the guest runs at the destination; 1 it runs here (not\n"
"migrated; the reason is printed); 2 usage; 3 the outcome needs attention\n"
"(unconfirmed, a source copy left, or a guest that could not be resumed).\n";

static const char receive_help[] =
"Usage: lockstep migrate-receive [--listen tcp:HOST:PORT|tls:HOST:PORT|unix:PATH]\n"
"                                [--tls-creds DIR [--tls-allow PATTERN]] [--paused]\n"
"                                [--timeout SECONDS] [--no-digest] [--json]\n"
"\n"
"Receive a domain live-migrated by `lockstep migrate` (or `xl migrate`'s stream\n"
"and handshake), as `xl migrate-receive` does: write the banner, restore the\n"
"stream into a new paused domain, confirm \"domain received\", wait for the\n"
"go-ahead, start the guest and report. Without --listen, the stream comes on\n"
"standard input and the messages go to standard output (for ssh).\n"
"\n"
"Our copy runs only after the go-ahead and is destroyed on every path that\n"
"does not start it; if this process is killed, the backend destroys it.\n"
"\n"
"Options:\n"
"  --listen ADDR      accept one connection on tcp:HOST:PORT (PORT 0: any free\n"
"                     port) or unix:PATH; 'listening on ADDR' is printed on\n"
"                     standard error once it is ready; tls:HOST:PORT: TCP with\n"
"                     TLS 1.3 (--tls-creds), the sender's certificate required\n"
"  --tls-creds DIR    with tls:: DIR/ca-cert.pem, DIR/server-cert.pem and\n"
"                     DIR/server-key.pem (QEMU's tls-creds-x509 layout; ca-crl.pem\n"
"                     if present). A sender without a certificate of that CA is\n"
"                     refused before anything is restored, and told why\n"
"  --tls-allow PATTERN  accept only a sender whose certificate's subject CN or a\n"
"                     subjectAltName (DNS name, IP address) matches PATTERN\n"
"                     (fnmatch, case-insensitive); default: any of the CA's\n"
"  --paused           leave the guest paused after the go-ahead (xl -p)\n"
"  --timeout SECONDS  give up any wait for the sender (including the\n"
"                     connection) after this long without a byte (default 60)\n"
"  --no-digest        skip the digest of the received state\n"
"  --json             report as JSON lines instead of text: listening (with\n"
"                     --listen), start, progress every 0.5 s, then the outcome\n"
"                     with the domid, digest or error (JSON OUTPUT in lockstep(1))\n"
"  -h, --help         this help\n"
"\n"
"Output (standard output with --listen, else standard error): 'domid N',\n"
"'digest HEX' (the received state, before it runs), 'resumed_ns N', and\n"
"'outcome KEYWORD: text', KEYWORD one of destination-runs, runs-unconfirmed,\n"
"not-received.\n"
"Exit status: 0 the guest runs here; 1 it does not (the reason is printed);\n"
"2 usage; 3 it runs here but the sender did not get the report.\n";

/* ---- small parsers ---------------------------------------------------------------- */

static int usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lockstep %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'lockstep %s --help'.\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-' || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* --memory: a whole number of 4 KiB pages. */
int parse_size_kib(const char *s, uint64_t *kib)
{
    uint64_t bytes;
    if (ls_parse_size(s, &bytes) < 0 || bytes == 0 || bytes % 4096)
        return -EINVAL;
    *kib = bytes / 1024;
    return 0;
}

int guest_args_opt(const char *cmd, int c, const char *arg, struct guest_args *a)
{
    switch (c) {
    case 'd':
        if (parse_u64(arg, UINT32_MAX, &a->domid) < 0)
            return usage(cmd, "--domid: '%s' is not a domain id", arg);
        a->have_domid = true;
        return 0;
    case 's': a->sim = arg; return 0;
    case 'm':
        if (parse_size_kib(arg, &a->memory_kib) < 0)
            return usage(cmd, "--memory: '%s' is not a size in whole pages (e.g. 256M)", arg);
        return 0;
    case 'v':
        if (parse_u64(arg, 128, &a->vcpus) < 0 || a->vcpus == 0)
            return usage(cmd, "--vcpus: '%s' is not 1..128", arg);
        return 0;
    case 'S':
        if (parse_u64(arg, UINT64_MAX, &a->seed) < 0)
            return usage(cmd, "--seed: '%s' is not a number", arg);
        return 0;
    case 'r':
        if (parse_u64(arg, UINT64_MAX, &a->w.rate) < 0)
            return usage(cmd, "--dirty-rate: '%s' is not a number of pages per second", arg);
        a->workload = true;
        return 0;
    case 'p':
        if (ls_sim_parse_pattern(arg, &a->w.pattern, &a->w.hot_percent) < 0)
            return usage(cmd, "--dirty-pattern: '%s' is not uniform, sequential or "
                         "hotset:PERCENT (1..100)", arg);
        a->workload = true;
        return 0;
    case OPT_DISK: case OPT_DISK_EVERY: case OPT_DISK_BLOCK: {
        char why[300];
        if (guest_disks_opt(c, arg, &a->disks, why, sizeof(why)) < 0)
            return usage(cmd, "%s", why);
        return 0;
    }
    default:
        return -1;
    }
}

int guest_disks_opt(int c, const char *arg, struct guest_disks *d, char *why, size_t wl)
{
    uint64_t v;
    if (c == OPT_DISK_EVERY) {
        if (parse_u64(arg, UINT64_MAX, &v) < 0 || v == 0) {
            snprintf(why, wl, "--disk-every: '%s' is not a positive number of vCPU writes", arg);
            return -EINVAL;
        }
        d->cfg.every = v;
        return 0;
    }
    if (c == OPT_DISK_BLOCK) {
        uint64_t kib;
        if (parse_u64(arg, 1u << 20, &v) == 0)
            kib = 0;
        else if (parse_size_kib(arg, &kib) == 0 && kib <= 1024)
            v = kib * 1024;
        else
            v = 0;
        if (v < 512 || (v & (v - 1))) {
            snprintf(why, wl, "--disk-block: '%s' is not a power of two from 512 bytes to 1M", arg);
            return -EINVAL;
        }
        d->cfg.block = (unsigned)v;
        return 0;
    }
    if (d->n >= GUEST_DISKS_MAX) {
        snprintf(why, wl, "--disk: at most %u disks", GUEST_DISKS_MAX);
        return -EINVAL;
    }
    const char *comma = strchr(arg, ',');
    size_t len = comma ? (size_t)(comma - arg) : strlen(arg);
    enum ls_sim_disk_format fmt = LS_SIM_DISK_RAW;
    if (comma && strcmp(comma, ",format=qcow2") == 0)
        fmt = LS_SIM_DISK_QCOW2;
    else if (comma && strcmp(comma, ",format=raw") != 0) {
        snprintf(why, wl, "--disk: '%s' is not FILE[,format=raw|qcow2]", arg);
        return -EINVAL;
    }
    char rel[256];
    if (len == 0 || len >= sizeof(rel)) {
        snprintf(why, wl, "--disk: '%s' names no file", arg);
        return -EINVAL;
    }
    memcpy(rel, arg, len);
    rel[len] = '\0';
    /* The daemon opens it, from its own directory: an absolute path. */
    char *abs = realpath(rel, NULL);
    if (!abs || strlen(abs) >= sizeof(d->disk[0].path)) {
        snprintf(why, wl, "--disk: %s: %s", rel, abs ? "path too long" : strerror(errno));
        free(abs);
        return -EINVAL;
    }
    snprintf(d->disk[d->n].path, sizeof(d->disk[d->n].path), "%s", abs);
    free(abs);
    d->disk[d->n++].format = fmt;
    return 0;
}

int guest_disks_attach(struct ls_backend *be, uint32_t domid, const struct guest_disks *d,
                       struct ls_errbuf *err)
{
    int rc = 0;
    for (unsigned i = 0; i < d->n && rc == 0; i++)
        rc = ls_sim_attach_disk(be, domid, d->disk[i].path, d->disk[i].format, err);
    if (rc == 0 && d->n && d->cfg.every)
        rc = ls_sim_set_disks(be, domid, &d->cfg, err);
    return rc;
}

int guest_args_check(const char *cmd, struct guest_args *a)
{
    if (a->have_domid == !!a->sim)
        return usage(cmd, "give exactly one of --domid N and --sim pv|hvm");
    a->type = LS_GUEST_UNSET;
    if (a->sim) {
        a->type = strcmp(a->sim, "pv") == 0    ? LS_GUEST_PV
                  : strcmp(a->sim, "hvm") == 0 ? LS_GUEST_HVM
                                               : LS_GUEST_UNSET;
        if (a->type == LS_GUEST_UNSET)
            return usage(cmd, "--sim: '%s' is not pv or hvm", a->sim);
        if (!a->memory_kib)
            return usage(cmd, "--sim needs --memory SIZE");
    } else if (a->workload) {
        return usage(cmd, "--dirty-rate and --dirty-pattern go with --sim (for an existing "
                     "domain: lockstep sim workload)");
    }
    if ((a->disks.n || a->disks.cfg.every || a->disks.cfg.block) && a->type != LS_GUEST_HVM)
        return usage(cmd, "--disk, --disk-every and --disk-block go with --sim hvm");
    if ((a->disks.cfg.every || a->disks.cfg.block) && !a->disks.n)
        return usage(cmd, "--disk-every and --disk-block go with --disk FILE");
    return 0;
}

int guest_args_create(struct ls_backend *be, struct guest_args *a, const char *prefix,
                      enum ls_device_model dm, struct ls_errbuf *err)
{
    char name[64];
    snprintf(name, sizeof(name), "%s-%d", prefix, (int)getpid());
    struct ls_sim_create_args c = { .type = a->type, .memory_kib = a->memory_kib,
                                    .vcpus = (unsigned)a->vcpus, .seed = a->seed, .name = name,
                                    .populate = true, .device_model = dm };
    uint32_t id = 0;
    int rc = ls_sim_create(be, &c, &id, err);
    if (rc < 0)
        return rc;
    a->domid = id;
    a->created = true;
    a->w.seed = a->seed;
    rc = guest_disks_attach(be, id, &a->disks, err);
    if (rc < 0)
        return rc;
    return a->workload ? ls_sim_set_workload(be, id, &a->w, err) : 0;
}

/* ---- transports -------------------------------------------------------------------- */

int parse_endpoint(const char *s, struct endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    if (strcmp(s, "-") == 0) {
        ep->kind = EP_STDIO;
        return 0;
    }
    if (strncmp(s, "unix:", 5) == 0) {
        if (!s[5] || strlen(s + 5) >= sizeof(ep->path))
            return -EINVAL;
        ep->kind = EP_UNIX;
        snprintf(ep->path, sizeof(ep->path), "%s", s + 5);
        return 0;
    }
    if (strncmp(s, "tls:", 4) == 0)
        ep->tls = true;
    else if (strncmp(s, "tcp:", 4) != 0)
        return -EINVAL;
    const char *hp = s + 4, *colon = strrchr(hp, ':');
    if (!colon || colon == hp || !colon[1] || strlen(colon + 1) >= sizeof(ep->port))
        return -EINVAL;
    size_t hl = (size_t)(colon - hp);
    if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {   /* [v6 address] */
        hp++;
        hl -= 2;
    }
    if (hl >= sizeof(ep->host))
        return -EINVAL;
    uint64_t port;
    if (parse_u64(colon + 1, 65535, &port) < 0)
        return -EINVAL;
    ep->kind = EP_TCP;
    memcpy(ep->host, hp, hl);
    snprintf(ep->port, sizeof(ep->port), "%s", colon + 1);
    return 0;
}

/* Wait for fd to be ready, up to ms. */
static int wait_fd(int fd, short events, unsigned ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        int n = poll(&p, 1, (int)ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        return n == 0 ? -ETIMEDOUT : 0;
    }
}

/* Short messages of the handshake go out at once (no Nagle). Socket
 * buffers stay small: what sits in them when the guest is suspended is sent
 * during the downtime however early it was queued, so a large queue (the
 * kernel autotunes loopback up to megabytes) only lengthens the downtime
 * beyond the final round, without adding throughput at local latencies. */
#define MIG_SOCKBUF (256 * 1024)
static void tune_socket(int fd, int family)
{
    int one = 1, buf = MIG_SOCKBUF;
    if (family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static int connect_one(int family, int type, const struct sockaddr *sa, socklen_t len,
                       unsigned timeout_ms)
{
    int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, sa, len) < 0) {
        rc = errno == EINPROGRESS ? 0 : -errno;
        if (rc == 0 && (rc = wait_fd(fd, POLLOUT, timeout_ms)) == 0) {
            int so = 0;
            socklen_t sl = sizeof(so);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
            rc = -so;
        }
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    tune_socket(fd, family);
    return fd;
}

int ep_connect(const struct endpoint *ep, unsigned timeout_ms, char *why, size_t wl)
{
    if (ep->kind == EP_UNIX) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", ep->path);
        int fd = connect_one(AF_UNIX, SOCK_STREAM, (struct sockaddr *)&a, sizeof(a), timeout_ms);
        if (fd < 0)
            snprintf(why, wl, "cannot connect to unix:%s: %s%s", ep->path, strerror(-fd),
                     fd == -ENOENT || fd == -ECONNREFUSED ? " (is `lockstep migrate-receive "
                     "--listen` running there?)" : "");
        return fd;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res;
    int g = getaddrinfo(ep->host, ep->port, &hints, &res);
    if (g != 0) {
        snprintf(why, wl, "cannot resolve %s: %s", ep->host, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int fd = -ENOENT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = connect_one(ai->ai_family, ai->ai_socktype, ai->ai_addr, ai->ai_addrlen, timeout_ms);
        if (fd >= 0)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, wl, "cannot connect to %s:%s:%s: %s%s", ep->tls ? "tls" : "tcp", ep->host, ep->port,
                 strerror(-fd), fd == -ECONNREFUSED ? " (is `lockstep migrate-receive "
                 "--listen` running there?)" : "");
    return fd;
}

/* Listen, say where, accept one connection (up to timeout_ms), stop listening. */
int ep_accept(const struct endpoint *ep, unsigned timeout_ms, FILE *json, char *why,
              size_t wl)
{
    int lfd = -1, family = AF_UNIX;
    char where[320];
    if (ep->kind == EP_UNIX) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", ep->path);
        struct stat st;
        /* A socket file nobody listens on is a leftover: replace it. */
        if (lstat(ep->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            int probe = connect_one(AF_UNIX, SOCK_STREAM, (struct sockaddr *)&a, sizeof(a), 100);
            if (probe >= 0) {
                close(probe);
                snprintf(why, wl, "unix:%s: another process is listening there", ep->path);
                return -EADDRINUSE;
            }
            unlink(ep->path);
        }
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0) {
            int rc = -errno;
            snprintf(why, wl, "cannot listen on unix:%s: %s", ep->path, strerror(errno));
            if (lfd >= 0)
                close(lfd);
            return rc;
        }
        snprintf(where, sizeof(where), "unix:%s", ep->path);
    } else {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
        int g = getaddrinfo(ep->host[0] ? ep->host : NULL, ep->port, &hints, &res);
        if (g != 0) {
            snprintf(why, wl, "cannot resolve %s: %s", ep->host, gai_strerror(g));
            return -EHOSTUNREACH;
        }
        int rc = -EADDRNOTAVAIL;
        for (struct addrinfo *ai = res; ai && lfd < 0; ai = ai->ai_next) {
            lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            int one = 1;
            if (lfd >= 0)
                setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (lfd >= 0 && (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, 1) < 0)) {
                rc = -errno;
                close(lfd);
                lfd = -1;
            }
            family = ai->ai_family;
        }
        freeaddrinfo(res);
        if (lfd < 0) {
            snprintf(why, wl, "cannot listen on %s:%s:%s: %s", ep->tls ? "tls" : "tcp", ep->host,
                     ep->port, strerror(-rc));
            return rc;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[128] = "", port[16] = "";
        getsockname(lfd, (struct sockaddr *)&ss, &sl);
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(where, sizeof(where), family == AF_INET6 ? "%s:[%s]:%s" : "%s:%s:%s",
                 ep->tls ? "tls" : "tcp", host, port);
    }
    fprintf(stderr, "listening on %s\n", where);
    fflush(stderr);
    if (json) {
        struct jl j;
        jl_open(&j, json, "listening", "migrate-receive");
        jl_str(&j, "address", where);
        jl_close(&j);
    }
    int rc = wait_fd(lfd, POLLIN, timeout_ms);
    int fd = rc < 0 ? rc : accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0 && rc == 0)
        rc = -errno;
    close(lfd);
    if (ep->kind == EP_UNIX)
        unlink(ep->path);
    if (fd < 0) {
        snprintf(why, wl, rc == -ETIMEDOUT ? "no sender connected to %s within %u s"
                                           : "accepting on %s failed", where, timeout_ms / 1000);
        return rc;
    }
    tune_socket(fd, family);
    return fd;
}

/* LOCKSTEP_CHECK_FDS=1 (tests): at the end every fd but 0-2 must be closed;
 * a leak is reported and turns the exit status into 97. libuv's own
 * process-wide self-pipe (both ends held here, kept for the process's life
 * once a signal was watched) is not ours to close. */
int check_fds(int status)
{
#ifndef LOCKSTEP_FAULT_HOOKS
    return status;   /* a test hook: not in release builds */
#endif
    if (!getenv("LOCKSTEP_CHECK_FDS"))
        return status;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return status;
    struct { int fd; char target[128]; } open_fds[64];
    int n = 0, leaked = 0;
    struct dirent *e;
    /* cppcheck-suppress readdirCalled ; readdir_r is deprecated (glibc); one thread reads this stream */
    while ((e = readdir(d)) && n < 64) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
            continue;
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, open_fds[n].target, sizeof(open_fds[n].target) - 1);
        open_fds[n].target[len > 0 ? len : 0] = '\0';
        open_fds[n++].fd = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int same = 0;
        for (int k = 0; k < n; k++)
            same += strcmp(open_fds[i].target, open_fds[k].target) == 0;
        if (same == 2 && strncmp(open_fds[i].target, "pipe:", 5) == 0)
            continue;
        fprintf(stderr, "lockstep: leaked fd %d (%s)\n", open_fds[i].fd, open_fds[i].target);
        leaked++;
    }
    return leaked ? 97 : status;
}

static const char *outcome_keyword(enum ls_migrate_outcome o)
{
    switch (o) {
    case LS_MIGRATE_DESTINATION_RUNS: return "destination-runs";
    case LS_MIGRATE_SOURCE_LEFT: return "source-left";
    case LS_MIGRATE_RUNS_UNCONFIRMED: return "runs-unconfirmed";
    case LS_MIGRATE_SOURCE_RUNS: return "source-runs";
    case LS_MIGRATE_SOURCE_SUSPENDED: return "source-suspended";
    case LS_MIGRATE_UNCONFIRMED: return "unconfirmed";
    case LS_MIGRATE_NOT_RECEIVED: return "not-received";
    default: return "unfinished";
    }
}

/* --tls-creds and --tls-allow go with a tls: address, and it with them. */
static int check_tls_args(const char *cmd, const char *opt, const struct endpoint *ep,
                          const char *creds, const char *allow)
{
    if (ep->tls && !creds)
        return usage(cmd, "%s tls:...: --tls-creds DIR is required (the CA and this end's "
                     "certificate)", opt);
    if (!ep->tls && (creds || allow))
        return usage(cmd, "--tls-creds and --tls-allow go with a tls:HOST:PORT address");
    if (allow && !allow[0])
        return usage(cmd, "--tls-allow: the pattern is empty");
    return 0;
}

/* ---- migrate ----------------------------------------------------------------------------- */

int ls_cmd_migrate(int argc, char **argv, enum ls_backend_kind backend)
{
    static const struct option opts[] = {
        GUEST_ARGS_OPTIONS, { "to", required_argument, NULL, 't' },
        { "max-rounds", required_argument, NULL, 'R' },
        { "dirty-threshold", required_argument, NULL, 'D' },
        { "target-downtime", required_argument, NULL, 'T' },
        { "timeout", required_argument, NULL, 'o' }, { "no-digest", no_argument, NULL, 'n' },
        { "tls-creds", required_argument, NULL, 'C' }, { "tls-allow", required_argument, NULL, 'A' },
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 },
    };
    const char *to = NULL, *cmd = "migrate", *tls_creds = NULL, *tls_allow = NULL;
    uint64_t timeout_s = DEFAULT_TIMEOUT_S, v;
    bool no_digest = false, json = false;
    struct guest_args g = GUEST_ARGS_INIT;
    struct ls_precopy_policy pol = { 0 };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = guest_args_opt(cmd, c, optarg, &g);
        if (taken > 0)
            return taken;
        if (taken == 0)
            continue;
        switch (c) {
        case 't': to = optarg; break;
        case 'R':
            if (parse_u64(optarg, 100000, &v) < 0 || v == 0)
                return usage(cmd, "--max-rounds: '%s' is not 1..100000", optarg);
            pol.max_rounds = (unsigned)v;
            break;
        case 'D':
            if (parse_u64(optarg, UINT32_MAX, &v) < 0 || v == 0)
                return usage(cmd, "--dirty-threshold: '%s' is not a positive number of pages", optarg);
            pol.dirty_threshold = (unsigned)v;
            break;
        case 'T':
            if (parse_u64(optarg, 3600000, &v) < 0 || v == 0)
                return usage(cmd, "--target-downtime: '%s' is not 1..3600000 ms", optarg);
            pol.target_downtime_ms = (unsigned)v;
            break;
        case 'o':
            if (parse_u64(optarg, 86400, &timeout_s) < 0 || timeout_s == 0)
                return usage(cmd, "--timeout: '%s' is not 1..86400 seconds", optarg);
            break;
        case 'n': no_digest = true; break;
        case 'j': json = true; break;
        case 'C': tls_creds = optarg; break;
        case 'A': tls_allow = optarg; break;
        case 'h': fputs(migrate_help, stdout); return 0;
        default: return usage(cmd, "unknown option");
        }
    }
    if (optind < argc)
        return usage(cmd, "unexpected argument '%s'", argv[optind]);
    int bad = guest_args_check(cmd, &g);
    if (bad)
        return bad;
    if (!to)
        return usage(cmd, "--to tcp:HOST:PORT|tls:HOST:PORT|unix:PATH|- is required");
    struct endpoint ep;
    if (parse_endpoint(to, &ep) < 0)
        return usage(cmd, "--to: '%s' is not tcp:HOST:PORT, tls:HOST:PORT, unix:PATH or -", to);
    bad = check_tls_args(cmd, "--to", &ep, tls_creds, tls_allow);
    if (bad)
        return bad;
    if (ep.kind == EP_STDIO && isatty(STDOUT_FILENO))
        return usage(cmd, "--to -: refusing to write a binary stream to a terminal");

    unsigned timeout_ms = (unsigned)timeout_s * 1000;
    FILE *out = ep.kind == EP_STDIO ? stderr : stdout;
    struct cli_run r;
    if (cli_run_open(&r, cmd, g.sim ? LS_BACKEND_SIM : backend) < 0)
        return 1;
    r.json = json ? out : NULL;
    r.live = true;
    struct ls_backend *be = ls_ctx_backend(r.ctx);
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = 0;
    if (g.sim)   /* only a domain this command created (g.created) may be destroyed by it */
        rc = guest_args_create(be, &g, "lockstep-migrate", LS_DM_QEMU, &err);
    int send_fd = -1, recv_fd = -1;
    char why[512] = "";
    struct ls_tls_opts tls = { .creds_dir = tls_creds, .allow = tls_allow, .peer_name = ep.host };
    if (rc == 0 && tls_creds)
        rc = ls_tls_check_creds(&tls, false, &err);
    if (rc == 0 && ep.kind == EP_STDIO) {
        send_fd = STDOUT_FILENO;
        recv_fd = STDIN_FILENO;
    } else if (rc == 0) {
        send_fd = recv_fd = ep_connect(&ep, timeout_ms, why, sizeof(why));
        if (send_fd < 0)
            rc = ls_err(&err, send_fd, "%s", why);
    }
    if (rc == 0) {
        struct ls_migrate_opts mo = { .domid = (uint32_t)g.domid, .send_fd = send_fd,
                                      .recv_fd = recv_fd, .precopy = pol,
                                      .timeout_ms = timeout_ms, .no_digest = no_digest,
                                      .tls = tls };
        rc = ls_migrate_start(r.ctx, &mo, cli_run_done, &r, &r.op, &err);
        if (rc == 0) {
            rc = cli_run_wait(&r);
            if (rc < 0)
                snprintf(err.msg, sizeof(err.msg), "%s", r.errmsg);
        }
    }
    enum ls_migrate_outcome o = r.op ? ls_op_migrate_outcome(r.op) : LS_MIGRATE_SOURCE_RUNS;
    if (o == LS_MIGRATE_UNFINISHED)
        o = LS_MIGRATE_SOURCE_RUNS;
    int status = o == LS_MIGRATE_DESTINATION_RUNS ? 0 : o == LS_MIGRATE_SOURCE_RUNS ? 1
                                                                      : EXIT_ATTENTION;
    if (json) {
        struct ls_precopy_progress p = { .dirty_pages = -1 };
        uint64_t bytes = 0, total;
        struct jl j;
        if (r.op) {
            ls_op_precopy(r.op, &p);
            ls_op_progress(r.op, &bytes, &total);
        }
        jl_open(&j, out, "outcome", cmd);
        jl_result(&j, rc, err.msg);
        jl_str(&j, "outcome", outcome_keyword(o));
        jl_str(&j, "outcome_text", ls_migrate_outcome_text(o));
        if (g.domid)
            jl_u64(&j, "domid", g.domid);
        jl_str(&j, "digest", r.op && ls_op_digest(r.op)[0] ? ls_op_digest(r.op) : NULL);
        jl_u64(&j, "live_rounds", p.final_round ? p.round + 1 : 0);
        jl_u64(&j, "pages_sent", bytes / 4096);
        jl_i64(&j, "last_dirty", p.dirty_pages);
        jl_dbl(&j, "pages_per_s", p.pages_per_s);
        jl_u64(&j, "final_pages", p.final_round ? (bytes - p.bytes_at_suspend) / 4096 : 0);
        jl_u64(&j, "suspended_ns", r.op ? ls_op_suspended_ns(r.op) : 0);
        jl_u64(&j, "exit_status", (uint64_t)status);
        jl_close(&j);
    } else if (r.op) {
        struct ls_precopy_progress p;
        uint64_t bytes, total;
        ls_op_precopy(r.op, &p);
        ls_op_progress(r.op, &bytes, &total);
        if (ls_op_digest(r.op)[0])
            fprintf(out, "digest %s\n", ls_op_digest(r.op));
        if (p.final_round)
            fprintf(out, "precopy live_rounds %u pages_sent %" PRIu64 " last_dirty %ld "
                    "pages_per_s %.0f final_pages %" PRIu64 "\n", p.round + 1, bytes / 4096,
                    p.dirty_pages, p.pages_per_s, (bytes - p.bytes_at_suspend) / 4096);
        if (ls_op_suspended_ns(r.op))
            fprintf(out, "suspended_ns %" PRIu64 "\n", ls_op_suspended_ns(r.op));
    }
    if (rc < 0)
        fprintf(stderr, "lockstep %s: %s\n", cmd, err.msg[0] ? err.msg : strerror(-rc));
    if (!json)
        fprintf(out, "outcome %s: %s\n", outcome_keyword(o), ls_migrate_outcome_text(o));
    if (o == LS_MIGRATE_UNCONFIRMED || o == LS_MIGRATE_SOURCE_LEFT)
        fprintf(stderr, "lockstep %s: our copy is domain %" PRIu64 ": once the destination is "
                "checked, destroy it (lockstep sim destroy) if the guest runs there, or resume "
                "it (lockstep sim resume) if not\n", cmd, g.domid);
    fflush(out);
    /* A one-off domain that is still here, running, is this command's to remove. */
    if (g.created && o == LS_MIGRATE_SOURCE_RUNS) {
        struct ls_errbuf ignored;
        ls_err_clear(&ignored);
        ls_domain_destroy(r.ctx, (uint32_t)g.domid, &ignored);
    }
    if (send_fd > STDERR_FILENO)
        close(send_fd);
    cli_run_close(&r);
    return check_fds(status);
}

/* ---- migrate-receive ------------------------------------------------------------------- */

int ls_cmd_migrate_receive(int argc, char **argv, enum ls_backend_kind backend)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' }, { "paused", no_argument, NULL, 'p' },
        { "timeout", required_argument, NULL, 'o' }, { "no-digest", no_argument, NULL, 'n' },
        { "tls-creds", required_argument, NULL, 'C' }, { "tls-allow", required_argument, NULL, 'A' },
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 },
    };
    const char *listen_at = NULL, *cmd = "migrate-receive", *tls_creds = NULL, *tls_allow = NULL;
    uint64_t timeout_s = DEFAULT_TIMEOUT_S;
    bool paused = false, no_digest = false, json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen_at = optarg; break;
        case 'p': paused = true; break;
        case 'o':
            if (parse_u64(optarg, 86400, &timeout_s) < 0 || timeout_s == 0)
                return usage(cmd, "--timeout: '%s' is not 1..86400 seconds", optarg);
            break;
        case 'n': no_digest = true; break;
        case 'j': json = true; break;
        case 'C': tls_creds = optarg; break;
        case 'A': tls_allow = optarg; break;
        case 'h': fputs(receive_help, stdout); return 0;
        default: return usage(cmd, "unknown option");
        }
    }
    if (optind < argc)
        return usage(cmd, "unexpected argument '%s'", argv[optind]);
    struct endpoint ep = { .kind = EP_STDIO };
    if (listen_at && (parse_endpoint(listen_at, &ep) < 0 || ep.kind == EP_STDIO))
        return usage(cmd, "--listen: '%s' is not tcp:HOST:PORT, tls:HOST:PORT or unix:PATH",
                     listen_at);
    int bad = check_tls_args(cmd, "--listen", &ep, tls_creds, tls_allow);
    if (bad)
        return bad;
    if (!listen_at && isatty(STDIN_FILENO))
        return usage(cmd, "the stream would come from a terminal: give --listen, or pipe the "
                     "sender's stream in");

    unsigned timeout_ms = (unsigned)timeout_s * 1000;
    FILE *out = ep.kind == EP_STDIO ? stderr : stdout;
    struct cli_run r;
    if (cli_run_open(&r, cmd, backend) < 0)
        return 1;
    r.json = json ? out : NULL;
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = 0, send_fd = STDOUT_FILENO, recv_fd = STDIN_FILENO;
    struct ls_tls_opts tls = { .creds_dir = tls_creds, .allow = tls_allow };
    if (tls_creds)
        rc = ls_tls_check_creds(&tls, true, &err);
    if (rc == 0 && ep.kind != EP_STDIO) {
        char why[512] = "";
        send_fd = recv_fd = ep_accept(&ep, timeout_ms, r.json, why, sizeof(why));
        if (send_fd < 0)
            rc = ls_err(&err, send_fd, "%s", why);
    }
    if (rc == 0) {
        struct ls_migrate_receive_opts mo = { .recv_fd = recv_fd, .send_fd = send_fd,
                                              .timeout_ms = timeout_ms, .paused = paused,
                                              .no_digest = no_digest, .tls = tls };
        rc = ls_migrate_receive_start(r.ctx, &mo, cli_run_done, &r, &r.op, &err);
        if (rc == 0) {
            rc = cli_run_wait(&r);
            if (rc < 0)
                snprintf(err.msg, sizeof(err.msg), "%s", r.errmsg);
        }
    }
    enum ls_migrate_outcome o = r.op ? ls_op_migrate_outcome(r.op) : LS_MIGRATE_NOT_RECEIVED;
    bool runs = r.op && (o == LS_MIGRATE_DESTINATION_RUNS || o == LS_MIGRATE_RUNS_UNCONFIRMED);
    int status = o == LS_MIGRATE_DESTINATION_RUNS ? 0 : o == LS_MIGRATE_RUNS_UNCONFIRMED
                                                            ? EXIT_ATTENTION : 1;
    if (json) {
        struct jl j;
        jl_open(&j, out, "outcome", cmd);
        jl_result(&j, rc, err.msg);
        jl_str(&j, "outcome", outcome_keyword(o));
        jl_str(&j, "outcome_text", ls_migrate_outcome_text(o));
        if (runs) {
            jl_u64(&j, "domid", ls_op_domid(r.op));
            jl_str(&j, "digest", ls_op_digest(r.op)[0] ? ls_op_digest(r.op) : NULL);
            jl_u64(&j, "resumed_ns", ls_op_resumed_ns(r.op));
        }
        jl_u64(&j, "exit_status", (uint64_t)status);
        jl_close(&j);
    } else if (runs) {
        fprintf(out, "domid %u\n", ls_op_domid(r.op));
        if (ls_op_digest(r.op)[0])
            fprintf(out, "digest %s\n", ls_op_digest(r.op));
        fprintf(out, "resumed_ns %" PRIu64 "\n", ls_op_resumed_ns(r.op));
    }
    if (rc < 0)
        fprintf(stderr, "lockstep %s: %s\n", cmd, err.msg[0] ? err.msg : strerror(-rc));
    if (!json)
        fprintf(out, "outcome %s: %s\n", outcome_keyword(o), ls_migrate_outcome_text(o));
    fflush(out);
    if (send_fd > STDERR_FILENO)
        close(send_fd);
    cli_run_close(&r);
    return check_fds(status);
}
