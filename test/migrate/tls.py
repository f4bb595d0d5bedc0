#!/usr/bin/env python3
"""test/migrate/tls.py - live migration over TLS 1.3, and the peers it refuses.

A test PKI is made with certtool at test time (test/tls/mkcerts.sh: a good
CA, another CA, an expired certificate, a name not allowed). Between two
simulated hosts and real `lockstep migrate` / `migrate-receive` processes:
  - a good pair migrates a PV and an HVM guest (its real QEMU's state in the
    stream) over tls:, digests checked as transports.py does; plain TCP still
    works beside it;
  - each bad peer is refused with the right reason on both sides, in the
    handshake step: the sender's trace never reaches the guard or the save,
    the receiver's never reaches the banner or the restore, the receiving
    host has no domain (its daemon's `sim list`) and the source guest runs on
    with the state it had;
  - a client with no certificate (gnutls-cli) is refused by the receiver;
    TLS against a plain peer fails on both sides; SIGINT in the handshake;
    unusable credentials are refused at start, naming the file.
"""
import os
import socket
import subprocess
import threading
import time

import migtest as mt

res = mt.Results()
work = mt.workdir()
src, dst = mt.Host(work, "src"), mt.Host(work, "dst")
# Every migration process is traced, and the rows its dispatches took go to
# the suite's row coverage (rows/migrate_tls.trace).
for h in (src, dst):
    h.env["LOCKSTEP_TRACE"] = "1"
procs = []
_proc_init = mt.Proc.__init__


def _register(self, *a, **k):
    _proc_init(self, *a, **k)
    procs.append(self)


mt.Proc.__init__ = _register
PKI = os.path.join(work, "pki")
TIMEOUT = ["--timeout", "15"]


def creds(name):
    return ["--tls-creds", os.path.join(PKI, name)]


def traced(host):
    return dict(host.env, LOCKSTEP_TRACE="1")


def migrate_ok(what, type_, sender_creds="good", receiver_creds="good", s_extra=(), r_extra=(),
               listen="tls:127.0.0.1:0", rate=5000):
    sdom = src.create(type_, "16M", 11, rate=rate, pattern="hotset:10")
    time.sleep(0.05)
    r, addr = mt.start_receiver(dst, [*TIMEOUT, *creds(receiver_creds), *r_extra] if
                                listen.startswith("tls:") else TIMEOUT, listen)
    s = mt.Proc(["migrate", "--domid", str(sdom), "--to", addr, *TIMEOUT,
                 *(creds(sender_creds) if addr.startswith("tls:") else ()), *s_extra],
                src.env, name="sender")
    srx, rrx = s.wait(120), r.wait(120)
    if not res.check(f"{what}: both sides succeed", srx == 0 and rrx == 0,
                     f"sender rc {srx}, receiver rc {rrx}\n{s.text()}\n{r.text()}"):
        return
    sd, rd = s.field("digest"), r.field("digest")
    res.check(f"{what}: destination digest == source digest at suspend", sd and sd == rd,
              f"{sd} vs {rd}")
    ddom = int(r.field("domid"))
    res.check(f"{what}: source copy gone, destination copy runs with that state",
              sdom not in src.domains() and dst.domains().get(ddom) == "running"
              and dst.digest(ddom) == sd, f"src {src.domains()} dst {dst.domains()}")
    dst.sim("destroy", str(ddom))


def refused(what, sender_creds, receiver_creds, s_says, r_says, s_extra=(), r_extra=(),
            to_host="127.0.0.1"):
    """A migration one side refuses: both name the reason, nothing moved."""
    sdom = src.create("pv", "16M", 12)       # no vCPU writes: its state must stay as it is
    before = src.digest(sdom)
    r, addr = mt.start_receiver(dst, [*TIMEOUT, *creds(receiver_creds), *r_extra],
                                "tls:127.0.0.1:0", env=traced(dst))
    addr = addr.replace("127.0.0.1", to_host)
    s = mt.Proc(["migrate", "--domid", str(sdom), "--to", addr, *TIMEOUT,
                 *creds(sender_creds), *s_extra], traced(src), name="sender")
    srx, rrx = s.wait(60), r.wait(60)
    serr = "".join(l for l in s.err if not l.startswith(("[", "precopy")))
    rerr = "".join(l for l in r.err if not l.startswith("["))
    detail = f"\nsender rc {srx}: {serr}\nreceiver rc {rrx}: {rerr}"
    res.check(f"{what}: both sides fail (sender 1, source-runs; receiver 1, not-received)",
              srx == 1 and s.outcome() == "source-runs" and rrx == 1
              and r.outcome() == "not-received", detail)
    res.check(f"{what}: the sender says why", s_says in serr, f"wanted '{s_says}'{detail}")
    res.check(f"{what}: the receiver says why", r_says in rerr, f"wanted '{r_says}'{detail}")
    strace, rtrace = "".join(s.err), "".join(r.err)
    res.check(f"{what}: refused in the handshake step, before the guard, the banner, the save "
              "or the restore",
              "HANDSHAKE_FAILED" in strace + rtrace and "mig_arm_guard" not in strace
              and "rcv_write_banner" not in rtrace and "rcv_start_restore" not in rtrace
              and "save[" not in strace, detail)
    res.check(f"{what}: no domain on the receiving host", not dst.domains(), str(dst.domains()))
    state, after = src.domains().get(sdom), src.digest(sdom)
    res.check(f"{what}: the source guest runs on, its state untouched",
              state == "running" and after == before,
              f"state {state}; digest before {before}, after {after}")
    src.sim("destroy", str(sdom))


def no_client_certificate():
    r, addr = mt.start_receiver(dst, [*TIMEOUT, *creds("good")], "tls:127.0.0.1:0")
    port = addr.rsplit(":", 1)[1]
    c = subprocess.run(["gnutls-cli", "--x509cafile", os.path.join(PKI, "good", "ca-cert.pem"),
                        "--port", port, "127.0.0.1"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    rrx = r.wait(30)
    res.check("a client without a certificate (gnutls-cli): the receiver refuses it and says so",
              rrx == 1 and "presented no certificate" in r.text() and not dst.domains(),
              f"rc {rrx}: {r.text()}\ngnutls-cli: {c.stdout[-300:]}{c.stderr[-300:]}")
    res.check("a client without a certificate: its TLS session never came up",
              c.returncode != 0, c.stdout[-300:] + c.stderr[-300:])


def tls_against_plain():
    sdom = src.create("pv", "16M", 13)
    r, addr = mt.start_receiver(dst, ["--timeout", "3"])           # plain
    s = mt.Proc(["migrate", "--domid", str(sdom), "--to", addr.replace("tcp:", "tls:"),
                 "--timeout", "3", *creds("good")], src.env, name="sender")
    srx, rrx = s.wait(60), r.wait(60)
    res.check("TLS sender, plain receiver: both fail, the guest runs at the source, no copy; "
              "the receiver recognises a TLS handshake",
              srx == 1 and rrx == 1 and src.domains().get(sdom) == "running"
              and not dst.domains() and "start of a TLS handshake" in r.text(),
              f"{s.text()}\n{r.text()}")
    r, addr = mt.start_receiver(dst, ["--timeout", "3", *creds("good")], "tls:127.0.0.1:0")
    s = mt.Proc(["migrate", "--domid", str(sdom), "--to", addr.replace("tls:", "tcp:"),
                 "--timeout", "3"], src.env, name="sender")
    srx, rrx = s.wait(60), r.wait(60)
    res.check("plain sender, TLS receiver: both fail, the guest runs at the source, no copy",
              srx == 1 and rrx == 1 and src.domains().get(sdom) == "running"
              and not dst.domains() and "TLS handshake" in r.text(), f"{s.text()}\n{r.text()}")
    src.sim("destroy", str(sdom))


def sigint_in_handshake():
    # The receiver waits for a ClientHello that never comes.
    r, addr = mt.start_receiver(dst, [*TIMEOUT, *creds("good")], "tls:127.0.0.1:0",
                                env=traced(dst))
    host, port = addr[4:].rsplit(":", 1)
    c = socket.create_connection((host, int(port)))
    r.wait_line(r"HANDSHAKING", 10)
    r.kill(2)
    rrx = r.wait(30)
    c.close()
    res.check("SIGINT while the receiver awaits the TLS handshake: exit 1, not-received, no domain",
              rrx == 1 and r.outcome() == "not-received" and "HANDSHAKING" in r.text()
              and not dst.domains(), r.text()[-2000:])
    # The sender's server answers nothing.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    sdom = src.create("pv", "16M", 14)
    s = mt.Proc(["migrate", "--domid", str(sdom), "--to", f"tls:127.0.0.1:{ls.getsockname()[1]}",
                 *TIMEOUT, *creds("good")], traced(src), name="sender")
    conn, _ = ls.accept()
    s.wait_line(r"HANDSHAKING", 10)
    s.kill(2)
    srx = s.wait(30)
    conn.close()
    ls.close()
    res.check("SIGINT while the sender is in the TLS handshake: exit 1, the guest runs here",
              srx == 1 and s.outcome() == "source-runs" and src.domains().get(sdom) == "running"
              and "mig_arm_guard" not in s.text(), s.text()[-2000:])
    src.sim("destroy", str(sdom))


def faults_around_handshake():
    """An injected failure at each of the first two dispatches of either side
    (the step that starts the handshake, the one that follows its success):
    both sides fail, the guest runs at the source, no copy at the destination."""
    for side in ("sender", "receiver"):
        for seq in (1, 2):
            what = f"FSM_FAULT={seq}:EIO in the {side}"
            sdom = src.create("pv", "16M", 16)
            fault = {"FSM_FAULT": f"{seq}:5", "LOCKSTEP_TRACE": "1"}
            r, addr = mt.start_receiver(dst, [*TIMEOUT, *creds("good")], "tls:127.0.0.1:0",
                                        env=dict(dst.env, **fault) if side == "receiver" else None)
            s = mt.Proc(["migrate", "--domid", str(sdom), "--to", addr, *TIMEOUT,
                         *creds("good")], dict(src.env, **fault) if side == "sender" else src.env,
                        name="sender")
            srx, rrx = s.wait(60), r.wait(60)
            hit = (s if side == "sender" else r).text()
            state = "IDLE" if seq == 1 else "HANDSHAKING"
            res.check(f"{what}: injected in {state}; both fail, the guest runs at the source, no "
                      "copy at the destination",
                      f"injected fault at dispatch {seq} (" in hit and f" in {state})" in hit
                      and srx == 1 and rrx == 1 and src.domains().get(sdom) == "running"
                      and not dst.domains(), f"{s.text()[-1500:]}\n{r.text()[-1500:]}")
            src.sim("destroy", str(sdom))


def bad_credentials():
    empty = os.path.join(work, "empty-creds")
    os.makedirs(empty, exist_ok=True)
    sdom = src.create("pv", "16M", 15)
    s = src.lockstep("migrate", "--domid", str(sdom), "--to", "tls:127.0.0.1:9", "--tls-creds",
                     empty, check=False)
    res.check("sender: credentials without ca-cert.pem: refused before connecting, the file named",
              s.returncode == 1 and f"{empty}/ca-cert.pem: No such file" in s.stderr
              and "connect" not in s.stderr and src.domains().get(sdom) == "running", s.stderr)
    p = dst.lockstep("migrate-receive", "--listen", "tls:127.0.0.1:0", "--tls-creds",
                     os.path.join(PKI, "good", "client-cert.pem"), check=False)
    res.check("receiver: credentials that are not a directory: refused before listening",
              p.returncode == 1 and "listening" not in p.stderr and "ca-cert.pem" in p.stderr,
              p.stderr)
    s = src.lockstep("migrate", "--domid", str(sdom), "--to", "tls:127.0.0.1:9", check=False)
    res.check("tls: without --tls-creds: a usage error", s.returncode == 2
              and "--tls-creds DIR is required" in s.stderr, s.stderr)
    s = src.lockstep("migrate", "--domid", str(sdom), "--to", "tcp:127.0.0.1:9",
                     *creds("good"), check=False)
    res.check("--tls-creds with tcp:: a usage error", s.returncode == 2
              and "go with a tls:HOST:PORT address" in s.stderr, s.stderr)
    src.sim("destroy", str(sdom))


def main():
    t0 = time.time()
    mk = subprocess.run([os.path.join(mt.SRC, "test", "tls", "mkcerts.sh"), PKI],
                        capture_output=True, text=True, timeout=60)
    if not res.check(f"certtool made the test PKI ({time.time() - t0:.1f} s)", mk.returncode == 0,
                     mk.stderr):
        return
    # The sender checks the receiver's certificate against the address dialled
    # (its IP subjectAltName 127.0.0.1) unless --tls-allow names another.
    migrate_ok("hvm (its QEMU's state too) over tls", "hvm")
    migrate_ok("pv over tls, each end allowing the other's name", "pv",
               s_extra=("--tls-allow", "DST.lockstep.*"), r_extra=("--tls-allow", "src.*"))
    migrate_ok("pv over plain tcp, beside tls", "pv", listen="tcp:127.0.0.1:0")

    unknown = "The certificate issuer is unknown"
    refused("sender's certificate from another CA", "wrongca", "good",
            'its alert: "CA is unknown"', unknown)
    refused("sender's certificate expired", "expired", "good",
            'its alert: "Certificate is expired"', "uses expired certificate")
    refused("sender's name not allowed", "intruder", "good", 'its alert: "Access was denied"',
            "its name is not allowed (CN=intruder.lockstep.test", r_extra=("--tls-allow", "src.*"))
    refused("receiver's certificate from another CA", "good", "wrongca", unknown,
            'its alert: "CA is unknown"')
    refused("receiver's certificate expired", "good", "expired", "uses expired certificate",
            'its alert: "Certificate is expired"')
    refused("receiver's name not allowed", "good", "good", "its name is not allowed",
            'its alert: "Access was denied"', s_extra=("--tls-allow", "other-*"))
    refused("receiver's certificate does not name the host dialled", "good", "good",
            "checked against the name 'localhost'", "the sender refused this end's certificate",
            to_host="localhost")
    no_client_certificate()
    tls_against_plain()
    sigint_in_handshake()
    faults_around_handshake()
    bad_credentials()


if __name__ == "__main__":
    try:
        main()
    except mt.Failed as e:
        res.check("test harness", False, str(e))
    mt.write_trace_rows("migrate_tls", procs)
    src.stop()
    dst.stop()
    res.finish()
