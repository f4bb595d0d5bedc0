#!/usr/bin/env bash
# The device model under faults. (1) QEMU SIGKILLed before each QMP command of
# a save and of a restore (LOCKSTEP_DM_FAULT_KILL=N), and before a save
# begins: a clear "device model of domain N died" error; the saved guest runs
# again; a restore leaves no domain; no QEMU is left; the daemon holds no fd
# more than before. (2) FSM_FAULT at a seeded sample (DM_FAULT_POINTS, 4;
# all: every one) of the dispatches of an HVM save and restore with a real
# QEMU that concern the device model (its machine, its QMP connection, a DM
# or QEMU state or event, the suspend around it): an action failing there,
# or the owner cancelling there, and a second fault at one seeded dispatch
# of each device-model failure path (DM_FAULT_POINTS=all: every one): clean
# failures, the guest running with its QEMU running, nothing left behind.
# Every row at every such point, against a scripted QEMU, is the in-process
# enumerator's (test/states); the rows taken here count for row_coverage.
# The save sweep and the restore sweep of (2) run at once, each with a sim
# daemon (a host) of its own. A save sweep's run that leaves its guest running
# with its QEMU running (what each run checks) leaves it to the next run, as a
# toolstack would try again on it; any other outcome gets a fresh guest.
# simq.py answers the questions about the daemon's domains and QEMUs.
source "$(dirname "$0")/../integration/lib.sh"
L=$LOCKSTEP_BIN
HERE=$(dirname "$0")
SRC=${LOCKSTEP_SOURCE_DIR:-$HERE/../..}
QMP="python3 $HERE/qmp.py"
export LOCKSTEP_TRACE=1
trace_all=$WORK/trace.all
# The sweeps' daemons too, should this script be stopped before they end.
trap 'for r in "$WORK"/*/run; do [ -d "$r" ] && LOCKSTEP_RUNDIR=$r stop_daemon; done
      stop_daemon; rm -rf "$WORK"' EXIT
# The state of domain $1 ("" when there is none), its QEMU's (as `sim dm`),
# and the QEMU's own run state (query-status) or "dead".
state() { sq state "$1"; [ "$SQ" = none ] || echo "$SQ"; }
dm_state() { sq dm "$1"; echo "$SQ"; }
status() { sq status "$1"; echo "$SQ"; }
qemus() { pgrep -f "qmp unix:$LOCKSTEP_RUNDIR/" | grep -c . || true; }
simd_fds() { ls "/proc/$(cat "$LOCKSTEP_RUNDIR/simd.pid")/fd" | wc -l; }
# The dispatches of a trace that concern the device model.
dm_dispatches() {
  awk '$1 == "fsm" && ($3 == "devmodel" || $3 == "qmp_conn" || $5 $6 $9 ~ /DM|QEMU|SUSPEND/) { print $2 }' "$1"
}
# Second faults: the dispatches of a faulted run on the device model's own
# failure paths (where an action that is not fsm_nop runs): one, seeded.
SEED=${DM_FAULT_SEED:-20261207}
# 4 points: with every point's runs traced, 4 (even 3) took every row 8 did
# that no other producer takes (row_coverage); the rest repeated rows.
DM_FAULT_POINTS=${DM_FAULT_POINTS:-4}
echo "# DM_FAULT_POINTS=$DM_FAULT_POINTS DM_FAULT_SEED=$SEED (set them to replay or widen this run)"
failure_path_dispatches() {
  awk -v k="$2" -v all="${DM_FAULT_POINTS:-}" -v s="$SEED$2" '$1 == "fsm" && $2 > k && $7 != "fsm_nop" &&
    $5 ~ /^(AWAIT_DM_THEN_CANCEL|AWAIT_DM_THEN_DESTROY|CONTINUING_DM|CONTINUING_KEPT_DM|CHECKING_DM)$/ { c[n++] = $2 }
    END { if (all == "all") { for (i = 0; i < n; i++) print c[i] } else if (n) { srand(s); print c[int(rand() * n)] } }' "$1"
}
# sample WORDS...: a seeded DM_FAULT_POINTS (4) of them, in order (all: every one).
sample() {
  if [ "$DM_FAULT_POINTS" = all ]; then echo "$@"; return; fi
  printf '%s\n' "$@" | awk -v m="$DM_FAULT_POINTS" -v s="$SEED" '{ a[n++] = $0 }
    END { srand(s); if (m > n) m = n
          for (i = 0; i < m; i++) { j = i + int(rand() * (n - i)); t = a[i]; a[i] = a[j]; a[j] = t; pick[a[i]] = 1 }
          for (i = 0; i < n; i++) if (pick[a[i]]) print a[i] }' | sort -n | tr '\n' ' '
}
running_hvm() {   # an HVM domain whose QEMU runs: restored from the base save
  "$L" restore -i "$WORK/base.xl" 2>/dev/null | awk '/^domid/ { print $2 }'
}

"$L" save --sim hvm --memory 1M --seed 4 -o "$WORK/base.xl" >/dev/null 2>&1
"$L" sim list >/dev/null   # the daemon runs from here on: its fds are counted
simq_start
sq count
fds0=$(simd_fds)

# ---- (1) QEMU killed at each step -------------------------------------------
steps=(query-status stop add-fd xen-save-devices-state remove-fd)
for n in 1 2 3 4 5; do
  d=$(running_hvm)
  set +e
  LOCKSTEP_DM_FAULT_KILL=$n "$L" save --domid "$d" -o "$WORK/k.xl" >/dev/null 2>"$WORK/err"
  rc=$?
  set -e
  cat "$WORK/err" >>"$trace_all"
  what="save, QEMU killed before ${steps[n-1]}"
  check "$what: exit 1 with \"device model of domain $d died\": $(grep 'lockstep save:' "$WORK/err")" \
    eval "[ $rc = 1 ] && grep -q 'lockstep save: device model of domain $d died: ${steps[n-1]} failed' '$WORK/err'"
  check "$what: the guest runs again" [ "$(state "$d")" = running ]
  check "$what: the dead QEMU is reported" [ "$(dm_state "$d")" = "killed by signal 9 (Killed)" ]
  check "$what: no partial file" [ ! -e "$WORK/k.xl" ]
  sq destroy "$d"
  check "$what: no QEMU left ($(qemus)), no fd left in the daemon ($(simd_fds) fds, $fds0 before)" \
    eval "[ $(qemus) = 0 ] && [ $(simd_fds) = $fds0 ]"
done

# --keep: the sixth command is the cont of the kept guest's QEMU.
d=$(running_hvm)
set +e
LOCKSTEP_DM_FAULT_KILL=6 "$L" save --keep --domid "$d" -o "$WORK/k.xl" >/dev/null 2>"$WORK/err"
rc=$?
set -e
cat "$WORK/err" >>"$trace_all"
check "save --keep, QEMU killed before cont: exit 1: $(grep 'lockstep save:' "$WORK/err")" \
  eval "[ $rc = 1 ] && grep -q 'lockstep save: device model of domain $d died: cont failed' '$WORK/err'"
check "save --keep, QEMU killed before cont: the guest runs on" [ "$(state "$d")" = running ]
sq destroy "$d"

d=$(running_hvm)
sq dmpid "$d"; kill -9 "$SQ"
for _ in $(seq 100); do [ "$(dm_state "$d")" = running ] || break; sleep 0.05; done
if "$L" save --domid "$d" -o "$WORK/k.xl" >/dev/null 2>"$WORK/err"; then
  fail "a save of a domain whose QEMU died succeeded"
else
  check "save of a domain whose QEMU had died: $(grep 'lockstep save:' "$WORK/err")" \
    grep -q "device model of domain $d died: its QEMU (pid [0-9]*) killed by signal 9" "$WORK/err"
  check "... and the guest was never stopped" [ "$(state "$d")" = running ]
fi
sq destroy "$d"

rsteps=(query-status cont)
for n in 1 2; do
  set +e
  LOCKSTEP_DM_FAULT_KILL=$n "$L" restore -i "$WORK/base.xl" >/dev/null 2>"$WORK/err"
  rc=$?
  set -e
  cat "$WORK/err" >>"$trace_all"
  what="restore, QEMU killed before ${rsteps[n-1]}"
  check "$what: exit 1 with \"device model of domain N died\": $(grep 'lockstep restore:' "$WORK/err")" \
    eval "[ $rc = 1 ] && grep -q 'lockstep restore: device model of domain [0-9]* died: ${rsteps[n-1]} failed' '$WORK/err'"
  for j in $(failure_path_dispatches "$WORK/err" 0); do
    set +e
    LOCKSTEP_DM_FAULT_KILL=$n FSM_FAULT=$j:5 "$L" restore -i "$WORK/base.xl" >/dev/null 2>"$WORK/err2"
    rc2=$?
    set -e
    cat "$WORK/err2" >>"$trace_all"
    check "$what, and dispatch $j failing too: exit 1" [ $rc2 = 1 ]
  done
  check "$what: the half domain is destroyed, no QEMU left ($(qemus)), no fd left in the daemon ($(simd_fds) fds, $fds0 before)" \
    eval "[ $(sim_domains) = 0 ] && [ $(qemus) = 0 ] && [ $(simd_fds) = $fds0 ]"
done

# ---- (2) a fault or a cancel at every dispatch ------------------------------
d=$(running_hvm)
"$L" save --domid "$d" -o "$WORK/ok.xl" >/dev/null 2>"$WORK/trace"
cat "$WORK/trace" >>"$trace_all"
save_all=$(dm_dispatches "$WORK/trace")
save_ks=$(sample $save_all)
"$L" restore -i "$WORK/ok.xl" --destroy >/dev/null 2>"$WORK/trace"
cat "$WORK/trace" >>"$trace_all"
rst_all=$(dm_dispatches "$WORK/trace")
rst_ks=$(sample $rst_all)

# kept_or_fresh D: D when it runs with its QEMU running (its one QEMU), else a
# fresh running guest (D destroyed). Checks that no other QEMU is around.
kept_or_fresh() {
  local d=$1 want=0
  if [ -n "$d" ] && [ "$(state "$d")" = running ] && [ "$(status "$d")" = running ]; then
    want=1
  elif [ -n "$d" ]; then
    sq destroy "$d"
  fi
  [ "$(qemus)" = $want ] || { echo "  a QEMU was left: $(qemus) running, $want expected" >&2; return 1; }
  if [ $want = 1 ]; then echo "$d"; else running_hvm; fi
}

save_sweep() {
  local bad=0 d="" k how j rc
  for k in $save_ks; do
    for how in 5 cancel; do
      d=$(kept_or_fresh "$d") || { bad=$((bad + 1)); d=$(kept_or_fresh ""); }
      set +e
      FSM_FAULT=$k:$how timeout 60 "$L" save --domid "$d" -o "$J/f.xl" >/dev/null 2>"$J/trace"
      rc=$?
      set -e
      cat "$J/trace" >>"$J/trace.all"
      if [ $rc = 0 ]; then
        verify xl "$J/f.xl" || { echo "  save $k:$how: succeeded with a bad file"; bad=$((bad + 1)); }
        [ "$(state "$d")" = "" ] || [ "$(state "$d")" = running ] || { echo "  save $k:$how: left $(state "$d")"; bad=$((bad + 1)); }
      elif [ $rc != 1 ]; then
        echo "  save $k:$how: exit $rc"; bad=$((bad + 1))
      elif grep -qE 'save_finish_domain +-> FINISHING +rc=0' "$J/trace" && [ -z "$(state "$d")" ]; then
        :   # failed after xl save's destroy: nothing to resume
      elif [ "$(state "$d")" != running ]; then
        echo "  save $k:$how: guest left '$(state "$d")'"; bad=$((bad + 1))
      elif [ "$(status "$d")" != running ]; then
        echo "  save $k:$how: the guest runs but its QEMU is '$(status "$d")'"; bad=$((bad + 1))
      fi
      rm -f "$J/f.xl"
      for j in $(failure_path_dispatches "$J/trace" "$k"); do
        d=$(kept_or_fresh "$d") || { echo "  save $k:$how: a QEMU was left"; bad=$((bad + 1)); d=$(kept_or_fresh ""); }
        set +e
        FSM_FAULT=$k:$how,$j:5 timeout 60 "$L" save --domid "$d" -o "$J/f.xl" >/dev/null 2>"$J/trace2"
        rc=$?
        set -e
        cat "$J/trace2" >>"$J/trace.all"
        [ $rc = 1 ] || { echo "  save $k:$how,$j:5: exit $rc"; bad=$((bad + 1)); }
        [ "$(state "$d")" = running ] || { echo "  save $k:$how,$j:5: guest left '$(state "$d")'"; bad=$((bad + 1)); }
        [ ! -e "$J/f.xl" ] || { echo "  save $k:$how,$j:5: partial file"; rm -f "$J/f.xl"; bad=$((bad + 1)); }
      done
    done
  done
  [ -z "$d" ] || sq destroy "$d"
  [ "$(qemus)" = 0 ] || { echo "  a QEMU was left after the last run"; bad=$((bad + 1)); }
  check "HVM save with its QEMU: a fault and a cancel at $(echo $save_ks | wc -w) of its $(echo $save_all | wc -w) device-model dispatches ($save_ks): clean failures, guest and QEMU running" [ $bad = 0 ]
}

restore_sweep() {
  local bad=0 k how j rc x
  for k in $rst_ks; do
    for how in 5 cancel; do
      set +e
      FSM_FAULT=$k:$how timeout 60 "$L" restore -i "$WORK/ok.xl" --destroy >/dev/null 2>"$J/trace"
      rc=$?
      set -e
      cat "$J/trace" >>"$J/trace.all"
      [ $rc = 0 ] || [ $rc = 1 ] || { echo "  restore $k:$how: exit $rc"; bad=$((bad + 1)); }
      sq count
      if [ "$SQ" != 0 ] || [ "$(qemus)" != 0 ]; then
        echo "  restore $k:$how: left $SQ domain(s), $(qemus) QEMU(s)"; bad=$((bad + 1))
        sq ids; for x in $SQ; do sq destroy "$x"; done
      fi
      for j in $(failure_path_dispatches "$J/trace" "$k"); do
        set +e
        FSM_FAULT=$k:$how,$j:5 timeout 60 "$L" restore -i "$WORK/ok.xl" --destroy >/dev/null 2>"$J/trace2"
        rc=$?
        set -e
        cat "$J/trace2" >>"$J/trace.all"
        [ $rc = 1 ] || { echo "  restore $k:$how,$j:5: exit $rc"; bad=$((bad + 1)); }
        sq count
        if [ "$SQ" != 0 ] || [ "$(qemus)" != 0 ]; then
          echo "  restore $k:$how,$j:5: left $SQ domain(s), $(qemus) QEMU(s)"; bad=$((bad + 1))
          sq ids; for x in $SQ; do sq destroy "$x"; done
        fi
      done
    done
  done
  check "HVM restore with a QEMU: a fault and a cancel at $(echo $rst_ks | wc -w) of its $(echo $rst_all | wc -w) device-model dispatches ($rst_ks): clean failures, no domain or QEMU left" [ $bad = 0 ]
}

# sweep_job NAME FUNCTION: the sweep on a host of its own, its output in
# $WORK/NAME.out; the daemon must hold no more fds at its end than at its start.
sweep_job() {
  (
    J=$WORK/$1
    export LOCKSTEP_RUNDIR=$J/run
    mkdir -p "$LOCKSTEP_RUNDIR"
    trap 'simq_stop; stop_daemon' EXIT
    "$L" sim list >/dev/null
    simq_start "$J/simq"
    sq count
    local fds1; fds1=$(simd_fds)
    "$2"
    check "$1: its daemon holds no more fds than before all these runs ($(simd_fds), $fds1 before)" [ "$(simd_fds)" = "$fds1" ]
    sq count
    check "$1: no domain and no QEMU left" eval "[ $SQ = 0 ] && [ $(qemus) = 0 ]"
  ) >"$WORK/$1.out" 2>&1
}
sweep_job save-sweep save_sweep &
save_job=$!
sweep_job restore-sweep restore_sweep &
restore_job=$!
wait "$save_job" "$restore_job" || true   # (not simq's: a bare wait would wait for it too)
for name in save-sweep restore-sweep; do
  cat "$WORK/$name.out"
  PASSED=$((PASSED + $(grep -c '^ok   - ' "$WORK/$name.out" || true)))
  FAILED=$((FAILED + $(grep -c '^FAIL - ' "$WORK/$name.out" || true)))
  cat "$WORK/$name/trace.all" >>"$trace_all" 2>/dev/null || true
done
[ "$(cat "$WORK"/*-sweep.out | grep -cE '^(ok   -|FAIL -) ')" -eq 6 ] || fail "a sweep ended without its verdicts"
check "the daemon holds no more fds than before all these runs ($(simd_fds), $fds0 before)" [ "$(simd_fds)" = "$fds0" ]

# Rows taken: all of devmodel.def, and the device-model rows of save/restore.
# The suite's row-coverage check (row_coverage) reads every row taken here.
if [ -n "${LOCKSTEP_BUILD_DIR:-}" ]; then
  mkdir -p "$LOCKSTEP_BUILD_DIR/rows"
  grep -E '^fsm +[1-9]' "$trace_all" >"$LOCKSTEP_BUILD_DIR/rows/dm_faults.trace" || true
fi
python3 "$SRC"/test/integration/rows_taken.py "$trace_all" --title "device-model rows taken" \
  --match 'DM|QEMU' --every-row-of devmodel \
  "$SRC"/states/devmodel.def "$SRC"/states/save.def "$SRC"/states/restore.def >"$WORK/rows"
# A report: a sample takes some rows only; every row is row_coverage's check,
# over these runs, the enumerator's and the rest of the suite's.
cat "$WORK/rows"
check "no domain and no QEMU left" eval "[ $(sim_domains) = 0 ] && [ $(qemus) = 0 ]"
finish
