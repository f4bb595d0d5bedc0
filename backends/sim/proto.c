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
        [SIMP_OP_DM_LOAD] = "dm-load",
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
