#!/usr/bin/env bash
# scripts/xen/stall.sh LOG [DIR...] - what a nested boot that run.sh ended as
# stalled ("=== STALL" in LOG) was doing, from dom0's heartbeat lines
# (test/xen/dom0-init: "--- busy:", "--- spinning:", "--- map") and the
# emulated CPU's registers that run.sh appended. Each RIP is placed in the
# spinning process's code (file + offset, and the symbol when DIR... holds
# that file: dom0's root filesystem, lockstep's overlay). Prints what it
# found and exits
#   0  a process that is not lockstep kept dom0's CPU busy up to the stall
#      and the emulated CPU was in its code (or its place was not read):
#      under TCG a corrupted dom0 process spins, so this is no verdict on
#      lockstep;
#   1  anything else: lockstep itself spun, nothing spun (a blocked lockstep
#      is a hang), or the CPU was in another process's code (RIPs in the
#      kernel or Xen say nothing either way). Never a reason to skip.
set -uo pipefail
LOG=$1; shift
strip() { sed -E 's/^ *[0-9]+ //' "$LOG"; }

spin=$(strip | grep -a '^--- spinning: pid ' | tail -n 1)
if [ -z "$spin" ]; then
  echo "no process kept dom0's CPU busy before the stall (a blocked lockstep, or a hang the heartbeat did not see)"
  # When dom0's heartbeat last beat, and what lockstep's threads waited on then.
  beat=$(grep -a '^ *[0-9]* --- alive ' "$LOG" | tail -n 1)
  if [ -z "$beat" ]; then echo "  the heartbeat never beat"
  else
    echo "  last beat at second $(echo "${beat%% ---*}" | tr -d " "):$(echo "$beat" | sed 's/^ *[0-9]* --- alive//')"
    strip | grep -a '^--- lockstep pid ' | tail -n 6 | sed 's/^--- /  /'
  fi
  exit 1
fi
pid=$(echo "$spin" | sed -E 's/^--- spinning: pid ([0-9]+) .*/\1/')
comm=$(echo "$spin" | sed -E 's/^--- spinning: pid [0-9]+ \((.*)\) kept.*/\1/')
echo "pid $pid ($comm) kept dom0's CPU busy"
strip | grep -a "^--- spinning pid $pid thread " | sed 's/^--- /  /'
strip | grep -a '^---   gdb: ' | sed 's/^---   gdb: /  gdb: /' | head -n 12
last_busy=$(strip | grep -a '^--- busy: pid ' | tail -n 1)
still=$(echo "$last_busy" | sed -nE "s/^--- busy: pid $pid \(.*\) state .*, ([0-9]+)% .*/\1/p")
if [ -z "$still" ] || [ "$still" -lt 50 ]; then
  echo "but the last beat before the stall saw it idle: ${last_busy:-no beat}"
  exit 1
fi

# symbol FILE VADDR: the symbol holding VADDR in FILE (its own table, else the dynamic one)
symbol() {
  local opt
  for opt in "" "-D"; do
    nm $opt -S --defined-only "$1" 2>/dev/null | awk -v at="$2" '
      function hex(h,   i, v) { v = 0; h = tolower(h)
        for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
        return v }
      NF == 4 { a = hex($1); s = hex($2)
                if (at >= a && at < a + s) { printf "%s+0x%x\n", $4, at - a; found = 1; exit } }
      END { exit !found }' && return 0
  done
  return 1
}
ripin=0; rips=0
for rip in $(sed -n '/^=== STALL/,$p' "$LOG" | sed -nE 's/^RIP=([0-9a-fA-F]+) .*/\1/p'); do
  # Above user space: dom0's kernel or Xen (a process in a system call).
  if [ ${#rip} -ge 16 ] && [ "${rip:0:4}" != 0000 ]; then
    echo "  RIP $rip: in dom0's kernel or in Xen"
    continue
  fi
  rips=$((rips + 1))
  where=$(strip | grep -a "^--- map $pid " | while read -r _ _ _ range off path; do
    lo=$((16#${range%-*})); hi=$((16#${range#*-})); r=$((16#$rip))
    if [ $r -ge $lo ] && [ $r -lt $hi ]; then
      vaddr=$(( r - lo + 16#$off ))
      sym=""
      for dir in "$@"; do
        [ -f "$dir$path" ] && sym=$(symbol "$dir$path" $vaddr) && break
      done
      printf '%s+0x%x%s\n' "$path" $vaddr "${sym:+ ($sym)}"
      break
    fi
  done)
  if [ -n "$where" ]; then ripin=$((ripin + 1)); echo "  RIP $rip: in pid $pid, $where"
  else echo "  RIP $rip: not in pid $pid's code"; fi
done
case "$comm" in
  lockstep*) echo "that is lockstep itself spinning"; exit 1;;
esac
if [ $rips -gt 0 ] && [ $ripin = 0 ]; then
  echo "but the emulated CPU was not in its code: the stall is not explained by it"
  exit 1
fi
echo "not lockstep: pid $pid ($comm) spun (under TCG a corrupted dom0 process does)"
exit 0
