/* backends/sim/mempool.c - the sim host's free memory, kept allocated (see
 * mempool.h). Called from the daemon's main thread (take) and from the
 * threads that release destroyed domains' memory (plan, refill). */
#include "backends/sim/mempool.h"
#include "backends/sim/guestmem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define POOL_MAX 64            /* memfds kept ready */
#define LAYOUT_MAX_RANGES 1024 /* beyond this, neighbouring ranges merge */

struct pooled {
    int fd;
    uint64_t size;             /* the memfd's length */
    uint64_t allocated;        /* bytes of it allocated */
};

struct range {
    uint64_t off, len;
};

struct sim_pool_refill {
    uint64_t size, allocated;
    unsigned nevicted;
    int evicted[POOL_MAX];     /* older pooled memfds it displaced: closed by the refill */
    unsigned nranges;
    struct range ranges[];
};

static struct {
    pthread_mutex_t lock;
    uint64_t capacity;
    uint64_t held;             /* allocated bytes, ready or being refilled */
    uint32_t filling;
    uint32_t taken;            /* memfds handed to domains, ever */
    unsigned n;
    struct pooled ready[POOL_MAX];
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

void sim_pool_set_capacity(uint64_t bytes)
{
    pthread_mutex_lock(&pool.lock);
    pool.capacity = bytes;
    pthread_mutex_unlock(&pool.lock);
}

int sim_pool_take(uint64_t bytes)
{
    pthread_mutex_lock(&pool.lock);
    int best = -1;
    for (unsigned i = 0; i < pool.n; i++)
        if (pool.ready[i].size >= bytes && (best < 0 || pool.ready[i].size < pool.ready[best].size))
            best = (int)i;
    if (best < 0) {
        pthread_mutex_unlock(&pool.lock);
        return -1;
    }
    struct pooled p = pool.ready[best];
    memmove(&pool.ready[best], &pool.ready[best + 1], (--pool.n - (unsigned)best) * sizeof(p));
    pool.held -= p.allocated;
    pool.taken++;
    pthread_mutex_unlock(&pool.lock);

    /* Cutting a bigger memfd to size gives its tail back to the kernel. */
    if (p.size > bytes && ftruncate(p.fd, (off_t)bytes) < 0) {
        close(p.fd);
        return -1;
    }
    return p.fd;
}

struct sim_pool_refill *sim_pool_plan_refill(int old_memfd)
{
    pthread_mutex_lock(&pool.lock);
    bool on = pool.capacity > 0 && pool.filling < POOL_MAX;
    pthread_mutex_unlock(&pool.lock);
    struct stat st;
    if (!on || fstat(old_memfd, &st) < 0 || st.st_size <= 0)
        return NULL;

    struct sim_pool_refill *r = malloc(sizeof(*r) + LAYOUT_MAX_RANGES * sizeof(r->ranges[0]));
    if (!r)
        return NULL;
    *r = (struct sim_pool_refill){ .size = (uint64_t)st.st_size };
    /* The allocated ranges, as SEEK_DATA / SEEK_HOLE walk them: a restored
     * guest's memory is a few long runs around the holes of its layout. */
    off_t at = 0;
    for (;;) {
        off_t data = lseek(old_memfd, at, SEEK_DATA);
        if (data < 0)
            break;               /* ENXIO: no data after `at` */
        off_t hole = lseek(old_memfd, data, SEEK_HOLE);
        if (hole <= data)
            hole = st.st_size;
        if (r->nranges == LAYOUT_MAX_RANGES)
            r->ranges[r->nranges - 1].len = (uint64_t)(hole - (off_t)r->ranges[r->nranges - 1].off);
        else
            r->ranges[r->nranges++] = (struct range){ (uint64_t)data, (uint64_t)(hole - data) };
        at = hole;
    }
    for (unsigned i = 0; i < r->nranges; i++)
        r->allocated += r->ranges[i].len;

    pthread_mutex_lock(&pool.lock);
    /* The newest layout is the likeliest to be asked for next (the same
     * guest restored or migrated again): it displaces the oldest ready
     * memfds, never a refill still allocating. */
    uint64_t ready_bytes = 0;
    for (unsigned i = 0; i < pool.n; i++)
        ready_bytes += pool.ready[i].allocated;
    on = r->allocated > 0 && pool.held - ready_bytes + r->allocated <= pool.capacity &&
         pool.filling < POOL_MAX;
    while (on && (pool.held + r->allocated > pool.capacity || pool.n + pool.filling >= POOL_MAX)) {
        r->evicted[r->nevicted++] = pool.ready[0].fd;
        pool.held -= pool.ready[0].allocated;
        memmove(&pool.ready[0], &pool.ready[1], --pool.n * sizeof(pool.ready[0]));
    }
    if (on) {
        pool.held += r->allocated;
        pool.filling++;
    }
    pthread_mutex_unlock(&pool.lock);
    if (!on) {
        free(r);
        return NULL;
    }
    return r;
}

uint64_t sim_pool_refill_bytes(const struct sim_pool_refill *r)
{
    return r->allocated;
}

int sim_pool_refill(struct sim_pool_refill *r)
{
    for (unsigned i = 0; i < r->nevicted; i++)
        close(r->evicted[i]);   /* their memory goes back before the new is taken */
    int fd = sim_guestmem_new("sim-pool");
    bool ok = fd >= 0 && ftruncate(fd, (off_t)r->size) == 0;
    /* Zeros written, not fallocate: a fallocated shmem page is allocated but
     * never touched, so on a VM whose host backs memory lazily the first
     * write into it (inside the next restore) still pays for the backing
     * (measured: a restore into fallocated pool memory ran at 0.57-0.70 of a
     * copy into written memory). pwrite maps nothing here either. */
    static const char zeros[1 << 16];
    for (unsigned i = 0; ok && i < r->nranges; i++)
        for (uint64_t at = r->ranges[i].off, end = at + r->ranges[i].len; ok && at < end;) {
            ssize_t w = pwrite(fd, zeros, end - at < sizeof(zeros) ? (size_t)(end - at) : sizeof(zeros),
                               (off_t)at);
            ok = w > 0 || (w < 0 && errno == EINTR);
            if (w > 0)
                at += (uint64_t)w;
        }
    int err = ok ? 0 : -errno;

    pthread_mutex_lock(&pool.lock);
    pool.filling--;
    if (ok && pool.n < POOL_MAX) {
        pool.ready[pool.n++] = (struct pooled){ .fd = fd, .size = r->size, .allocated = r->allocated };
        fd = -1;
    } else {
        pool.held -= r->allocated;
    }
    pthread_mutex_unlock(&pool.lock);
    if (fd >= 0)
        close(fd);
    free(r);
    return ok ? 0 : (err ? err : -ENOSPC);
}

void sim_pool_stats(uint32_t *ready, uint32_t *filling, uint64_t *ready_bytes, uint32_t *taken)
{
    pthread_mutex_lock(&pool.lock);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < pool.n; i++)
        bytes += pool.ready[i].allocated;
    if (ready)
        *ready = pool.n;
    if (filling)
        *filling = pool.filling;
    if (ready_bytes)
        *ready_bytes = bytes;
    if (taken)
        *taken = pool.taken;
    pthread_mutex_unlock(&pool.lock);
}

void sim_pool_drain(void)
{
    pthread_mutex_lock(&pool.lock);
    for (unsigned i = 0; i < pool.n; i++) {
        close(pool.ready[i].fd);
        pool.held -= pool.ready[i].allocated;
    }
    pool.n = 0;
    pthread_mutex_unlock(&pool.lock);
}
