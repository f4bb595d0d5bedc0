/* tools/fsm-dot/fsm_dot.c - draw and lint the state machines linked into
 * the library (fsm_all_defs[]). See docs/diagrams.md and `fsm-dot --help`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/fsm.h"
#include "lockstep/tables.h"
#include "tools/fsm-dot/fsm_check.h"
#include "tools/fsm-dot/fsm_graph.h"

#ifndef LOCKSTEP_SOURCE_DIR
#define LOCKSTEP_SOURCE_DIR NULL
#endif

enum { EXIT_PROBLEMS = 1, EXIT_USAGE = 2 };

static const char help_text[] =
"NAME\n"
"    fsm-dot - draw and check lockstep's state-machine tables\n"
"\n"
"SYNOPSIS\n"
"    fsm-dot [--ignored] [-o FILE] MACHINE\n"
"    fsm-dot --list [--names] [-o FILE]\n"
"    fsm-dot --check [--source-dir DIR] [-o FILE] [MACHINE]\n"
"    fsm-dot --json [-o FILE] [MACHINE]\n"
"\n"
"DESCRIPTION\n"
"    Every machine linked into lockstep (one states/<name>.def table each) is\n"
"    registered in the program; MACHINE is the .def base name, e.g. \"save\".\n"
"\n"
"    Without --list, --check or --json, prints MACHINE as a Graphviz digraph:\n"
"      - a node per state, its doc as tooltip; final states are doublecircles,\n"
"        the initial state is bold and has an arrow from a point;\n"
"      - an edge per row, labelled \"EVENT / action\" (just \"EVENT\" when the\n"
"        action is fsm_nop), the row's event doc and .def line as tooltip;\n"
"      - FAIL and CANCEL edges in red;\n"
"      - each FSM_ANY row expanded to every non-final state without its own\n"
"        row for that event, drawn dashed;\n"
"      - IGNORE rows only with --ignored: gray dotted self-loops, the reason\n"
"        as tooltip.\n"
"    Render with e.g.: fsm-dot save | dot -Tsvg -o save.svg\n"
"\n"
"OPTIONS\n"
"    -o, --output FILE   write to FILE instead of standard output\n"
"    -i, --ignored       also draw IGNORE rows\n"
"    -l, --list          list the machines: states, events, rows, file, doc\n"
"        --names         with --list: only the names, one per line\n"
"    -c, --check         check MACHINE, or every machine if none is given\n"
"    -j, --json          describe MACHINE, or every machine, as one JSON document:\n"
"                        states (doc, final), events (doc), and every row with\n"
"                        its kind (row, ignore, any), action, next state, .def\n"
"                        file and line, an IGNORE row's reason, whether its\n"
"                        action can fail (nofail), why no run can take it\n"
"                        (unreachable), and the states an ANY row applies to\n"
"                        (the library's ls_tables_json(); format in\n"
"                        include/lockstep/tables.h)\n"
"    -s, --source-dir DIR\n"
"                        repository root, to point problems at the line that\n"
"                        declares a state or event (default: $LOCKSTEP_SOURCE_DIR,\n"
"                        else the source tree fsm-dot was built from)\n"
"    -h, --help          show this text\n"
"\n"
"CHECKS\n"
"    Each problem is printed as \"file:line: machine: problem\". Reachability\n"
"    follows the engine: explicit rows win over FSM_ANY, ANY rows never apply\n"
"    in final states, IGNORE rows do not move the machine.\n"
"      no-final            the machine has no FSM_FINAL state\n"
"      unreachable         a state cannot be reached from the initial state\n"
"      no-path-to-final    a state can never reach a final state\n"
"      unhandled-fail      a non-final state has no row, IGNORE or ANY for FAIL\n"
"      unhandled-cancel    the same for CANCEL\n"
"      dead-row            a row whose state is unreachable (or an ANY row that\n"
"                          applies to no reachable state)\n"
"      unused-action       an action named only in dead rows\n"
"      final-has-rows      an explicit row out of a final state\n"
"      unused-event        an event declared but used by no row\n"
"      any-not-fail-cancel FSM_ANY for an event other than FAIL or CANCEL\n"
"      ignore-no-reason    an IGNORE row with an empty reason\n"
"    Every problem is an error: the tables must be tight. A clean machine\n"
"    prints one summary line.\n"
"\n"
"EXIT STATUS\n"
"    0  success (with --check: no problem found)\n"
"    1  --check found at least one problem\n"
"    2  usage error, unknown machine, or output could not be written\n"
"\n"
"EXAMPLES\n"
"    fsm-dot --list\n"
"    fsm-dot --ignored -o save.dot save && dot -Tsvg save.dot -o save.svg\n"
"    fsm-dot --check\n"
"    fsm-dot --json save | python3 -m json.tool\n"
"    cmake --build build --target diagrams   # build/diagrams/index.html\n";

__attribute__((format(printf, 1, 2), noreturn))
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fsm-dot: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'fsm-dot --help'.\n");
    exit(EXIT_USAGE);
}

static const struct fsm_def *find_or_die(const char *name)
{
    const struct fsm_def *d = fsm_def_find(name);
    if (d)
        return d;
    fprintf(stderr, "fsm-dot: unknown machine '%s'; ", name);
    if (fsm_all_defs_count == 0) {
        fprintf(stderr, "no machine is registered\n");
    } else {
        fprintf(stderr, "known machines:");
        for (size_t i = 0; i < fsm_all_defs_count; i++)
            fprintf(stderr, " %s", fsm_all_defs[i]->name);
        fprintf(stderr, "\n");
    }
    exit(EXIT_USAGE);
}

static void list_machines(FILE *out, bool names_only)
{
    if (names_only) {
        for (size_t i = 0; i < fsm_all_defs_count; i++)
            fprintf(out, "%s\n", fsm_all_defs[i]->name);
        return;
    }
    fprintf(out, "%-20s %6s %6s %5s  %-28s %s\n", "MACHINE", "STATES", "EVENTS", "ROWS",
            "FILE", "DOC");
    for (size_t i = 0; i < fsm_all_defs_count; i++) {
        const struct fsm_def *d = fsm_all_defs[i];
        fprintf(out, "%-20s %6d %6d %5d  %-28s %s\n", d->name, d->nstates, d->nevents,
                d->nrows, d->file, d->doc);
    }
    if (fsm_all_defs_count == 0)
        fprintf(out, "(no machine is registered)\n");
}

static void print_problem(const struct fsm_problem *p, void *data)
{
    char buf[1024];
    fsm_problem_format(p, buf, sizeof(buf));
    fprintf((FILE *)data, "%s\n", buf);
}

/* Returns the number of problems found in d. */
static int check_one(FILE *out, const struct fsm_def *d, const char *src_dir)
{
    int n = fsm_check(d, src_dir, print_problem, out);
    if (n == 0)
        fprintf(out, "%s: ok (%d states, %d events, %d rows)\n", d->name, d->nstates,
                d->nevents, d->nrows);
    else
        fprintf(out, "%s: %d problem%s\n", d->name, n, n == 1 ? "" : "s");
    return n;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "ignored", no_argument, NULL, 'i' },
        { "list", no_argument, NULL, 'l' },
        { "names", no_argument, NULL, 'n' },
        { "check", no_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "source-dir", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *output = NULL;
    const char *src_dir = getenv("LOCKSTEP_SOURCE_DIR");
    bool ignored = false, list = false, names = false, check = false, json = false;
    if (!src_dir || !*src_dir)
        src_dir = LOCKSTEP_SOURCE_DIR;

    int c;
    while ((c = getopt_long(argc, argv, "o:ilcjs:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'i': ignored = true; break;
        case 'l': list = true; break;
        case 'n': names = true; break;
        case 'c': check = true; break;
        case 'j': json = true; break;
        case 's': src_dir = optarg; break;
        case 'h': fputs(help_text, stdout); return 0;
        default: fprintf(stderr, "Try 'fsm-dot --help'.\n"); return EXIT_USAGE;
        }
    }
    int nargs = argc - optind;
    if (list + check + json > 1)
        usage_error("%s", "--list, --check and --json are exclusive");
    if (names && !list)
        usage_error("%s", "--names only goes with --list");
    if (list && nargs > 0)
        usage_error("--list takes no machine (got '%s')", argv[optind]);
    if (nargs > 1)
        usage_error("one machine at a time (extra argument '%s')", argv[optind + 1]);
    if (!list && !check && !json && nargs == 0)
        usage_error("%s", "no machine given (see --list)");

    const struct fsm_def *def = nargs ? find_or_die(argv[optind]) : NULL;

    FILE *out = stdout;
    if (output) {
        out = fopen(output, "we");
        if (!out) {
            fprintf(stderr, "fsm-dot: cannot open %s for writing: %s\n", output, strerror(errno));
            return EXIT_USAGE;
        }
    }

    int rc = 0;
    if (json) {
        struct ls_errbuf err = { 0 };
        char *doc = ls_tables_json(def ? def->name : NULL, &err);
        if (!doc) {
            fprintf(stderr, "fsm-dot: %s\n", err.msg);
            rc = EXIT_USAGE;
        } else {
            fprintf(out, "%s\n", doc);
            free(doc);
        }
    } else if (list) {
        list_machines(out, names);
    } else if (check) {
        int problems = 0;
        if (def) {
            problems = check_one(out, def, src_dir);
        } else {
            for (size_t i = 0; i < fsm_all_defs_count; i++)
                problems += check_one(out, fsm_all_defs[i], src_dir);
            if (fsm_all_defs_count == 0)
                fprintf(out, "fsm-dot: no machine is registered; nothing to check\n");
        }
        rc = problems ? EXIT_PROBLEMS : 0;
    } else {
        fsm_dot_write(out, def, ignored ? FSM_DOT_IGNORED : 0);
    }

    /* A full disk must not pass for a drawn graph or a clean check. */
    bool write_failed = fflush(out) != 0 || ferror(out);
    if (out != stdout)
        write_failed |= fclose(out) != 0;
    if (write_failed) {
        fprintf(stderr, "fsm-dot: writing %s failed: %s\n", output ? output : "standard output",
                strerror(errno));
        if (output)
            remove(output);
        return EXIT_USAGE;
    }
    return rc;
}
