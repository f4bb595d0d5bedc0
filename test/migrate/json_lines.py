#!/usr/bin/env python3
"""test/migrate/json_lines.py - `--json` on save, restore, migrate and migrate-receive.

Every line each command writes on its JSON stream is one JSON object with an
"event" and the command; the first is "start" (migrate-receive --listen: a
"listening" first; a failure before the operation starts: the outcome
alone), the last "outcome", progress never goes back, and the
outcome matches the exit status and what happened: the digests a save, a
restore and a live migration report agree; a migration's "round" events
count every pre-copy round once, from 0, ending with the final one; and
failures (a missing domain, an injected fault, a corrupt stream, nobody
listening, no sender) give ok false, the errno's name and the reason, with
the guest where it should be.
"""
import json
import os
import subprocess

import migtest as mt

res = mt.Results()
work = mt.workdir()
host = mt.Host(work, "host")
env = host.env


def events(text, what):
    """The JSON lines of text, checked for shape; [] if any line is not one."""
    evs = []
    for line in text.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            res.check(f"{what}: every line is a JSON object", False, repr(line))
            return []
        if not isinstance(ev, dict) or "event" not in ev or "command" not in ev:
            res.check(f"{what}: every object has event and command", False, line)
            return []
        evs.append(ev)
    kinds = [e["event"] for e in evs]
    # "start" comes once the operation has started: a failure before that
    # (nothing to connect to) is the outcome alone.
    first = {"listening", "start"} if kinds != ["outcome"] else {"outcome"}
    ok = res.check(f"{what}: {len(evs)} lines parse, {'/'.join(sorted(first))} first and "
                   f"outcome last", kinds[:1] and kinds[0] in first
                   and kinds[-1:] == ["outcome"] and kinds.count("outcome") == 1, kinds)
    done = [e["bytes"] for e in evs if e["event"] == "progress"]
    res.check(f"{what}: progress never goes back", done == sorted(done), done)
    return evs if ok else []


def run(*args, **kw):
    return subprocess.run([mt.BIN, *args], env=kw.pop("env", env), capture_output=True,
                          timeout=120, **kw)


def outcome_ok(what, evs, rc, ok, errno=None):
    o = evs[-1] if evs else {}
    good = o.get("ok") is ok and o.get("exit_status") == rc and \
        (o.get("rc") == 0) == ok and (ok or (o.get("error") and o.get("errno")))
    if errno:
        good = good and o.get("errno") == errno
    res.check(f"{what}: outcome ok={ok} errno={errno}, exit status {rc}", good, o)
    return o


# ---- save and restore ---------------------------------------------------------
dom = host.create("pv", "16M", seed=3)
f = os.path.join(work, "g.xl")
p = run("save", "--json", "--domid", str(dom), "-o", f, text=True)
evs = events(p.stdout, "save")
save = outcome_ok("save", evs, p.returncode, True)
res.check("save: the start names the domain, the outcome its digest and bytes",
          evs and evs[0].get("domid") == dom and len(save.get("digest") or "") == 64
          and save.get("bytes", 0) >= 16 << 20,
          save)

p = run("restore", "--json", "-i", f, "--destroy", text=True)
evs = events(p.stdout, "restore")
rest = outcome_ok("restore", evs, p.returncode, True)
res.check("restore: the restored digest is the saved one, the domain destroyed",
          rest.get("digest") == save.get("digest") and rest.get("destroyed") is True, rest)

# The stream on stdout: the JSON goes to stderr, and only JSON does.
dom = host.create("hvm", "16M", seed=4)
p = subprocess.run(f"'{mt.BIN}' save --json --domid {dom} -o - 2>'{work}/e' | "
                   f"'{mt.BIN}' restore --json -i - --destroy", shell=True, env=env,
                   capture_output=True, text=True, timeout=120)
evs_s = events(open(f"{work}/e").read(), "save -o - (JSON on stderr)")
evs_r = events(p.stdout, "restore -i - (JSON on stdout)")
res.check("save -o - | restore -i -: the digests agree",
          evs_s and evs_r and evs_s[-1].get("digest") == evs_r[-1].get("digest") is not None,
          (evs_s[-1:], evs_r[-1:]))

# Failures: no such domain; an injected fault in the save's first real action.
p = run("save", "--json", "--domid", "4242", "-o", f, text=True)
outcome_ok("save of a missing domain", events(p.stdout, "save of a missing domain"),
           p.returncode, False, "ESRCH")

dom = host.create("pv", "16M", seed=5)
trace = run("save", "--domid", str(dom), "-o", f, text=True,
            env=dict(env, LOCKSTEP_TRACE="1")).stderr
seq = next(l.split()[1] for l in trace.splitlines()
           if l.startswith("fsm ") and l.split()[1] != "0" and l.split()[2] == "save"
           and l.split()[6] not in ("fsm_nop", "-"))
dom = host.create("pv", "16M", seed=5)
p = run("save", "--json", "--domid", str(dom), "-o", f, text=True,
        env=dict(env, FSM_FAULT=f"{seq}:5"))
outcome_ok(f"save with dispatch {seq} failing (EIO)", events(p.stdout, "faulted save"),
           p.returncode, False, "EIO")
res.check("faulted save: the guest runs on, no file is left",
          host.domains().get(dom) == "running" and not os.path.exists(f), host.domains())
host.sim("destroy", str(dom))

# A failed save into a device leaves the device alone (it once unlinked
# -o /dev/null): a null device of the test's own, made with mknod as root.
if os.geteuid() == 0:
    null = os.path.join(work, "null")
    os.mknod(null, 0o666 | 0o020000, os.makedev(1, 3))
    p = run("save", "--domid", "4242", "-o", null, text=True)
    res.check("a failed save -o DEVICE leaves the device in place",
              p.returncode == 1 and os.path.exists(null) and
              (os.stat(null).st_mode & 0o170000) == 0o020000, p.stderr)

bad = os.path.join(work, "bad.xl")
with open(bad, "wb") as out:
    out.write(b"\0" * 4096)
p = run("restore", "--json", "-i", bad, text=True)
o = outcome_ok("restore of a corrupt stream", events(p.stdout, "corrupt restore"),
               p.returncode, False)
res.check("corrupt restore: the error names the offset, nothing was restored",
          "offset" in (o.get("error") or "") and o.get("restored") is False
          and not host.domains(), o)

# ---- live migration -------------------------------------------------------------
sock = os.path.join(work, "mig.sock")
recv = mt.Proc(["migrate-receive", "--json", "--listen", f"unix:{sock}", "--timeout", "20"],
               env)
recv.wait_line(r'"event": "listening"', 10)
send = mt.Proc(["migrate", "--json", "--sim", "pv", "--memory", "16M", "--dirty-rate", "20000",
                "--dirty-threshold", "1", "--max-rounds", "6", "--to", f"unix:{sock}",
                "--timeout", "20"], env)
src_rc, dst_rc = send.wait(120), recv.wait(120)
se = events("".join(send.out), "migrate")
re_ = events("".join(recv.out), "migrate-receive")
so = outcome_ok("migrate", se, src_rc, True)
ro = outcome_ok("migrate-receive", re_, dst_rc, True)
res.check("migration: both outcomes destination-runs, the digests agree",
          so.get("outcome") == ro.get("outcome") == "destination-runs"
          and so.get("digest") and so.get("digest") == ro.get("digest"), (so, ro))
rounds = [(e["round"], e["final_round"]) for e in se if e["event"] == "round"]
live = so.get("live_rounds", 0)
res.check(f"migration: a round event for each of the {live} live rounds, then the final one",
          live >= 2 and rounds == [(i, False) for i in range(live)] + [(live - 1, True)],
          rounds)
if ro.get("domid"):
    res.check("migration: the received guest runs", host.domains().get(ro["domid"]) == "running")
    host.sim("destroy", str(ro["domid"]))

p = run("migrate", "--json", "--sim", "pv", "--memory", "16M", "--to", f"unix:{sock}",
        text=True)
o = outcome_ok("migrate with nobody listening", events(p.stdout, "migrate, nobody listening"),
               p.returncode, False, "ENOENT")
res.check("migrate with nobody listening: outcome source-runs, the reason names the address",
          o.get("outcome") == "source-runs" and sock in (o.get("error") or ""), o)

p = run("migrate-receive", "--json", "--listen", f"unix:{sock}", "--timeout", "1", text=True)
o = outcome_ok("migrate-receive with no sender", events(p.stdout, "migrate-receive, no sender"),
               p.returncode, False, "ETIMEDOUT")
res.check("migrate-receive with no sender: outcome not-received",
          o.get("outcome") == "not-received" and not host.domains(), (o, host.domains()))

host.stop()
res.finish()
