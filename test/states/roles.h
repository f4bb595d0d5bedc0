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
    enum_save_leave_suspended, enum_save_hvm_qemu, enum_save_hvm_qemu_keep;
extern const struct enum_scenario enum_restore_hvm_qemu, enum_mig_hvm_qemu, enum_mig_hvm_qemu_ok,
    enum_mig_resume_refused, enum_restore_destroy_refused;
extern const struct enum_scenario enum_restore_libxl, enum_restore_xl_hvm, enum_restore_paused;
extern const struct enum_scenario enum_mig_ok, enum_mig_copy_failed, enum_mig_no_report,
    enum_mig_no_received, enum_mig_no_banner;
extern const struct enum_scenario enum_rcv_go, enum_rcv_go_paused, enum_rcv_no_go,
    enum_rcv_wrong_go, enum_rcv_cut, enum_rcv_deaf;

/* roles_colo.c: a COLO/Remus primary and secondary against each other. */
extern const struct enum_scenario enum_colo_pv, enum_colo_pv_sec, enum_colo_pv_failover,
    enum_remus_hvm, enum_remus_pv_sec, enum_colo_host_dies, enum_colo_fence_refused,
    enum_colo_disks, enum_colo_disks_sec, enum_colo_disks_failover, enum_colo_disks_host_dies,
    enum_remus_net, enum_colo_net_failover;

/* roles_colo_disk.c: each COLO disk job against the scripted QEMU. */
extern const struct enum_scenario enum_cd_setup_secondary, enum_cd_setup_primary,
    enum_cd_checkpoint, enum_cd_query, enum_cd_query_broken, enum_cd_teardown_primary,
    enum_cd_teardown_secondary, enum_cd_failover;

/* The COLO pairs, walked by test_states_enum --colo, their machines, and
 * the rows of those no fake reaches yet, with the reasons. */
extern const struct enum_scenario *const enum_roles_colo[];
extern const char *const enum_machines_colo[];
extern const struct enum_deferred enum_deferred_colo[];

/* Every scenario (NULL-terminated). */
extern const struct enum_scenario *const enum_roles[];
/* Machines the scenarios cover: each row of these is taken or marked. */
extern const char *const enum_machines[];

/* Rows the fakes cannot reach yet, each "machine STATE EVENT" with its
 * reason (enumerate.h; ended by a NULL row). The suite's row-coverage
 * check wants them taken end to end (or listed pending there). */
extern const struct enum_deferred enum_deferred[];

#endif
