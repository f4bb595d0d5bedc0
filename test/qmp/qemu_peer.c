/* test/qmp/qemu_peer.c - a QEMU started by pid, reaped by pid. */
#include "test/qmp/qemu_peer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[512];
        /* cppcheck-suppress readdirCalled ; readdir_r is deprecated (glibc); one thread reads this stream */
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

int qemu_peer_start(struct qemu_peer *p, const struct qemu_peer_opts *o)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/lsqmp.XXXXXX");
    if (!mkdtemp(p->dir))
        return -errno;
    snprintf(p->sock, sizeof(p->sock), "%s/qmp.sock", p->dir);
    snprintf(p->sock2, sizeof(p->sock2), "%s/qmp2.sock", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/qemu.log", p->dir);

    char qmp1[200], qmp2[200];
    if (o && o->tcp_port > 0)
        snprintf(qmp1, sizeof(qmp1), "tcp:127.0.0.1:%d,server=on,wait=off", o->tcp_port);
    else
        snprintf(qmp1, sizeof(qmp1), "unix:%s,server=on,wait=off", p->sock);
    snprintf(qmp2, sizeof(qmp2), "unix:%s,server=on,wait=off", p->sock2);
    const char *argv[40];
    int n = 0;
    const char *fixed[] = { "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg",
                            "-nodefaults", "-no-user-config", "-display", "none", "-S",
                            "-qmp", qmp1 };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = fixed[i];
    if (o && o->two_monitors) {
        argv[n++] = "-qmp";
        argv[n++] = qmp2;
    }
    for (size_t i = 0; o && o->extra && o->extra[i] && n < 39; i++)
        argv[n++] = o->extra[i];
    argv[n] = NULL;

    int logfd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (logfd < 0) {
        int e = errno;
        remove_dir(p->dir);
        return -e;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(logfd);
        remove_dir(p->dir);
        return -e;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(logfd);
    p->pid = pid;
    return 0;
}

int qemu_peer_wait(struct qemu_peer *p)
{
    int status = -1;
    if (p->pid > 0) {
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
            ;
        p->pid = 0;
    }
    if (p->dir[0]) {
        remove_dir(p->dir);
        p->dir[0] = '\0';
    }
    return status;
}

int qemu_peer_stop(struct qemu_peer *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGCONT);   /* a test may have stopped it */
        kill(p->pid, SIGKILL);
    }
    return qemu_peer_wait(p);
}
