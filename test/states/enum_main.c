/* test/states/enum_main.c - walk every scenario's rows; report rows per machine.
 *
 * test_states_enum [--rows FILE] [--colo] [--seed N] [SCENARIO-PREFIX...]
 * Exit status 1 when a run broke an invariant or a row of a covered machine
 * (roles.c: enum_machines) was neither taken nor marked FSM_UNREACHABLE.
 * --rows writes every row taken, "machine STATE EVENT" per line, for the
 * suite's row-coverage check (test/integration/rows_taken.py --enforce).
 * --colo walks the COLO pairs instead (roles_colo.c: enum_roles_colo), a
 * test of its own: two roles on threads cost more per run. --seed N
 * replays another sample of the second failures (the report prints the
 * seed each walk used: 0 unless given).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
    const char *const *machines = enum_machines;
    const struct enum_deferred *deferred = enum_deferred;
    if (argc > first + 1 && strcmp(argv[first], "--rows") == 0) {
        rows_file = argv[first + 1];
        first += 2;
    }
    if (argc > first && strcmp(argv[first], "--colo") == 0) {
        roles = enum_roles_colo;
        machines = enum_machines_colo;
        deferred = enum_deferred_colo;
        first++;
    }
    if (argc > first + 1 && strcmp(argv[first], "--seed") == 0) {
        enum_seed = strtoull(argv[first + 1], NULL, 0);
        first += 2;
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
        if (st.points_alike)
            printf(" (%u of QEMU's answers alike to one walked)", st.points_alike);
        if (st.skipped || st.row_guided)
            printf(" (second failures sampled 1 in %u, seed %" PRIu64 " and the name: %u not "
                   "run, %u run for a row not yet taken)", (*sc)->sample_second, enum_seed,
                   st.skipped, st.row_guided);
        printf("\n");
        total.runs += st.runs;
        total.failed_runs += st.failed_runs;
        total.skipped += st.skipped;
    }
    unsigned missing = enum_report(all ? machines : (const char *const[]){ NULL }, deferred,
                                   rows_file);
    printf("enumerator: %u runs, %u broke an invariant, %u rows neither taken nor marked, "
           "%u sampled out (--seed %" PRIu64 "), %.2f s\n", total.runs, total.failed_runs,
           missing, total.skipped, enum_seed, now_s() - t0);
    return total.failed_runs || missing ? 1 : 0;
}
