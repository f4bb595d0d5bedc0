#!/usr/bin/env bash
# make demo: save a 256 MiB simulated HVM guest, have Xen's own verifier check
# the stream, restore it, show that the digests match, and draw the tables.
set -euo pipefail
build=${1:-build}
bin=$build/cli/lockstep
verifier=/usr/lib/xen-4.17/bin/verify-stream-v2
work=$(mktemp -d /tmp/lockstep-demo.XXXXXX)
export LOCKSTEP_RUNDIR=$work/run
cleanup() {
  if [ -f "$LOCKSTEP_RUNDIR/simd.pid" ]; then kill "$(cat "$LOCKSTEP_RUNDIR/simd.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

say "save a 256 MiB simulated HVM domain (xl format, as 'xl save' writes)"
saved=$("$bin" save --sim hvm --memory 256M --vcpus 2 --seed 42 -o "$work/guest.xl")
echo "saved digest:    $saved"
ls -l "$work/guest.xl"

say "Xen's own verifier: verify-stream-v2 -f xl"
PYTHONPATH=/usr/lib/xen-4.17/lib/python "$verifier" -f xl -i "$work/guest.xl" -q && echo "verify-stream-v2: OK"

say "the stream, record by record (summary)"
"$bin" inspect "$work/guest.xl" | tail -n 12

say "restore it into a new simulated domain"
out=$("$bin" restore -i "$work/guest.xl" --expect-digest "$saved" --destroy)
echo "$out"
restored=$(echo "$out" | tail -n 1)
echo "restored digest: $restored"
[ "$saved" = "$restored" ] && echo "digests match: the restored domain is the saved one"

say "state diagrams from the same tables"
cmake --build "$build" --target diagrams >/dev/null
ls "$build"/diagrams/*.svg

say "an HVM guest with its real device model: a QEMU started by the sim daemon"
dom=$("$bin" sim create --type hvm --memory 64M --seed 7)
"$bin" sim dm "$dom" | sed 's/^/  /'
qpid=$("$bin" sim dm "$dom" | awk '$1 == "pid" { print $2 }')
echo "QEMU pid $qpid is domain $dom's device model"
saved=$("$bin" save --domid "$dom" -o "$work/hvm.xl")
echo "saved (QEMU stopped, xen-save-devices-state through /dev/fdset): $saved"
"$bin" inspect "$work/hvm.xl" | grep EMULATOR_CONTEXT | sed 's/^/  /'
PYTHONPATH=/usr/lib/xen-4.17/lib/python "$verifier" -f xl -i "$work/hvm.xl" -q && echo "verify-stream-v2: OK"
[ ! -d "/proc/$qpid" ] && echo "the saved domain is destroyed, and QEMU $qpid with it"
out=$("$bin" restore -i "$work/hvm.xl" --expect-digest "$saved")
new=$(echo "$out" | awk '/^domid/ { print $2 }')
echo "restored as domain $new; its new QEMU, started with -incoming on the saved state:"
"$bin" sim dm "$new" | sed 's/^/  /'
"$bin" sim destroy "$new"
