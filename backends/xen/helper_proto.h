/* backends/xen/helper_proto.h - lockstep-xen-helper <-> the Xen backend.
 *
 * The Xen backend runs libxenguest's xc_domain_save / xc_domain_restore in a
 * child process, lockstep-xen-helper (as libxl runs libxl-save-helper), and
 * relays every callback the child reports to the memory task's callbacks,
 * which make them events in the save/restore tables.
 *
 * Why a process and not a thread: xc_domain_save/_restore cannot be
 * interrupted. A thread blocked in their read() from a stalled peer can only
 * be waited for; a process is killed on cancel, so a cancel always ends the
 * task at once. A crash or leak inside libxc (seen under emulation) ends the
 * child, not lockstep, which then still resumes the guest or destroys the
 * partial domain through its tables. libxc's process-wide state (logger,
 * hypercall buffers, log-dirty) stays out of lockstep.
 *
 * Channel: a SOCK_SEQPACKET socketpair, one struct xh_msg per packet. The
 * child sends a callback message and, for the kinds that return a value,
 * blocks for one XH_REPLY. Fds in the child: XH_FD_CHANNEL, XH_FD_STREAM and,
 * for COLO, XH_FD_BACK.
 *
 *   lockstep-xen-helper save    DOMID FLAGS STREAM_TYPE
 *   lockstep-xen-helper restore DOMID STORE_EVTCHN CONSOLE_EVTCHN STREAM_TYPE
 *
 * Guard: `lockstep-xen-helper guard DOMID resume|destroy` on a SOCK_STREAM
 * pair at XH_FD_CHANNEL, one byte per message. It sends XH_GUARD_READY once
 * it holds Xen's handles (lockstep waits for it: a guard that dies at its
 * start is an error, not a silent gap), then reads arm/disarm/release bytes
 * for as long as lockstep lives, so a domain checkpointed many times a
 * second keeps one guard. End of file while armed: lockstep died; it acts.
 */
#ifndef LOCKSTEP_BACKENDS_XEN_HELPER_PROTO_H
#define LOCKSTEP_BACKENDS_XEN_HELPER_PROTO_H

#include <stdint.h>

#define XH_FD_CHANNEL 3
#define XH_FD_STREAM  4
#define XH_FD_BACK    5

enum xh_kind {
    /* child -> parent, answered by XH_REPLY */
    XH_CB_SUSPEND = 1,          /* save: suspend the guest now; reply 1 ok, 0 failed */
    XH_CB_PRECOPY_POLICY,       /* a = iteration, b = total_written, value = dirty_count */
    XH_CB_SWITCH_LOGDIRTY,      /* a = enable */
    XH_CB_POSTCOPY,
    XH_CB_CHECKPOINT,
    XH_CB_WAIT_CHECKPOINT,
    XH_CB_STATIC_DATA_DONE,     /* restore: a = missing (XGR_SDD_MISSING_*) */
    /* child -> parent, no reply */
    XH_RESTORE_RESULTS,         /* a = store gfn, b = console gfn */
    XH_PROGRESS,                /* a = done pages, b = total pages */
    XH_LOG,                     /* text: an error-level libxc message; value = errno or -1 */
    XH_DONE,                    /* value = 0 ok or errno; a = store mfn, b = console mfn */
    /* the parent's own (never on the channel) */
    XH_PROGRESS_BYTES,          /* a = bytes read, b = total bytes */
    /* parent -> child */
    XH_REPLY,                   /* value */
};

/* The guard's bytes (see above). */
#define XH_GUARD_READY   'k'   /* guard -> lockstep, once */
#define XH_GUARD_RESUME  'R'   /* arm: resume the domain if lockstep dies */
#define XH_GUARD_DESTROY 'D'   /* arm: destroy it */
#define XH_GUARD_DISARM  'n'
#define XH_GUARD_RELEASE 'r'   /* exit, doing nothing */

#define XH_TEXT_LEN 400

struct xh_msg {
    uint32_t kind;
    int32_t value;
    uint64_t a, b;
    char text[XH_TEXT_LEN];
};

#endif
