# test/migrate/netns_lib.sh - two hosts in two network namespaces, for the
# migration tests between them (netns.sh, tls_netns.sh). Sourced after
# test/integration/lib.sh. netns_up PREFIX SUBNET makes namespaces
# PREFIX-a-$$ and PREFIX-b-$$ joined by a veth pair, with addresses
# ${net}1 (a) and ${net}2 (b) in them only, a sim daemon per host
# ($SRC_RUN, $DST_RUN), and the EXIT trap that removes them all.
L=$LOCKSTEP_BIN
LISTEN_SCHEME=${LISTEN_SCHEME:-tcp}

netns_up() {  # netns_up PREFIX SUBNET (the second octet's block: 10.SUBNET.X.)
  local tag=$$
  nsa=$1-a-$tag nsb=$1-b-$tag
  net=10.$2.$((tag % 250)).
  SRC_RUN=$WORK/src DST_RUN=$WORK/dst
  trap 'cleanup_ns; stop_daemon; rm -rf "$WORK"' EXIT
  ip netns add "$nsa"
  ip netns add "$nsb"
  ip link add "${1}a$tag" type veth peer name "${1}b$tag"
  ip link set "${1}a$tag" netns "$nsa"
  ip link set "${1}b$tag" netns "$nsb"
  ip -n "$nsa" addr add "${net}1/30" dev "${1}a$tag"
  ip -n "$nsb" addr add "${net}2/30" dev "${1}b$tag"
  for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
  ip -n "$nsa" link set "${1}a$tag" up
  ip -n "$nsb" link set "${1}b$tag" up
  LINK_B=${1}b$tag
}

cleanup_ns() {
  ip netns del "$nsa" 2>/dev/null || true
  ip netns del "$nsb" 2>/dev/null || true
  for d in "$SRC_RUN" "$DST_RUN"; do
    [ -f "$d/simd.pid" ] && kill "$(cat "$d/simd.pid")" 2>/dev/null || true
  done
}

on_a() { LOCKSTEP_RUNDIR=$SRC_RUN ip netns exec "$nsa" "$@"; }
on_b() { LOCKSTEP_RUNDIR=$DST_RUN ip netns exec "$nsb" "$@"; }

receive() {  # receive OUT ERR ARGS...: start a receiver in b, wait until it listens
  local out=$1 err=$2; shift 2
  on_b "$L" migrate-receive --listen "$LISTEN_SCHEME:${net}2:0" "$@" >"$out" 2>"$err" &
  RPID=$!
  for _ in $(seq 100); do grep -q '^listening on' "$err" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(sed -n 's/^listening on //p' "$err")
}

# check_migrated WHAT SRC_RC DST_RC: the checks of a migration across the link
# (its outputs in $WORK/s.out, s.err, r.out, r.err): both sides succeed, the
# digests agree, the guest runs at the destination only (then destroyed).
check_migrated() {
  local what=$1 src_rc=$2 dst_rc=$3 sd rd ddom ok_rc dst_state src_left
  sd=$(sed -n 's/^digest //p' "$WORK/s.out")
  rd=$(sed -n 's/^digest //p' "$WORK/r.out")
  ddom=$(sed -n 's/^domid //p' "$WORK/r.out")
  [ "$src_rc" -eq 0 ] && [ "$dst_rc" -eq 0 ] && ok_rc=0 || { ok_rc=1; cat "$WORK/s.err" "$WORK/r.err"; }
  check "$what: both sides succeed" [ $ok_rc -eq 0 ]
  check "$what: destination digest == source digest at suspend" [ -n "$sd" -a "$sd" = "$rd" ]
  dst_state=$(LOCKSTEP_RUNDIR=$DST_RUN "$L" sim info "$ddom" 2>/dev/null | awk '{print $4}')
  src_left=$(LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim list | tail -n +2 | grep -c . || true)
  check "$what: the guest runs at the destination only" \
    [ "$dst_state" = running -a "$src_left" -eq 0 ]
  LOCKSTEP_RUNDIR=$DST_RUN "$L" sim destroy "$ddom" || true
}
