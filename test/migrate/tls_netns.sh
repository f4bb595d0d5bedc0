#!/usr/bin/env bash
# test/migrate/tls_netns.sh - TLS 1.3 migration between two network namespaces
# joined by a veth pair (as netns.sh makes them), each host with its own sim
# daemon. The test PKI (test/tls/mkcerts.sh, certtool at test time) gives the
# receiver's certificate namespace b's address, which the sender checks: a
# PV guest dirtying memory migrates, digests checked; then a sender whose
# certificate is of another CA is refused across the link, with the reason on
# both sides, no domain on b and the guest running on a. Needs root and
# iproute2 (skipped otherwise).
source "$(dirname "$0")/../integration/lib.sh"
L=$LOCKSTEP_BIN
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v certtool >/dev/null; then
  echo "skipped: needs root, iproute2 (ip netns) and certtool (gnutls-bin)"
  exit 77
fi
export LOCKSTEP_SIMD_IDLE_EXIT=120
tag=$$
nsa=lstls-a-$tag nsb=lstls-b-$tag
net=10.198.$((tag % 250)).
SRC_RUN=$WORK/src DST_RUN=$WORK/dst PKI=$WORK/pki
cleanup_ns() {
  ip netns del "$nsa" 2>/dev/null || true
  ip netns del "$nsb" 2>/dev/null || true
  for d in "$SRC_RUN" "$DST_RUN"; do
    [ -f "$d/simd.pid" ] && kill "$(cat "$d/simd.pid")" 2>/dev/null || true
  done
}
trap 'cleanup_ns; stop_daemon; rm -rf "$WORK"' EXIT

"$LOCKSTEP_SOURCE_DIR/test/tls/mkcerts.sh" "$PKI" "${net}2"
ip netns add "$nsa"
ip netns add "$nsb"
ip link add "lta$tag" type veth peer name "ltb$tag"
ip link set "lta$tag" netns "$nsa"
ip link set "ltb$tag" netns "$nsb"
ip -n "$nsa" addr add "${net}1/30" dev "lta$tag"
ip -n "$nsb" addr add "${net}2/30" dev "ltb$tag"
for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
ip -n "$nsa" link set "lta$tag" up
ip -n "$nsb" link set "ltb$tag" up

on_a() { LOCKSTEP_RUNDIR=$SRC_RUN ip netns exec "$nsa" "$@"; }
on_b() { LOCKSTEP_RUNDIR=$DST_RUN ip netns exec "$nsb" "$@"; }
dst_domains() { LOCKSTEP_RUNDIR=$DST_RUN "$L" sim list | tail -n +2 | grep -c . || true; }

receive() {  # receive CREDS ARGS...: start a TLS receiver in b, wait until it listens
  local creds=$1; shift
  on_b "$L" migrate-receive --listen "tls:${net}2:0" --tls-creds "$PKI/$creds" "$@" \
    >"$WORK/r.out" 2>"$WORK/r.err" &
  RPID=$!
  for _ in $(seq 100); do grep -q '^listening on' "$WORK/r.err" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(sed -n 's/^listening on //p' "$WORK/r.err")
}

# --- a good pair: the sender checks b's certificate against the address it dials ---
dom=$(on_a "$L" sim create --type pv --memory 32M --seed 5 --dirty-rate 20000 \
      --dirty-pattern hotset:10)
receive good --timeout 20
set +e
on_a "$L" migrate --domid "$dom" --to "$ADDR" --tls-creds "$PKI/good" --timeout 20 \
  >"$WORK/s.out" 2>"$WORK/s.err"
src_rc=$?
wait "$RPID"; dst_rc=$?
set -e
sd=$(sed -n 's/^digest //p' "$WORK/s.out")
rd=$(sed -n 's/^digest //p' "$WORK/r.out")
ddom=$(sed -n 's/^domid //p' "$WORK/r.out")
[ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] && ok_rc=0 || { ok_rc=1; cat "$WORK/s.err" "$WORK/r.err"; }
check "tls over the veth pair ($ADDR): both sides succeed" [ $ok_rc -eq 0 ]
check "tls over the veth pair: destination digest == source digest at suspend" \
  [ -n "$sd" -a "$sd" = "$rd" ]
dst_state=$(LOCKSTEP_RUNDIR=$DST_RUN "$L" sim info "$ddom" 2>/dev/null | awk '{print $4}')
src_left=$(LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim list | tail -n +2 | grep -c . || true)
check "tls over the veth pair: the guest runs at the destination only" \
  [ "$dst_state" = running -a "$src_left" -eq 0 ]
LOCKSTEP_RUNDIR=$DST_RUN "$L" sim destroy "$ddom" || true

# --- a sender of another CA: refused across the link, nothing moved ---
dom=$(on_a "$L" sim create --type pv --memory 32M --seed 6)
before=$(LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim digest "$dom")
receive good --timeout 20
set +e
on_a "$L" migrate --domid "$dom" --to "$ADDR" --tls-creds "$PKI/wrongca" --timeout 20 \
  >"$WORK/s.out" 2>"$WORK/s.err"
src_rc=$?
wait "$RPID"; dst_rc=$?
set -e
check "another CA over the veth pair: both sides fail" [ $src_rc -eq 1 -a $dst_rc -eq 1 ] \
  || cat "$WORK/s.err" "$WORK/r.err"
check "another CA over the veth pair: the receiver says why" \
  grep -q "The certificate issuer is unknown" "$WORK/r.err"
check "another CA over the veth pair: the sender says why" grep -q 'CA is unknown' "$WORK/s.err"
check "another CA over the veth pair: no domain on the receiving host" [ "$(dst_domains)" -eq 0 ]
state=$(LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim info "$dom" | awk '{print $4}')
after=$(LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim digest "$dom")
check "another CA over the veth pair: the source guest runs on, untouched" \
  [ "$state" = running -a "$before" = "$after" ]
LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim destroy "$dom" || true
cleanup_ns     # before finish removes $WORK and the daemons' pid files with it
finish
