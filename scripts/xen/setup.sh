#!/usr/bin/env bash
# scripts/xen/setup.sh - what a nested Xen needs, built once and cached in $W:
# Debian's Xen 4.17 hypervisor (xen.elf), its 6.1 kernel (vmlinuz + modules)
# and a debootstrapped dom0 root filesystem with the Xen tools and lockstep's
# runtime libraries, packed as base.cpio. Needs root and the Debian mirror
# apt uses. Exit 0 done, 3 the mirror or a package could not be fetched.
set -euo pipefail
W=${LOCKSTEP_XEN_WORK:-/var/tmp/lockstep-xen}
STAMP=$W/base.cpio.v2
[ -e "$STAMP" ] && [ -s "$W/xen.elf" ] && [ -s "$W/vmlinuz" ] && exit 0
mkdir -p "$W/debs"
cd "$W"
export DEBIAN_FRONTEND=noninteractive
# A fresh CI image often has no package lists (or stale ones that 404): each
# apt step that fails is retried once after an `apt-get update`.
updated=0
apt_retry() {
  "$@" && return 0
  [ $updated = 0 ] || return 1
  echo "setup: '$*' failed; apt-get update and again" >&2
  apt-get update -qq >/dev/null || return 1
  updated=1
  "$@"
}
need=()
for p in qemu-system-x86 debootstrap busybox-static cpio; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt_retry apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || exit 3
fi
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || { echo "setup: no Debian mirror configured for apt" >&2; exit 3; }
kernel_package() {
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  [ -n "$KPKG" ]
}
apt_retry kernel_package || { echo "setup: apt knows no linux-image-amd64" >&2; exit 3; }
download() {
  kernel_package && rm -f debs/*.deb &&
    (cd debs && apt-get download xen-hypervisor-4.17-amd64 "$KPKG" >/dev/null 2>&1)
}
apt_retry download || { echo "setup: cannot download xen-hypervisor-4.17-amd64 and $KPKG" >&2; exit 3; }
rm -rf x k && dpkg -x debs/xen-hypervisor-4.17-amd64_*.deb x
# Of the kernel package only the image, the Xen modules and the module
# lists (the whole of it is ~400 MB to write).
mkdir k && dpkg-deb --fsys-tarfile debs/"${KPKG}"_*.deb |
  tar -C k -x --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/xen' './lib/modules/*/modules.*'
zcat x/boot/xen-4.17-amd64.gz > xen.elf           # QEMU's multiboot loader takes the ELF image
cp k/boot/vmlinuz-* vmlinuz
if [ ! -x rootfs/usr/bin/gdb ]; then
  # Built in memory: dpkg syncs every file it unpacks, which on a disk is
  # most of a debootstrap's minutes; the tree is copied to $W when done.
  T=$(mktemp -d /dev/shm/lockstep-rootfs.XXXXXX)
  trap 'rm -rf "$T"' EXIT
  debootstrap --variant=minbase \
    --include=xen-utils-4.17,xenstore-utils,kmod,busybox,procps,iproute2,libuv1,libyajl2,python3-minimal \
    bookworm "$T" "$MIRROR" > debootstrap.log 2>&1 || { tail -n 5 debootstrap.log >&2; exit 3; }
  # Bring dom0's Xen libraries to the hypervisor's (and the host's libxen-dev)
  # point release; gdb: the suite prints a backtrace from the core of any
  # lockstep process that crashes.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$T"/etc/apt/sources.list.d/ && rm -f "$T"/etc/apt/sources.list
  fi
  { env -u APT_CONFIG chroot "$T" apt-get update && env -u APT_CONFIG chroot "$T" apt-get -y upgrade &&
    env -u APT_CONFIG chroot "$T" apt-get install -y --no-install-recommends gdb; } >/dev/null 2>&1 || exit 3
  rm -rf "$T"/var/cache/apt/* "$T"/var/lib/apt/lists/* "$T"/usr/share/doc/* \
         "$T"/usr/share/man/* "$T"/usr/share/locale/* "$T"/usr/share/info/*
  rm -rf rootfs rootfs.new && cp -a "$T" rootfs.new && mv rootfs.new rootfs
  rm -rf "$T"; trap - EXIT
fi
# Kernel modules dom0 needs for the Xen tools.
KV=$(ls k/lib/modules)
M=k/lib/modules/$KV
rm -rf "rootfs/lib/modules/$KV" && mkdir -p "rootfs/lib/modules/$KV/kernel"
for d in drivers/xen; do
  mkdir -p "rootfs/lib/modules/$KV/kernel/$(dirname $d)" && cp -a "$M/kernel/$d" "rootfs/lib/modules/$KV/kernel/$d"
done
cp "$M"/modules.order "$M"/modules.builtin* "rootfs/lib/modules/$KV/" 2>/dev/null || true
/sbin/depmod -b rootfs "$KV" 2>/dev/null || chroot rootfs /sbin/depmod "$KV"
# The guests' kernel is dom0's.
mkdir -p rootfs/boot && cp "k/boot/vmlinuz-$KV" rootfs/boot/vmlinuz
(cd rootfs && find . | cpio -o -H newc 2>/dev/null) > base.cpio.tmp && mv base.cpio.tmp base.cpio
touch "$STAMP"
ls -la "$W/base.cpio" >&2
