/* states/devmodel.h - a QMP job on a domain's QEMU (see devmodel.def). */
#ifndef LOCKSTEP_STATES_DEVMODEL_H
#define LOCKSTEP_STATES_DEVMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm/fsm.h"
#include "lockstep/domain.h"
#include "lockstep/errbuf.h"

#define FSM_PREFIX DEVMODEL
#define FSM_DEF_FILE "states/devmodel.def"
#include "fsm/gen_enums.h"

struct qmp_conn;
struct ls_backend;

/* A QMP connection a role keeps to its QEMU across jobs (a COLO primary runs
 * two a checkpoint, and a connection's set-up is a round trip of its own):
 * the first job that runs with it opens it, later ones reuse it, and the
 * owner's undo (dm_link_defer_close) closes it after them. A connection that
 * ended (QEMU died) is opened again by the next job, which then fails. */
struct dm_link {
    struct fsm *owner;
    struct qmp_conn *qmp;          /* the connection in use, or NULL */
    char path[112];                /* the QMP socket it is (or was last) to */
    unsigned live;                 /* connections not yet done (dropped ones end later) */
    bool retry_connect;            /* wait for a QEMU still starting (a standby) */
    bool closing;
    /* SAVE_LINKED: the state's memfd stays registered with QEMU (fdset
     * fdset_id, -1 before the first save on this connection): state_fd is
     * ours to read, state_wfd the write-only fd QEMU dups, whose offset is
     * rewound before each save. Closed with the connection. */
    int state_fd, state_wfd;
    long long fdset_id;
    bool saw_stop;                 /* a STOP event came since the last stop was sent */
};

struct dm_task {
    struct fsm m;
    uint32_t domid;
    int pid;                       /* QEMU's pid (the fault hook kills it) */
    char qmp_path[112];
    char log_path[256];            /* its log, for errors that keep its own reason */
    struct qmp_conn *qmp;          /* open from the first command to the teardown */
    struct dm_link *link;          /* or the owner's connection (dm_task_use_link) */
    bool undo_set;                 /* the teardown's undo is registered */
    bool closing;                  /* the teardown awaits the connection's end */
    bool in_flight;                /* a command awaits its reply */
    const char *cmd;               /* the command in flight, for errors */
    struct ls_errbuf qmp_err;      /* why the last command failed */
    int state_fd;                  /* SAVE: the memfd QEMU writes into; LOAD_LINKED: the
                                      state to send (the owner's, closed at the end); or -1 */
    long long fdset_id;
    unsigned status_queries;       /* CHECK: query-status sent so far */
    char status[32];               /* the last query-status answer */
    uint64_t last_reply_ns;        /* io_monotonic_ns() of the last reply (timings) */
    /* results */
    bool was_running;              /* SAVE: QEMU ran before the stop */
    uint8_t *state;                /* SAVE: the device state (malloc'd; the owner takes it) */
    size_t state_len;
};

/* Initialise in IDLE for the QEMU of domain domid listening on qmp_path;
 * then post DEVMODEL_E_SAVE, _CHECK or _CONT (join it to learn the end). */
void dm_task_init(struct dm_task *t, struct fsm_sched *sched, uint32_t domid, int pid,
                  const char *qmp_path);
/* Run one job (DEVMODEL_E_SAVE, _CHECK or _CONT) on the QEMU dm (its pid,
 * QMP socket and log) of domain domid as a child of parent, joined by j,
 * which posts ev_ok or ev_fail to parent; the join's undo is deferred on
 * parent (`what` names it). An undo an earlier job on j left (that join has
 * reported) is dropped first, so a role may run a job per checkpoint.
 * Returns 0 or fsm_defer's error (the child is then cancelled). */
int dm_task_run(struct dm_task *t, struct fsm *parent, struct fsm_join *j, int ev_ok,
                int ev_fail, uint32_t domid, const struct ls_dm_info *dm, int job,
                const char *what);
/* Run the job (started or posted, not yet dispatched) over l's connection. */
void dm_task_use_link(struct dm_task *t, struct dm_link *l);
/* Register, on owner, the undo that closes l's connection (and awaits its
 * end) and the state's fds; before the jobs' joins, so that it runs after
 * them. Call it once, before l's first job: it sets l up. */
int dm_link_defer_close(struct dm_link *l, struct fsm *owner);
/* Aim l at the QEMU whose QMP socket is path (a COLO secondary's standby,
 * while its guest runs): a connection to another QEMU is dropped (it ends on
 * its own), and one to this QEMU opened now, so that a job later finds it
 * set up. A connection that fails meanwhile is opened again by that job,
 * which then fails with QEMU's reason. Returns 0 or the open's error. */
int dm_link_point(struct dm_link *l, struct fsm_sched *sched, const char *name,
                  const char *path);
/* Drop l's connection (it ends on its own; a later job opens a new one). */
void dm_link_drop(struct dm_link *l);

/* Where its QEMU logs: a failure then ends with QEMU's last lines, read
 * before the teardown can remove the domain's directory with them. */
void dm_task_set_log(struct dm_task *t, const char *log_path);

/* Tests: LOCKSTEP_DM_FAULT_KILL=N makes the process's N-th QMP command to a
 * device model go to a QEMU that was SIGKILLed just before it is sent (its
 * peer dying at that step, as a crash would); =CMD:N its N-th CMD (cont:3). Only in builds with
 * -DLOCKSTEP_FAULT_HOOKS=ON: a release build never reads the variable. */

/* True when a device state is QEMU's (a savevm image: "QEVM", version 3),
 * not lockstep's stand-in. */
bool dm_state_is_qemu(const uint8_t *blob, size_t len);

/* A QEMU found dead at the end (dm, from the backend's dm_info): append
 * "; its QEMU (pid N) was killed by signal 9 (Killed)" to e; else nothing. */
void dm_append_fate(struct ls_errbuf *e, const struct ls_dm_info *dm);

/* The backend's dm_info for the end of a role, once settled: a QEMU that
 * has exited (a zombie, or gone) but is not yet reaped by whoever started it
 * is waited for, up to 3 s, so the fate the error tells is the one it
 * met, not "running". Blocking: for the threadpool. */
int dm_info_settled(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                    struct ls_errbuf *err);
/* The same through info (the backend's dm_info or dm_standby_info). */
typedef int dm_info_fn(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                       struct ls_errbuf *err);
int dm_settled(struct ls_backend *be, uint32_t domid, dm_info_fn *info, struct ls_dm_info *out,
               struct ls_errbuf *err);

/* A device state's digest for comparing the two sides of a checkpoint: 16
 * lowercase hex digits (FNV-1a 64 over its bytes) and a NUL. Not
 * cryptographic: it tells states apart, it does not authenticate them. */
void dm_state_digest(const uint8_t *blob, size_t len, char hex[17]);

#endif
