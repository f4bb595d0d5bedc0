/* backends/sim/disk.c - a sim guest's disks and the thread that writes them (disk.h). */
#include "backends/sim/disk.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backends/sim/devmodel.h"

#define DISK_MAX 4u
#define DISK_QMP_TIMEOUT_MS 5000u
#define DEFAULT_BLOCK 65536u

struct sim_disks {
    uint32_t domid;
    uint64_t seed;
    unsigned n;
    struct { char path[SIMP_PATH_LEN]; unsigned format; uint64_t blocks; /* its size in bytes */ } disk[DISK_MAX];
    _Atomic uint64_t every;       /* read by the vCPU thread */
    _Atomic uint64_t owed;        /* disk writes asked for so far */
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* owed moved, written moved, stop */
    pthread_t th;
    bool thread_started, stop;
    /* under lock */
    uint64_t written;
    uint32_t block, top, failed;
    char dir[SIMP_PATH_LEN];      /* the QEMU in service's directory; "" = none */
    bool dir_changed;
    char last_error[200];
};

struct sim_disks *sim_disks_new(uint32_t domid, uint64_t seed)
{
    struct sim_disks *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->domid = domid;
    s->seed = seed;
    s->block = DEFAULT_BLOCK;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    return s;
}

void sim_disks_free(struct sim_disks *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->th, NULL);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

unsigned sim_disks_count(const struct sim_disks *s)
{
    return s ? s->n : 0;
}

void sim_disks_drive_opts(const struct sim_disks *s, unsigned n, char *buf, size_t len)
{
    /* libxl's COLO primary drive (spec 5), one child: either COLO role later. */
    snprintf(buf, len, "if=none,id=lsdisk%u,driver=quorum,read-pattern=fifo,vote-threshold=1,"
             "children.0.driver=%s,children.0.file.filename=%s", n,
             s->disk[n].format == SIMP_DISK_QCOW2 ? "qcow2" : "raw", s->disk[n].path);
}

int sim_disks_attach(struct sim_disks *s, const char *path, unsigned format, unsigned *index,
                     struct ls_errbuf *e)
{
    if (s->n >= DISK_MAX)
        return ls_err(e, -ENOSPC, "disk: domain %u has %u disks already (at most %u)", s->domid,
                      s->n, DISK_MAX);
    if (format > SIMP_DISK_QCOW2)
        return ls_err(e, -EINVAL, "disk: unknown format %u (0 raw, 1 qcow2)", format);
    if (path[0] != '/' || strchr(path, ',') || strlen(path) >= SIMP_PATH_LEN)
        return ls_err(e, -EINVAL, "disk: %s must be an absolute path without ',' (QEMU's option "
                      "syntax), shorter than %u bytes", path, SIMP_PATH_LEN);
    struct stat st;
    if (stat(path, &st) < 0)
        return ls_err(e, -errno, "disk: %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ls_err(e, -EINVAL, "disk: %s is not a regular file", path);
    if (format == SIMP_DISK_RAW && st.st_size < 512)
        return ls_err(e, -EINVAL, "disk: %s holds %lld bytes; a raw disk needs 512 or more",
                      path, (long long)st.st_size);
    unsigned n = s->n;
    snprintf(s->disk[n].path, sizeof(s->disk[n].path), "%s", path);
    s->disk[n].format = format;
    s->disk[n].blocks = (uint64_t)st.st_size;
    if (format == SIMP_DISK_QCOW2) {
        /* The virtual size: big-endian at byte 24 of a qcow2 header. */
        uint8_t h[32];
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(h, 1, sizeof(h), f) : 0;
        if (f)
            fclose(f);
        if (got != sizeof(h) || memcmp(h, "QFI\xfb", 4) != 0)
            return ls_err(e, -EINVAL, "disk: %s is not a qcow2 image", path);
        uint64_t v = 0;
        for (int i = 24; i < 32; i++)
            v = v << 8 | h[i];
        s->disk[n].blocks = v;
    }
    pthread_mutex_lock(&s->lock);
    s->n++;
    pthread_mutex_unlock(&s->lock);
    *index = n;
    return 0;
}

void sim_disks_detach_last(struct sim_disks *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->n)
        s->n--;
    pthread_mutex_unlock(&s->lock);
}

void sim_disks_set_dir(struct sim_disks *s, const char *dm_dir)
{
    pthread_mutex_lock(&s->lock);
    if (strcmp(s->dir, dm_dir ? dm_dir : "") != 0) {
        snprintf(s->dir, sizeof(s->dir), "%s", dm_dir ? dm_dir : "");
        s->dir_changed = true;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- the writer --------------------------------------------------------------- */

/* Disk write j as an HMP qemu-io command line. */
static void write_line(const struct sim_disks *s, uint64_t j, uint32_t block, bool top, char *buf,
                       size_t len)
{
    uint64_t sizes[DISK_MAX];
    for (unsigned i = 0; i < s->n; i++)
        sizes[i] = s->disk[i].blocks;
    unsigned n;
    uint64_t at;
    uint8_t fill;
    simp_disk_write_at(s->seed, j, block, s->n, sizes, &n, &at, &fill);
    snprintf(buf, len, "qemu-io lsdisk%u%s \"write -P 0x%02x %" PRIu64 " %u\"", n,
             top ? "-top" : "", fill, at, block);
}

static void *writer(void *arg)
{
    struct sim_disks *s = arg;
    struct qmp_peer *p = NULL;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && (s->written >= atomic_load(&s->owed) || !s->dir[0]))
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->stop)
            break;
        char path[SIMP_PATH_LEN + 16], line[160];
        if (s->dir_changed && p) {
            sim_qmp_close(p);
            p = NULL;
        }
        s->dir_changed = false;
        snprintf(path, sizeof(path), "%s/dsk.sock", s->dir);
        uint64_t j = s->written;
        write_line(s, j, s->block, s->top, line, sizeof(line));
        pthread_mutex_unlock(&s->lock);
        struct ls_errbuf e = { 0 };
        int rc = p ? 0 : sim_qmp_open(path, DISK_QMP_TIMEOUT_MS, &p, &e);
        if (rc == 0)
            rc = sim_qmp_hmp(p, line, DISK_QMP_TIMEOUT_MS, &e);
        pthread_mutex_lock(&s->lock);
        if (rc == -EIO) {
            /* QEMU refused this write (no such drive, say): counted, not retried. */
            s->failed++;
            snprintf(s->last_error, sizeof(s->last_error), "%.199s", e.msg);
        } else if (rc < 0) {
            /* QEMU gone or being replaced: wait for a new directory, then retry. */
            snprintf(s->last_error, sizeof(s->last_error), "%.199s", e.msg);
            sim_qmp_close(p);
            p = NULL;
            if (!s->dir_changed && !s->stop) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 50 * 1000000;
                if (until.tv_nsec >= 1000000000) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&s->cond, &s->lock, &until);
            }
            continue;
        }
        if (s->written == j)   /* an adopt may have moved it meanwhile */
            s->written++;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    sim_qmp_close(p);
    return NULL;
}

int sim_disks_config(struct sim_disks *s, const struct simp_disk *in, struct ls_errbuf *e)
{
    if (!s->n)
        return ls_err(e, -ENODEV, "disk: domain %u has no disk (attach one first)", s->domid);
    uint32_t block = in->block ? in->block : DEFAULT_BLOCK;
    if (block < 512 || block > (1u << 20) || (block & (block - 1)))
        return ls_err(e, -EINVAL, "disk: a write of %u bytes (a power of two, 512 to 1 MiB)",
                      block);
    for (unsigned n = 0; n < s->n; n++)
        if (s->disk[n].blocks < block)
            return ls_err(e, -EINVAL, "disk: %s holds less than one %u-byte block",
                          s->disk[n].path, block);
    if (!s->thread_started) {
        if (pthread_create(&s->th, NULL, writer, s) != 0)
            return ls_err(e, -EAGAIN, "disk: cannot start the writer thread");
        s->thread_started = true;
    }
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->every, in->every);
    s->block = block;
    s->top = in->top ? 1 : 0;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void sim_disks_stats(struct sim_disks *s, struct simp_disk *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;   /* (the caller adds the block QEMU's paths) */
    pthread_mutex_lock(&s->lock);
    out->every = atomic_load(&s->every);
    out->block = s->block;
    out->top = s->top;
    out->ndisks = s->n;
    out->failed = s->failed;
    out->owed = atomic_load(&s->owed);
    out->written = s->written;
    snprintf(out->last_error, sizeof(out->last_error), "%s", s->last_error);
    pthread_mutex_unlock(&s->lock);
}

void sim_disks_on_write(struct sim_disks *s, uint64_t k)
{
    uint64_t every = atomic_load_explicit(&s->every, memory_order_relaxed);
    if (!every || (k + 1) % every != 0)
        return;
    atomic_store(&s->owed, (k + 1) / every);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void sim_disks_flush(struct sim_disks *s, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->lock);
    while (s->thread_started && s->written < atomic_load(&s->owed) && s->dir[0])
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->lock);
}

void sim_disks_adopt(struct sim_disks *s, uint64_t k)
{
    uint64_t every = atomic_load(&s->every);
    uint64_t j = every ? k / every : 0;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->owed, j);
    s->written = j;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}
