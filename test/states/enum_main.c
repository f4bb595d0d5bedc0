/* test/states/enum_main.c - walk every scenario's rows; report rows per machine.
 *
 * test_states_enum [--rows FILE] [SCENARIO-PREFIX...]
 * Exit status 1 when a run broke an invariant or a row of a covered machine
 * (roles.c: enum_machines) was neither taken nor marked FSM_UNREACHABLE.
 * --rows writes every row taken, "machine STATE EVENT" per line, for the
 * suite's row-coverage check (test/integration/rows_taken.py --enforce).
 * --colo walks the COLO pairs instead (roles_colo.c: enum_roles_colo), a
 * test of its own: two roles on threads cost more per run.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test/states/roles.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);   /* the fake's virtual clock skips ahead */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *rows_file = NULL;
    int first = 1;
    const struct enum_scenario *const *roles = enum_roles;
    const char *const *machines = enum_machines, *const *deferred = enum_deferred,
                      *const *deferred_why = enum_deferred_why;
    if (argc > first + 1 && strcmp(argv[first], "--rows") == 0) {
        rows_file = argv[first + 1];
        first += 2;
    }
    if (argc > first && strcmp(argv[first], "--colo") == 0) {
        roles = enum_roles_colo;
        machines = enum_machines_colo;
        deferred = enum_deferred_colo;
        deferred_why = enum_deferred_colo_why;
        first++;
    }
    struct enum_stats total = { 0 };
    double t0 = now_s();
    bool all = first == argc;
    for (const struct enum_scenario *const *sc = roles; *sc; sc++) {
        bool want = all;
        for (int i = first; i < argc; i++)
            want |= strncmp((*sc)->name, argv[i], strlen(argv[i])) == 0;
        if (!want)
            continue;
        struct enum_stats st = { 0 };
        double t = now_s();
        enum_scenario_walk(*sc, &st, NULL, NULL);
        printf("%-22s %5u runs, %u broke an invariant, %.2f s", (*sc)->name, st.runs,
               st.failed_runs, now_s() - t);
        if (st.skipped)
            printf(" (second failures sampled 1 in %u, seeded by the name: %u not run)",
                   (*sc)->sample_second, st.skipped);
        printf("\n");
        total.runs += st.runs;
        total.failed_runs += st.failed_runs;
    }
    unsigned missing = enum_report(all ? machines : (const char *const[]){ NULL }, deferred,
                                   deferred_why, rows_file);
    printf("enumerator: %u runs, %u broke an invariant, %u rows neither taken nor marked, "
           "%.2f s\n", total.runs, total.failed_runs, missing, now_s() - t0);
    return total.failed_runs || missing ? 1 : 0;
}
