/* test/fakes/backend_fake.h - a scripted backend keeping a fake hypervisor's state.
 *
 * Every backend call (and every step of the fake memory tasks) is a numbered
 * point, counted from 1 across the run; the test scripts each point to answer
 * success, failure (-EIO) or never (it hangs until its work is cancelled, or
 * times out when nothing else can move: test/fakes/exec_fake.h). The fake
 * keeps what a hypervisor would: which domains exist, their run state, how
 * often they were suspended and resumed, their guards, and which were
 * created by a restore, so a test can assert a role's invariants afterwards.
 * Calls run on exec_fake's workers, one at a time: no locking is needed.
 */
#ifndef LOCKSTEP_TEST_FAKES_BACKEND_FAKE_H
#define LOCKSTEP_TEST_FAKES_BACKEND_FAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"

/* The libxc layer of a stream, in stand-ins of 8 bytes each: a plain
 * stream's whole layer, or a checkpointed stream's CHECKPOINT and END
 * records, and a COLO secondary's CHECKPOINT_DIRTY_PFN_LIST on the back
 * channel (backends/backend.h: stream_type). */
#define FB_LIBXC_END  "\0\0\0\0\0\0\0\0"
#define FB_CHECKPOINT "fakeCKPT"
#define FB_DIRTY_PFNS "fakeDRTY"

/* FB_CLOSE, FB_GARBAGE: only for a scripted peer's points (qmp_peer_fake.h):
 * it dies half-way through its answer; it answers with bytes that are not
 * JSON. */
enum fb_answer { FB_OK = 0, FB_FAIL, FB_NEVER, FB_CLOSE, FB_GARBAGE };

struct qmp_peer;

#define FB_MAX_DOMS 8
#define FB_MAX_POINTS 256

struct fb_dom {
    uint32_t domid;
    bool exists;
    enum ls_guest_type type;
    enum ls_run_state state;
    enum ls_guard guard;
    bool created_by_restore;
    bool memory_restored;          /* restore_memory ran to its end into it */
    bool qemu;                     /* HVM: its device model is the scripted QEMU (fb->peer) */
    unsigned disks;                /* HVM: its disks lsdisk0..N-1, served by the scripted QEMU */
    unsigned suspends, resumes, unpauses;
    /* checkpointed streams: checkpoints applied whole into it (restore), and
     * whether it ran while it held none (a restored copy started early) */
    unsigned checkpoints;
    bool ran_empty;
};

struct fake_backend {
    struct ls_backend be;
    /* the script: point n (from 1) answers answer[n] */
    enum fb_answer answer[FB_MAX_POINTS + 1];
    /* what happened */
    unsigned npoints;
    const char *point_name[FB_MAX_POINTS + 1];
    bool point_peer[FB_MAX_POINTS + 1];      /* a peer's answer, not a backend call */
    char peer_names[FB_MAX_POINTS + 1][32];
    uint64_t point_seq[FB_MAX_POINTS + 1];   /* dispatches done when it was reached */
    unsigned point_step[FB_MAX_POINTS + 1];  /* exec_fake worker steps taken by then */
    struct fb_dom dom[FB_MAX_DOMS];
    unsigned ndom;
    uint32_t next_domid;
    /* every call of this name fails (a guest that cannot be resumed), beside
     * the numbered script */
    const char *refuse;
    /* the QEMU of the domains marked qemu (dm_info, dm_start_incoming) */
    struct qmp_peer *peer;
    /* net_attach: the guest's ends of the network sockets it gave (the
     * guest sends no frame), closed by fake_backend_close_net */
    int net_fd[4];
    unsigned nnet;
        /* the memory tasks' behaviour */
    unsigned precopy_rounds_asked; /* precopy_policy calls seen */
};

void fake_backend_init(struct fake_backend *fb);
/* Add a domain as if the toolstack had created it; returns its slot. */
struct fb_dom *fake_backend_add(struct fake_backend *fb, uint32_t domid,
                                enum ls_guest_type type, enum ls_run_state state);
struct fb_dom *fake_backend_dom(struct fake_backend *fb, uint32_t domid);
/* A scripted peer's answer as the next point (name copied): its script. */
enum fb_answer fake_backend_peer_point(struct fake_backend *fb, const char *name);
/* Close the guest's ends of the networks net_attach gave. */
void fake_backend_close_net(struct fake_backend *fb);
/* "name name ..." of the points reached, for trace tests. */
void fake_backend_points(const struct fake_backend *fb, char *buf, size_t len);

#endif
