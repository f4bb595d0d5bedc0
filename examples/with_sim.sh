#!/usr/bin/env bash
# examples/with_sim.sh CMD [ARGS...] - run CMD against a sim daemon of its
# own: a private LOCKSTEP_RUNDIR (the library starts lockstep-simd there on
# first use: $LOCKSTEP_SIMD, or the installed one), stopped by its pid after.
set -uo pipefail
export LOCKSTEP_RUNDIR
LOCKSTEP_RUNDIR=$(mktemp -d /tmp/lockstep-example.XXXXXX)
stop_daemon() {
  local pid
  pid=$(cat "$LOCKSTEP_RUNDIR/simd.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$LOCKSTEP_RUNDIR"
}
trap stop_daemon EXIT
"$@"
