"""test/colo/colo.py - COLO and Remus between two simulated hosts.

`lockstep colo-primary` and `lockstep colo-secondary` as real processes,
each host a private lockstep-simd. Usage: colo.py checkpoints|failover.

checkpoints: PV guests dirtying memory at several rates (the secondary's own
replica writing too, with another seed, so a checkpoint that missed the
secondary's dirty pages would differ), over a unix socket and TCP: after
every checkpoint the secondary's digest (taken once the checkpoint is
applied, before its guest runs) equals the primary's at that checkpoint's
suspend; the orderly stop leaves the primary's guest running and no copy
on the secondary. Remus: the same, the secondary's copy never running.
The streams of a run are captured by the proxy in both directions and
`lockstep inspect` decodes them.

failover: the primary's lockstep killed, the primary's host (daemon)
killed, the link reset, the link frozen; with a fencing command that works
(it destroys the primary's guest, or finds its host gone) and one that
fails. Afterwards exactly one copy runs (or, with a failed fence, the
secondary's stays paused and the primary's runs), and a copy that took over
holds the last checkpoint the secondary applied (its digest).
"""
import json
import os
import random
import shutil
import signal
import socket
import sys
import threading
import time

from migtest import BIN, Failed, Host, Proc, Proxy, Results, daemons_of, lockstep_procs, \
    wait_gone, workdir

SEED = int(os.environ.get("COLO_TEST_SEED", "15"))
TRACES = []     # every lockstep process's dispatches, for the suite's row coverage


def traced(host):
    """host's environment with every dispatch traced on stderr."""
    return dict(host.env, LOCKSTEP_TRACE="1")


def keep_trace(*procs):
    for p in procs:
        TRACES.extend(l for l in p.err if l.startswith("fsm "))


class CaptureProxy(Proxy):
    """Proxy that also records each direction, and can freeze (forward nothing,
    read nothing: a link that went silent without a close)."""

    def __init__(self, target_port, capdir):
        self.frozen = threading.Event()
        self.files = {}
        self.capdir = capdir
        super().__init__(target_port)

    def _pipe(self, a, b):
        name = "main" if a is self.socks[0] else "back"
        f = open(os.path.join(self.capdir, name + ".bin"), "wb")
        try:
            while True:
                while self.frozen.is_set():
                    time.sleep(0.05)
                d = a.recv(1 << 16)
                if not d:
                    b.shutdown(socket.SHUT_WR)
                    return
                while self.frozen.is_set():
                    time.sleep(0.05)
                f.write(d)
                b.sendall(d)
        except OSError:
            with self.lock:
                self._reset_locked()
        finally:
            f.close()


def events(proc):
    out = []
    for line in proc.out:
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def checkpoints(proc):
    return {e["n"]: e for e in events(proc) if e.get("event") == "checkpoint"}


def end_of(proc):
    ends = [e for e in events(proc) if e.get("event") == "outcome"]
    return ends[-1] if ends else {}


def start_secondary(host, extra, listen="tcp:127.0.0.1:0"):
    s = Proc(["colo-secondary", "--listen", listen, "--json", "--digest", *extra], traced(host),
             name="secondary")
    m = s.wait_line(r"^listening on (\S+)", 20)
    if not m:
        s.kill()
        s.wait(5)
        raise Failed(f"the secondary did not listen: {s.text()}")
    return s, m.group(1)


def running(host):
    return [d for d, st in host.domains().items() if st == "running"]


def pair(work, n):
    return Host(work, f"p{n}"), Host(work, f"s{n}")


def run_checkpoints(res, work, n, mode, transport, rate, pattern, sec_rate, count, interval,
                    guest="pv"):
    """One replication run of `count` checkpoints, stopped in order."""
    prim, sec = pair(work, n)
    what = f"{guest} {mode} {transport} rate {rate} {pattern} (replica {sec_rate})"
    try:
        if guest == "pv":
            dom = prim.create("pv", "2M", seed=SEED + n, rate=rate, pattern=pattern)
        else:   # HVM with the stand-in device model (a real QEMU's COLO is refused yet)
            dom = int(prim.sim("create", "--type", "hvm", "--memory", "4M", "--seed",
                               str(SEED + n), "--vcpus", "2", "--dirty-rate", str(rate),
                               "--dirty-pattern", pattern, "--no-device-model"))
        extra = ["--mode", mode]
        if sec_rate:
            extra += ["--dirty-rate", str(sec_rate), "--seed", str(SEED + 100 + n)]
        listen = f"unix:{work}/colo{n}.sock" if transport == "unix" else "tcp:127.0.0.1:0"
        s, where = start_secondary(sec, extra, listen)
        proxy = None
        to = where
        if transport == "tcp":
            capdir = os.path.join(work, f"cap{n}")
            os.makedirs(capdir)
            proxy = CaptureProxy(int(where.rsplit(":", 1)[1]), capdir)
            to = f"tcp:127.0.0.1:{proxy.port}"
        p = Proc(["colo-primary", "--domid", str(dom), "--to", to, "--mode", mode,
                  "--interval", str(interval), "--checkpoints", str(count), "--digest", "--json"],
                 traced(prim), name="primary")
        prc, src = p.wait(120), s.wait(30)
        keep_trace(p, s)
        pc, sc = checkpoints(p), checkpoints(s)
        res.check(f"{what}: both end stopped in order (rc {prc}/{src})",
                  prc == 0 and src == 0 and end_of(p).get("role") == "stopped"
                  and end_of(s).get("role") == "stopped", p.text()[-600:] + s.text()[-600:])
        bad = [k for k in range(1, count + 1)
               if k not in pc or k not in sc or not pc[k]["digest"]
               or pc[k]["digest"] != sc[k]["digest"]]
        res.check(f"{what}: {count} checkpoints, the secondary's digest equals the primary's at "
                  f"every one", len(pc) == count and len(sc) == count and not bad,
                  f"{len(pc)}/{len(sc)} checkpoints, differing at {bad[:5]}")
        if rate:
            moved = [k for k in range(2, count + 1) if pc.get(k, {}).get("pages", 0) > 0]
            res.check(f"{what}: later checkpoints carry dirty pages", len(moved) > count // 2,
                      f"{len(moved)} of {count - 1}")
        res.check(f"{what}: the primary's guest runs on, no copy is left on the secondary",
                  running(prim) == [dom] and not sec.domains(),
                  f"{prim.domains()} / {sec.domains()}")
        if proxy:
            proxy.close()
            for name in ("main", "back"):
                path = os.path.join(work, f"cap{n}", name + ".bin")
                ins = prim.lockstep("inspect", path, check=False)
                summary = [l for l in ins.stdout.splitlines() if l.startswith("summary")]
                res.check(f"{what}: lockstep inspect decodes the {name} channel",
                          ins.returncode == 0 and summary, ins.stdout[-400:] + ins.stderr[-400:])
    finally:
        prim.stop()
        sec.stop()


def fence_cmd(prim, dom, works):
    """A fencing command: destroys the primary's guest on its host (or finds the host
    gone), or, when it must not work, fails saying why."""
    if not works:
        return "echo the power switch does not answer; exit 1"
    # A host that died took the guest with it (a daemon started there since
    # knows no such domain): fenced as much as destroyed.
    return (f"out=$(LOCKSTEP_RUNDIR={prim.rundir} {BIN} sim destroy {dom} 2>&1) || "
            f"{{ echo \"$out\"; echo \"$out\" | grep -q 'no domain {dom}'; }}")


def run_failover(res, work, n, how, fence_ok, rng):
    prim, sec = pair(work, n)
    try:
        dom = prim.create("pv", "4M", seed=SEED + n, rate=3000)
        extra = ["--mode", "colo", "--timeout", "2", "--fence", fence_cmd(prim, dom, fence_ok)]
        s, where = start_secondary(sec, extra)
        capdir = os.path.join(work, f"cap{n}")
        os.makedirs(capdir)
        proxy = CaptureProxy(int(where.rsplit(":", 1)[1]), capdir)
        at = rng.randint(2, 12)
        p = Proc(["colo-primary", "--domid", str(dom), "--to", f"tcp:127.0.0.1:{proxy.port}",
                  "--interval", "10", "--timeout", "2", "--digest", "--json"], traced(prim),
                 name="primary")
        got = None
        end = time.time() + 60
        while time.time() < end and not got:
            got = checkpoints(s).get(at)
            time.sleep(0.005)
        what = f"{how} after checkpoint ~{at}, fence {'works' if fence_ok else 'fails'}"
        if not got:
            raise Failed(f"{what}: no checkpoint {at}: {p.text()[-500:]} {s.text()[-500:]}")
        if how == "killed":
            p.kill()
        elif how == "host":
            prim.kill_daemon()
        elif how == "reset":
            proxy.reset()
        elif how == "frozen":
            proxy.frozen.set()
        src = s.wait(40)
        prc = p.wait(40)
        keep_trace(p, s)
        sc = checkpoints(s)
        last = max(sc) if sc else 0
        role = end_of(s).get("role")
        sdoms = sec.domains()
        pdoms = prim.domains() if how != "host" else {}
        if fence_ok:
            copy = [d for d, st in sdoms.items() if st == "running"]
            res.check(f"{what}: the secondary took over (rc {src}, role {role}) and its copy "
                      f"is the only one running", src == 0 and role == "active" and len(copy) == 1
                      and not [d for d, st in pdoms.items() if st == "running"],
                      f"secondary {sdoms}, primary {pdoms}: {s.text()[-700:]}")
            if copy:
                dg = sec.digest(copy[0])
                pd = checkpoints(p).get(last, {}).get("digest")
                res.check(f"{what}: the copy holds checkpoint {last}, the primary's state at its "
                          f"suspend", dg == sc[last]["digest"] and pd in (None, dg),
                          f"{dg} vs {sc[last]['digest']} (primary {pd})")
        else:
            res.check(f"{what}: the secondary stays paused and says why (rc {src}, role {role})",
                      src == 3 and role == "fence-failed" and sdoms
                      and all(st != "running" for st in sdoms.values())
                      and "power switch" in s.text(), f"{sdoms}: {s.text()[-700:]}")
            res.check(f"{what}: the primary runs on unprotected (rc {prc})",
                      prc == 3 and end_of(p).get("role") == "unprotected"
                      and running(prim) == [dom], f"{pdoms}: {p.text()[-500:]}")
        proxy.close()
    finally:
        prim.stop()
        sec.stop()


def main():
    res = Results()
    which = sys.argv[1] if len(sys.argv) > 1 else "checkpoints"
    work = workdir()
    rng = random.Random(SEED)
    before = set(lockstep_procs(work))
    try:
        if which == "checkpoints":
            run_checkpoints(res, work, 1, "colo", "unix", 500, "uniform", 0, 60, 5)
            run_checkpoints(res, work, 2, "colo", "tcp", 5000, "hotset:10", 2000, 60, 5)
            run_checkpoints(res, work, 3, "colo", "unix", 20000, "sequential", 500, 60, 5)
            run_checkpoints(res, work, 4, "remus", "tcp", 3000, "uniform", 0, 20, 5)
            run_checkpoints(res, work, 5, "colo", "unix", 2000, "uniform", 300, 10, 5, "hvm")
        else:
            n = 10
            for how, ok in (("killed", True), ("host", True), ("reset", True),
                            ("frozen", True), ("frozen", False)):
                run_failover(res, work, n, how, ok, rng)
                n += 1
    except Failed as e:
        res.check("run", False, str(e))
    if os.environ.get("LOCKSTEP_BUILD_DIR"):
        rows_dir = os.path.join(os.environ["LOCKSTEP_BUILD_DIR"], "rows")
        os.makedirs(rows_dir, exist_ok=True)
        with open(os.path.join(rows_dir, f"colo_{which}.trace"), "w") as f:
            f.writelines(TRACES)
    left = set(lockstep_procs(work)) - before
    res.check("no lockstep process left behind", not left, str(left))
    shutil.rmtree(work, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
