"""test/colo/disk.py - COLO of an HVM guest whose disk is replicated by the roles.

`lockstep colo-primary --sim hvm --disk FILE --disk-nbd ADDR` and
`lockstep colo-secondary --disk FILE --disk-nbd ADDR` between two simulated
hosts: each guest's disk is a drive of its block QEMU (Debian's 7.2), the
primary's vCPU writes it (--disk-every: disk write j fills a block picked by
(seed, j) with 1 + j % 255, so the disk after K vCPU writes follows from the
seed and K), and the roles replicate it with QEMU's block replication over
NBD (states/colo_disk.def run from colo_primary.def / colo_secondary.def).
Usage: disk.py stop|failover|lost|held|refused|matrix.

Every scenario is a Case in CASES (or MATRIX) run by run_case: both sides
started, an optional kill at a point (a checkpoint of one side, then a
delay), both ends awaited, then the case's checks.

stop: 30 checkpoints over a unix-socket NBD, stopped in order: both sides
say the disks replicated at every checkpoint (JSON disk_state, one disk
checkpoint per checkpoint after the first) and end "stopped"; the primary's
guest writes on, its disk holding exactly its writes (the file against the
seed), the secondary's copy gone.

failover: over TCP NBD, the primary's lockstep killed after ~25
checkpoints, mostly while its guest is suspended for a checkpoint: its
guard resumes it, its disks' replication dropped first (the sim daemon
does that, as the primary's teardown would), and it writes on until the
fence destroys it; the secondary takes over and its guest's disk
(lsdisk0-top, read through an NBD export of it) is exactly the primary's at
the last checkpoint the secondary applied (the writes of the vCPU count it
holds), none of the primary's later writes.

lost: the secondary's lockstep killed (its copy and QEMU go with it): the
primary runs on unprotected, its disk replication "broken" and dropped, its
disk intact and still written. The secondary's block QEMU killed between
checkpoints: the secondary's own query-xen-replication-status after its
next suspend (libxl asks on both sides) fails naming it, its copy is
destroyed, and the primary goes on unprotected, its disk intact. The
secondary's NBD server stopped (QMP, its QEMU alive): the primary's writes
fail into its replication child and its query after the next suspend says
so with QEMU's words ("I/O error occurred"): it drops the replication and
runs on unprotected, its disk intact. The primary given an NBD address nobody serves: its setup fails with QEMU's reason and
it runs on unprotected. The secondary's images in a directory that does not
exist: its setup fails with qemu-img's reason, its copy is destroyed, the
primary runs on. An HVM guest with a disk and no --disk-nbd: COLO refuses
it, as libxl does.

held: the secondary's block QEMU stopped (SIGSTOP) so that its query after
the next suspend waits on it; a failover asked (SIGUSR1) meanwhile awaits
the query before the tasks go, then takes over with the disks failed over
(the survivor's disk the primary's at the last checkpoint); a stop (SIGINT)
awaits it, then destroys the copy, the primary running on unprotected. The
primary's query held the same way on its own QEMU (the secondary's lockstep
stopped a moment so the primary's guest is suspended first): a stop
(SIGINT) meanwhile is announced once the query ended, both stop in order.

refused: QEMU refusing (LOCKSTEP_DISK_FAULT, fault-hook builds) a step of
the primary's teardown at a stop and after a loss, of the secondary's at a
stop, of its failover, and each side's query after its suspend: each role
ends as it would, saying so with QEMU's words.

matrix: failover with disks at the role level, sampled: the primary's
lockstep killed, its whole host (its lockstep, its block QEMU and its sim
daemon killed together), only its block QEMU, or the secondary's block
QEMU killed, at DISK_MATRIX_SAMPLES (default 1) points each, a point being
checkpoint 3..12 of either side plus 0..60 ms, over TCP or unix NBD; the
points follow from a seed printed at the start (DISK_MATRIX_SEED replays
them), a new one each run, so that runs together cover the points while one
stays cheap in make test. The primary's lockstep, host or QEMU killed: the secondary takes
over and its disk is exactly the primary's at the last checkpoint it
applied (from the seed); a primary guest its guard resumed had its
replication dropped first. The secondary's QEMU killed: the primary runs
on unprotected, its disk intact and still written, no copy runs there.

Cost: about 6 s for stop, 6 s for failover, 17 s for lost, 17 s for
held, 9 s for refused and 25 s for matrix on a loaded 2-core machine (the block QEMUs
start in a fraction of a second; most of it is the two sides' start and
the 2 s loss timeouts).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

from colo import qmp
from migtest import BIN, Failed, Host, Proc, Results, workdir

SEED = int(os.environ.get("DISK_TEST_SEED", "23"))
DISK = 1 << 20
BLOCK = 4096
EVERY = 25
RATE = 1000
TRACES = []
M = (1 << 64) - 1
# Each side's deadline for the other's next word: a loaded machine's first
# checkpoint (the secondary's qemu-img, drive_add, NBD export before
# SVM_READY) once took over 2 s; every loss here is a closed socket or a
# QEMU's error, none waits for the deadline.
TIMEOUT = "5"


def mix(z):
    """backends/sim/proto.c's disk_mix (splitmix64)."""
    z = (z + 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)


def expected(seed, writes):
    """The disk after disk writes 0..writes-1 (one disk): ls_sim_disk_write_at."""
    img = bytearray(DISK)
    blocks = DISK // BLOCK
    for j in range(writes):
        at = (mix(seed ^ mix(j)) % blocks) * BLOCK
        img[at:at + BLOCK] = bytes([1 + j % 255]) * BLOCK
    return bytes(img)


def differ(got, want):
    bad = [b for b in range(DISK // BLOCK) if got[b * BLOCK:(b + 1) * BLOCK]
           != want[b * BLOCK:(b + 1) * BLOCK]]
    return f"{len(bad)} blocks differ, first {bad[:5]}" if bad else ""


def traced(host):
    return dict(host.env, LOCKSTEP_TRACE="1")


def keep_trace(*procs):
    for p in procs:
        TRACES.extend(l for l in p.err if l.startswith("fsm "))


def events(proc, kind):
    out = []
    for line in proc.out:
        if line.startswith("{"):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == kind:
                out.append(e)
    return out


def checkpoints(proc):
    return {e["n"]: e for e in events(proc, "checkpoint")}


def outcome(proc):
    o = events(proc, "outcome")
    return o[-1] if o else {}


def kv(text):
    return dict(l.split(" ", 1) for l in text.splitlines() if " " in l)


def vcpu_writes(host, dom):
    """The writes its vCPU made (`sim workload`: "rate R pattern P writes N ...")."""
    f = host.sim("workload", str(dom)).split()
    return int(f[f.index("writes") + 1])


def image(work, name):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.truncate(DISK)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(work, n, nbd, sec_extra=(), pri_nbd=None, count=None, interval=40, domid=False,
          pri_fault=None, sec_fault=None):
    """Both sides, the secondary first; returns hosts, processes and disk images. domid:
    the primary's guest is made here (`sim create`) and given by --domid, its disk
    writer started here at the first checkpoint (as colo-primary --sim does it).
    *_fault: LOCKSTEP_DISK_FAULT=JOB:STEP for that side (states/colo_disk.c)."""
    prim, sec = Host(work, f"p{n}"), Host(work, f"s{n}")
    pimg, simg = image(work, f"pri{n}.raw"), image(work, f"sec{n}.raw")
    senv = dict(traced(sec), **({"LOCKSTEP_DISK_FAULT": sec_fault} if sec_fault else {}))
    # The images in the run's own directory: a copy that took over (or stays
    # paused) keeps its images after lockstep ends, and the default place
    # ($TMPDIR) would keep them after the run too.
    images = os.path.join(work, f"images{n}")
    os.makedirs(images, exist_ok=True)
    s = Proc(["colo-secondary", "--listen", "tcp:127.0.0.1:0", "--json", "--timeout", TIMEOUT,
              "--disk", simg, "--disk-nbd", nbd, "--disk-images", images, *sec_extra], senv,
             name="secondary")
    m = s.wait_line(r"^listening on (\S+)", 20)
    if not m:
        s.kill()
        s.wait(5)
        raise Failed(f"the secondary did not listen: {s.text()}")
    guest = ["--memory", "4M", "--seed", str(SEED + n), "--dirty-rate", str(RATE),
             "--disk", pimg]
    if domid:
        dom = int(prim.sim("create", "--type", "hvm", "--no-device-model", *guest))
        args = ["colo-primary", "--domid", str(dom)]
    else:
        args = ["colo-primary", "--sim", "hvm", *guest, "--disk-every", str(EVERY),
                "--disk-block", str(BLOCK)]
    args += ["--disk-nbd", pri_nbd or nbd, "--to", m.group(1), "--interval", str(interval),
             "--timeout", TIMEOUT, "--json"]
    if count:
        args += ["--checkpoints", str(count)]
    penv = dict(traced(prim), **({"LOCKSTEP_DISK_FAULT": pri_fault} if pri_fault else {}))
    p = Proc(args, penv, name="primary")
    if domid and not pri_nbd:
        wait_checkpoint(p, 1)
        prim.sim("disk", str(dom), "--every", str(EVERY), "--block", str(BLOCK))
    return prim, sec, p, s, pimg


def wait_checkpoint(proc, k, secs=60):
    end = time.time() + secs
    while time.time() < end and k not in checkpoints(proc):
        if proc.p.poll() is not None:
            break
        time.sleep(0.01)
    if k not in checkpoints(proc):
        raise Failed(f"no checkpoint {k}: {proc.text()[-800:]}")


def primary_disk_intact(res, what, prim, dom, pimg, seed):
    """The primary's guest wrote on after replication ended; paused (every owed write
    is in QEMU) its disk file is exactly its writes, none refused."""
    d0 = kv(prim.sim("disk", str(dom)))
    time.sleep(0.3)
    prim.sim("pause", str(dom))
    d = kv(prim.sim("disk", str(dom)))
    writes = vcpu_writes(prim, dom)
    with open(pimg, "rb") as f:
        got = f.read()
    j = int(d["written"])
    res.check(f"{what}: the primary's guest wrote its disk on after replication ended "
              f"({d0['written']} -> {j} writes), none refused, all that its {writes} vCPU "
              f"writes owe", j > int(d0["written"]) and d["failed"] == "0"
              and j == writes // EVERY, str(d))
    res.check(f"{what}: the primary's disk holds exactly its {j} writes (from the seed)",
              not differ(got, expected(seed, j)), differ(got, expected(seed, j)))


def survivor_disk(res, what, run):
    """The secondary took over: its copy runs; paused (every owed write in QEMU), its
    disk read through an NBD export of lsdisk0-top is exactly the writes of the vCPU
    count it holds: the primary's at the last checkpoint it applied, none later.
    (The replica's own vCPU does not write its disk: colo-secondary takes no
    --disk-every, and a restored sim domain does not keep the guest's disk seed.)"""
    sec, work, n, so = run.sec, run.work, run.n, run.so
    sdom = str(so.get("domid"))
    res.check(f"{what}: the survivor's copy runs", sec.domains().get(int(sdom)) == "running",
              str(sec.domains()))
    sec.sim("pause", sdom)
    writes = vcpu_writes(sec, sdom)
    d = kv(sec.sim("disk", sdom))
    sock = os.path.join(work, f"read{n}.sock")
    qmp(d["qmp"], "nbd-server-start", {"addr": {"type": "unix", "data": {"path": sock}}})
    qmp(d["qmp"], "nbd-server-add", {"device": "lsdisk0-top"})
    out = os.path.join(work, f"got{n}.raw")
    r = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw",
                        f"nbd+unix:///lsdisk0-top?socket={sock}", out],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failed(f"reading the survivor's disk: {r.stderr}")
    with open(out, "rb") as f:
        got = f.read()
    j = writes // EVERY
    want = expected(SEED + n, j)
    res.check(f"{what}: the survivor's disk is the primary's at the last checkpoint it "
              f"applied ({so.get('checkpoints')}: {writes} vCPU writes, {j} disk writes)",
              j > 2 and not differ(got, want), differ(got, want))
    res.check(f"{what}: none of the primary's writes after that checkpoint is there",
              got != expected(SEED + n, j + 3), "")


# ---- the cases: one start, an optional kill at a point, both ends awaited, checks ----

class Case:
    """A scenario of two roles with disks. kill: None (the roles end by themselves) or
    one of KILLS, done `delay` seconds after checkpoint `k` of side `side` ("p"/"s");
    fence: the secondary's --fence ("destroy": the primary's guest, "fails", "ok");
    check(res, run) asserts the ends."""

    def __init__(self, what, check, kill=None, side="s", k=0, delay=0.0, tcp=False,
                 fence=None, count=None, interval=40, domid=True, sec_extra=(),
                 pri_nbd=None, pri_fault=None, sec_fault=None):
        self.what, self.check, self.kill, self.side, self.k = what, check, kill, side, k
        self.delay, self.tcp, self.fence, self.count = delay, tcp, fence, count
        self.interval, self.domid, self.sec_extra, self.pri_nbd = interval, domid, sec_extra, pri_nbd
        self.pri_fault, self.sec_fault = pri_fault, sec_fault


class Run:
    """What a case's checks see."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.prc = self.src = None
        self.po = self.so = {}


def primary_dom(run):
    d = checkpoints(run.p).get(1, {}).get("domid")
    if d is None:
        raise Failed(f"no domid in the primary's first checkpoint: {run.p.text()[-600:]}")
    return d


def block_qemu(host, dom):
    return int(kv(host.sim("disk", str(dom)))["pid"])


def kill_pid(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_primary(run):
    run.p.kill()


def kill_primary_host(run):
    """The primary's whole host: its lockstep, its block QEMU and its sim daemon."""
    run.p.kill()
    kill_pid(run.pri_qemu)
    run.prim.kill_daemon()


def kill_primary_qemu(run):
    kill_pid(run.pri_qemu)


def kill_secondary(run):
    run.s.kill()


def kill_secondary_qemu(run):
    kill_pid(run.sec_qemu)


def stop_secondary_nbd(run):
    """The secondary's NBD server goes (QMP nbd-server-stop on its block QEMU), the
    QEMU itself stays: only the primary's writes and then its query notice."""
    qmp(kv(run.sec.sim("disk", str(run.sec_dom)))["qmp"], "nbd-server-stop")


def traced_rows(proc, state, event):
    """How many times proc's trace shows its role's (state, event) dispatched."""
    return sum(1 for l in list(proc.err) if l.startswith("fsm ") and l.split()[4:6] == [state, event]
               and l.split()[2] in ("colo_primary", "colo_secondary"))


def await_traced(proc, state, event, base, what):
    end = time.time() + 30
    while traced_rows(proc, state, event) <= base:
        if time.time() > end or proc.p.poll() is not None:
            raise Failed(f"{what}: no {state} + {event} in the trace: {proc.text()[-600:]}")
        time.sleep(0.005)


def act_while_held(run, proc, row, base, what, qemu, act):
    """qemu is stopped: once proc's trace shows row past base (its job on that QEMU
    in flight), act; then the QEMU goes on (SIGCONT)."""
    try:
        await_traced(proc, *row, base, what)
        time.sleep(0.05)
        act(run)
        time.sleep(0.3)
    finally:
        os.kill(qemu, signal.SIGCONT)


def hold_secondary_query(run, act):
    """The secondary's block QEMU stopped (SIGSTOP) in the interval after a disk
    checkpoint, so that its next job, the query after its suspend, waits on it;
    once that query is in flight, act."""
    s, row = run.s, ("SUSPENDING", "GUEST_SUSPENDED")
    await_traced(s, "DISK_CHECKPOINTING", "DISK_DONE",
                 traced_rows(s, "DISK_CHECKPOINTING", "DISK_DONE"), "a disk checkpoint")
    base = traced_rows(s, *row)
    os.kill(run.sec_qemu, signal.SIGSTOP)
    act_while_held(run, s, row, base, "the query after a suspend", run.sec_qemu, act)


def hold_primary_query(run, act):
    """The primary's query after a suspend made to wait on its block QEMU: the
    secondary's lockstep is stopped (SIGSTOP) in the interval (its SVM_RESUMED
    read), so the primary, once its guest is suspended (every disk write in its
    QEMU), waits for SVM_SUSPENDED; then its QEMU is stopped and the secondary
    goes on; once the query is in flight, act."""
    p, spid, row = run.p, run.s.pid, ("AWAIT_SVM_SUSPENDED", "SVM_SUSPENDED")
    await_traced(p, "AWAIT_SVM_RESUMED", "SVM_RESUMED",
                 traced_rows(p, "AWAIT_SVM_RESUMED", "SVM_RESUMED"), "a checkpoint's end")
    base = traced_rows(p, "SUSPENDING", "GUEST_SUSPENDED")
    query = traced_rows(p, *row)
    os.kill(spid, signal.SIGSTOP)
    try:
        await_traced(p, "SUSPENDING", "GUEST_SUSPENDED", base, "the primary's suspend")
        os.kill(run.pri_qemu, signal.SIGSTOP)
    finally:
        os.kill(spid, signal.SIGCONT)
    act_while_held(run, p, row, query, "the primary's query", run.pri_qemu, act)


KILLS = {"primary": kill_primary, "primary-host": kill_primary_host,
         "primary-qemu": kill_primary_qemu, "secondary": kill_secondary,
         "secondary-qemu": kill_secondary_qemu, "secondary-nbd": stop_secondary_nbd,
         "failover-in-query": lambda run: hold_secondary_query(
             run, lambda r: r.s.kill(signal.SIGUSR1)),
         "stop-in-query": lambda run: hold_secondary_query(
             run, lambda r: r.s.kill(signal.SIGINT)),
         "stop-in-primary-query": lambda run: hold_primary_query(
             run, lambda r: r.p.kill(signal.SIGINT))}


def fence_of(case, work, n):
    if case.fence == "destroy":
        # The first domain of a fresh host is 1: the fence destroys the primary's guest.
        return ("--fence", f"LOCKSTEP_RUNDIR={os.path.join(work, f'p{n}')} {BIN} sim destroy 1")
    if case.fence == "fails":
        return ("--fence", "echo no; exit 1")
    if case.fence == "ok":
        return ("--fence", "true")
    return ()


def run_case(res, work, n, case):
    """The shape every case has: start both sides, kill at the point, await both, check."""
    nbd = (f"tcp:127.0.0.1:{free_port()}" if case.tcp
           else "unix:" + os.path.join(work, f"nbd{n}.sock"))
    pri_nbd = case.pri_nbd and case.pri_nbd.format(work=work, n=n)
    prim, sec, p, s, pimg = start(work, n, nbd, sec_extra=(*case.sec_extra,
                                                          *fence_of(case, work, n)),
                                  pri_nbd=pri_nbd, count=case.count, interval=case.interval,
                                  domid=case.domid, pri_fault=case.pri_fault,
                                  sec_fault=case.sec_fault)
    run = Run(res=res, work=work, n=n, case=case, prim=prim, sec=sec, p=p, s=s, pimg=pimg,
              pri_qemu=0, sec_qemu=0, sec_dom=0)
    try:
        if case.kill:
            wait_checkpoint(s, 1)
            wait_checkpoint(p, 1)
            if case.kill in ("primary-host", "primary-qemu", "stop-in-primary-query"):
                run.pri_qemu = block_qemu(prim, primary_dom(run))
            if case.kill in ("secondary-qemu", "secondary-nbd", "failover-in-query",
                             "stop-in-query"):
                wait_checkpoint(s, 2)   # the first checkpoint's copy is replaced at the second
                run.sec_dom = checkpoints(s)[2]["domid"]
                run.sec_qemu = block_qemu(sec, run.sec_dom)
            wait_checkpoint(p if case.side == "p" else s, case.k)
            time.sleep(case.delay)
            KILLS[case.kill](run)
        run.prc, run.src = p.wait(120), s.wait(60)
        keep_trace(p, s)
        run.po, run.so = outcome(p), outcome(s)
        print(f"# {case.what}: the primary {run.po.get('role')} (disks "
              f"{run.po.get('disk_state')}: {(run.po.get('error') or '')[:200]}), the secondary "
              f"{run.so.get('role')} (disks {run.so.get('disk_state')}: "
              f"{(run.so.get('error') or '')[:200]})", flush=True)
        case.check(res, case.what, run)
    finally:
        prim.stop()
        sec.stop()


# ---- the checks of each case ----

def check_stop(res, what, run):
    p, s, count = run.p, run.s, run.case.count
    pc, sc, po, so = checkpoints(p), checkpoints(s), run.po, run.so
    res.check(f"{what}: both end stopped in order (rc {run.prc}/{run.src})",
              run.prc == 0 and run.src == 0 and po.get("role") == "stopped"
              and so.get("role") == "stopped", p.text()[-600:] + s.text()[-600:])
    bad = [k for k in range(1, count + 1) if pc.get(k, {}).get("disk_state") != "replicating"
           or pc[k].get("disk_checkpoints") != k - 1 or not pc[k].get("disk_checkpoint_us")]
    res.check(f"{what}: the primary's disks replicated at each of {count} checkpoints, one "
              f"disk checkpoint each after the first setup", not bad,
              str([pc.get(k) for k in bad[:2]]))
    res.check(f"{what}: the secondary applied every checkpoint to its disk before SVM_READY",
              so.get("disk_checkpoints") == count - 1 and len(sc) == count, str(so))
    res.check(f"{what}: both sides' disk replication ended stopped (the secondary's 7.2 "
              f"refusal kept as a note)", po.get("disk_state") == "stopped"
              and so.get("disk_state") == "stopped"
              and (not so.get("disk_note")
                   or "Backup job was cancelled unexpectedly" in so["disk_note"]),
              f"{po} / {so}")
    res.check(f"{what}: no copy left on the secondary", not run.sec.domains(),
              str(run.sec.domains()))
    primary_disk_intact(res, what, run.prim, po.get("domid"), run.pimg, SEED + run.n)


def check_took_over(res, what, run):
    """A failover: the secondary took over with its disks, the primary's guest fenced."""
    so = run.so
    res.check(f"{what}: the secondary took over, its disks failed over (rc {run.src})",
              run.src == 0 and so.get("role") == "active"
              and so.get("disk_state") == "failed-over", run.s.text()[-800:])
    if so.get("role") != "active":
        return
    if run.case.kill != "primary-host":   # a dead host's daemon cannot be asked
        res.check(f"{what}: the primary's guest is fenced", not run.prim.domains(),
                  str(run.prim.domains()))
    survivor_disk(res, what, run)


def check_failover(res, what, run):
    check_took_over(res, what, run)
    with open(os.path.join(run.prim.rundir, "simd.log"), errors="replace") as f:
        log = f.read()
    res.check(f"{what}: a guest its guard resumed ran alone, its disks' replication "
              f"dropped first", "stopped for a save: resuming it" not in log
              or "NBD clients dropped, before it runs alone" in log, log[-600:])


def check_primary_qemu_killed(res, what, run):
    """The primary's block QEMU died: its next disk job fails with the reason, it
    ends replication (its guest's disk is gone with its QEMU), the secondary takes over.
    The fence destroys the primary's guest, before or after the primary settled it:
    unprotected (rc 3), or ended (rc 1: its guest could not be resumed)."""
    po = run.po
    res.check(f"{what}: the primary ends replication, its disk job naming the QEMU that is "
              f"gone (rc {run.prc}, {po.get('role')})",
              (run.prc, po.get("role")) in ((3, "unprotected"), (1, "ended"))
              and po.get("disk_state") == "failed"
              and "QEMU is gone" in (po.get("error") or ""), run.p.text()[-800:])
    check_took_over(res, what, run)


def check_unprotected(res, what, run, state="broken", why=None):
    po = run.po
    whys = [e.get("why", "") for e in events(run.p, "role") if e.get("role") == "unprotected"]
    res.check(f"{what}: the primary runs on unprotected, its disk replication {state} "
              f"(rc {run.prc})", run.prc == 3 and po.get("role") == "unprotected"
              and po.get("disk_state") == state
              and (not why or (whys and why in whys[0])), f"{po} / {whys}")
    primary_disk_intact(res, what, run.prim, po.get("domid"), run.pimg, SEED + run.n)


def check_secondary_lost(res, what, run):
    check_unprotected(res, what, run)


def check_secondary_qemu_killed(res, what, run):
    """The secondary's block QEMU died: whichever side's disk job meets it first (the
    secondary's checkpoint or its query after a suspend, or the primary's query), the
    primary runs on unprotected, its disk intact, and no copy runs on the secondary."""
    po, so = run.po, run.so
    res.check(f"{what}: the primary runs on unprotected, its disks' replication gone "
              f"(rc {run.prc})", run.prc == 3 and po.get("role") == "unprotected"
              and po.get("disk_state") in ("broken", "failed"), f"{po}")
    whys = " ".join(e.get("why", "") for e in events(run.p, "role"))
    res.check(f"{what}: the secondary ends without a running copy (rc {run.src}, "
              f"{so.get('role')}), a disk job on either side naming the QEMU gone or broken",
              so.get("role") in ("ended", "fence-failed")
              and "running" not in run.sec.domains().values()
              and ("QEMU is gone" in (so.get("error") or "") or "QEMU reports it broken" in whys),
              f"{so} / {whys} / {run.sec.domains()}")
    primary_disk_intact(res, what, run.prim, po.get("domid"), run.pimg, SEED + run.n)


def check_secondary_qemu_killed_between(res, what, run):
    """Killed in the interval after checkpoint k (the primary's event: the secondary's
    disks took it): the secondary's query after its next suspend finds its QEMU gone,
    says so with the reason, and its copy goes; the primary runs on."""
    so = run.so
    res.check(f"{what}: the secondary's query after its suspend fails naming the query, "
              f"its copy destroyed (rc {run.src})", run.src == 1 and so.get("role") == "ended"
              and so.get("disk_state") == "failed"
              and "query-xen-replication-status" in so.get("error", "")
              and not run.sec.domains(), run.s.text()[-800:])
    check_unprotected(res, what, run)


def check_nbd_gone(res, what, run):
    """The secondary's NBD server stopped: the primary's writes fail into its
    replication child, and its query after the next suspend says so with QEMU's
    words ("I/O error occurred"): it drops the replication and runs on unprotected."""
    check_unprotected(res, what, run, why="QEMU reports it broken")
    whys = " ".join(e.get("why", "") for e in events(run.p, "role"))
    res.check(f"{what}: the primary's reason keeps QEMU's words", "I/O error" in whys, whys)


def check_primary_query_refused(res, what, run):
    po = run.po
    res.check(f"{what}: the primary's query fails with QEMU's words, it runs on unprotected "
              f"(rc {run.prc})", run.prc == 3 and po.get("role") == "unprotected"
              and po.get("disk_state") == "failed"
              and "query-xen-replication-status" in (po.get("error") or "")
              and "injected refusal" in (po.get("error") or ""), f"{po}")
    primary_disk_intact(res, what, run.prim, po.get("domid"), run.pimg, SEED + run.n)


def check_rows(res, what, run, rows):
    """The secondary's trace took these (state, event) rows."""
    missing = [r for r in rows if not traced_rows(run.s, *r)]
    res.check(f"{what}: the secondary took {', '.join(' + '.join(r) for r in rows)}",
              not missing, f"missing {missing}")


def check_failover_in_query(res, what, run):
    """A failover asked (SIGUSR1) while the secondary's query waits on its QEMU:
    the job is awaited before the tasks go, then the takeover with the disks
    failed over, the survivor's disk the primary's at the last checkpoint."""
    check_rows(res, what, run, [("DISK_QUERYING", "FAILOVER"),
                                ("AWAIT_DISK_THEN_FAILOVER", "DISK_DONE")])
    check_took_over(res, what, run)


def check_stop_in_query(res, what, run):
    """The secondary stopped (SIGINT) while its query waits on its QEMU: the job
    is awaited, then its copy is destroyed; the primary runs on unprotected."""
    check_rows(res, what, run, [("DISK_QUERYING", "CANCEL"),
                                ("AWAIT_DISK_THEN_DESTROY", "DISK_DONE")])
    res.check(f"{what}: the secondary ends, its copy destroyed (rc {run.src})",
              run.so.get("role") == "ended" and not run.sec.domains(),
              f"{run.so} / {run.sec.domains()}")
    check_unprotected(res, what, run)


def check_stop_in_primary_query(res, what, run):
    """An orderly stop (SIGINT) asked while the primary's query waits on its QEMU:
    the query ends first, then the stop is announced where the next NEW was due."""
    rows = [r for r in [("DISK_QUERYING", "CANCEL")] if not traced_rows(run.p, *r)]
    res.check(f"{what}: the primary took DISK_QUERYING + CANCEL", not rows, f"missing {rows}")
    po, so = run.po, run.so
    res.check(f"{what}: both end stopped in order (rc {run.prc}/{run.src})",
              run.prc == 0 and run.src == 0 and po.get("role") == "stopped"
              and so.get("role") == "stopped" and po.get("disk_state") == "stopped",
              f"{po} / {so}")
    res.check(f"{what}: no copy left on the secondary", not run.sec.domains(),
              str(run.sec.domains()))
    primary_disk_intact(res, what, run.prim, po.get("domid"), run.pimg, SEED + run.n)


def check_bad_nbd(res, what, run):
    po = run.po
    res.check(f"{what}: its setup fails with QEMU's reason, the guest runs on unprotected "
              f"(rc {run.prc})", run.prc == 3 and po.get("role") == "unprotected"
              and po.get("disk_state") == "failed" and "drive_add" in po.get("error", "")
              and f"nobody{run.n}.sock" in po.get("error", ""), run.p.text()[-800:])


def check_bad_images(res, what, run):
    so, po = run.so, run.po
    nowhere = os.path.join(run.work, f"nowhere{run.n}", "images")
    res.check(f"{what}: the secondary's setup fails with qemu-img's reason before SVM_READY "
              f"and its copy is destroyed (rc {run.src})", run.src == 1
              and so.get("role") == "ended" and so.get("disk_state") == "failed"
              and "qemu-img" in so.get("error", "") and nowhere in so.get("error", "")
              and not run.sec.domains(), run.s.text()[-800:])
    res.check(f"{what}: the primary, never replicating its disks, runs on unprotected "
              f"(rc {run.prc})", run.prc == 3 and po.get("role") == "unprotected"
              and po.get("disk_state") == "stopped", run.p.text()[-800:])


def check_teardowns_refused(res, what, run):
    po, so = run.po, run.so
    why = " ".join(e.get("why", "") for e in events(run.p, "role"))
    res.check(f"{what}: both still stop in order, the disks' state failed with QEMU's "
              f"words (rc {run.prc}/{run.src})", run.prc == 0 and run.src == 0
              and po.get("role") == "stopped" and so.get("role") == "stopped"
              and po.get("disk_state") == "failed" and so.get("disk_state") == "failed"
              and "injected refusal" in po.get("disk_note", "") and "injected refusal" in why
              and "injected refusal" in so.get("disk_note", ""), f"{po} / {so} / {why}")


def check_drop_refused(res, what, run):
    po = run.po
    res.check(f"{what}: it runs on unprotected, saying why replication ended and that its "
              f"disks' replication could not be dropped (rc {run.prc})", run.prc == 3
              and po.get("role") == "unprotected" and po.get("disk_state") == "failed"
              and "could not be dropped" in po.get("error", "")
              and "injected refusal" in po.get("error", ""), run.p.text()[-800:])


def check_failover_refused(res, what, run):
    so = run.so
    why = " ".join(e.get("why", "") for e in events(run.s, "role"))
    res.check(f"{what}: its copy still takes over, saying its disks could not fail over "
              f"(rc {run.src})", run.src == 0 and so.get("role") == "active"
              and so.get("disk_state") == "failed" and "could not fail over" in why
              and "injected refusal" in why, run.s.text()[-800:])


def check_query_refused(res, what, run):
    """QEMU refusing the secondary's query after its suspend (libxl asks it on both
    sides): its copy is destroyed with QEMU's words, the primary runs on."""
    so = run.so
    res.check(f"{what}: the secondary ends before its copy runs again, with QEMU's words "
              f"(rc {run.src})", run.src == 1 and so.get("role") == "ended"
              and so.get("disk_state") == "failed"
              and "query-xen-replication-status" in so.get("error", "")
              and "injected refusal" in so.get("error", "") and not run.sec.domains(),
              run.s.text()[-800:])
    check_unprotected(res, what, run)


CASES = {
    "stop": [
        Case("orderly stop", check_stop, count=30),
    ],
    "failover": [
        # Mostly while the primary's guest is suspended for a checkpoint: its guard
        # resumes it, its disks' replication dropped first (the sim daemon does that, as
        # the primary's teardown would), and it writes on until the fence destroys it.
        Case("failover (the primary's lockstep killed)", check_failover, kill="primary",
             k=20 + SEED % 10, tcp=True, fence="destroy", domid=False),
    ],
    "lost": [
        Case("the secondary's lockstep killed", check_secondary_lost, kill="secondary",
             side="p", k=12),
        # Killed in the interval after checkpoint 8 (the primary's event: the
        # secondary's disks took it): the secondary's own query after its next
        # suspend meets it first.
        Case("the secondary's block QEMU killed", check_secondary_qemu_killed_between,
             kill="secondary-qemu", side="p", k=8, interval=300, fence="fails"),
        # Stopped in the interval after checkpoint 8 (the primary's event): the
        # primary's guest writes meanwhile, its query at the next suspend finds them lost.
        Case("the secondary's NBD server stopped under the primary", check_nbd_gone,
             kill="secondary-nbd", side="p", k=8, interval=300, fence="fails"),
        Case("the primary's NBD address served by nobody", check_bad_nbd, fence="fails",
             domid=False, pri_nbd="unix:{work}/nobody{n}.sock"),
        Case("the secondary's active and hidden images cannot be made", check_bad_images,
             domid=False, sec_extra=("--disk-images", "{nowhere}")),
    ],
    "held": [
        Case("a failover asked while the secondary's query waits on its QEMU",
             check_failover_in_query, kill="failover-in-query", side="p", k=6, interval=300,
             fence="destroy"),
        Case("the secondary stopped while its query waits on its QEMU", check_stop_in_query,
             kill="stop-in-query", side="p", k=6, interval=300, fence="fails"),
        Case("the primary stopped while its query waits on its QEMU",
             check_stop_in_primary_query, kill="stop-in-primary-query", side="p", k=6,
             interval=300, fence="fails"),
    ],
    "refused": [
        Case("the teardowns refused", check_teardowns_refused, count=4,
             pri_fault="TEARDOWN_PRIMARY:xen-set-replication",
             sec_fault="TEARDOWN_SECONDARY:nbd-server-stop"),
        Case("the primary's drop refused after the secondary was lost", check_drop_refused,
             kill="secondary", side="p", k=4, pri_fault="TEARDOWN_PRIMARY:xen-set-replication"),
        Case("the secondary's disk failover refused", check_failover_refused, kill="primary",
             k=4, fence="destroy", domid=False, sec_fault="FAILOVER:nbd-server-stop"),
        Case("the secondary's query after its suspend refused", check_query_refused,
             fence="fails", sec_fault="QUERY:query-xen-replication-status"),
        Case("the primary's query after its suspend refused", check_primary_query_refused,
             fence="fails", pri_fault="QUERY:query-xen-replication-status"),
    ],
}

# The role-level failover matrix: each kind at sampled points (a checkpoint of one
# side, then a delay within the interval), from a seed printed at the start.
MATRIX = [
    ("the primary's lockstep killed", check_failover, "primary", "destroy"),
    ("the primary's host killed", check_took_over, "primary-host", "ok"),
    ("the primary's block QEMU killed", check_primary_qemu_killed, "primary-qemu", "destroy"),
    ("the secondary's block QEMU killed", check_secondary_qemu_killed, "secondary-qemu", "fails"),
]


def matrix_cases():
    seed = int(os.environ.get("DISK_MATRIX_SEED") or random.SystemRandom().randrange(1 << 30))
    per = int(os.environ.get("DISK_MATRIX_SAMPLES", "1"))
    print(f"# matrix seed {seed}, {per} points per kind (DISK_MATRIX_SEED={seed} "
          f"DISK_MATRIX_SAMPLES={per} replays them)", flush=True)
    rng = random.Random(seed)
    cases = []
    for what, check, kill, fence in MATRIX:
        for _ in range(per):
            side, k, delay = rng.choice("ps"), rng.randint(3, 12), rng.uniform(0, 0.06)
            cases.append(Case(f"{what} {delay * 1000:.0f} ms after checkpoint {k} of the "
                              f"{'primary' if side == 'p' else 'secondary'}", check, kill=kill,
                              side=side, k=k, delay=delay, fence=fence, tcp=rng.random() < 0.5))
    return cases


def run_unreplicated(res, work, n):
    what = "an HVM guest with a disk and no --disk-nbd"
    prim, sec = Host(work, f"p{n}"), Host(work, f"s{n}")
    pimg = image(work, f"pri{n}.raw")
    try:
        dom = int(prim.sim("create", "--type", "hvm", "--no-device-model", "--memory", "4M",
                           "--disk", pimg))
        s = Proc(["colo-secondary", "--listen", "tcp:127.0.0.1:0", "--json", "--timeout", "2"],
                 traced(sec), name="secondary")
        m = s.wait_line(r"^listening on (\S+)", 20)
        if not m:
            raise Failed(f"the secondary did not listen: {s.text()}")
        p = Proc(["colo-primary", "--domid", str(dom), "--to", m.group(1), "--timeout", "2",
                  "--json"], traced(prim), name="primary")
        prc, src = p.wait(60), s.wait(30)
        keep_trace(p, s)
        po = outcome(p)
        res.check(f"{what}: COLO refuses it, as libxl does, naming the option (rc {prc})",
                  prc == 1 and "unreplicated" in po.get("error", "")
                  and "--disk-nbd" in po.get("error", "")
                  and prim.domains().get(dom) == "running", p.text()[-600:])
    finally:
        prim.stop()
        sec.stop()


def main():
    part = sys.argv[1] if len(sys.argv) > 1 else "stop"
    res = Results()
    work = workdir()
    cases = matrix_cases() if part == "matrix" else CASES[part]
    n = {"stop": 1, "failover": 2, "lost": 3, "held": 15, "refused": 20, "matrix": 40}[part]
    t0 = time.time()
    for case in cases:
        t = time.time()
        case.sec_extra = tuple(a.format(nowhere=os.path.join(work, f"nowhere{n}", "images"))
                               for a in case.sec_extra)
        try:
            run_case(res, work, n, case)
        except Failed as e:
            res.check(case.what, False, str(e))
        print(f"# {case.what}: {time.time() - t:.1f} s", flush=True)
        n += 1
    if part == "lost":
        try:
            run_unreplicated(res, work, n)
        except Failed as e:
            res.check("run", False, str(e))
    print(f"# {len(cases)} cases in {time.time() - t0:.1f} s", flush=True)
    if os.environ.get("LOCKSTEP_BUILD_DIR"):
        rows_dir = os.path.join(os.environ["LOCKSTEP_BUILD_DIR"], "rows")
        os.makedirs(rows_dir, exist_ok=True)
        with open(os.path.join(rows_dir, f"colo_disk_{part}.trace"), "w") as f:
            f.writelines(TRACES)
    shutil.rmtree(work, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
