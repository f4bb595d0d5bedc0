/* bench/common.c - see common.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

const char *bench_prog = "bench";

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

double bench_cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return bench_cpu_s(&ru);
}

uint64_t bench_proc_field(const char *file, const char *name)
{
    char buf[4096];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    size_t len = strlen(name);
    for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, len) == 0 && p[len] == ':')
            return strtoull(p + len + 1, NULL, 10);
    }
    return 0;
}

/* The run's work directory, removed when a run dies too (a bench that
 * failed leaves no tree in /tmp). */
static char bench_work[256];

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", bench_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (bench_work[0])
        bench_remove_tree(bench_work);
    exit(1);
}

int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

double bench_median_ms(uint64_t *ns, unsigned n)
{
    qsort(ns, n, sizeof(ns[0]), bench_cmp_u64);
    return ns[n / 2] / 1e6;
}

void bench_workdir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "/tmp/lockstep-bench-%s.XXXXXX", name);
    if (!mkdtemp(out))
        bench_die("mkdtemp %s: %s", out, strerror(errno));
    snprintf(bench_work, sizeof(bench_work), "%s", out);
}

void bench_remove_tree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "%s: could not remove %s\n", bench_prog, dir);
    if (strcmp(dir, bench_work) == 0)
        bench_work[0] = '\0';
}

/* ---- sim hosts -------------------------------------------------------------- */

void bench_host_open(struct bench_host *h, const char *rundir)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (rundir)
        setenv("LOCKSTEP_RUNDIR", rundir, 1);
    uv_loop_init(&h->loop);
    if (ls_ctx_new(&h->ctx, &h->loop, LS_BACKEND_SIM, &e) < 0)
        bench_die("the sim daemon%s%s: %s", rundir ? " of " : "", rundir ? rundir : "", e.msg);
    h->be = ls_ctx_backend(h->ctx);
}

void bench_host_close(struct bench_host *h, bool stop_daemon)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    int pid = 0;
    if (stop_daemon && ls_sim_daemon_pid(h->be, &pid, &e) < 0)
        pid = 0;
    ls_ctx_free(h->ctx);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    if (pid > 0) {
        kill(pid, SIGTERM);
        for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
            usleep(10000);
    }
}

void bench_host_clear(struct bench_host *h)
{
    struct ls_domain_info *d;
    size_t n;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_list(h->be, &d, &n, &e) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        ls_domain_destroy(h->ctx, d[i].domid, &e);
    free(d);
}

int bench_pool_settle(struct bench_host *h, struct ls_sim_pool_status *ps)
{
    struct ls_errbuf e;
    for (uint64_t t0 = bench_now_ns();;) {
        ls_err_clear(&e);
        int rc = ls_sim_pool_status(h->be, ps, &e);
        if (rc < 0)
            return rc;
        if (ps->filling == 0 || bench_now_ns() - t0 > 30ull * 1000000000u)
            return 0;
        usleep(20000);
    }
}

/* ---- guest memory ----------------------------------------------------------- */

bool bench_next_run(const struct ls_sim_memory *m, uint64_t *pfn, uint64_t *n, uint64_t max)
{
    uint64_t p = *pfn;
    while (p < m->p2m_size && m->frame[p] == LS_SIM_FRAME_ABSENT)
        p++;
    if (p >= m->p2m_size)
        return false;
    uint64_t k = 1;
    while (p + k < m->p2m_size && k < max && m->frame[p + k] != LS_SIM_FRAME_ABSENT)
        k++;
    *pfn = p;
    *n = k;
    return true;
}

int bench_guest_populate(struct ls_backend *be, uint32_t domid, char *errmsg, size_t len)
{
    struct ls_sim_memory m;
    struct ls_errbuf e;
    ls_err_clear(&e);
    int rc = ls_sim_map_memory(be, domid, true, &m, &e);
    if (rc < 0) {
        snprintf(errmsg, len, "mapping domain %u: %s", domid, e.msg);
        return rc;
    }
    uint64_t n;
    for (uint64_t pfn = 0; rc == 0 && bench_next_run(&m, &pfn, &n, UINT64_MAX); pfn += n) {
        if (madvise(m.mem + pfn * PAGE, n * PAGE, MADV_POPULATE_WRITE) < 0) {
            rc = -errno;
            snprintf(errmsg, len, "allocating guest pfns 0x%llx+0x%llx: %s",
                     (unsigned long long)pfn, (unsigned long long)n, strerror(errno));
        }
    }
    ls_sim_unmap_memory(&m);
    return rc;
}

/* ---- the minimal QMP client ------------------------------------------------- */

/* One line into m->buf[0..return); it is consumed by the next call. */
static ssize_t mini_line(struct bench_qmp_mini *m, size_t *used)
{
    if (*used) {
        memmove(m->buf, m->buf + *used, m->len - *used);
        m->len -= *used;
        *used = 0;
    }
    for (;;) {
        char *nl = memchr(m->buf, '\n', m->len);
        if (nl) {
            *used = (size_t)(nl - m->buf) + 1;
            return (ssize_t)*used;
        }
        if (m->len == sizeof(m->buf))
            return -EMSGSIZE;
        ssize_t k = read(m->fd, m->buf + m->len, sizeof(m->buf) - m->len);
        if (k <= 0)
            return k == 0 ? -ECONNRESET : -errno;
        m->len += (size_t)k;
    }
}

int bench_mini_exec(struct bench_qmp_mini *m, const char *msg, size_t len)
{
    if (write(m->fd, msg, len) != (ssize_t)len)
        return -EIO;
    for (size_t used = 0;;) {
        ssize_t n = mini_line(m, &used);
        if (n < 0)
            return (int)n;
        int rc = memmem(m->buf, (size_t)n, "\"return\"", 8) ? 0
                 : memmem(m->buf, (size_t)n, "\"error\"", 7) ? -EREMOTEIO : 1;
        if (rc <= 0) {
            memmove(m->buf, m->buf + used, m->len - used);
            m->len -= used;
            return rc;
        }
    }
}

int bench_connect_unix(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    int err = errno;
    close(fd);
    return -err;
}

int bench_mini_open(struct bench_qmp_mini *m, const char *path, unsigned wait_ms)
{
    m->len = 0;
    uint64_t t0 = bench_now_ns();
    while ((m->fd = bench_connect_unix(path)) < 0) {
        int rc = m->fd;
        m->fd = -1;
        if (rc == -ENAMETOOLONG || bench_now_ns() - t0 > wait_ms * 1000000ull)
            return rc;
        usleep(1000);
    }
    size_t used = 0;
    ssize_t n = mini_line(m, &used);   /* the greeting */
    if (n < 0)
        return (int)n;
    memmove(m->buf, m->buf + used, m->len - used);
    m->len -= used;
    static const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
    return bench_mini_exec(m, caps, sizeof(caps) - 1);
}

void bench_mini_close(struct bench_qmp_mini *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}
