#!/usr/bin/env python3
"""checkpoints.py: a device state loaded again and again into one domain.

A COLO secondary's device model takes a new device state at every checkpoint,
and Debian's QEMU 7.2 takes one per process (-incoming), so lockstep-simd keeps
a standby QEMU (-incoming defer) that takes the next state and replaces the
domain's QEMU (`lockstep sim dm-standby`, `lockstep sim dm-load`). Checked
here with real QEMUs: LOADS distinct states (a primary domain's QEMU, run a
little between saves) go into a secondary domain, each followed by a save of
the secondary's QEMU that must equal what was loaded, byte for byte; the old
QEMU is gone each time; then the failures: a state QEMU refuses (its own
reason in the error, the domain keeps its QEMU), a standby killed while it
waits (reported; the next load starts another), a QEMU declared
load-state-in-place that is not (7.2 aborts: the error names the assertion),
and a destroy with a standby waiting. No orphan QEMU at the end.

Env: LOCKSTEP_BIN, LOCKSTEP_RUNDIR (a private daemon), WORK. Prints
"ok - ..."/"FAIL - ..." lines and "N passed, M failed"; exit 1 on a failure.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from simq import Daemon  # noqa: E402  (the daemon's protocol, without a process per question)

L = os.environ["LOCKSTEP_BIN"]
RUN = os.environ["LOCKSTEP_RUNDIR"]
WORK = os.environ["WORK"]
LOADS = int(os.environ.get("LOADS", "24"))
passed = failed = 0


def check(what, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok   - " + what)
    else:
        failed += 1
        print("FAIL - " + what)
    sys.stdout.flush()


def sim(*args, ok=True):
    p = subprocess.run([L, "sim", *map(str, args)], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit("lockstep sim %s failed: %s" % (" ".join(map(str, args)), p.stderr))
    return p


DAEMON = Daemon()
OP_DM_INFO = 17


def dm(domid):
    """`lockstep sim dm`'s keys from the daemon's struct simp_dm_info (proto.h)."""
    body = DAEMON.rpc(OP_DM_INFO, domid)
    present, alive, pid, status = struct.unpack_from("<IIii", body)
    loads, standby = struct.unpack_from("<Ii", body, 648)
    return {"pid": str(pid), "qmp": body[24:136].split(b"\0")[0].decode(),
            "state": "running" if alive else "none" if not present else "died %#x" % status,
            "loads": str(loads), "standby": str(standby)}


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.reply()
        self.cmd("qmp_capabilities")

    def reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QEMU closed its QMP socket")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req) + "\n")
        self.f.flush()
        msg = self.reply()
        if "error" in msg:
            raise RuntimeError("%s: %s" % (name, msg["error"]))
        return msg["return"]

    def close(self):
        self.s.close()


def save(q, path):
    q.cmd("xen-save-devices-state", filename=path, live=False)
    with open(path, "rb") as f:
        return f.read()


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return ") Z " not in f.read()
    except FileNotFoundError:
        return False


def gone(pid):
    """A replaced QEMU is SIGKILLed at once and reaped by the daemon's SIGCHLD
    handling: its exit may take some tens of ms."""
    for _ in range(300):
        if not alive(pid):
            return True
        time.sleep(0.01)
    return False


def qemus(expect=None):
    """Live QEMUs of this daemon (a dying one counts until it is gone); with
    expect, waits up to 3 s for that count."""
    for _ in range(300):
        p = subprocess.run(["pgrep", "-f", "qmp unix:%s/" % RUN], capture_output=True, text=True)
        n = sum(alive(int(pid)) for pid in p.stdout.split())
        if expect is None or n == expect:
            return n
        time.sleep(0.01)
    return n


prim = int(sim("create", "--type", "hvm", "--memory", "16M", "--seed", "7").stdout)
sec = int(sim("create", "--type", "hvm", "--memory", "16M", "--seed", "7").stdout)
pq = Qmp(dm(prim)["qmp"])
states, loaded_ok, resave_ok, old_gone, distinct = [], 0, 0, 0, 0
times = []
for i in range(LOADS):
    # The primary runs a little between checkpoints: its timers move on.
    pq.cmd("cont")
    time.sleep(0.002)
    pq.cmd("stop")
    st = save(pq, "%s/state%d.bin" % (WORK, i))
    distinct += st not in states
    states.append(st)
    old = int(dm(sec)["pid"])
    if i == 0:
        sim("dm-standby", sec)      # then, after each load, for the next one
    t0 = time.monotonic()
    p = sim("dm-load", sec, "%s/state%d.bin" % (WORK, i), ok=False)
    times.append(time.monotonic() - t0)
    if p.returncode != 0:
        print("# load %d failed: %s" % (i, p.stderr.strip()))
        continue
    info = dm(sec)
    sq = Qmp(info["qmp"])
    status = sq.cmd("query-status")["status"]
    again = save(sq, "%s/resave%d.bin" % (WORK, i))
    sq.close()
    sim("dm-standby", sec)          # the checkpoint interval: the next load's QEMU starts
    loaded_ok += int(info["pid"]) != old and status == "paused" and info["loads"] == str(i + 1)
    resave_ok += again == st
    old_gone += gone(old)
pq.close()
print("# %d loads: median %.1f ms per `lockstep sim dm-load` (a CLI process each; its standby "
      "started one load earlier)" % (LOADS, sorted(times)[len(times) // 2] * 1e3))
check("%d primary states, %d distinct (the primary ran between them)" % (LOADS, distinct),
      distinct == LOADS)
check("%d/%d loads: a new QEMU, paused, is the secondary's device model" % (loaded_ok, LOADS),
      loaded_ok == LOADS)
check("%d/%d loads: the secondary's QEMU saves exactly the state it was given" %
      (resave_ok, LOADS), resave_ok == LOADS)
check("%d/%d loads: the QEMU it replaced is gone (killed and reaped)" % (old_gone, LOADS),
      old_gone == LOADS)
sim("dm-standby", sec, ok=False)  # started after the last load: none must be left
sim("dm", sec)
check("after the loads: two domains, two QEMUs and the next load's standby",
      qemus(3) == 3 and dm(sec)["standby"] != "0")
sim("dm-load", sec, "%s/state%d.bin" % (WORK, LOADS - 1))

# A state QEMU refuses: its reason, and the domain keeps the QEMU it had.
with open("%s/trunc.bin" % WORK, "wb") as f:
    f.write(states[-1][:5000])
before = dm(sec)
p = sim("dm-load", sec, "%s/trunc.bin" % WORK, ok=False)
print("# refused: " + p.stderr.strip())
check("a truncated state: refused, with QEMU's own reason (load of migration failed)",
      p.returncode == 1 and "exited with status 1 while loading the device state" in p.stderr
      and "load of migration failed" in p.stderr)
after = dm(sec)
check("a truncated state: the domain keeps its QEMU, alive, no standby, no orphan",
      after["pid"] == before["pid"] and after["state"] == "running" and after["standby"] == "0"
      and qemus(2) == 2)

# A standby killed while it waits: reported by the daemon; the next load
# starts another and succeeds.
sim("dm-standby", sec)
sb = int(dm(sec)["standby"])
os.kill(sb, 9)
for _ in range(200):
    if dm(sec)["standby"] == "0":
        break
    time.sleep(0.01)
log = open("%s/simd.log" % RUN).read()
check("a standby killed while it waits: the daemon reaps and reports it",
      "standby device model (pid %d) killed by signal 9" % sb in log and not alive(sb))
p = sim("dm-load", sec, "%s/state0.bin" % WORK, ok=False)
info = dm(sec)
sq = Qmp(info["qmp"])
again = save(sq, "%s/resave-after-kill.bin" % WORK)
sq.close()
check("after a killed standby: the next load starts another and takes the state",
      p.returncode == 0 and int(info["pid"]) != sb and again == states[0] and qemus(2) == 2)

# Declared load-state-in-place, but 7.2 aborts: the error names QEMU's assertion.
inplace = int(sim("create", "--type", "hvm", "--memory", "16M", "--seed", "7",
                  "--dm-load-state-in-place").stdout)
p = sim("dm-load", inplace, "%s/state0.bin" % WORK, ok=False)
print("# in place: " + p.stderr.strip())
info = sim("dm", inplace).stdout
check("load-state-in-place on QEMU 7.2: an error naming its abort and yank assertion",
      p.returncode == 1 and "killed by signal 6" in p.stderr and "yank" in p.stderr
      and "state killed by signal 6 (Aborted)" in info)
sim("destroy", inplace)

# Destroying a domain with a standby waiting ends both QEMUs.
sim("dm-standby", sec)
sb = int(dm(sec)["standby"])
cur = int(dm(sec)["pid"])
sim("destroy", sec)
sim("destroy", prim)
check("destroy with a standby waiting: its QEMU and the standby are gone, no QEMU left",
      not alive(sb) and not alive(cur) and qemus(0) == 0)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
