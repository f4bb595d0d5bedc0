#!/usr/bin/env python3
"""test/migrate/faults.py sender|receiver - migrations broken at sampled trace points.

A reference migration of each guest type counts the dispatches of the side
under test (its trace sequence numbers). Then, for POINTS seeded points k
chosen from them (every dispatch of the role's own machine, where it deals
with its peer, and a seeded sample of its children's), each a separate run: that side's lockstep stops itself right
after dispatch k (FSM_STOP=k) and the test
  kill     SIGKILLs it there;
  reset    breaks the TCP connection under it (an RST to both ends, through a
           proxy between the two sides) and lets it go on;
  host     (receiver only) SIGKILLs the destination host: its sim daemon, then
           its lockstep;
  sigint   sends it SIGINT (a user's ^C at that point) and lets it go on;
  fault    makes that dispatch's action fail (FSM_FAULT=k:EIO);
and once each, backend refusals (LOCKSTEP_SIM_FAULT): the receiver cannot
unpause its copy, the sender cannot give the go-ahead, destroy or resume its
copy, or set its guard.
Every mode runs at the same points, the SIGKILL on the other guest type
than the rest at each; MIGRATE_FAULT_KILL=all SIGKILLs at every dispatch.
A failure and a cancel at every row of migrate_send and migrate_receive
are the in-process enumerator's work (test/states), in microseconds a run.
MIGRATE_FAULT_POINTS=all runs every mode at every dispatch.
Runs go JOBS at a time, each worker with hosts of its own.
The guest keeps dirtying memory throughout. Every run is bounded in time, and
after each:
  - never two running copies; exactly one, unless a surviving side reported
    that the go-ahead went unconfirmed (then the source copy is suspended);
  - what each surviving side reported is true (where the guest runs or not);
  - a destination copy holds the source's state at the suspend (digests); a
    source copy that runs holds exactly the state of its own writes so far (its
    digest equals a fresh guest's with the same writes replayed);
  - no partial copy left at the destination, no lockstep process left over,
    no fd leaked by a lockstep (LOCKSTEP_CHECK_FDS) or by a daemon, no
    sanitizer report.
The rows the runs took are listed against the migration tables.
"""
import os
import random
import re
import shutil
import signal
import sys
import time

import migtest as mt

SIDE = sys.argv[1] if len(sys.argv) > 1 else "sender"
MODES = ["kill", "reset"] + (["host"] if SIDE == "receiver" else []) + ["sigint", "fault"]
JOBS = int(os.environ.get("MIGRATE_FAULT_JOBS", "3"))
POINTS = os.environ.get("MIGRATE_FAULT_POINTS", "5")
# A SIGKILL at every dispatch (MIGRATE_FAULT_KILL=all) took no row the sampled
# points and the other producers do not take, at a third of this test's CPU.
EVERY_DISPATCH = ["kill"] if os.environ.get("MIGRATE_FAULT_KILL") == "all" else []
SEED = int(os.environ.get("MIGRATE_FAULT_SEED", "20261122"))
MEMORY_KIB = 2 * 1024   # pages enough for every row; more only copy longer
RATE = 2000
SENDER_ARGS = ["--timeout", "5", "--max-rounds", "2", "--dirty-threshold", "1"]
RECEIVER_ARGS = ["--timeout", "5"]

res = mt.Results()
work = mt.workdir()
rows_taken = set()


class Worker:
    """Two hosts of its own; runs never share a daemon."""

    def __init__(self, n):
        self.src, self.dst = mt.Host(work, f"src{n}"), mt.Host(work, f"dst{n}")
        self.ssim, self.dsim = mt.Simd(self.src), mt.Simd(self.dst)
        self.base_src_fds = None

    def stop(self):
        self.ssim.close()
        self.dsim.close()
        self.src.stop()
        self.dst.stop()


def trace_rows(text):
    for line in text.splitlines():
        f = line.split()
        if len(f) > 6 and f[0] == "fsm" and f[1] != "0":
            rows_taken.add((f[2], f[4], f[5]))


def run(w, type_, seed, stop=None, mode=None):
    """One migration through a proxy; stop/mode break the side under test."""
    src, dst, ssim, dsim = w.src, w.dst, w.ssim, w.dsim
    sdom = ssim.create(type_, MEMORY_KIB, seed, rate=RATE)
    extra_env = {"LOCKSTEP_TRACE": "1"}
    senv = dict(src.env, **extra_env)
    renv = dict(dst.env, **extra_env)
    victim_env = senv if SIDE == "sender" else renv
    if mode == "backend":
        for who, ops in stop.items():
            (senv if who == "sender" else renv)["LOCKSTEP_SIM_FAULT"] = ops
        stop = None
    if stop and mode == "fault":
        victim_env["FSM_FAULT"] = f"{stop}:5"
    elif stop:
        victim_env["FSM_STOP"] = str(stop)
    r, addr = mt.start_receiver(dst, RECEIVER_ARGS, env=renv)
    proxy = mt.Proxy(int(addr.rsplit(":", 1)[1]))
    s = mt.Proc(["migrate", "--domid", str(sdom), "--to", f"tcp:127.0.0.1:{proxy.port}",
                 *SENDER_ARGS], senv, name="sender")
    victim = s if SIDE == "sender" else r
    stopped = killed = False
    if stop and mode != "fault":
        end = time.time() + 60
        while time.time() < end and victim.p.poll() is None:
            if mt.proc_state(victim.pid) == "T":
                stopped = True
                break
            time.sleep(0.002)
        if stopped and mode == "kill":
            victim.kill(signal.SIGKILL)
            killed = True
        elif stopped and mode == "reset":
            proxy.reset()
            victim.kill(signal.SIGCONT)
        elif stopped and mode == "sigint":
            victim.kill(signal.SIGINT)
            victim.kill(signal.SIGCONT)
        elif stopped and mode == "host":
            dst.kill_daemon(signal.SIGKILL)
            dsim.close()
            victim.kill(signal.SIGKILL)
            killed = True
    src_rc, dst_rc = s.wait(60), r.wait(60)
    proxy.close()
    if mode == "fault":
        stopped = f"injected fault at dispatch {stop}" in (s if SIDE == "sender" else r).text()
    trace_rows(s.text() + r.text())
    return dict(sdom=sdom, s=s, r=r, src_rc=src_rc, dst_rc=dst_rc, stopped=stopped, mode=mode,
                sender_killed=killed and SIDE == "sender",
                receiver_killed=killed and SIDE == "receiver", type=type_, seed=seed)


def dispatches(text):
    return max([int(l.split()[1]) for l in text.splitlines()
                if l.startswith("fsm ") and l.split()[1].isdigit()] + [0])


def verify(w, x):
    """The checks every run must pass; returns a list of problems."""
    src, dst, ssim, dsim = w.src, w.dst, w.ssim, w.dsim
    bad = []
    s, r, sdom = x["s"], x["r"], x["sdom"]
    sout = None if x["sender_killed"] else s.outcome()
    rout = None if x["receiver_killed"] else r.outcome()
    for name, rc, out, alive in (("sender", x["src_rc"], sout, not x["sender_killed"]),
                                 ("receiver", x["dst_rc"], rout, not x["receiver_killed"])):
        if not alive:
            continue
        if rc is None:
            bad.append(f"the {name} did not finish within 60 s")
        elif rc not in (0, 1, 3):
            bad.append(f"the {name} exited {rc} (97 fd leak, 98/99 sanitizer):\n"
                       + "".join(l for l in (s if name == "sender" else r).err
                                 if not l.startswith("fsm ")))
        elif out is None:
            bad.append(f"the {name} reported no outcome")
    src_doms, dst_doms = ssim.domains(), dsim.domains()
    # A dead receiver's guard acts when its daemon notices the lost client.
    end = time.time() + 2
    while any(st != "running" for st in dst_doms.values()) and time.time() < end:
        time.sleep(0.02)
        dst_doms = dsim.domains()
    src_state = src_doms.get(sdom)
    dst_running = [d for d, st in dst_doms.items() if st == "running"]
    dst_other = [d for d, st in dst_doms.items() if st != "running"]
    running = (src_state == "running") + len(dst_running)
    if dst_other:
        bad.append(f"a copy left at the destination that does not run: {dst_doms}")
    if running > 1:
        bad.append(f"TWO running copies: source {src_state}, destination {dst_doms}")
    # A destination host that dies after the sender got the report that the
    # guest runs there takes the guest with it: that is the host's death, not
    # the migration's failure (the sender's report was true when made).
    died_with_host = x["mode"] == "host" and sout == "destination-runs" and not dst_doms \
        and src_state is None
    if running == 0 and not died_with_host and \
            not (sout in ("unconfirmed", "source-suspended") and src_state == "suspended"):
        bad.append(f"no running copy and no true report of why: source {src_state}, "
                   f"destination {dst_doms}, sender said {sout}, receiver said {rout}")
    # The reports are true.
    truth = {
        "destination-runs": len(dst_running) == 1 and src_state is None,
        "source-left": len(dst_running) == 1 and src_state == "suspended",
        "source-runs": src_state == "running" and not dst_doms,
        "unconfirmed": src_state == "suspended",
        "source-suspended": src_state == "suspended" and not dst_running,
        None: True,
    }
    if sout in truth and not truth[sout] and not died_with_host:
        bad.append(f"the sender said {sout}, but source {src_state}, destination {dst_doms}")
    if rout in ("destination-runs", "runs-unconfirmed") and \
            dst_doms.get(int(r.field("domid") or 0)) != "running":
        bad.append(f"the receiver said {rout}, but destination {dst_doms}")
    if rout == "not-received" and dst_doms:
        bad.append(f"the receiver said not-received, but destination {dst_doms}")
    # The state of the copy that runs.
    if dst_running:
        # The source's state at the suspend: as the sender printed it, or its
        # suspended copy; in any case it must be the guest's own writes so far
        # (the count travels in its vCPU registers) replayed on a fresh guest.
        got = dsim.digest(dst_running[0])
        want = s.field("digest") if not x["sender_killed"] and s.field("digest") else \
            (ssim.digest(sdom) if src_state == "suspended" else None)
        if want is not None and want != got:
            bad.append(f"the destination's copy has digest {got}, the source's state at the "
                       f"suspend was {want}")
        k = dsim.writes(dst_running[0])
        if ssim.replay_digest(x["type"], MEMORY_KIB, x["seed"], k) != got:
            bad.append(f"the destination's copy is not the guest's state after its {k} writes")
    if src_state == "running":
        ssim.pause(sdom)
        k = ssim.writes(sdom)
        want = ssim.replay_digest(x["type"], MEMORY_KIB, x["seed"], k)
        if ssim.digest(sdom) != want:
            bad.append(f"the source's copy after {k} writes differs from those writes replayed")
    if src_state == "suspended" and sout == "unconfirmed" and s.field("digest") and \
            ssim.digest(sdom) != s.field("digest"):
        bad.append("the suspended source copy is not the state the sender reported")
    # Nothing left behind.
    for d in src_doms:
        ssim.destroy(d)
    for d in dst_doms:
        dsim.destroy(d)
    for p in (s, r):
        if mt.alive(p.pid):
            bad.append(f"the {p.name} (pid {p.pid}) is still around")
            p.kill()
    for h in (src, dst):
        n = len(mt.daemons_of(h))
        if n > 1:
            bad.append(f"{n} sim daemons serve {h.name}")
    if w.base_src_fds is None:
        w.base_src_fds = daemon_fds_quiet(src)
    elif daemon_fds_settle(src, w.base_src_fds) != w.base_src_fds:
        bad.append(f"the source daemon holds {src.daemon_fds()} fds, {w.base_src_fds} before")
    return bad


def daemon_fds_quiet(host, secs=3, still=0.3):
    """The daemon's fd count once it has not changed for `still` seconds: a
    destroyed domain's memfd is closed by a thread of the daemon a little after
    the destroy returns, so a count taken at once can hold one fd too many."""
    end = time.time() + secs
    n = host.daemon_fds()
    since = time.time()
    while time.time() < end and time.time() - since < still:
        time.sleep(0.02)
        m = host.daemon_fds()
        if m != n:
            n, since = m, time.time()
    return n


def daemon_fds_settle(host, want, secs=3):
    end = time.time() + secs
    n = host.daemon_fds()
    while n != want and time.time() < end:
        time.sleep(0.02)
        n = host.daemon_fds()
    return n


def work_through(jobs):
    """Run (mode, k, type, seed) jobs on JOBS workers; returns problems per mode."""
    import queue
    import threading
    q = queue.Queue()
    for j in jobs:
        q.put(j)
    problems = {}
    reached = {}
    lock = threading.Lock()

    def worker(n):
        w = Worker(n)
        try:
            while True:
                try:
                    mode, k, type_, seed = q.get_nowait()
                except queue.Empty:
                    return
                t = time.time()
                try:
                    x = run(w, type_, seed, stop=k, mode=mode)
                    bad = verify(w, x)
                except (mt.Failed, OSError) as e:
                    x, bad = {"stopped": False, "s": None, "r": None}, [f"harness: {e}"]
                with lock:
                    reached[mode] = reached.get(mode, 0) + bool(x["stopped"])
                    if os.environ.get("MIGRATE_FAULT_TIMES"):
                        print(f"  {mode}@{k} {type_}: {time.time() - t:.2f} s", flush=True)
                    if bad:
                        problems.setdefault(mode, []).append(
                            f"  {SIDE} {mode} at dispatch {k} ({type_}):\n    " + "\n    ".join(bad))
        finally:
            w.stop()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(JOBS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return problems, reached


def main():
    rng = random.Random(SEED)
    # Reference runs: how many dispatches the side under test makes.
    w = Worker("ref")
    counts = {}
    own = set()    # the role's own machine's dispatches: its exchanges with the peer
    role = "migrate_send" if SIDE == "sender" else "migrate_receive"
    for type_ in ("pv", "hvm"):
        x = run(w, type_, 1)
        v = x["s"] if SIDE == "sender" else x["r"]
        counts[type_] = dispatches(v.text())
        own |= {int(l.split()[1]) for l in v.text().splitlines()
                if l.startswith("fsm ") and l.split()[1].isdigit() and l.split()[2] == role}
        ok = x["src_rc"] == 0 and x["dst_rc"] == 0
        bad = verify(w, x)
        res.check(f"{type_} reference migration ({counts[type_]} {SIDE} dispatches)",
                  ok and not bad, "\n".join(bad) + x["s"].text()[-2000:] + x["r"].text()[-2000:])
    w.stop()
    n = min(counts.values())
    every = list(range(1, max(counts.values()) + 1))
    if POINTS == "all":
        points = every
    else:   # every dispatch of the role's own machine, and a sample of its children's
        rest = [k for k in range(1, n + 1) if k not in own]
        points = sorted({k for k in own if k <= n} |
                        set(rng.sample(rest, min(int(POINTS), len(rest)))))
    print(f"{SIDE}: {len(points)} points of {n} dispatches (those of {role}, and a sample "
          f"of seed {SEED}): {points}", flush=True)
    jobs = []
    for mode in MODES:
        pts = every if mode in EVERY_DISPATCH else points
        flip = mode == "kill"   # the other type than the other modes' at k
        for i, k in enumerate(pts):
            jobs.append((mode, k, "pv" if (i + flip) % 2 == 0 else "hvm", 100 + len(jobs)))
    # Backend refusals, once each (both sides' rows, whichever side this is).
    backend = [{"receiver": "unpause"}, {"sender": "handoff"}, {"sender": "destroy"},
               {"sender": "resume", "receiver": "unpause"}, {"sender": "guard"}]
    if SIDE == "receiver":
        backend = backend[:1] + [{"receiver": "destroy,unpause"}]
    for i, b in enumerate(backend):
        jobs.append(("backend", b, "pv" if i % 2 == 0 else "hvm", 900 + i))
    t0 = time.time()
    problems, reached = work_through(jobs)
    for mode in MODES + ["backend"]:
        total = sum(1 for j in jobs if j[0] == mode)
        for p in problems.get(mode, [])[:5]:
            print(p, flush=True)
        what = f"{total} refusals" if mode == "backend" else \
            f"{total} points ({reached.get(mode, 0)} reached)"
        res.check(f"{SIDE} {mode}: {what}, each run ends with one running copy or a true "
                  f"report, nothing left behind", not problems.get(mode))
    print(f"{len(jobs)} runs in {time.time() - t0:.0f} s on {JOBS} workers", flush=True)
    # Rows taken, against the migration tables.
    total, missing = 0, []
    for name in ("migrate_send", "migrate_receive"):
        text = open(os.path.join(mt.SRC, "states", name + ".def")).read()
        for m in re.finditer(r"FSM_ROW\((\w+),\s*(\w+),", text):
            total += 1
            if (name, m.group(1), m.group(2)) not in rows_taken:
                missing.append(f"{name}: {m.group(1)} + {m.group(2)}")
    print(f"migration rows taken by these runs: {total - len(missing)} of {total}")
    # Every row taken, of every machine, for the suite's row-coverage check.
    if os.environ.get("LOCKSTEP_BUILD_DIR"):
        rows_dir = os.path.join(os.environ["LOCKSTEP_BUILD_DIR"], "rows")
        os.makedirs(rows_dir, exist_ok=True)
        with open(os.path.join(rows_dir, f"migrate_faults_{SIDE}.rows"), "w") as f:
            for row in sorted(rows_taken):
                f.write(" ".join(row) + "\n")
    for m in missing:
        print(f"  not taken: {m}")
    finish()


def finish():
    """The daemons' logs stay for a failed run (their directory is printed);
    a passing run leaves nothing in /tmp."""
    if res.failed:
        print(f"# the hosts' logs are kept in {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    try:
        main()
    except mt.Failed as e:
        res.check("test harness", False, str(e))
        finish()
