#!/bin/sh
# test/xen/heartbeat.sh SUITE_PID [SECONDS] - dom0's heartbeat (dom0-init
# starts it beside the suite): every SECONDS (20) a "---" line on the console,
# which run.sh does not count as the suite's progress, says dom0 still lives,
# what the suite runs and for how long, so a hang says where the suite is
# stuck. Under TCG a dom0 process is now and then corrupted and spins, so
# each beat also names the process that used the CPU since the last one; one
# that kept it busy for two beats in a row (40 s or more: well inside run.sh's
# 150 s stall limit) gets its code mappings (run.sh places the emulated CPU's
# RIP in them, scripts/xen/stall.sh), its threads' states and, unless it is
# lockstep (gdb would stop it mid-operation), gdb's backtrace, once. A
# lockstep process running for long gets its threads' states (blocked: where
# it waits). It ends when the suite has.
suite=$1; BEAT=${2:-20}
T=$(mktemp -d "${TMPDIR:-/tmp}/heartbeat.XXXXXX") || exit 1
sample() {  # "up SECONDS", then "pid ticks state comm" for every process
  read -r up _ < /proc/uptime
  { echo "up $up"; cat /proc/[0-9]*/stat 2>/dev/null; } | awk '
    $1 == "up" { print; next }
    { c = $0; sub(/^[^(]*\(/, "", c); sub(/\) [^)]*$/, "", c); gsub(/ /, "_", c)
      s = $0; sub(/.*\) /, "", s); split(s, f, " "); print $1, f[12] + f[13], f[1], c }'
}
threads() {  # threads PID LABEL: each thread's state, kernel wait point and system call
  for t in /proc/$1/task/*; do
    echo "--- $2 thread ${t##*/}: $(sed 's/.*) //' $t/stat 2>/dev/null | cut -d' ' -f1) wchan=$(cat $t/wchan 2>/dev/null) syscall=$(cut -d' ' -f1 $t/syscall 2>/dev/null)"
  done
}
heartbeat() {
  hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
  # Few processes per beat: under TCG each one started is a chance of being hit.
  prev=$T/a; now=$T/b
  sample > $prev; last=""; streak=0; dumped=" "
  # Ends with the suite (dom0-init powers off then anyway).
  while sleep $BEAT && kill -0 $suite 2>/dev/null; do
    read -r up _ < /proc/uptime; read -r l1 l5 l15 _ < /proc/loadavg
    echo "--- alive uptime=$up load=$l1 $l5 $l15 domains=$(xl list 2>/dev/null | awk 'NR > 1 {printf "%s:%s ", $1, $5}')"
    ps -o etimes=,args= --ppid $suite | sed 's/^/---   /'
    sample > $now
    busy=$(awk -v hz="$hz" '
      FNR == NR { t[$1] = $2; next }
      $1 == "up" { secs = $2 - t["up"]; next }
      ($1 in t) && $2 - t[$1] > best { best = $2 - t[$1]; l = $1 " " $4 " " $3 }
      END { if (best > 0 && secs > 0) print l, int(best * 100 / (secs * hz)) }' $prev $now)
    swap=$prev; prev=$now; now=$swap
    set -- $busy   # pid comm state percent
    if [ $# = 4 ]; then
      cmd=""; [ "$4" -ge 50 ] && cmd=$(tr '\0' ' ' < /proc/$1/cmdline 2>/dev/null | cut -c1-100)
      echo "--- busy: pid $1 ($2) state $3, $4% of the CPU since the last beat${cmd:+: $cmd}"
      if [ "$4" -lt 50 ]; then streak=0; elif [ "$1" = "$last" ]; then streak=$((streak + 1)); else streak=1; fi
      last=$1
      if [ $streak -ge 2 ] && [ "${dumped#* $1 }" = "$dumped" ]; then
        dumped="$dumped$1 "
        echo "--- spinning: pid $1 ($2) kept the CPU busy for $streak beats; its code mappings, threads and stack:"
        grep ' r-xp ' /proc/$1/maps 2>/dev/null | awk -v p=$1 '{ print "--- map", p, $1, $3, $6 }'
        threads $1 "spinning pid $1"
        case "$2" in
          lockstep*) ;;
          *) timeout 90 gdb -p $1 -batch -ex 'thread apply all bt 12' 2>&1 | grep -aE '^(#|Thread)' | head -n 30 | sed 's/^/---   gdb: /';;
        esac
      fi
    fi
    for p in $(ps -C lockstep,lockstep-xen-he -o pid= 2>/dev/null); do
      [ "$(ps -o etimes= -p $p 2>/dev/null | tr -d ' ')" -ge $((2 * BEAT)) ] 2>/dev/null && threads $p "lockstep pid $p ($(cat /proc/$p/comm 2>/dev/null))"
    done
  done
  rm -rf "$T"
}
# Whatever the beat's own tools say on stderr (under TCG they crash too) is
# a heartbeat line as well: run.sh must not take it for the suite's progress.
heartbeat 2>&1 | while IFS= read -r l; do
  case "$l" in ---*) echo "$l";; *) echo "--- stderr: $l";; esac
done
