/* test/fakes/testlib_anchor.c - keeps lockstep_testlib non-empty before fakes exist. */
int lockstep_testlib_anchor(void);
int lockstep_testlib_anchor(void) { return 0; }
