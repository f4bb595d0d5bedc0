#!/usr/bin/env python3
"""qmp.py SOCK CMD [ARGS-JSON]: one QMP command on a QEMU's socket.

Reads the greeting, negotiates qmp_capabilities, sends CMD, skips events and
prints the "return" value as JSON; exits 1 on an error reply or a dead peer.
"""
import json
import socket
import sys


def main():
    sock, cmd = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    f = s.makefile("rw")

    def reply():
        while True:
            line = f.readline()
            if not line:
                sys.exit("qmp.py: QEMU closed the socket")
            msg = json.loads(line)
            if "event" in msg:
                continue
            return msg

    greeting = reply()
    if "QMP" not in greeting:
        sys.exit("qmp.py: no QMP greeting")
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    reply()
    req = {"execute": cmd}
    if args is not None:
        req["arguments"] = args
    f.write(json.dumps(req) + "\n")
    f.flush()
    msg = reply()
    if "error" in msg:
        print(json.dumps(msg["error"]), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(msg["return"]))


main()
