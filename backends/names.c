/* backends/names.c - the words for a domain's type, run state and device
 * model, shared by every backend, the roles' messages and the API. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "backends/backend.h"

const char *backend_dm_status_text(const struct ls_dm_info *dm, char *buf, size_t len)
{
    int st = dm->exit_status;
    if (!dm->present)
        snprintf(buf, len, "none");
    else if (dm->alive)
        snprintf(buf, len, "running");
    else if (WIFEXITED(st))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "gone (wait status 0x%x)", (unsigned)st);
    return buf;
}

const char *backend_guest_type_name(enum ls_guest_type t)
{
    switch (t) {
    case LS_GUEST_PV: return "pv";
    case LS_GUEST_HVM: return "hvm";
    case LS_GUEST_PVH: return "pvh";
    default: return "unset";
    }
}

const char *backend_run_state_name(enum ls_run_state s)
{
    switch (s) {
    case LS_RUN_RUNNING: return "running";
    case LS_RUN_PAUSED: return "paused";
    case LS_RUN_SUSPENDED: return "suspended";
    case LS_RUN_SHUTDOWN: return "shutdown";
    case LS_RUN_DYING: return "dying";
    default: return "unknown";
    }
}
