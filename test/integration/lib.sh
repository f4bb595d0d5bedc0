# test/integration/lib.sh - shared helpers for the shell integration tests.
# Each test gets a private sim daemon (LOCKSTEP_RUNDIR) and stops it by pid.
set -euo pipefail
: "${LOCKSTEP_BIN:?}" "${LOCKSTEP_SIMD:?}"
export LOCKSTEP_SIMD
WORK=$(mktemp -d /tmp/lockstep-test.XXXXXX)
export LOCKSTEP_RUNDIR=$WORK/run
# ASan reports must not look like an ordinary failure (exit 1).
export ASAN_OPTIONS="detect_leaks=1:exitcode=99"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=98"
VERIFIER=/usr/lib/xen-4.17/bin/verify-stream-v2
PASSED=0
FAILED=0

stop_daemon() {
  if [ -f "$LOCKSTEP_RUNDIR/simd.pid" ]; then
    local pid; pid=$(cat "$LOCKSTEP_RUNDIR/simd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
finish() {
  stop_daemon
  rm -rf "$WORK"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
trap 'stop_daemon; rm -rf "$WORK"' EXIT

ok()   { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

verify() {  # verify FORMAT FILE
  PYTHONPATH=/usr/lib/xen-4.17/lib/python "$VERIFIER" -f "$1" -i "$2" -q
}

sim_domains() { "$LOCKSTEP_BIN" sim list | tail -n +2 | grep -c . || true; }

# simq_start: a test/integration/simq.py of this shell's own (on fds 7 and 8),
# which answers questions about the daemon of $LOCKSTEP_RUNDIR without a
# lockstep process per question; `sq QUESTION...` leaves the answer in $SQ.
simq_start() {
  local q=${1:-$WORK/simq}
  mkfifo "$q.in" "$q.out"
  python3 -u "$(dirname "${BASH_SOURCE[0]}")/simq.py" <"$q.in" >"$q.out" 2>&1 &
  SIMQ_PID=$!
  exec 7>"$q.in" 8<"$q.out"
}
simq_stop() {
  [ -n "${SIMQ_PID:-}" ] || return 0
  exec 7>&- 8<&-
  wait "$SIMQ_PID" 2>/dev/null || true
  SIMQ_PID=
}
sq() { echo "$*" >&7; IFS= read -r SQ <&8 || SQ="error: simq.py is gone"; }
