/* test/fsm/ping.h - enums of the engine tests' machine. */
#ifndef LOCKSTEP_TEST_PING_H
#define LOCKSTEP_TEST_PING_H
#define FSM_PREFIX PING
#define FSM_DEF_FILE "test/fsm/ping.def"
#include "fsm/gen_enums.h"

/* What the ping actions did, for assertions. */
struct ping_ctx {
    int send_rc;            /* what ping_send returns */
    int sent, armed, rtt_stored, timedout, failures_logged;
    int done_calls, done_rc;
    char order[64];         /* undo order, e.g. "cba" */
};
#endif
