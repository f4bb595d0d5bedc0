/* test/states/roles.c - save and restore on the fakes, with their invariants. */
#include "test/states/roles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/records.h"
#include "io/stream_format.h"
#include "states/dm_standin.h"
#include "states/migrate.h"
#include "states/restore.h"
#include "states/save.h"

#define SAVE_DOMID 3

/* ---- save ---------------------------------------------------------------- */

/* A save scenario: the guest's type, whether its device model is the
 * scripted QEMU, and the options asked. */
struct save_case {
    enum ls_guest_type type;
    bool qemu;
    struct ls_save_opts opts;
};

static int save_start(struct enum_env *e, const void *arg, struct ls_errbuf *err)
{
    const struct save_case *c = arg;
    if (c->qemu) {
        int rc = enum_use_qemu(e, "running", err);
        if (rc < 0)
            return rc;
    }
    /* the role, started here, runs only once fake_exec_run() does */
    fake_backend_add(&e->fb, SAVE_DOMID, c->type, LS_RUN_RUNNING)->qemu = c->qemu;
    e->fd[0] = memfd_create("enum-save-stream", MFD_CLOEXEC);
    if (e->fd[0] < 0)
        return ls_err(err, -errno, "memfd");
    struct ls_save_opts opts = c->opts;
    opts.domid = SAVE_DOMID;
    opts.fd = e->fd[0];
    return save_role_start(&e->ctx, &opts, enum_on_done, e, &e->op, err);
}

/* A failed save leaves the guest running (or says it could not); a
 * successful one destroys it, keeps it running, or leaves it suspended, as
 * asked; the stream ends with END only when it succeeded. */
static void save_check(struct enum_env *e)
{
    struct save_role *r = (struct save_role *)e->op;
    struct fb_dom *d = fake_backend_dom(&e->fb, SAVE_DOMID);
    if (e->done_rc != 0) {
        if (!d)
            enum_problem(e, "the save failed and its domain is gone");
        else if (d->state != LS_RUN_RUNNING && !strstr(e->done_msg, "could not be resumed"))
            enum_problem(e, "the save failed and left the guest %s (the error does not say "
                         "so)", ls_run_state_name(d->state));
        else if (d->state == LS_RUN_RUNNING && d->resumes != d->suspends)
            enum_problem(e, "the guest was suspended %u times and resumed %u", d->suspends,
                         d->resumes);
        if (!e->done_msg[0])
            enum_problem(e, "the save failed without a reason");
        return;
    }
    if (r->opts.leave_suspended) {
        if (!d || d->state != LS_RUN_SUSPENDED)
            enum_problem(e, "a save asked to leave the guest suspended did not");
    } else if (r->opts.keep_domain) {
        if (!d || d->state != LS_RUN_RUNNING)
            enum_problem(e, "a kept domain is not running after the save");
    } else if (d) {
        enum_problem(e, "the saved domain was not destroyed (it is %s)",
                     ls_run_state_name(d->state));
    }
    off_t end = lseek(e->fd[0], 0, SEEK_END);
    uint8_t last[8], want[8];
    stream_rec_header_encode(want, LIBXL_REC_END, 0);
    if (end < 8 || pread(e->fd[0], last, 8, end - 8) != 8 || memcmp(last, want, 8) != 0)
        enum_problem(e, "the save succeeded but its stream does not end with END");
}

/* As save_check, and the guest's QEMU: a guest that runs after the save has
 * its QEMU running too, unless QEMU hung or died (the error, or a warning
 * if the save itself succeeded, says so); a saved stream carries QEMU's
 * own device state. */
static void save_qemu_check(struct enum_env *e)
{
    save_check(e);
    struct save_role *r = (struct save_role *)e->op;
    struct fb_dom *d = fake_backend_dom(&e->fb, SAVE_DOMID);
    bool qemu_lost = e->qemu.hung || e->qemu.dead || r->dm_cont.m.err.rc || e->injected;
    if (d && d->state == LS_RUN_RUNNING && strcmp(e->qemu.status, "running") != 0 && !qemu_lost)
        enum_problem(e, "the guest runs after the save, but its QEMU is %s", e->qemu.status);
    if (e->done_rc == 0 && !strstr(e->qemu.cmd_log, "xen-save-devices-state"))
        enum_problem(e, "the save succeeded without QEMU's device state");
    /* After a failure QEMU drops the fd itself once no monitor is
     * connected (and it runs); after a success nothing may be left. */
    if (e->done_rc == 0 && e->qemu.fdset_fd >= 0)
        enum_problem(e, "QEMU still holds the fd the save added (no remove-fd)");
}

const struct enum_scenario enum_save_pv = {
    "save/pv", save_start, save_check, 0,
    &(const struct save_case){ LS_GUEST_PV, false, { .format = LS_FORMAT_XL } } };
const struct enum_scenario enum_save_hvm_qemu = {
    "save/hvm-qemu", save_start, save_qemu_check, 4,
    &(const struct save_case){ LS_GUEST_HVM, true, { .format = LS_FORMAT_XL } } };
const struct enum_scenario enum_save_hvm_qemu_keep = {
    "save/hvm-qemu-live-keep", save_start, save_qemu_check, 4,
    &(const struct save_case){ LS_GUEST_HVM, true, { .format = LS_FORMAT_LIBXL, .live = true,
                                                     .keep_domain = true } } };
const struct enum_scenario enum_save_pv_live_keep = {
    "save/pv-live-keep", save_start, save_check, 0,
    &(const struct save_case){ LS_GUEST_PV, false, { .format = LS_FORMAT_LIBXL, .live = true,
                                                     .keep_domain = true } } };
const struct enum_scenario enum_save_hvm_live = {
    "save/hvm-live", save_start, save_check, 0,
    &(const struct save_case){ LS_GUEST_HVM, false, { .format = LS_FORMAT_XL, .live = true } } };
const struct enum_scenario enum_save_leave_suspended = {
    "save/leave-suspended", save_start, save_check, 0,
    &(const struct save_case){ LS_GUEST_PV, false, { .format = LS_FORMAT_LIBXL,
                                                     .leave_suspended = true } } };

/* ---- restore --------------------------------------------------------------- */

static int write_stream_dm(int fd, const char *config_json, enum ls_guest_type type, bool qemu);

/* [xl header + config] + libxl header + LIBXC_CONTEXT + the fake libxc layer
 * (8 bytes) + [EMULATOR_CONTEXT] + END. */
/* A real QEMU's device state, as the scripted QEMU writes it. */
static const char qevm_image[] = "QEVM\0\0\0\3fake device state of the scripted peer";

static int write_stream(int fd, const char *config_json, enum ls_guest_type type)
{
    return write_stream_dm(fd, config_json, type, false);
}

static int write_stream_dm(int fd, const char *config_json, enum ls_guest_type type, bool qemu)
{
    uint8_t buf[4096];
    size_t len = 0;
    if (config_json) {
        uint8_t *xl;
        size_t xl_len;
        if (xl_header_encode(config_json, &xl, &xl_len) < 0 || xl_len > 1024)
            return -EINVAL;
        memcpy(buf, xl, xl_len);
        len = xl_len;
        free(xl);
    }
    libxl_header_encode(buf + len);
    len += 16;
    stream_rec_header_encode(buf + len, LIBXL_REC_LIBXC_CONTEXT, 0);
    len += 8;
    memset(buf + len, 0, 8);
    len += 8;
    if (type == LS_GUEST_HVM) {
        struct ls_domain_info info = { .domid = 1, .type = LS_GUEST_HVM, .vcpus = 1 };
        uint8_t *blob;
        size_t blob_len;
        if (qemu) {
            blob_len = sizeof(qevm_image);
            if (!(blob = malloc(blob_len)))
                return -ENOMEM;
            memcpy(blob, qevm_image, blob_len);
        } else if (dm_standin_save(&info, &blob, &blob_len) < 0 || blob_len > 2048) {
            return -ENOMEM;
        }
        stream_rec_header_encode(buf + len, LIBXL_REC_EMULATOR_CONTEXT,
                                 (uint32_t)(8 + blob_len));
        uint32_t hdr[2] = { LIBXL_EMULATOR_QEMU_UPSTREAM, 0 };
        memcpy(buf + len + 8, hdr, 8);
        memset(buf + len + 16, 0, STREAM_ROUNDUP8(8 + blob_len) - 8);
        memcpy(buf + len + 16, blob, blob_len);
        len += 8 + STREAM_ROUNDUP8(8 + blob_len);
        free(blob);
    }
    stream_rec_header_encode(buf + len, LIBXL_REC_END, 0);
    len += 8;
    if (write(fd, buf, len) != (ssize_t)len)
        return -EIO;
    lseek(fd, 0, SEEK_SET);
    return 0;
}

#define HVM_CONFIG "{\"c_info\":{\"type\":\"hvm\",\"name\":\"g\"}," \
                   "\"b_info\":{\"max_vcpus\":1,\"max_memkb\":65536}}"

/* A restore scenario: the stream's config (NULL: libxl's own format),
 * the guest's type, whether it runs at the end, and a backend call every
 * try of which is refused. */
struct restore_case {
    const char *json;
    enum ls_guest_type type;
    bool unpause;
    const char *refuse;
};

static int restore_start(struct enum_env *e, const void *arg, struct ls_errbuf *err)
{
    const struct restore_case *c = arg;
    e->fb.refuse = c->refuse;
    e->fd[0] = memfd_create("enum-restore-stream", MFD_CLOEXEC);
    if (e->fd[0] < 0)
        return ls_err(err, -errno, "memfd");
    if (write_stream(e->fd[0], c->json, c->type) < 0)
        return ls_err(err, -EIO, "cannot build the stream");
    struct ls_restore_opts opts = { .fd = e->fd[0], .unpause = c->unpause,
                                    .device_model = LS_DM_STANDIN };
    return restore_role_start(&e->ctx, &opts, enum_on_done, e, &e->op, err);
}

/* An HVM stream with a real QEMU's state: the backend starts the scripted
 * QEMU on it (dm_start_incoming), which says "inmigrate" once, then
 * "paused"; the restore checks it and lets it run. */
static int restore_qemu_start(struct enum_env *e, const void *arg, struct ls_errbuf *err)
{
    (void)arg;
    int rc = enum_use_qemu(e, "paused", err);
    if (rc < 0)
        return rc;
    e->fd[0] = memfd_create("enum-restore-stream", MFD_CLOEXEC);
    if (e->fd[0] < 0)
        return ls_err(err, -errno, "memfd");
    if (write_stream_dm(e->fd[0], HVM_CONFIG, LS_GUEST_HVM, true) < 0)
        return ls_err(err, -EIO, "cannot build the stream");
    struct ls_restore_opts opts = { .fd = e->fd[0], .unpause = true,
                                    .device_model = LS_DM_QEMU };
    return restore_role_start(&e->ctx, &opts, enum_on_done, e, &e->op, err);
}

/* A failed restore leaves no domain it created (or says it could not
 * destroy it); a successful one leaves exactly one, restored, running or
 * paused as asked. */
static void restore_check(struct enum_env *e)
{
    struct restore_role *r = (struct restore_role *)e->op;
    unsigned alive = 0;
    struct fb_dom *d = NULL;
    for (unsigned i = 0; i < e->fb.ndom; i++)
        if (e->fb.dom[i].exists && e->fb.dom[i].created_by_restore) {
            alive++;
            d = &e->fb.dom[i];
        }
    if (e->done_rc != 0) {
        if (alive && !strstr(e->done_msg, "could not be destroyed"))
            enum_problem(e, "the restore failed and left domain %u behind (%s)", d->domid,
                         ls_run_state_name(d->state));
        if (!e->done_msg[0])
            enum_problem(e, "the restore failed without a reason");
        return;
    }
    if (alive != 1)
        enum_problem(e, "the restore succeeded with %u domains of its own", alive);
    else if (!d->memory_restored)
        enum_problem(e, "the restore succeeded but the memory task never finished");
    else if (d->state != (r->opts.unpause ? LS_RUN_RUNNING : LS_RUN_PAUSED))
        enum_problem(e, "the restored domain is %s", ls_run_state_name(d->state));
    else if (d->domid != ls_op_domid(e->op))
        enum_problem(e, "the restore reports domain %u, but made %u", ls_op_domid(e->op),
                     d->domid);
}

const struct enum_scenario enum_restore_libxl = {
    "restore/libxl", restore_start, restore_check, 0,
    &(const struct restore_case){ NULL, LS_GUEST_PV, true, NULL } };
const struct enum_scenario enum_restore_xl_hvm = {
    "restore/xl-hvm", restore_start, restore_check, 0,
    &(const struct restore_case){ HVM_CONFIG, LS_GUEST_HVM, true, NULL } };
/* Every destroy refused: a failed restore tries twice, then says so. */
const struct enum_scenario enum_restore_destroy_refused = {
    "restore/destroy-refused", restore_start, restore_check, 0,
    &(const struct restore_case){ NULL, LS_GUEST_PV, true, "destroy" } };
const struct enum_scenario enum_restore_paused = {
    "restore/paused", restore_start, restore_check, 0,
    &(const struct restore_case){ NULL, LS_GUEST_PV, false, NULL } };

/* As restore_check, and its QEMU: a restored guest that runs has a QEMU
 * that loaded the state and runs. */
static void restore_qemu_check(struct enum_env *e)
{
    restore_check(e);
    if (e->done_rc == 0 && strcmp(e->qemu.status, "running") != 0)
        enum_problem(e, "the restored guest runs, but its QEMU is %s", e->qemu.status);
    if (e->done_rc == 0 && !strstr(e->qemu.cmd_log, "query-status"))
        enum_problem(e, "the restore never checked that QEMU loaded the state");
}

const struct enum_scenario enum_restore_hvm_qemu = { "restore/hvm-qemu", restore_qemu_start,
                                                     restore_qemu_check, 4, NULL };

/* ---- migrate_send ------------------------------------------------------------ */

/* The receiver, scripted: what it writes on the back channel before it
 * hangs up (a pipe, its write end closed: a shorter script is a receiver
 * that died there). */
enum mig_peer { PEER_OK, PEER_COPY_FAILED, PEER_NO_REPORT, PEER_NO_RECEIVED, PEER_NO_BANNER };

/* A migration scenario: the receiver's script, an HVM guest whose device
 * model is the scripted QEMU, and a backend call every try of which is
 * refused. */
struct mig_case {
    enum mig_peer peer;
    bool qemu;
    const char *refuse;
};

static int mig_send_start(struct enum_env *e, const void *arg, struct ls_errbuf *err)
{
    const struct mig_case *c = arg;
    enum mig_peer peer = c->peer;
    if (c->qemu) {
        int rc = enum_use_qemu(e, "running", err);
        if (rc < 0)
            return rc;
    }
    e->fb.refuse = c->refuse;
    fake_backend_add(&e->fb, SAVE_DOMID, c->qemu ? LS_GUEST_HVM : LS_GUEST_PV,
                     LS_RUN_RUNNING)->qemu = c->qemu;
    int p[2];
    e->fd[0] = memfd_create("enum-migrate-stream", MFD_CLOEXEC);
    if (e->fd[0] < 0 || pipe2(p, O_CLOEXEC) < 0)
        return ls_err(err, -errno, "memfd or pipe");
    e->fd[1] = p[0];
    char script[512];
    size_t n = 0;
    if (peer != PEER_NO_BANNER) {
        memcpy(script + n, MIG_BANNER, MIG_BANNER_LEN);
        n += MIG_BANNER_LEN;
    }
    if (peer <= PEER_NO_REPORT) {
        memcpy(script + n, MIG_RECEIVED, MIG_RECEIVED_LEN);
        n += MIG_RECEIVED_LEN;
    }
    if (peer <= PEER_COPY_FAILED) {
        memcpy(script + n, MIG_REPORT, MIG_REPORT_LEN);
        n += MIG_REPORT_LEN;
        script[n++] = peer == PEER_OK ? 0 : 1;
    }
    if (peer == PEER_COPY_FAILED) {
        memcpy(script + n, MIG_GO, MIG_GO_LEN);   /* its leave to resume */
        n += MIG_GO_LEN;
    }
    ssize_t w = write(p[1], script, n);
    close(p[1]);
    if (w != (ssize_t)n)
        return ls_err(err, -EIO, "writing the receiver's script");
    e->peer = peer;
    struct ls_migrate_opts o = { .domid = SAVE_DOMID, .send_fd = e->fd[0], .recv_fd = e->fd[1],
                                 .timeout_ms = 5000 };
    return ls_migrate_start(&e->ctx, &o, enum_on_done, e, &e->op, err);
}

/* Did the go-ahead go out (the last bytes on the stream's fd)? */
static bool go_written(int fd)
{
    char tail[MIG_GO_LEN];
    off_t end = lseek(fd, 0, SEEK_END);
    return end >= (off_t)MIG_GO_LEN && pread(fd, tail, MIG_GO_LEN, end - (off_t)MIG_GO_LEN) ==
                                           (ssize_t)MIG_GO_LEN &&
           memcmp(tail, MIG_GO, MIG_GO_LEN) == 0;
}

/* Never two running copies, never none: the scripted receiver runs its copy
 * once it has the go-ahead and reported success (PEER_OK), maybe when it
 * died before its report (PEER_NO_REPORT: ours then stays suspended), and
 * never otherwise. The outcome reported is what happened. */
static void mig_send_check(struct enum_env *e)
{
    struct fb_dom *d = fake_backend_dom(&e->fb, SAVE_DOMID);
    bool go = go_written(e->fd[0]);
    bool ours_runs = d && d->state == LS_RUN_RUNNING;
    bool cannot_resume = strstr(e->done_msg, "could not be resumed") != NULL;
    enum ls_migrate_outcome o = ls_op_migrate_outcome(e->op);
    /* A guard left armed after a failure whose release failed too is
     * harmless (it resumes a guest that runs); after a success it is not. */
    if (d && d->guard != LS_GUARD_NONE && e->done_rc == 0)
        enum_problem(e, "the source's guard is still armed after the migration succeeded");
    /* An outcome that says our copy is left suspended tells the user so
     * (a resume that could not even be started: UNCONFIRMED is then too
     * strong a word, but no copy is lost or doubled). */
    bool told_suspended = o == LS_MIGRATE_UNCONFIRMED || o == LS_MIGRATE_SOURCE_SUSPENDED;
    if (!go) {
        if (!ours_runs && !cannot_resume && !(d && told_suspended))
            enum_problem(e, "no go-ahead was given, and the source copy is %s",
                         d ? ls_run_state_name(d->state) : "gone: no copy runs anywhere");
    } else if (e->peer == PEER_OK) {
        if (ours_runs)
            enum_problem(e, "two running copies: the receiver runs the guest and so does the "
                         "source");
    } else if (e->peer == PEER_COPY_FAILED) {
        if (!d)
            enum_problem(e, "no copy runs: the receiver's did not start and ours is destroyed");
    } else if (!d || ours_runs) {
        enum_problem(e, "the receiver died after the go-ahead, and the source copy is %s",
                     d ? "running: it may run twice" : "destroyed: it may run nowhere");
    }
    if ((o == LS_MIGRATE_DESTINATION_RUNS) != (go && e->peer == PEER_OK && !d && e->done_rc == 0))
        enum_problem(e, "the outcome says \"%s\"", ls_migrate_outcome_text(o));
    if (o == LS_MIGRATE_SOURCE_RUNS && !ours_runs)
        enum_problem(e, "the outcome says the guest runs at the source, but it is %s",
                     d ? ls_run_state_name(d->state) : "gone");
}

static void mig_resume_refused_check(struct enum_env *e)
{
    mig_send_check(e);
    struct fb_dom *d = fake_backend_dom(&e->fb, SAVE_DOMID);
    enum ls_migrate_outcome o = ls_op_migrate_outcome(e->op);
    if (d && d->state == LS_RUN_SUSPENDED && e->done_rc == 0)
        enum_problem(e, "the migration succeeded with our copy suspended");
    if (d && d->state == LS_RUN_SUSPENDED && o == LS_MIGRATE_SOURCE_RUNS)
        enum_problem(e, "the outcome says the guest runs at the source; it is suspended");
}

/* The receiver's copy failed, and our guest cannot be resumed at all: the
 * settle finds it suspended, tries again, and the outcome says where it is. */
const struct enum_scenario enum_mig_resume_refused = {
    "migrate_send/resume-refused", mig_send_start, mig_resume_refused_check, 0,
    &(const struct mig_case){ PEER_COPY_FAILED, false, "resume" } };

static void mig_send_qemu_check(struct enum_env *e)
{
    mig_send_check(e);
    struct migrate_send_role *r = (struct migrate_send_role *)e->op;
    struct fb_dom *d = fake_backend_dom(&e->fb, SAVE_DOMID);
    bool qemu_lost = e->qemu.hung || e->qemu.dead || r->dm_cont.m.err.rc || e->injected;
    if (d && d->state == LS_RUN_RUNNING && strcmp(e->qemu.status, "running") != 0 && !qemu_lost)
        enum_problem(e, "our copy runs again, but its QEMU is %s", e->qemu.status);
}

/* An HVM guest with a QEMU whose receiver's copy failed: ours resumes, and
 * its QEMU, stopped by the save, runs again (CONTINUING_DM). */
const struct enum_scenario enum_mig_hvm_qemu = {
    "migrate_send/hvm-qemu-copy-failed", mig_send_start, mig_send_qemu_check, 4,
    &(const struct mig_case){ PEER_COPY_FAILED, true, NULL } };
const struct enum_scenario enum_mig_hvm_qemu_ok = {
    "migrate_send/hvm-qemu-ok", mig_send_start, mig_send_qemu_check, 4,
    &(const struct mig_case){ PEER_OK, true, NULL } };
const struct enum_scenario enum_mig_ok = { "migrate_send/ok", mig_send_start, mig_send_check, 0,
                                           &(const struct mig_case){ PEER_OK, false, NULL } };
const struct enum_scenario enum_mig_copy_failed = {
    "migrate_send/copy-failed", mig_send_start, mig_send_check, 0,
    &(const struct mig_case){ PEER_COPY_FAILED, false, NULL } };
const struct enum_scenario enum_mig_no_report = {
    "migrate_send/no-report", mig_send_start, mig_send_check, 0,
    &(const struct mig_case){ PEER_NO_REPORT, false, NULL } };
const struct enum_scenario enum_mig_no_received = {
    "migrate_send/no-received", mig_send_start, mig_send_check, 0,
    &(const struct mig_case){ PEER_NO_RECEIVED, false, NULL } };
const struct enum_scenario enum_mig_no_banner = {
    "migrate_send/no-banner", mig_send_start, mig_send_check, 0,
    &(const struct mig_case){ PEER_NO_BANNER, false, NULL } };

/* ---- migrate_receive ---------------------------------------------------------- */

/* The sender, scripted: the stream on recv_fd, then what it sends after our
 * confirmation (a pipe whose write end is closed: a shorter script is a
 * sender that died there). Our banner, confirmation and report go to a
 * memfd (send_fd) the check reads back. */
enum rcv_peer { SENDER_GO, SENDER_NO_GO, SENDER_WRONG_GO, SENDER_CUT_STREAM, SENDER_DEAF };

/* SENDER_DEAF: the back channel is a pipe with room for the banner and the
 * confirmation only, so the report stalls (the 1 ms limit) and is lost. */
#define DEAF_ROOM (MIG_BANNER_LEN + MIG_RECEIVED_LEN)

/* A receive scenario: the sender's script, and whether we leave our copy
 * paused. */
struct rcv_case {
    enum rcv_peer peer;
    bool paused;
};

static int mig_rcv_start(struct enum_env *e, const void *arg, struct ls_errbuf *err)
{
    const struct rcv_case *c = arg;
    enum rcv_peer peer = c->peer;
    bool paused = c->paused;
    int p[2];
    e->fd[0] = memfd_create("enum-receive-script", MFD_CLOEXEC);
    e->fd[1] = memfd_create("enum-receive-back", MFD_CLOEXEC);
    if (e->fd[0] < 0 || e->fd[1] < 0 || pipe2(p, O_CLOEXEC) < 0)
        return ls_err(err, -errno, "memfd or pipe");
    e->fd[2] = p[0];
    int send_fd = e->fd[1];
    if (peer == SENDER_DEAF) {
        int q[2];
        if (pipe2(q, O_CLOEXEC) < 0)
            return ls_err(err, -errno, "pipe");
        e->fd[3] = q[1];
        send_fd = q[1];
        /* the pipe's read end becomes fd[1], read back by the check */
        close(e->fd[1]);
        e->fd[1] = q[0];
        int size = fcntl(q[1], F_SETPIPE_SZ, 4096);
        char fill[4096];
        memset(fill, '.', sizeof(fill));
        if (size != 4096 || write(q[1], fill, 4096 - DEAF_ROOM) != (ssize_t)(4096 - DEAF_ROOM))
            return ls_err(err, -EIO, "cannot fill the back channel");
    }
    if (write_stream(e->fd[0], NULL, LS_GUEST_PV) < 0)
        return ls_err(err, -EIO, "cannot build the stream");
    char script[4096];
    ssize_t n = read(e->fd[0], script, sizeof(script) - MIG_GO_LEN);
    if (n < 16)
        return ls_err(err, -EIO, "cannot read the stream back");
    if (peer == SENDER_CUT_STREAM)
        n -= 8;   /* no END record: the sender died mid-stream */
    if (peer == SENDER_GO || peer == SENDER_WRONG_GO || peer == SENDER_DEAF) {
        memcpy(script + n, MIG_GO, MIG_GO_LEN);
        if (peer == SENDER_WRONG_GO)
            script[n] = 'D';
        n += (ssize_t)MIG_GO_LEN;
    }
    ssize_t w = write(p[1], script, (size_t)n);
    close(p[1]);
    if (w != n)
        return ls_err(err, -EIO, "writing the sender's script");
    e->peer = peer;
    struct ls_migrate_receive_opts o = { .recv_fd = e->fd[2], .send_fd = send_fd,
                                         .timeout_ms = peer == SENDER_DEAF ? 1 : 5000,
                                         .paused = paused };
    return ls_migrate_receive_start(&e->ctx, &o, enum_on_done, e, &e->op, err);
}

/* What we wrote to the sender, in order: banner, confirmation, report with
 * its status byte, leave to resume. */
struct rcv_said {
    bool banner, received, report, go;
    uint8_t status;
};

static struct rcv_said rcv_said(int fd, bool deaf)
{
    struct rcv_said s = { 0 };
    char buf[4096 + 512];
    ssize_t n = deaf ? read(fd, buf, sizeof(buf)) : pread(fd, buf, sizeof(buf), 0);
    size_t at = deaf ? 4096 - DEAF_ROOM : 0, len = n > 0 ? (size_t)n : 0;
    if (at > len)
        return s;
#define SAID(field, msg, mlen)                                                       \
    if (len - at >= (mlen) && memcmp(buf + at, msg, mlen) == 0) {                   \
        s.field = true;                                                              \
        at += (mlen);                                                                \
    }
    SAID(banner, MIG_BANNER, MIG_BANNER_LEN)
    SAID(received, MIG_RECEIVED, MIG_RECEIVED_LEN)
    if (len - at > MIG_REPORT_LEN && memcmp(buf + at, MIG_REPORT, MIG_REPORT_LEN) == 0) {
        s.report = true;
        s.status = (uint8_t)buf[at + MIG_REPORT_LEN];
        at += MIG_REPORT_LEN + 1;
    }
    SAID(go, MIG_GO, MIG_GO_LEN)
#undef SAID
    return s;
}

/* Never two running copies, never none: our copy runs only after the
 * sender's go-ahead (SENDER_GO), and then the sender is told (a report with
 * status 0) or the outcome says it was not; when our copy does not run
 * after a go-ahead, the sender gets a failure report and its leave to
 * resume. Every path that does not start our copy destroys it. */
static void mig_rcv_check(struct enum_env *e)
{
    struct migrate_receive_role *r = (struct migrate_receive_role *)e->op;
    unsigned alive = 0, running = 0;
    struct fb_dom *d = NULL;
    for (unsigned i = 0; i < e->fb.ndom; i++)
        if (e->fb.dom[i].exists && e->fb.dom[i].created_by_restore) {
            alive++;
            d = &e->fb.dom[i];
            running += d->state == LS_RUN_RUNNING;
        }
    struct rcv_said said = rcv_said(e->fd[1], e->peer == SENDER_DEAF);
    enum ls_migrate_outcome o = ls_op_migrate_outcome(e->op);
    bool could_not_destroy = strstr(e->done_msg, "could not be destroyed") != NULL;
    if (alive > 1)
        enum_problem(e, "%u domains of the receiver's own exist", alive);
    if (said.received && !said.banner)
        enum_problem(e, "the confirmation went out without the banner");
    bool runs_here = o == LS_MIGRATE_DESTINATION_RUNS || o == LS_MIGRATE_RUNS_UNCONFIRMED;
    if (e->peer != SENDER_GO && e->peer != SENDER_DEAF && running)
        enum_problem(e, "no go-ahead came, and our copy runs");
    if (alive && !runs_here && !could_not_destroy)
        enum_problem(e, "the receive failed and left domain %u behind (%s)", d->domid,
                     ls_run_state_name(d->state));
    /* A guest we started is destroyed only after the sender heard of it
     * (a failure report, then its leave to resume): else no copy would run
     * (the sender's waits, suspended, for a report). A dead back channel
     * (SENDER_DEAF) is the one way to lose both. */
    for (unsigned i = 0; i < e->fb.ndom; i++)
        if (!e->fb.dom[i].exists && e->fb.dom[i].created_by_restore && e->fb.dom[i].unpauses &&
            !said.report && e->peer != SENDER_DEAF)
            enum_problem(e, "our copy was started after the go-ahead, then destroyed without a "
                         "word to the sender: no copy runs");
    if (runs_here) {
        if (alive != 1 || (!r->opts.paused && !running) || d->guard != LS_GUARD_NONE)
            enum_problem(e, "the outcome says the guest runs here, but our copy is %s",
                         d ? ls_run_state_name(d->state) : "gone");
        if (o == LS_MIGRATE_DESTINATION_RUNS && (!said.report || said.status != 0))
            enum_problem(e, "our copy runs but the sender was not told so");
        if (e->done_rc == 0 && o != LS_MIGRATE_DESTINATION_RUNS)
            enum_problem(e, "the receive succeeded and the outcome says \"%s\"",
                         ls_migrate_outcome_text(o));
        return;
    }
    if (e->done_rc == 0)
        enum_problem(e, "the receive succeeded but no copy runs here");
    if (said.report && said.status == 0)
        enum_problem(e, "the sender was told our copy runs, but the receive failed");
    if (o != LS_MIGRATE_NOT_RECEIVED)
        enum_problem(e, "the receive failed and the outcome says \"%s\"",
                     ls_migrate_outcome_text(o));
    if (!e->done_msg[0])
        enum_problem(e, "the receive failed without a reason");
}

const struct enum_scenario enum_rcv_go = { "migrate_receive/go", mig_rcv_start, mig_rcv_check, 0,
                                           &(const struct rcv_case){ SENDER_GO, false } };
const struct enum_scenario enum_rcv_go_paused = { "migrate_receive/go-paused", mig_rcv_start,
                                                  mig_rcv_check, 0,
                                                  &(const struct rcv_case){ SENDER_GO, true } };
const struct enum_scenario enum_rcv_no_go = { "migrate_receive/no-go", mig_rcv_start,
                                              mig_rcv_check, 0,
                                              &(const struct rcv_case){ SENDER_NO_GO, false } };
const struct enum_scenario enum_rcv_wrong_go = {
    "migrate_receive/wrong-go", mig_rcv_start, mig_rcv_check, 0,
    &(const struct rcv_case){ SENDER_WRONG_GO, false } };
const struct enum_scenario enum_rcv_cut = {
    "migrate_receive/cut-stream", mig_rcv_start, mig_rcv_check, 0,
    &(const struct rcv_case){ SENDER_CUT_STREAM, false } };
const struct enum_scenario enum_rcv_deaf = {
    "migrate_receive/report-lost", mig_rcv_start, mig_rcv_check, 0,
    &(const struct rcv_case){ SENDER_DEAF, false } };

const struct enum_scenario *const enum_roles[] = {
    &enum_save_pv, &enum_save_pv_live_keep, &enum_save_hvm_live, &enum_save_leave_suspended,
    &enum_save_hvm_qemu, &enum_save_hvm_qemu_keep,
    &enum_restore_libxl, &enum_restore_xl_hvm, &enum_restore_paused, &enum_restore_hvm_qemu,
    &enum_restore_destroy_refused,
    &enum_mig_hvm_qemu, &enum_mig_hvm_qemu_ok,
    &enum_mig_ok, &enum_mig_copy_failed, &enum_mig_no_report, &enum_mig_no_received,
    &enum_mig_no_banner, &enum_mig_resume_refused,
    &enum_rcv_go, &enum_rcv_go_paused, &enum_rcv_no_go, &enum_rcv_wrong_go, &enum_rcv_cut,
    &enum_rcv_deaf,
    &enum_cd_setup_secondary, &enum_cd_setup_primary, &enum_cd_checkpoint, &enum_cd_query,
    &enum_cd_query_broken, &enum_cd_teardown_primary, &enum_cd_teardown_secondary,
    &enum_cd_failover,
    NULL,
};

const char *const enum_machines[] = {
    "save", "stream_tx", "memtask", "restore", "stream_rx", "migrate_send", "migrate_receive",
    "devmodel", "qmp_conn", "colo_disk", NULL,
};

#define TLS_PEER "a TLS handshake: the scripted receiver speaks plain bytes (test/migrate's TLS tests)"
/* devmodel, the client's one user among the roles, connects to a unix path
 * once, closes only with no command in flight and never cancels it; the
 * client driven directly takes the rest (every row, test/qmp/test_qmp_rows). */
#define QMP_API "only the QMP client driven directly (a TCP host, connect retries, a close racing io, fsm_cancel) takes it: test/qmp/test_qmp_rows"
#define COLO_LATER "a checkpointed stream: test_states_enum --colo (the COLO pairs) takes it"
#define DM_LINKED "a job over an owner's kept QMP link: only the COLO roles run them with a real QEMU (test/colo takes these rows)"

const struct enum_deferred enum_deferred[] = {
    { "migrate_send DESTROYING_SOURCE FAIL", "nothing here fails since its outcome actions are FSM_NOFAIL; the fault sweep took it before" },
    { "migrate_send IDLE START_TLS", TLS_PEER },
    { "migrate_send HANDSHAKING HANDSHAKE_OK", TLS_PEER },
    { "migrate_send HANDSHAKING HANDSHAKE_FAILED", TLS_PEER },
    { "migrate_send HANDSHAKING CANCEL", TLS_PEER },
    { "migrate_receive IDLE START_TLS", TLS_PEER },
    { "migrate_receive HANDSHAKING HANDSHAKE_OK", TLS_PEER },
    { "migrate_receive HANDSHAKING HANDSHAKE_FAILED", TLS_PEER },
    { "migrate_receive HANDSHAKING CANCEL", TLS_PEER },
    { "qmp_conn IDLE CLOSE", QMP_API },
    { "qmp_conn CONNECTING RESOLVED", QMP_API },
    { "qmp_conn CONNECTING IO_FAILED", QMP_API },
    { "qmp_conn AWAIT_GREETING IO_FAILED", QMP_API },
    { "qmp_conn NEGOTIATING IO_FAILED", QMP_API },
    { "qmp_conn READY IO_FAILED", QMP_API },
    { "qmp_conn CONNECTING RETRY", QMP_API },
    { "qmp_conn CONNECTING TIMEOUT", QMP_API },
    { "qmp_conn CONNECTING CLOSE", QMP_API },
    { "qmp_conn AWAIT_GREETING CLOSE", QMP_API },
    { "qmp_conn NEGOTIATING CLOSE", QMP_API },
    { "qmp_conn READY TIMEOUT", QMP_API },
    { "qmp_conn CLOSING RESOLVED", QMP_API },
    { "qmp_conn CLOSING RETRY", QMP_API },
    { "qmp_conn CLOSING CONNECTED", QMP_API },
    { "qmp_conn CLOSING GREETING", QMP_API },
    { "qmp_conn CLOSING NEGOTIATED", QMP_API },
    { "qmp_conn CLOSING TIMEOUT", QMP_API },
    { "qmp_conn CLOSING PEER_CLOSED", QMP_API },
    { "qmp_conn CLOSING IO_FAILED", QMP_API },
    { "qmp_conn CLOSING CLOSE", QMP_API },
    { "qmp_conn ANY CANCEL", QMP_API },
    { "stream_tx AWAIT_MEMORY CHECKPOINT", COLO_LATER },
    { "stream_tx WRITING_CHECKPOINT WRITTEN", COLO_LATER },
    { "stream_tx AWAIT_MEMORY CONTROL", COLO_LATER },
    { "stream_tx WRITING_CONTROL WRITTEN", COLO_LATER },
    { "stream_rx AWAIT_MEMORY CHECKPOINT", COLO_LATER },
    { "stream_rx READING_CHECKPOINT CHECKPOINT_END", COLO_LATER },
    { "stream_rx AWAIT_MEMORY READ_CONTROL", COLO_LATER },
    { "stream_rx READING_CONTROL CONTROL", COLO_LATER },
    { "devmodel IDLE SAVE_LINKED", DM_LINKED },
    { "devmodel LINK_ADDING_FD FD_ADDED", DM_LINKED },
    { "devmodel LINK_ADDING_FD FD_KEPT", DM_LINKED },
    { "devmodel LINK_STOPPING STOPPED", DM_LINKED },
    { "devmodel LINK_SAVING STATE_SAVED", DM_LINKED },
    { "devmodel LINK_ADDING_FD QMP_ERROR", DM_LINKED },
    { "devmodel LINK_STOPPING QMP_ERROR", DM_LINKED },
    { "devmodel LINK_SAVING QMP_ERROR", DM_LINKED },
    { "devmodel IDLE LOAD_LINKED", DM_LINKED },
    { "devmodel LINK_GETTING_FD FD_GOT", DM_LINKED },
    { "devmodel LINK_INCOMING INCOMING", DM_LINKED },
    { "devmodel LINK_GETTING_FD QMP_ERROR", DM_LINKED },
    { "devmodel LINK_INCOMING QMP_ERROR", DM_LINKED },
    { NULL, NULL },
};
