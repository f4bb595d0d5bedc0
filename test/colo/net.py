"""test/colo/net.py - COLO's network output through QEMU's colo-compare.

`lockstep colo-primary` / `colo-secondary` between two simulated hosts whose
guests send frames (lockstep sim net), with the primary's colo-compare a real
QEMU 7.2 (recipe section 8) and the outside world a SOCK_SEQPACKET socket
this test reads. Usage: net.py outputs|failover|faults.

outputs: a deterministic guest: no checkpoint is caused by divergence, and
every frame the primary's guest sent while replicated reaches the world, in
order, once. With nondeterministic frames (2%): divergences cause
checkpoints, and the world still sees each frame number once, without a gap.
Remus: the world gets a frame only after the checkpoint covering it is sent.

failover: nondeterminism on (0.3%), the primary's host (lockstep, its QEMU,
its sim daemon) killed at a seeded point between checkpoints: the world sees
every frame number once and without a gap across the failover (the
primary's released ones, then the secondary's), so none it got is one the
secondary's guest did not send itself.

faults: a failure injected at each of the proxy's steps (spawn, QMP,
handshake, attach, world, listen, connect, COLO_CHECKPOINT) ends the
primary or secondary with an error naming that step, the primary's guest
running, and no QEMU or socket left behind. The proxy failing while the
primary's suspend is in flight (first checkpoint, a later COLO one, a
Remus one) is the role's PROXY_FAILED: the suspend is awaited, the guest
resumed, and the primary ends failed or unprotected naming the failure.
colo-compare's QEMU killed between checkpoints: the pump fails, PROXY_FAILED,
the primary's guest runs on unprotected.
"""
import json
import os
import random
import socket
import struct
import sys
import threading
import time

from migtest import BIN, Failed, Host, Proc, Results, alive, wait_gone, workdir

SEED = int(os.environ.get("NET_TEST_SEED", "16"))
M = (1 << 64) - 1
TRACES = []


def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def parse(frame):
    """(seq, writes, word, nondet) of a sim frame, or None."""
    if len(frame) != 82 or frame[12:14] != b"\x08\x00" or frame[23] != 17 or \
            frame[42:46] != b"LSNT":
        return None
    flags, seq, writes, word = struct.unpack(">IQQQ", frame[46:74])
    return seq, writes, word, flags == 1


def deterministic_word(seed, writes):
    """The word write number writes-1 of a guest of this workload seed stores."""
    k = writes - 1
    h = mix64(seed ^ mix64(k))
    return mix64((h + k) & M)


class World:
    """The outside world: every frame any connection sends, with its connection."""

    def __init__(self, path):
        self.path = path
        self.frames = []          # (connection number, bytes)
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(path)
        self.sock.listen(8)
        self.conns = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._read, args=(c, self.conns), daemon=True).start()

    def _read(self, c, n):
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                with self.lock:
                    self.frames.append((n, d))

    def parsed(self):
        with self.lock:
            return [(n, parse(f)) for n, f in self.frames]

    def close(self):
        self.closed = True
        self.sock.close()


def traced(host):
    return dict(host.env, LOCKSTEP_TRACE="1")


def events(proc):
    out = []
    for line in proc.out:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def end_of(proc):
    ends = [e for e in events(proc) if e.get("event") == "outcome"]
    return ends[-1] if ends else {}


def seq_problems(frames, first_seq=None):
    """Why the world's frame numbers are not each there once, without a gap."""
    seqs = sorted(f[0] for _, f in frames)
    if any(f is None for _, f in frames):
        return "a frame that is not a sim frame"
    if not seqs:
        return "no frames"
    dups = sorted({s for i, s in enumerate(seqs) if i and seqs[i - 1] == s})
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b > a + 1]
    if dups or gaps:
        return f"{len(seqs)} frames {seqs[0]}..{seqs[-1]}: twice {dups[:8]}, gaps {gaps[:8]}"
    return ""


def qemu_children(pid):
    """colo-compare's QEMU among pid's children."""
    kids = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def processes_mentioning(text):
    """Pids whose command line mentions text (a QEMU started in a test's directory)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        pids.append(int(d))
            except OSError:
                pass
    return pids


class Pair:
    """A primary and a secondary host, their world, and the two lockstep processes."""

    def __init__(self, work, n, mode="colo", nondet=0, rate=4000, every=20, interval=400,
                 count=0, timeout=10, fence=None, extra_env=None):
        self.s = self.p = None
        self.work = work
        self.prim, self.sec = Host(work, f"p{n}"), Host(work, f"s{n}")
        self.world = World(os.path.join(work, f"world{n}.sock"))
        self.seed = SEED + n
        self.mode = mode
        listen = os.path.join(work, f"colo{n}.sock")
        self.netlisten = f"unix:{os.path.join(work, f'net{n}.sock')}"
        guest = ["--net-every", str(every), "--net-nondet", str(nondet)]
        sec_extra = ["--mode", mode, "--timeout", str(timeout), "--seed", str(self.seed),
                     "--net-world", self.world.path, *guest]
        if mode == "colo":
            sec_extra += ["--dirty-rate", str(rate), "--net-peer", self.netlisten]
        if fence:
            sec_extra += ["--fence", fence]
        self.tmp = os.path.join(work, f"tmp{n}")     # colo-compare's directory goes here
        os.makedirs(self.tmp)
        env_s = dict(traced(self.sec), TMPDIR=self.tmp, **(extra_env or {}).get("secondary", {}))
        self.s = Proc(["colo-secondary", "--listen", f"unix:{listen}", "--json", *sec_extra],
                      env_s, name="secondary")
        if not self.s.wait_line(r"^listening on (\S+)", 20):
            raise Failed(f"the secondary did not listen: {self.s.text()}")
        self.dom = int(self.prim.sim("create", "--type", "pv", "--memory", "4M", "--seed",
                                     str(self.seed), "--dirty-rate", str(rate), *guest))
        prim_args = ["colo-primary", "--domid", str(self.dom), "--to", f"unix:{listen}",
                     "--mode", mode, "--interval", str(interval), "--timeout", str(timeout),
                     "--json", "--net-world", self.world.path]
        if mode == "colo":
            prim_args += ["--net-listen", self.netlisten]
        if count:
            prim_args += ["--checkpoints", str(count)]
        env_p = dict(traced(self.prim), TMPDIR=self.tmp, **(extra_env or {}).get("primary", {}))
        self.p = Proc(prim_args, env_p, name="primary")

    def checkpoints(self, proc):
        return [e for e in events(proc) if e.get("event") == "checkpoint"]

    def finish(self, p_secs=120, s_secs=30):
        prc, src = self.p.wait(p_secs), self.s.wait(s_secs)
        TRACES.extend(l for p in (self.p, self.s) for l in p.err if l.startswith("fsm "))
        return prc, src

    def close(self):
        for proc in (self.p, self.s):
            if proc and proc.p.poll() is None:
                proc.kill()
                proc.wait(5)
        self.world.close()
        self.prim.stop()
        self.sec.stop()


def check_words(res, what, frames, seed):
    """Deterministic frames carry the word their write left in memory."""
    bad = [f for _, f in frames if f and not f[3] and f[2] != deterministic_word(seed, f[1])]
    res.check(f"{what}: every deterministic frame carries the word its write left in memory",
              not bad, f"{len(bad)} differ, e.g. {bad[:2]}")


def run_outputs(res, work, n, nondet, count):
    what = f"COLO, {nondet} nondeterministic per million"
    pr = Pair(work, n, nondet=nondet, count=count, interval=300)
    try:
        prc, src = pr.finish()
        pe, se = end_of(pr.p), end_of(pr.s)
        res.check(f"{what}: both end stopped in order (rc {prc}/{src})",
                  prc == 0 and src == 0 and pe.get("role") == "stopped",
                  pr.p.text()[-1500:] + pr.s.text()[-800:])
        time.sleep(0.2)
        frames = pr.world.parsed()
        div = pe.get("checkpoints_divergence", -1)
        if nondet == 0:
            res.check(f"{what}: no checkpoint was caused by divergence", div == 0,
                      f"{div} by divergence, {pe.get('divergences')} DO_CHECKPOINTs; {pe}")
            res.check(f"{what}: every frame the primary compared was released",
                      pe.get("packets_released") == pe.get("packets_compared")
                      and pe.get("packets_compared", 0) > 50
                      and len(frames) == pe.get("packets_released"),
                      f"{pe.get('packets_compared')} compared, {pe.get('packets_released')} "
                      f"released, {len(frames)} in the world")
            res.check(f"{what}: the world got them in order",
                      [f[0] for _, f in frames] == sorted(f[0] for _, f in frames),
                      str([f[0] for _, f in frames][:20]))
            res.check(f"{what}: the secondary's frames were compared too",
                      pe.get("packets_secondary", 0) > 0, str(pe))
        else:
            res.check(f"{what}: divergences caused checkpoints", div > 0 and
                      pe.get("divergences", 0) > 0, str(pe))
            res.check(f"{what}: some released frames were nondeterministic (released at a "
                      f"checkpoint)", any(f and f[3] for _, f in frames), "")
        problem = seq_problems(frames)
        res.check(f"{what}: the world has each frame number once, without a gap", not problem,
                  problem)
        check_words(res, what, frames, pr.seed)
    finally:
        pr.close()


def run_remus(res, work, n):
    what = "Remus"
    pr = Pair(work, n, mode="remus", count=15, interval=200)
    try:
        # While it runs: every frame in the world was sent before the last checkpoint
        # the primary reported (its write count below the guest's at that suspend).
        time.sleep(1.5)
        early = pr.world.parsed()
        cps = pr.checkpoints(pr.p)
        prc, src = pr.finish()
        pe = end_of(pr.p)
        res.check(f"{what}: both end stopped in order (rc {prc}/{src})",
                  prc == 0 and src == 0 and pe.get("role") == "stopped",
                  pr.p.text()[-1500:] + pr.s.text()[-800:])
        res.check(f"{what}: frames reached the world while replicating, after checkpoints",
                  len(early) > 0 and len(cps) > 0, f"{len(early)} frames, {len(cps)} checkpoints")
        frames = pr.world.parsed()
        problem = seq_problems(frames)
        res.check(f"{what}: the world has each frame number once, without a gap", not problem,
                  problem)
        res.check(f"{what}: nothing held at the end, all released", pe.get("packets_held") == 0
                  and pe.get("packets_released") == len(frames), str(pe))
    finally:
        pr.close()


def fence_cmd(prim, work, n):
    return f"touch {work}/fenced{n}"


def inside_checkpoint(pr):
    """Whether the kill landed inside a checkpoint: the secondary marked one (its
    postsuspend) that the primary never reported complete."""
    marks = sum(1 for l in pr.s.err if "S_EPOCHING" in l and "MARKED" in l)
    return marks > max(0, len(pr.checkpoints(pr.p)) - 1)


def run_failover(res, work, n, rng, tries=4):
    """A kill between checkpoints; one that landed inside a checkpoint (the
    window README's "Network output" names: the frames the primary held die
    with it) is run again at the next seeded point, up to tries times."""
    for attempt in range(tries):
        if one_failover(res, work, n * 10 + attempt, rng, last=attempt == tries - 1):
            return
        print(f"note - failover {n}: the kill landed inside a checkpoint; run again", flush=True)


def one_failover(res, work, n, rng, last):
    what = f"failover {n}"
    pr = Pair(work, n, nondet=3000, interval=300, timeout=2,
              fence=fence_cmd(None, work, n))
    try:
        # A seeded moment, then the next checkpoint's end: the kill lands while
        # both guests run, not inside a checkpoint (from the secondary's mark to
        # the primary's COLO_CHECKPOINT the frames the primary holds die with
        # it, as in Xen's COLO: README, "Network output").
        wait = rng.uniform(1.0, 3.0)
        time.sleep(wait)
        seen = len(pr.checkpoints(pr.p))
        end = time.time() + 5
        while len(pr.checkpoints(pr.p)) == seen and time.time() < end:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.005, 0.03))
        kids = qemu_children(pr.p.pid)
        pr.p.kill()
        for k in kids:
            try:
                os.kill(k, 9)
            except ProcessLookupError:
                pass
        # The primary's host goes, guest and all: only the secondary's copy runs on.
        pr.prim.kill_daemon()
        m = pr.s.wait_line(r'"role": ?"active"', 20)
        res.check(f"{what}: the secondary took over after {wait:.2f} s", m is not None,
                  pr.s.text()[-1500:])
        prc, src = pr.finish(5, 20)
        if inside_checkpoint(pr) and not last:
            return False
        res.check(f"{what}: the secondary's lockstep ends once its copy runs alone (rc {src})",
                  src == 0 and end_of(pr.s).get("role") == "active", pr.s.text()[-800:])
        frames = pr.world.parsed()
        conns = sorted({c for c, _ in frames})
        problem = seq_problems(frames)
        res.check(f"{what}: the world has each frame number once, without a gap, across the "
                  f"failover ({len(frames)} frames from connections {conns})",
                  not problem and len(conns) >= 2,
                  f"{problem}; the secondary's outcome: {end_of(pr.s)}; the primary's last "
                  f"events: {[e for e in events(pr.p)][-2:]}; the secondary's proxy: "
                  f"{[l for l in pr.s.err if 'colo_proxy' in l or not l.startswith('fsm')][-8:]}")
        check_words(res, what, frames, pr.seed)
        time.sleep(0.5)
        later = pr.world.parsed()
        direct = [f for c, f in later[len(frames):] if c == conns[-1]]
        res.check(f"{what}: with no lockstep left, the replica's own frames go on reaching the "
                  f"world, still without a gap", len(direct) > 0 and not seq_problems(later),
                  f"{len(later) - len(frames)} more, {seq_problems(later)}")
        return True
    finally:
        pr.close()


def check_left_clean(res, what, pr):
    """After a proxy's failure: the primary's guest runs on, nothing of the proxy is left."""
    doms = pr.prim.domains()
    res.check(f"{what}: the primary's guest runs on", doms == {pr.dom: "running"}, str(doms))
    left = processes_mentioning(pr.tmp)
    res.check(f"{what}: no QEMU, no socket or directory left",
              not left and not os.listdir(pr.tmp), f"{left} {os.listdir(pr.tmp)}")


FAULTS = [("spawn", "primary", "cannot start|injected"), ("qmp", "primary", "qom-list"),
          ("handshake", "primary", "handshake|COLO_USERSPACE_PROXY_INIT|injected"),
          ("attach", "primary", "network"), ("world", "primary", "world|injected"),
          ("listen", "primary", "injected"), ("notify", "primary", "injected"),
          ("connect", "secondary", "injected")]


def run_fault(res, work, n, step, side, words):
    """A failure at one step of a proxy: a clear error, a clean teardown."""
    what = f"fault at the {side}'s proxy step {step}"
    env = {side: {"LOCKSTEP_PROXY_FAULT": step}}
    pr = Pair(work, n, count=4, interval=200, timeout=3, extra_env=env)
    try:
        prc, src = pr.finish(60, 30)
        failed = pr.p if side == "primary" else pr.s
        end = end_of(failed)
        err = str(end.get("error") or "") + " " + failed.text()[-3000:]
        import re
        res.check(f"{what}: the {side} ends with an error naming the step (rc {prc}/{src})",
                  (prc if side == "primary" else src) not in (0, None)
                  and re.search(words, err) is not None and "proxy" in err,
                  err[-600:])
        check_left_clean(res, what, pr)
    finally:
        pr.close()


# The proxy failing while the primary's suspend is in flight (fault-hook
# builds: LOCKSTEP_PROXY_FAULT=suspend:N fails it as suspend N starts and
# holds that suspend until the role took the failure): the role's own
# event, PROXY_FAILED, whose row awaits the suspend; the guest is resumed.
SUSPEND_FAULTS = [
    ("colo", 1, "SUSPENDING_ALONE", "AWAIT_SUSPEND", "ended"),
    ("colo", 3, "SUSPENDING", "AWAIT_SUSPEND_UNPROTECTED", "unprotected"),
    ("remus", 3, "REMUS_SUSPENDING", "AWAIT_SUSPEND_UNPROTECTED", "unprotected"),
]


def run_suspend_fault(res, work, n, mode, at, state, then, role):
    what = f"{mode}: the proxy failed as the primary's suspend {at} started"
    env = {"primary": {"LOCKSTEP_PROXY_FAULT": f"suspend:{at}"}}
    pr = Pair(work, n, mode=mode, count=6, interval=200, timeout=3, fence="exit 1",
              extra_env=env)
    try:
        prc, src = pr.finish(60, 30)
        end = end_of(pr.p)
        rows = [l.split() for l in pr.p.err if l.startswith("fsm ")]
        taken = [f"{f[4]} {f[5]} -> {f[8]}" for f in rows
                 if len(f) > 8 and f[2] == "colo_primary"]
        path = [f"{state} PROXY_FAILED -> {then}",
                f"{then} GUEST_SUSPENDED -> "
                f"{'AWAIT_TASKS' if then == 'AWAIT_SUSPEND' else 'AWAIT_TASKS_UNPROTECTED'}"]
        res.check(f"{what}: the role took the proxy's failure as its own event, awaited the "
                  f"suspend in flight, then tore down", all(t in taken for t in path),
                  str([t for t in taken if "PROXY_FAILED" in t or "GUEST_SUSPENDED" in t]))
        res.check(f"{what}: the primary ends {role} naming the proxy's failure (rc {prc})",
                  end.get("role") == role and prc == (1 if role == "ended" else 3)
                  and "injected failure" in str(end.get("error")), str(end))
        sdoms = pr.sec.domains()
        res.check(f"{what}: no copy runs on the secondary (rc {src})",
                  "running" not in sdoms.values(), str(sdoms))
        check_left_clean(res, what, pr)
    finally:
        pr.close()


def run_comparator_killed(res, work, n):
    """colo-compare's QEMU killed while the guest runs protected: the proxy's pump
    fails, the role's PROXY_FAILED (mostly in WAITING, the interval) ends replication,
    the primary's guest runs on unprotected."""
    what = "colo-compare's QEMU killed between checkpoints"
    pr = Pair(work, n, interval=400, timeout=3, fence="exit 1")
    try:
        end = time.time() + 30
        while len(pr.checkpoints(pr.p)) < 3 and time.time() < end:
            time.sleep(0.01)
        kids = qemu_children(pr.p.pid)
        if len(pr.checkpoints(pr.p)) < 3 or not kids:
            raise Failed(f"{what}: no checkpoint 3 or no comparator: {pr.p.text()[-600:]}")
        for k in kids:
            os.kill(k, 9)
        prc, src = pr.finish(60, 30)
        end = end_of(pr.p)
        failed = [l.split()[4] for l in pr.p.err if l.startswith("fsm ") and len(l.split()) > 5
                  and l.split()[2] == "colo_primary" and l.split()[5] == "PROXY_FAILED"]
        res.check(f"{what}: the role took it as PROXY_FAILED (in {failed}) and ends unprotected "
                  f"naming the proxy (rc {prc})", failed and prc == 3
                  and end.get("role") == "unprotected" and "proxy" in str(end.get("error")),
                  str(end))
        check_left_clean(res, what, pr)
    finally:
        pr.close()


def main():
    part = sys.argv[1]
    res = Results()
    work = workdir()
    try:
        if part == "outputs":
            run_outputs(res, work, 1, 0, 12)
            run_outputs(res, work, 2, 20000, 12)
            run_remus(res, work, 3)
        elif part == "failover":
            rng = random.Random(SEED)
            for n in range(4, 7):
                run_failover(res, work, n, rng)
        elif part == "faults":
            for i, (step, side, words) in enumerate(FAULTS):
                run_fault(res, work, 10 + i, step, side, words)
            for i, f in enumerate(SUSPEND_FAULTS):
                run_suspend_fault(res, work, 30 + i, *f)
            run_comparator_killed(res, work, 40)
        if os.environ.get("LOCKSTEP_BUILD_DIR"):
            rows_dir = os.path.join(os.environ["LOCKSTEP_BUILD_DIR"], "rows")
            os.makedirs(rows_dir, exist_ok=True)
            with open(os.path.join(rows_dir, f"colo_net_{part}.trace"), "w") as f:
                f.writelines(TRACES)
    except Failed as e:
        res.check("setup", False, str(e))
    res.finish()


if __name__ == "__main__":
    main()
