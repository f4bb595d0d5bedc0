#!/usr/bin/env bash
# scripts/xen/run.sh [test|sample|bench|prefetch] - `make test-xen` / `make
# test`'s xen_nested / `make bench-xen`: build dom0's image with lockstep inside, boot
# Xen 4.17 under QEMU (TCG), run test/xen/suite.sh (or bench.sh) in dom0 and
# report its result.
#
# sample: the suite's parts every run takes (each guest type's save and
# restore with xl and Xen's verifier, PVH live migration, Remus) and one of
# the others (pv-roundtrip, pv-faults, pvh-roundtrip) chosen by
# $LOCKSTEP_XEN_SEED (printed; the clock by default), so that `make test`
# stays within its minutes and successive runs take every part.
# $LOCKSTEP_XEN_PARTS names the parts outright (test/xen/suite.sh's PARTS).
# prefetch: start setup.sh in the background when the image is not cached
# (make test, before it builds); a run that follows waits for it.
#
# test: all of it (lock, image, build, boots) within $LOCKSTEP_XEN_BUDGET
# seconds (560: `make test` runs it alongside the other tests and must stay
# well under 15 minutes; under the ctest timeout); exit 0 passed, 1 failed.
# One try; a retry only after a try that failed with signs of the emulator
# corrupting dom0 (it is occasionally flaky under load), and only when the
# budget left still holds a whole try ($LOCKSTEP_XEN_TRY, 240 s: a boot and
# the suite on a quiet host take about 210). When no try could finish for
# those reasons (corruption, or the budget running out while the suite was
# still making progress, with no FAIL), the result is "skipped: inconclusive".
# A boot whose suite prints nothing
# for $LOCKSTEP_XEN_STALL seconds (150) is hung (under TCG a dom0 process is
# now and then corrupted and spins): dom0's heartbeat lines ("---", each 20 s,
# with what the suite runs and which process used the CPU) and the emulated
# CPU's registers are in its log, and it is ended. scripts/xen/stall.sh says
# which process spun and where; the try counts as the emulator's only when
# that was not lockstep.
# A machine that cannot run it (not root, no QEMU or Debian mirror, too little
# memory, or LOCKSTEP_XEN_NESTED=0) gets "skipped: why" and exit 77.
# The image caches in $LOCKSTEP_XEN_WORK (/var/tmp/lockstep-xen); lockstep is
# built for dom0 in $LOCKSTEP_XEN_BUILD (build-xen-dom0, optimised, with symbols).
set -uo pipefail
MODE=${1:-test}
PARTS=${LOCKSTEP_XEN_PARTS:-}
if [ "$MODE" = sample ]; then
  MODE=test
  if [ -z "$PARTS" ]; then
    SEED=${LOCKSTEP_XEN_SEED:-$(date +%s)}
    extras=(pv-roundtrip pv-faults pvh-roundtrip)
    PARTS=pv-interop+pvh-interop+pvh-migrate+pvh-remus+${extras[$((SEED % ${#extras[@]}))]}
    echo "nested Xen: a sample of the suite (seed $SEED): $PARTS; make test-xen runs it all," \
         "LOCKSTEP_XEN_SEED=$SEED replays this one"
  fi
fi
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export LOCKSTEP_XEN_WORK=${LOCKSTEP_XEN_WORK:-/var/tmp/lockstep-xen}
W=$LOCKSTEP_XEN_WORK
BUILD=${LOCKSTEP_XEN_BUILD:-$SRC/build-xen-dom0}
BUDGET=${LOCKSTEP_XEN_BUDGET:-560}
TRY=${LOCKSTEP_XEN_TRY:-240}
STALL=${LOCKSTEP_XEN_STALL:-150}
skip() { echo "skipped: nested Xen $MODE: $*"; exit 77; }

[ "${LOCKSTEP_XEN_NESTED:-1}" != 0 ] || skip "LOCKSTEP_XEN_NESTED=0"
[ "$(id -u)" = 0 ] || skip "needs root (it installs QEMU and debootstraps a dom0)"
[ "$(uname -m)" = x86_64 ] || skip "needs an x86_64 host"
[ ! -e /dev/xen/privcmd ] || skip "this host is itself a Xen dom0"
avail=$(awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo)
[ "$avail" -ge 5000 ] || skip "needs 5 GiB of free memory for the emulated machine (${avail} MiB free)"
mkdir -p "$W"
if [ "$MODE" = prefetch ]; then
  # make test: the image's set-up (downloads and a debootstrap, minutes on a
  # fresh machine) starts while the tests build; xen_nested waits for it.
  [ -e "$W/base.cpio.v2" ] && exit 0
  setsid bash -c 'exec 9>"$1/lock"; flock -n 9 || exit 0; echo $$ > "$1/prefetch.pid"
    timeout 900 bash "$2/scripts/xen/setup.sh" > "$1/setup.log" 2>&1; rm -f "$1/prefetch.pid"' \
    _ "$W" "$SRC" < /dev/null > /dev/null 2>&1 &
  echo "nested Xen: setting up its image in the background while the tests build ($W/setup.log)"
  exit 0
fi
t0=$SECONDS
# The set-up make test started (above) holds the lock: waited for in full.
if [ -s "$W/prefetch.pid" ] && kill -0 "$(cat "$W/prefetch.pid" 2>/dev/null)" 2>/dev/null; then
  echo "nested Xen: waiting for the image set-up make test started ($W/setup.log)"
  while kill -0 "$(cat "$W/prefetch.pid" 2>/dev/null)" 2>/dev/null && [ $((SECONDS - t0)) -lt "$BUDGET" ]; do
    sleep 1
  done
fi
# One nested boot at a time on this machine: it is heavy. Waiting for another
# run (itself minutes long) would leave no budget for this one's try.
exec 9>"$W/lock"
lock_wait=$(( BUDGET - TRY - 120 )); [ $lock_wait -gt 0 ] || lock_wait=1
[ "$MODE" = bench ] && lock_wait=900
flock -w "$lock_wait" 9 || skip "another nested Xen run held $W/lock for $lock_wait s (no budget left for a try)"
echo "nested Xen: preparing the dom0 image in $W, building lockstep for dom0 in $BUILD"
# The build (CPU) runs while setup waits on the mirror.
{ cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKSTEP_TESTS=OFF &&
  cmake --build "$BUILD" -j2 --target lockstep lockstep-xen-helper lockstep-xen-mkdomain; } > "$W/build.log" 2>&1 &
build_pid=$!
setup_tmo=$BUDGET; [ "$MODE" = bench ] && setup_tmo=600
timeout "$setup_tmo" bash "$SRC/scripts/xen/setup.sh" > "$W/setup.log" 2>&1
rc=$?
wait $build_pid; build_rc=$?
if [ $rc -eq 3 ] || [ $rc -eq 124 ]; then
  tail -n 3 "$W/setup.log"
  skip "cannot fetch Debian's Xen, kernel or dom0 packages (is the Debian mirror reachable?)"
elif [ $rc -ne 0 ]; then
  tail -n 20 "$W/setup.log"; echo "0 passed, 1 failed"; exit 1
fi
[ $build_rc -eq 0 ] || { tail -n 20 "$W/build.log"; echo "0 passed, 1 failed"; exit 1; }
bash "$SRC/scripts/xen/mkimage.sh" "$BUILD" "$W/dom0.cpio" ||
  { echo "0 passed, 1 failed"; exit 1; }
echo "nested Xen: image ready after $((SECONDS - t0)) s"

# monitor CMD: ask the emulated machine's QEMU monitor (its answer on stdout).
monitor() {
  python3 - "$W/qemu-mon.sock" "$1" <<'PY' 2>&1
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
time.sleep(0.3); s.recv(65536)
s.sendall(sys.argv[2].encode() + b"\n"); time.sleep(1)
print(s.recv(1 << 20).decode(errors="replace"))
PY
}
# boot_once LOG TMO ARGS...: one boot, ended early when its console stalls.
boot_once() {
  local log=$1 tmo=$2; shift 2
  rm -f "$log"
  set -m   # the boot in a process group of its own, to end it whole
  QEMU_MONITOR="$W/qemu-mon.sock" TMO=$tmo bash "$SRC/scripts/xen/boot.sh" "$log" "$W/dom0.cpio" "$@" &
  local pid=$!
  set +m
  local start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    [ -e "$log" ] || continue
    # Lines are stamped with seconds since the boot; dom0's heartbeat ("---")
    # does not count as progress.
    local last=$(grep -av '^ *[0-9]* ---' "$log" | tail -n 1 | awk '{print $1 + 0}')
    local quiet=$(( SECONDS - start - ${last:-0} ))
    if [ "$quiet" -ge "$STALL" ] && kill -0 "$pid" 2>/dev/null; then
      { echo "=== STALL: no progress on the console for $quiet s; where the emulated CPU is:"
        for i in 1 2 3; do monitor "info registers" | grep -aE '^(RIP|RSP|CR3|CS )'; sleep 1; done
      } >> "$log"
      monitor quit > /dev/null; sleep 2
      kill -- -"$pid" 2>/dev/null
      break
    fi
  done
  wait "$pid"
}

# Signs that the emulated machine corrupted its own processes' memory (seen
# under TCG on a loaded host: system tools crash as well as lockstep). A try
# that fails with them tested the emulator, not lockstep. (Looked for in
# dom0's heartbeat lines too, "--- stderr:" its tools crashing and "---
# killed" a tool it found spinning at its start or a lockstep asleep for
# good in a libc lock at its start, and in the suite's notes of
# a dom0 tool's core dump, but not in the backtrace of a spinning process,
# which may name malloc.)
CORRUPTION='Segmentation fault|Inconsistency detected by ld\.so|undefined symbol|malloc\(\)|free\(\)|corrupted size|double free or corruption|a dom0 tool crashed|before its main\(\), in the libraries|spinning in setlocale.s lock at its start|asleep for good in one of libc.s own locks at its start'
# The suite's line for a lockstep process that crashed in lockstep's code
# (test/xen/suite.sh, crashes()): which process, which signal, where.
LS_CRASH='^ *[0-9]+ FAIL - (lockstep|lockstep-xen-helper) \(pid [0-9]+.*\) died of SIG'

tries=2; [ "$MODE" = bench ] && tries=1
line=""; rc=""; clean_failures=0; signs=""
for try in $(seq $tries); do
  left=$((BUDGET - (SECONDS - t0)))
  [ "$MODE" = bench ] && left=${LOCKSTEP_XEN_BENCH_TMO:-1200}
  # The first try takes what is left (a slow host may still finish); a retry
  # only a whole try: a retry cut short by the budget proves nothing either.
  need=150; [ "$try" -gt 1 ] && need=$TRY
  if [ $left -lt $need ]; then
    echo "nested Xen: no time left for try $try ($left s of the ${BUDGET} s budget, a try needs $need)"
    [ "$try" -gt 1 ] || signs="$signs no time left for a try after the image ($left s)."
    break
  fi
  LOG=$W/$MODE-$try.log; logs="${logs:-} $LOG"
  echo "nested Xen: try $try, booting (log: $LOG, at most $left s)"
  boot_once "$LOG" "$left" "MODE=$MODE" ${PARTS:+"PARTS=$PARTS"}
  grep -aE '^ *[0-9]+ (ok  |FAIL|known-failure|skipped|bench|===|  lockstep|  )' "$LOG" | grep -av 'GUEST-TICK' || true
  rc=$(sed -n 's/.*=== SUITE-EXIT rc=\([0-9]*\) .*/\1/p' "$LOG" | tail -n 1)
  line=$(sed -n 's/^ *[0-9]* \([0-9]* passed, [0-9]* failed\)$/\1/p' "$LOG" | tail -n 1)
  [ "$rc" = 0 ] && break
  echo "nested Xen: try $try failed (suite rc=${rc:-none}); last serial lines:"
  tail -n 25 "$LOG"
  echo "nested Xen: dom0's last heartbeat lines:"
  grep -a '^ *[0-9]* ---' "$LOG" | tail -n 12
  seen=$(grep -avE '^ *[0-9]+ (ok  |FAIL|  lockstep|---   gdb: )' "$LOG" | grep -aE "$CORRUPTION" | head -n 3)
  # A stall is the emulator's only when dom0's heartbeat named another
  # process spinning up to it, with the emulated CPU in that process's code
  # (scripts/xen/stall.sh); a lockstep that spins, or hangs blocked with
  # nothing spinning, is a failure.
  # A lockstep that crashed in its own code failed, whatever else the
  # emulator did in that boot: said first, and no retry hides it.
  crashed=$(grep -aE "$LS_CRASH" "$LOG" | sed 's/^ *[0-9]* FAIL - //')
  if [ -n "$crashed" ]; then
    echo "nested Xen: try $try: lockstep crashed:"
    echo "$crashed" | sed 's/^/  /'
    clean_failures=$((clean_failures + 1))
    break
  fi
  if grep -aq '^=== STALL' "$LOG"; then
    why=$(bash "$SRC/scripts/xen/stall.sh" "$LOG" "$W/rootfs" "$W/overlay"); stall_rc=$?
    echo "nested Xen: try $try stalled; dom0's heartbeat says:"
    echo "$why" | sed 's/^/  /'
    if [ $stall_rc = 0 ]; then
      seen="${seen:+$seen
}$(echo "$why" | tail -n 1), no console output for $STALL s"
    fi
  fi
  if [ -n "$seen" ]; then
    echo "nested Xen: try $try shows memory corruption inside the emulated machine:"
    echo "$seen"
    signs="$signs try $try: $(echo "$seen" | head -n 1 | sed 's/^ *[0-9]* //')."
  elif grep -aq 'QEMU-EXIT rc=124' "$LOG" && ! grep -aq '^=== STALL' "$LOG" &&
       ! grep -aqE '^ *[0-9]+ FAIL' "$LOG" &&
       [ $(( $(sed -n 's/^\([0-9]*\) QEMU-EXIT.*/\1/p' "$LOG" | tail -n 1) -
             $(grep -av '^ *[0-9]* ---' "$LOG" | grep -av 'QEMU-EXIT' | tail -n 1 | awk '{print $1 + 0}') )) -lt 60 ]; then
    # The budget ran out while the suite still made progress (a console line
    # in its last minute) and nothing had failed: a slow (loaded) host, no
    # verdict on lockstep. A suite quiet for longer may be a stuck lockstep:
    # that is a failure.
    echo "nested Xen: try $try ran out of the ${BUDGET} s budget with the suite still making progress, nothing failed so far"
    signs="$signs try $try: out of time after $((SECONDS - t0)) s, nothing failed so far."
  else
    clean_failures=$((clean_failures + 1))
  fi
done
echo "nested Xen: $((SECONDS - t0)) s in all"
if [ "$MODE" = bench ]; then [ "$rc" = 0 ]; exit $?; fi
killed=$(cat $logs /dev/null | grep -a -- '--- killed pid' | sed 's/^ *[0-9]* --- killed //')
[ -z "$killed" ] || echo "nested Xen: the heartbeat killed dom0 tools stuck at their start (the emulator's corruption, not lockstep): $killed"
echo "${line:-0 passed, 1 failed}"
[ "$rc" = 0 ] && exit 0
# Every try failed on a machine that corrupted itself: no verdict on lockstep
# either way, said plainly (the FAIL lines are above). A try that failed
# without such signs is a failure.
if [ "$clean_failures" = 0 ] && [ -n "$signs" ]; then
  skip "inconclusive: no try could finish on this host ($signs) Run make test-xen again on a quieter host."
fi
exit 1
