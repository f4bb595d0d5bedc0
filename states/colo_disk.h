/* states/colo_disk.h - one step of COLO disk replication (see colo_disk.def). */
#ifndef LOCKSTEP_STATES_COLO_DISK_H
#define LOCKSTEP_STATES_COLO_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "fsm/fsm.h"
#include "lockstep/errbuf.h"

#define FSM_PREFIX COLO_DISK
#define FSM_DEF_FILE "states/colo_disk.def"
#include "fsm/gen_enums.h"

struct qmp_conn;

#define COLO_DISK_MAX 4

/* Where the secondary's NBD server listens: a unix socket on one host, TCP
 * between hosts. */
struct colo_disk_nbd {
    bool tcp;
    char path[108];                /* unix */
    char host[64];                 /* tcp: an address or name both sides resolve */
    int port;
};

/* What both sides of one guest agree on. */
struct colo_disk_cfg {
    unsigned ndisks;               /* the guest's disks lsdisk0..N-1 (1..COLO_DISK_MAX) */
    struct colo_disk_nbd nbd;
    char image_dir[200];           /* secondary: where its active and hidden images go */
    char qemu_img[128];            /* "" = qemu-img from PATH */
};

struct colo_disk_task {
    struct fsm m;
    struct colo_disk_cfg cfg;
    uint32_t domid;
    int job;                       /* the job colo_disk_run posted (0: posted by hand) */
    char qmp_path[112];
    char log_path[256];            /* QEMU's log, for errors that keep its own words */
    struct qmp_conn *qmp;          /* open from the first command to the teardown */
    bool closing, in_flight;
    const char *cmd;               /* the command in flight, for errors */
    unsigned cur;                  /* the disk the command in flight is for */
    unsigned next;                 /* the next disk a per-disk step takes */
    struct ls_errbuf qmp_err;      /* why the last command failed */
    uint64_t size[COLO_DISK_MAX];  /* SETUP_SECONDARY: each disk's virtual size */
    /* results */
    char broken[256];              /* QUERY ended BROKEN: QEMU's desc */
    char note[700];                /* a refusal the job went past (7.2's secondary stop) */
    uint64_t start_ns, end_ns;     /* the job's span (posted to DONE) */
};

/* Initialise in IDLE for the QEMU of domain domid listening on qmp_path;
 * then post one of SETUP_SECONDARY, SETUP_PRIMARY, CHECKPOINT, QUERY,
 * TEARDOWN_PRIMARY, TEARDOWN_SECONDARY, FAILOVER (join it, or give done, to
 * learn the end: DONE, BROKEN or FAILED). log_path may be NULL. */
void colo_disk_init(struct colo_disk_task *t, struct fsm_sched *sched, uint32_t domid,
                    const char *qmp_path, const char *log_path, const struct colo_disk_cfg *cfg,
                    fsm_done_fn *done);

/* Run job (one of the owner events above) on t as parent's child, joined
 * in j: parent gets ev_ok when it ends DONE, ev_fail when it ends FAILED or
 * BROKEN (the error says which, with QEMU's words; colo_disk_broken tells).
 * The job is posted before anything can fail, so its report always comes;
 * parent's teardown awaits it. j and t may be reused once j reported. */
int colo_disk_run(struct colo_disk_task *t, struct fsm *parent, struct fsm_join *j, int ev_ok,
                  int ev_fail, uint32_t domid, const char *qmp_path, const char *log_path,
                  const struct colo_disk_cfg *cfg, int job, const char *what);

/* "unix:PATH" or "tcp:HOST:PORT" into out; -EINVAL with the reason. */
int colo_disk_parse_nbd(const char *addr, struct colo_disk_nbd *out, struct ls_errbuf *err);

/* The names the sim gives a guest's disk n in its QEMU: the quorum drive
 * (the guest's disk, and the NBD export), the secondary's replication top
 * (the replica's view), the primary's NBD client node. */
void colo_disk_names(unsigned n, char drive[20], char top[24], char client[24]);

/* True when the job ended with replication broken (QUERY), after done. */
static inline bool colo_disk_broken(const struct colo_disk_task *t)
{
    return t->m.state == COLO_DISK_S_BROKEN;
}

#endif
