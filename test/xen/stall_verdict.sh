#!/usr/bin/env bash
# test/xen/stall_verdict.sh - scripts/xen/stall.sh, which decides whether a
# nested Xen boot that stalled tested lockstep or the emulator: given dom0's
# heartbeat lines (test/xen/heartbeat.sh's format) and the emulated CPU's
# RIPs, it excuses the stall (exit 0) only when a process that is not
# lockstep spun up to it with the CPU in that process's code. A lockstep that
# spins, a lockstep blocked with nothing spinning, a spinner that stopped
# before the stall, or a CPU outside the spinner's code are failures (exit 1).
# The logs below are shaped like a real stall's (the RIPs and libc offsets of
# the 2026-12-02 one); the heartbeat's own output on this host is checked too.
set -uo pipefail
: "${LOCKSTEP_SOURCE_DIR:?}"
STALL=$LOCKSTEP_SOURCE_DIR/scripts/xen/stall.sh
HEARTBEAT=$LOCKSTEP_SOURCE_DIR/test/xen/heartbeat.sh
WORK=$(mktemp -d /tmp/lockstep-stall.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT
PASSED=0 FAILED=0
ok()   { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

LIBC=/usr/lib/x86_64-linux-gnu/libc.so.6
# log NAME PID COMM LAST_PERCENT RIP...: a stalled boot's log whose heartbeat
# saw PID (COMM) spin, ending with a beat at LAST_PERCENT and the given RIPs.
log() {
  local name=$1 pid=$2 comm=$3 last=$4; shift 4
  {
    echo "  40 === pv-RESTORE-INTO-GIVEN tick=29 uptime=121.16 ==="
    echo "  45 --- alive uptime=124.00 load=1.40 0.54 0.20 domains=Domain-0:r----- gpv:-b---- "
    echo "  45 ---         5 timeout 300 /opt/lockstep/bin/lockstep save --domain gpv -o /root/gpv.xl"
    for t in 46 68 92; do
      echo "  $t --- busy: pid $pid ($comm) state R, 97% of the CPU since the last beat: $comm 300"
    done
    echo "  92 --- spinning: pid $pid ($comm) kept the CPU busy for 2 beats; its code mappings, threads and stack:"
    echo "  92 --- map $pid 55d0e0a01000-55d0e0a05000 00002000 /usr/bin/$comm"
    echo "  92 --- map $pid 7fa21a3f1000-7fa21a546000 00026000 $LIBC"
    echo "  92 --- spinning pid $pid thread $pid: R wchan=0 syscall=running"
    echo " 114 --- busy: pid $pid ($comm) state R, $last% of the CPU since the last beat: $comm 300"
    echo "=== STALL: no progress on the console for 150 s; where the emulated CPU is:"
    for rip in "$@"; do
      echo "RIP=$rip RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0"
    done
    echo " 205 QEMU-EXIT rc=0"
  } > "$WORK/$name.log"
}
# verdict NAME WANT_RC TEXT WHAT: stall.sh on NAME's log exits WANT_RC and says TEXT.
verdict() {
  local out rc
  out=$(bash "$STALL" "$WORK/$1.log" /); rc=$?
  if [ "$rc" = "$2" ] && echo "$out" | grep -q "$3"; then ok "$4"
  else fail "$4: exit $rc (want $2), said:"; echo "$out" | sed 's/^/    /'; fi
}

# 1. The stall of the 2026-12-02 run: `timeout` (lockstep's wrapper, started
# just before) spinning in libc's rwlock retry loop. The emulator's.
log timeout 812 timeout 96 00007fa21a45a3b0 00007fa21a45a345
verdict timeout 0 "not lockstep: pid 812 (timeout)" "a spinning timeout with the CPU in its libc is the emulator's"
out=$(bash "$STALL" "$WORK/timeout.log" /)
if echo "$out" | grep -q "RIP 00007fa21a45a3b0: in pid 812, $LIBC+0x8f3b0"; then
  ok "the RIP is placed in the spinner's libc at its file offset"
else fail "RIP placement: $out"; fi
# 2. The same spin in lockstep itself: a failure, whatever the cause.
log lockstep 900 lockstep 96 00007fa21a45a3b0
verdict lockstep 1 "lockstep itself" "a spinning lockstep is a failure"
log helper 901 lockstep-xen-he 99 00007fa21a45a3b0
verdict helper 1 "lockstep itself" "a spinning lockstep-xen-helper is a failure"
# 3. The spinner had stopped before the stall: it does not explain it.
log stopped 812 timeout 3 00007fa21a45a3b0
verdict stopped 1 "idle" "a spinner idle at the last beat does not excuse the stall"
# 4. The emulated CPU was elsewhere (another process's user code).
log elsewhere 812 timeout 97 000055aa00001234
verdict elsewhere 1 "not in its code" "a CPU outside the spinner's code does not excuse the stall"
# A CPU in dom0's kernel or Xen at one sample does not contradict the spinner.
log syscall 812 timeout 97 ffffffff816a17f3 00007fa21a45a3b0
verdict syscall 0 "in dom0's kernel or in Xen" "a RIP in the kernel beside one in the spinner's code still places the CPU there"
# 5. Nothing spun: lockstep blocked (the heartbeat shows its threads asleep).
{
  echo "  45 ---         5 timeout 300 /opt/lockstep/bin/lockstep save --domain gpv -o /root/gpv.xl"
  echo "  67 --- alive uptime=146.10 load=1.02 0.61 0.25 domains=Domain-0:r----- gpv:---s-- "
  echo "  68 --- busy: pid 77 (xenstored) state S, 2% of the CPU since the last beat: xenstored"
  echo "  68 --- lockstep pid 813 (lockstep) thread 813: S wchan=do_epoll_wait syscall=232"
  echo "=== STALL: no progress on the console for 150 s; where the emulated CPU is:"
  echo "RIP=ffff82d040236a5e RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1"
} > "$WORK/blocked.log"
verdict blocked 1 "no process kept" "a blocked lockstep with nothing spinning is a failure"
out=$(bash "$STALL" "$WORK/blocked.log" /)
if echo "$out" | grep -q "last beat at second 67: uptime=146.10" &&
   echo "$out" | grep -q "lockstep pid 813 (lockstep) thread 813: S wchan=do_epoll_wait"; then
  ok "a blocked stall's verdict shows the last beat and where lockstep's threads waited"
else fail "blocked verdict: $out"; fi

# 6. The heartbeat itself, on this host (this script stands in for the
# suite): a beat says what the suite runs, names the busiest process and shows
# a long-running lockstep's threads (state, wait point, system call). A
# spinner whose backtrace is the emulator's spin at a process's start (a gdb
# stand-in prints one) is killed; a spinning lockstep never is. A lockstep
# whose only thread sleeps on a futex (a Python taking its own lock twice
# stands in) is the same corruption asleep: backtrace, then killed; one in an
# ordinary sleep is not. An xl that never answers (a hung xenstored) does not
# stop the beat.
ln -s "$(command -v sleep)" "$WORK/lockstep"
ln -s "$(command -v bash)" "$WORK/spinner"
ln -s "$(command -v bash)" "$WORK/lockstep-busy"
ln -s /usr/bin/python3.11 "$WORK/lockstep-xen-helper"
mkdir "$WORK/bin"
printf '#!/bin/sh\nexec sleep 1000\n' > "$WORK/bin/xl"
printf '#!/bin/sh\necho "Thread 1 (LWP 1 \\"grep\\"):"\necho "#0  0x00007fc2848f6345 in pthread_rwlock_wrlock () from /lib/x86_64-linux-gnu/libc.so.6"\necho "#1  0x00007fc2848992c7 in setlocale () from /lib/x86_64-linux-gnu/libc.so.6"\n' > "$WORK/bin/gdb"
chmod +x "$WORK/bin/xl" "$WORK/bin/gdb"
# The suite stand-in runs a lockstep (a sleep), a spinner, and, once asked, a
# spinning lockstep; the heartbeat sees only this script's processes (the
# host's own busy ones, a nested QEMU among them, are none of its business).
# The spinners run at nice 19: they need not burn a CPU the other tests
# want (a process that never waits is hot whatever its share).
sh -c '"$1" 300 & nice -n 19 "$2" -c "while :; do :; done" &
       "$5" -c "import _thread; l = _thread.allocate_lock(); l.acquire(); l.acquire()" &
       while [ ! -e "$3" ]; do sleep 0.2; done; nice -n 19 "$4" -c "while :; do :; done" & wait' \
   sh "$WORK/lockstep" "$WORK/spinner" "$WORK/go" "$WORK/lockstep-busy" "$WORK/lockstep-xen-helper" 2>/dev/null & suite=$!
PIDS="$suite"
child() {  # child COMM: the suite stand-in's child of that name
  local p
  for _ in $(seq 50); do
    p=$(ps -o pid=,comm= --ppid "$suite" | awk -v c="$1" '$2 == c {print $1}')
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
}
lockstep_pid=$(child lockstep); busy_pid=$(child spinner); sleeper=$(child lockstep-xen-he)
PIDS="$PIDS $lockstep_pid $busy_pid $sleeper"
PATH=$WORK/bin:$PATH HEARTBEAT_TOOL_LIMIT=1 HEARTBEAT_SCOPE=$$ bash "$HEARTBEAT" "$suite" 1 > "$WORK/hb.out" 2>&1 & hb=$!
PIDS="$PIDS $hb"
for _ in $(seq 60); do
  grep -q "^--- lockstep pid $lockstep_pid (lockstep) thread $lockstep_pid: S " "$WORK/hb.out" &&
    grep -q "^--- killed pid $busy_pid " "$WORK/hb.out" &&
    grep -q "^--- killed pid $sleeper " "$WORK/hb.out" && break
  sleep 1
done
sleep 0.5
if grep -q "^--- killed pid $busy_pid (spinner): spinning in setlocale's lock at its start" "$WORK/hb.out" &&
   ! kill -0 "$busy_pid" 2>/dev/null; then
  ok "a spinner the suite started, stuck in setlocale's lock, is named, dumped and killed"
else fail "spinner not killed:"; grep -a -A14 "^--- spinning: pid $busy_pid" "$WORK/hb.out"; fi
if grep -q "^--- asleep: pid $sleeper (lockstep-xen-he) has one thread, waiting on a futex" "$WORK/hb.out" &&
   grep -q "^--- killed pid $sleeper (lockstep-xen-he): asleep for good in one of libc's own locks at its start" "$WORK/hb.out" &&
   ! kill -0 "$sleeper" 2>/dev/null; then
  ok "a lockstep whose one thread sleeps for good in an rwlock is named, dumped and killed"
else fail "lockstep asleep for good:"; grep -a -- "$sleeper" "$WORK/hb.out" | head -n 8; fi
if ! grep -q "^--- \(asleep\|killed\): pid $lockstep_pid " "$WORK/hb.out" && kill -0 "$lockstep_pid" 2>/dev/null; then
  ok "a lockstep in an ordinary sleep is left alone"
else fail "the sleeping lockstep stand-in was taken for one asleep for good"; fi
touch "$WORK/go"; lbusy=$(child lockstep-busy)
PIDS="$PIDS $lbusy"
for _ in $(seq 30); do
  [ "$(grep -c "^--- busy: pid $lbusy " "$WORK/hb.out")" -ge 4 ] && break
  sleep 1
done
if grep -q "^--- spinning: pid $lbusy (lockstep-busy)" "$WORK/hb.out" && kill -0 "$lbusy" 2>/dev/null &&
   ! grep -A40 "^--- spinning: pid $lbusy" "$WORK/hb.out" | grep -q '^---   gdb'; then
  ok "a spinning lockstep is dumped (no gdb) and left running"
else fail "spinning lockstep:"; grep -a -- "$lbusy" "$WORK/hb.out" | head -n 8; fi
if grep -q '^--- \(busy\|spinning\|killed\): pid' "$WORK/hb.out" &&
   ! grep '^--- \(busy\|spinning\|killed\): pid' "$WORK/hb.out" | grep -vq " pid \($busy_pid\|$lbusy\|$lockstep_pid\|$sleeper\|$suite\|$hb\) \| (bash)\| (sleep)\| (sh)"; then
  ok "the heartbeat looked at no process outside its scope"
else fail "out of scope:"; grep '^--- \(busy\|spinning\|killed\): pid' "$WORK/hb.out" | head -n 5; fi
kill "$lbusy"
# The suite ends (its lockstep stand-in is stopped): so does the heartbeat.
kill "$lockstep_pid"
if timeout 60 tail --pid="$hb" -f /dev/null; then ok "the heartbeat ended with the suite"
else fail "the heartbeat outlived the suite"; fi
if grep -q '^--- alive uptime=' "$WORK/hb.out" && grep -q "^---  *[0-9]* $WORK/lockstep 300" "$WORK/hb.out"; then
  ok "the heartbeat says it lives and what the suite runs"
else fail "heartbeat beat:"; head -n 5 "$WORK/hb.out"; fi
if [ "$(grep -c '^--- alive .*xl list failed or did not answer within 1 s' "$WORK/hb.out")" -ge 2 ]; then
  ok "the heartbeat goes on beating when xl hangs, and says so"
else fail "heartbeat with a hung xl:"; head -n 8 "$WORK/hb.out"; fi
if grep -q '^--- busy: pid [0-9]* (.*) state ., [0-9]*% of the CPU' "$WORK/hb.out"; then
  ok "the heartbeat names the busiest process: $(grep -m1 '^--- busy: ' "$WORK/hb.out" | cut -c5-80)"
else fail "heartbeat busy line:"; head -n 8 "$WORK/hb.out"; fi
if grep -q "^--- lockstep pid $lockstep_pid (lockstep) thread $lockstep_pid: S wchan=" "$WORK/hb.out"; then
  ok "the heartbeat shows a long-running lockstep's threads: $(grep -m1 "^--- lockstep pid $lockstep_pid" "$WORK/hb.out" | cut -c5-)"
else fail "heartbeat lockstep threads:"; tail -n 8 "$WORK/hb.out"; fi
if grep -q '^--- gdb did not finish' "$WORK/hb.out"; then
  fail "a gdb that answered at once was taken for one that did not finish"
else ok "a tool that finished is not reported killed"; fi
if grep -q '^--- stderr: ' "$WORK/hb.out"; then
  fail "the heartbeat's tools complained:"; grep '^--- stderr: ' "$WORK/hb.out" | head -n 5
else ok "the heartbeat's own tools said nothing on stderr"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
