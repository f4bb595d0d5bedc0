#!/usr/bin/env bash
# Bad input: a stream truncated at every record boundary and inside records,
# and corrupted in each layer, makes `lockstep restore` fail with a clear
# error naming the offset, exit 1 (not a sanitizer report), and leave no
# domain behind.
source "$(dirname "$0")/lib.sh"
L=$LOCKSTEP_BIN
here=$(dirname "$0")

for type in pv hvm; do
  f=$WORK/$type.xl
  "$L" save --sim $type --memory 2M --seed 5 -o "$f" >/dev/null
  size=$(stat -c %s "$f")
  cuts=$( { python3 "$here/boundaries.py" "$f"; python3 "$here/boundaries.py" "$f" | awk '{print $1+3; print $1+11}'; } | sort -un | awk -v s="$size" '$1 < s')
  n=0; bad=0
  for cut in $cuts; do
    head -c "$cut" "$f" >"$WORK/cut"
    set +e
    "$L" restore -i "$WORK/cut" --destroy >/dev/null 2>"$WORK/err"
    rc=$?
    set -e
    n=$((n + 1))
    if [ $rc -ne 1 ] || ! grep -qiE "truncat|offset" "$WORK/err"; then
      bad=$((bad + 1)); echo "  cut at $cut: rc=$rc: $(cat "$WORK/err")"
    fi
  done
  check "$type: $n truncations each fail cleanly with an offset" [ $bad -eq 0 ]
  check "$type: no domain left after truncated restores" [ "$(sim_domains)" -eq 0 ]

  # Corruptions, one per layer: libxl ident, libxc marker, a PAGE_DATA pfn word.
  offs=$(python3 "$here/boundaries.py" "$f")
  libxl_hdr=$(echo "$offs" | sed -n 2p)
  libxc_ihdr=$(echo "$offs" | sed -n 4p)
  first_page_rec=$(python3 - "$f" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
optlen = struct.unpack_from("=I", d, 44)[0]
p = 48 + optlen + 16 + 8 + 24 + 16
while True:
    t, l = struct.unpack_from("<II", d, p)
    if t == 1:
        print(p); break
    p += 8 + ((l + 7) & ~7)
PY
)
  for spec in "$libxl_hdr:libxl" "$libxc_ihdr:libxc image" "$((first_page_rec + 16 + 7)):PAGE_DATA pfn"; do
    at=${spec%%:*}; what=${spec#*:}
    cp "$f" "$WORK/bad"
    printf '\x5a' | dd of="$WORK/bad" bs=1 seek="$at" conv=notrunc status=none
    set +e
    "$L" restore -i "$WORK/bad" --destroy >/dev/null 2>"$WORK/err"; rc=$?
    set -e
    check "$type: corrupt $what byte at $at: exit 1 with offset ($(head -c 150 "$WORK/err"))" \
      bash -c "[ $rc -eq 1 ] && grep -q offset '$WORK/err'"
  done
  check "$type: no domain left after corrupt restores" [ "$(sim_domains)" -eq 0 ]
done
finish
