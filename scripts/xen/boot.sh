#!/usr/bin/env bash
# scripts/xen/boot.sh LOG INITRD [dom0 args...] - boot Debian's Xen under
# QEMU's software emulation (TCG) with dom0 running INITRD's /init; each
# serial line goes to LOG prefixed with seconds since start. QEMU ends when
# dom0 powers off, panics (panic=1, -no-reboot) or after $TMO seconds.
# $QEMU_MONITOR: a unix socket path for QEMU's monitor (run.sh's stall check).
# LOG is appended to (O_APPEND), as run.sh appends a stall's registers to it
# while the console may still write: neither overwrites the other.
# What matters under TCG (each found the hard way): one CPU (with two, dom0
# processes that map guest memory see heap corruption), smap=0 smep=0 (or
# dom0 faults at its first instruction), no 'noreboot' (a panic must end it).
# No PCID/INVPCID for the emulated CPU ($QEMU_CPU to override): with them, dom0
# processes were now and then corrupted (segfaults, a shell spinning forever,
# libxc failing to map a guest page) in about one boot in three under load.
# No AVX, AVX2, FMA or F16C either: QEMU 7.2 is the first to emulate them, and
# glibc picks its AVX2 string and memory functions when they are offered. With
# them, four boots in four on 2026-12-02 corrupted dom0 processes (grep and
# timeout spinning in setlocale, xl and the suite's shell segfaulting); without
# them, the two boots on a quiet host ran clean, but the two inside make test
# (other tests busy on the host's other core) did not: fewer, not none.
# No XSAVE either (so Xen and dom0 switch FPU/SSE state with FXSAVE): the
# corruption that remained looked like vector registers lost across a
# context switch (glibc's string functions going wrong) and came with load,
# that is, with more preemption; a whole suite at load 9-10 ran clean without it.
# QEMU runs ahead of the host's other work (nice -10, as root): the
# corruption has come with a busy host in every boot so far that showed it.
set -uo pipefail
W=${LOCKSTEP_XEN_WORK:-/var/tmp/lockstep-xen}
LOG=$1; INITRD=$2; shift 2
: > "$LOG"
D0M=${DOM0MEM:-2048M}
# Speculation mitigations off (Xen's and the kernels'), and no zeroing of
# every page allocated: under emulation each costs instructions on every
# entry, call or allocation, and this machine runs nothing but the suite.
XENARGS="console=com1 com1=115200,8n1 dom0_mem=$D0M,max:$D0M dom0_max_vcpus=1 smap=0 smep=0 spec-ctrl=no loglvl=warning guest_loglvl=warning"
start=$(date +%s)
PRIO=(); [ "$(id -u)" = 0 ] && PRIO=(nice -n -10)
"${PRIO[@]}" timeout "${TMO:-600}" qemu-system-x86_64 -accel tcg -machine q35 -cpu "${QEMU_CPU:-max,pcid=off,invpcid=off,avx=off,avx2=off,fma=off,f16c=off,xsave=off}" -smp 1 -m "${MEM:-4096}" \
  -nographic -no-reboot -serial mon:stdio ${QEMU_MONITOR:+-monitor unix:$QEMU_MONITOR,server=on,wait=off} \
  -kernel "$W/xen.elf" -append "$XENARGS" \
  -initrd "$W/vmlinuz console=hvc0 earlyprintk=xen panic=1 quiet mitigations=off init_on_alloc=0 $*,$INITRD" \
  0</dev/null 2>&1 | while IFS= read -r l; do
    printf '%4d %s\n' $(( $(date +%s) - start )) "${l//$'\r'/}"; done >> "$LOG"
rc=${PIPESTATUS[0]}
echo "$(( $(date +%s) - start )) QEMU-EXIT rc=$rc" >> "$LOG"
exit "$rc"
