/* states/colo_proxy.h - a COLO/Remus role's network output (see colo_proxy.def). */
#ifndef LOCKSTEP_STATES_COLO_PROXY_H
#define LOCKSTEP_STATES_COLO_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "fsm/fsm.h"
#include "lockstep/colo.h"
#include "lockstep/errbuf.h"

#define FSM_PREFIX COLO_PROXY
#define FSM_DEF_FILE "states/colo_proxy.def"
#include "fsm/gen_enums.h"

struct qmp_conn;

/* A growing byte buffer: partial messages read, frames held. */
struct px_buf {
    uint8_t *p;
    size_t len, cap;
};

/* What the pump and the steps count; read by the owner at any time. */
struct colo_proxy_counters {
    _Atomic uint64_t compared;     /* primary: our guest's frames given to colo-compare */
    _Atomic uint64_t secondary;    /* primary: the secondary's frames given to it */
    _Atomic uint64_t released;     /* frames that went to the world */
    _Atomic uint64_t buffered;     /* Remus: frames held for a checkpoint; secondary: unacknowledged */
    _Atomic uint64_t divergences;  /* primary: DO_CHECKPOINT messages */
    _Atomic uint64_t stale;        /* primary: secondary frames of a checkpoint already past */
    _Atomic uint64_t direct;       /* secondary: frames it gave the world at its failover */
    atomic_bool divergence_pending; /* primary: a DO_CHECKPOINT asked the owner's checkpoint */
};

struct colo_proxy {
    struct fsm m;
    struct ls_backend *be;
    uint32_t domid;
    struct ls_colo_net_opts net;   /* copied strings below */
    char world[108], listen_at[160], peer[160], dir[108], qemu[160];
    unsigned timeout_ms;
    struct fsm *owner;             /* gets owner_done_ev after each step it asked */
    int owner_done_ev, owner_failed_over_ev;
    int trigger_fd;                /* primary: the owner's "checkpoint now" eventfd */
    int pause_fd;                  /* eventfd: the pump returns PUMP_PAUSED */
    int guest_fd, world_fd;
    /* COLO primary */
    int qemu_pid;
    char log_path[160], qmp_path[128];
    int pri_fd, sec_fd, out_fd, notify_fd, listen_fd, peer_fd;
    struct px_buf out_in, notify_in, peer_in, held_sec;
    struct px_buf order;           /* frames compared, in our guest's order, until released */
    struct px_buf pri_out, sec_out, notify_out, peer_out;   /* queued output (see .c) */
    bool draining;                 /* a step reads our guest dry, whatever is queued */
    uint32_t epoch;                /* checkpoints flushed (COLO_CHECKPOINT sent) */
    uint32_t triggered_epoch;      /* the last epoch a divergence asked a checkpoint in */
    struct qmp_conn *qmp;
    bool qmp_closing, in_flight;
    const char *cmd;
    struct ls_errbuf qmp_err;
    /* Remus primary */
    struct px_buf rbuf;
    size_t cut;
    /* secondary */
    struct px_buf kept;            /* frames sent since the last mark, not acknowledged */
    uint32_t s_epoch;
    struct colo_proxy_counters n;
    /* the data plane's wiring, set by the job's start row */
    int (*on_guest)(struct colo_proxy *p, const uint8_t *f, size_t n, int cancel_fd,
                    struct ls_errbuf *err);
    int (*on_peer)(struct colo_proxy *p, int cancel_fd, struct ls_errbuf *err);
};

/* Configure (net's strings are copied; NULL = none, START_OFF). Then, from
 * an owner's action, colo_proxy_begin: the machine joined in j (its end, or
 * its failure, is the owner's fail_ev; the owner's teardown awaits it) and
 * started with start_ev (one START_*). The owner gets owner_done_ev after the start and after
 * every step it posts (CHECKPOINT, CUT, RELEASE, EPOCH), and
 * owner_failed_over_ev after FAILOVER (-1 on a primary).
 * trigger_fd: the primary's checkpoint-now eventfd (-1 on the secondary). */
void colo_proxy_init(struct colo_proxy *p, struct ls_backend *be, uint32_t domid,
                     const struct ls_colo_net_opts *net, unsigned timeout_ms, struct fsm *owner,
                     int owner_done_ev, int owner_failed_over_ev, int trigger_fd);
int colo_proxy_begin(struct colo_proxy *p, struct fsm *owner, struct fsm_join *j, int fail_ev,
                     int start_ev);
/* The job a role's proxy starts with, for START_COLO..START_OFF. */
int colo_proxy_start_event(const struct ls_colo_net_opts *net, bool secondary,
                           enum ls_colo_mode mode);
void colo_proxy_stats(const struct colo_proxy *p, struct ls_colo_net_stats *st);

/* Tests: LOCKSTEP_PROXY_FAULT=STEP makes that step fail as if its peer had
 * (STEP: spawn, qmp, handshake, attach, world, listen, connect, notify); only
 * in builds with -DLOCKSTEP_FAULT_HOOKS=ON. */

#endif
