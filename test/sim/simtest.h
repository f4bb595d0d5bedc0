/* test/sim/simtest.h - helpers for the sim backend tests.
 *
 * Every test gets a private runtime directory (its own lockstep-simd) under
 * /tmp and stops that daemon by its pid file at the end, so tests neither
 * share domains nor leave daemons behind.
 */
#ifndef LOCKSTEP_TEST_SIM_SIMTEST_H
#define LOCKSTEP_TEST_SIM_SIMTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/sim/proto.h"
#include "backends/sim/sim.h"

struct simtest_env {
    char rundir[128];
};

/* mkdtemp a directory and point LOCKSTEP_RUNDIR at it; LOCKSTEP_SIMD must
 * be set (ctest does it). idle_exit 0 = the daemon's default. */
void simtest_env_init(struct simtest_env *t, unsigned idle_exit);
/* Stops the daemon (SIGTERM, then SIGKILL) and removes the directory. */
void simtest_env_fini(struct simtest_env *t);

/* cmocka fixtures: a private env (idle exit: the daemon's default) in
 * *state, and its end. */
int simtest_setup(void **state);
int simtest_teardown(void **state);

/* A client of the env's daemon (started on demand); fails the test if none. */
struct ls_backend *simtest_open(void);

/* A raw connection to the daemon's socket (replies awaited at most 10 s),
 * or -errno; one reply read off it (its header, and its message up to cap,
 * the rest drained), 0 or -1; and whether the daemon hung up. */
int simtest_raw_connect(const struct simtest_env *t);
int simtest_raw_reply(int fd, struct simp_hdr *h, char *msg, size_t cap);
bool simtest_conn_closed(int fd);

/* The daemon's pid from its pid file, or -1. */
int simtest_daemon_pid(const struct simtest_env *t);
/* Whether pid is a live process (a zombie counts as gone). */
bool simtest_alive(int pid);
/* Waits up to ms for pid to be gone. */
bool simtest_wait_gone(int pid, unsigned ms);
bool simtest_file_exists(const struct simtest_env *t, const char *name);

/* Number of open fds of this process. */
int simtest_count_fds(void);

#endif
