#!/usr/bin/env python3
"""emu_context.py STREAM OUT: write the EMULATOR_CONTEXT bytes of an xl save file
or libxl stream to OUT (the device state after the 8-byte emulator header);
print "emulator-id length". Walks the libxl records after the libxc layer the
way the restore side does: libxl records are (type u32, length u32, body
padded to 8); the LIBXC_CONTEXT record is followed by the libxc stream, whose
records are skipped until its END."""
import struct
import sys

data = open(sys.argv[1], "rb").read()
pos = 0
if data.startswith(b"Xen saved domain, xl format\n \0 \r"):
    pos = 32
    _byteorder, _major, _minor, optlen = struct.unpack_from("<4I", data, pos)
    pos += 16 + optlen
ident, version, options = struct.unpack_from(">QII", data, pos)
assert ident == 0x4c6962786c466d74, "not a libxl stream"
pos += 16


def skip_libxc(p):
    p += 24  # image header
    p += 16  # domain header
    while True:
        rtype, rlen = struct.unpack_from("<II", data, p)
        p += 8 + ((rlen + 7) & ~7)
        if rtype == 0:
            return p


while True:
    rtype, rlen = struct.unpack_from("<II", data, pos)
    body = data[pos + 8:pos + 8 + rlen]
    pos += 8 + ((rlen + 7) & ~7)
    if rtype == 0:
        sys.exit("no EMULATOR_CONTEXT record")
    if rtype == 1:
        pos = skip_libxc(pos)
    if rtype == 3:
        emu_id, _index = struct.unpack_from("<II", body, 0)
        open(sys.argv[2], "wb").write(body[8:])
        print(emu_id, len(body) - 8)
        break
