/* test/states/roles.h - the scenarios of each role on the fakes.
 *
 * A scenario is one way of starting a role (PV or HVM, live or not, kept or
 * not, xl or libxl format) with the invariants its every run must keep. The
 * trace tests run them once and assert the exact dispatch sequence; the
 * enumerator (enumerate.h) walks every row of them. To add a role: write
 * its start and check here, list its scenarios in enum_roles[] and its
 * machines in enum_machines[] (test/states/README.md).
 */
#ifndef LOCKSTEP_TEST_STATES_ROLES_H
#define LOCKSTEP_TEST_STATES_ROLES_H

#include "test/states/enumerate.h"

extern const struct enum_scenario enum_save_pv, enum_save_pv_live_keep, enum_save_hvm_live,
    enum_save_leave_suspended;
extern const struct enum_scenario enum_restore_libxl, enum_restore_xl_hvm, enum_restore_paused;

/* Every scenario (NULL-terminated). */
extern const struct enum_scenario *const enum_roles[];
/* Machines the scenarios cover: each row of these is taken or marked. */
extern const char *const enum_machines[];

/* Rows the fakes cannot reach yet, "machine STATE EVENT" (NULL-terminated):
 * a real QEMU's device-model child needs the scripted QMP peer, not yet
 * written. The suite's row-coverage check wants them taken end to end
 * (test/dm/faults_dm.sh). */
extern const char *const enum_deferred[];
extern const char *const enum_deferred_reason;

#endif
