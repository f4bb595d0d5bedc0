#!/usr/bin/env python3
"""Run SAVE_CMD with stdout on one end of a unix socket connection and
RESTORE_CMD with stdin on the other; print the saver's digest (its stderr's
last line) and the restorer's (its stdout's last line)."""
import os, shlex, socket, subprocess, sys

path, save_cmd, restore_cmd = sys.argv[1:4]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cli.connect(path)
conn, _ = srv.accept()
rest = subprocess.Popen(shlex.split(restore_cmd), stdin=conn.fileno(), stdout=subprocess.PIPE)
save = subprocess.Popen(shlex.split(save_cmd), stdout=cli.fileno(), stderr=subprocess.PIPE)
conn.close(); cli.close(); srv.close()
_, save_err = save.communicate(timeout=120)
rest_out, _ = rest.communicate(timeout=120)
os.unlink(path)
if save.returncode or rest.returncode:
    sys.stderr.write(save_err.decode())
    sys.exit(1)
print(save_err.decode().strip().splitlines()[-1])
print(rest_out.decode().strip().splitlines()[-1])
