#!/usr/bin/env python3
"""test/soak/soak.py - long runs that must stay flat (`make soak`, not `make test`).

SOAK_SAVES (10000) save/restore cycles and SOAK_MIGRATIONS (1000) live
migrations of a small PV guest against one private lockstep-simd, printing
every SOAK_EVERY iterations the daemon's RSS and open fds and the peak RSS of
the lockstep processes of that window. Fails when, between the first window
(after warm-up) and the last, the daemon's RSS grew by more than
SOAK_RSS_TOLERANCE_KIB (8192), its fds (the fewest of three windows, since a
client's connection may still be closing) by more than SOAK_FD_TOLERANCE (0), or
lockstep's peak RSS by more than the same RSS tolerance. Then SOAK_CHECKPOINTS
(100000) COLO checkpoints of one primary/secondary pair, the same figures for
both long-lived lockstep processes (soak_colo_checkpoints).
"""
import json
import os
import shutil
import re
import subprocess
import sys
import tempfile
import time

L = os.environ["LOCKSTEP_BIN"]
SAVES = int(os.environ.get("SOAK_SAVES", "10000"))
MIGRATIONS = int(os.environ.get("SOAK_MIGRATIONS", "1000"))
CHECKPOINTS = int(os.environ.get("SOAK_CHECKPOINTS", "100000"))
EVERY = int(os.environ.get("SOAK_EVERY", "0")) or None
RSS_TOL = int(os.environ.get("SOAK_RSS_TOLERANCE_KIB", "8192"))
FD_TOL = int(os.environ.get("SOAK_FD_TOLERANCE", "0"))
work = tempfile.mkdtemp(prefix="lockstep-soak.")
env = dict(os.environ, LOCKSTEP_RUNDIR=os.path.join(work, "run"), LOCKSTEP_SIMD_IDLE_EXIT="0")
failed = []


def run(args, stdin=None, stdout=subprocess.PIPE):
    """Runs lockstep; returns (rc, stdout, stderr, peak RSS in KiB). Each
    command is a process of its own, so the peak is RUSAGE_CHILDREN's (the
    largest any lockstep reached so far): growth inside one process is the
    valgrind pass's to find."""
    import resource
    p = subprocess.run([L] + args, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return p.returncode, p.stdout or b"", p.stderr, peak


def daemon():
    pid = int(open(os.path.join(work, "run", "simd.pid")).read())
    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
    return pid, rss, len(os.listdir(f"/proc/{pid}/fd"))


def sim(*args):
    rc, out, err, _ = run(["sim", *args])
    if rc:
        raise SystemExit(f"sim {' '.join(args)}: {err.decode()}")
    return out.decode().strip()


def report(what, windows):
    """windows: [(i, daemon rss, daemon fds, lockstep peak)]; checks growth."""
    if len(windows) < 3:
        print(f"{what}: too few windows to judge ({len(windows)})")
        return
    first, last = windows[1], windows[-1]      # window 0 is warm-up
    grew = last[1] - first[1]
    # A client's connection may still be closing when a window is sampled:
    # the fewest fds of the first and last three windows are compared.
    fds = min(w[2] for w in windows[-3:]) - min(w[2] for w in windows[1:4])
    peak = last[3] - first[3]
    verdict = grew <= RSS_TOL and fds <= FD_TOL and peak <= RSS_TOL
    print(f"{what}: daemon RSS {first[1]} -> {last[1]} KiB ({grew:+d}), fds {first[2]} -> "
          f"{last[2]} ({fds:+d}), lockstep peak RSS {first[3]} -> {last[3]} KiB ({peak:+d}); "
          f"tolerance {RSS_TOL} KiB, {FD_TOL} fds: {'flat' if verdict else 'GREW'}", flush=True)
    if not verdict:
        failed.append(what)


def soak_save_restore():
    dom = sim("create", "--type", "pv", "--memory", "16M", "--seed", "3")
    path = os.path.join(work, "g.xl")
    every = EVERY or max(SAVES // 20, 1)
    windows, peak = [], 0
    for i in range(1, SAVES + 1):
        rc, _, err, p1 = run(["save", "--domid", dom, "--keep", "-o", path])
        rc2, out, err2, p2 = run(["restore", "-i", path, "--destroy"]) if rc == 0 else (1, b"", b"", 0)
        if rc or rc2:
            raise SystemExit(f"cycle {i}: {err.decode()}{err2.decode()}")
        peak = max(peak, p1, p2)
        if i % every == 0:
            pid, rss, fds = daemon()
            windows.append((i, rss, fds, peak))
            print(f"save/restore {i}: daemon RSS {rss} KiB fds {fds}; lockstep peak RSS {peak} KiB",
                  flush=True)
    sim("destroy", dom)
    report("save/restore", windows)


def soak_migrations():
    dom = sim("create", "--type", "pv", "--memory", "16M", "--seed", "4", "--dirty-rate", "2000")
    sock = os.path.join(work, "mig.sock")
    every = EVERY or max(MIGRATIONS // 20, 1)
    windows, peak = [], 0
    for i in range(1, MIGRATIONS + 1):
        r = subprocess.Popen([L, "migrate-receive", "--listen", f"unix:{sock}"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(400):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        rc, out, err, p1 = run(["migrate", "--domid", dom, "--to", f"unix:{sock}"])
        rout, rerr = r.communicate()
        m = re.search(rb"^domid (\d+)", rout, re.M)
        if rc or r.returncode or not m:
            raise SystemExit(f"migration {i}: {err.decode()}{rerr.decode()}")
        dom = m.group(1).decode()
        peak = max(peak, p1)
        if i % every == 0:
            pid, rss, fds = daemon()
            windows.append((i, rss, fds, peak))
            print(f"migration {i}: daemon RSS {rss} KiB fds {fds}; lockstep peak RSS {peak} KiB",
                  flush=True)
    sim("destroy", dom)
    report("migrations", windows)


def proc_mem(pid):
    """(RSS in KiB, open fds) of a live process."""
    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def soak_colo_checkpoints():
    """SOAK_CHECKPOINTS (100,000) COLO checkpoints of a small PV guest that
    dirties memory, one long colo-primary and colo-secondary pair: unlike the
    cycles above, growth here is inside two processes that live through all
    of it, so each window samples both lockstep processes' RSS and fds (and
    the daemon's) every SOAK_EVERY checkpoints, read off the primary's --json
    lines as they come."""
    n_want = CHECKPOINTS
    every = EVERY or max(n_want // 20, 1)
    sock = os.path.join(work, "colo.sock")
    sec = subprocess.Popen([L, "colo-secondary", "--listen", f"unix:{sock}", "--json"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(400):
        if os.path.exists(sock):
            break
        time.sleep(0.01)
    pri = subprocess.Popen([L, "colo-primary", "--sim", "pv", "--memory", "16M", "--seed", "5",
                            "--dirty-rate", "2000", "--interval", "1", "--checkpoints", str(n_want),
                            "--json", "--to", f"unix:{sock}"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    windows, outcome, t0 = [], None, time.time()
    for line in pri.stdout:
        ev = json.loads(line)
        if ev.get("event") == "outcome":
            outcome = ev
        if ev.get("event") != "checkpoint" or ev["n"] % every:
            continue
        try:
            p_rss, p_fds = proc_mem(pri.pid)
            s_rss, s_fds = proc_mem(sec.pid)
        except (FileNotFoundError, ProcessLookupError):
            break                      # one ended: the outcome says why
        _, d_rss, d_fds = daemon()
        windows.append((ev["n"], d_rss, d_fds, p_rss, p_fds, s_rss, s_fds))
        print(f"COLO checkpoint {ev['n']}: daemon RSS {d_rss} KiB fds {d_fds}; primary RSS "
              f"{p_rss} KiB fds {p_fds}; secondary RSS {s_rss} KiB fds {s_fds}; "
              f"{ev['n'] / (time.time() - t0):.0f}/s", flush=True)
    perr = pri.stderr.read()
    pri.wait()
    try:
        sec.wait(timeout=30)
    except subprocess.TimeoutExpired:
        sec.kill()
        sec.wait()
    serr = sec.stderr.read().decode()
    if pri.returncode or sec.returncode or not outcome or outcome.get("checkpoints") != n_want:
        print(f"COLO checkpoints: the pair did not run {n_want} checkpoints in order "
              f"(primary exit {pri.returncode}, secondary exit {sec.returncode}; outcome "
              f"{outcome}):\n{perr[-2000:]}\n{serr[-2000:]}", flush=True)
        failed.append("COLO checkpoints")
        return
    print(f"COLO: {n_want} checkpoints in {time.time() - t0:.0f} s, pause median "
          f"{outcome['pause_median_us'] / 1000:.2f} ms, p99 {outcome['pause_p99_us'] / 1000:.2f} ms",
          flush=True)
    if len(windows) < 4:
        print(f"COLO checkpoints: too few windows to judge ({len(windows)})")
        failed.append("COLO checkpoints")
        return
    first, last = windows[1], windows[-1]      # window 0 is warm-up
    verdicts = []
    for name, r, f in (("daemon", 1, 2), ("primary", 3, 4), ("secondary", 5, 6)):
        grew = last[r] - first[r]
        # as in report(): the fewest fds of the first and last three windows
        fds = min(w[f] for w in windows[-3:]) - min(w[f] for w in windows[1:4])
        verdicts.append(grew <= RSS_TOL and fds <= FD_TOL)
        print(f"COLO checkpoints: {name} RSS {first[r]} -> {last[r]} KiB ({grew:+d}), fds "
              f"{first[f]} -> {last[f]} ({fds:+d})", flush=True)
    flat = all(verdicts)
    print(f"COLO checkpoints: tolerance {RSS_TOL} KiB, {FD_TOL} fds: {'flat' if flat else 'GREW'}",
          flush=True)
    if not flat:
        failed.append("COLO checkpoints")


def main():
    t0 = time.time()
    sim("list")   # starts the daemon
    soak_save_restore()
    soak_migrations()
    soak_colo_checkpoints()
    pid, _, _ = daemon()
    os.kill(pid, 15)
    print(f"soak: {SAVES} save/restore cycles, {MIGRATIONS} migrations, {CHECKPOINTS} COLO "
          f"checkpoints in {time.time() - t0:.0f} s; "
          f"{'FAILED: ' + ', '.join(failed) if failed else 'flat'}")
    if failed:
        print(f"soak: its files are kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
