/* backends/sim/devmodel.h - lockstep-simd's device-model supervisor.
 *
 * The daemon is the host, so it owns each HVM domain's QEMU as a host owns
 * libxl's device model: spawned here (headless, paused, QMP on a unix socket
 * in the domain's private directory, output to a log there), killed and
 * reaped when the domain goes, killed by the kernel when the daemon dies
 * (PR_SET_PDEATHSIG), and reaped when it dies on its own, which DM_INFO then
 * reports. Daemon code: single-threaded, blocking calls are short (a fork and
 * exec, a kill and waitpid of a SIGKILLed child).
 */
#ifndef LOCKSTEP_BACKENDS_SIM_DEVMODEL_H
#define LOCKSTEP_BACKENDS_SIM_DEVMODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backends/sim/proto.h"
#include "lockstep/errbuf.h"

struct sim_dm {
    pid_t pid;                      /* 0 = no QEMU was started */
    bool alive;                     /* not yet reaped */
    int wait_status;                /* once reaped */
    bool incoming;                  /* started on a restored device state */
    unsigned caps;                  /* SIMP_DM_CAP_*, from configuration only */
    char dir[SIMP_PATH_LEN];        /* <rundir>/domain-<domid>, mode 0700 */
    char qmp_path[SIMP_SUN_LEN];
    char log_path[SIMP_PATH_LEN];
    char qemu[SIMP_PATH_LEN];       /* the binary actually run */
};

/* Start QEMU for domain domid: qemu is the binary ("" = qemu-system-x86_64
 * from PATH); incoming_fd >= 0 is a device state QEMU loads at startup
 * (-incoming fd:3). Returns 0 once exec succeeded, or -errno with the reason
 * (binary not found or not executable, directory, fork, exec). dm must be
 * zeroed or killed before. */
int sim_dm_spawn(struct sim_dm *dm, const char *rundir, uint32_t domid, const char *qemu,
                 int incoming_fd, struct ls_errbuf *e);

/* A standby QEMU for domain domid: started now, headless and paused like the
 * others, with -incoming defer, so it waits for a device state that is not
 * there yet (QEMU 7.2 loads one state per process: recipe section 9). Its
 * files live in <rundir>/domain-<domid>.<gen> (gen > 0, new for each
 * standby), beside the QEMU it will replace. Returns once exec succeeded. */
int sim_dm_spawn_standby(struct sim_dm *dm, const char *rundir, uint32_t domid, unsigned gen,
                         const char *qemu, struct ls_errbuf *e);

/* The domain's block QEMU (disk.h): -machine none, the guest's disks as
 * drives, its QMP at <rundir>/domain-<domid>.blk/qmp.sock and the disk
 * writer's at dsk.sock there. Returns once its QMP monitor answers (within
 * timeout_ms), or -errno naming its end and log if it died. */
int sim_dm_spawn_block(struct sim_dm *dm, const char *rundir, uint32_t domid, const char *qemu,
                       const char *const *drives, unsigned timeout_ms, struct ls_errbuf *e);

/* Hand the standby sb the device state in state_fd (read from its start):
 * one blocking QMP exchange within timeout_ms: getfd (state_fd by
 * SCM_RIGHTS), migrate-incoming "fd:NAME", query-status until "paused".
 * QEMU 7.2 exits when it refuses a state: then sb is reaped here and e is
 * its end with the last lines of its log (QEMU's own reason). */
int sim_dm_load_standby(struct sim_dm *sb, int state_fd, unsigned timeout_ms,
                        struct ls_errbuf *e);

/* For a QEMU configured load-state-in-place only (7.2 aborts): stop if
 * running, add-fd (state_fd read-only), xen-load-devices-state
 * /dev/fdset/N, remove-fd. A QEMU that dies on it is reaped and named. */
int sim_dm_load_in_place(struct sim_dm *dm, int state_fd, unsigned timeout_ms,
                         struct ls_errbuf *e);

/* The standby becomes the domain's device model: the old one is SIGKILLed
 * (its files removed; the caller's SIGCHLD handling reaps it), its
 * configured caps carry over. */
void sim_dm_replace(struct sim_dm *dm, struct sim_dm *standby);

/* Kill (SIGKILL) and reap a live QEMU, then remove its socket, log and
 * directory. Safe on a dm that never started or already died. */
void sim_dm_kill(struct sim_dm *dm);

/* A child was reaped with this status: true if it was this dm's QEMU. */
bool sim_dm_reaped(struct sim_dm *dm, pid_t pid, int status);

void sim_dm_describe(const struct sim_dm *dm, struct simp_dm_info *out);

/* Let a QEMU that a save stopped run again: one short blocking QMP exchange
 * (greeting, qmp_capabilities, query-status, then cont only if the status is
 * "paused"; events skipped), within timeout_ms. For the daemon's guard, which
 * resumes a suspended guest whose lockstep was lost after its save had
 * stopped QEMU; the lost client's QMP connection is closed by the kernel, so
 * QEMU takes this one once it has read what that client sent. A QEMU that is
 * not paused is left as it is: "prelaunch" never ran (-S), "running" runs.
 * Returns 1 when cont was sent and accepted, 0 when QEMU was left as it was,
 * or -errno with e saying what failed or what QEMU answered. QEMU's status
 * before goes into status (len bytes). */
int sim_dm_cont_paused(const struct sim_dm *dm, unsigned timeout_ms, char *status, size_t len,
                       struct ls_errbuf *e);

/* A blocking QMP session of the daemon's own (the disk writer's): connect to
 * path, greeting and qmp_capabilities within timeout_ms. 0 or -errno with e;
 * *out is set either way (close it). */
struct qmp_peer;
int sim_qmp_open(const char *path, unsigned timeout_ms, struct qmp_peer **out,
                 struct ls_errbuf *e);
/* human-monitor-command line within timeout_ms; output other than "" or
 * "OK" is QEMU's refusal (-EIO, its words in e). */
int sim_qmp_hmp(struct qmp_peer *p, const char *line, unsigned timeout_ms, struct ls_errbuf *e);
/* cmd with args (a JSON object, or NULL) within timeout_ms; QEMU's error
 * answer is -EREMOTEIO or as peer errors are, its words in e. */
int sim_qmp_exec(struct qmp_peer *p, const char *cmd, const char *args, unsigned timeout_ms,
                 struct ls_errbuf *e);
void sim_qmp_close(struct qmp_peer *p);

/* "exited with status N" / "killed by signal N (NAME)", into buf. */
const char *sim_dm_status_text(int wait_status, char *buf, size_t len);

#endif
