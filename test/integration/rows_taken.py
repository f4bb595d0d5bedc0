#!/usr/bin/env python3
"""rows_taken.py TRACE [--title T] [--match REGEX [--every-row-of MACHINE ...]] DEF...
rows_taken.py --enforce ROWS_DIR [--need NAME ...] [--pending FILE] DEF...

Report mode: which rows of the tables in DEF... the dispatches in TRACE
(LOCKSTEP_TRACE lines of the fault runs, concatenated) took, rows marked
FSM_UNREACHABLE aside. Prints "T: N of M" and a "  not taken: machine: STATE + EVENT" line per missing row. With
--match, only rows whose "STATE EVENT" matches REGEX count, except in the
machines named by --every-row-of, where every row counts. Exit status 0: the
report is the result; the calling script decides what must have been taken.

Enforce mode (make test's row coverage): ROWS_DIR holds what the suite's
tests took: *.trace files (LOCKSTEP_TRACE lines) and *.rows files
("machine STATE EVENT" per line, test/states' enumerator). Every explicit
row (FSM_ROW, FSM_IGNORE) of every DEF must be taken by some test or marked
FSM_UNREACHABLE(STATE, EVENT, "reason") in its .def; exit status 1 names
each one that is neither, a row taken that its .def marks unreachable (the
mark is wrong), or a --need'ed input missing from ROWS_DIR (a test that did
not run). --pending FILE lists rows no test takes yet, "machine STATE EVENT
reason" per line: they are printed with their reason, not failed."""
import argparse
import glob
import os
import re
import sys

ROW_RE = re.compile(r"^\s*FSM_(ROW|IGNORE)\((\w+),\s*(\w+),", re.M)
MARK_RE = re.compile(r'^\s*FSM_UNREACHABLE\((\w+),\s*(\w+),\s*"([^"]*)"', re.M)


def trace_rows(path):
    """(machine, state, event) of every dispatch in a LOCKSTEP_TRACE file."""
    taken = set()
    with open(path, errors="replace") as t:
        for line in t:
            f = line.split()
            if len(f) > 6 and f[0] == "fsm" and f[1] != "0":
                taken.add((f[2], f[4], f[5]))
    return taken


def def_rows(path):
    """The machine's name, its explicit rows [(kind, state, event)] and its
    FSM_UNREACHABLE marks {(state, event): reason}."""
    text = open(path).read()
    name = re.search(r"FSM_MACHINE\((\w+)", text).group(1)
    rows = [(m.group(1), m.group(2), m.group(3)) for m in ROW_RE.finditer(text)]
    marks = {(m.group(1), m.group(2)): m.group(3) for m in MARK_RE.finditer(text)}
    return name, rows, marks


def report(a):
    taken = trace_rows(a.trace)
    total, missing, marked = 0, [], 0
    for path in a.defs:
        name, rows, marks = def_rows(path)
        for kind, st, ev in rows:
            if kind != "ROW":
                continue
            if a.match and name not in a.every_row_of and not re.search(a.match, f"{st} {ev}"):
                continue
            if marks.get((st, ev)):
                marked += 1   # FSM_UNREACHABLE, with its reason: no run can take it
                continue
            total += 1
            if (name, st, ev) not in taken:
                missing.append(f"{name}: {st} + {ev}")
    print(f"{a.title}: {total - len(missing)} of {total}" +
          (f" ({marked} more marked FSM_UNREACHABLE)" if marked else ""))
    for r in missing:
        print(f"  not taken: {r}")
    return 0


def pending_rows(path):
    """{(machine, state, event): reason} from a pending file."""
    rows = {}
    for line in open(path) if path else []:
        f = line.split(None, 3)
        if len(f) == 4 and not line.startswith("#"):
            rows[tuple(f[:3])] = f[3].strip()
    return rows


def enforce(a):
    taken, bad, pending = set(), 0, pending_rows(a.pending)
    for need in a.need:
        if not glob.glob(os.path.join(a.enforce, need + ".*")):
            print(f"row coverage: no rows from {need} in {a.enforce}: run the whole suite "
                  f"(make test), not a part of it")
            bad += 1
    for path in sorted(glob.glob(os.path.join(a.enforce, "*"))):
        if path.endswith(".trace"):
            taken |= trace_rows(path)
        elif path.endswith(".rows"):
            with open(path) as f:
                taken |= {tuple(line.split()[:3]) for line in f if len(line.split()) >= 3}
    for path in a.defs:
        name, rows, marks = def_rows(path)
        n_taken = n_marked = n_pending = 0
        for kind, st, ev in rows:
            if (name, st, ev) in taken and marks.get((st, ev)):
                print(f"  MARK WRONG: {name}: {st} + {ev} is taken, but its .def marks it "
                      f"FSM_UNREACHABLE")
                bad += 1
            elif (name, st, ev) in taken:
                n_taken += 1
                if (name, st, ev) in pending:
                    # Not a failure: a race a run takes only now and then is
                    # listed pending on purpose; a row taken every run is not.
                    print(f"  taken, yet listed pending: {name}: {st} + {ev} (off "
                          f"rows_pending.txt, unless only a race takes it)")
            elif marks.get((st, ev)):
                n_marked += 1
            elif (name, st, ev) in pending:
                n_pending += 1
                print(f"  pending: {name}: {st} + {ev}: {pending[(name, st, ev)]}")
            else:
                print(f"  NOT COVERED: {name}: {st} + {ev} ({os.path.relpath(path)}): no test "
                      f"takes it and its .def does not mark it FSM_UNREACHABLE with a reason")
                bad += 1
        print(f"row coverage: {name:16} {n_taken:3} of {len(rows):3} taken, {n_marked} marked "
              f"unreachable, {n_pending} pending")
    print(f"row coverage: {'FAILED' if bad else 'ok'}")
    return 1 if bad else 0


ap = argparse.ArgumentParser()
ap.add_argument("--enforce", metavar="ROWS_DIR")
ap.add_argument("--need", action="append", default=[])
ap.add_argument("--pending")
ap.add_argument("--title", default="rows taken by the fault runs")
ap.add_argument("--match")
ap.add_argument("--every-row-of", action="append", default=[])
ap.add_argument("paths", nargs="+")
a = ap.parse_intermixed_args()
if a.enforce:
    a.defs = a.paths
    sys.exit(enforce(a))
a.trace, a.defs = a.paths[0], a.paths[1:]
if not a.defs:
    ap.error("no .def given")
sys.exit(report(a))
