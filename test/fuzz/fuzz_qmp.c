/* test/fuzz/fuzz_qmp.c - the QMP client's JSON reader and reply handling.
 *
 * The input is what a hostile QEMU says on the monitor socket, one write per
 * line ('\n' ends a write; the loop runs between writes, so replies can
 * answer commands the client has sent by then). The client connects,
 * negotiates and, before it is ready, queues the commands lockstep's save
 * and restore send (query-status, stop, add-fd with an fd attached, an HMP
 * command); it subscribes to every event. Ids are the smallest free ones:
 * qmp_capabilities is 1, the queued commands 2-5. After the last write the
 * peer closes its side. What must hold: the connection ends with done
 * exactly once, every command's callback runs exactly once, every failure
 * has a reason, and nothing (memory, fds, loop handles) is left. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz/fuzz_common.h"
#include "qmp/qmp.h"

static uv_loop_t loop;
static struct io_sched sched;
static int listen_fd = -1;
static char sock_path[108];

struct run {
    int done_calls;
    int reply_calls[8];
    unsigned events;
};

static char sock_dir[256];

static void remove_socket(void)
{
    unlink(sock_path);
    rmdir(sock_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* A short fixed prefix: socket paths hold 108 bytes. */
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/lockstep-fuzz-qmp-XXXXXX");
    if (!mkdtemp(sock_dir))
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/qmp.sock", sock_dir);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(listen_fd, 4) < 0)
        abort();
    atexit(remove_socket);
    uv_loop_init(&loop);
    io_sched_init(&sched, &loop);
    return 0;
}

static void on_done(struct qmp_conn *c, int rc, const struct ls_errbuf *err, void *data)
{
    struct run *r = data;
    r->done_calls++;
    if (rc < 0 && (!err || !err->msg[0]))
        abort();
}

static void on_reply(struct qmp_conn *c, const struct qmp_reply *rp, void *data)
{
    int *calls = data;
    (*calls)++;
    if (rp->rc < 0 && (!rp->err || !rp->err->msg[0]))
        abort();
    if (rp->rc == 0 && rp->command && strcmp(rp->command, "add-fd") == 0) {
        long long set, fd;
        (void)qmp_reply_add_fd(rp, &set, &fd);
    }
}

static void on_event(struct qmp_conn *c, const struct qmp_event *ev, void *data)
{
    struct run *r = data;
    r->events++;
    if (!ev->name)
        abort();
}

/* Let the client take in what was written and answer it. */
static void settle(void)
{
    for (int i = 0; i < 6; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            settle();
            continue;
        }
        if (w <= 0)
            return;   /* the client closed: the rest is not read */
        p += w;
        n -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds = fuzz_count_fds();
    struct run r = { 0 };
    struct qmp_conn_opts o = {
        .name = "fuzz", .setup_timeout_ms = 2000, .cmd_timeout_ms = 2000,
        .max_msg_bytes = 1u << 16, .done = on_done, .data = &r,
    };
    struct qmp_conn *c;
    if (qmp_conn_open_unix(&sched, sock_path, &o, &c) < 0)
        abort();
    int peer = -1;
    for (int i = 0; i < 1000 && peer < 0; i++) {
        settle();
        peer = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    }
    if (peer < 0)
        abort();
    if (qmp_subscribe(c, "*", on_event, &r) <= 0)
        abort();
    int n = 0;
    if (qmp_exec(c, "query-status", NULL, on_reply, &r.reply_calls[n++]) < 0)
        abort();
    if (qmp_exec(c, "stop", NULL, on_reply, &r.reply_calls[n++]) < 0)
        abort();
    if (qmp_add_fd(c, peer, -1, "fuzz", on_reply, &r.reply_calls[n++]) < 0)
        abort();
    if (qmp_hmp(c, "info status", on_reply, &r.reply_calls[n++]) < 0)
        abort();
    size_t at = 0;
    while (at < size && r.done_calls == 0) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) + 1 : size - at;
        write_all(peer, data + at, len);
        at += len;
        settle();
    }
    shutdown(peer, SHUT_WR);
    for (int i = 0; i < 100000 && r.done_calls == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    close(peer);
    if (r.done_calls != 1) {
        fprintf(stderr, "fuzz_qmp: done called %d times\n", r.done_calls);
        abort();
    }
    for (int i = 0; i < n; i++) {
        if (r.reply_calls[i] != 1) {
            fprintf(stderr, "fuzz_qmp: command %d called back %d times\n", i, r.reply_calls[i]);
            abort();
        }
    }
    settle();
    if (fuzz_count_fds() != fds) {
        fprintf(stderr, "fuzz_qmp: %d fds before, %d after\n", fds, fuzz_count_fds());
        abort();
    }
    return 0;
}
