/* test/fakes/qmp_peer_fake.h - a scripted QEMU on a unix socket, in-process.
 *
 * The QMP side of a domain's device model for roles run on the fakes: it
 * listens on a socket in a temp dir (the path the fake backend's dm_info
 * gives), and serves every connection from the test's thread, whenever
 * exec_fake's driver has nothing else to move (fake_exec_on_idle), so a
 * conversation runs deterministically in the same process.
 *
 * It keeps what a QEMU would: its run status (running, paused, inmigrate),
 * the fd add-fd passed it (SCM_RIGHTS), the device state it writes there on
 * xen-save-devices-state (a "QEVM" savevm image), and answers query-status,
 * stop, cont, add-fd, remove-fd and qmp_capabilities as QEMU 7.2 does, and
 * the block replication commands of states/colo_disk.def (keeping what they
 * did to its drives: struct qp_repl).
 *
 * Its answers are numbered points of the fake backend (backend_fake.h,
 * named "qmp.greeting", "qmp.stop", ...), so the enumerator scripts them as
 * it scripts backend calls: FB_OK answers, FB_FAIL answers with an error
 * (a greeting that fails is a connection closed before it), FB_NEVER hangs
 * QEMU (its connections stay open and silent, new ones get no greeting,
 * until the client gives up or its deadline passes), FB_CLOSE kills QEMU
 * half-way through the reply (every connection and the socket gone),
 * FB_GARBAGE answers with bytes that are not JSON.
 */
#ifndef LOCKSTEP_TEST_FAKES_QMP_PEER_FAKE_H
#define LOCKSTEP_TEST_FAKES_QMP_PEER_FAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "test/fakes/backend_fake.h"

#define QP_MAX_CONNS 4

struct qp_conn {
    int fd;                        /* -1: free */
    int held_fd;                   /* passed with the bytes, awaiting add-fd, or -1 */
    bool greeted;
    char in[8192];
    size_t inlen;
};

/* Block replication on its drives lsdisk0..ndisks-1 (states/colo_disk.def). */
struct qp_repl {
    unsigned ndisks;               /* set by the test: the guest's disks */
    bool broken;                   /* set by the test: the status says error true */
    int tops, clients, attached, exports;
    bool nbd_server, enabled, primary, failed_over;
    unsigned checkpoints;
};

struct qmp_peer {
    char path[64];
    int lfd;                       /* the process's listener, -1 once QEMU died */
    struct fake_backend *fb;       /* whose points the answers are */
    struct qp_conn conn[QP_MAX_CONNS];
    /* QEMU's state */
    char status[16];               /* "running", "paused", "inmigrate" */
    bool hung, dead;               /* scripted: it stopped answering; it died */
    unsigned inmigrate_queries;    /* status queries still answered "inmigrate" */
    int fdset_fd;                  /* the fd add-fd gave it, or -1 */
    unsigned conns, cmds;          /* connections accepted, commands answered */
    char cmd_log[512];             /* "stop add-fd ...": the commands seen */
    struct qp_repl repl;
};

/* The listening socket is one per process, kept from run to run (a run
 * costs no mkdir, bind or unlink on the file system): made here, before a
 * test counts its fds, and made again after a run whose QEMU died. */
int qmp_peer_prepare(void);
/* Serve on it with QEMU's status; returns 0 or -errno. */
int qmp_peer_open(struct qmp_peer *p, struct fake_backend *fb, const char *status);
/* Close every connection and fd (connections never accepted too). */
void qmp_peer_close(struct qmp_peer *p);
/* QEMU dies now: every connection and its socket gone (as FB_CLOSE does
 * half-way through an answer). */
void qmp_peer_kill(struct qmp_peer *p);
/* Serve: accept, read, answer. True if anything moved. For fake_exec_on_idle. */
bool qmp_peer_step(void *p);

#endif
