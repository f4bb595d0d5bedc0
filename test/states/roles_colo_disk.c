/* test/states/roles_colo_disk.c - the COLO disk jobs (states/colo_disk.def)
 * against the scripted QEMU.
 *
 * One job per run, each of the seven a role starts (the secondary's and the
 * primary's setup, a checkpoint, a query sound or broken, the primary's and
 * the secondary's teardown, a failover), on a QEMU whose drives are the
 * guest's disks lsdisk0..N-1 (test/fakes/qmp_peer_fake.h keeps what each
 * answered command did to them). The job is wrapped in an ls_op so the
 * walker cancels it as an owner would. Invariants (the .def's header):
 * a job that succeeds leaves QEMU as its step says; a step QEMU refuses,
 * withholds or dies in ends FAILED naming the command and QEMU's reason
 * (except the secondary's refused stop, which the job notes and goes past);
 * a broken replication ends BROKEN with QEMU's desc; the QMP connection is
 * closed by done (the walker counts uv handles, fds, live machines).
 */
#include "test/states/roles.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "states/colo_disk.h"

#define CD_DOMID 5

struct cd_role {
    struct ls_op op;
    struct colo_disk_task t;
    int job;                       /* the event posted: COLO_DISK_E_* */
};

static struct cd_role *role_of(struct ls_op *op)
{
    return (struct cd_role *)((char *)op - offsetof(struct cd_role, op));
}

static void cd_free(struct ls_op *op) { free(role_of(op)); }

static void cd_done(struct fsm *m, int rc)
{
    struct colo_disk_task *t = m->owner;
    struct cd_role *r = (struct cd_role *)((char *)t - offsetof(struct cd_role, t));
    op_finish(&r->op, rc, m->err.msg);
}

/* A job, its disks, and QEMU as the step before it left them (NULL: fresh). */
struct cd_case {
    int job;                       /* COLO_DISK_E_* */
    unsigned ndisks;
    const struct qp_repl *before;
};

static int cd_start(struct enum_env *e, const void *arg, struct ls_errbuf *err)
{
    const struct cd_case *c = arg;
    int job = c->job;
    unsigned ndisks = c->ndisks;
    const struct qp_repl *before = c->before;
    int rc = enum_use_qemu(e, "running", err);
    if (rc < 0)
        return rc;
    if (before)
        e->qemu.repl = *before;
    e->qemu.repl.ndisks = ndisks;
    struct cd_role *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(err, -ENOMEM, "out of memory");
    struct colo_disk_cfg cfg = { .ndisks = ndisks, .image_dir = "/tmp",
                                 /* the images are QEMU's business; a run spawns no qemu-img */
                                 .qemu_img = "true" };
    snprintf(cfg.nbd.path, sizeof(cfg.nbd.path), "/tmp/lsqp-nbd.sock");
    colo_disk_init(&r->t, &e->ctx.sched.sched, CD_DOMID, e->qemu.path, NULL, &cfg, cd_done);
    r->job = job;
    r->op = (struct ls_op){ .ctx = &e->ctx, .root = &r->t.m, .domid = CD_DOMID,
                            .done = enum_on_done, .data = e, .free_role = cd_free };
    e->ctx.live_ops++;
    e->op = &r->op;
    fsm_post(&r->t.m, job, 0, NULL);
    return 0;
}

static const struct qp_repl primary_on = { .enabled = true, .primary = true, .clients = 2,
                                           .attached = 2 };
static const struct qp_repl secondary_on = { .enabled = true, .tops = 2, .exports = 2,
                                             .nbd_server = true };

static const struct qp_repl primary_broken = { .enabled = true, .primary = true, .clients = 2,
                                               .attached = 2, .broken = true };

/* The first of QEMU's answers the run scripted to fail, "" if none. */
static const char *refused_command(const struct enum_env *e)
{
    for (unsigned i = 1; i <= e->fb.npoints; i++)
        if (e->fb.point_peer[i] && e->fb.answer[i] == FB_FAIL)
            return e->fb.point_name[i] + 4;   /* "qmp.X" */
    return "";
}

static void cd_check(struct enum_env *e)
{
    struct cd_role *r = role_of(e->op);
    const struct colo_disk_task *t = &r->t;
    const struct qp_repl *q = &e->qemu.repl;
    const char *refused = refused_command(e);
    bool stop_refused = r->job == COLO_DISK_E_TEARDOWN_SECONDARY &&
                        strcmp(refused, "xen-set-replication") == 0;
    if (t->note[0] && !strstr(t->note, "scripted failure of xen-set-replication"))
        enum_problem(e, "the job noted a refusal QEMU never made: %s", t->note);
    if (e->done_rc < 0) {
        if (!strstr(e->done_msg, "disk replication of domain") && !e->injected &&
            e->done_rc != -ECANCELED)
            enum_problem(e, "the job failed without naming the disk replication: %s",
                         e->done_msg);
        /* QEMU's own words, when it refused the step that failed */
        if (refused[0] && !stop_refused && !e->injected && e->done_rc == -EREMOTEIO &&
            !strstr(e->done_msg, "scripted failure of"))
            enum_problem(e, "QEMU refused %s, but the error does not say what it said: %s",
                         refused, e->done_msg);
        return;
    }
    if (t->m.state == COLO_DISK_S_BROKEN) {
        if (!q->broken || !strstr(t->broken, "I/O error occurred"))
            enum_problem(e, "BROKEN without QEMU's desc (broken: \"%s\")", t->broken);
        return;
    }
    if (t->m.state != COLO_DISK_S_DONE)
        enum_problem(e, "done rc 0 in state %s", fsm_state_name(&t->m));
    unsigned n = t->cfg.ndisks;
    switch (r->job) {
    case COLO_DISK_E_SETUP_SECONDARY:
        if (q->tops != (int)n || !q->nbd_server || q->exports != (int)n || !q->enabled ||
            q->primary)
            enum_problem(e, "the secondary's setup succeeded, but QEMU has %d tops, %d exports, "
                         "nbd %d, replication %d primary %d", q->tops, q->exports, q->nbd_server,
                         q->enabled, q->primary);
        break;
    case COLO_DISK_E_SETUP_PRIMARY:
        if (q->clients != (int)n || q->attached != (int)n || !q->enabled || !q->primary)
            enum_problem(e, "the primary's setup succeeded, but QEMU has %d clients, %d "
                         "attached, replication %d primary %d", q->clients, q->attached,
                         q->enabled, q->primary);
        break;
    case COLO_DISK_E_CHECKPOINT:
        if (q->checkpoints != 1)
            enum_problem(e, "the checkpoint succeeded after %u of QEMU's", q->checkpoints);
        break;
    case COLO_DISK_E_QUERY:
        if (q->broken)
            enum_problem(e, "QEMU said replication is broken, the job says sound");
        break;
    case COLO_DISK_E_TEARDOWN_PRIMARY:
        if (q->enabled || q->attached || q->clients)
            enum_problem(e, "the primary's teardown succeeded, but QEMU has replication %d, "
                         "%d attached, %d clients", q->enabled, q->attached, q->clients);
        break;
    case COLO_DISK_E_TEARDOWN_SECONDARY:
        if (q->nbd_server || q->exports)
            enum_problem(e, "the secondary's stop succeeded with its NBD server still on");
        if (stop_refused ? !strstr(t->note, "scripted failure of xen-set-replication")
                         : (q->enabled || t->note[0]))
            enum_problem(e, "the secondary's stop: replication %d, note \"%s\"", q->enabled,
                         t->note);
        break;
    case COLO_DISK_E_FAILOVER:
        if (q->nbd_server || !q->failed_over || q->enabled)
            enum_problem(e, "the failover succeeded, but QEMU has nbd %d, failed over %d, "
                         "replication %d", q->nbd_server, q->failed_over, q->enabled);
        break;
    }
}

#define CD_CASE(job_, n_, before_) &(const struct cd_case){ COLO_DISK_E_##job_, n_, before_ }
/* Its qemu-img is a real process (true) per run: 1 in 3 second failures. */
const struct enum_scenario enum_cd_setup_secondary = {
    "colo_disk/setup-secondary", cd_start, cd_check, 3, CD_CASE(SETUP_SECONDARY, 1, NULL) };
const struct enum_scenario enum_cd_setup_primary = {
    "colo_disk/setup-primary", cd_start, cd_check, 0, CD_CASE(SETUP_PRIMARY, 2, NULL) };
const struct enum_scenario enum_cd_checkpoint = {
    "colo_disk/checkpoint", cd_start, cd_check, 0, CD_CASE(CHECKPOINT, 2, &secondary_on) };
const struct enum_scenario enum_cd_query = {
    "colo_disk/query", cd_start, cd_check, 0, CD_CASE(QUERY, 2, &primary_on) };
const struct enum_scenario enum_cd_query_broken = {
    "colo_disk/query-broken", cd_start, cd_check, 0, CD_CASE(QUERY, 2, &primary_broken) };
const struct enum_scenario enum_cd_teardown_primary = {
    "colo_disk/teardown-primary", cd_start, cd_check, 0,
    CD_CASE(TEARDOWN_PRIMARY, 2, &primary_on) };
const struct enum_scenario enum_cd_teardown_secondary = {
    "colo_disk/teardown-secondary", cd_start, cd_check, 0,
    CD_CASE(TEARDOWN_SECONDARY, 2, &secondary_on) };
const struct enum_scenario enum_cd_failover = {
    "colo_disk/failover", cd_start, cd_check, 0, CD_CASE(FAILOVER, 2, &secondary_on) };
