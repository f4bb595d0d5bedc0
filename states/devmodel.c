/* states/devmodel.c - actions of the device-model machine (devmodel.def). */
#include "states/devmodel.h"

#include "io/fdio.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "io/sched_uv.h"
#include "qmp/qmp.h"

#define FSM_PREFIX DEVMODEL
#define FSM_DEF_FILE "states/devmodel.def"
#include "fsm/gen_table.h"

#define DM_SETUP_TIMEOUT_MS 10000
#define DM_CMD_TIMEOUT_MS   30000
/* CHECK: "inmigrate" means QEMU is still loading; asked again this often. */
#define DM_MAX_STATUS_QUERIES 20000
#define DM_STATE_MAX (64u << 20)   /* far above QEMU's ~32 KB of device state */

bool dm_state_is_qemu(const uint8_t *blob, size_t len)
{
    static const char standin[] = "lockstep device-model stand-in";
    return len >= 8 && memcmp(blob, "QEVM", 4) == 0 &&
           !(len >= 8 + sizeof(standin) - 1 && memcmp(blob + 8, standin, sizeof(standin) - 1) == 0);
}

void dm_state_digest(const uint8_t *blob, size_t len, char hex[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ blob[i]) * 0x100000001b3ull;
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
}

void dm_task_init(struct dm_task *t, struct fsm_sched *sched, uint32_t domid, int pid,
                  const char *qmp_path)
{
    memset(t, 0, sizeof(*t));
    t->domid = domid;
    t->pid = pid;
    t->state_fd = -1;
    snprintf(t->qmp_path, sizeof(t->qmp_path), "%s", qmp_path);
    fsm_init(&t->m, &devmodel_fsm_def, sched, NULL, t, "devmodel[%u]", domid);
}

int dm_task_run(struct dm_task *t, struct fsm *parent, struct fsm_join *j, int ev_ok,
                int ev_fail, uint32_t domid, const struct ls_dm_info *dm, int job,
                const char *what)
{
    fsm_undo_forget(parent, j);
    dm_task_init(t, parent->sched, domid, dm->pid, dm->qmp_path);
    dm_task_set_log(t, dm->log_path);
    fsm_join_begin(j, parent, ev_ok, ev_fail);
    fsm_join_add(j, &t->m);
    fsm_join_arm(j);
    fsm_post(&t->m, job, 0, NULL);
    return fsm_defer(parent, fsm_join_undo, j, what);
}

void dm_append_fate(struct ls_errbuf *e, const struct ls_dm_info *dm)
{
    char how[64];
    if (dm->present && !dm->alive)
        ls_err_append(e, "; its QEMU (pid %d) %s", dm->pid,
                      backend_dm_status_text(dm, how, sizeof(how)));
}

/* The process has exited: a zombie awaiting its reaper, or no process at all. */
static bool exited(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');   /* the name may hold spaces */
    return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

int dm_settled(struct ls_backend *be, uint32_t domid, dm_info_fn *info, struct ls_dm_info *out,
               struct ls_errbuf *err)
{
    int rc = info(be, domid, out, err);
    for (int i = 0; rc == 0 && out->present && out->alive && out->pid > 0 && exited(out->pid) &&
                    i < 150; i++) {   /* 3 s: a loaded host's daemon reaps late */
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        rc = info(be, domid, out, err);
    }
    return rc;
}

int dm_info_settled(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                    struct ls_errbuf *err)
{
    return dm_settled(be, domid, be->ops->dm_info, out, err);
}

void dm_task_set_log(struct dm_task *t, const char *log_path)
{
    snprintf(t->log_path, sizeof(t->log_path), "%s", log_path ? log_path : "");
}

/* "; QEMU's log: LINES" when the log says something, else "". */
static void log_words(const struct dm_task *t, char *buf, size_t len)
{
    char tail[600];
    buf[0] = '\0';
    if (!t->log_path[0])
        return;
    io_log_tail(t->log_path, 3, tail, sizeof(tail));
    if (tail[0])
        snprintf(buf, len, "; QEMU's log (%s) ends: %s", t->log_path, tail);
}

/* ---- the connection ------------------------------------------------------ */

static void conn_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct dm_task *t = data;
    t->qmp = NULL;
    if (t->closing)
        fsm_undo_complete(&t->m);
}

static struct qmp_conn *conn_of(const struct dm_task *t)
{
    return t->link ? t->link->qmp : t->qmp;
}

/* The link's memfd, and the fdset QEMU keeps it in (gone with the connection). */
static void link_forget_fd(struct dm_link *l)
{
    if (l->state_fd >= 0)
        close(l->state_fd);
    if (l->state_wfd >= 0)
        close(l->state_wfd);
    l->state_fd = l->state_wfd = -1;
    l->fdset_id = -1;
}

static void link_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct dm_link *l = data;
    l->live--;
    if (l->qmp == c) {   /* not one dropped for another QEMU's */
        l->qmp = NULL;
        link_forget_fd(l);   /* QEMU dropped the fdset with its last monitor */
    }
    if (l->closing && !l->live)
        fsm_undo_complete(l->owner);
}

static int link_close_undo(struct fsm *m, void *obj)
{
    struct dm_link *l = obj;
    if (!l->live) {
        link_forget_fd(l);
        return 0;
    }
    l->closing = true;
    if (l->qmp)
        qmp_conn_close(l->qmp);   /* dropped ones are closing already */
    return FSM_UNDO_PENDING;
}

/* QEMU emits STOP only when a running VM stops: before a stop's reply, it
 * says the VM ran until then. */
static void link_on_stop(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    struct dm_link *l = data;
    l->saw_stop = true;
}

void dm_link_drop(struct dm_link *l);

static int link_open(struct dm_link *l, struct fsm_sched *sched, const char *name,
                     const char *path)
{
    if (l->qmp && strcmp(l->path, path) != 0)   /* another QEMU's (replaced since) */
        dm_link_drop(l);
    if (l->qmp)
        return 0;
    struct qmp_conn_opts o = {
        .name = name, .setup_timeout_ms = DM_SETUP_TIMEOUT_MS, .cmd_timeout_ms = DM_CMD_TIMEOUT_MS,
        .done = link_done, .data = l, .retry_connect = l->retry_connect,
    };
    int rc = qmp_conn_open_unix((struct io_sched *)sched, path, &o, &l->qmp);
    if (rc < 0)
        return rc;
    l->live++;
    snprintf(l->path, sizeof(l->path), "%s", path);
    link_forget_fd(l);   /* a new connection: nothing registered on it yet */
    return qmp_subscribe(l->qmp, "STOP", link_on_stop, l) < 0 ? -ENOMEM : 0;
}

void dm_link_drop(struct dm_link *l)
{
    if (!l->qmp)
        return;
    qmp_conn_close(l->qmp);
    l->qmp = NULL;
    link_forget_fd(l);
}

int dm_link_point(struct dm_link *l, struct fsm_sched *sched, const char *name,
                  const char *path)
{
    return l->closing ? -ESHUTDOWN : link_open(l, sched, name, path);
}

int dm_link_defer_close(struct dm_link *l, struct fsm *owner)
{
    l->owner = owner;
    l->state_fd = l->state_wfd = -1;
    l->fdset_id = -1;
    return fsm_defer(owner, link_close_undo, l, "QMP connection to the device model");
}

void dm_task_use_link(struct dm_task *t, struct dm_link *l)
{
    t->link = l;
}

static int close_conn_undo(struct fsm *m, void *obj)
{
    struct dm_task *t = obj;
    if (t->state_fd >= 0) {
        close(t->state_fd);
        t->state_fd = -1;
    }
    if (!conn_of(t))
        return 0;
    if (t->link) {   /* the owner's connection: only a reply in flight is awaited */
        if (!t->in_flight)
            return 0;
        t->closing = true;
        return FSM_UNDO_PENDING;
    }
    t->closing = true;
    /* A command in flight (a stop, say) is let finish before the hang-up:
     * QEMU may still run it after a new connection's cont otherwise. Its
     * reply closes the connection (on_reply); the command timeout bounds it. */
    if (!t->in_flight)
        qmp_conn_close(t->qmp);
    return FSM_UNDO_PENDING;
}

static int ensure_conn(struct dm_task *t)
{
    if (t->link) {
        int rc = link_open(t->link, t->m.sched, t->m.name, t->qmp_path);
        if (rc < 0)
            return fsm_fail(&t->m, rc, "device model of domain %u: cannot open its QMP socket "
                            "%s: %s", t->domid, t->qmp_path, strerror(-rc));
    } else if (!t->qmp) {
        struct qmp_conn_opts o = {
            .name = t->m.name, .setup_timeout_ms = DM_SETUP_TIMEOUT_MS,
            .cmd_timeout_ms = DM_CMD_TIMEOUT_MS, .done = conn_done, .data = t,
            /* The supervisor returned once the socket accepted: no retries, so a
             * QEMU that died since is known at once. */
            .retry_connect = false,
        };
        int rc = qmp_conn_open_unix((struct io_sched *)t->m.sched, t->qmp_path, &o, &t->qmp);
        if (rc < 0)
            return fsm_fail(&t->m, rc, "device model of domain %u: cannot open its QMP socket "
                            "%s: %s", t->domid, t->qmp_path, strerror(-rc));
    }
    if (t->undo_set)
        return 0;
    t->undo_set = true;
    return fsm_defer(&t->m, close_conn_undo, t, "QMP connection");
}

/* Replies become events; the reply tree dies with the callback, so what an
 * action needs from it is taken here. */
static void on_reply(struct qmp_conn *c, const struct qmp_reply *r, void *data, int ev)
{
    struct dm_task *t = data;
    t->in_flight = false;
    t->last_reply_ns = io_monotonic_ns();
    if (t->closing) {        /* the teardown waited for this reply */
        if (t->link)
            fsm_undo_complete(&t->m);
        else
            qmp_conn_close(c);
        return;
    }
    if (r->rc < 0) {
        ls_err_copy(&t->qmp_err, r->err);
        fsm_post(&t->m, DEVMODEL_E_QMP_ERROR, r->rc, NULL);
        return;
    }
    if (ev == DEVMODEL_E_STATUS) {
        const char *path[] = { "status", NULL };
        yajl_val st = yajl_tree_get(r->ret, path, yajl_t_string);
        const char *s = st && YAJL_GET_STRING(st) ? YAJL_GET_STRING(st) : "";
        t->was_running = strcmp(s, "running") == 0;
        /* CHECK reads the state again below: 1 loaded, 0 loading, -1 wrong. */
        intptr_t verdict = strcmp(s, "paused") == 0 ? 1 : strcmp(s, "inmigrate") == 0 ? 0 : -1;
        snprintf(t->status, sizeof(t->status), "%s", s);
        fsm_post(&t->m, ev, 0, (void *)verdict);
        return;
    }
    if (ev == DEVMODEL_E_FD_ADDED && qmp_reply_add_fd(r, &t->fdset_id, &(long long){ 0 }) < 0) {
        ls_err(&t->qmp_err, -EPROTO, "add-fd: a reply without fdset-id");
        fsm_post(&t->m, DEVMODEL_E_QMP_ERROR, -EPROTO, NULL);
        return;
    }
    fsm_post(&t->m, ev, 0, NULL);
}
static void on_status(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_STATUS); }
static void on_stopped(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_STOPPED); }
static void on_fd_added(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_FD_ADDED); }
static void on_saved(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_STATE_SAVED); }
static void on_fd_removed(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_FD_REMOVED); }
static void on_continued(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_CONTINUED); }
static void on_fd_got(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_FD_GOT); }
static void on_incoming(struct qmp_conn *c, const struct qmp_reply *r, void *d) { on_reply(c, r, d, DEVMODEL_E_INCOMING); }

static void fault_kill(struct dm_task *t, const char *cmd)
{
#ifdef LOCKSTEP_FAULT_HOOKS
    static unsigned sent, named;
    const char *at = getenv("LOCKSTEP_DM_FAULT_KILL");
    if (!at || !*at)
        return;
    /* "N": the N-th command of any kind; "CMD:N": the N-th CMD. */
    const char *colon = strchr(at, ':');
    bool mine = !colon || ((size_t)(colon - at) == strlen(cmd) && !strncmp(at, cmd, strlen(cmd)));
    if (!mine || (unsigned)atoi(colon ? colon + 1 : at) != (colon ? ++named : ++sent) ||
        t->pid <= 0)
        return;
    fprintf(stderr, "lockstep: LOCKSTEP_DM_FAULT_KILL: killing QEMU pid %d before %s\n", t->pid,
            cmd);
    kill(t->pid, SIGKILL);
    /* Its end, not just the signal: the command must meet a dead peer. */
    for (int i = 0; i < 2000 && kill(t->pid, 0) == 0; i++) {
        char path[64], st[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", t->pid);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(st, sizeof(st), f) || strstr(st, ") Z ") || strstr(st, ") X ")) {
            if (f)
                fclose(f);
            break;
        }
        fclose(f);
        usleep(1000);
    }
#else
    (void)t;
    (void)cmd;   /* a release build never kills its QEMU nor sleeps on the loop */
#endif
}

static int exec(struct dm_task *t, const char *cmd, struct qmp_args *args, qmp_reply_fn *cb)
{
    fault_kill(t, cmd);
    int rc = ensure_conn(t);
    if (rc < 0) {
        qmp_args_free(args);
        return rc;
    }
    t->cmd = cmd;
    rc = qmp_exec(conn_of(t), cmd, args, cb, t);
    t->in_flight = rc == 0;
    if (rc < 0)
        return fsm_fail(&t->m, rc, "device model of domain %u: cannot send %s: %s", t->domid,
                        cmd, strerror(-rc));
    return 0;
}

/* ---- actions ------------------------------------------------------------ */

static int dm_query_status(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    t->status_queries++;
    return exec(t, "query-status", NULL, on_status);
}

static int dm_stop(struct fsm *m, const struct fsm_ev *ev)
{
    return exec(m->owner, "stop", NULL, on_stopped);
}

/* A memfd for the state in *rfd, and in *wfd a write-only fd to it: QEMU
 * opens /dev/fdset/N write-only and takes only an fd of that access mode. */
static int state_memfd(struct dm_task *t, int *rfd, int *wfd)
{
    *rfd = memfd_create("lockstep-device-state", MFD_CLOEXEC);
    if (*rfd < 0)
        return fsm_fail(&t->m, -errno, "device model of domain %u: memfd for its state: %s",
                        t->domid, strerror(errno));
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", *rfd);
    *wfd = open(self, O_WRONLY | O_CLOEXEC);
    if (*wfd < 0)
        return fsm_fail(&t->m, -errno, "device model of domain %u: reopening its state memfd "
                        "write-only: %s", t->domid, strerror(errno));
    return 0;
}

static int send_add_fd(struct dm_task *t, int wfd)
{
    t->cmd = "add-fd";
    fault_kill(t, "add-fd");
    int rc = ensure_conn(t);   /* a connection that ended since (QEMU died): its error */
    if (rc < 0)
        return rc;
    rc = qmp_add_fd(conn_of(t), wfd, -1, NULL, on_fd_added, t);   /* sends a duplicate */
    t->in_flight = rc == 0;
    if (rc < 0)
        return fsm_fail(&t->m, rc, "device model of domain %u: cannot send add-fd: %s",
                        t->domid, strerror(-rc));
    return 0;
}

static int dm_add_fd(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    int wfd = -1;
    int rc = state_memfd(t, &t->state_fd, &wfd);
    if (rc == 0)
        rc = send_add_fd(t, wfd);
    if (wfd >= 0)
        close(wfd);   /* ours stays for reading */
    return rc;
}

/* SAVE_LINKED: the link's memfd, added to QEMU on the link's first save. */
static int dm_link_fd(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    struct dm_link *l = t->link;
    if (!l)
        return fsm_fail(m, -EINVAL, "device model of domain %u: a linked save with no link",
                        t->domid);
    int rc = ensure_conn(t);   /* a new connection forgets the old fdset */
    if (rc < 0)
        return rc;
    if (l->fdset_id >= 0) {
        fsm_post(m, DEVMODEL_E_FD_KEPT, 0, NULL);
        return 0;
    }
    rc = state_memfd(t, &l->state_fd, &l->state_wfd);
    return rc < 0 ? rc : send_add_fd(t, l->state_wfd);
}

static int dm_link_stop(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    if (ev->id == DEVMODEL_E_FD_ADDED)
        t->link->fdset_id = t->fdset_id;
    t->link->saw_stop = false;
    return exec(t, "stop", NULL, on_stopped);
}

static int dm_save_state(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    char path[64];
    snprintf(path, sizeof(path), "/dev/fdset/%lld", t->fdset_id);
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "filename", path);
    qmp_args_bool(a, "live", false);
    return exec(t, "xen-save-devices-state", a, on_saved);
}

/* The kept fd's offset (shared with QEMU's dup) back to 0: QEMU truncates
 * the file as it opens it, but writes from where the last save ended. */
static int dm_link_save(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    struct dm_link *l = t->link;
    t->was_running = l->saw_stop;
    t->fdset_id = l->fdset_id;
    if (ftruncate(l->state_fd, 0) < 0 || lseek(l->state_wfd, 0, SEEK_SET) < 0)
        return fsm_fail(m, -errno, "device model of domain %u: rewinding its state memfd: %s",
                        t->domid, strerror(errno));
    return dm_save_state(m, ev);
}

#define DM_LOAD_FDNAME "lockstep-state"

/* LOAD_LINKED: the state's fd to the standby, under a name migrate-incoming
 * takes (getfd's names are its monitor's: the same connection follows). */
static int dm_link_getfd(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    if (!t->link || t->state_fd < 0)
        return fsm_fail(m, -EINVAL, "device model of domain %u: a linked load with no link or "
                        "no state", t->domid);
    t->cmd = "getfd";
    fault_kill(t, "getfd");
    int rc = ensure_conn(t);
    if (rc < 0)
        return rc;
    rc = qmp_getfd(conn_of(t), t->state_fd, DM_LOAD_FDNAME, on_fd_got, t);
    t->in_flight = rc == 0;
    if (rc < 0)
        return fsm_fail(m, rc, "device model of domain %u: cannot send getfd: %s", t->domid,
                        strerror(-rc));
    return 0;
}

static int dm_link_incoming(struct fsm *m, const struct fsm_ev *ev)
{
    struct qmp_args *a = qmp_args_new();
    qmp_args_str(a, "uri", "fd:" DM_LOAD_FDNAME);
    return exec(m->owner, "migrate-incoming", a, on_incoming);
}

static int dm_remove_fd(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    struct qmp_args *a = qmp_args_new();
    qmp_args_int(a, "fdset-id", t->fdset_id);
    return exec(t, "remove-fd", a, on_fd_removed);
}

static int dm_collect_state(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    int fd = t->state_fd >= 0 ? t->state_fd : t->link->state_fd;   /* SAVE's, or SAVE_LINKED's */
    struct stat st;
    if (fstat(fd, &st) < 0)
        return fsm_fail(m, -errno, "device model of domain %u: its saved state: %s", t->domid,
                        strerror(errno));
    if (st.st_size < 8 || (uint64_t)st.st_size > DM_STATE_MAX)
        return fsm_fail(m, -EPROTO, "device model of domain %u saved %lld bytes of device state "
                        "(expected 8 to %u)", t->domid, (long long)st.st_size, DM_STATE_MAX);
    uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf)
        return fsm_fail(m, -ENOMEM, "out of memory for %lld bytes of device state",
                        (long long)st.st_size);
    ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
    if (n != st.st_size || !dm_state_is_qemu(buf, (size_t)n)) {
        free(buf);
        return fsm_fail(m, -EPROTO, "device model of domain %u: its saved state is not a QEMU "
                        "savevm image (%zd bytes read, no QEVM magic)", t->domid, n);
    }
    t->state = buf;
    t->state_len = (size_t)n;
    return 0;
}

static int dm_check_incoming(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    intptr_t verdict = (intptr_t)ev->arg;
    if (verdict > 0) {
        fsm_post(m, DEVMODEL_E_LOADED, 0, NULL);
        return 0;
    }
    if (verdict < 0) {
        char said[900];
        log_words(t, said, sizeof(said));
        return fsm_fail(m, -EPROTO, "device model of domain %u did not load the restored device "
                        "state: its status is \"%s\", not paused%s", t->domid, t->status, said);
    }
    if (t->status_queries >= DM_MAX_STATUS_QUERIES)
        return fsm_fail(m, -ETIMEDOUT, "device model of domain %u is still loading the restored "
                        "device state after %u status queries", t->domid, t->status_queries);
    return dm_query_status(m, ev);
}

static int dm_cont(struct fsm *m, const struct fsm_ev *ev)
{
    return exec(m->owner, "cont", NULL, on_continued);
}

static int dm_qmp_error(struct fsm *m, const struct fsm_ev *ev)
{
    struct dm_task *t = m->owner;
    int rc = ev->rc;
    bool died = rc == -ECONNRESET || rc == -ENOENT || rc == -ECONNREFUSED || rc == -EPIPE;
    char said[900];
    log_words(t, said, sizeof(said));   /* now: the teardown may remove its directory */
    if (died)
        return fsm_fail(m, rc, "device model of domain %u died: %s failed: %s%s", t->domid, t->cmd,
                        t->qmp_err.msg[0] ? t->qmp_err.msg : strerror(-rc), said);
    return fsm_fail(m, rc, "device model of domain %u: %s failed: %s%s", t->domid, t->cmd,
                    t->qmp_err.msg[0] ? t->qmp_err.msg : strerror(-rc), said);
}
