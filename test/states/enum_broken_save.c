/* test/states/enum_broken_save.c - the enumerator must catch a broken row.
 *
 * A test-only variant of save.def's table (compiled into this test only)
 * whose row AWAIT_SUSPEND + GUEST_SUSPENDED skips the resume: it reports
 * the guest resumed without asking the backend. The walk must break the
 * save's invariant (a failed save leaves the guest running) and print that
 * row among the failing run's rows; ctest checks both (CMakeLists.txt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "states/save.h"
#include "test/states/roles.h"

static int broken_skip_resume(struct fsm *m, const struct fsm_ev *ev)
{
    (void)ev;
    fsm_post(m, SAVE_E_GUEST_RESUMED, 0, NULL);
    return 0;
}

int main(void)
{
    static struct fsm_row rows[256];
    static struct fsm_def broken;
    broken = save_fsm_def;
    if (save_fsm_def.nrows > 256)
        abort();
    memcpy(rows, save_fsm_def.rows, (size_t)save_fsm_def.nrows * sizeof(rows[0]));
    int hit = 0;
    for (int i = 0; i < save_fsm_def.nrows; i++)
        if (rows[i].state == SAVE_S_AWAIT_SUSPEND && rows[i].event == SAVE_E_GUEST_SUSPENDED) {
            rows[i].action = broken_skip_resume;
            rows[i].action_name = "broken_skip_resume";
            hit++;
        }
    if (hit != 1) {
        fprintf(stderr, "the row to break is not in save.def any more\n");
        return 2;
    }
    broken.rows = rows;
    struct enum_stats st = { 0 };
    enum_scenario_walk(&enum_save_pv, &st, &save_fsm_def, &broken);
    printf("broken save: %u runs, %u broke an invariant\n", st.runs, st.failed_runs);
    return st.failed_runs ? 1 : 0;
}
