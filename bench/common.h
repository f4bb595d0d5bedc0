/* bench/common.h - what every benchmark needs once: clocks and /proc, a
 * private sim host through the public API, a guest's memory made real before
 * timing, and a minimal blocking QMP client (the baselines' and the set-ups').
 * Like the benchmarks, it sees only include/lockstep/ and libc/libuv. */
#ifndef LOCKSTEP_BENCH_COMMON_H
#define LOCKSTEP_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <uv.h>

#include "lockstep/lockstep.h"
#include "lockstep/sim.h"

extern const char *bench_prog;   /* set by main: names the benchmark in errors */

uint64_t bench_now_ns(void);                         /* CLOCK_MONOTONIC */
double bench_cpu_s(const struct rusage *ru);         /* user + system */
double bench_cpu_self_s(void);
/* A "name: value" field of a /proc file (/proc/self/io, /proc/self/status), or 0. */
uint64_t bench_proc_field(const char *file, const char *name);
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int bench_cmp_u64(const void *a, const void *b);     /* qsort */
double bench_median_ms(uint64_t *ns, unsigned n);    /* sorts ns */

/* mkdtemp of /tmp/lockstep-bench-NAME.XXXXXX (dies on failure), and its removal. */
void bench_workdir(char *out, size_t len, const char *name);
void bench_remove_tree(const char *dir);

/* A sim host: a loop and a context whose daemon serves rundir (NULL: the
 * one the environment names). Dies when it cannot be had. */
struct bench_host {
    uv_loop_t loop;
    struct ls_ctx *ctx;
    struct ls_backend *be;
};
void bench_host_open(struct bench_host *h, const char *rundir);
/* stop_daemon: SIGTERM to the host's daemon (a private host's). */
void bench_host_close(struct bench_host *h, bool stop_daemon);
void bench_host_clear(struct bench_host *h);   /* destroy every domain */
/* Waits (up to 30 s) until the host's memory pool has no refill running, so
 * that nothing times one; the pool's status then, or -errno. */
int bench_pool_settle(struct bench_host *h, struct ls_sim_pool_status *ps);

/* The sim keeps a new guest's zero pages as holes in its memory file, and
 * whoever first touches one allocates and clears it in a page fault; a Xen
 * guest's populated pages are real frames. Make them real, before timing. */
int bench_guest_populate(struct ls_backend *be, uint32_t domid, char *errmsg, size_t len);
/* From *pfn on: the next run of populated pfns (at most max), in *pfn and
 * *n; false when none is left. */
bool bench_next_run(const struct ls_sim_memory *m, uint64_t *pfn, uint64_t *n, uint64_t max);

/* A connected unix stream socket, or -errno. */
int bench_connect_unix(const char *path);

/* A blocking QMP client with nothing in it: connect (retrying up to wait_ms
 * while QEMU starts), greeting, qmp_capabilities. */
struct bench_qmp_mini {
    int fd;
    size_t len;
    char buf[1 << 16];
};
int bench_mini_open(struct bench_qmp_mini *m, const char *path, unsigned wait_ms);
/* Write msg, read lines up to its reply (events skipped): 0 on "return",
 * -EREMOTEIO on "error", else -errno. */
int bench_mini_exec(struct bench_qmp_mini *m, const char *msg, size_t len);
void bench_mini_close(struct bench_qmp_mini *m);

#endif
