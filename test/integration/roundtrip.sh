#!/usr/bin/env bash
# Save then restore gives equal digests through a file, a pipe and a unix
# socket between two processes; every stream passes Xen's own verifier.
# PV guests take every size around the 1024-page batch boundary (1, 1023,
# 1024, 1025 pages) in both formats and through a pipe; batching is the same
# code for HVM, so HVM guests (each save and restore starts a real QEMU) take
# one boundary size. A 256 MiB guest of each type (most of this test's time
# under ASan) goes once through a file in xl format, verified.
source "$(dirname "$0")/lib.sh"
L=$LOCKSTEP_BIN

roundtrip() {  # type pages formats [pipe]
  local type=$1 pages=$2 mem=$(($2 * 4))K fmt f d r out
  for fmt in $3; do
    f=$WORK/$type-$pages.$fmt
    d=$("$L" save --sim $type --memory $mem --vcpus 2 --seed $pages --format $fmt -o "$f")
    check "$type $pages pages $fmt: verify-stream-v2 -f $fmt accepts it" verify $fmt "$f"
    r=$("$L" restore -i "$f" --destroy | tail -n 1)
    check "$type $pages pages $fmt: file round trip digest" [ "$d" = "$r" ]
    rm -f "$f"
  done
  [ "${4:-}" = pipe ] || return 0
  # A pipe between two processes.
  out=$( { "$L" save --sim $type --memory $mem --seed 7 -o - 2>"$WORK/save.err" | "$L" restore -i - --destroy; } )
  d=$(tail -n 1 "$WORK/save.err")
  check "$type $pages pages: pipe round trip digest" [ "$d" = "$(echo "$out" | tail -n 1)" ]
}

for pages in 1 1023 1024 1025; do roundtrip pv $pages "xl libxl" pipe; done
roundtrip hvm 1025 "xl libxl" pipe
roundtrip pv 65536 xl
roundtrip hvm 65536 xl
for type in pv hvm; do
  # A unix socket between two processes.
  res=$(python3 "$(dirname "$0")/unix_pair.py" "$WORK/sock" \
        "$L save --sim $type --memory 16M --seed 3 -o -" "$L restore -i - --destroy")
  check "$type: unix socket round trip digest" [ "$(echo "$res" | sed -n 1p)" = "$(echo "$res" | sed -n 2p)" ]
done
check "no domain left behind" [ "$(sim_domains)" -eq 0 ]
finish
