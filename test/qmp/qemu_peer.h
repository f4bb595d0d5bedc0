/* test/qmp/qemu_peer.h - start a headless QEMU as a QMP peer, and reap it.
 *
 * The QEMU runs in a private temp dir (socket and log there), is started with
 * -S (never runs a guest), dies with the test process (PR_SET_PDEATHSIG), and
 * qemu_peer_stop() kills and waitpid()s it and removes the dir. Used by the
 * QMP tests; no cmocka here.
 */
#ifndef LOCKSTEP_TEST_QEMU_PEER_H
#define LOCKSTEP_TEST_QEMU_PEER_H

#include <stdbool.h>
#include <sys/types.h>

struct qemu_peer {
    pid_t pid;            /* 0 when not running */
    char dir[64];         /* private temp dir */
    char sock[128];       /* dir/qmp.sock (unix QMP, unless tcp_port) */
    char sock2[128];      /* dir/qmp2.sock when two_monitors */
    char log[128];        /* dir/qemu.log: QEMU's stdout and stderr */
};

struct qemu_peer_opts {
    bool two_monitors;    /* a second unix QMP monitor at sock2 */
    int tcp_port;         /* > 0: the (first) monitor is tcp:127.0.0.1:port */
    const char *const *extra;   /* more arguments (NULL-terminated), e.g. -drive */
};

/* Returns 0 or -errno (nothing left running or on disk then). The sockets
 * appear a few ms later: connect with retry_connect. */
int qemu_peer_start(struct qemu_peer *p, const struct qemu_peer_opts *o);
/* SIGKILL + waitpid + remove the dir. Safe to call twice. Returns the wait
 * status, or -1 if nothing was running. */
int qemu_peer_stop(struct qemu_peer *p);
/* Reap after the test killed it itself (kill(p->pid, ...)), then clean up. */
int qemu_peer_wait(struct qemu_peer *p);

#endif
