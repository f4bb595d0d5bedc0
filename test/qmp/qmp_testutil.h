/* test/qmp/qmp_testutil.h - a uv loop with an fsm scheduler, a connection
 * driven to completion, and a scripted fake QMP peer served from a thread. */
#ifndef LOCKSTEP_TEST_QMP_TESTUTIL_H
#define LOCKSTEP_TEST_QMP_TESTUTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "qmp/qmp.h"

struct tloop {
    uv_loop_t loop;
    struct io_sched sched;
    int fds_at_start;
};

void tloop_init(struct tloop *l);
/* Run the loop until *flag or ms elapsed; returns *flag. */
/* How long a test waits for what must happen before calling it a hang: a
 * cap, never a timing assertion (a flag set sooner returns at once), and
 * generous, since a loaded machine (make test's other tests beside this
 * one) can starve a test for seconds: the 64 MiB line took over 10 s at
 * load 12 with test_qmp_rows running beside it. */
#define TEST_HANG_MS 60000
bool tloop_run_until(struct tloop *l, const bool *flag, int ms);
/* Close the scheduler, drain the loop; returns uv_loop_close()'s result. */
int tloop_fini(struct tloop *l);
int count_open_fds(void);

/* A connection with its ready/done outcome recorded. */
struct tconn {
    struct qmp_conn *c;
    bool ready, done;
    int done_calls;
    int done_rc;
    char done_msg[LS_ERRBUF_LEN];
    char version[32];
};

/* Open (unix) with retry_connect; the setup deadline is setup_ms. */
int tconn_open(struct tconn *t, struct tloop *l, const char *path, unsigned setup_ms);
int tconn_open_opts(struct tconn *t, struct tloop *l, const char *path,
                    struct qmp_conn_opts *o);
/* Close if not done, run until done (5 s); returns done. */
bool tconn_close(struct tconn *t, struct tloop *l);

/* One command's outcome, copied out of the callback. */
struct treply {
    bool called;
    int calls;
    int rc;
    uint64_t id;
    char err_class[64];
    char err_desc[512];
    char msg[LS_ERRBUF_LEN];
    char ret_json[4096];   /* the "return" re-generated as JSON (truncated) */
    size_t ret_array_len;  /* when "return" is an array */
    long long fdset_id, fd;
    char str[256];         /* a string member picked by the test: see tr_pick */
    const char *pick;      /* member of "return" to copy into str */
};
qmp_reply_fn treply_cb;

/* Serialise a yajl_val (tests only; not the client's generator). */
void val_to_json(yajl_val v, char *buf, size_t cap);

/* ---- the fake peer ------------------------------------------------------------ */

struct fake_peer;
typedef void fake_script_fn(struct fake_peer *p, int fd);

struct fake_peer {
    char dir[32];
    char path[64];
    int lfd;
    pthread_t th;
    fake_script_fn *script;
    void *arg;
    /* what the script saw */
    char last_cmd[8192];    /* the last command (JSON object) received */
    size_t bytes_sent;
    int send_errno;         /* errno of the write that failed, if any */
    bool saw_eof;
    char rbuf[65536];
    size_t rlen;
};

/* Listen in a fresh temp dir and serve one connection with script. */
int fake_peer_start(struct fake_peer *p, fake_script_fn *script, void *arg);
/* Join the thread (it ends on the client's EOF) and remove the dir. */
void fake_peer_stop(struct fake_peer *p);

/* Script helpers: all bounded by a 10 s poll. */
int fp_send(struct fake_peer *p, int fd, const char *s);
int fp_send_bytes(struct fake_peer *p, int fd, const void *buf, size_t n);
int fp_send_bytewise(struct fake_peer *p, int fd, const char *s, unsigned delay_us);
/* Read one command (a JSON object); returns its "id" (>= 0), -1 on
 * EOF/timeout/parse error. */
long long fp_read_cmd(struct fake_peer *p, int fd);
/* Read and discard until EOF. */
void fp_drain(struct fake_peer *p, int fd);
/* Greeting, then answer qmp_capabilities. */
int fp_handshake(struct fake_peer *p, int fd);
/* A well-behaved peer: handshake, then {"return": {"ok": true}} to everything. */
fake_script_fn fp_script_good;

/* Connect to a good fake peer on l, run one command, close: proves the loop
 * still works after a hostile scenario. Returns true on success. */
bool good_roundtrip(struct tloop *l);

#endif
