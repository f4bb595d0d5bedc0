#!/usr/bin/env bash
# Save then restore gives equal digests, for PV and HVM guests of 1, 1023,
# 1024 and 1025 pages and 256 MiB, through a file, a pipe and a unix socket
# between two processes; every stream passes Xen's own verifier.
source "$(dirname "$0")/lib.sh"
L=$LOCKSTEP_BIN

for type in pv hvm; do
  for pages in 1 1023 1024 1025 65536; do
    mem=$((pages * 4))K
    for fmt in xl libxl; do
      f=$WORK/$type-$pages.$fmt
      d=$("$L" save --sim $type --memory $mem --vcpus 2 --seed $pages --format $fmt -o "$f")
      check "$type $pages pages $fmt: verify-stream-v2 -f $fmt accepts it" verify $fmt "$f"
      r=$("$L" restore -i "$f" --destroy | tail -n 1)
      check "$type $pages pages $fmt: file round trip digest" [ "$d" = "$r" ]
      rm -f "$f"
    done
    # A pipe between two processes.
    out=$( { "$L" save --sim $type --memory $mem --seed 7 -o - 2>"$WORK/save.err" | "$L" restore -i - --destroy; } )
    d=$(tail -n 1 "$WORK/save.err")
    check "$type $pages pages: pipe round trip digest" [ "$d" = "$(echo "$out" | tail -n 1)" ]
  done
  # A unix socket between two processes.
  res=$(python3 "$(dirname "$0")/unix_pair.py" "$WORK/sock" \
        "$L save --sim $type --memory 16M --seed 3 -o -" "$L restore -i - --destroy")
  check "$type: unix socket round trip digest" [ "$(echo "$res" | sed -n 1p)" = "$(echo "$res" | sed -n 2p)" ]
done
check "no domain left behind" [ "$(sim_domains)" -eq 0 ]
finish
