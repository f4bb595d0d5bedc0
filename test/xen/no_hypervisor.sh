#!/usr/bin/env bash
# test/xen/no_hypervisor.sh - on a host without Xen, every command that needs
# the real hypervisor fails at once with a clear reason naming
# /dev/xen/privcmd: no crash, no hang, no file left, no domain created.
set -uo pipefail
: "${LOCKSTEP_BIN:?}" "${LOCKSTEP_BUILD_DIR:?}"
if [ -e /dev/xen/privcmd ]; then
  echo "skipped: this host is a Xen dom0 (/dev/xen/privcmd exists); the nested suite covers it"
  exit 77
fi
export ASAN_OPTIONS="detect_leaks=1:exitcode=99"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98"
WORK=$(mktemp -d /tmp/lockstep-xen-test.XXXXXX)
export LOCKSTEP_RUNDIR=$WORK/run
trap 'rm -rf "$WORK"' EXIT
PASSED=0 FAILED=0
ok()   { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

# expect_refused NAME ARGS...: exit 1 within 10 s, the reason names privcmd.
expect_refused() {
  local name=$1; shift
  local start=$SECONDS rc
  timeout 10 "$@" >"$WORK/out" 2>"$WORK/err"; rc=$?
  if [ $rc -eq 1 ] && grep -q "/dev/xen/privcmd does not exist" "$WORK/err" &&
     [ $((SECONDS - start)) -le 5 ]; then
    ok "$name: $(head -n 1 "$WORK/err")"
  else
    fail "$name: exit $rc after $((SECONDS - start)) s; stderr: $(cat "$WORK/err")"
  fi
}

# A valid save file to hand to restore (made with the sim backend).
"$LOCKSTEP_BIN" save --sim pv --memory 8M -o "$WORK/sim.xl" >/dev/null 2>&1 ||
  fail "making a sim save file for the restore cases"

expect_refused "save --domid (--backend xen)" "$LOCKSTEP_BIN" --backend xen save --domid 1 -o "$WORK/a.xl"
expect_refused "save --domain (LOCKSTEP_BACKEND=xen)" env LOCKSTEP_BACKEND=xen "$LOCKSTEP_BIN" save --domain guest -o "$WORK/b.xl"
expect_refused "restore -i FILE (--backend xen)" "$LOCKSTEP_BIN" --backend xen restore -i "$WORK/sim.xl"
expect_refused "restore from a pipe (--backend xen)" sh -c "cat '$WORK/sim.xl' | '$LOCKSTEP_BIN' --backend xen restore -i -"
if "$LOCKSTEP_BIN" migrate --help >/dev/null 2>&1; then
  expect_refused "migrate --domid (--backend xen)" "$LOCKSTEP_BIN" --backend xen migrate --domid 1 --to "unix:$WORK/none.sock"
  expect_refused "migrate-receive (--backend xen)" "$LOCKSTEP_BIN" --backend xen migrate-receive --listen "unix:$WORK/recv.sock"
fi
if [ ! -e "$WORK/a.xl" ] && [ ! -e "$WORK/b.xl" ]; then ok "no save file left behind"; else fail "a refused save left a file"; fi
if [ ! -e "$LOCKSTEP_RUNDIR/simd.pid" ] || [ "$("$LOCKSTEP_BIN" --backend sim sim list | tail -n +2 | grep -c .)" = 0 ]; then
  ok "no domain created"
else
  fail "a refused command created a domain"
fi
if [ -e "$LOCKSTEP_RUNDIR/simd.pid" ]; then kill "$(cat "$LOCKSTEP_RUNDIR/simd.pid")" 2>/dev/null; fi

# auto (the default) on a host without Xen is the sim backend: unchanged behaviour.
if "$LOCKSTEP_BIN" restore -i "$WORK/sim.xl" --destroy >/dev/null 2>"$WORK/err"; then
  ok "auto backend without Xen is the sim"
else
  fail "auto backend restore: $(cat "$WORK/err")"
fi
if [ -e "$LOCKSTEP_RUNDIR/simd.pid" ]; then kill "$(cat "$LOCKSTEP_RUNDIR/simd.pid")" 2>/dev/null; fi

# An unknown backend is a usage error.
"$LOCKSTEP_BIN" --backend kvm save --domid 1 -o "$WORK/c.xl" 2>"$WORK/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "unknown backend 'kvm'" "$WORK/err"; then ok "unknown backend refused"; else fail "unknown backend: exit $rc"; fi

# The helper refuses to run outside lockstep (no channel), without hanging.
helper=$LOCKSTEP_BUILD_DIR/backends/xen/lockstep-xen-helper
timeout 10 "$helper" 2>"$WORK/err"; rc=$?
if [ $rc -eq 2 ] && grep -q usage "$WORK/err"; then ok "helper: usage"; else fail "helper usage: exit $rc"; fi
timeout 10 "$helper" save 1 0 0 3>&- 4>&- 2>"$WORK/err"; rc=$?
if [ $rc -eq 1 ]; then ok "helper without Xen exits 1"; else fail "helper without Xen: exit $rc $(cat "$WORK/err")"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
