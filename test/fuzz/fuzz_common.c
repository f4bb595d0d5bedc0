/* test/fuzz/fuzz_common.c - helpers shared by the harnesses. */
#include "fuzz/fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int fuzz_memfd(const void *data, size_t size)
{
    int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd < 0) {
        perror("fuzz: memfd_create");
        abort();
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, p + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("fuzz: write to memfd");
            abort();
        }
        done += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    return fd;
}

int fuzz_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        abort();
    /* cppcheck-suppress readdirCalled ; readdir_r is deprecated (glibc); one thread reads this stream */
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static char rundir[256];

/* Stop our daemon (its pid file is in the run directory) and remove the
 * directory: nothing of a fuzz run outlives it. */
static void stop_daemon(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/simd.pid", rundir);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid > 0)
        kill(pid, SIGTERM);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rundir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", rundir);
}

void fuzz_private_rundir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(rundir, sizeof(rundir), "%s/lockstep-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(rundir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    setenv("LOCKSTEP_RUNDIR", rundir, 1);
    /* A daemon of our own, gone shortly after we are. */
    setenv("LOCKSTEP_SIMD_IDLE_EXIT", "5", 1);
    atexit(stop_daemon);
}

struct ls_ctx *fuzz_sim_ctx(uv_loop_t *loop)
{
    fuzz_private_rundir();
    if (!getenv("LOCKSTEP_SIMD"))
        setenv("LOCKSTEP_SIMD", FUZZ_SIMD_PATH, 1);
    uv_loop_init(loop);
    struct ls_ctx *ctx;
    struct ls_errbuf e = { 0 };
    if (ls_ctx_new(&ctx, loop, LS_BACKEND_SIM, &e) < 0) {
        fprintf(stderr, "fuzz: no sim backend: %s\n", e.msg);
        abort();
    }
    return ctx;
}

void fuzz_on_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct fuzz_outcome *o = data;
    o->done = true;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
}

void fuzz_wait_done(uv_loop_t *loop, struct fuzz_outcome *o)
{
    while (!o->done)
        uv_run(loop, UV_RUN_ONCE);
    if (o->rc < 0 && !o->msg[0]) {
        fprintf(stderr, "fuzz: the operation failed (%d) with no reason\n", o->rc);
        abort();
    }
}
