#!/usr/bin/env bash
# scripts/xen/mkimage.sh BUILD_DIR OUT.cpio - dom0's initramfs: the cached
# base (setup.sh) followed by a small archive with lockstep (from BUILD_DIR,
# a Release build), the suite and benchmark (test/xen), the guests' busybox
# initramfs and configs, and dom0's /init. The kernel unpacks concatenated
# archives in order, so the second one adds to the first.
set -euo pipefail
W=${LOCKSTEP_XEN_WORK:-/var/tmp/lockstep-xen}
BUILD=$1; OUT=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
O=$W/overlay
rm -rf "$O" && mkdir -p "$O/opt/lockstep/bin" "$O/opt/lockstep/lib" "$O/root" "$W/guest/bin" "$O/boot"
install -m 755 "$BUILD/cli/lockstep" "$BUILD/backends/xen/lockstep-xen-helper" \
  "$BUILD/backends/xen/lockstep-xen-mkdomain" "$O/opt/lockstep/bin/"
# The CLI links liblockstep.so, found at $ORIGIN/../lib (its build RUNPATH).
cp -P "$BUILD"/lib/liblockstep.so.* "$O/opt/lockstep/lib/"
install -m 755 "$SRC"/test/xen/suite.sh "$SRC"/test/xen/bench.sh "$SRC"/test/xen/heartbeat.sh "$O/opt/lockstep/"
install -m 644 "$SRC"/test/xen/pv.cfg "$SRC"/test/xen/pvh.cfg "$O/opt/lockstep/"
install -m 755 "$SRC/test/xen/dom0-init" "$O/init"
# The guest: a busybox initramfs whose init prints a tick each second.
G=$W/guest
rm -rf "$G" && mkdir -p "$G/bin" "$G/proc" "$G/dev"
cp /bin/busybox "$G/bin/busybox"
for a in sh mount cat echo sleep; do ln -sf busybox "$G/bin/$a"; done
install -m 755 "$SRC/test/xen/guest-init" "$G/init"
(cd "$G" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$O/boot/guest.cpio.gz"
(cd "$O" && find . | cpio -o -H newc 2>/dev/null) > "$W/overlay.cpio"
cat "$W/base.cpio" "$W/overlay.cpio" > "$OUT"
