"""test/migrate/migtest.py - two simulated hosts and a lockstep on each.

Each Host is a private lockstep-simd (its own LOCKSTEP_RUNDIR): killing that
daemon is the host dying. Senders and receivers are real `lockstep migrate` /
`lockstep migrate-receive` processes; every process a test starts is waited
for (or killed) by pid, and every wait is bounded.
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ["LOCKSTEP_BIN"]
SIMD = os.environ["LOCKSTEP_SIMD"]
SRC = os.environ.get("LOCKSTEP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))

BASE_ENV = dict(os.environ)
BASE_ENV.update({
    "LOCKSTEP_SIMD": SIMD,
    "LOCKSTEP_SIMD_IDLE_EXIT": "120",      # a safety net if the test itself is killed
    "ASAN_OPTIONS": "detect_leaks=1:exitcode=99",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=98",
    "LOCKSTEP_CHECK_FDS": "1",
})
for k in ("LOCKSTEP_TRACE", "FSM_FAULT", "FSM_STOP"):
    BASE_ENV.pop(k, None)


class Failed(Exception):
    pass


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   - {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL - {what}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        for d in _workdirs:
            if self.failed:
                print(f"# its files are kept in {d}", flush=True)
            else:
                shutil.rmtree(d, ignore_errors=True)
        sys.exit(1 if self.failed else 0)


class Host:
    """A simulated host: its own sim daemon in a private runtime directory."""

    def __init__(self, work, name):
        self.name = name
        self.rundir = os.path.join(work, name)
        os.makedirs(self.rundir, exist_ok=True)
        self.env = dict(BASE_ENV, LOCKSTEP_RUNDIR=self.rundir)

    def lockstep(self, *args, check=True, timeout=60, env=None):
        p = subprocess.run([BIN, *args], env=env or self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise Failed(f"{self.name}: lockstep {' '.join(args)}: rc {p.returncode}: "
                         f"{p.stderr.strip()}")
        return p

    def sim(self, *args, check=True):
        return self.lockstep("sim", *args, check=check).stdout.strip()

    def create(self, type_, memory="16M", seed=1, rate=0, pattern="uniform", vcpus=2):
        args = ["create", "--type", type_, "--memory", memory, "--seed", str(seed),
                "--vcpus", str(vcpus)]
        if rate:
            args += ["--dirty-rate", str(rate), "--dirty-pattern", pattern]
        return int(self.sim(*args))

    def domains(self):
        """{domid: state} of every domain on this host."""
        out = self.sim("list")
        doms = {}
        for line in out.splitlines()[1:]:
            f = line.split()
            doms[int(f[0])] = f[3]
        return doms

    def digest(self, domid):
        return self.sim("digest", str(domid))

    def daemon_pid(self):
        try:
            with open(os.path.join(self.rundir, "simd.pid")) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def daemon_fds(self):
        pid = self.daemon_pid()
        try:
            return len(os.listdir(f"/proc/{pid}/fd")) if pid else 0
        except OSError:
            return 0

    def kill_daemon(self, sig=signal.SIGKILL):
        pid = self.daemon_pid()
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            wait_gone(pid, 5)

    def replay_digest(self, type_, memory, seed, pattern, writes, vcpus=2):
        """The digest a fresh guest of this seed has after `writes` writes."""
        d = self.create(type_, memory, seed, vcpus=vcpus)
        try:
            self.sim("pause", str(d))
            self.sim("workload", str(d), "--pattern", pattern, "--seed", str(seed),
                     "--replay", str(writes))
            return self.digest(d)
        finally:
            self.sim("destroy", str(d), check=False)

    def stop(self):
        self.kill_daemon(signal.SIGTERM)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


def wait_gone(pid, secs):
    end = time.time() + secs
    while time.time() < end:
        if not alive(pid):
            return True
        time.sleep(0.01)
    return not alive(pid)


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rindex(")") + 2]
    except OSError:
        return "X"


class Proc:
    """A lockstep process with its output collected by threads."""

    def __init__(self, args, env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 name="lockstep"):
        self.name = name
        self.p = subprocess.Popen([BIN, *args], env=env, stdin=stdin, stdout=stdout,
                                  stderr=subprocess.PIPE, close_fds=True)
        self.out, self.err = [], []
        self.threads = []
        for stream, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            if stream is None:
                continue
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _pump(stream, sink):
        for line in iter(stream.readline, b""):
            sink.append(line.decode(errors="replace"))
        stream.close()

    @property
    def pid(self):
        return self.p.pid

    def wait_line(self, pattern, secs):
        end = time.time() + secs
        rx = re.compile(pattern)
        while time.time() < end:
            for line in list(self.err) + list(self.out):
                m = rx.search(line)
                if m:
                    return m
            if self.p.poll() is not None and not any(t.is_alive() for t in self.threads):
                break
            time.sleep(0.01)
        return None

    def wait(self, secs):
        try:
            rc = self.p.wait(timeout=secs)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        for t in self.threads:
            t.join(5)
        return rc

    def kill(self, sig=signal.SIGKILL):
        try:
            self.p.send_signal(sig)
        except ProcessLookupError:
            pass

    def text(self):
        return "".join(self.out) + "".join(self.err)

    def field(self, key):
        """The value of a 'key value' line of the output, or None."""
        for line in self.out + self.err:
            if line.startswith(key + " "):
                return line[len(key) + 1:].strip()
        return None

    def outcome(self):
        v = self.field("outcome")
        return v.split(":")[0] if v else None


class Proxy:
    """A TCP proxy from a local port to the receiver; reset() breaks every
    connection through it with an RST to both ends, as a failing network does."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.socks = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            c, _ = self.ls.accept()
        except OSError:
            return
        try:
            s = socket.create_connection(self.target, timeout=5)
        except OSError:
            c.close()
            return
        s.settimeout(None)
        with self.lock:
            self.socks += [c, s]
            if self.closed:
                self._reset_locked()
                return
        for a, b in ((c, s), (s, c)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        """Forward a to b. A close passes through as a close; a send that
        fails (the far end is gone) resets both ends, as one TCP connection
        would: the near end's writes fail at once instead of filling buffers."""
        try:
            while True:
                d = a.recv(1 << 16)
                if not d:
                    b.shutdown(socket.SHUT_WR)
                    return
                b.sendall(d)
        except OSError:
            with self.lock:
                self._reset_locked()

    def _reset_locked(self):
        for s in self.socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def reset(self):
        with self.lock:
            self.closed = True
            self._reset_locked()
        try:
            self.ls.close()
        except OSError:
            pass

    def close(self):
        self.reset()


def start_receiver(host, extra=(), listen="tcp:127.0.0.1:0", env=None):
    r = Proc(["migrate-receive", "--listen", listen, *extra], env or host.env, name="receiver")
    m = r.wait_line(r"^listening on (\S+)", 20)
    if not m:
        r.kill()
        r.wait(5)
        raise Failed(f"the receiver did not listen: {r.text()}")
    return r, m.group(1)


def lockstep_procs(under=None):
    """Pids of lockstep processes (not daemons) still around; with under, only
    those whose LOCKSTEP_RUNDIR lies below that directory (a test's own: ctest
    runs other tests' lockstep processes beside it)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv or argv[0].decode(errors="replace") != BIN or not alive(int(d)):
            continue
        if under is not None and not rundir_of(int(d), "").startswith(under.rstrip("/") + "/"):
            continue
        pids.append(int(d))
    return pids


def rundir_of(pid, default):
    """The LOCKSTEP_RUNDIR a process was started with (default if unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"LOCKSTEP_RUNDIR="):
                    return kv.split(b"=", 1)[1].decode(errors="replace")
    except OSError:
        pass
    return default


def daemons_of(host):
    """Pids of the sim daemons serving host (its rundir)."""
    want = ["--rundir", host.rundir]
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        except OSError:
            continue
        if argv and argv[0] == SIMD and any(argv[i:i + 2] == want for i in range(len(argv))) \
                and alive(int(d)):
            pids.append(int(d))
    return pids


def write_trace_rows(name, procs):
    """The dispatches of procs (LOCKSTEP_TRACE lines) as rows/NAME.trace in
    the build, for the suite's row-coverage check (row_coverage)."""
    if not os.environ.get("LOCKSTEP_BUILD_DIR"):
        return
    rows_dir = os.path.join(os.environ["LOCKSTEP_BUILD_DIR"], "rows")
    os.makedirs(rows_dir, exist_ok=True)
    with open(os.path.join(rows_dir, name + ".trace"), "w") as f:
        for p in procs:
            f.write("".join(l for l in p.err if l.startswith("fsm ")))


_workdirs = []


def workdir():
    """A scratch directory, removed by Results.finish when every check
    passed and kept (its path printed) for a run that failed."""
    d = tempfile.mkdtemp(prefix="lockstep-mig.")
    _workdirs.append(d)
    return d


class Simd:
    """A direct client of a host's lockstep-simd (backends/sim/proto.h), for the
    checks of fault runs: no process per question. It never sets a guard."""
    MAGIC, VERSION = 0x4D49534C, 2
    OP_CREATE, OP_LIST, OP_PAUSE, OP_DESTROY, OP_GET, OP_SET, OP_DIGEST = 2, 3, 5, 9, 11, 12, 13
    K_WORKLOAD = 16
    STATES = {0: "running", 1: "paused", 2: "suspended", 3: "shutdown", 4: "dying"}

    def __init__(self, host):
        self.host = host
        self.sock = None

    def _connect(self):
        if self.sock:
            return
        path = os.path.join(self.host.rundir, "simd.sock")
        for attempt in (0, 1):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            try:
                self.sock.connect(path)
                return
            except OSError:
                self.sock.close()
                self.sock = None
                if attempt:
                    raise
                self.host.sim("list")          # starts the daemon (a new host after a death)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def rpc(self, op, domid=0, kind=0, payload=b""):
        import struct
        for attempt in (0, 1):
            try:
                self._connect()
                self.sock.sendall(struct.pack("<IHHIHHIi", self.MAGIC, self.VERSION, op, domid,
                                              kind, 0, len(payload), 0) + payload)
                hdr = self._recv(24)
                magic, ver, rop, rdom, rkind, ridx, ln, status = struct.unpack("<IHHIHHIi", hdr)
                body = self._recv(ln)
                if status:
                    raise Failed(f"simd {self.host.name} op {op}: {body.decode(errors='replace')}")
                return body
            except (OSError, ConnectionError):
                self.close()
                if attempt:
                    raise
        return b""

    def _recv(self, n):
        b = b""
        while len(b) < n:
            d = self.sock.recv(n - len(b))
            if not d:
                raise ConnectionError("simd closed the connection")
            b += d
        return b

    def domains(self):
        import struct
        body = self.rpc(self.OP_LIST)
        doms = {}
        for i in range(0, len(body), 96):
            domid, type_, state = struct.unpack_from("<III", body, i)
            doms[domid] = self.STATES.get(state, str(state))
        return doms

    def digest(self, domid):
        return self.rpc(self.OP_DIGEST, domid).decode()

    def pause(self, domid):
        self.rpc(self.OP_PAUSE, domid)

    def destroy(self, domid):
        self.rpc(self.OP_DESTROY, domid)

    def writes(self, domid):
        import struct
        return struct.unpack_from("<QIIQQQ", self.rpc(self.OP_GET, domid, self.K_WORKLOAD))[4]

    def create(self, type_, memory_kib, seed, vcpus=2, rate=0):
        import struct
        t = {"pv": 1, "hvm": 2, "pvh": 3}[type_]
        # device_model 1: the stand-in. These tests are about memory and the
        # handshake; HVM migrations with a real QEMU are test/dm's
        # (dm_roundtrip, dm_migrate_resume).
        body = self.rpc(self.OP_CREATE, 0, 0, struct.pack("<IIQQII64s256s", t, vcpus, memory_kib,
                                                            seed, 1, 1, b"", b""))
        domid = struct.unpack_from("<I", body)[0]
        if rate:
            self.set_workload(domid, rate, seed)
        return domid

    def set_workload(self, domid, rate, seed, writes=0, pattern=0, hot=0):
        import struct
        self.rpc(self.OP_SET, domid, self.K_WORKLOAD,
                 struct.pack("<QIIQQQ", rate, pattern, hot, seed, writes, 0))

    def replay_digest(self, type_, memory_kib, seed, writes, vcpus=2):
        d = self.create(type_, memory_kib, seed, vcpus)
        try:
            self.pause(d)
            self.set_workload(d, 0, seed, writes)
            return self.digest(d)
        finally:
            self.destroy(d)

    def daemon_fds(self):
        return self.host.daemon_fds()
