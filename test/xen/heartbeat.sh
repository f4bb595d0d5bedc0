#!/bin/bash
# test/xen/heartbeat.sh SUITE_PID [SECONDS] - dom0's heartbeat (dom0-init
# starts it beside the suite): every SECONDS (20) a "---" line on the console,
# which run.sh does not count as the suite's progress, says dom0 still lives,
# what the suite runs and for how long, so a hang says where the suite is
# stuck. It ends when the suite has.
#
# Under TCG a dom0 process is now and then corrupted at its start and spins
# for ever in libc (pthread_rwlock_wrlock called from setlocale: seen in grep,
# tail, timeout, sleep). So:
# - each beat names the process that used the CPU since the last one; one that
#   kept it busy for two beats in a row (40 s or more: well inside run.sh's
#   150 s stall limit; busy: half the CPU, or never a voluntary context switch
#   since the beat before) gets its code mappings (run.sh places the emulated
#   CPU's RIP in them, scripts/xen/stall.sh), its threads' states and, unless
#   it is lockstep (gdb would stop it mid-operation), gdb's backtrace, once;
# - a spinner that the suite started (directly or not), that is not lockstep
#   and whose backtrace is that spin at its start is killed ("--- killed pid
#   ..."): it has done no work yet and waits on nobody, and the suite, stuck
#   behind it, goes on (run.sh counts the try as one the emulator corrupted);
# - the beat itself runs on bash builtins (its pause is a read with a time
#   limit, /proc is read with read), and the tools it starts (xl, gdb) are
#   killed after $HEARTBEAT_TOOL_LIMIT s (10): a tool that spins or hangs (a
#   hung xenstored blocks xl list) must not silence the beat that would tell
#   of it. In the run of 2026-12-02 the old beat (sleep, awk, cat, ps) fell
#   silent at a stall whose CPU was in that same libc spin.
# A lockstep process running for long gets its threads' states (blocked:
# where it waits). One with a single thread asleep on a futex for two beats
# waits for good (no other thread of it can wake it): gdb's backtrace once,
# and if that wait is in a pthread rwlock (lockstep takes none; libc's own
# locale and message-catalogue locks are rwlocks), it is the same corruption
# asleep instead of spinning, and it is killed. The 2026-12-02 make test saw
# one: `lockstep save` at its start, one thread in futex_wait for 150 s.
suite=$1; BEAT=${2:-20}
LIMIT=${HEARTBEAT_TOOL_LIMIT:-10}
# Only processes under this one are looked at (dom0: all of them). A test on a
# shared host sets it to itself, so the host's own busy processes stay out.
SCOPE=${HEARTBEAT_SCOPE:-1}
HZ=100   # USER_HZ: /proc's clock ticks on every Linux architecture we boot

# A pipe nobody writes: `read -t` on it is a sleep without a process. Where
# that cannot be had (no /dev/fd), sleep; never a pause that returns at once.
if exec 7<> <(:); then
  pause() { read -r -t "$1" <&7; (( $? > 128 )) || sleep "$1"; }
else
  pause() { sleep "$1"; }
fi

running() {  # running PID: it exists and is not a zombie
  local l
  read -r l 2>/dev/null < "/proc/$1/stat" || return 1
  l=${l##*\) }
  [ "${l%% *}" != Z ]
}

# bounded SECS CMD...: CMD's output, for up to SECS seconds; then CMD is killed
# and a line says so.
bounded() {
  local secs=$1 line end pid; shift
  exec 8< <(exec "$@" 2>&1)
  pid=$!
  end=$((SECONDS + secs))
  while (( SECONDS < end )); do
    if IFS= read -r -t 1 line <&8; then printf '%s\n' "$line"
    elif (( $? <= 128 )); then break; fi   # end of its output (a timeout is > 128)
  done
  # Its output ended as it exits; a zombie not yet reaped is not running.
  while (( SECONDS < end )) && running "$pid"; do pause 0.1; done
  local rc=0
  if running "$pid"; then
    kill -9 "$pid" 2>/dev/null
    echo "--- $1 did not finish within $secs s: killed"
    rc=124
  else
    wait "$pid" 2>/dev/null; rc=$?
  fi
  exec 8<&-
  return $rc
}

# stat_fields PID: the fields of /proc/PID/stat after the command name (state
# first) in the array F, and the name (spaces as _) in COMM.
stat_fields() {
  local l
  read -r l 2>/dev/null < "/proc/$1/stat" || return 1
  COMM=${l#*\(}; COMM=${COMM%\) *}; COMM=${COMM// /_}
  read -r -a F <<< "${l##*\) }"
}

declare -A TICKS_BEFORE TICKS_NOW PPID_OF
# One pass over /proc per beat (under TCG each costs the CPU a second): every
# process's CPU ticks so far in TICKS_NOW, the uptime in UP_NOW, what the
# suite runs in CHILDREN ("pid:start ticks") and lockstep's processes in
# LOCKSTEPS (the same).
sample() {
  local f pid
  TICKS_NOW=(); CHILDREN=(); LOCKSTEPS=(); PPID_OF=()
  read -r UP_NOW _ < /proc/uptime
  for f in /proc/[0-9]*; do
    pid=${f#/proc/}
    stat_fields "$pid" || continue
    PPID_OF[$pid]=${F[1]}
    TICKS_NOW[$pid]=$(( F[11] + F[12] ))
    [ "${F[1]}" = "$suite" ] && CHILDREN+=("$pid:${F[19]}")
    case "$COMM" in lockstep|lockstep-xen-he) LOCKSTEPS+=("$pid:${F[19]}");; esac
  done
}

under() {  # under PID ANCESTOR: PID is ANCESTOR or one of its descendants
  local p=$1 n=0
  while [ -n "$p" ] && [ "$p" != 0 ] && (( n++ < 64 )); do
    [ "$p" = "$2" ] && return 0
    p=${PPID_OF[$p]}
  done
  return 1
}

vswitches() {  # vswitches PID: its voluntary context switches so far (builtins only)
  local k v
  while read -r k v; do
    [ "$k" = voluntary_ctxt_switches: ] && { echo "$v"; return; }
  done 2>/dev/null < "/proc/$1/status"
}

threads() {  # threads PID LABEL: each thread's state, kernel wait point and system call
  local t w s
  for t in /proc/$1/task/*; do
    stat_fields "$1/task/${t##*/}" || continue
    w=""; s=""
    read -r w 2>/dev/null < "$t/wchan"
    read -r s _ 2>/dev/null < "$t/syscall"
    echo "--- $2 thread ${t##*/}: ${F[0]} wchan=${w:-?} syscall=${s:-?}"
  done
}

cmdline() {  # cmdline PID: its arguments, space-separated, at most 100 characters
  local -a a
  mapfile -d '' -t a 2>/dev/null < "/proc/$1/cmdline"
  local s="${a[*]}"
  printf '%s' "${s:0:100}"
}

children() {  # what the suite runs: "seconds running, command line" per child
  local c
  for c in "${CHILDREN[@]}"; do
    printf -- '--- %9d %s\n' $(( ${UP_NOW%.*} - ${c#*:} / HZ )) "$(cmdline "${c%%:*}")"
  done
}

backtrace() {  # backtrace PID: gdb's backtrace of every thread in BT, its frames printed
  local n=0 line
  BT=$(bounded 90 gdb -p "$1" -batch -ex 'thread apply all bt 12')
  while IFS= read -r line; do
    [[ $line == '#'* || $line == Thread* ]] || continue
    (( n++ < 30 )) && echo "---   gdb: $line"
  done <<< "$BT"
}

spinner() {  # spinner PID COMM STREAK: what a process that kept the CPU busy shows
  local pid=$1 comm=$2 range perms off dev inode path
  echo "--- spinning: pid $pid ($comm) kept the CPU busy for $3 beats; its code mappings, threads and stack:"
  while read -r range perms off dev inode path; do
    [ "$perms" = r-xp ] && echo "--- map $pid $range $off $path"
  done 2>/dev/null < "/proc/$pid/maps"
  threads "$pid" "spinning pid $pid"
  case "$comm" in lockstep*) return;; esac
  backtrace "$pid"
  # The emulator's spin: at its start, in setlocale's lock. Nothing waits on
  # what it has not begun; the suite waits on it.
  if [[ $BT == *pthread_rwlock_wrlock*setlocale* ]] && under "$pid" "$suite"; then
    kill -9 "$pid" 2>/dev/null &&
      echo "--- killed pid $pid ($comm): spinning in setlocale's lock at its start (the emulator's corruption)"
  fi
}

asleep_for_good() {  # asleep_for_good PID: its only thread waits on a futex
  local t n=0 w=""
  for t in /proc/$1/task/*; do n=$((n + 1)); done
  (( n == 1 )) || return 1
  read -r w 2>/dev/null < "/proc/$1/wchan"
  [[ $w == futex* ]]
}

asleep() {  # asleep PID COMM: a lockstep asleep for good, for two beats
  local pid=$1 comm=$2
  echo "--- asleep: pid $pid ($comm) has one thread, waiting on a futex for two beats: nothing in it can wake it; its stack:"
  backtrace "$pid"
  if [[ $BT == *pthread_rwlock_* ]] && under "$pid" "$suite"; then
    kill -9 "$pid" 2>/dev/null &&
      echo "--- killed pid $pid ($comm): asleep for good in one of libc's own locks at its start (the emulator's corruption)"
  fi
}

heartbeat() {
  local last="" last_vcs="" vcs streak=0 dumped=" " up_before up pid best busy_pid secs pct l1 l5 l15 doms p
  local -A asleep_beats
  sample
  up_before=$UP_NOW
  for pid in "${!TICKS_NOW[@]}"; do TICKS_BEFORE[$pid]=${TICKS_NOW[$pid]}; done
  while kill -0 "$suite" 2>/dev/null; do
    pause "$BEAT"
    kill -0 "$suite" 2>/dev/null || break
    read -r l1 l5 l15 _ < /proc/loadavg
    read -r up _ < /proc/uptime
    if doms=$(bounded "$LIMIT" xl list); then
      doms=$(printf '%s\n' "$doms" | { read -r _; while read -r name _ _ _ st _; do printf '%s:%s ' "$name" "$st"; done; })
    else doms="(xl list failed or did not answer within $LIMIT s: xenstored?)"; fi
    echo "--- alive uptime=$up load=$l1 $l5 $l15 domains=$doms"
    sample
    children
    # The busiest process since the last beat, and its share of the CPU.
    best=0; busy_pid=""
    for pid in "${!TICKS_NOW[@]}"; do
      [ -n "${TICKS_BEFORE[$pid]+x}" ] || continue
      [ "$SCOPE" = 1 ] || under "$pid" "$SCOPE" || continue
      if (( TICKS_NOW[$pid] - TICKS_BEFORE[$pid] > best )); then
        best=$(( TICKS_NOW[$pid] - TICKS_BEFORE[$pid] )); busy_pid=$pid
      fi
    done
    secs=$(( (${UP_NOW/./} - ${up_before/./}) ))   # hundredths of a second
    TICKS_BEFORE=()
    for pid in "${!TICKS_NOW[@]}"; do TICKS_BEFORE[$pid]=${TICKS_NOW[$pid]}; done
    up_before=$UP_NOW
    if [ -n "$busy_pid" ] && (( secs > 0 )) && stat_fields "$busy_pid"; then
      pct=$(( best * 100 * 100 / (secs * HZ) ))
      p=""; (( pct >= 50 )) && p=$(cmdline "$busy_pid")
      echo "--- busy: pid $busy_pid ($COMM) state ${F[0]}, $pct% of the CPU since the last beat${p:+: $p}"
      # Hot: half the CPU or more, or (the same process as at the last beat)
      # not one voluntary context switch since: it never waited, whatever
      # share a loaded machine left it (a host running the suite's test).
      vcs=$(vswitches "$busy_pid")
      if (( pct >= 50 )) || { [ "$busy_pid" = "$last" ] && [ -n "$vcs" ] && [ "$vcs" = "$last_vcs" ]; }; then
        if [ "$busy_pid" = "$last" ]; then streak=$((streak + 1)); else streak=1; fi
      else streak=0; fi
      last=$busy_pid; last_vcs=$vcs
      if (( streak >= 2 )) && [[ $dumped != *" $busy_pid "* ]]; then
        dumped="$dumped$busy_pid "
        spinner "$busy_pid" "$COMM" "$streak"
      fi
    fi
    for p in "${LOCKSTEPS[@]}"; do
      [ "$SCOPE" = 1 ] || under "${p%%:*}" "$SCOPE" || continue
      pid=${p%%:*}
      (( ${UP_NOW%.*} - ${p#*:} / HZ >= 2 * BEAT )) || continue
      threads "$pid" "lockstep pid $pid ($(read -r c 2>/dev/null < "/proc/$pid/comm"; echo "$c"))"
      if asleep_for_good "$pid"; then
        asleep_beats[$pid]=$(( ${asleep_beats[$pid]:-0} + 1 ))
      else
        asleep_beats[$pid]=0
      fi
      if (( asleep_beats[$pid] >= 2 )) && [[ $dumped != *" $pid "* ]]; then
        dumped="$dumped$pid "
        asleep "$pid" "$(read -r c 2>/dev/null < "/proc/$pid/comm"; echo "$c")"
      fi
    done
  done
}
# Whatever the beat's own tools say on stderr (under TCG they crash too) is
# a heartbeat line as well: run.sh must not take it for the suite's progress.
heartbeat 2>&1 | while IFS= read -r l; do
  case "$l" in ---*) echo "$l";; *) echo "--- stderr: $l";; esac
done
