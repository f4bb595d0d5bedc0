/* backends/sim/proto.c - names and the blocking send used by the client. */
#include "backends/sim/proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

const char *simp_op_name(unsigned op)
{
    static const char *const names[SIMP_OP_MAX_] = {
        [SIMP_OP_HELLO] = "hello",     [SIMP_OP_CREATE] = "create",
        [SIMP_OP_LIST] = "list",       [SIMP_OP_INFO] = "info",
        [SIMP_OP_PAUSE] = "pause",     [SIMP_OP_UNPAUSE] = "unpause",
        [SIMP_OP_SUSPEND] = "suspend", [SIMP_OP_RESUME] = "resume",
        [SIMP_OP_DESTROY] = "destroy", [SIMP_OP_MAP] = "map",
        [SIMP_OP_GET] = "get",         [SIMP_OP_SET] = "set",
        [SIMP_OP_DIGEST] = "digest",   [SIMP_OP_LOGDIRTY] = "logdirty",
        [SIMP_OP_GUARD] = "guard",     [SIMP_OP_HANDOFF] = "handoff",
        [SIMP_OP_DM_INFO] = "dm-info", [SIMP_OP_DM_START] = "dm-start",
        [SIMP_OP_DM_STOP] = "dm-stop", [SIMP_OP_DM_STANDBY] = "dm-standby",
        [SIMP_OP_DM_LOAD] = "dm-load", [SIMP_OP_NET] = "net",
        [SIMP_OP_DISK] = "disk",
    };
    return op < SIMP_OP_MAX_ && names[op] ? names[op] : "unknown";
}

const char *simp_kind_name(unsigned kind)
{
    static const char *const names[SIMP_K_MAX_] = {
        [SIMP_K_VCPU_BASIC] = "vcpu-basic",     [SIMP_K_VCPU_EXTENDED] = "vcpu-extended",
        [SIMP_K_VCPU_XSAVE] = "vcpu-xsave",     [SIMP_K_VCPU_MSRS] = "vcpu-msrs",
        [SIMP_K_SHARED_INFO] = "shared-info",   [SIMP_K_TSC_INFO] = "tsc-info",
        [SIMP_K_HVM_CONTEXT] = "hvm-context",   [SIMP_K_HVM_PARAMS] = "hvm-params",
        [SIMP_K_CPUID_POLICY] = "cpuid-policy", [SIMP_K_MSR_POLICY] = "msr-policy",
        [SIMP_K_PV_INFO] = "pv-info",           [SIMP_K_P2M_FRAMES] = "p2m-frames",
        [SIMP_K_DOMAIN_TYPE] = "domain-type",   [SIMP_K_VCPUS] = "vcpus",
        [SIMP_K_CONFIG_JSON] = "config-json",   [SIMP_K_WORKLOAD] = "workload",
    };
    return kind < SIMP_K_MAX_ && names[kind] ? names[kind] : "unknown";
}

int simp_send(int fd, const struct simp_hdr *h, const void *payload,
              const int *fds, int nfds)
{
    struct iovec iov[2] = {
        { .iov_base = (void *)h, .iov_len = sizeof(*h) },
        { .iov_base = (void *)payload, .iov_len = payload ? h->len : 0 },
    };
    int niov = iov[1].iov_len ? 2 : 1;
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } ctl;
    int first = 1;
    struct iovec *v = iov;

    if (nfds < 0 || nfds > 4)
        return -EINVAL;
    while (niov > 0) {
        struct msghdr m = { .msg_iov = v, .msg_iovlen = (size_t)niov };
        if (first && nfds > 0) {
            memset(&ctl, 0, sizeof(ctl));
            m.msg_control = ctl.buf;
            m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            if (!c)
                return -EINVAL;
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
        }
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        first = 0;
        size_t done = (size_t)w;
        while (niov > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            niov--;
        }
        if (niov > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

int simp_rundir(char *buf, size_t len)
{
    const char *env = getenv("LOCKSTEP_RUNDIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env)
        n = snprintf(buf, len, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(buf, len, "%s/lockstep", xdg);
    else if (geteuid() == 0)
        n = snprintf(buf, len, "/run/lockstep");
    else
        n = snprintf(buf, len, "/tmp/lockstep-%u", (unsigned)geteuid());
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int simp_rundir_file(const char *rundir, const char *file, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", rundir, file);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- a guest's network frame ------------------------------------------------------ */

static const uint8_t frame_head[42] = {
    0x02, 0x4c, 0x53, 0x00, 0x00, 0x01, 0x02, 0x4c, 0x53, 0x00, 0x00, 0x02, 0x08, 0x00,
    0x45, 0x00, 0x00, 68, 0, 0, 0x40, 0x00, 64, 17, 0, 0, 10, 76, 83, 2, 10, 76, 83, 1,
    0xc0, 0x00, 0x00, 0x09, 0x00, 48, 0, 0,
};

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The internet checksum's folded sum of n bytes, plus sum. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

static uint64_t frame_check(uint64_t seq, uint64_t writes, uint64_t word, int nondet)
{
    uint64_t h = UINT64_C(0x4c534e54) ^ (uint64_t)nondet;
    uint64_t in[3] = { seq, writes, word };
    for (int i = 0; i < 3; i++) {
        h = (h ^ in[i]) * UINT64_C(0x100000001b3);
        h ^= h >> 29;
    }
    return h;
}

static uint16_t udp_csum(const uint8_t *f)
{
    /* pseudo header: addresses, protocol, UDP length; then header and payload */
    uint32_t sum = csum_add(0, f + 26, 8) + 17 + 48;
    sum = csum_add(sum, f + 34, 48);
    uint16_t c = (uint16_t)~sum;
    return c ? c : 0xffff;
}

void simp_frame_build(uint8_t out[SIMP_FRAME_LEN], uint64_t seq, uint64_t writes, uint64_t word,
                      int nondet)
{
    memcpy(out, frame_head, sizeof(frame_head));
    put_be(out + 18, seq & 0xffff, 2);
    put_be(out + 34, 49152 + seq % 16384, 2);   /* a source port per frame (see sim.h) */
    put_be(out + 24, (uint16_t)~csum_add(0, out + 14, 20), 2);
    uint8_t *p = out + 42;
    memcpy(p, "LSNT", 4);
    put_be(p + 4, nondet ? 1 : 0, 4);
    put_be(p + 8, seq, 8);
    put_be(p + 16, writes, 8);
    put_be(p + 24, word, 8);
    put_be(p + 32, frame_check(seq, writes, word, nondet ? 1 : 0), 8);
    put_be(out + 40, udp_csum(out), 2);
}

int simp_frame_parse(const uint8_t *buf, size_t len, uint64_t *seq, uint64_t *writes,
                     uint64_t *word, int *nondet)
{
    if (len != SIMP_FRAME_LEN || memcmp(buf, frame_head, 18) != 0 ||
        memcmp(buf + 20, frame_head + 20, 4) != 0 || memcmp(buf + 26, frame_head + 26, 8) != 0 ||
        memcmp(buf + 36, frame_head + 36, 4) != 0 ||
        memcmp(buf + 42, "LSNT", 4) != 0)
        return -EINVAL;
    uint32_t flags = (uint32_t)get_be(buf + 46, 4);
    if (flags > 1)
        return -EINVAL;
    uint64_t s = get_be(buf + 50, 8), w = get_be(buf + 58, 8), v = get_be(buf + 66, 8);
    uint8_t want[SIMP_FRAME_LEN];
    simp_frame_build(want, s, w, v, (int)flags);
    if (memcmp(want, buf, SIMP_FRAME_LEN) != 0)
        return -EINVAL;   /* a checksum, the IP id or the check word is off */
    *seq = s;
    *writes = w;
    *word = v;
    *nondet = (int)flags;
    return 0;
}

/* ---- a guest's disk writes ------------------------------------------------------------ */

static uint64_t disk_mix(uint64_t z)
{
    z += UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void simp_disk_write_at(uint64_t seed, uint64_t j, unsigned block, unsigned ndisks,
                        const uint64_t *sizes, unsigned *disk, uint64_t *offset, uint8_t *fill)
{
    unsigned n = ndisks ? (unsigned)(j % ndisks) : 0;
    uint64_t blocks = block ? sizes[n] / block : 0;
    *disk = n;
    *offset = (disk_mix(seed ^ disk_mix(j)) % (blocks ? blocks : 1)) * block;
    *fill = (uint8_t)(1 + j % 255);
}
