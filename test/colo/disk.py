"""test/colo/disk.py - COLO of an HVM guest whose disk is replicated by the roles.

`lockstep colo-primary --sim hvm --disk FILE --disk-nbd ADDR` and
`lockstep colo-secondary --disk FILE --disk-nbd ADDR` between two simulated
hosts: each guest's disk is a drive of its block QEMU (Debian's 7.2), the
primary's vCPU writes it (--disk-every: disk write j fills a block picked by
(seed, j) with 1 + j % 255, so the disk after K vCPU writes follows from the
seed and K), and the roles replicate it with QEMU's block replication over
NBD (states/colo_disk.def run from colo_primary.def / colo_secondary.def).
Usage: disk.py stop|failover|lost|refused.

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
checkpoints: the primary's query-xen-replication-status after the next
suspend says so (QEMU's words in the role's reason), it goes on
unprotected, its disk intact. The primary given an NBD address nobody
serves: its setup fails with QEMU's reason and it runs on unprotected. The
secondary's images in a directory that does not exist: its setup fails
with qemu-img's reason, its copy is destroyed, the primary runs on. An
HVM guest with a disk and no --disk-nbd: COLO refuses it, as libxl does.

refused: QEMU refusing (LOCKSTEP_DISK_FAULT, fault-hook builds) a step of the primary's
teardown at a stop and after a loss, of the secondary's at a stop, and of
its failover: each role ends as it would, saying so with QEMU's words.

Cost: about 8 s for stop, 11 s for failover, 22 s for lost and 21 s for
refused on a loaded 2-core machine (the block QEMUs start in a fraction of
a second; most of it is the two sides' start and the 2 s loss timeouts).
"""
import json
import os
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
    s = Proc(["colo-secondary", "--listen", "tcp:127.0.0.1:0", "--json", "--timeout", "2",
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
             "--timeout", "2", "--json"]
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


def run_stop(res, work, n):
    what = "orderly stop"
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    count = 30
    prim, sec, p, s, pimg = start(work, n, nbd, count=count, domid=True)
    try:
        prc, src = p.wait(120), s.wait(30)
        keep_trace(p, s)
        pc, sc = checkpoints(p), checkpoints(s)
        po, so = outcome(p), outcome(s)
        res.check(f"{what}: both end stopped in order (rc {prc}/{src})",
                  prc == 0 and src == 0 and po.get("role") == "stopped"
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
        res.check(f"{what}: no copy left on the secondary", not sec.domains(), str(sec.domains()))
        primary_disk_intact(res, what, prim, po.get("domid"), pimg, SEED + n)
    finally:
        prim.stop()
        sec.stop()


def run_failover(res, work, n):
    what = "failover (the primary's lockstep killed)"
    nbd = f"tcp:127.0.0.1:{free_port()}"
    # The first domain of a fresh host is 1: the fence destroys the primary's guest.
    fence = f"LOCKSTEP_RUNDIR={os.path.join(work, f'p{n}')} {BIN} sim destroy 1"
    prim, sec, p, s, pimg = start(work, n, nbd, sec_extra=("--fence", fence))
    try:
        at = 20 + SEED % 10
        wait_checkpoint(s, at)
        if checkpoints(p).get(1, {}).get("domid") != 1:
            raise Failed(f"the primary's guest is not domain 1: {checkpoints(p).get(1)}")
        p.kill()
        p.wait(10)
        src = s.wait(60)
        keep_trace(p, s)
        so = outcome(s)
        res.check(f"{what}: the secondary took over, its disks failed over (rc {src})",
                  src == 0 and so.get("role") == "active"
                  and so.get("disk_state") == "failed-over", s.text()[-800:])
        sdom = str(so.get("domid"))
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
                  j > 10 and not differ(got, want), differ(got, want))
        later = expected(SEED + n, j + 3)
        res.check(f"{what}: none of the primary's writes after that checkpoint is there",
                  got != later, "")
        with open(os.path.join(prim.rundir, "simd.log"), errors="replace") as f:
            log = f.read()
        res.check(f"{what}: a guest its guard resumed ran alone, its disks' replication "
                  f"dropped first", "stopped for a save: resuming it" not in log
                  or "NBD clients dropped, before it runs alone" in log, log[-600:])
        res.check(f"{what}: the primary's guest is fenced, the survivor runs",
                  not prim.domains() and sec.domains().get(int(sdom)) == "running",
                  f"{prim.domains()} / {sec.domains()}")
    finally:
        prim.stop()
        sec.stop()


def run_secondary_killed(res, work, n):
    what = "the secondary's lockstep killed"
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    prim, sec, p, s, pimg = start(work, n, nbd, domid=True)
    try:
        wait_checkpoint(p, 12)
        s.kill()
        s.wait(10)
        prc = p.wait(60)
        keep_trace(p, s)
        po = outcome(p)
        res.check(f"{what}: the primary runs on unprotected, its disk replication dropped "
                  f"(rc {prc})", prc == 3 and po.get("role") == "unprotected"
                  and po.get("disk_state") == "broken", p.text()[-800:])
        primary_disk_intact(res, what, prim, po.get("domid"), pimg, SEED + n)
    finally:
        prim.stop()
        sec.stop()


def run_secondary_qemu_killed(res, work, n):
    what = "the secondary's block QEMU killed"
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    prim, sec, p, s, pimg = start(work, n, nbd, sec_extra=("--fence", "echo no; exit 1"),
                                  interval=300, domid=True)
    try:
        wait_checkpoint(s, 2)
        pid = int(kv(sec.sim("disk", str(checkpoints(s)[2]["domid"])))["pid"])
        # Killed in the interval after checkpoint 8 (the primary's event: the
        # secondary's disks took it): the primary's query at checkpoint 9 comes
        # before the secondary next touches them.
        wait_checkpoint(p, 8)
        os.kill(pid, signal.SIGKILL)
        prc = p.wait(60)
        s.wait(60)
        keep_trace(p, s)
        po = outcome(p)
        why = [e.get("why", "") for e in events(p, "role") if e.get("role") == "unprotected"]
        res.check(f"{what}: the primary's query after the next suspend finds replication "
                  f"broken, says so with QEMU's words, runs on unprotected (rc {prc})",
                  prc == 3 and po.get("role") == "unprotected"
                  and po.get("disk_state") == "broken" and why
                  and "QEMU reports it broken" in why[0], f"{po} / {why}")
        primary_disk_intact(res, what, prim, po.get("domid"), pimg, SEED + n)
    finally:
        prim.stop()
        sec.stop()


def run_bad_nbd(res, work, n):
    what = "the primary's NBD address served by nobody"
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    prim, sec, p, s, pimg = start(work, n, nbd, sec_extra=("--fence", "exit 1"),
                                  pri_nbd="unix:" + os.path.join(work, f"nobody{n}.sock"))
    try:
        prc = p.wait(60)
        s.wait(60)
        keep_trace(p, s)
        po = outcome(p)
        res.check(f"{what}: its setup fails with QEMU's reason, the guest runs on unprotected "
                  f"(rc {prc})", prc == 3 and po.get("role") == "unprotected"
                  and po.get("disk_state") == "failed" and "drive_add" in po.get("error", "")
                  and f"nobody{n}.sock" in po.get("error", ""), p.text()[-800:])
    finally:
        prim.stop()
        sec.stop()


def run_bad_images(res, work, n):
    what = "the secondary's active and hidden images cannot be made"
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    nowhere = os.path.join(work, f"nowhere{n}", "images")
    prim, sec, p, s, pimg = start(work, n, nbd, sec_extra=("--disk-images", nowhere))
    try:
        src = s.wait(60)
        prc = p.wait(60)
        keep_trace(p, s)
        so, po = outcome(s), outcome(p)
        res.check(f"{what}: the secondary's setup fails with qemu-img's reason before SVM_READY "
                  f"and its copy is destroyed (rc {src})", src == 1 and so.get("role") == "ended"
                  and so.get("disk_state") == "failed" and "qemu-img" in so.get("error", "")
                  and nowhere in so.get("error", "") and not sec.domains(), s.text()[-800:])
        res.check(f"{what}: the primary, never replicating its disks, runs on unprotected "
                  f"(rc {prc})", prc == 3 and po.get("role") == "unprotected"
                  and po.get("disk_state") == "stopped", p.text()[-800:])
    finally:
        prim.stop()
        sec.stop()


def run_refused(res, work, n):
    """QEMU refusing a step of each teardown and of the failover (injected): the
    roles end as they would, the refusal said with QEMU's words."""
    what = "the teardowns refused"
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    prim, sec, p, s, pimg = start(work, n, nbd, count=4, domid=True,
                                  pri_fault="TEARDOWN_PRIMARY:xen-set-replication",
                                  sec_fault="TEARDOWN_SECONDARY:nbd-server-stop")
    try:
        prc, src = p.wait(60), s.wait(30)
        keep_trace(p, s)
        po, so = outcome(p), outcome(s)
        why = " ".join(e.get("why", "") for e in events(p, "role"))
        res.check(f"{what}: both still stop in order, the disks' state failed with QEMU's "
                  f"words (rc {prc}/{src})", prc == 0 and src == 0
                  and po.get("role") == "stopped" and so.get("role") == "stopped"
                  and po.get("disk_state") == "failed" and so.get("disk_state") == "failed"
                  and "injected refusal" in po.get("disk_note", "") and "injected refusal" in why
                  and "injected refusal" in so.get("disk_note", ""), f"{po} / {so} / {why}")
    finally:
        prim.stop()
        sec.stop()
    what = "the primary's drop refused after the secondary was lost"
    n += 1
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    prim, sec, p, s, pimg = start(work, n, nbd, domid=True,
                                  pri_fault="TEARDOWN_PRIMARY:xen-set-replication")
    try:
        wait_checkpoint(p, 4)
        s.kill()
        s.wait(10)
        prc = p.wait(60)
        keep_trace(p, s)
        po = outcome(p)
        res.check(f"{what}: it runs on unprotected, saying why replication ended and that its "
                  f"disks' replication could not be dropped (rc {prc})", prc == 3
                  and po.get("role") == "unprotected" and po.get("disk_state") == "failed"
                  and "could not be dropped" in po.get("error", "")
                  and "injected refusal" in po.get("error", ""), p.text()[-800:])
    finally:
        prim.stop()
        sec.stop()
    what = "the secondary's disk failover refused"
    n += 1
    nbd = "unix:" + os.path.join(work, f"nbd{n}.sock")
    fence = f"LOCKSTEP_RUNDIR={os.path.join(work, f'p{n}')} {BIN} sim destroy 1"
    prim, sec, p, s, pimg = start(work, n, nbd, sec_extra=("--fence", fence),
                                  sec_fault="FAILOVER:nbd-server-stop")
    try:
        wait_checkpoint(s, 4)
        p.kill()
        p.wait(10)
        src = s.wait(60)
        keep_trace(p, s)
        so = outcome(s)
        why = " ".join(e.get("why", "") for e in events(s, "role"))
        res.check(f"{what}: its copy still takes over, saying its disks could not fail over "
                  f"(rc {src})", src == 0 and so.get("role") == "active"
                  and so.get("disk_state") == "failed" and "could not fail over" in why
                  and "injected refusal" in why, s.text()[-800:])
    finally:
        prim.stop()
        sec.stop()


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
    try:
        if part == "stop":
            run_stop(res, work, 1)
        elif part == "failover":
            run_failover(res, work, 2)
        elif part == "refused":
            run_refused(res, work, 7)
        else:
            run_secondary_killed(res, work, 3)
            run_secondary_qemu_killed(res, work, 4)
            run_bad_nbd(res, work, 5)
            run_bad_images(res, work, 6)
            run_unreplicated(res, work, 10)
    except Failed as e:
        res.check("run", False, str(e))
    if os.environ.get("LOCKSTEP_BUILD_DIR"):
        rows_dir = os.path.join(os.environ["LOCKSTEP_BUILD_DIR"], "rows")
        os.makedirs(rows_dir, exist_ok=True)
        with open(os.path.join(rows_dir, f"colo_disk_{part}.trace"), "w") as f:
            f.writelines(TRACES)
    shutil.rmtree(work, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
