/* backends/xen/xen_helper.c - lockstep-xen-helper: libxenguest's memory task
 * in a process of its own (see helper_proto.h for why and for the protocol).
 *
 * It does nothing but run xc_domain_save or xc_domain_restore on the fds it
 * was given, turning each callback into a message to the Xen backend and
 * waiting for the answer when the callback returns one. libxc's error-level
 * log lines and its progress go to the backend too, so lockstep reports
 * Xen's own reason for a failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenguest.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "backends/xen/helper_proto.h"

static bool debug_log;

static void send_msg(const struct xh_msg *m)
{
    /* The parent reads every message; a failed send means it is gone, and
     * then the next wait for a reply ends this process. */
    while (send(XH_FD_CHANNEL, m, sizeof(*m), MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

/* Send a callback and wait for its answer; a lost parent answers "fail". */
static int call_parent(uint32_t kind, int32_t value, uint64_t a, uint64_t b, int if_lost)
{
    struct xh_msg m = { .kind = kind, .value = value, .a = a, .b = b };
    send_msg(&m);
    for (;;) {
        ssize_t n = recv(XH_FD_CHANNEL, &m, sizeof(m), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(m) || m.kind != XH_REPLY)
            return if_lost;
        return m.value;
    }
}

/* ---- logging ---------------------------------------------------------- */

static void log_vmessage(struct xentoollog_logger *logger, xentoollog_level level, int errnoval,
                         const char *context, const char *format, va_list al)
{
    char line[XH_TEXT_LEN];
    int n = vsnprintf(line, sizeof(line), format, al);
    if (n > 0 && errnoval >= 0 && (size_t)n < sizeof(line))
        snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(errnoval));
    if (debug_log)
        fprintf(stderr, "lockstep-xen-helper: %s: %s\n", context ? context : "xc", line);
    if (level < XTL_ERROR)
        return;
    struct xh_msg m = { .kind = XH_LOG, .value = errnoval };
    snprintf(m.text, sizeof(m.text), "%s", line);
    send_msg(&m);
}

static void log_progress(struct xentoollog_logger *logger, const char *context,
                         const char *doing_what, int percent, unsigned long done,
                         unsigned long total)
{
    struct xh_msg m = { .kind = XH_PROGRESS, .a = done, .b = total };
    send_msg(&m);
}

static void log_destroy(struct xentoollog_logger *logger) {}

static struct xentoollog_logger logger = {
    .vmessage = log_vmessage, .progress = log_progress, .destroy = log_destroy,
};

/* ---- callbacks ---------------------------------------------------------- */

static int cb_suspend(void *data) { return call_parent(XH_CB_SUSPEND, 0, 0, 0, 0); }
static int cb_postcopy(void *data) { return call_parent(XH_CB_POSTCOPY, 0, 0, 0, 0); }
static int cb_checkpoint(void *data) { return call_parent(XH_CB_CHECKPOINT, 0, 0, 0, 0); }
static int cb_wait_checkpoint(void *data)
{
    return call_parent(XH_CB_WAIT_CHECKPOINT, 0, 0, 0, 0);
}

static int cb_precopy_policy(struct precopy_stats stats, void *data)
{
    return call_parent(XH_CB_PRECOPY_POLICY, (int32_t)stats.dirty_count, stats.iteration,
                       stats.total_written, XGS_POLICY_ABORT);
}

static int cb_switch_logdirty(uint32_t domid, unsigned enable, void *data)
{
    return call_parent(XH_CB_SWITCH_LOGDIRTY, 0, enable, 0, -1);
}

static int cb_static_data_done(unsigned missing, void *data)
{
    return call_parent(XH_CB_STATIC_DATA_DONE, 0, missing, 0, -1);
}

static void cb_restore_results(xen_pfn_t store_gfn, xen_pfn_t console_gfn, void *data)
{
    struct xh_msg m = { .kind = XH_RESTORE_RESULTS, .a = store_gfn, .b = console_gfn };
    send_msg(&m);
}

/* ---- guard --------------------------------------------------------------- */

/* lockstep-xen-helper guard DOMID resume|destroy: a migration's safety net.
 * It outlives lockstep: it waits on XH_FD_CHANNEL, a socket only lockstep
 * holds the other end of (helper_proto.h, "guard"). It opens Xen's handles
 * first and says ready, so one that cannot act dies where lockstep sees it.
 * Then lockstep arms it (resume or destroy), disarms it, or releases it;
 * end of file means lockstep died, and an armed guard acts on the domain. */
static void xs_rm_fmt(struct xs_handle *xsh, const char *fmt, unsigned domid)
{
    char path[64];
    snprintf(path, sizeof(path), fmt, domid);
    xs_rm(xsh, XBT_NULL, path);
}

static void guard_fire(xc_interface *xch, struct xs_handle *xsh, uint32_t domid, bool destroy)
{
    if (destroy) {
        if (xsh) {
            char path[64];
            snprintf(path, sizeof(path), "/local/domain/%u/vm", domid);
            unsigned len;
            char *vm = xs_read(xsh, XBT_NULL, path, &len);
            if (vm && strncmp(vm, "/vm/", 4) == 0)
                xs_rm(xsh, XBT_NULL, vm);
            free(vm);
            xs_rm_fmt(xsh, "/local/domain/%u", domid);
            xs_rm_fmt(xsh, "/libxl/%u", domid);
        }
        xc_domain_destroy(xch, domid);
        fprintf(stderr, "lockstep-xen-helper: lockstep died; destroyed its partial domain %u\n",
                domid);
    } else {
        xc_dominfo_t info;
        if (xc_domain_getinfo(xch, domid, 1, &info) == 1 && info.domid == domid &&
            info.shutdown && info.shutdown_reason == SHUTDOWN_suspend &&
            xc_domain_resume(xch, domid, 1) == 0 && xsh)
            xs_resume_domain(xsh, domid);
        fprintf(stderr, "lockstep-xen-helper: lockstep died; resumed domain %u\n", domid);
    }
}

static int run_guard(uint32_t domid, bool destroy)
{
    signal(SIGINT, SIG_IGN);    /* a terminal's ^C to lockstep must not reach us */
    signal(SIGTERM, SIG_IGN);
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    if (!xch) {
        fprintf(stderr, "lockstep-xen-helper: guard of domain %u: cannot open Xen's control "
                "interface: %s\n", domid, strerror(errno));
        return 1;
    }
    struct xs_handle *xsh = xs_open(0);
    char c = XH_GUARD_READY;
    if (send(XH_FD_CHANNEL, &c, 1, MSG_NOSIGNAL) != 1)
        return 1;   /* lockstep is gone already and knows it got no guard */
    enum { DISARMED, RESUME, DESTROY } armed = destroy ? DESTROY : RESUME;
    for (;;) {
        ssize_t n = read(XH_FD_CHANNEL, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 1 && c == XH_GUARD_RELEASE)
            break;
        if (n == 1) {
            armed = c == XH_GUARD_RESUME ? RESUME : c == XH_GUARD_DESTROY ? DESTROY : DISARMED;
            continue;
        }
        if (armed != DISARMED)   /* lockstep died with the domain in our care */
            guard_fire(xch, xsh, domid, armed == DESTROY);
        break;
    }
    if (xsh)
        xs_close(xsh);
    xc_interface_close(xch);
    return 0;
}

/* ---- main ------------------------------------------------------------- */

/* The helper ends with _exit: the Xen libraries' exit-time destructors have
 * nothing to release that the kernel does not, and one of them crashed at
 * exit under emulation, turning a finished task into a signal. */
static void finish(int code) __attribute__((noreturn));
static void finish(int code)
{
    fflush(stderr);
    _exit(code);
}

static int usage(void)
{
    fprintf(stderr, "usage: lockstep-xen-helper save DOMID FLAGS STREAM_TYPE\n"
                    "       lockstep-xen-helper guard DOMID resume|destroy\n"
                    "       lockstep-xen-helper restore DOMID STORE_EVTCHN CONSOLE_EVTCHN "
                    "STREAM_TYPE\n"
                    "(run by lockstep's Xen backend with its channel on fd %d and the stream "
                    "on fd %d)\n", XH_FD_CHANNEL, XH_FD_STREAM);
    return 2;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 4 && strcmp(argv[1], "guard") == 0) {
        uint32_t domid;
        bool destroy = strcmp(argv[3], "destroy") == 0;
        if (!parse_u32(argv[2], &domid) || (!destroy && strcmp(argv[3], "resume") != 0))
            return usage();
        finish(run_guard(domid, destroy));
    }
    /* The memory task never outlives the lockstep thread that runs it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    debug_log = getenv("LOCKSTEP_XEN_DEBUG") != NULL;
    bool save = argc == 5 && strcmp(argv[1], "save") == 0;
    bool restore = argc == 6 && strcmp(argv[1], "restore") == 0;
    uint32_t domid, n1, n2, n3 = 0;
    if ((!save && !restore) || !parse_u32(argv[2], &domid) || !parse_u32(argv[3], &n1) ||
        !parse_u32(argv[4], &n2) || (restore && !parse_u32(argv[5], &n3)))
        return usage();
    struct xh_msg done = { .kind = XH_DONE };
    xc_interface *xch = xc_interface_open(&logger, &logger, 0);
    if (!xch) {
        done.value = errno ? errno : ENODEV;
        snprintf(done.text, sizeof(done.text), "cannot open the hypervisor interface: %s",
                 strerror(done.value));
        send_msg(&done);
        finish(1);
    }
    int rc;
    if (save) {
        struct save_callbacks cb = {
            .suspend = cb_suspend, .precopy_policy = cb_precopy_policy,
            .postcopy = cb_postcopy, .checkpoint = cb_checkpoint,
            .wait_checkpoint = cb_wait_checkpoint, .switch_qemu_logdirty = cb_switch_logdirty,
        };
        int back = n2 == XC_STREAM_COLO ? XH_FD_BACK : -1;
        rc = xc_domain_save(xch, XH_FD_STREAM, domid, n1, &cb, (xc_stream_type_t)n2, back);
    } else {
        struct restore_callbacks cb = {
            .static_data_done = cb_static_data_done, .suspend = cb_suspend,
            .postcopy = cb_postcopy, .checkpoint = cb_checkpoint,
            .wait_checkpoint = cb_wait_checkpoint, .restore_results = cb_restore_results,
        };
        unsigned long store_mfn = 0, console_mfn = 0;
        int back = n3 == XC_STREAM_COLO ? XH_FD_BACK : -1;
        rc = xc_domain_restore(xch, XH_FD_STREAM, domid, n1, &store_mfn, 0, n2, &console_mfn,
                               0, (xc_stream_type_t)n3, &cb, back);
        done.a = store_mfn;
        done.b = console_mfn;
    }
    done.value = rc == 0 ? 0 : (errno ? errno : EIO);
    xc_interface_close(xch);
    send_msg(&done);
    finish(rc == 0 ? 0 : 1);
}
