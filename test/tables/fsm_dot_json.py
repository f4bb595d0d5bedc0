#!/usr/bin/env python3
"""test/tables/fsm_dot_json.py - `fsm-dot --json` describes every table whole.

The document parses; every machine `fsm-dot --list` shows is in it with as
many rows as --list counts, and as many as its .def file holds (FSM_ROW,
FSM_IGNORE and FSM_ANY lines); each row's file:line is that row in the .def
file; final states are the file's FSM_FINALs; `fsm-dot --json MACHINE` is
that machine's part of the whole; an unknown machine is a usage error."""
import json
import os
import re
import subprocess
import sys

FSM_DOT = os.environ["FSM_DOT"]
SRC = os.environ["LOCKSTEP_SOURCE_DIR"]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL - " + msg)


def run(*args):
    return subprocess.run([FSM_DOT, *args], capture_output=True, text=True)


whole = run("--json")
if whole.returncode != 0:
    sys.exit(f"fsm-dot --json exited {whole.returncode}: {whole.stderr}")
doc = json.loads(whole.stdout)
assert doc["format"] == 1, doc.get("format")
machines = {m["name"]: m for m in doc["machines"]}

listed = {}
for line in run("--list").stdout.splitlines()[1:]:
    f = line.split()
    listed[f[0]] = (int(f[1]), int(f[2]), int(f[3]), f[4])
if set(listed) != set(machines):
    fail(f"--list has {sorted(listed)}, --json has {sorted(machines)}")

total = 0
row_re = re.compile(r"^\s*FSM_(ROW|IGNORE|ANY)\(\s*(\w+)\s*,\s*(\w+)?")
for name, m in sorted(machines.items()):
    nstates, nevents, nrows, path = listed.get(name, (None,) * 4)
    rows = m["rows"]
    total += len(rows)
    if (len(m["states"]), len(m["events"]), len(rows)) != (nstates, nevents, nrows):
        fail(f"{name}: --json has {len(m['states'])} states, {len(m['events'])} events, "
             f"{len(rows)} rows; --list says {nstates}, {nevents}, {nrows}")
    if m["file"] != path:
        fail(f"{name}: file {m['file']} but --list says {path}")
    lines = open(os.path.join(SRC, m["file"])).read().splitlines()
    in_def = [l for l in lines if row_re.match(l)]
    if len(in_def) != len(rows):
        fail(f"{name}: {m['file']} holds {len(in_def)} rows, --json lists {len(rows)}")
    finals = {re.match(r"\s*FSM_FINAL\((\w+)", l).group(1)
              for l in lines if re.match(r"\s*FSM_FINAL\(", l)}
    if {s["name"] for s in m["states"] if s["final"]} != finals:
        fail(f"{name}: final states differ from the FSM_FINALs of {m['file']}")
    if not all(s["doc"] for s in m["states"]) or not all(e["doc"] for e in m["events"]):
        fail(f"{name}: a state or event without its doc")
    if m["initial"] != m["states"][0]["name"]:
        fail(f"{name}: initial {m['initial']} is not the first state declared")
    states = {s["name"] for s in m["states"]}
    explicit = {(r["state"], r["event"]) for r in rows if r["kind"] != "any"}
    nofail = set(re.findall(r"^\s*FSM_NOFAIL\(\s*(\w+)", "\n".join(lines), re.M))
    unreachable = set(re.findall(r"^\s*FSM_UNREACHABLE\(\s*(\w+)\s*,\s*(\w+)",
                                 "\n".join(lines), re.M))
    for r in rows:
        where = f"{name} {r['file']}:{r['line']}"
        g = row_re.match(lines[r["line"] - 1]) if 0 < r["line"] <= len(lines) else None
        kind = {"ROW": "row", "IGNORE": "ignore", "ANY": "any"}[g.group(1)] if g else None
        if kind != r["kind"]:
            fail(f"{where}: a {r['kind']} row, but the line is: {lines[r['line'] - 1]!r}")
            continue
        if kind == "any":
            if r["state"] is not None or g.group(2) != r["event"] or not r["applies_to"]:
                fail(f"{where}: ANY row {r}")
            # The engine's rule: every non-final state without a row or an
            # IGNORE of its own for the event, in declaration order.
            want = [st["name"] for st in m["states"] if not st["final"]
                    and (st["name"], r["event"]) not in explicit]
            if r["applies_to"] != want:
                fail(f"{where}: ANY row applies to {r['applies_to']}, want {want}")
        elif (g.group(2), g.group(3)) != (r["state"], r["event"]):
            fail(f"{where}: {r['state']} + {r['event']}, but the line is {lines[r['line'] - 1]!r}")
        if kind == "ignore" and (not r["reason"] or r["action"] is not None or r["next"] != r["state"]):
            fail(f"{where}: IGNORE row {r}")
        if kind != "ignore" and (not r["action"] or r["next"] not in states):
            fail(f"{where}: row {r}")
        if r["nofail"] != (kind != "ignore" and (r["action"] == "fsm_nop" or r["action"] in nofail)):
            fail(f"{where}: nofail {r['nofail']}, but the .def's FSM_NOFAILs say otherwise")
        if (r["unreachable"] is not None) != ((r["state"], r["event"]) in unreachable):
            fail(f"{where}: unreachable {r['unreachable']!r} disagrees with the .def")

for name in ("save", "restore"):
    one = run("--json", name)
    if one.returncode != 0 or json.loads(one.stdout)["machines"] != [machines.get(name)]:
        fail(f"fsm-dot --json {name} is not {name}'s part of the whole")
bad = run("--json", "no_such_machine")
if bad.returncode != 2 or "unknown machine 'no_such_machine'" not in bad.stderr or bad.stdout:
    fail(f"--json no_such_machine: exit {bad.returncode}, {bad.stderr!r}")
if run("--json", "--list").returncode != 2:
    fail("--json --list must be refused")

print(f"{len(machines)} machines, {total} rows (the .def files' count) parsed")
sys.exit(1 if failures else 0)
