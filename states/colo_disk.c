/* states/colo_disk.c - actions of the COLO disk replication machine (colo_disk.def). */
#include "states/colo_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/fdio.h"
#include "io/sched_uv.h"
#include "io/work.h"
#include "qmp/qmp.h"

#define FSM_PREFIX COLO_DISK
#define FSM_DEF_FILE "states/colo_disk.def"
#include "fsm/gen_table.h"

extern char **environ;

#define CD_SETUP_TIMEOUT_MS 10000
#define CD_CMD_TIMEOUT_MS   30000

void colo_disk_names(unsigned n, char drive[20], char top[24], char client[24])
{
    snprintf(drive, 20, "lsdisk%u", n);
    snprintf(top, 24, "lsdisk%u-top", n);
    snprintf(client, 24, "lsdisk%u-nbd", n);
}

void colo_disk_init(struct colo_disk_task *t, struct fsm_sched *sched, uint32_t domid,
                    const char *qmp_path, const char *log_path, const struct colo_disk_cfg *cfg,
                    fsm_done_fn *done)
{
    memset(t, 0, sizeof(*t));
    t->cfg = *cfg;
    t->domid = domid;
    snprintf(t->qmp_path, sizeof(t->qmp_path), "%s", qmp_path);
    snprintf(t->log_path, sizeof(t->log_path), "%s", log_path ? log_path : "");
    t->start_ns = io_monotonic_ns();
    fsm_init(&t->m, &colo_disk_fsm_def, sched, done, t, "colo_disk[%u]", domid);
}

int colo_disk_run(struct colo_disk_task *t, struct fsm *parent, struct fsm_join *j, int ev_ok,
                  int ev_fail, uint32_t domid, const char *qmp_path, const char *log_path,
                  const struct colo_disk_cfg *cfg, int job, const char *what)
{
    fsm_undo_forget(parent, j);   /* the last job's join reported: its undo is done */
    colo_disk_init(t, parent->sched, domid, qmp_path, log_path, cfg, NULL);
    fsm_join_begin(j, parent, ev_ok, ev_fail);
    fsm_join_add(j, &t->m);
    fsm_join_arm(j);
    t->job = job;
    fsm_post(&t->m, job, 0, NULL);
    return fsm_defer(parent, fsm_join_undo, j, what);
}

int colo_disk_parse_nbd(const char *addr, struct colo_disk_nbd *out, struct ls_errbuf *err)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(addr, "unix:", 5) == 0) {
        const char *path = addr + 5;
        if (!path[0] || strlen(path) >= sizeof(out->path) || strchr(path, ','))
            return ls_err(err, -EINVAL, "NBD address %s: a unix socket path of 1..%zu bytes "
                          "without ','", addr, sizeof(out->path) - 1);
        snprintf(out->path, sizeof(out->path), "%s", path);
        return 0;
    }
    const char *colon = strncmp(addr, "tcp:", 4) == 0 ? strrchr(addr + 4, ':') : NULL;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    size_t hlen = colon ? (size_t)(colon - (addr + 4)) : 0;
    if (!colon || !hlen || hlen >= sizeof(out->host) || !end || *end || port < 1 ||
        port > 65535 || memchr(addr + 4, ',', hlen))
        return ls_err(err, -EINVAL, "NBD address %s is not unix:PATH or tcp:HOST:PORT", addr);
    out->tcp = true;
    memcpy(out->host, addr + 4, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    return 0;
}

/* ---- the connection (one per job, as devmodel.c's) ------------------------ */

static void conn_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct colo_disk_task *t = data;
    t->qmp = NULL;
    if (t->closing)
        fsm_undo_complete(&t->m);
}

static int close_conn_undo(struct fsm *m, void *obj)
{
    struct colo_disk_task *t = obj;
    t->end_ns = io_monotonic_ns();
    if (!t->qmp)
        return 0;
    t->closing = true;
    /* A command in flight is let finish: its reply closes the connection. */
    if (!t->in_flight)
        qmp_conn_close(t->qmp);
    return FSM_UNDO_PENDING;
}

static int ensure_conn(struct colo_disk_task *t)
{
    if (t->qmp)
        return 0;
    struct qmp_conn_opts o = {
        .name = t->m.name, .setup_timeout_ms = CD_SETUP_TIMEOUT_MS,
        .cmd_timeout_ms = CD_CMD_TIMEOUT_MS, .done = conn_done, .data = t,
        /* A QEMU busy with another client still accepts (the backlog); a
         * missing or refusing socket is a QEMU that is gone: no retries. */
        .retry_connect = false,
    };
    int rc = qmp_conn_open_unix((struct io_sched *)t->m.sched, t->qmp_path, &o, &t->qmp);
    if (rc < 0)
        return fsm_fail(&t->m, rc, "disk replication of domain %u: cannot open QEMU's QMP "
                        "socket %s: %s", t->domid, t->qmp_path, strerror(-rc));
    return fsm_defer(&t->m, close_conn_undo, t, "QMP connection");
}

/* Replies become events; what an action needs from a reply is taken here. */
static bool take_reply(struct colo_disk_task *t, const struct qmp_reply *r)
{
    t->in_flight = false;
    if (t->closing) {
        qmp_conn_close(t->qmp);   /* the teardown waited for this reply */
        return false;
    }
    if (r->rc < 0) {
        /* QEMU's own words when it answered ("GenericError: ..."). */
        if (r->rc == -EREMOTEIO && r->err_desc)
            ls_err(&t->qmp_err, r->rc, "%s%s%s", r->err_class ? r->err_class : "",
                   r->err_class ? ": " : "", r->err_desc);
        else
            ls_err_copy(&t->qmp_err, r->err);
        fsm_post(&t->m, r->rc == -EREMOTEIO ? COLO_DISK_E_QMP_REFUSED : COLO_DISK_E_QMP_ERROR,
                 r->rc, NULL);
        return false;
    }
    return true;
}

static void refuse(struct colo_disk_task *t, int rc, const char *why)
{
    ls_err(&t->qmp_err, rc, "%s", why);
    fsm_post(&t->m, COLO_DISK_E_QMP_REFUSED, rc, NULL);
}

static void on_answer(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct colo_disk_task *t = data;
    if (take_reply(t, r))
        fsm_post(&t->m, COLO_DISK_E_ANSWERED, 0, NULL);
}

/* HMP prints its errors: drive_add of a drive answers "OK", the rest "". */
static void on_hmp(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct colo_disk_task *t = data;
    if (!take_reply(t, r))
        return;
    const char *out = YAJL_IS_STRING(r->ret) ? YAJL_GET_STRING(r->ret) : "";
    if (out[0] && strcmp(out, "OK\r\n") != 0) {
        char said[256];
        snprintf(said, sizeof(said), "%s", out);
        said[strcspn(said, "\r\n")] = '\0';
        refuse(t, -EREMOTEIO, said);
        return;
    }
    fsm_post(&t->m, COLO_DISK_E_ANSWERED, 0, NULL);
}

/* query-block: the virtual size of every lsdiskN. */
static void on_sizes(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct colo_disk_task *t = data;
    if (!take_reply(t, r))
        return;
    for (unsigned n = 0; n < t->cfg.ndisks; n++) {
        char drive[20], top[24], client[24];
        colo_disk_names(n, drive, top, client);
        t->size[n] = 0;
        for (size_t i = 0; YAJL_IS_ARRAY(r->ret) && i < YAJL_GET_ARRAY(r->ret)->len; i++) {
            yajl_val d = YAJL_GET_ARRAY(r->ret)->values[i];
            const char *dev_p[] = { "device", NULL };
            const char *size_p[] = { "inserted", "image", "virtual-size", NULL };
            yajl_val dev = yajl_tree_get(d, dev_p, yajl_t_string);
            yajl_val size = yajl_tree_get(d, size_p, yajl_t_number);
            const char *name = dev ? YAJL_GET_STRING(dev) : NULL;
            if (name && strcmp(name, drive) == 0 && size && YAJL_IS_INTEGER(size))
                t->size[n] = (uint64_t)YAJL_GET_INTEGER(size);
        }
        if (!t->size[n]) {
            char why[80];
            snprintf(why, sizeof(why), "QEMU has no drive %s with a size (the guest's disk)",
                     drive);
            refuse(t, -ENODEV, why);
            return;
        }
    }
    fsm_post(&t->m, COLO_DISK_E_ANSWERED, 0, NULL);
}

static void on_status(struct qmp_conn *c, const struct qmp_reply *r, void *data)
{
    struct colo_disk_task *t = data;
    if (!take_reply(t, r))
        return;
    const char *err_p[] = { "error", NULL }, *desc_p[] = { "desc", NULL };
    yajl_val err = yajl_tree_get(r->ret, err_p, yajl_t_any);
    yajl_val desc = yajl_tree_get(r->ret, desc_p, yajl_t_string);
    if (!err || !(YAJL_IS_TRUE(err) || YAJL_IS_FALSE(err))) {
        ls_err(&t->qmp_err, -EPROTO, "an answer without the boolean \"error\"");
        fsm_post(&t->m, COLO_DISK_E_QMP_ERROR, -EPROTO, NULL);
        return;
    }
    snprintf(t->broken, sizeof(t->broken), "%s", desc ? YAJL_GET_STRING(desc) : "(no desc)");
    fsm_post(&t->m, YAJL_IS_TRUE(err) ? COLO_DISK_E_UNSOUND : COLO_DISK_E_SOUND, 0, NULL);
}

/* Tests (fault-hook builds): LOCKSTEP_DISK_FAULT=JOB:LABEL, e.g.
 * FAILOVER:nbd-server-stop, makes QEMU seem to refuse that step of that job
 * (run by a role), so its failure rows are taken on demand. */
static bool injected(const struct colo_disk_task *t, const char *label)
{
#ifdef LOCKSTEP_FAULT_HOOKS
    const char *f = getenv("LOCKSTEP_DISK_FAULT");
    if (!f || !t->job)
        return false;
    char want[128];
    snprintf(want, sizeof(want), "%s:%s", colo_disk_fsm_def.event_names[t->job], label);
    return strcmp(f, want) == 0;
#else
    (void)t;
    (void)label;
    return false;
#endif
}

/* label names the step in errors (an HMP command's own name). */
static int exec_as(struct colo_disk_task *t, const char *cmd, const char *label,
                   struct qmp_args *a, qmp_reply_fn *cb)
{
    int rc = ensure_conn(t);
    if (rc < 0) {
        qmp_args_free(a);
        return rc;
    }
    t->cmd = label;
    ls_err_clear(&t->qmp_err);
    if (injected(t, label)) {
        qmp_args_free(a);
        refuse(t, -EREMOTEIO, "GenericError: injected refusal (LOCKSTEP_DISK_FAULT)");
        return 0;
    }
    struct qmp_exec_opts o = { .flags = QMP_EXEC_HMP_OUTPUT_OK };
    rc = qmp_exec_ex(t->qmp, cmd, a, &o, cb, t);
    t->in_flight = rc == 0;
    if (rc < 0)
        return fsm_fail(&t->m, rc, "disk replication of domain %u: cannot send %s: %s", t->domid,
                        label, strerror(-rc));
    return 0;
}

static int exec(struct colo_disk_task *t, const char *cmd, struct qmp_args *a, qmp_reply_fn *cb)
{
    return exec_as(t, cmd, cmd, a, cb);
}

static int hmp(struct colo_disk_task *t, const char *what, const char *line)
{
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "command-line", line);
    return exec_as(t, "human-monitor-command", what, a, on_hmp);
}

static int set_replication(struct colo_disk_task *t, bool enable, bool primary, bool failover)
{
    struct qmp_args *a = qmp_args_new();
    qmp_args_bool(a, "enable", enable);
    qmp_args_bool(a, "primary", primary);
    if (failover)
        qmp_args_bool(a, "failover", true);
    return exec(t, "xen-set-replication", a, on_answer);
}

/* The next disk a per-disk step takes, or -1 once all were (EVERY_DISK posted). */
static int take_disk(struct colo_disk_task *t)
{
    if (t->next >= t->cfg.ndisks) {
        t->next = 0;
        fsm_post(&t->m, COLO_DISK_E_EVERY_DISK, 0, NULL);
        return -1;
    }
    t->cur = t->next++;
    return (int)t->cur;
}

static void image_paths(const struct colo_disk_task *t, unsigned n, char *active, char *hidden,
                        size_t len)
{
    snprintf(active, len, "%s/lsdisk%u-active.qcow2", t->cfg.image_dir, n);
    snprintf(hidden, len, "%s/lsdisk%u-hidden.qcow2", t->cfg.image_dir, n);
}

/* ---- qemu-img, on the threadpool ------------------------------------------- */

/* qemu-img create -q -f qcow2 PATH SIZE; its own words on failure. */
static int qemu_img_create(const char *bin, const char *path, uint64_t size,
                           struct ls_errbuf *err)
{
    char sz[32];
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
    char *argv[] = { (char *)bin, "create", "-q", "-f", "qcow2", (char *)path, sz, NULL };
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return ls_err(err, -errno, "qemu-img: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return ls_err(err, -rc, "cannot run %s to make %s: %s", bin, path, strerror(rc));
    }
    char out[256];
    size_t have = 0;
    ssize_t n;
    while ((n = read(p[0], out + have, sizeof(out) - 1 - have)) > 0 ||
           (n < 0 && errno == EINTR))
        have += n > 0 ? (size_t)n : 0;
    out[have] = '\0';
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    out[strcspn(out, "\n")] = '\0';
    return ls_err(err, -EIO, "%s create %s (%s bytes) failed: %s", bin, path, sz,
                  out[0] ? out : "no reason given");
}

static int make_images(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct colo_disk_task *t = arg;
    const char *bin = t->cfg.qemu_img[0] ? t->cfg.qemu_img : "qemu-img";
    for (unsigned n = 0; n < t->cfg.ndisks; n++) {
        char active[256], hidden[256];
        image_paths(t, n, active, hidden, sizeof(active));
        /* Both the size of the disk they cover (recipe 3a: all three equal). */
        int rc = qemu_img_create(bin, active, t->size[n], err);
        if (rc == 0)
            rc = qemu_img_create(bin, hidden, t->size[n], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- actions: the secondary's setup ------------------------------------------ */

static int cd_query_block(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    if (t->cfg.ndisks < 1 || t->cfg.ndisks > COLO_DISK_MAX)
        return fsm_fail(m, -EINVAL, "disk replication of domain %u: %u disks (1 to %u)",
                        t->domid, t->cfg.ndisks, COLO_DISK_MAX);
    /* Paths go into -drive style option strings, where ',' separates. */
    if (strchr(t->cfg.image_dir, ',') || (!t->cfg.nbd.tcp && strchr(t->cfg.nbd.path, ',')))
        return fsm_fail(m, -EINVAL, "disk replication of domain %u: the image directory %s or "
                        "the NBD socket %s contains ',', which QEMU's drive options cannot carry",
                        t->domid, t->cfg.image_dir, t->cfg.nbd.path);
    return exec(t, "query-block", NULL, on_sizes);
}

static int cd_make_images(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, COLO_DISK_E_IMAGES_MADE, make_images, m->owner,
                         "qemu-img create (active and hidden images)");
}

static int cd_add_top(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    int n = take_disk(t);
    if (n < 0)
        return 0;
    char drive[20], top[24], client[24], active[256], hidden[256], line[900];
    colo_disk_names((unsigned)n, drive, top, client);
    image_paths(t, (unsigned)n, active, hidden, sizeof(active));
    /* libxl's secondary drive: the replica writes into active, whose backing
     * (hidden) takes the old data the primary's writes over NBD replace. */
    snprintf(line, sizeof(line), "drive_add buddy if=none,id=%s,driver=replication,mode=secondary,"
             "top-id=%s,file.driver=qcow2,file.file.filename=%s,file.backing.driver=qcow2,"
             "file.backing.file.filename=%s,file.backing.backing=%s", top, top, active, hidden,
             drive);
    return hmp(t, "drive_add (replication secondary)", line);
}

static int cd_nbd_start(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    struct qmp_args *a = qmp_args_new();
    struct qmp_args *addr = qmp_args_obj(a, "addr");
    struct qmp_args *data;
    if (t->cfg.nbd.tcp) {
        char port[16];
        snprintf(port, sizeof(port), "%d", t->cfg.nbd.port);
        qmp_args_str(addr, "type", "inet");
        data = qmp_args_obj(addr, "data");
        qmp_args_str(data, "host", t->cfg.nbd.host);
        qmp_args_str(data, "port", port);
    } else {
        qmp_args_str(addr, "type", "unix");
        data = qmp_args_obj(addr, "data");
        qmp_args_str(data, "path", t->cfg.nbd.path);
    }
    return exec(t, "nbd-server-start", a, on_answer);
}

static int cd_nbd_add(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    int n = take_disk(t);
    if (n < 0)
        return 0;
    char drive[20], top[24], client[24];
    colo_disk_names((unsigned)n, drive, top, client);
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "device", drive);   /* the export's name is the drive's */
    qmp_args_bool(a, "writable", true);
    return exec(t, "nbd-server-add", a, on_answer);
}

static int cd_enable_secondary(struct fsm *m, const struct fsm_ev *ev)
{
    return set_replication(m->owner, true, false, false);
}

/* ---- actions: the primary's setup ---------------------------------------------- */

static int cd_add_client(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    int n = take_disk(t);
    if (n < 0)
        return 0;
    char drive[20], top[24], client[24], server[200], line[600];
    colo_disk_names((unsigned)n, drive, top, client);
    if (t->cfg.nbd.tcp)
        snprintf(server, sizeof(server), "file.host=%s,file.port=%d", t->cfg.nbd.host,
                 t->cfg.nbd.port);
    else
        snprintf(server, sizeof(server), "file.server.type=unix,file.server.path=%s",
                 t->cfg.nbd.path);
    snprintf(line, sizeof(line), "drive_add -n buddy driver=replication,mode=primary,"
             "file.driver=nbd,%s,file.export=%s,node-name=%s", server, drive, client);
    return hmp(t, "drive_add (replication primary, NBD client)", line);
}

static int cd_attach_client(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    char drive[20], top[24], client[24];
    colo_disk_names(t->cur, drive, top, client);
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "parent", drive);
    qmp_args_str(a, "node", client);
    return exec_as(t, "x-blockdev-change", "x-blockdev-change (add children.1)", a, on_answer);
}

static int cd_enable_primary(struct fsm *m, const struct fsm_ev *ev)
{
    return set_replication(m->owner, true, true, false);
}

/* ---- actions: checkpoints ---------------------------------------------------------- */

static int cd_do_checkpoint(struct fsm *m, const struct fsm_ev *ev)
{
    return exec(m->owner, "xen-colo-do-checkpoint", NULL, on_answer);
}

static int cd_query_status(struct fsm *m, const struct fsm_ev *ev)
{
    return exec(m->owner, "query-xen-replication-status", NULL, on_status);
}

static int cd_note_broken(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    /* An error (its final state says broken, not failed): an owner's join
     * reports it as a failure, with QEMU's words. */
    fsm_fail(m, -EPIPE, "disk replication of domain %u: QEMU reports it broken (%s; the "
             "secondary's NBD server is gone)", t->domid, t->broken);
    return 0;
}

/* ---- actions: teardown and failover --------------------------------------------------- */

static int cd_disable_primary(struct fsm *m, const struct fsm_ev *ev)
{
    return set_replication(m->owner, false, true, false);
}

static int cd_detach_client(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    int n = take_disk(t);
    if (n < 0)
        return 0;
    char drive[20], top[24], client[24];
    colo_disk_names((unsigned)n, drive, top, client);
    /* QEMU names no child; libxl knows the client is children.1. */
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "parent", drive);
    qmp_args_str(a, "child", "children.1");
    return exec_as(t, "x-blockdev-change", "x-blockdev-change (remove children.1)", a,
                   on_answer);
}

static int cd_del_client(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    char drive[20], top[24], client[24], line[64];
    colo_disk_names(t->cur, drive, top, client);
    snprintf(line, sizeof(line), "drive_del %s", client);
    return hmp(t, "drive_del (NBD client)", line);
}

static int cd_disable_secondary(struct fsm *m, const struct fsm_ev *ev)
{
    return set_replication(m->owner, false, false, false);
}

static int cd_nbd_stop(struct fsm *m, const struct fsm_ev *ev)
{
    return exec(m->owner, "nbd-server-stop", NULL, on_answer);
}

static int cd_note_refusal(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    snprintf(t->note, sizeof(t->note), "QEMU refused to stop the secondary's replication "
             "without failover (%s); the replica keeps its own writes since the last checkpoint",
             t->qmp_err.msg);
    fprintf(stderr, "lockstep: domain %u: %s\n", t->domid, t->note);
    return cd_nbd_stop(m, ev);
}

static int cd_failover(struct fsm *m, const struct fsm_ev *ev)
{
    return set_replication(m->owner, false, false, true);
}

static int cd_qmp_error(struct fsm *m, const struct fsm_ev *ev)
{
    struct colo_disk_task *t = m->owner;
    int rc = ev->rc;
    char tail[600] = "", said[700] = "";
    if (t->log_path[0])
        io_log_tail(t->log_path, 3, tail, sizeof(tail));
    if (tail[0])
        snprintf(said, sizeof(said), "; QEMU's log ends: %s", tail);
    bool died = rc == -ECONNRESET || rc == -ENOENT || rc == -ECONNREFUSED || rc == -EPIPE;
    char disk[24] = "";
    if (t->cfg.ndisks > 1 || strstr(t->cmd, "drive") || strstr(t->cmd, "blockdev"))
        snprintf(disk, sizeof(disk), " (disk lsdisk%u)", t->cur);
    return fsm_fail(m, rc, "disk replication of domain %u: %s%s %s: %s%s", t->domid, t->cmd, disk,
                    died ? "failed, QEMU is gone" : rc == -EREMOTEIO || rc == -ENODEV
                        ? "refused" : "failed",
                    t->qmp_err.msg[0] ? t->qmp_err.msg : strerror(-rc), said);
}
