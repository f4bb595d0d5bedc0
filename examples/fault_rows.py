#!/usr/bin/env python3
"""examples/fault_rows.py [MACHINE] - fault every row of a table, from outside.

What a fault-injection suite can do with the tables alone. The runs are
saves; MACHINE is save (the default) or a machine a save runs (stream_tx,
memtask). `fsm-dot --json save` lists the rows. One traced save (LOCKSTEP_TRACE=1
numbers every dispatch) shows which dispatch took which row. Then, for each
row the save took, two more saves of the sim guest:
  - FSM_FAULT=SEQ:5  that dispatch fails as if its action returned -EIO;
  - FSM_STOP=SEQ     the process freezes right after it; the script sends
                     SIGINT and lets it go on, so the cancel lands exactly there.
A row first taken on a failure path is failed in turn, after the faults that
led there (breadth first), so every row a run reaches is failed once.
Each must end cleanly (exit 0 or 1, never a crash) with the guest running:
`save --keep` resumes it on success, and every failure path resumes it. The rows
no run took (a real QEMU's rows, say) are listed.

Needs a build with the fault hooks (FSM_FAULT, FSM_STOP); without them it
says so and exits 77. Environment: FSM_DOT, LOCKSTEP_BIN (default: from PATH);
each run uses the sim daemon of LOCKSTEP_RUNDIR."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FSM_DOT = os.environ.get("FSM_DOT", "fsm-dot")
LOCKSTEP = os.environ.get("LOCKSTEP_BIN", "lockstep")
MACHINE = sys.argv[1] if len(sys.argv) > 1 else "save"
ENV = {k: v for k, v in os.environ.items() if k not in ("FSM_FAULT", "FSM_STOP")}
ENV["LOCKSTEP_TRACE"] = "1"
OUT = os.path.join(tempfile.mkdtemp(prefix="fault-rows."), "save.xl")


def sim(*args):
    return subprocess.run([LOCKSTEP, "sim", *args], env=ENV, capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def state(domid):
    p = subprocess.run([LOCKSTEP, "sim", "info", str(domid)], env=ENV, capture_output=True,
                       text=True, timeout=60)
    return p.stdout.split()[3] if p.returncode == 0 else "gone"   # domid name type STATE


guest = None   # one 1 MiB guest serves every run that leaves it running


def save(extra_env=None, stop_and_interrupt=False):
    """One save --keep of the guest: (exit status, trace, guest state)."""
    global guest
    if guest is None:
        guest = sim("create", "--type", "pv", "--memory", "1M", "--no-device-model")
    dom = guest
    p = subprocess.Popen([LOCKSTEP, "save", "--keep", "--domid", dom, "-o", OUT],
                         env=dict(ENV, **(extra_env or {})), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if stop_and_interrupt:   # FSM_STOP froze it at the row: cancel it right there
        stat = f"/proc/{p.pid}/stat"
        for _ in range(3000):
            if p.poll() is not None or open(stat).read().split(") ")[1][0] == "T":
                break
            time.sleep(0.01)
        p.send_signal(signal.SIGINT)
        p.send_signal(signal.SIGCONT)
    trace = p.communicate(timeout=60)[1]
    st = state(dom)
    if st != "running":   # a wrong run: the next one gets a fresh guest
        if st != "gone":
            sim("destroy", dom)
        guest = None
    return p.returncode, trace, st


def taken(trace):
    """(seq, state, event) of each dispatch of MACHINE in a trace."""
    for line in trace.splitlines():
        f = line.split()
        if len(f) > 8 and f[0] == "fsm" and f[1] != "0" and f[2] == MACHINE:
            yield int(f[1]), f[4], f[5]


doc = json.loads(subprocess.run([FSM_DOT, "--json", MACHINE], capture_output=True, text=True,
                                check=True).stdout)
rows = doc["machines"][0]["rows"]
explicit = {(r["state"], r["event"]): r for r in rows if r["kind"] != "any"}
anyrow = {r["event"]: r for r in rows if r["kind"] == "any"}


def row_of(st, ev):
    return explicit.get((st, ev)) or anyrow.get(ev)


def name(r):
    if r["kind"] == "ignore":
        return f"{r['state']} + {r['event']}: ignored ({r['reason']})"
    return f"{r['state'] or '(any)'} + {r['event']} -> {r['action']} -> {r['next']}"


print(f"{MACHINE}: {len(rows)} rows in {rows[0]['file']}")
for r in rows:
    print(f"  {r['file']}:{r['line']}: {name(r)}")

rc, trace, st = save({"FSM_FAULT": "1:5"})
if "injected" not in trace:
    print("skipped: this build has no fault hooks (FSM_FAULT, FSM_STOP): "
          "configure with -DLOCKSTEP_FAULT_HOOKS=ON")
    sys.exit(77)
rc, trace, st = save()
if rc != 0 or st != "running":
    sys.exit(f"the reference save failed (exit {rc}, guest {st}):\n{trace}")
bad, covered, faulted = 0, set(), set()


def run_checked(how, where, r, env, stop=False):
    """One faulted save; it must end cleanly with the guest running."""
    global bad
    rc, t, st = save(env, stop)
    covered.update(id(row_of(s, e)) for _, s, e in taken(t))
    ok = rc in (0, 1) and st == "running"
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {how:11} {where:28} line {r['line']:3} {name(r)}: "
          f"exit {rc}, guest {st}")
    return t


# Each row of the happy path: frozen there (FSM_STOP) and interrupted.
seen = set()
for seq, s, e in taken(trace):
    r = row_of(s, e)
    if r["kind"] != "ignore" and id(r) not in seen:
        seen.add(id(r))
        run_checked("stop+SIGINT", f"at {seq}", r, {"FSM_STOP": str(seq)}, True)

# Each row any run takes, failed once, breadth first: a row first reached on
# a failure path is faulted after the faults that led there (FSM_FAULT takes
# a list). A "nofail" row (fsm_nop, FSM_NOFAIL) cannot fail: the engine
# skips a fault there.
queue = [([], trace)]
while queue:
    specs, t = queue.pop(0)
    after = int(specs[-1].split(":")[0]) if specs else 0
    for seq, s, e in taken(t):
        r = row_of(s, e)
        covered.add(id(r))
        if seq <= after or r["kind"] == "ignore" or r["nofail"] or id(r) in faulted:
            continue
        faulted.add(id(r))
        spec = specs + [f"{seq}:5"]
        t2 = run_checked("fault", "FSM_FAULT=" + ",".join(spec), r, {"FSM_FAULT": ",".join(spec)})
        if len(spec) < 8:
            queue.append((spec, t2))

real = [r for r in rows if r["kind"] != "ignore"]
missed = [r for r in real if id(r) not in covered]
marked = [r for r in missed if r["unreachable"]]
print(f"{MACHINE}: {len(seen)} rows of the happy path interrupted, {len(faulted)} rows failed, "
      f"{bad} runs wrong; {len(real) - len(missed)} of its {len(real)} rows (IGNORE rows "
      f"aside) taken by all the runs; {len(marked)} more marked unreachable; not taken:")
for r in missed:
    if not r["unreachable"]:
        print(f"  line {r['line']}: {name(r)}")
if guest:
    sim("destroy", guest)
shutil.rmtree(os.path.dirname(OUT), ignore_errors=True)
sys.exit(1 if bad else 0)
