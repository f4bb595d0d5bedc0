/* test/fakes/qmp_peer_fake.c - the scripted QEMU (see qmp_peer_fake.h). */
#include "test/fakes/qmp_peer_fake.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " \
                 "\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* The process's listener: its dir, its socket, whether a death unlinked it. */
static char l_dir[32], l_path[64];
static int l_fd = -1;
static bool l_gone;

static void remove_listener(void)
{
    if (l_fd >= 0)
        close(l_fd);
    l_fd = -1;
    unlink(l_path);
    rmdir(l_dir);
}

int qmp_peer_prepare(void)
{
    if (l_fd >= 0 && !l_gone)
        return 0;
    if (!l_dir[0]) {
        snprintf(l_dir, sizeof(l_dir), "/tmp/lsqp.XXXXXX");
        if (!mkdtemp(l_dir)) {
            l_dir[0] = '\0';
            return -errno;
        }
        snprintf(l_path, sizeof(l_path), "%s/qmp.sock", l_dir);
        atexit(remove_listener);
    }
    if (l_fd >= 0)
        close(l_fd);
    unlink(l_path);
    l_gone = false;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    memcpy(sun.sun_path, l_path, strlen(l_path) + 1);
    l_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l_fd < 0 || bind(l_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(l_fd, QP_MAX_CONNS) < 0) {
        int rc = -errno;
        if (l_fd >= 0)
            close(l_fd);
        l_fd = -1;
        return rc;
    }
    return 0;
}

int qmp_peer_open(struct qmp_peer *p, struct fake_backend *fb, const char *status)
{
    memset(p, 0, sizeof(*p));
    p->fdset_fd = -1;
    for (int i = 0; i < QP_MAX_CONNS; i++)
        p->conn[i].fd = p->conn[i].held_fd = -1;
    p->fb = fb;
    snprintf(p->status, sizeof(p->status), "%s", status);
    int rc = qmp_peer_prepare();
    if (rc < 0)
        return rc;
    p->lfd = l_fd;
    snprintf(p->path, sizeof(p->path), "%s", l_path);
    return 0;
}

static void conn_close(struct qp_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->held_fd >= 0)
        close(c->held_fd);
    c->held_fd = -1;
}

void qmp_peer_close(struct qmp_peer *p)
{
    for (int i = 0; i < QP_MAX_CONNS; i++)
        conn_close(&p->conn[i]);
    if (p->fdset_fd >= 0)
        close(p->fdset_fd);
    p->fdset_fd = -1;
    /* connections still in the backlog would be the next run's */
    int fd;
    while (l_fd >= 0 && (fd = accept4(l_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(fd);
    p->lfd = -1;
}

void qmp_peer_kill(struct qmp_peer *p)
{
    p->dead = true;
    for (int i = 0; i < QP_MAX_CONNS; i++)
        conn_close(&p->conn[i]);
    /* its socket is gone (a connect says ENOENT); the fd stays open until
     * the next run's qmp_peer_prepare, so this run's count of fds is not
     * off by it */
    unlink(p->path);
    l_gone = true;
    p->lfd = -1;
}

static void say(struct qp_conn *c, const char *s, size_t len)
{
    /* The client reads as fast as it can and replies are small: a full
     * socket buffer here is a test bug. */
    if (send(c->fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
        conn_close(c);
}

/* Answer with the point's script: ok (reply as given), fail (an error),
 * never (silence from now on), close (half the reply, then hang up). */
static enum fb_answer answer(struct qmp_peer *p, struct qp_conn *c, const char *what,
                             const char *reply, long long id)
{
    char name[64], buf[512];
    snprintf(name, sizeof(name), "qmp.%s", what);
    enum fb_answer a = fake_backend_peer_point(p->fb, name);
    if (a == FB_NEVER) {
        p->hung = true;
        return a;
    }
    if (a == FB_FAIL && id < 0) {   /* the greeting: refused by closing */
        conn_close(c);
        return a;
    }
    if (a == FB_GARBAGE) {
        say(c, "}{\r\n", 4);
        return a;
    }
    int n;
    if (a == FB_FAIL)
        n = snprintf(buf, sizeof(buf), "{\"id\": %lld, \"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"scripted failure of %s\"}}\r\n", id, what);
    else if (id < 0)
        n = snprintf(buf, sizeof(buf), "%s", reply);
    else
        n = snprintf(buf, sizeof(buf), "{\"return\": %s, \"id\": %lld}\r\n", reply, id);
    if (a == FB_CLOSE) {
        say(c, buf, (size_t)n / 2);
        qmp_peer_kill(p);
        return a;
    }
    say(c, buf, (size_t)n);
    p->cmds++;
    return a;
}

static bool arg_bool(yajl_val v, const char *name)
{
    const char *path[] = { "arguments", name, NULL };
    return YAJL_IS_TRUE(yajl_tree_get(v, path, yajl_t_any));
}

static const char *arg_str(yajl_val v, const char *name)
{
    const char *path[] = { "arguments", name, NULL };
    yajl_val s = yajl_tree_get(v, path, yajl_t_string);
    return s ? YAJL_GET_STRING(s) : "";
}

/* Block replication (states/colo_disk.def): the commands QEMU 7.2 takes
 * for it, each a point; what an answered one did is kept in p->repl. */
static bool replication_command(struct qmp_peer *p, struct qp_conn *c, const char *cmd,
                                yajl_val v, long long id)
{
    struct qp_repl *r = &p->repl;
    char reply[512];
    if (strcmp(cmd, "query-block") == 0) {
        size_t u = (size_t)snprintf(reply, sizeof(reply), "[");
        for (unsigned n = 0; n < r->ndisks && u < sizeof(reply); n++)
            u += (size_t)snprintf(reply + u, sizeof(reply) - u, "%s{\"device\": \"lsdisk%u\", "
                                  "\"inserted\": {\"image\": {\"virtual-size\": 1048576}}}",
                                  n ? ", " : "", n);
        snprintf(reply + u, sizeof(reply) - u, "]");
        answer(p, c, cmd, reply, id);
    } else if (strcmp(cmd, "human-monitor-command") == 0) {
        const char *line = arg_str(v, "command-line");
        bool add = strncmp(line, "drive_add", 9) == 0;
        if (answer(p, c, cmd, add ? "\"OK\\r\\n\"" : "\"\"", id) != FB_OK)
            return true;
        if (add && strstr(line, "mode=secondary"))
            r->tops++;
        else if (add)
            r->clients++;
        else if (strncmp(line, "drive_del", 9) == 0)
            r->clients--;
    } else if (strcmp(cmd, "nbd-server-start") == 0) {
        if (answer(p, c, cmd, "{}", id) == FB_OK)
            r->nbd_server = true;
    } else if (strcmp(cmd, "nbd-server-add") == 0) {
        if (answer(p, c, cmd, "{}", id) == FB_OK)
            r->exports++;
    } else if (strcmp(cmd, "nbd-server-stop") == 0) {
        if (answer(p, c, cmd, "{}", id) == FB_OK) {
            r->nbd_server = false;
            r->exports = 0;
        }
    } else if (strcmp(cmd, "x-blockdev-change") == 0) {
        bool attach = arg_str(v, "node")[0] != '\0';
        if (answer(p, c, cmd, "{}", id) == FB_OK)
            r->attached += attach ? 1 : -1;
    } else if (strcmp(cmd, "xen-set-replication") == 0) {
        if (answer(p, c, cmd, "{}", id) != FB_OK)
            return true;
        r->enabled = arg_bool(v, "enable");
        r->primary = arg_bool(v, "primary");
        r->failed_over |= arg_bool(v, "failover");
    } else if (strcmp(cmd, "xen-colo-do-checkpoint") == 0) {
        if (answer(p, c, cmd, "{}", id) == FB_OK)
            r->checkpoints++;
    } else if (strcmp(cmd, "query-xen-replication-status") == 0) {
        answer(p, c, cmd, r->broken ? "{\"error\": true, \"desc\": \"I/O error occurred\"}"
                                    : "{\"error\": false}", id);
    } else {
        return false;
    }
    return true;
}

/* A savevm image as QEMU writes it: magic, version 3, some sections. */
static int write_state(int fd)
{
    static const char img[] = "QEVM\0\0\0\3fake device state of the scripted peer";
    return pwrite(fd, img, sizeof(img), 0) == (ssize_t)sizeof(img) ? 0 : -EIO;
}

/* An fd passed with the bytes waits, as in QEMU's monitor, for the command
 * that takes one: the kernel may hand over a command sent before it in the
 * same read. */
static void command(struct qmp_peer *p, struct qp_conn *c, yajl_val v)
{
    const char *ex_path[] = { "execute", NULL }, *id_path[] = { "id", NULL };
    yajl_val ex = yajl_tree_get(v, ex_path, yajl_t_string);
    yajl_val idv = yajl_tree_get(v, id_path, yajl_t_number);
    const char *cmd = ex ? YAJL_GET_STRING(ex) : "?";
    long long id = idv && YAJL_IS_INTEGER(idv) ? YAJL_GET_INTEGER(idv) : 0;
    size_t used = strlen(p->cmd_log);
    snprintf(p->cmd_log + used, sizeof(p->cmd_log) - used, "%s%s", used ? " " : "", cmd);
    char reply[256];
    if (strcmp(cmd, "add-fd") == 0) {
        int passed_fd = c->held_fd;
        c->held_fd = -1;
        if (passed_fd < 0) {
            snprintf(reply, sizeof(reply), "{\"id\": %lld, \"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"No file descriptor supplied via SCM_RIGHTS\"}}\r\n", id);
            say(c, reply, strlen(reply));
            return;
        }
        if (p->fdset_fd >= 0)
            close(p->fdset_fd);
        p->fdset_fd = passed_fd;
        answer(p, c, cmd, "{\"fdset-id\": 0, \"fd\": 42}", id);
        return;
    }
    if (strcmp(cmd, "query-status") == 0) {
        const char *st = p->status;
        if (strcmp(st, "inmigrate") == 0 && p->inmigrate_queries-- == 0)
            snprintf(p->status, sizeof(p->status), "paused");   /* loaded now */
        snprintf(reply, sizeof(reply), "{\"status\": \"%s\", \"singlestep\": false, "
                 "\"running\": %s}", p->status, strcmp(p->status, "running") ? "false" : "true");
        answer(p, c, cmd, reply, id);
    } else if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "cont") == 0) {
        char was[16];
        snprintf(was, sizeof(was), "%s", p->status);
        snprintf(p->status, sizeof(p->status), "%s", cmd[0] == 's' ? "paused" : "running");
        answer(p, c, cmd, "{}", id);
        if (p->hung)   /* it never got to run it */
            snprintf(p->status, sizeof(p->status), "%s", was);
    } else if (strcmp(cmd, "xen-save-devices-state") == 0) {
        if (p->fdset_fd < 0 || write_state(p->fdset_fd) < 0) {
            snprintf(reply, sizeof(reply), "{\"id\": %lld, \"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"Could not open '/dev/fdset/0'\"}}\r\n", id);
            say(c, reply, strlen(reply));
            return;
        }
        answer(p, c, cmd, "{}", id);
    } else if (strcmp(cmd, "remove-fd") == 0) {
        if (p->fdset_fd >= 0)
            close(p->fdset_fd);
        p->fdset_fd = -1;
        answer(p, c, cmd, "{}", id);
    } else if (strcmp(cmd, "qmp_capabilities") == 0) {
        answer(p, c, cmd, "{}", id);
    } else if (!replication_command(p, c, cmd, v, id)) {
        snprintf(reply, sizeof(reply), "{\"id\": %lld, \"error\": {\"class\": \"CommandNotFound\", "
                 "\"desc\": \"The command %s has not been found\"}}\r\n", id, cmd);
        say(c, reply, strlen(reply));
    }
}

/* Read what is there (an fd passed with it kept); false at EOF or error. */
static bool conn_read(struct qp_conn *c, int *passed_fd, bool *moved)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { c->in + c->inlen, sizeof(c->in) - c->inlen - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf) };
    ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    *moved = true;
    if (n == 0)
        return false;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
        if (*passed_fd >= 0)
            close(*passed_fd);
        memcpy(passed_fd, CMSG_DATA(cm), sizeof(int));
    }
    c->inlen += (size_t)n;
    return true;
}

/* The end of the first whole JSON object in c->in, or 0. */
static size_t object_end(const struct qp_conn *c)
{
    int depth = 0;
    bool str = false, esc = false;
    for (size_t i = 0; i < c->inlen; i++) {
        char ch = c->in[i];
        if (str) {
            esc = !esc && ch == '\\';
            if (ch == '"' && !esc)
                str = false;
            continue;
        }
        if (ch == '"')
            str = true;
        else if (ch == '{')
            depth++;
        else if (ch == '}' && --depth == 0)
            return i + 1;
    }
    return 0;
}

static bool serve(struct qmp_peer *p, struct qp_conn *c)
{
    bool moved = false;
    if (!c->greeted && !p->hung) {
        c->greeted = true;
        moved = true;
        answer(p, c, "greeting", GREETING, -1);
        if (c->fd < 0 || p->hung)
            return true;
    }
    bool open = conn_read(c, &c->held_fd, &moved);
    if (p->hung)
        c->inlen = 0;
    size_t end;
    while (c->fd >= 0 && !p->hung && (end = object_end(c)) > 0) {
        char save = c->in[end];
        c->in[end] = '\0';
        char why[128];
        yajl_val v = yajl_tree_parse(c->in, why, sizeof(why));
        c->in[end] = save;
        memmove(c->in, c->in + end, c->inlen - end);
        c->inlen -= end;
        if (!v) {
            conn_close(c);
            break;
        }
        command(p, c, v);
        yajl_tree_free(v);
    }
    if (!open && c->fd >= 0)
        conn_close(c);   /* the client hung up */
    return moved;
}

bool qmp_peer_step(void *data)
{
    struct qmp_peer *p = data;
    bool moved = false;
    for (int i = 0; i < QP_MAX_CONNS; i++)
        if (p->conn[i].fd >= 0)
            moved |= serve(p, &p->conn[i]);
    for (int i = 0; i < QP_MAX_CONNS && p->lfd >= 0; i++) {
        if (p->conn[i].fd >= 0)
            continue;
        int fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        p->conn[i] = (struct qp_conn){ .fd = fd, .held_fd = -1 };
        p->conns++;
        moved = true;
        serve(p, &p->conn[i]);
    }
    return moved;
}
