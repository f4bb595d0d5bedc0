#!/usr/bin/env python3
"""simq.py - the sim daemon's questions for a shell test, one process for a whole run.

The fault sweeps ask the daemon about its domains several times per run
(create one, its state, destroy it, how many are left, how many fds the daemon
holds, the state of a domain's QEMU). A `lockstep sim ...` process per question
(a sanitizer build: start-up and a leak check each) cost more than the run under
test; this answers them over one connection to the daemon of $LOCKSTEP_RUNDIR
(backends/sim/proto.h), a line per question on stdin, a line per answer on stdout:

  create TYPE KIB SEED [qemu]  -> domid (HVM: the stand-in device model, or a QEMU)
  state DOMID                  -> running|paused|suspended|shutdown|dying, or "none"
  destroy DOMID                -> ok, or "error: ..."
  count                        -> how many domains there are
  ids                          -> their domids, space-separated
  fds                          -> how many fds the daemon holds
  dm DOMID                     -> its QEMU's state in the words of `lockstep sim dm`
                                  (running, killed by signal 9 (Killed), ...), or "none"
  dmpid DOMID                  -> its pid
  status DOMID                 -> the QEMU's query-status over QMP, or "dead"

It never sets a guard: a daemon treats it as an observer only.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys

MAGIC, VERSION = 0x4D49534C, 2
OP_CREATE, OP_LIST, OP_INFO, OP_DESTROY, OP_DM_INFO = 2, 3, 4, 9, 17
STATES = {0: "running", 1: "paused", 2: "suspended", 3: "shutdown", 4: "dying"}
TYPES = {"pv": 1, "hvm": 2, "pvh": 3}
RUNDIR = os.environ["LOCKSTEP_RUNDIR"]


class SimError(Exception):
    pass


class Daemon:
    def __init__(self):
        self.sock = None

    def connect(self):
        path = os.path.join(RUNDIR, "simd.sock")
        for attempt in (0, 1):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(60)
            try:
                s.connect(path)
                self.sock = s
                return
            except OSError:
                s.close()
                if attempt:
                    raise
                # Not started yet: lockstep starts it on demand, as for any command.
                subprocess.run([os.environ["LOCKSTEP_BIN"], "sim", "list"],
                               stdout=subprocess.DEVNULL, check=True,
                               env=dict(os.environ, LOCKSTEP_SIM_FAULT=""))

    def rpc(self, op, domid=0, payload=b""):
        if not self.sock:
            self.connect()
        self.sock.sendall(struct.pack("<IHHIHHIi", MAGIC, VERSION, op, domid, 0, 0,
                                      len(payload), 0) + payload)
        _, _, _, _, _, _, n, status = struct.unpack("<IHHIHHIi", self.recv(24))
        body = self.recv(n)
        if status:
            raise SimError(body.decode(errors="replace").rstrip("\0") or f"error {status}")
        return body

    def recv(self, n):
        b = b""
        while len(b) < n:
            d = self.sock.recv(n - len(b))
            if not d:
                raise SimError("the daemon closed the connection")
            b += d
        return b

    def domains(self):
        body = self.rpc(OP_LIST)
        return {struct.unpack_from("<III", body, i)[0]: STATES.get(
            struct.unpack_from("<III", body, i)[2], "unknown") for i in range(0, len(body), 96)}

    def dm_info(self, domid):
        body = self.rpc(OP_DM_INFO, domid)
        present, alive, pid, status = struct.unpack_from("<IIii", body)
        return present, alive, pid, status, body[24:24 + 112].split(b"\0")[0].decode()


def qmp_status(path):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        f = s.makefile("rw")

        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise OSError("closed")
                msg = json.loads(line)
                if "event" not in msg:
                    return msg
        reply()
        for cmd in ("qmp_capabilities", "query-status"):
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            msg = reply()
        s.close()
        return msg["return"]["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return "dead"


def answer(d, words):
    cmd, args = words[0], words[1:]
    if cmd == "create":
        type_, kib, seed = TYPES[args[0]], int(args[1]), int(args[2])
        dm = 0 if len(args) > 3 and args[3] == "qemu" else 1
        body = d.rpc(OP_CREATE, 0, struct.pack("<IIQQII64s256s", type_, 1, kib, seed, 1, dm,
                                               b"", b""))
        return str(struct.unpack_from("<I", body)[0])
    if cmd == "state":
        return d.domains().get(int(args[0]), "none")
    if cmd == "destroy":
        try:
            d.rpc(OP_DESTROY, int(args[0]))
            return "ok"
        except SimError as e:
            return f"error: {e}"
    if cmd == "count":
        return str(len(d.domains()))
    if cmd == "ids":
        return " ".join(str(x) for x in sorted(d.domains()))
    if cmd == "fds":
        with open(os.path.join(RUNDIR, "simd.pid")) as f:
            return str(len(os.listdir(f"/proc/{int(f.read())}/fd")))
    if cmd in ("dm", "dmpid", "status"):
        try:
            present, alive, pid, status, qmp = d.dm_info(int(args[0]))
        except SimError:
            return "none" if cmd != "status" else "dead"
        if cmd == "dmpid":
            return str(pid)
        if cmd == "status":
            return qmp_status(qmp) if present and alive else "dead"
        if not present:
            return "none"
        if alive:
            return "running"
        if os.WIFEXITED(status):
            return f"exited with status {os.WEXITSTATUS(status)}"
        if os.WIFSIGNALED(status):
            n = os.WTERMSIG(status)
            return f"killed by signal {n} ({signal.strsignal(n)})"
        return f"gone (wait status {status:#x})"
    raise SimError(f"unknown question {cmd}")


def main():
    d = Daemon()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            out = answer(d, words)
        except (SimError, OSError, ValueError, KeyError, IndexError) as e:
            out = f"error: {e}"
        sys.stdout.write(out + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
