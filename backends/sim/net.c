/* backends/sim/net.c - a sim guest's network output (see net.h). */
#include "backends/sim/net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct sim_net {
    pthread_mutex_t lock;
    _Atomic uint64_t every;          /* read unlocked on every write: most owe no frame */
    uint32_t nondet_ppm;
    uint64_t rng;                    /* xorshift64 state: the host's randomness, not the guest's */
    int fd;                          /* the daemon's end of the reader's pair, -1 = none */
    uint8_t (*queue)[SIMP_FRAME_LEN];
    unsigned head, count;
    uint64_t frames, nondet, dropped, sent;
};

static uint64_t rng_next(struct sim_net *n)
{
    uint64_t x = n->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return n->rng = x;
}

static uint64_t clock_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 32);
}

struct sim_net *sim_net_new(void)
{
    struct sim_net *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->queue = calloc(SIM_NET_QUEUE, SIMP_FRAME_LEN);
    if (!n->queue) {
        free(n);
        return NULL;
    }
    pthread_mutex_init(&n->lock, NULL);
    n->fd = -1;
    n->rng = clock_seed() | 1;
    return n;
}

void sim_net_free(struct sim_net *n)
{
    if (!n)
        return;
    if (n->fd >= 0)
        close(n->fd);
    pthread_mutex_destroy(&n->lock);
    free(n->queue);
    free(n);
}

int sim_net_config(struct sim_net *n, const struct simp_net *in, struct ls_errbuf *e)
{
    if (in->nondet_ppm > 1000000)
        return ls_err(e, -EINVAL, "net: %u nondeterministic frames per million is over a million",
                      in->nondet_ppm);
    pthread_mutex_lock(&n->lock);
    n->nondet_ppm = in->nondet_ppm;
    n->rng = (in->rng_seed ? in->rng_seed : clock_seed()) | 1;
    atomic_store(&n->every, in->every);
    pthread_mutex_unlock(&n->lock);
    return 0;
}

void sim_net_stats(struct sim_net *n, struct simp_net *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&n->lock);
    out->every = atomic_load(&n->every);
    out->nondet_ppm = n->nondet_ppm;
    out->attached = n->fd >= 0;
    out->frames = n->frames;
    out->nondet = n->nondet;
    out->dropped = n->dropped;
    out->sent = n->sent;
    pthread_mutex_unlock(&n->lock);
}

/* The reader is gone: what waits for it is lost. Lock held. */
static void reader_lost(struct sim_net *n)
{
    close(n->fd);
    n->fd = -1;
    n->dropped += n->count;
    n->count = 0;
}

/* Hand queued frames to the socket until it is full. Lock held. */
static void push_locked(struct sim_net *n)
{
    while (n->count && n->fd >= 0) {
        ssize_t w = send(n->fd, n->queue[n->head], SIMP_FRAME_LEN, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == ENOBUFS))
            return;
        if (w != (ssize_t)SIMP_FRAME_LEN) {
            reader_lost(n);
            return;
        }
        n->head = (n->head + 1) % SIM_NET_QUEUE;
        n->count--;
        n->sent++;
    }
}

/* fd is the reader's socket from now on; the previous reader's is closed. */
static void set_reader(struct sim_net *n, int fd)
{
    /* Room for a burst: a queue's worth in the socket (about 1 KiB of kernel memory each). */
    int sz = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    pthread_mutex_lock(&n->lock);
    if (n->fd >= 0)
        reader_lost(n);
    n->fd = fd;
    pthread_mutex_unlock(&n->lock);
}

int sim_net_attach(struct sim_net *n, int *fd, struct ls_errbuf *e)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return ls_err(e, -errno, "net: socketpair: %s", strerror(errno));
    set_reader(n, sv[0]);
    *fd = sv[1];
    return 0;
}

int sim_net_connect(struct sim_net *n, const char *path, struct ls_errbuf *e)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a.sun_path))
        return ls_err(e, -ENAMETOOLONG, "net: socket path '%s' is too long", path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ls_err(e, -errno, "net: socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int rc = -errno;
        close(fd);
        return ls_err(e, rc, "net: connecting the guest's network to %s: %s", path,
                      strerror(-rc));
    }
    set_reader(n, fd);
    return 0;
}

void sim_net_on_write(struct sim_net *n, uint64_t k, uint64_t *word)
{
    uint64_t every = atomic_load_explicit(&n->every, memory_order_relaxed);
    if (!every || (k + 1) % every)
        return;
    pthread_mutex_lock(&n->lock);
    int nondet = n->nondet_ppm && rng_next(n) % 1000000u < n->nondet_ppm;
    if (nondet)
        __atomic_store_n(word, rng_next(n), __ATOMIC_RELAXED);
    uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    n->frames++;
    n->nondet += (uint64_t)nondet;
    if (n->fd < 0 || n->count == SIM_NET_QUEUE) {
        n->dropped++;
    } else {
        simp_frame_build(n->queue[(n->head + n->count) % SIM_NET_QUEUE], (k + 1) / every - 1, k + 1,
                         v, nondet);
        n->count++;
        push_locked(n);
    }
    pthread_mutex_unlock(&n->lock);
}

void sim_net_flush(struct sim_net *n, int timeout_ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&n->lock);
    for (;;) {
        push_locked(n);
        if (!n->count || n->fd < 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            break;
        struct pollfd p = { .fd = n->fd, .events = POLLOUT };
        pthread_mutex_unlock(&n->lock);
        (void)poll(&p, 1, (int)left);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
}
