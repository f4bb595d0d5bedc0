/* test/xen/fake_helper.c - a scripted lockstep-xen-helper for test_xen_relay:
 * it speaks helper_proto.h on XH_FD_CHANNEL as the real one does around
 * xc_domain_restore, one step per argument:
 *   sdd         static_data_done, waits for the reply
 *   ckpt        checkpoint, waits for the reply
 *   ckpt=N      the same, and exits 5 unless the reply is N
 *   read        reads the stream (XH_FD_STREAM) until its end
 *   log:TEXT    an error-level libxc log line
 *   results     restore_results (store gfn 11, console gfn 22)
 *   done:N      XH_DONE with value N (mfns 0x1111, 0x2222), then exits
 *   crash       dies of SIGSEGV
 * The replies it got go to stdout, one per line.
 * Called as the backend calls a guard (`guard DOMID resume|destroy`), it
 * plays helper_proto.h's guard and appends what it did to $FAKE_GUARD_LOG
 * ("start DOMID ARMING", then "released", "fired ARMING" or "exit disarmed");
 * FAKE_GUARD_START=crash makes it die before it says ready. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/xen/helper_proto.h"

static void put(uint32_t kind, int32_t value, uint64_t a, uint64_t b, const char *text)
{
    struct xh_msg m = { .kind = kind, .value = value, .a = a, .b = b };
    if (text)
        snprintf(m.text, sizeof(m.text), "%s", text);
    if (send(XH_FD_CHANNEL, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m))
        exit(3);
}

static int call(uint32_t kind)
{
    put(kind, 0, 0, 0, NULL);
    struct xh_msg m;
    if (recv(XH_FD_CHANNEL, &m, sizeof(m), 0) != (ssize_t)sizeof(m) || m.kind != XH_REPLY)
        exit(4);
    printf("reply %d\n", m.value);
    return m.value;
}

static void guard_log(const char *fmt, const char *arg)
{
    FILE *f = fopen(getenv("FAKE_GUARD_LOG") ? getenv("FAKE_GUARD_LOG") : "/dev/null", "a");
    if (f) {
        fprintf(f, fmt, arg);
        fputc('\n', f);
        fclose(f);
    }
}

static int guard(const char *domid, const char *arming)
{
    const char *start = getenv("FAKE_GUARD_START");
    if (start && strcmp(start, "crash") == 0) {
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    }
    char line[64];
    snprintf(line, sizeof(line), "%s %s", domid, arming);
    guard_log("start %s", line);
    char c = XH_GUARD_READY;
    if (send(XH_FD_CHANNEL, &c, 1, MSG_NOSIGNAL) != 1)
        return 1;
    const char *armed = arming;
    for (;;) {
        ssize_t n = read(XH_FD_CHANNEL, &c, 1);
        if (n == 1 && c == XH_GUARD_RELEASE) {
            guard_log("released", NULL);
            return 0;
        }
        if (n == 1) {
            armed = c == XH_GUARD_RESUME ? "resume" : c == XH_GUARD_DESTROY ? "destroy" : NULL;
            continue;
        }
        if (armed)
            guard_log("fired %s", armed);
        else
            guard_log("exit disarmed", NULL);
        return 0;
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "guard") == 0)
        return guard(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "sdd") == 0)
            call(XH_CB_STATIC_DATA_DONE);
        else if (strcmp(s, "ckpt") == 0)
            call(XH_CB_CHECKPOINT);
        else if (strncmp(s, "ckpt=", 5) == 0) {
            if (call(XH_CB_CHECKPOINT) != atoi(s + 5))
                return 5;
        } else if (strcmp(s, "read") == 0) {
            char buf[256];
            while (read(XH_FD_STREAM, buf, sizeof(buf)) > 0)
                ;
        }
        else if (strncmp(s, "log:", 4) == 0)
            put(XH_LOG, -1, 0, 0, s + 4);
        else if (strcmp(s, "results") == 0)
            put(XH_RESTORE_RESULTS, 0, 11, 22, NULL);
        else if (strncmp(s, "done:", 5) == 0) {
            put(XH_DONE, atoi(s + 5), 0x1111, 0x2222, NULL);
            return 0;
        } else if (strcmp(s, "crash") == 0) {
            signal(SIGSEGV, SIG_DFL);
            raise(SIGSEGV);
        } else {
            fprintf(stderr, "fake_helper: unknown step '%s'\n", s);
            return 2;
        }
    }
    return 0;
}
