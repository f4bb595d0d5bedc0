#!/usr/bin/env bash
# test/migrate/netns.sh - a live migration between two network namespaces
# joined by a veth pair: two hosts with private addresses of their own (in
# those namespaces only, removed at the end), each with its own sim daemon.
# Then the link is cut mid pre-copy (no RST, packets just stop): both sides
# must give up after their timeout, the guest running at the source and no
# copy left at the destination. Needs root and iproute2 (skipped otherwise).
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/netns_lib.sh"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "skipped: needs root and iproute2 (ip netns)"
  exit 77
fi
export LOCKSTEP_SIMD_IDLE_EXIT=120
netns_up lsmig 199
check "namespace a routes to b's address over the veth pair" \
  ip -n "$nsa" route get "${net}2" >/dev/null

# --- a migration across the link, the guest dirtying memory throughout ---
for type in pv hvm; do
  dom=$(on_a "$L" sim create --type $type --memory 32M --seed 5 --dirty-rate 20000 \
        --dirty-pattern hotset:10)
  receive "$WORK/r.out" "$WORK/r.err" --timeout 20
  set +e
  on_a "$L" migrate --domid "$dom" --to "$ADDR" --timeout 20 >"$WORK/s.out" 2>"$WORK/s.err"
  src_rc=$?
  wait "$RPID"; dst_rc=$?
  set -e
  check_migrated "$type over the veth pair" $src_rc $dst_rc
done

# --- the link goes down mid pre-copy: silence, not a reset ---
# The guest dirties by the clock (backends/sim/dirty.c), so no round sees
# zero dirty pages and the policy (threshold 1, 100000 rounds) cannot end the
# pre-copy on its own; the cut comes once the trace shows round 1 under way
# (the pre-copy went on past the full round), never after a fixed sleep that
# a loaded host could outrun. The timeouts (5 s) are well above any stall of
# a loaded host, so that neither side gives up before the cut: a receiver that
# did would close the connection and the sender would not meet silence.
dom=$(on_a "$L" sim create --type pv --memory 32M --seed 6 --dirty-rate 400000)
receive "$WORK/r.out" "$WORK/r.err" --timeout 5
LOCKSTEP_TRACE=1 on_a "$L" migrate --domid "$dom" --to "$ADDR" --timeout 5 --max-rounds 100000 \
  --dirty-threshold 1 >"$WORK/s.out" 2>"$WORK/s.err" &
SPID=$!
for _ in $(seq 600); do
  grep -q "^precopy .*round 1 about to go" "$WORK/s.err" 2>/dev/null && break
  kill -0 "$SPID" 2>/dev/null || break
  sleep 0.05
done
check "link cut: the migration is in pre-copy round 1 when the link goes down" \
  grep -q "^precopy .*round 1 about to go.*continue" "$WORK/s.err"
check "link cut: the receiver is still receiving when the link goes down" kill -0 "$RPID"
ip -n "$nsb" link set "$LINK_B" down
set +e
wait "$SPID"; src_rc=$?
wait "$RPID"; dst_rc=$?
set -e
state=$(LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim info "$dom" | awk '{print $4}')
grep -q "outcome source-runs" "$WORK/s.out" && said=yes || said=no
check "link cut: the sender gives up after its timeout and the guest runs at the source" \
  [ $src_rc -eq 1 -a "$state" = running -a $said = yes ] || { cat "$WORK/s.out"; grep -v "^fsm\|^  " "$WORK/s.err" | tail -20; }
check "link cut: the sender names the silence" grep -qi "timed out\|stopped reading\|within 5 s" "$WORK/s.err" \
  || { grep -v "^fsm\|^  " "$WORK/s.err" | tail -5; tail -5 "$WORK/r.err"; }
dst_left=$(LOCKSTEP_RUNDIR=$DST_RUN "$L" sim list | tail -n +2 | grep -c . || true)
check "link cut: the receiver gives up and leaves no copy" [ $dst_rc -eq 1 -a "$dst_left" -eq 0 ] \
  || cat "$WORK/r.out" "$WORK/r.err"
LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim destroy "$dom" || true
cleanup_ns     # before finish removes $WORK and the daemons' pid files with it
finish
