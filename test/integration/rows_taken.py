#!/usr/bin/env python3
"""rows_taken.py TRACE [--title T] [--match REGEX [--every-row-of MACHINE ...]] DEF...

Which rows of the tables in DEF... the dispatches in TRACE (LOCKSTEP_TRACE
lines of the fault runs, concatenated) took. Prints "T: N of M" and a
"  not taken: machine: STATE + EVENT" line per missing row. With --match,
only rows whose "STATE EVENT" matches REGEX count, except in the machines
named by --every-row-of, where every row counts. Exit status 0: the report
is the result; the calling script decides what must have been taken."""
import argparse
import re

ap = argparse.ArgumentParser()
ap.add_argument("trace")
ap.add_argument("defs", nargs="+")
ap.add_argument("--title", default="rows taken by the fault runs")
ap.add_argument("--match")
ap.add_argument("--every-row-of", action="append", default=[])
a = ap.parse_args()

taken = set()
with open(a.trace, errors="replace") as t:
    for line in t:
        f = line.split()
        if len(f) > 6 and f[0] == "fsm" and f[1] != "0":
            taken.add((f[2], f[4], f[5]))
total, missing = 0, []
for path in a.defs:
    text = open(path).read()
    name = re.search(r"FSM_MACHINE\((\w+)", text).group(1)
    for m in re.finditer(r"FSM_ROW\((\w+),\s*(\w+),", text):
        st, ev = m.group(1), m.group(2)
        if a.match and name not in a.every_row_of and not re.search(a.match, f"{st} {ev}"):
            continue
        total += 1
        if (name, st, ev) not in taken:
            missing.append(f"{name}: {st} + {ev}")
print(f"{a.title}: {total - len(missing)} of {total}")
for r in missing:
    print(f"  not taken: {r}")
