#!/usr/bin/env python3
"""Print the byte offset of every header and record boundary of an xl-format
stream, one per line (a test-side walk, independent of lockstep's parser)."""
import struct, sys

data = open(sys.argv[1], "rb").read()
pos, out = 0, [0]
if data.startswith(b"Xen saved domain, xl format\n"):
    _, _, _, optlen = struct.unpack_from("=IIII", data, 32)
    pos = 48 + optlen
    out.append(pos)
pos += 16                      # libxl header
out.append(pos)
in_libxc = False
while pos < len(data):
    if in_libxc is None:       # libxc image + domain header follow LIBXC_CONTEXT
        pos += 24; out.append(pos); pos += 16; out.append(pos); in_libxc = True; continue
    rtype, rlen = struct.unpack_from("<II", data, pos)
    pos += 8 + ((rlen + 7) & ~7)
    out.append(pos)
    if in_libxc is False and rtype == 1:       # LIBXC_CONTEXT
        in_libxc = None
    elif in_libxc is True and rtype == 0:      # libxc END
        in_libxc = "done"
    elif in_libxc in (False, "done") and rtype == 0:
        break
print("\n".join(str(o) for o in out))
