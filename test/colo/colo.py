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
`lockstep inspect` decodes them. Checkpoints on demand: SIGUSR1 to a primary
whose interval is an hour takes one each time (COLO and Remus).

failover: the primary's lockstep killed, the primary's host (daemon)
killed, the link reset, the link frozen; with a fencing command that works
(it destroys the primary's guest, or finds its host gone) and one that
fails. Afterwards exactly one copy runs (or, with a failed fence, the
secondary's stays paused and the primary's runs), and a copy that took over
holds the last checkpoint the secondary applied (its digest).

HVM guests with a real QEMU (Debian's 7.2; the primary's QEMU let run, so
its device state changes with its clock between checkpoints): in
`checkpoints`, 15 checkpoints where the device state the primary's QEMU
saved at each (its digest, from both sides' JSON) is the one the secondary
applied with it and handed to its QEMU (a fresh QEMU per checkpoint: the
load count and pid seen moving while it runs; the secondary held stopped
once so that the primary's QEMU is saved before SVM_SUSPENDED comes), the
primary's QEMU running afterwards; in `failover`, the primary's lockstep killed: the secondary's
copy and its QEMU (status "running", holding the last checkpoint's state)
run on, and a QEMU killed in the middle of a checkpoint (QMP stop to a dead
peer): the primary says so with QEMU's reason and runs on unprotected, its
guest resumed and guard released; and the secondary's QEMU killed before
a cont: it ends replication naming QEMU's reason and destroys its copy,
the primary runs on unprotected; and a Remus secondary's QEMU killed before
the takeover's cont: the outcome says it does not run. Cost: about 11 CPU-s of
`checkpoints` (20 checkpoints a PV run, 15 with a real QEMU) and 13 of
`failover` under ASan (mostly a QEMU start per checkpoint on the secondary).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from migtest import BIN, SRC, Failed, Host, Proc, Proxy, Results, daemons_of, lockstep_procs, \
    wait_gone, workdir

SEED = int(os.environ.get("COLO_TEST_SEED", "15"))
# Checkpoints of each PV run and of the real-QEMU run (a QEMU start a
# checkpoint on the secondary): COLO_CHECKPOINTS / COLO_QEMU_CHECKPOINTS for more.
CKPTS = int(os.environ.get("COLO_CHECKPOINTS", "20"))
QEMU_CKPTS = int(os.environ.get("COLO_QEMU_CHECKPOINTS", "15"))
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


def start_secondary(host, extra, listen="tcp:127.0.0.1:0", env=None):
    s = Proc(["colo-secondary", "--listen", listen, "--json", "--digest", *extra],
             dict(traced(host), **(env or {})), name="secondary")
    m = s.wait_line(r"^listening on (\S+)", 20)
    if not m:
        s.kill()
        s.wait(5)
        raise Failed(f"the secondary did not listen: {s.text()}")
    return s, m.group(1)


def qmp(sock, cmd, args=None):
    """One QMP command on a QEMU's socket (test/dm/qmp.py): its return value."""
    argv = [sys.executable, os.path.join(SRC, "test", "dm", "qmp.py"), sock, cmd]
    if args is not None:
        argv.append(json.dumps(args))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise Failed(f"QMP {cmd} on {sock}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def dm_of(host, dom):
    """`lockstep sim dm DOMID` as a dict (state, pid, qmp, loads, standby, ...)."""
    out = host.sim("dm", str(dom), check=False)
    return dict(l.split(" ", 1) for l in out.splitlines() if " " in l)


def hvm_with_qemu(host, n, rate):
    """An HVM guest whose real QEMU runs (the sim starts it with -S)."""
    dom = int(host.sim("create", "--type", "hvm", "--memory", "4M", "--seed", str(SEED + n),
                       "--vcpus", "2", "--dirty-rate", str(rate)))
    dm = dm_of(host, dom)
    qmp(dm["qmp"], "cont")
    return dom, dm


def qemus_under(rundir):
    """pids of QEMU processes whose command line names rundir."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmd and rundir in cmd:
            out.append(int(pid))
    return out


def running(host):
    return [d for d, st in host.domains().items() if st == "running"]


def pair(work, n):
    return Host(work, f"p{n}"), Host(work, f"s{n}")


def check_stopped_run(res, what, p, s, count):
    """A run stopped in order after `count` checkpoints: both sides say so, and the
    secondary's digest equals the primary's at every checkpoint. Returns both's."""
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
    # What the secondary says it received is what the primary sent, checkpoint by checkpoint.
    odd = [(k, pc[k].get("pages"), sc[k].get("pages"), pc[k].get("bytes"), sc[k].get("bytes"))
           for k in sorted(set(pc) & set(sc))
           if (pc[k].get("pages"), pc[k].get("bytes")) != (sc[k].get("pages"), sc[k].get("bytes"))]
    res.check(f"{what}: the secondary's pages and bytes of every checkpoint are the primary's",
              not odd and sum(c.get("pages", 0) for c in sc.values()) > 0,
              f"(n, sent, received, bytes sent, received): {odd[:4]}")
    return pc, sc


def capture(work, n, where):
    """A CaptureProxy in front of the secondary's tcp:HOST:PORT: (proxy, where to connect)."""
    capdir = os.path.join(work, f"cap{n}")
    os.makedirs(capdir)
    proxy = CaptureProxy(int(where.rsplit(":", 1)[1]), capdir)
    return proxy, f"tcp:127.0.0.1:{proxy.port}"


def check_inspect(res, what, host, work, n, proxy):
    """`lockstep inspect` decodes both captured channels; the main one's text."""
    proxy.close()
    text = ""
    for name in ("main", "back"):
        path = os.path.join(work, f"cap{n}", name + ".bin")
        ins = host.lockstep("inspect", path, check=False)
        summary = [l for l in ins.stdout.splitlines() if l.startswith("summary")]
        res.check(f"{what}: lockstep inspect decodes the {name} channel",
                  ins.returncode == 0 and summary, ins.stdout[-400:] + ins.stderr[-400:])
        text = text or ins.stdout
    return text


def run_checkpoints(res, work, n, mode, transport, rate, pattern, sec_rate, count, interval,
                    guest="pv"):
    """One replication run of `count` checkpoints, stopped in order."""
    prim, sec = pair(work, n)
    what = f"{guest} {mode} {transport} rate {rate} {pattern} (replica {sec_rate})"
    try:
        if guest == "pv":
            dom = prim.create("pv", "2M", seed=SEED + n, rate=rate, pattern=pattern)
        else:   # HVM with the stand-in device model (run_qemu_checkpoints: a real QEMU)
            dom = int(prim.sim("create", "--type", "hvm", "--memory", "4M", "--seed",
                               str(SEED + n), "--vcpus", "2", "--dirty-rate", str(rate),
                               "--dirty-pattern", pattern, "--no-device-model"))
        extra = ["--mode", mode]
        if sec_rate:
            extra += ["--dirty-rate", str(sec_rate), "--seed", str(SEED + 100 + n)]
        listen = f"unix:{work}/colo{n}.sock" if transport == "unix" else "tcp:127.0.0.1:0"
        s, where = start_secondary(sec, extra, listen)
        proxy, to = capture(work, n, where) if transport == "tcp" else (None, where)
        p = Proc(["colo-primary", "--domid", str(dom), "--to", to, "--mode", mode,
                  "--interval", str(interval), "--checkpoints", str(count), "--digest", "--json"],
                 traced(prim), name="primary")
        pc, sc = check_stopped_run(res, what, p, s, count)
        if rate:
            moved = [k for k in range(2, count + 1) if pc.get(k, {}).get("pages", 0) > 0]
            res.check(f"{what}: later checkpoints carry dirty pages", len(moved) > count // 2,
                      f"{len(moved)} of {count - 1}")
        res.check(f"{what}: the primary's guest runs on, no copy is left on the secondary",
                  running(prim) == [dom] and not sec.domains(),
                  f"{prim.domains()} / {sec.domains()}")
        if proxy:
            check_inspect(res, what, prim, work, n, proxy)
    finally:
        prim.stop()
        sec.stop()


def run_manual(res, work, n, mode):
    """Checkpoints on demand: an interval of an hour, and SIGUSR1 to the primary three
    times, each once the last checkpoint is in; then the orderly stop."""
    prim, sec = pair(work, n)
    what = f"pv {mode}: checkpoints on SIGUSR1"
    try:
        dom = prim.create("pv", "2M", seed=SEED + n, rate=500, pattern="uniform")
        s, where = start_secondary(sec, ["--mode", mode], f"unix:{work}/colo{n}.sock")
        p = Proc(["colo-primary", "--domid", str(dom), "--to", where, "--mode", mode,
                  "--interval", "3600000", "--digest", "--json"], traced(prim), name="primary")
        late = []
        for k in range(1, 5):
            if k > 1:
                p.kill(signal.SIGUSR1)
            end = time.time() + 30
            while k not in checkpoints(p) and time.time() < end and p.p.poll() is None:
                time.sleep(0.02)
            if k not in checkpoints(p):
                late.append(k)
                break
        res.check(f"{what}: each signal took one checkpoint at once (1 + 3 in all)",
                  not late and len(checkpoints(p)) == 4, f"missing {late}: {p.text()[-600:]}")
        p.kill(signal.SIGINT)
        check_stopped_run(res, what, p, s, 4)
    finally:
        prim.stop()
        sec.stop()


def run_qemu_checkpoints(res, work, n, count, interval):
    """COLO of an HVM guest with a real QEMU: `count` checkpoints, stopped in order."""
    prim, sec = pair(work, n)
    what = "hvm with QEMU colo tcp"
    try:
        dom, pdm = hvm_with_qemu(prim, n, 2000)
        s, where = start_secondary(sec, ["--mode", "colo", "--dirty-rate", "300", "--seed",
                                         str(SEED + 100 + n)])
        proxy, to = capture(work, n, where)
        p = Proc(["colo-primary", "--domid", str(dom), "--to", to, "--interval",
                  str(interval), "--checkpoints", str(count), "--digest", "--json"],
                 traced(prim), name="primary")
        # The secondary held (SIGSTOP) once the primary reported checkpoint 3
        # and before its next suspend (the interval's 100 ms): the primary's
        # QEMU is then saved before SVM_SUSPENDED can come (SAVING_DM +
        # DM_DONE, a race the primary otherwise wins in about 6 checkpoints of
        # 100). A hold that came too late (a loaded host) is let go within 2 s,
        # well inside the primary's 10 s deadline, and tried again later.
        held = None
        for at in (3, 6, 9):
            end = time.time() + 60
            while at not in checkpoints(p) and p.p.poll() is None and time.time() < end:
                time.sleep(0.005)
            s.kill(signal.SIGSTOP)
            try:
                held = p.wait_line(r"^fsm +\d+ +colo_primary +\S+ +SAVING_DM +DM_DONE ", 2)
            finally:
                s.kill(signal.SIGCONT)
            if held or p.p.poll() is not None:
                break
        res.check(f"{what}: the secondary stopped at a suspend, the primary's QEMU's state saved "
                  f"before its SVM_SUSPENDED came (SAVING_DM + DM_DONE)", held is not None,
                  p.text()[-600:])
        seen = []     # the secondary's QEMU while it runs: (loads, pid, state)
        while p.p.poll() is None:
            time.sleep(0.2)
            sdom = next(iter(checkpoints(s).values()), {}).get("domid")
            if sdom is not None:
                d = dm_of(sec, sdom)
                if d.get("loads"):
                    seen.append((int(d["loads"]), int(d.get("pid", 0)), d.get("state")))
        pc, sc = check_stopped_run(res, what, p, s, count)
        ks = range(1, count + 1)
        bad = [k for k in ks if not pc.get(k, {}).get("dm_digest")
               or pc[k]["dm_digest"] != sc.get(k, {}).get("dm_digest")
               or pc[k].get("dm_pid") != int(pdm["pid"]) or pc[k].get("dm_bytes", 0) < 1000]
        res.check(f"{what}: at every checkpoint the secondary applied the device state the "
                  f"primary's QEMU (pid {pdm['pid']}) saved at its suspend (digests)", not bad,
                  f"differing at {bad[:5]}: {[pc.get(k) for k in bad[:2]]} / "
                  f"{[sc.get(k) for k in bad[:2]]}")
        distinct = len({pc[k]["dm_digest"] for k in ks if k in pc})
        res.check(f"{what}: the primary's device state changes between checkpoints ({distinct} "
                  f"distinct of {count})", distinct >= count * 9 // 10)
        loads = sorted({l for l, _, _ in seen})
        pids = {pid for _, pid, _ in seen}
        res.check(f"{what}: the secondary's QEMU took each state: loads seen {loads[:3]}..."
                  f"{loads[-3:]}, {len(pids)} QEMUs, running",
                  len(loads) >= 3 and len(pids) >= 3 and max(loads) <= count
                  and any(st == "running" for _, _, st in seen), str(seen[-5:]))
        res.check(f"{what}: the primary's guest and its QEMU run on, no copy or QEMU is left on "
                  f"the secondary", running(prim) == [dom] and not sec.domains()
                  and qmp(pdm["qmp"], "query-status").get("status") == "running"
                  and not qemus_under(sec.rundir),
                  f"{prim.domains()} / {sec.domains()} / {qemus_under(sec.rundir)}")
        text = check_inspect(res, what, prim, work, n, proxy)
        emu = text.count("EMULATOR_CONTEXT")
        res.check(f"{what}: the main channel carries an EMULATOR_CONTEXT a checkpoint ({emu})",
                  emu >= count, text[-400:])
    finally:
        prim.stop()
        sec.stop()


def run_qemu_failover(res, work, n, rng, mode, kill_dm=False):
    """The primary's lockstep killed: the secondary's copy and its QEMU run on. COLO: the
    QEMU took every checkpoint's state; Remus: it takes the last one at the takeover.
    kill_dm (Remus): the secondary's QEMU killed before the takeover's cont, its first QMP
    command: the outcome says its QEMU does not run."""
    prim, sec = pair(work, n)
    try:
        dom, pdm = hvm_with_qemu(prim, n, 2000)
        s, where = start_secondary(sec, ["--mode", mode, "--timeout", "2", "--fence",
                                         fence_cmd(prim, dom, True)],
                                   env={"LOCKSTEP_DM_FAULT_KILL": "1"} if kill_dm else None)
        at = rng.randint(3, 8)
        p = Proc(["colo-primary", "--domid", str(dom), "--to", where, "--interval", "10",
                  "--mode", mode, "--timeout", "2", "--digest", "--json"], traced(prim),
                 name="primary")
        end = time.time() + 90
        while time.time() < end and at not in checkpoints(s):
            time.sleep(0.005)
        what = f"hvm with QEMU, {mode}: the primary's lockstep killed after checkpoint ~{at}"
        if at not in checkpoints(s):
            raise Failed(f"{what}: no checkpoint {at}: {p.text()[-500:]} {s.text()[-500:]}")
        p.kill()
        src, _ = s.wait(40), p.wait(40)
        keep_trace(p, s)
        sc = checkpoints(s)
        last = max(sc)
        pc = checkpoints(p)
        res.check(f"{what}: the secondary applied the device state the primary's QEMU saved, "
                  f"at every checkpoint", all(sc[k].get("dm_digest") and k in pc and
                                              pc[k]["dm_digest"] == sc[k]["dm_digest"]
                                              for k in sc if k in pc) and len(pc) >= last - 1,
                  f"{[(k, pc.get(k, {}).get('dm_digest'), sc[k].get('dm_digest')) for k in sc]}")
        copy = [d for d, st in sec.domains().items() if st == "running"]
        if kill_dm:
            err = end_of(s).get("error") or ""
            d = dm_of(sec, copy[0]) if copy else {}
            res.check(f"{what}, its QEMU killed before the takeover's cont: the outcome says "
                      f"so (rc {src})", src not in (0, None) and "does not run" in err
                      and "cont failed" in err and len(copy) == 1
                      and d.get("state", "").startswith("killed by signal 9"),
                      f"{err or s.text()[-700:]} {sec.domains()} {d}")
            return
        res.check(f"{what}: the secondary took over (rc {src}, role {end_of(s).get('role')}), "
                  f"its copy the only one running", src == 0 and end_of(s).get("role") == "active"
                  and len(copy) == 1 and not running(prim), f"{sec.domains()} / "
                  f"{prim.domains()}: {s.text()[-700:]}")
        if copy:
            d = dm_of(sec, copy[0])
            status = qmp(d["qmp"], "query-status").get("status") if d.get("qmp") else None
            res.check(f"{what}: its QEMU (pid {d.get('pid')}) runs the guest, holding checkpoint "
                      f"{last}'s state (loads {d.get('loads')}), no standby left",
                      d.get("state") == "running" and status == "running"
                      and d.get("loads") == str(last if mode == "colo" else 1)
                      and d.get("standby") == "0", str(d))
            res.check(f"{what}: the copy holds checkpoint {last}",
                      sec.digest(copy[0]) == sc[last]["digest"])
        res.check(f"{what}: no QEMU of the primary's is left", not qemus_under(prim.rundir),
                  str(qemus_under(prim.rundir)))
    finally:
        prim.stop()
        sec.stop()


def run_qemu_dm_error(res, work, n, kill_at=4 + 3 * 2 + 1, cmd="stop", done=3):
    """The primary's QEMU killed just before QMP command kill_at, cmd of checkpoint
    done + 1 (the first checkpoint sends add-fd, stop, xen-save-devices-state, cont;
    each later one stop, xen-save-devices-state, cont)."""
    prim, sec = pair(work, n)
    try:
        dom, pdm = hvm_with_qemu(prim, n, 2000)
        s, where = start_secondary(sec, ["--mode", "colo", "--timeout", "2", "--fence",
                                         fence_cmd(prim, dom, False)])
        env = dict(traced(prim), LOCKSTEP_DM_FAULT_KILL=str(kill_at))
        p = Proc(["colo-primary", "--domid", str(dom), "--to", where, "--interval", "10",
                  "--timeout", "2", "--digest", "--json"], env, name="primary")
        prc, src = p.wait(60), s.wait(40)
        keep_trace(p, s)
        what = f"hvm with QEMU: its QEMU killed before checkpoint {done + 1}'s {cmd}"
        err = end_of(p).get("error") or ""
        said = ("device model of domain" in err and f"{cmd} failed" in err
                and "killed by signal 9" in err)
        if done:
            res.check(f"{what}: the primary ends unprotected (rc {prc}) naming QEMU's reason",
                      prc == 3 and end_of(p).get("role") == "unprotected"
                      and len(checkpoints(p)) == done and said, err or p.text()[-700:])
        else:   # before the first checkpoint: replication never started
            res.check(f"{what}: the primary fails (rc {prc}) naming QEMU's reason",
                      prc not in (0, 3) and not checkpoints(p) and said, err or p.text()[-700:])
        d = dm_of(prim, dom)
        res.check(f"{what}: the primary's guest runs, its dead QEMU reaped",
                  running(prim) == [dom] and d.get("state", "").startswith("killed by signal 9")
                  and not qemus_under(prim.rundir), f"{prim.domains()} {d}")
        if done:
            res.check(f"{what}: the secondary stays paused with a failing fence (rc {src})",
                      src == 3 and end_of(s).get("role") == "fence-failed"
                      and all(st != "running" for st in sec.domains().values()), s.text()[-500:])
        else:
            res.check(f"{what}: the secondary ends with no copy (rc {src})",
                      src != 0 and not sec.domains(), f"{s.text()[-500:]} {sec.domains()}")
    finally:
        prim.stop()
        sec.stop()


def run_qemu_secondary_dm_error(res, work, n, cmd, k):
    """The secondary's QEMU killed just before its k-th `cmd` (each checkpoint's state
    goes to a standby QEMU over the secondary's link: getfd, migrate-incoming,
    query-status; then cont once it is the device model): replication ends there."""
    prim, sec = pair(work, n)
    try:
        dom, pdm = hvm_with_qemu(prim, n, 2000)
        env = dict(traced(sec), LOCKSTEP_DM_FAULT_KILL=f"{cmd}:{k}")
        s = Proc(["colo-secondary", "--listen", "tcp:127.0.0.1:0", "--json", "--digest",
                  "--timeout", "2"], env, name="secondary")
        m = s.wait_line(r"^listening on (\S+)", 20)
        if not m:
            raise Failed(f"the secondary did not listen: {s.text()}")
        p = Proc(["colo-primary", "--domid", str(dom), "--to", m.group(1), "--interval", "10",
                  "--timeout", "2", "--digest", "--json"], traced(prim), name="primary")
        src, prc = s.wait(60), p.wait(40)
        keep_trace(p, s)
        what = f"hvm with QEMU: the secondary's QEMU killed before checkpoint {k}'s {cmd}"
        err = end_of(s).get("error") or ""
        res.check(f"{what}: the secondary fails (rc {src}) naming QEMU's reason, its copy "
                  f"destroyed, no QEMU left", src not in (0, None) and f"{cmd} failed" in err
                  and "device model of domain" in err and "killed by signal 9" in err
                  and not sec.domains()
                  and not qemus_under(sec.rundir), f"{err or s.text()[-700:]} {sec.domains()} "
                  f"{qemus_under(sec.rundir)}")
        res.check(f"{what}: the primary runs on unprotected with its QEMU (rc {prc})",
                  prc == 3 and end_of(p).get("role") == "unprotected" and running(prim) == [dom]
                  and qmp(pdm["qmp"], "query-status").get("status") == "running",
                  p.text()[-500:])
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
            # Counts: enough checkpoints for every row and for the digests to
            # have caught a missed page; more only repeat the same rows.
            run_checkpoints(res, work, 1, "colo", "unix", 500, "uniform", 0, CKPTS, 5)
            run_checkpoints(res, work, 2, "colo", "tcp", 5000, "hotset:10", 2000, CKPTS, 5)
            run_checkpoints(res, work, 3, "colo", "unix", 20000, "sequential", 500, CKPTS, 5)
            run_checkpoints(res, work, 4, "remus", "tcp", 3000, "uniform", 0, 10, 5)
            run_checkpoints(res, work, 5, "colo", "unix", 2000, "uniform", 300, 10, 5, "hvm")
            run_qemu_checkpoints(res, work, 6, QEMU_CKPTS, 100)
            run_manual(res, work, 7, "colo")
            run_manual(res, work, 8, "remus")
        else:
            n = 10
            for how, ok in (("killed", True), ("host", True), ("reset", True),
                            ("frozen", True), ("frozen", False)):
                run_failover(res, work, n, how, ok, rng)
                n += 1
            run_qemu_failover(res, work, n, rng, "colo")
            run_qemu_failover(res, work, n + 1, rng, "remus")
            run_qemu_failover(res, work, n + 4, rng, "remus", kill_dm=True)
            run_qemu_dm_error(res, work, n + 2)
            run_qemu_dm_error(res, work, n + 5, 4 + 3 * 2 + 2, "xen-save-devices-state")
            run_qemu_dm_error(res, work, n + 6, 1, "add-fd", 0)
            run_qemu_secondary_dm_error(res, work, n + 3, "cont", 3)
            run_qemu_secondary_dm_error(res, work, n + 7, "getfd", 2)
            run_qemu_secondary_dm_error(res, work, n + 8, "migrate-incoming", 3)
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
