/* test/sim/simtest.c - private sim daemons for tests (see simtest.h). */
#include "simtest.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

void simtest_env_init(struct simtest_env *t, unsigned idle_exit)
{
    if (!getenv("LOCKSTEP_SIMD"))
        fail_msg("LOCKSTEP_SIMD is not set (run the test through ctest)");
    snprintf(t->rundir, sizeof(t->rundir), "/tmp/ls-simtest-XXXXXX");
    assert_non_null(mkdtemp(t->rundir));
    assert_int_equal(setenv("LOCKSTEP_RUNDIR", t->rundir, 1), 0);
    if (idle_exit) {
        char v[16];
        snprintf(v, sizeof(v), "%u", idle_exit);
        setenv("LOCKSTEP_SIMD_IDLE_EXIT", v, 1);
    } else {
        unsetenv("LOCKSTEP_SIMD_IDLE_EXIT");
    }
}

int simtest_daemon_pid(const struct simtest_env *t)
{
    char path[256], buf[32] = "";
    snprintf(path, sizeof(path), "%s/simd.pid", t->rundir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *ok = fgets(buf, sizeof(buf), f);
    fclose(f);
    return ok ? atoi(buf) : -1;
}

bool simtest_alive(int pid)
{
    char path[64], buf[512];
    if (pid <= 0 || kill(pid, 0) < 0)
        return false;
    /* The daemon is reparented away from us; a zombie nobody reaps is gone. */
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

bool simtest_wait_gone(int pid, unsigned ms)
{
    for (unsigned i = 0; i < ms / 10; i++) {
        if (!simtest_alive(pid))
            return true;
        usleep(10000);
    }
    return !simtest_alive(pid);
}

bool simtest_file_exists(const struct simtest_env *t, const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", t->rundir, name);
    return stat(path, &st) == 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void simtest_env_fini(struct simtest_env *t)
{
    int pid = simtest_daemon_pid(t);
    if (pid > 0 && simtest_alive(pid)) {
        kill(pid, SIGTERM);
        if (!simtest_wait_gone(pid, 5000)) {
            kill(pid, SIGKILL);
            simtest_wait_gone(pid, 2000);
        }
    }
    /* The daemon's sanitizer reports land in its log: a test that left it
     * unclean must fail, not vanish with the directory. */
    char log[256];
    snprintf(log, sizeof(log), "%s/simd.log", t->rundir);
    FILE *lf = fopen(log, "r");
    bool dirty = false;
    if (lf) {
        char line[1024];
        while (fgets(line, sizeof(line), lf))
            if (strstr(line, "Sanitizer") || strstr(line, "runtime error:"))
                dirty = true;
        if (dirty) {
            rewind(lf);
            while (fgets(line, sizeof(line), lf))
                fputs(line, stderr);
        }
        fclose(lf);
    }
    /* Depth first: a daemon killed as a dying host leaves its domains'
     * device-model directories (domain-N/) behind, as a crashed host would. */
    nftw(t->rundir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("LOCKSTEP_SIMD_IDLE_EXIT");
    if (dirty)
        fail_msg("lockstep-simd reported sanitizer errors (log above)");
}

int simtest_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *de;
    /* cppcheck-suppress readdirCalled ; readdir_r is deprecated (glibc); one thread reads this stream */
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory's own fd */
}

int simtest_setup(void **state)
{
    struct simtest_env *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    simtest_env_init(t, 0);
    *state = t;
    return 0;
}

int simtest_teardown(void **state)
{
    simtest_env_fini(*state);
    free(*state);
    return 0;
}

struct ls_backend *simtest_open(void)
{
    struct ls_backend *be = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (ls_sim_open(&be, &e) < 0)
        fail_msg("ls_sim_open: %s", e.msg);
    return be;
}

int simtest_raw_connect(const struct simtest_env *t)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if ((size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%.*s/simd.sock",
                         (int)(sizeof(a.sun_path) - 10), t->rundir) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int recv_exact(int fd, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int simtest_raw_reply(int fd, struct simp_hdr *h, char *msg, size_t cap)
{
    if (recv_exact(fd, h, sizeof(*h)) < 0)
        return -1;
    size_t keep = h->len < cap - 1 ? h->len : cap - 1;
    if (recv_exact(fd, msg, keep) < 0)
        return -1;
    msg[keep] = '\0';
    char sink[256];
    for (size_t left = h->len - keep; left;) {
        size_t n = left < sizeof(sink) ? left : sizeof(sink);
        if (recv_exact(fd, sink, n) < 0)
            return -1;
        left -= n;
    }
    return 0;
}

bool simtest_conn_closed(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}
