/* test/tables/test_tables.c - every machine's table is sound, and the linter
 * behind `fsm-dot --check` finds exactly what it should.
 *
 * The registry walk covers every states/<name>.def; the engine's test
 * machines ping and pair go through the same walk, so it never passes empty.
 * The bad_*.def tables each plant one kind of mistake.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fsm/fsm.h"
#include "lockstep/tables.h"
#include "test/fsm/ping.h"
#include "tools/fsm-dot/fsm_check.h"
#include "tools/fsm-dot/fsm_graph.h"

extern const struct fsm_def pair_fsm_def;
extern const struct fsm_def bad_unreachable_fsm_def, bad_dead_fsm_def, bad_nopath_fsm_def,
    bad_nofinal_fsm_def, bad_nofail_fsm_def, bad_final_rows_fsm_def, bad_unused_event_fsm_def,
    bad_style_fsm_def, bad_marks_fsm_def;

static bool nonempty(const char *s) { return s && s[0]; }

/* ---- the rules every machine must follow -------------------------------- */

static void print_problem(const struct fsm_problem *p, void *data)
{
    char buf[512];
    fsm_problem_format(p, buf, sizeof(buf));
    print_error("%s\n", buf);
}

static void assert_machine_sound(const struct fsm_def *d)
{
    const char *n = d->name;
    if (!nonempty(d->name) || !nonempty(d->doc) || !nonempty(d->file))
        fail_msg("machine '%s' (%s): name, doc and file must be non-empty", n, d->file);

    /* fsm-dot MACHINE and the registry use the .def base name. */
    const char *base = strrchr(d->file, '/');
    base = base ? base + 1 : d->file;
    if (strncmp(base, n, strlen(n)) != 0 || strcmp(base + strlen(n), ".def") != 0)
        fail_msg("%s: machine name differs from its file %s", n, d->file);

    if (d->nstates <= 0 || d->nevents <= 0 || d->nrows <= 0)
        fail_msg("%s: empty table", n);
    /* One initial state by construction (an index); it must be a real,
     * non-final state. */
    if (d->initial_state < 0 || d->initial_state >= d->nstates || d->state_final[d->initial_state])
        fail_msg("%s: initial state %d is out of range or final", n, d->initial_state);

    int finals = 0;
    for (int s = 0; s < d->nstates; s++) {
        if (!nonempty(d->state_names[s]) || !nonempty(d->state_docs[s]))
            fail_msg("%s: state %d has no name or doc", n, s);
        for (int t = 0; t < s; t++)
            if (strcmp(d->state_names[s], d->state_names[t]) == 0)
                fail_msg("%s: state %s declared twice", n, d->state_names[s]);
        finals += d->state_final[s];
        if (!d->state_final[s]) {
            if (!fsm_def_lookup(d, s, d->fail_event))
                fail_msg("%s: state %s does not handle FAIL", n, d->state_names[s]);
            if (!fsm_def_lookup(d, s, d->cancel_event))
                fail_msg("%s: state %s does not handle CANCEL", n, d->state_names[s]);
        }
    }
    if (finals < 1)
        fail_msg("%s: no final state", n);

    for (int e = 0; e < d->nevents; e++) {
        if (!nonempty(d->event_names[e]) || !nonempty(d->event_docs[e]))
            fail_msg("%s: event %d has no name or doc", n, e);
        for (int f = 0; f < e; f++)
            if (strcmp(d->event_names[e], d->event_names[f]) == 0)
                fail_msg("%s: event %s declared twice", n, d->event_names[e]);
    }
    if (d->fail_event < 0 || d->fail_event >= d->nevents ||
        strcmp(d->event_names[d->fail_event], "FAIL") != 0 || d->cancel_event < 0 ||
        d->cancel_event >= d->nevents || strcmp(d->event_names[d->cancel_event], "CANCEL") != 0)
        fail_msg("%s: FAIL/CANCEL event ids are wrong", n);

    for (int i = 0; i < d->nrows; i++) {
        const struct fsm_row *r = &d->rows[i];
        if (r->state < -1 || r->state >= d->nstates || r->next < 0 || r->next >= d->nstates ||
            r->event < 0 || r->event >= d->nevents)
            fail_msg("%s: row at line %d is out of range", n, r->line);
        if (r->line <= 0)
            fail_msg("%s: row %d has no .def line", n, i);
        if (r->state < 0 && r->event != d->fail_event && r->event != d->cancel_event)
            fail_msg("%s: line %d: FSM_ANY(%s): ANY is for FAIL and CANCEL only", n, r->line,
                     d->event_names[r->event]);
        if (r->kind == FSM_CELL_ROW && (!r->action || !nonempty(r->action_name)))
            fail_msg("%s: line %d: row without an action", n, r->line);
        if (r->kind == FSM_CELL_IGNORE && !nonempty(r->reason))
            fail_msg("%s: line %d: IGNORE without a reason", n, r->line);
        if (r->kind != FSM_CELL_ROW && r->kind != FSM_CELL_IGNORE)
            fail_msg("%s: line %d: bad row kind %d", n, r->line, r->kind);
        /* The index points back at this very row. */
        uint16_t idx = r->state >= 0 ? d->cells[r->state * d->nevents + r->event]
                                     : d->any_rows[r->event];
        if (idx != i + 1)
            fail_msg("%s: line %d: the cell index does not point at this row", n, r->line);
    }

    if (fsm_check(d, LOCKSTEP_SOURCE_DIR, print_problem, NULL) != 0)
        fail_msg("%s: fsm_check found problems (listed above)", n);
}

static void test_registry_machines_are_sound(void **state)
{
    (void)state;
    assert_non_null(fsm_all_defs);
    assert_null(fsm_all_defs[fsm_all_defs_count]);
    print_message("registry: %zu machine(s)\n", fsm_all_defs_count);
    for (size_t i = 0; i < fsm_all_defs_count; i++) {
        const struct fsm_def *d = fsm_all_defs[i];
        assert_non_null(d);
        assert_machine_sound(d);
        for (size_t j = 0; j < i; j++)
            if (strcmp(fsm_all_defs[j]->name, d->name) == 0)
                fail_msg("machine name %s is registered twice", d->name);
        assert_ptr_equal(fsm_def_find(d->name), d);
    }
    assert_null(fsm_def_find("no_such_machine"));
}

static void test_engine_test_machines_are_sound(void **state)
{
    (void)state;
    assert_machine_sound(&ping_fsm_def);
    assert_machine_sound(&pair_fsm_def);
}

/* ---- the checker on planted mistakes ------------------------------------ */

struct collected {
    char keys[1024];       /* "kind:STATE.EVENT/action; ..." */
    char first[512];       /* the first problem, formatted */
    char all[4096];        /* every problem, formatted, one per line */
    bool lines_ok;         /* every row problem points at its row's line */
};

static void collect(const struct fsm_problem *p, void *data)
{
    struct collected *c = data;
    const struct fsm_def *d = p->def;
    char key[256];
    int len = snprintf(key, sizeof(key), "%s", fsm_problem_kind_name(p->kind));
    if (p->state >= 0)
        len += snprintf(key + len, sizeof(key) - (size_t)len, ":%s", d->state_names[p->state]);
    else if (p->row >= 0 && d->rows[p->row].state < 0)
        len += snprintf(key + len, sizeof(key) - (size_t)len, ":ANY");
    if (p->event >= 0)
        len += snprintf(key + len, sizeof(key) - (size_t)len, ".%s", d->event_names[p->event]);
    if (p->action)
        snprintf(key + len, sizeof(key) - (size_t)len, "/%s", p->action);
    if (c->keys[0])
        strncat(c->keys, "; ", sizeof(c->keys) - strlen(c->keys) - 1);
    else
        fsm_problem_format(p, c->first, sizeof(c->first));
    strncat(c->keys, key, sizeof(c->keys) - strlen(c->keys) - 1);
    char line[512];
    fsm_problem_format(p, line, sizeof(line));
    strncat(c->all, line, sizeof(c->all) - strlen(c->all) - 1);
    strncat(c->all, "\n", sizeof(c->all) - strlen(c->all) - 1);
    if (p->row >= 0 && p->line != d->rows[p->row].line)
        c->lines_ok = false;
    if (p->line <= 0)
        c->lines_ok = false;
}

static struct collected check(const struct fsm_def *d, const char *src_dir)
{
    struct collected c = { .lines_ok = true };
    int n = fsm_check(d, src_dir, collect, &c);
    int keys = c.keys[0] ? 1 : 0;
    for (const char *p = c.keys; (p = strstr(p, "; ")); p += 2)
        keys++;
    assert_int_equal(n, keys);
    return c;
}

static void test_check_good_machines_clean(void **state)
{
    (void)state;
    assert_int_equal(fsm_check(&ping_fsm_def, LOCKSTEP_SOURCE_DIR, NULL, NULL), 0);
    assert_int_equal(fsm_check(&pair_fsm_def, LOCKSTEP_SOURCE_DIR, NULL, NULL), 0);
    assert_int_equal(fsm_check(&ping_fsm_def, NULL, NULL, NULL), 0);
}

static void test_check_unreachable(void **state)
{
    (void)state;
    struct collected c = check(&bad_unreachable_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys, "unreachable:ORPHAN");
    /* Points at the FSM_STATE line, read from the source. */
    assert_string_equal(c.first, "test/tables/bad_unreachable.def:7: bad_unreachable: "
                                 "state ORPHAN is unreachable from the initial state IDLE");
    assert_true(c.lines_ok);
    /* Without sources, and no row naming ORPHAN, there is no line to give. */
    c = check(&bad_unreachable_fsm_def, NULL);
    assert_string_equal(c.first, "test/tables/bad_unreachable.def: bad_unreachable: "
                                 "state ORPHAN is unreachable from the initial state IDLE");
}

static void test_check_dead_rows_and_unused_actions(void **state)
{
    (void)state;
    struct collected c = check(&bad_dead_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys,
                        "unreachable:ORPHAN; "
                        "dead-row:ORPHAN.START; dead-row:ORPHAN.FAIL; dead-row:ANY.FAIL; "
                        "unused-action:ORPHAN.START/bad_dead_orphan_start; "
                        "unused-action:ANY.FAIL/bad_dead_any_fail");
    assert_true(c.lines_ok);
    assert_non_null(strstr(c.all, "bad_dead: dead row ANY FAIL: every non-final state has its "
                                  "own row for this event\n"));
}

static void test_check_no_path_to_final(void **state)
{
    (void)state;
    struct collected c = check(&bad_nopath_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys, "no-path-to-final:STUCK");
    assert_string_equal(c.first, "test/tables/bad_nopath.def:6: bad_nopath: "
                                 "state STUCK has no path to a final state");
}

static void test_check_no_final(void **state)
{
    (void)state;
    struct collected c = check(&bad_nofinal_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys, "no-final");
    assert_string_equal(c.first, "test/tables/bad_nofinal.def:3: bad_nofinal: "
                                 "no final state (declare at least one with FSM_FINAL)");
}

static void test_check_unhandled_fail_and_cancel(void **state)
{
    (void)state;
    struct collected c = check(&bad_nofail_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys, "unhandled-fail:RUNNING.FAIL; unhandled-cancel:IDLE.CANCEL");
    assert_true(c.lines_ok);
}

static void test_check_final_with_rows(void **state)
{
    (void)state;
    struct collected c = check(&bad_final_rows_fsm_def, LOCKSTEP_SOURCE_DIR);
    /* AFTER is entered only by DONE's row, which the engine never takes. */
    assert_string_equal(c.keys, "unreachable:AFTER; final-has-rows:DONE.START");
    assert_true(c.lines_ok);
}

static void test_check_unused_event(void **state)
{
    (void)state;
    struct collected c = check(&bad_unused_event_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys, "unused-event.EXTRA");
    assert_string_equal(c.first, "test/tables/bad_unused_event.def:10: bad_unused_event: "
                                 "event EXTRA is declared but used by no row");
}

static void test_check_style_rules(void **state)
{
    (void)state;
    struct collected c = check(&bad_style_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys, "any-not-fail-cancel:ANY.TICK; ignore-no-reason:RUNNING.START");
    assert_true(c.lines_ok);
}

static void test_check_unreachable_marks(void **state)
{
    (void)state;
    struct collected c = check(&bad_marks_fsm_def, LOCKSTEP_SOURCE_DIR);
    assert_string_equal(c.keys, "unreachable-mark-no-row:IDLE.TICK; "
                                "unreachable-mark-no-reason:RUNNING.START; "
                                "unreachable-mark-twice:RUNNING.TICK");
    assert_string_equal(c.first, "test/tables/bad_marks.def:22: bad_marks: "
                                 "FSM_UNREACHABLE(IDLE, TICK) marks no row: the table has no "
                                 "explicit row for that pair");
    assert_true(c.lines_ok);
    /* The marks reach the table as data, in .def order. */
    assert_int_equal(bad_marks_fsm_def.nunreachable, 4);
    assert_string_equal(bad_marks_fsm_def.unreachable[2].reason, "marked once");
}

/* ---- DOT ---------------------------------------------------------------- */

static char *dot_of(const struct fsm_def *d, unsigned flags)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(fsm_dot_write(f, d, flags), 0);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        print_error("DOT output lacks: %s\n--- output ---\n%s", needle, hay);
        fail();
    }
}

/* The .def line of the row the engine uses for (state, event) of ping. */
static int ping_line(int state, int event)
{
    const struct fsm_row *r = fsm_def_lookup(&ping_fsm_def, state, event);
    assert_non_null(r);
    return r->line;
}

static void test_dot_ping(void **state)
{
    (void)state;
    char *dot = dot_of(&ping_fsm_def, 0);
    char want[512];
    assert_contains(dot, "digraph \"ping\" {");
    assert_contains(dot, "\"IDLE\" [tooltip=\"IDLE: created; nothing sent\", penwidth=2];");
    assert_contains(dot, "\"SENDING\" [tooltip=\"SENDING: PING queued; write in flight\"];");
    assert_contains(dot, "\"WAITING\" [tooltip=");
    assert_contains(dot, "\"ABORTING\" [tooltip=");
    assert_contains(dot, "\"DONE\" [tooltip=\"DONE: PONG seen\", shape=doublecircle];");
    assert_contains(dot, "\"FAILED\" [tooltip=\"FAILED: gave up; m->err has the first error\", "
                         "shape=doublecircle];");
    assert_int_equal(count(dot, "doublecircle"), 2);
    assert_contains(dot, "\"__initial\" -> \"IDLE\";");

    /* Explicit rows; fsm_nop is left out of labels. */
    snprintf(want, sizeof(want), "\"IDLE\" -> \"SENDING\" [label=\"START / ping_send\", "
             "tooltip=\"START: owner: begin (test/fsm/ping.def:%d)\"];",
             ping_line(PING_S_IDLE, PING_E_START));
    assert_contains(dot, want);
    snprintf(want, sizeof(want), "\"SENDING\" -> \"ABORTING\" [label=\"CANCEL\", tooltip=\"CANCEL: "
             "owner: abort (test/fsm/ping.def:%d)\", color=red, fontcolor=red];",
             ping_line(PING_S_SENDING, PING_E_CANCEL));
    assert_contains(dot, want);
    /* ANY(FAIL) expanded to all four non-final states, red and dashed. */
    const char *states[] = { "IDLE", "SENDING", "WAITING", "ABORTING" };
    for (int i = 0; i < 4; i++) {
        snprintf(want, sizeof(want),
                 "\"%s\" -> \"FAILED\" [label=\"FAIL / ping_log_failure\", tooltip=\"FSM_ANY "
                 "FAIL: engine: an action or io failed (test/fsm/ping.def:%d)\", color=red, "
                 "fontcolor=red, style=dashed];", states[i], ping_line(PING_S_IDLE, PING_E_FAIL));
        assert_contains(dot, want);
    }
    /* ANY(CANCEL) only where no explicit row or IGNORE exists: IDLE, WAITING. */
    assert_contains(dot, "\"IDLE\" -> \"FAILED\" [label=\"CANCEL\"");
    assert_contains(dot, "\"WAITING\" -> \"FAILED\" [label=\"CANCEL\"");
    assert_null(strstr(dot, "\"SENDING\" -> \"FAILED\" [label=\"CANCEL\""));
    assert_null(strstr(dot, "\"ABORTING\" -> \"FAILED\" [label=\"CANCEL\""));
    assert_int_equal(count(dot, "style=dashed"), 6);
    /* 6 explicit rows + 6 expanded ANY + the initial arrow; no IGNOREs. */
    assert_int_equal(count(dot, " -> "), 13);
    assert_int_equal(count(dot, "style=dotted"), 0);
    /* The FAIL/CANCEL edges are red, and only those. */
    assert_int_equal(count(dot, ", color=red"), 7);
    assert_int_equal(count(dot, "[label=\"FAIL"), 4);
    assert_int_equal(count(dot, "[label=\"CANCEL"), 3);
    assert_null(strstr(dot, "\"DONE\" -> "));
    assert_null(strstr(dot, "\"FAILED\" -> "));
    free(dot);
}

static void test_dot_ping_ignored(void **state)
{
    (void)state;
    char *dot = dot_of(&ping_fsm_def, FSM_DOT_IGNORED);
    char want[512];
    snprintf(want, sizeof(want), "\"WAITING\" -> \"WAITING\" [label=\"START\", tooltip=\"ignored: "
             "already in flight; START is idempotent (test/fsm/ping.def:%d)\", "
             "style=dotted, color=gray40, fontcolor=gray40];",
             ping_line(PING_S_WAITING, PING_E_START));
    assert_contains(dot, want);
    assert_contains(dot, "\"ABORTING\" -> \"ABORTING\" [label=\"CANCEL\", tooltip=\"ignored: "
                         "already aborting");
    assert_int_equal(count(dot, "style=dotted"), 2);
    assert_int_equal(count(dot, " -> "), 15);
    free(dot);
}

/* Graphviz itself accepts the output (when installed). */
static void test_dot_parses(void **state)
{
    (void)state;
#ifdef GRAPHVIZ_DOT
    const struct fsm_def *defs[] = { &ping_fsm_def, &pair_fsm_def, &bad_style_fsm_def };
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        char *dot = dot_of(defs[i], FSM_DOT_IGNORED);
        FILE *p = popen(GRAPHVIZ_DOT " -Tsvg -o /dev/null", "w");
        assert_non_null(p);
        fputs(dot, p);
        int rc = pclose(p);
        if (rc != 0)
            fail_msg("dot rejected the graph of %s (status %d):\n%s", defs[i]->name, rc, dot);
        free(dot);
    }
#else
    skip();
#endif
}

/* ls_tables(): the public description is the registry's, by name, sorted;
 * ls_table_find and ls_tables_json refuse an unknown machine. */
static void test_public_tables(void **state)
{
    (void)state;
    size_t n;
    const struct ls_table *t = ls_tables(&n);
    assert_int_equal(n, fsm_all_defs_count);
    for (size_t i = 0; i < n; i++) {
        const struct fsm_def *d = fsm_def_find(t[i].name);
        assert_non_null(d);
        assert_ptr_equal(ls_table_find(t[i].name), &t[i]);
        if (i)
            assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
        assert_int_equal(t[i].nstates, d->nstates);
        assert_int_equal(t[i].nevents, d->nevents);
        assert_int_equal(t[i].nrows, d->nrows);
        assert_string_equal(t[i].initial, d->state_names[d->initial_state]);
        for (size_t r = 0; r < t[i].nrows; r++) {
            const struct ls_table_row *row = &t[i].rows[r];
            assert_int_equal(row->line, d->rows[r].line);
            assert_true((row->kind == LS_ROW_ANY) == (row->state == NULL));
            assert_true((row->kind == LS_ROW_IGNORE) == (row->action == NULL));
            assert_true((row->kind == LS_ROW_IGNORE) == (row->reason != NULL));
            assert_int_equal(row->nofail,
                             row->kind != LS_ROW_IGNORE && fsm_row_nofail(d, &d->rows[r]));
        }
    }
    assert_null(ls_table_find("no_such_machine"));
    struct ls_errbuf err = { 0 };
    assert_null(ls_tables_json("no_such_machine", &err));
    assert_int_equal(err.rc, -ENOENT);
    assert_non_null(strstr(err.msg, "known machines: "));
    char *doc = ls_tables_json("save", &err);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"name\": \"save\""));
    assert_null(strstr(doc, "\"name\": \"restore\""));
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_machines_are_sound),
        cmocka_unit_test(test_public_tables),
        cmocka_unit_test(test_engine_test_machines_are_sound),
        cmocka_unit_test(test_check_good_machines_clean),
        cmocka_unit_test(test_check_unreachable),
        cmocka_unit_test(test_check_dead_rows_and_unused_actions),
        cmocka_unit_test(test_check_no_path_to_final),
        cmocka_unit_test(test_check_no_final),
        cmocka_unit_test(test_check_unhandled_fail_and_cancel),
        cmocka_unit_test(test_check_final_with_rows),
        cmocka_unit_test(test_check_unused_event),
        cmocka_unit_test(test_check_style_rules),
        cmocka_unit_test(test_check_unreachable_marks),
        cmocka_unit_test(test_dot_ping),
        cmocka_unit_test(test_dot_ping_ignored),
        cmocka_unit_test(test_dot_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
