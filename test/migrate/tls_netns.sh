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
LISTEN_SCHEME=tls
source "$(dirname "$0")/netns_lib.sh"
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v certtool >/dev/null; then
  echo "skipped: needs root, iproute2 (ip netns) and certtool (gnutls-bin)"
  exit 77
fi
export LOCKSTEP_SIMD_IDLE_EXIT=120
netns_up lstls 198
PKI=$WORK/pki
"$LOCKSTEP_SOURCE_DIR/test/tls/mkcerts.sh" "$PKI" "${net}2"
dst_domains() { LOCKSTEP_RUNDIR=$DST_RUN "$L" sim list | tail -n +2 | grep -c . || true; }

# --- a good pair: the sender checks b's certificate against the address it dials ---
dom=$(on_a "$L" sim create --type pv --memory 32M --seed 5 --dirty-rate 20000 \
      --dirty-pattern hotset:10)
receive "$WORK/r.out" "$WORK/r.err" --tls-creds "$PKI/good" --timeout 20
set +e
on_a "$L" migrate --domid "$dom" --to "$ADDR" --tls-creds "$PKI/good" --timeout 20 \
  >"$WORK/s.out" 2>"$WORK/s.err"
src_rc=$?
wait "$RPID"; dst_rc=$?
set -e
check_migrated "tls over the veth pair ($ADDR)" $src_rc $dst_rc

# --- a sender of another CA: refused across the link, nothing moved ---
dom=$(on_a "$L" sim create --type pv --memory 32M --seed 6)
before=$(LOCKSTEP_RUNDIR=$SRC_RUN "$L" sim digest "$dom")
receive "$WORK/r.out" "$WORK/r.err" --tls-creds "$PKI/good" --timeout 20
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
