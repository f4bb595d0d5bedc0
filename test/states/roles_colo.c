/* test/states/roles_colo.c - a COLO (and Remus) primary and secondary against each other.
 *
 * Both roles run in one process on the fakes: one socketpair is the main
 * and the back channel (as xl's one connection), both domains live in the
 * one fake backend, and each side's blocking wait is the other's turn
 * (fake_exec_park_polls). The primary checkpoints (the second one on
 * demand or at the interval), then stops in order (ls_op_cancel, what
 * --checkpoints N does), or its host dies after a checkpoint: its guest is
 * gone and its end of the connection shut. A role that is done has its end
 * shut, as the CLI's exit closes it.
 *
 * Fencing is modelled as STONITH: the fencing command (a real /bin/sh)
 * leaves a marker, and a fenced primary's host is off: its guest does not
 * count as running. The invariants (colo_primary.def, colo_secondary.def):
 * never two running copies; never none unless an error says why; the
 * secondary's copy never runs before it holds a whole checkpoint; the
 * primary's guest runs, its guard released, after any end of replication
 * (unless its host died, or the error says it could not be resumed); each
 * outcome is what the fake shows; every failure has a reason.
 */
#include "test/states/roles.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "states/colo.h"

#define PRIMARY_DOMID 3

struct colo_pair {
    enum ls_colo_mode mode;
    enum ls_guest_type type;
    bool cancel_secondary;     /* the owner's cancels go to the secondary, else the primary */
    bool trigger;              /* checkpoint 2 on demand (ls_colo_checkpoint), else the interval */
    unsigned stop_after;       /* the primary stops in order after this checkpoint (0: never) */
    unsigned host_dies_after;  /* the primary's host dies after this checkpoint (0: never) */
    bool fence_refused;        /* the fencing command fails */
    bool manual_failover;      /* the secondary's owner asks a failover where the walk cancels */
    bool disks;                /* HVM, its disks replicated through the scripted QEMU */
    bool net;                  /* a network: Remus, the primary's buffer; COLO, the
                                  secondary's relay to a silent primary proxy */
};

/* The guest's disks: drives of the one scripted QEMU, which serves both
 * sides' disk jobs (it keeps counts, refuses nothing by state); qemu-img
 * is `true`, a real process the secondary's setup runs. */
#define PAIR_DISKS 1
static const struct ls_colo_disk_opts primary_disks = { .nbd = "unix:/tmp/lsenum-nbd.sock" };
static const struct ls_colo_disk_opts secondary_disks = {
    .nbd = "unix:/tmp/lsenum-nbd.sock", .ndisks = PAIR_DISKS,
    .files = { "/tmp/lsenum-disk0.qcow2" }, .formats = { 1 },
    .image_dir = "/tmp", .qemu_img = "true" };

/* The run in progress (one at a time; callbacks come on the test's thread). */
static const struct colo_pair *pair;
static struct ls_op *prim, *sec;
static bool host_died;
static char fence_marker[64], fence_ok[128];

static const char *fence_refused = "echo the power switch does not answer; exit 3";

static bool fenced(void) { return access(fence_marker, F_OK) == 0; }

static void pair_on_checkpoint(struct ls_op *op, const struct ls_colo_checkpoint *c, void *data)
{
    struct enum_env *e = data;
    if (pair->host_dies_after && c->number == pair->host_dies_after) {
        struct fb_dom *d = fake_backend_dom(&e->fb, PRIMARY_DOMID);
        if (d)
            d->exists = false;   /* the host and its guest are gone */
        host_died = true;
        shutdown(e->fd[0], SHUT_RDWR);
        return;
    }
    if (pair->stop_after && c->number == pair->stop_after)
        ls_op_cancel(op);
    else if (pair->trigger && c->number == 1)
        ls_colo_checkpoint(op);
}

static void done_of(struct enum_env *e, struct ls_op *op, int rc, const char *msg)
{
    if (op == e->op)
        enum_on_done(op, rc, msg, e);
    else
        enum_on_done2(op, rc, msg, e);
}

/* A role that is done: its end of the connection goes, as its process's exit would. */
static void primary_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct enum_env *e = data;
    done_of(e, op, rc, msg);
    shutdown(e->fd[0], SHUT_RDWR);
}

static void secondary_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct enum_env *e = data;
    done_of(e, op, rc, msg);
    shutdown(e->fd[1], SHUT_RDWR);
}

/* The secondary's owner asks for a failover (ls_colo_failover, SIGUSR1)
 * wherever the walk would cancel. */
static void failover_now(struct ls_op *op) { ls_colo_failover(op); }

/* The outside world (SOCK_SEQPACKET) and, for a COLO secondary, the
 * primary's proxy (a stream that accepts nothing and says nothing: its
 * comparator needs a real QEMU), listening in the run's fds. */
static char world_path[64], peer_path[64], peer_addr[80];

static int listen_at(const char *path, int type, struct ls_errbuf *err)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 8) < 0) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return ls_err(err, rc, "listening on %s: %s", path, strerror(-rc));
    }
    return fd;
}

static int pair_net(struct enum_env *e, const struct colo_pair *p,
                    struct ls_colo_net_opts *pnet, struct ls_colo_net_opts *snet,
                    struct ls_errbuf *err)
{
    if (!world_path[0]) {
        snprintf(world_path, sizeof(world_path), "/tmp/lsenum-world.%d", (int)getpid());
        snprintf(peer_path, sizeof(peer_path), "/tmp/lsenum-peer.%d", (int)getpid());
        snprintf(peer_addr, sizeof(peer_addr), "unix:%s", peer_path);
    }
    if ((e->fd[2] = listen_at(world_path, SOCK_SEQPACKET, err)) < 0)
        return e->fd[2];
    if (p->mode == LS_COLO_MODE_REMUS) {
        *pnet = (struct ls_colo_net_opts){ .world = world_path };
        return 0;
    }
    if ((e->fd[3] = listen_at(peer_path, SOCK_STREAM, err)) < 0)
        return e->fd[3];
    *snet = (struct ls_colo_net_opts){ .world = world_path, .peer = peer_addr };
    return 0;
}

static int pair_start(struct enum_env *e, const void *arg, struct ls_errbuf *err)
{
    const struct colo_pair *p = arg;
    pair = p;
    if (p->manual_failover)
        e->owner_act = failover_now;
    host_died = false;
    e->peers = true;
    prim = sec = NULL;
    signal(SIGPIPE, SIG_IGN);   /* a write to a peer that is gone is an EPIPE, as in the CLI */
    if (!fence_marker[0]) {
        snprintf(fence_marker, sizeof(fence_marker), "/tmp/lockstep-enum-fenced.%d", (int)getpid());
        snprintf(fence_ok, sizeof(fence_ok), ": > %s", fence_marker);
    }
    unlink(fence_marker);
    struct fb_dom *pd = fake_backend_add(&e->fb, PRIMARY_DOMID, p->type, LS_RUN_RUNNING);
    if (p->disks) {
        int rc = enum_use_qemu(e, "running", err);
        if (rc < 0)
            return rc;
        e->qemu.repl.ndisks = PAIR_DISKS;
        e->peer_points_once = true;
        e->one_order = true;
        pd->disks = PAIR_DISKS;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return ls_err(err, -errno, "socketpair: %s", strerror(errno));
    e->fd[0] = sv[0];
    e->fd[1] = sv[1];
    struct ls_colo_secondary_opts so = {
        .recv_fd = sv[1], .send_fd = sv[1], .mode = p->mode,
        .fence_cmd = p->fence_refused ? fence_refused : fence_ok,
    };
    struct ls_colo_primary_opts po = {
        .domid = PRIMARY_DOMID, .send_fd = sv[0], .recv_fd = sv[0], .mode = p->mode,
        /* passes when nothing else moves (virtual time), not by the wall clock
         * of a loaded machine (that would change the run's order), and before
         * the secondary's 10 s deadline */
        .interval_ms = 5000, .on_checkpoint = pair_on_checkpoint, .cb_data = e,
    };
    struct ls_colo_net_opts pnet = { 0 }, snet = { 0 };
    int rc = p->net ? pair_net(e, p, &pnet, &snet, err) : 0;
    if (rc < 0)
        return rc;
    rc = colo_secondary_role_start(&e->ctx, &so, snet.world ? &snet : NULL,
                                   p->disks ? &secondary_disks : NULL, secondary_done, e, &sec,
                                   err);
    if (rc < 0)
        return rc;
    rc = colo_primary_role_start(&e->ctx, &po, pnet.world ? &pnet : NULL,
                                 p->disks ? &primary_disks : NULL, primary_done, e, &prim, err);
    e->op = p->cancel_secondary ? sec : prim;
    e->op2 = p->cancel_secondary ? prim : sec;
    return rc;
}

/* With disks: replication never outlives the primary's role (its QEMU
 * would write on to a replica no one applies), and a secondary that took
 * over after its disks' setup runs on disks that are its own (failed over
 * in QEMU), or says why. */
static void disks_check(struct enum_env *e, enum ls_colo_role prole, enum ls_colo_role srole,
                        const char *smsg)
{
    struct ls_colo_disk_stats pst, sst;
    if (ls_colo_disk_stats(prim, &pst) < 0 || ls_colo_disk_stats(sec, &sst) < 0) {
        enum_problem(e, "no disk statistics from the roles");
        return;
    }
    if (pst.state == LS_COLO_DISK_REPLICATING)
        enum_problem(e, "the primary ended (%s) with its disks still replicating",
                     ls_colo_role_name(prole));
    /* its setup added the replication tops (before it, the replica's files
     * are its disks as they were: nothing to fail over) */
    if (srole == LS_COLO_ACTIVE && e->qemu.repl.tops > 0 &&
        sst.state != LS_COLO_DISK_FAILED_OVER && !sst.note[0] && !strstr(smsg, "disk"))
        enum_problem(e, "the secondary took over with its disks %s, and nothing says why",
                     ls_colo_disk_state_name(sst.state));
    if (sst.state == LS_COLO_DISK_FAILED_OVER &&
        (!e->qemu.repl.failed_over || e->qemu.repl.nbd_server))
        enum_problem(e, "the secondary's disks failed over, but QEMU has failover %d, NBD "
                     "server %d", e->qemu.repl.failed_over, e->qemu.repl.nbd_server);
}

static void pair_check(struct enum_env *e)
{
    int prc = prim == e->op ? e->done_rc : e->done_rc2;
    int src = sec == e->op ? e->done_rc : e->done_rc2;
    const char *pmsg = prim == e->op ? e->done_msg : e->done_msg2;
    const char *smsg = sec == e->op ? e->done_msg : e->done_msg2;
    enum ls_colo_role prole = ls_op_colo_role(prim), srole = ls_op_colo_role(sec);
    bool is_fenced = fenced();
    struct fb_dom *pd = fake_backend_dom(&e->fb, PRIMARY_DOMID);

    if (prc != 0 && !pmsg[0])
        enum_problem(e, "the primary failed without a reason");
    if (src != 0 && !smsg[0])
        enum_problem(e, "the secondary failed without a reason");
    /* The primary's guest runs after any end (its host alive, fenced or not). */
    if (pd && pd->state != LS_RUN_RUNNING && !strstr(pmsg, "could not be resumed"))
        enum_problem(e, "replication ended and the primary's guest is %s (the error does not "
                     "say so)", ls_run_state_name(pd->state));
    if (pd && pd->state == LS_RUN_RUNNING && pd->guard != LS_GUARD_NONE)
        enum_problem(e, "the primary's guest runs with its guard still armed");
    if (prole == LS_COLO_STOPPED && (prc != 0 || !pd || pd->state != LS_RUN_RUNNING))
        enum_problem(e, "the primary says it stopped in order (rc %d), but its guest is %s", prc,
                     pd ? ls_run_state_name(pd->state) : "gone");
    if (prole == LS_COLO_UNPROTECTED && pd && pd->state != LS_RUN_RUNNING)
        enum_problem(e, "the primary says its guest runs unprotected, but it is %s",
                     ls_run_state_name(pd->state));

    unsigned copies = 0, running = 0;
    struct fb_dom *sd = NULL;
    for (unsigned i = 0; i < e->fb.ndom; i++) {
        struct fb_dom *d = &e->fb.dom[i];
        if (!d->created_by_restore)
            continue;
        if (d->ran_empty)
            enum_problem(e, "the secondary's copy ran before it held a whole checkpoint");
        if (!d->exists)
            continue;
        copies++;
        sd = d;
        running += d->state == LS_RUN_RUNNING;
    }
    /* a copy it could not destroy, or a takeover that failed after the fence
     * (its copy keeps its guard: our exit ends it), is said in the error */
    bool undestroyed = strstr(smsg, "could not be destroyed") != NULL ||
                       (is_fenced && src != 0 && srole != LS_COLO_FENCE_FAILED);
    if (copies > 1)
        enum_problem(e, "the secondary left %u copies", copies);
    if (srole == LS_COLO_ACTIVE) {
        if (!sd || sd->state != LS_RUN_RUNNING || sd->guard != LS_GUARD_NONE || !sd->checkpoints)
            enum_problem(e, "the secondary says it took over, but its copy is %s (guard %d, %u "
                         "checkpoints)", sd ? ls_run_state_name(sd->state) : "gone",
                         sd ? (int)sd->guard : -1, sd ? sd->checkpoints : 0);
        if (!is_fenced)
            enum_problem(e, "the secondary took over without fencing the primary");
    } else if (srole == LS_COLO_FENCE_FAILED) {
        /* its release (or the pause before it) failed, and the error names the call */
        bool guard_said = strstr(smsg, "; then ") != NULL;
        if (!sd || sd->state == LS_RUN_RUNNING || (sd->guard != LS_GUARD_NONE && !guard_said) ||
            src == 0)
            enum_problem(e, "fencing failed, and the secondary's copy is %s (guard %d, rc %d)",
                         sd ? ls_run_state_name(sd->state) : "gone", sd ? (int)sd->guard : -1,
                         src);
    } else if (copies && !undestroyed) {
        enum_problem(e, "the secondary ended (%s) and left its copy %s", smsg,
                     ls_run_state_name(sd->state));
    }
    if (srole == LS_COLO_STOPPED && src != 0)
        enum_problem(e, "the secondary says it stopped in order, and failed: %s", smsg);

    /* Split brain: a fenced primary's host is off. */
    bool prim_runs = pd && pd->state == LS_RUN_RUNNING && !is_fenced;
    /* a copy the secondary could not destroy keeps its guard: our exit ends it */
    bool doomed = undestroyed && sd && sd->guard == LS_GUARD_DESTROY;
    if (prim_runs && running && !doomed)
        enum_problem(e, "two running copies: the primary's guest and the secondary's copy (%s)",
                     ls_run_state_name(sd->state));
    if (pair->disks)
        disks_check(e, prole, srole, smsg);
    if (!prim_runs && !running) {
        bool told = (pd && !is_fenced && strstr(pmsg, "could not be resumed")) ||
                    ((is_fenced || !pd) && src != 0);
        if (!told)
            enum_problem(e, "no copy runs, and no error says why (primary rc %d, secondary rc "
                         "%d%s%s)", prc, src, is_fenced ? ", fenced" : "",
                         host_died ? ", its host died" : "");
    }
}

static const struct colo_pair colo_pv = { .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_PV,
                                          .trigger = true, .stop_after = 2 };
static const struct colo_pair colo_pv_sec = { .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_PV,
                                              .cancel_secondary = true, .stop_after = 2 };
static const struct colo_pair colo_pv_failover = {
    .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_PV, .cancel_secondary = true, .stop_after = 2,
    .manual_failover = true };
static const struct colo_pair remus_hvm = { .mode = LS_COLO_MODE_REMUS, .type = LS_GUEST_HVM,
                                            .stop_after = 2 };
static const struct colo_pair remus_pv_sec = { .mode = LS_COLO_MODE_REMUS, .type = LS_GUEST_PV,
                                               .cancel_secondary = true, .trigger = true,
                                               .stop_after = 2 };
static const struct colo_pair colo_host_dies = { .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_PV,
                                                 .cancel_secondary = true, .host_dies_after = 1 };
static const struct colo_pair colo_fence_refused = {
    .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_PV, .cancel_secondary = true,
    .host_dies_after = 1, .fence_refused = true };

/* HVM with a disk replicated: the disk jobs (colo_disk.def) in flight at
 * every point the walk fails, cancels or fails over. A run costs about 8 ms
 * of CPU (qemu-img processes, QMP on the loop): 1 in 128 second failures,
 * and those that would take a row no run took yet. */
static const struct colo_pair colo_disks = { .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_HVM,
                                             .trigger = true, .stop_after = 2, .disks = true };
static const struct colo_pair colo_disks_sec = {
    .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_HVM, .cancel_secondary = true, .stop_after = 2,
    .disks = true };
static const struct colo_pair colo_disks_failover = {
    .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_HVM, .cancel_secondary = true, .stop_after = 2,
    .manual_failover = true, .disks = true };
static const struct colo_pair colo_disks_host_dies = {
    .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_HVM, .cancel_secondary = true,
    .host_dies_after = 1, .disks = true };

const struct enum_scenario enum_colo_disks = { "colo/hvm-disks", pair_start, pair_check, 128,
                                               &colo_disks };
const struct enum_scenario enum_colo_disks_sec = { "colo/hvm-disks-secondary-cancelled",
                                                   pair_start, pair_check, 128, &colo_disks_sec };
const struct enum_scenario enum_colo_disks_failover = {
    "colo/hvm-disks-manual-failover", pair_start, pair_check, 128, &colo_disks_failover };
const struct enum_scenario enum_colo_disks_host_dies = {
    "colo/hvm-disks-primary-host-dies", pair_start, pair_check, 128, &colo_disks_host_dies };

/* A network whose proxy steps run as work: Remus, the primary's buffer
 * cut and released at each checkpoint; COLO, the secondary's relay marking
 * each checkpoint and giving the world its frames at a failover. */
static const struct colo_pair remus_net = { .mode = LS_COLO_MODE_REMUS, .type = LS_GUEST_PV,
                                            .trigger = true, .stop_after = 2, .net = true };
static const struct colo_pair colo_net_failover = {
    .mode = LS_COLO_MODE_COLO, .type = LS_GUEST_PV, .cancel_secondary = true, .stop_after = 2,
    .manual_failover = true, .net = true };
const struct enum_scenario enum_remus_net = { "remus/pv-net", pair_start, pair_check, 32,
                                              &remus_net };
const struct enum_scenario enum_colo_net_failover = {
    "colo/pv-net-manual-failover", pair_start, pair_check, 64, &colo_net_failover };

const struct enum_scenario enum_colo_pv = { "colo/pv", pair_start, pair_check, 32, &colo_pv };
const struct enum_scenario enum_colo_pv_sec = { "colo/pv-secondary-cancelled", pair_start,
                                                pair_check, 32, &colo_pv_sec };
const struct enum_scenario enum_colo_pv_failover = { "colo/pv-manual-failover", pair_start,
                                                     pair_check, 32, &colo_pv_failover };
const struct enum_scenario enum_remus_hvm = { "remus/hvm", pair_start, pair_check, 32,
                                              &remus_hvm };
const struct enum_scenario enum_remus_pv_sec = { "remus/pv-secondary-cancelled", pair_start,
                                                 pair_check, 32, &remus_pv_sec };
const struct enum_scenario enum_colo_host_dies = { "colo/primary-host-dies", pair_start,
                                                   pair_check, 32, &colo_host_dies };
const struct enum_scenario enum_colo_fence_refused = { "colo/fence-refused", pair_start,
                                                       pair_check, 32, &colo_fence_refused };

const struct enum_scenario *const enum_roles_colo[] = {
    &enum_colo_pv, &enum_colo_pv_sec, &enum_colo_pv_failover, &enum_remus_hvm,
    &enum_remus_pv_sec, &enum_colo_host_dies, &enum_colo_fence_refused, &enum_colo_disks,
    &enum_colo_disks_sec, &enum_colo_disks_failover, &enum_colo_disks_host_dies,
    &enum_colo_net_failover, &enum_remus_net, NULL,
};

const char *const enum_machines_colo[] = { "colo_primary", "colo_secondary", NULL };

#define COLO_DISK "a FAIL or a late event inside a disk job: the colo/hvm-disks pairs fail, cancel and fail over there, but no action of the role's runs (and can fail) while its job is in flight; roles_colo_disk.c and test/colo/disk.py take the jobs"
#define COLO_QEMU "a real QEMU as device model: the pairs run PV, and HVM with the stand-in (no scripted QEMU for the secondary's load per checkpoint yet); test/colo's HVM runs take it"
#define COLO_PROXY "the network proxy's step in flight: only colo/pv-net-manual-failover walks with a network (a COLO primary's comparator is a real QEMU); test/colo's network runs take it"
#define COLO_TASKS "the memory task waits in one of our callbacks here and the writer is idle: the tasks end only if one breaks its contract, which no fake does"
#define COLO_RACE "a late completion or a second fault the sampling of second failures leaves out (each row predicted new is walked), or a race the fakes' order does not produce"

const struct enum_deferred enum_deferred_colo[] = {
    { "colo_primary AWAIT_BANNER PROXY_FAILED", COLO_PROXY },
    { "colo_primary MIGRATING PROXY_FAILED", COLO_PROXY },
    { "colo_primary SUSPENDING_ALONE PROXY_FAILED", COLO_PROXY },
    { "colo_primary SAVING_DM_ALONE PROXY_FAILED", COLO_PROXY },
    { "colo_primary SUSPENDING PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_SUSPENDING PROXY_FAILED", COLO_PROXY },
    { "colo_primary RESUMING PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_RESUMING PROXY_FAILED", COLO_PROXY },
    { "colo_primary SAVING_DM PROXY_FAILED", COLO_PROXY },
    { "colo_primary SAVING_DM_SVM_READ PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_SAVING_DM PROXY_FAILED", COLO_PROXY },
    { "colo_primary CONTINUING_DM PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_CONTINUING_DM PROXY_FAILED", COLO_PROXY },
    { "colo_primary DISK_CHECKPOINTING PROXY_FAILED", COLO_PROXY },
    { "colo_primary DISK_QUERYING PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_SVM_SUSPENDED PROXY_FAILED", COLO_PROXY },
    { "colo_primary SENDING PROXY_FAILED", COLO_PROXY },
    { "colo_primary WRITING_CHECKPOINT PROXY_FAILED", COLO_PROXY },
    { "colo_primary SENT PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_SVM_READY PROXY_FAILED", COLO_PROXY },
    { "colo_primary PROXY_RELEASING PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_SVM_RESUMED PROXY_FAILED", COLO_PROXY },
    { "colo_primary PROTECTED PROXY_FAILED", COLO_PROXY },
    { "colo_primary WAITING PROXY_FAILED", COLO_PROXY },
    { "colo_primary WRITING_NEW PROXY_FAILED", COLO_PROXY },
    { "colo_primary RUNNING PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_RESUMED PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_WRITING PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_WAITING PROXY_FAILED", COLO_PROXY },
    { "colo_primary REMUS_RUNNING PROXY_FAILED", COLO_PROXY },
    { "colo_primary PROXY_CUTTING PROXY_FAILED", COLO_PROXY },
    { "colo_primary WRITING_STOP PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_SUSPEND PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_SUSPEND_UNPROTECTED PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_DM PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_DM_UNPROTECTED PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_DISK_UNPROTECTED PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_TASKS_UNPROTECTED PROXY_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_TASKS_STOPPED PROXY_FAILED", COLO_PROXY },
    { "colo_primary RESUMING_THEN_SETTLE PROXY_FAILED", COLO_PROXY },
    { "colo_primary DISK_DROPPING PROXY_FAILED", COLO_PROXY },
    { "colo_primary DISK_TEARING_DOWN_STOPPED PROXY_FAILED", COLO_PROXY },
    { "colo_primary SETTLING_DM PROXY_FAILED", COLO_PROXY },
    { "colo_primary SETTLING_UNPROTECTED PROXY_FAILED", COLO_PROXY },
    { "colo_primary SETTLING_DM_UNPROTECTED PROXY_FAILED", COLO_PROXY },
    { "colo_primary SETTLING_STOPPED PROXY_FAILED", COLO_PROXY },
    { "colo_primary DISK_CHECKPOINTING FAIL", COLO_DISK },
    { "colo_primary DISK_CHECKPOINTING TASKS_FAILED", COLO_DISK },
    { "colo_primary DISK_QUERYING FAIL", COLO_DISK },
    { "colo_primary DISK_QUERYING TASKS_FAILED", COLO_DISK },
    { "colo_primary AWAIT_DISK_UNPROTECTED DISK_DONE", COLO_DISK },
    { "colo_primary AWAIT_DISK_UNPROTECTED DISK_FAILED", COLO_DISK },
    { "colo_primary AWAIT_DISK_UNPROTECTED FAIL", COLO_DISK },
    { "colo_primary AWAIT_DISK_UNPROTECTED CANCEL", COLO_DISK },
    { "colo_primary AWAIT_DISK_UNPROTECTED TASKS_FAILED", COLO_DISK },
    { "colo_primary DISK_DROPPING PROXY_DONE", COLO_DISK },
    { "colo_primary DISK_DROPPING GUEST_RESUMED", COLO_DISK },
    { "colo_primary DISK_DROPPING GUEST_RESUMED_QEMU", COLO_DISK },
    { "colo_primary DISK_DROPPING STOP_REQUESTED", COLO_DISK },
    { "colo_primary DISK_DROPPING INTERVAL", COLO_DISK },
    { "colo_primary DISK_TEARING_DOWN_STOPPED FAIL", COLO_DISK },
    { "colo_secondary DISK_CHECKPOINTING FAIL", COLO_DISK },
    { "colo_secondary DISK_CHECKPOINTING TASKS_FAILED", COLO_DISK },
    { "colo_secondary DISK_QUERYING FAIL", COLO_DISK },
    { "colo_secondary DISK_QUERYING TASKS_FAILED", COLO_DISK },
    { "colo_secondary AWAIT_DISK_THEN_FAILOVER CANCEL", COLO_DISK },
    { "colo_secondary AWAIT_DISK_THEN_FAILOVER FAIL", COLO_DISK },
    { "colo_secondary AWAIT_DISK_THEN_FAILOVER TASKS_FAILED", COLO_DISK },
    { "colo_secondary AWAIT_DISK_THEN_DESTROY FAILOVER", COLO_DISK },
    { "colo_secondary AWAIT_DISK_THEN_DESTROY FAIL", COLO_DISK },
    { "colo_secondary AWAIT_DISK_THEN_DESTROY TASKS_FAILED", COLO_DISK },
    { "colo_secondary DISK_FAILING_OVER FAIL", COLO_DISK },
    { "colo_secondary DISK_FAILING_OVER PROXY_DONE", COLO_DISK },
    { "colo_primary SUSPENDING_ALONE GUEST_SUSPENDED_QEMU", COLO_QEMU },
    { "colo_primary SAVING_DM_ALONE DM_DONE", COLO_QEMU },
    { "colo_primary RESUMING GUEST_RESUMED_QEMU", COLO_QEMU },
    { "colo_primary CONTINUING_DM DM_DONE", COLO_QEMU },
    { "colo_primary SUSPENDING GUEST_SUSPENDED_QEMU", COLO_QEMU },
    { "colo_primary SAVING_DM DM_DONE", COLO_QEMU },
    { "colo_primary REMUS_RESUMING GUEST_RESUMED_QEMU", COLO_QEMU },
    { "colo_primary REMUS_CONTINUING_DM DM_DONE", COLO_QEMU },
    { "colo_primary REMUS_SUSPENDING GUEST_SUSPENDED_QEMU", COLO_QEMU },
    { "colo_primary REMUS_SAVING_DM DM_DONE", COLO_QEMU },
    { "colo_primary SAVING_DM CANCEL", COLO_QEMU },
    { "colo_primary CONTINUING_DM CANCEL", COLO_QEMU },
    { "colo_primary REMUS_SAVING_DM CANCEL", COLO_QEMU },
    { "colo_primary REMUS_CONTINUING_DM CANCEL", COLO_QEMU },
    { "colo_primary AWAIT_SUSPEND GUEST_SUSPENDED_QEMU", COLO_QEMU },
    { "colo_primary SAVING_DM_ALONE DM_FAILED", COLO_QEMU },
    { "colo_primary SAVING_DM_ALONE FAIL", COLO_QEMU },
    { "colo_primary SAVING_DM_ALONE CANCEL", COLO_QEMU },
    { "colo_primary AWAIT_DM DM_DONE", COLO_QEMU },
    { "colo_primary AWAIT_DM DM_FAILED", COLO_QEMU },
    { "colo_primary SETTLING SETTLED_QEMU", COLO_QEMU },
    { "colo_primary SETTLING_DM DM_DONE", COLO_QEMU },
    { "colo_primary SETTLING_DM DM_FAILED", COLO_QEMU },
    { "colo_primary AWAIT_SUSPEND_UNPROTECTED GUEST_SUSPENDED_QEMU", COLO_QEMU },
    { "colo_primary SAVING_DM DM_FAILED", COLO_QEMU },
    { "colo_primary SAVING_DM FAIL", COLO_QEMU },
    { "colo_primary REMUS_SAVING_DM DM_FAILED", COLO_QEMU },
    { "colo_primary REMUS_SAVING_DM FAIL", COLO_QEMU },
    { "colo_primary CONTINUING_DM DM_FAILED", COLO_QEMU },
    { "colo_primary CONTINUING_DM FAIL", COLO_QEMU },
    { "colo_primary REMUS_CONTINUING_DM DM_FAILED", COLO_QEMU },
    { "colo_primary REMUS_CONTINUING_DM FAIL", COLO_QEMU },
    { "colo_primary AWAIT_DM_UNPROTECTED DM_DONE", COLO_QEMU },
    { "colo_primary AWAIT_DM_UNPROTECTED DM_FAILED", COLO_QEMU },
    { "colo_primary SETTLING_UNPROTECTED SETTLED_QEMU", COLO_QEMU },
    { "colo_primary SETTLING_DM_UNPROTECTED DM_DONE", COLO_QEMU },
    { "colo_primary SETTLING_DM_UNPROTECTED DM_FAILED", COLO_QEMU },
    { "colo_primary RESUMING_THEN_SETTLE GUEST_RESUMED_QEMU", COLO_QEMU },
    { "colo_primary SETTLING_UNPROTECTED GUEST_RESUMED_QEMU", COLO_QEMU },
    { "colo_primary AWAIT_DM CANCEL", COLO_QEMU },
    { "colo_primary AWAIT_DM_UNPROTECTED CANCEL", COLO_QEMU },
    { "colo_primary SETTLING_DM CANCEL", COLO_QEMU },
    { "colo_primary SETTLING_DM_UNPROTECTED CANCEL", COLO_QEMU },
    { "colo_primary AWAIT_DM FAIL", COLO_QEMU },
    { "colo_primary AWAIT_DM_UNPROTECTED FAIL", COLO_QEMU },
    { "colo_secondary STARTING_GUEST GUEST_STARTED_QEMU", COLO_QEMU },
    { "colo_secondary CONTINUING_DM DM_DONE", COLO_QEMU },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER GUEST_STARTED_QEMU", COLO_QEMU },
    { "colo_secondary TAKING_OVER TOOK_OVER_QEMU", COLO_QEMU },
    { "colo_secondary CONTINUING_TAKEOVER DM_DONE", COLO_QEMU },
    { "colo_secondary CONTINUING_TAKEOVER DM_FAILED", COLO_QEMU },
    { "colo_secondary CONTINUING_DM DM_FAILED", COLO_QEMU },
    { "colo_secondary CONTINUING_DM FAILOVER", COLO_QEMU },
    { "colo_secondary CONTINUING_DM CANCEL", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_FAILOVER DM_DONE", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_FAILOVER DM_FAILED", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_DESTROY DM_DONE", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_DESTROY DM_FAILED", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_FAILOVER FAILOVER", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_FAILOVER CANCEL", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_FAILOVER FAIL", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_DESTROY FAILOVER", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_DESTROY CANCEL", COLO_QEMU },
    { "colo_secondary AWAIT_DM_THEN_DESTROY FAIL", COLO_QEMU },
    { "colo_secondary CONTINUING_TAKEOVER FAILOVER", COLO_QEMU },
    { "colo_secondary CONTINUING_TAKEOVER CANCEL", COLO_QEMU },
    { "colo_secondary AWAIT_TASKS_THEN_DESTROY GUEST_STARTED_QEMU", COLO_QEMU },
    { "colo_secondary DESTROYING GUEST_STARTED_QEMU", COLO_QEMU },
    { "colo_secondary LOADING_DM STANDBY_READY", COLO_QEMU },
    { "colo_secondary LOADING_DM_QMP DM_DONE", COLO_QEMU },
    { "colo_secondary LOADING_DM_QMP DM_FAILED", COLO_QEMU },
    { "colo_secondary LOADING_DM_QMP FAILOVER", COLO_QEMU },
    { "colo_secondary LOADING_DM_QMP TASKS_FAILED", COLO_QEMU },
    { "colo_secondary LOADING_DM_QMP CANCEL", COLO_QEMU },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER STANDBY_READY", COLO_QEMU },
    { "colo_secondary AWAIT_TASKS_THEN_DESTROY STANDBY_READY", COLO_QEMU },
    { "colo_secondary DESTROYING STANDBY_READY", COLO_QEMU },
    { "colo_secondary AWAIT_TASKS_FAILOVER STANDBY_READY", COLO_QEMU },
    { "colo_secondary PAUSING STANDBY_READY", COLO_QEMU },
    { "colo_secondary FENCING STANDBY_READY", COLO_QEMU },
    { "colo_primary SAVING_DM SVM_SUSPENDED", COLO_QEMU },
    { "colo_primary SAVING_DM_SVM_READ DM_DONE", COLO_QEMU },
    { "colo_primary SAVING_DM_SVM_READ DM_FAILED", COLO_QEMU },
    { "colo_primary SAVING_DM_SVM_READ CANCEL", COLO_QEMU },
    { "colo_primary AWAIT_DM_UNPROTECTED SVM_SUSPENDED", COLO_QEMU },
    { "colo_primary PROXY_CUTTING_ALONE FAIL", COLO_PROXY },
    { "colo_primary PROXY_CUTTING_ALONE TASKS_FAILED", COLO_PROXY },
    { "colo_primary PROXY_RELEASING TASKS_FAILED", COLO_PROXY },
    { "colo_primary PROXY_RELEASING_REMUS TASKS_FAILED", COLO_PROXY },
    { "colo_primary PROXY_CUTTING FAIL", COLO_PROXY },
    { "colo_primary PROXY_CUTTING TASKS_FAILED", COLO_PROXY },
    { "colo_primary AWAIT_TASKS_UNPROTECTED PROXY_DONE", COLO_PROXY },
    { "colo_primary SETTLING_UNPROTECTED PROXY_DONE", COLO_PROXY },
    { "colo_secondary PROXY_STARTING TASKS_FAILED", COLO_PROXY },
    { "colo_secondary PROXY_MARKING TASKS_FAILED", COLO_PROXY },
    { "colo_secondary KEEPING_PAUSED PROXY_DONE", COLO_PROXY },
    { "colo_secondary PROXY_FAILING_OVER PROXY_DONE", COLO_PROXY },
    { "colo_secondary DESTROYING PROXY_DONE", COLO_PROXY },
    { "colo_secondary TAKING_OVER PROXY_FAILED_OVER", COLO_PROXY },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER PROXY_DONE", COLO_PROXY },
    { "colo_primary AWAIT_TASKS_STOPPED TASKS_DONE", COLO_TASKS },
    { "colo_primary MIGRATING TASKS_DONE", COLO_TASKS },
    { "colo_primary SUSPENDING_ALONE TASKS_FAILED", COLO_TASKS },
    { "colo_primary AWAIT_TASKS TASKS_DONE", COLO_TASKS },
    { "colo_primary SENT TASKS_FAILED", COLO_TASKS },
    { "colo_primary PROTECTED TASKS_FAILED", COLO_TASKS },
    { "colo_primary RUNNING TASKS_FAILED", COLO_TASKS },
    { "colo_primary REMUS_RESUMED TASKS_FAILED", COLO_TASKS },
    { "colo_primary REMUS_WAITING TASKS_FAILED", COLO_TASKS },
    { "colo_primary REMUS_RUNNING TASKS_FAILED", COLO_TASKS },
    { "colo_primary AWAIT_TASKS_UNPROTECTED TASKS_DONE", COLO_TASKS },
    { "colo_primary AWAIT_SVM_READY TASKS_FAILED", COLO_TASKS },
    { "colo_primary RESUMING TASKS_FAILED", COLO_TASKS },
    { "colo_primary REMUS_RESUMING TASKS_FAILED", COLO_TASKS },
    { "colo_primary AWAIT_SVM_RESUMED TASKS_FAILED", COLO_TASKS },
    { "colo_primary WAITING TASKS_FAILED", COLO_TASKS },
    { "colo_primary SUSPENDING TASKS_FAILED", COLO_TASKS },
    { "colo_primary REMUS_SUSPENDING TASKS_FAILED", COLO_TASKS },
    { "colo_primary AWAIT_SVM_SUSPENDED TASKS_FAILED", COLO_TASKS },
    { "colo_primary AWAIT_SUSPEND_UNPROTECTED TASKS_FAILED", COLO_TASKS },
    { "colo_secondary AWAIT_TASKS TASKS_DONE", COLO_TASKS },
    { "colo_secondary CREATING_DOMAIN TASKS_FAILED", COLO_TASKS },
    { "colo_secondary RECEIVING_FIRST TASKS_DONE", COLO_TASKS },
    { "colo_secondary AWAIT_TASKS_THEN_DESTROY TASKS_DONE", COLO_TASKS },
    { "colo_secondary REPORTING TASKS_FAILED", COLO_TASKS },
    { "colo_secondary APPLIED TASKS_DONE", COLO_TASKS },
    { "colo_secondary WRITING_READY TASKS_FAILED", COLO_TASKS },
    { "colo_secondary LOADING_DM TASKS_FAILED", COLO_TASKS },
    { "colo_secondary STARTING_GUEST TASKS_FAILED", COLO_TASKS },
    { "colo_secondary WRITING_RESUMED TASKS_FAILED", COLO_TASKS },
    { "colo_secondary RUNNING TASKS_FAILED", COLO_TASKS },
    { "colo_secondary AWAIT_SUSPEND TASKS_FAILED", COLO_TASKS },
    { "colo_secondary SUSPENDING TASKS_FAILED", COLO_TASKS },
    { "colo_secondary WRITING_SUSPENDED TASKS_FAILED", COLO_TASKS },
    { "colo_secondary AWAIT_TASKS_FAILOVER TASKS_DONE", COLO_TASKS },
    { "colo_primary AWAIT_SUSPEND_UNPROTECTED GUEST_SUSPENDED", COLO_RACE },
    { "colo_primary AWAIT_SUSPEND_UNPROTECTED FAIL", COLO_RACE },
    { "colo_primary RESUMING_THEN_SETTLE GUEST_RESUMED", COLO_RACE },
    { "colo_primary RESUMING_THEN_SETTLE FAIL", COLO_RACE },
    { "colo_primary AWAIT_TASKS CB_CHECKPOINT", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED CB_SUSPEND", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED CB_CHECKPOINT", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED CB_POSTCOPY", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED CB_WAIT_CHECKPOINT", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED CB_SWITCH_LOGDIRTY", COLO_RACE },
    { "colo_primary AWAIT_TASKS_STOPPED CB_SWITCH_LOGDIRTY", COLO_RACE },
    { "colo_primary AWAIT_SUSPEND CB_SWITCH_LOGDIRTY", COLO_RACE },
    { "colo_primary AWAIT_SUSPEND_UNPROTECTED CANCEL", COLO_RACE },
    { "colo_primary RESUMING_THEN_SETTLE CANCEL", COLO_RACE },
    { "colo_primary SETTLING_UNPROTECTED GUEST_RESUMED", COLO_RACE },
    { "colo_primary AWAIT_TASKS FAIL", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED FAIL", COLO_RACE },
    { "colo_primary AWAIT_TASKS_STOPPED FAIL", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED STOP_REQUESTED", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED INTERVAL", COLO_RACE },
    { "colo_primary SETTLING ARMED", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED SVM_READY", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED SVM_RESUMED", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED SVM_SUSPENDED", COLO_RACE },
    { "colo_primary AWAIT_TASKS_UNPROTECTED TRIGGERED", COLO_RACE },
    { "colo_primary SETTLING_UNPROTECTED SVM_READY", COLO_RACE },
    { "colo_primary SETTLING_UNPROTECTED SVM_RESUMED", COLO_RACE },
    { "colo_primary SETTLING_UNPROTECTED SVM_SUSPENDED", COLO_RACE },
    { "colo_primary SETTLING_UNPROTECTED STOP_REQUESTED", COLO_RACE },
    { "colo_primary SETTLING_UNPROTECTED INTERVAL", COLO_RACE },
    { "colo_primary SETTLING_UNPROTECTED TRIGGERED", COLO_RACE },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER CANCEL", COLO_RACE },
    { "colo_secondary AWAIT_CREATION FAILOVER", COLO_RACE },
    { "colo_secondary AWAIT_CREATION_AND_TASKS FAILOVER", COLO_RACE },
    { "colo_secondary KEEPING_PAUSED FAILOVER", COLO_RACE },
    { "colo_secondary AWAIT_TASKS_STOPPED FAIL", COLO_RACE },
    { "colo_secondary AWAIT_TASKS CB_STATIC_DATA_DONE", COLO_RACE },
    { "colo_secondary AWAIT_TASKS_STOPPED CB_SUSPEND", COLO_RACE },
    { "colo_secondary DESTROYING CHECKPOINT_READ", COLO_RACE },
    { "colo_secondary DESTROYING NEW", COLO_RACE },
    { "colo_secondary DESTROYING STOP_ANNOUNCED", COLO_RACE },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER WRITTEN", COLO_RACE },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER REPORTED", COLO_RACE },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER CHECKPOINT_READ", COLO_RACE },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER NEW", COLO_RACE },
    { "colo_secondary AWAIT_GUEST_THEN_FAILOVER STOP_ANNOUNCED", COLO_RACE },
    { "colo_secondary AWAIT_TASKS_FAILOVER DM_LOADED", COLO_RACE },
    { "colo_secondary PAUSING DM_LOADED", COLO_RACE },
    { "colo_secondary FENCING REPORTED", COLO_RACE },
    { "colo_secondary FENCING DM_LOADED", COLO_RACE },
    { "colo_secondary KEEPING_PAUSED FENCED", COLO_RACE },
    { "colo_secondary KEEPING_PAUSED FENCE_REFUSED", COLO_RACE },
    { "colo_secondary ANY CANCEL", COLO_RACE },
    { NULL, NULL },
};
