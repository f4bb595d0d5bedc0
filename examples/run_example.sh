#!/usr/bin/env bash
# examples/run_example.sh EXAMPLE - run the example toolstack (under
# with_sim.sh: a sim daemon of its own) once end to end, then interrupted by
# SIGINT in the middle of a migration that never converges, which must leave
# the guest running at the source and no other domain. LOCKSTEP_BIN: the
# lockstep CLI (default: from PATH), to ask the daemon about its domains.
set -euo pipefail
: "${LOCKSTEP_RUNDIR:?run me under with_sim.sh}"
EX=$1
L=${LOCKSTEP_BIN:-lockstep}
W=$(mktemp -d /tmp/lockstep-example-out.XXXXXX)
trap 'rm -rf "$W"' EXIT
FAILED=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILED=$((FAILED + 1)); }
domains() { "$L" sim list | tail -n +2; }

# End to end: save, restore, a live migration with the guest dirtying memory.
if "$EX" 32 2000 >"$W/out" 2>"$W/err"; then ok "example exits 0"; else fail "example exited $?"; fi
cat "$W/out"
grep -q '^restored domain [0-9]*, digest unchanged' "$W/out" && ok "restore: digest unchanged" ||
  fail "restore: $(cat "$W/out" "$W/err")"
grep -qE '^migrated domain [0-9]+ to domain [0-9]+ in [0-9]+ live rounds, digest unchanged' "$W/out" &&
  ok "migration: digest unchanged" || fail "migration: $(cat "$W/out" "$W/err")"
[ -z "$(domains)" ] && ok "no domain left" || fail "domains left: $(domains)"

# SIGINT while a migration that never converges is in its rounds.
"$EX" 32 20000 100000 >"$W/out" 2>"$W/err" &
pid=$!
for _ in $(seq 600); do
  grep -qE '^migrate: .*round [1-9]' "$W/err" && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -INT $pid
rc=0; wait $pid || rc=$?
cat "$W/out"
[ $rc -eq 130 ] && ok "interrupted: exit status 130" || fail "interrupted: exit $rc: $(cat "$W/err")"
dom=$(sed -n 's/^the guest runs on as domain \([0-9]*\)$/\1/p' "$W/out")
if [ -n "$dom" ] && [ "$(domains | awk '{print $1 ":" $4}')" = "$dom:running" ]; then
  ok "interrupted: the guest runs at the source (domain $dom), the receiver's copy is gone"
else
  fail "interrupted: domains '$(domains)', output: $(cat "$W/out")"
fi
[ $FAILED -eq 0 ]
