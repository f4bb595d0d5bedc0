#!/usr/bin/env bash
# Fault injection over the tables, by real processes. A normal save and
# restore are run once to count their dispatches (N). Then, for a seeded
# sample of FAULT_POINTS (4) of k = 1..N (FAULT_POINTS=all: every k):
#   - FSM_FAULT=k:5       dispatch k fails as if its action had returned -EIO;
#   - FSM_FAULT=k:cancel  dispatch k runs, then its machine is cancelled;
#   - FSM_FAULT=k:5,j:5   for one seeded dispatch j after k of the run that k
#                         failed: a second fault on the failure path itself
#                         (not at an fsm_nop or ignored row, where a fault is
#                         skipped). FAULT_SECOND=all: every j, nop rows too.
# Every k, every second fault, in microseconds a run, is the in-process
# enumerator's work (test/states: save and restore with their children);
# this samples the same through the CLI, a daemon and its guards.
# Every run must end in a final state with a clear error (exit 1, or exit 0
# only when a cancel came after the operation had finished), no sanitizer
# report, no hang; the fault must have fired; a saved guest must be left
# running (unless the save had already reached the point where xl save
# destroys it) with no partial output file; a restore must leave no domain.
# Rows taken across all runs are listed against the rows of the .def files.
# The sweeps run FAULT_JOBS (2) at a time, each with a sim daemon (a host) of
# its own, which simq.py asks about its domains (no process per question).
source "$(dirname "$0")/lib.sh"
L=$LOCKSTEP_BIN
# HVM guests here use the stand-in device model: the tables' rows with a real
# QEMU are swept by test/dm/faults_dm.sh (a QEMU per run would not fit here).
DM_OPT=--no-device-model
SRC=${LOCKSTEP_SOURCE_DIR:-$(dirname "$0")/../..}
export LOCKSTEP_TRACE=1
trace_all=$WORK/trace.all
RUNS=0
J=$WORK   # the running job's own directory
# The jobs' daemons too, should this script be stopped before they end.
stop_all() {
  local r
  for r in "$WORK"/*/run; do [ -d "$r" ] && LOCKSTEP_RUNDIR=$r stop_daemon; done
  stop_daemon
}
trap 'stop_all; rm -rf "$WORK"' EXIT

dispatches() { grep -cE '^fsm +[1-9]' "$1" || true; }

FAULT_SEED=${FAULT_SEED:-20261207}
# 4 points: with every k's runs traced, 4 took every row 8 did that no other
# producer takes (row_coverage); the other 4 only repeated rows.
FAULT_POINTS=${FAULT_POINTS:-4}
echo "# FAULT_POINTS=$FAULT_POINTS FAULT_SEED=$FAULT_SEED (set them to replay or widen this run)"
# points N SALT: the dispatches to break, a seeded sample of 1..N (sorted).
points() {
  if [ "$FAULT_POINTS" = all ]; then seq 1 "$1"; return; fi
  awk -v n="$1" -v m="$FAULT_POINTS" -v s="$FAULT_SEED$2" 'BEGIN {
    srand(s); for (i = 1; i <= n; i++) a[i] = i; if (m > n) m = n
    for (i = 1; i <= m; i++) { j = i + int(rand() * (n - i + 1)); t = a[i]; a[i] = a[j]; a[j] = t; print a[i] } }' |
    sort -n
}

# only_moot TRACE: no injected fault made an action fail: each was skipped
# on an fsm_nop row (which cannot fail) or was a cancel, which a state that
# is finishing anyway ignores (or which came after the end).
only_moot() { ! grep -qE '\(injected fault\)' "$1"; }

# save_run TYPE SPEC: one faulted save; prints a complaint on failure, and
# leaves the run's dispatch count in $LAST_N.
save_run() {
  local type=$1 spec=$2 dom rc state bad=0
  # A 1 MiB guest, as `sim create --memory 1M --seed 9 --no-device-model`.
  sq create "$type" 1024 9; dom=$SQ
  [[ $dom =~ ^[0-9]+$ ]] || { echo "  save $spec: no guest to save: $dom"; return 1; }
  set +e
  FSM_FAULT=$spec timeout 60 "$L" save --domid "$dom" -o "$J/f.xl" >/dev/null 2>"$J/trace"
  rc=$?
  set -e
  RUNS=$((RUNS + 1))
  LAST_N=$(dispatches "$J/trace")
  cat "$J/trace" >>"$J/trace.all"
  sq state "$dom"; state=$SQ
  local past_finish=0
  grep -qE 'TASKS_DONE +save_finish_domain +-> FINISHING +rc=0' "$J/trace" && past_finish=1
  local refused=${LOCKSTEP_SIM_FAULT:-}
  spec="${spec:-(no fault)}${refused:+ with $refused refused}"
  if [ $rc -eq 0 ] && grep -qE -- '-> DONE ' "$J/trace" && only_moot "$J/trace"; then
    # The fault was moot (or the refused call not needed): the file is whole.
    verify xl "$J/f.xl" || { echo "  save $spec: succeeded but the file fails the verifier"; bad=1; }
    rm -f "$J/f.xl"
  elif ! grep -q "injected" "$J/trace"; then
    echo "  save $spec: the fault never fired"; bad=1
  elif [ $rc -ne 1 ]; then
    echo "  save $spec: rc=$rc $(grep 'lockstep save:' "$J/trace")"; bad=1
  elif [ "$state" != running ] && [ $past_finish -eq 0 ] &&
       ! { [ "$refused" = resume ] && grep -q 'could not be resumed: it is left suspended' "$J/trace"; }; then
    # Only a refused resume may leave the guest suspended, and it must say so.
    echo "  save $spec: guest left '$state', not running"; bad=1
  elif [ -e "$J/f.xl" ]; then
    echo "  save $spec: partial file left"; rm -f "$J/f.xl"; bad=1
  fi
  [ "$state" = none ] || sq destroy "$dom"
  return $bad
}

restore_run() {   # restore_run TYPE SPEC (the type is the saved file's)
  local spec=$2 rc
  set +e
  FSM_FAULT=$spec timeout 60 "$L" restore -i "$WORK/ok-$1.xl" --destroy >/dev/null 2>"$J/trace"
  rc=$?
  set -e
  RUNS=$((RUNS + 1))
  LAST_N=$(dispatches "$J/trace")
  cat "$J/trace" >>"$J/trace.all"
  local bad=0 refused=${LOCKSTEP_SIM_FAULT:-} left d
  spec="${spec:-(no fault)}${refused:+ with $refused refused}"
  if [ $rc -eq 0 ] && grep -qE -- '-> DONE ' "$J/trace" && only_moot "$J/trace"; then
    :
  elif ! grep -q "injected" "$J/trace"; then
    echo "  restore $spec: the fault never fired"; bad=1
  elif [ $rc -ne 1 ]; then
    echo "  restore $spec: rc=$rc $(grep 'lockstep restore:' "$J/trace")"; bad=1
  fi
  sq ids; left=$SQ
  if [ -n "$left" ] &&
     { [ "$refused" = destroy ] && grep -q 'destroy.*injected failure' "$J/trace"; }; then
    # Only a refused destroy may leave the partial domain, and it must say so.
    for d in $left; do sq destroy "$d"; done
  elif [ -n "$left" ]; then
    echo "  restore $spec: a domain was left behind: $left"; bad=1
    for d in $left; do sq destroy "$d"; done
  fi
  return $bad
}

# second_faults TRACE K: a seeded one of the dispatches after K of a run where
# a fault can fire (not an fsm_nop row, not an ignored event); FAULT_SECOND=all:
# every dispatch after K.
second_faults() {
  if [ "${FAULT_SECOND:-}" = all ]; then seq $(($2 + 1)) "$LAST_N"; return; fi
  awk -v k="$2" -v s="$FAULT_SEED$2" '$1 == "fsm" && $2 > k && $7 != "fsm_nop" && $7 != "-" { c[n++] = $2 }
    END { if (n) { srand(s); print c[int(rand() * n)] } }' "$1"
}

# sweep ROLE TYPE N: single faults, cancels, and double faults.
sweep() {
  local role=$1 type=$2 n=$3 bad=0 k j
  for k in $(points "$n" "$role$type"); do
    ${role}_run $type "$k:cancel" || bad=$((bad + 1))
    ${role}_run $type "$k:5" || bad=$((bad + 1))
    for j in $(second_faults "$J/trace" "$k"); do
      ${role}_run $type "$k:5,$j:5" || bad=$((bad + 1))
    done
  done
  return $bad
}

# Backend refusals (LOCKSTEP_SIM_FAULT=OP: the hypervisor refuses OP), alone
# and with an owner's cancel after each dispatch: the failure rows of work in
# flight (a suspend or a creation that fails after a cancel) are taken here.
# A refused resume or destroy is the one failure that can leave a guest
# suspended or a domain behind: the error must then say so.
refusal_sweep() {
  local role=$1 type=$2 n=$3 ops=$4 bad=0 op k
  for op in $ops; do
    export LOCKSTEP_SIM_FAULT=$op
    ${role}_run $type "" || bad=$((bad + 1))
    for k in $(points "$n" "$role$op"); do
      ${role}_run $type "$k:cancel" || bad=$((bad + 1))
    done
  done
  unset LOCKSTEP_SIM_FAULT
  return $bad
}

# The reference runs: a save and a restore of each type, their dispatches.
declare -A N
for type in pv hvm; do
  dom=$("$L" sim create --type $type --memory 1M --seed 9 $DM_OPT)
  "$L" save --domid "$dom" -o "$WORK/ok-$type.xl" >/dev/null 2>"$WORK/trace"
  N[$type-save]=$(dispatches "$WORK/trace"); cat "$WORK/trace" >>"$trace_all"
  "$L" restore -i "$WORK/ok-$type.xl" --destroy >/dev/null 2>"$WORK/trace"
  N[$type-restore]=$(dispatches "$WORK/trace"); cat "$WORK/trace" >>"$trace_all"
done

# The sweeps: each a job with a host (sim daemon) of its own.
sweep_job() {   # sweep_job TYPE ROLE
  local type=$1 role=$2 n=${N[$1-$2]} before=$RUNS
  local what="guest left running"; [ "$role" = restore ] && what="no domain left"
  check "$type $role: faults and cancels at $(points "$n" "$role$type" | wc -l) of $n dispatches, and a second fault on each failure path: clean failures, $what" \
    sweep "$role" "$type" "$n"
  echo "  ($((RUNS - before)) $role runs)"
}
# The backend calls are the same for both types: refusals are swept on PV.
refusal_job() {   # refusal_job ROLE
  local before=$RUNS
  if [ "$1" = save ]; then
    check "pv save with the backend refusing suspend, resume or destroy, alone and with a cancel after sampled dispatches" \
      refusal_sweep save pv "${N[pv-save]}" "suspend resume destroy"
  else
    check "pv restore with the backend refusing create, unpause or destroy, alone and with a cancel after sampled dispatches" \
      refusal_sweep restore pv "${N[pv-restore]}" "create unpause destroy"
  fi
  echo "  ($((RUNS - before)) $1 runs with refusals)"
}
# job NAME CMD...: CMD in a subshell with a directory, a daemon and a simq of
# its own; its output (check lines included) in $WORK/NAME.out.
job() {
  local name=$1; shift
  (
    J=$WORK/$name
    export LOCKSTEP_RUNDIR=$J/run
    mkdir -p "$LOCKSTEP_RUNDIR"
    trap 'simq_stop; stop_daemon' EXIT
    simq_start "$J/simq"
    "$@"
  ) >"$WORK/$name.out" 2>&1
}
# Longest first, FAULT_JOBS at a time.
names=(pv-restore hvm-restore hvm-save pv-save pv-refusals-restore pv-refusals-save)
cmds=("sweep_job pv restore" "sweep_job hvm restore" "sweep_job hvm save" "sweep_job pv save"
      "refusal_job restore" "refusal_job save")
running=()
for i in "${!names[@]}"; do
  while [ "${#running[@]}" -ge "${FAULT_JOBS:-2}" ]; do
    wait -n || true
    alive=(); for p in "${running[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
    running=("${alive[@]}")
  done
  job "${names[$i]}" ${cmds[$i]} &
  running+=($!)
done
wait
# Their reports, in the order of the tables' roles.
for name in pv-save pv-restore pv-refusals-save pv-refusals-restore hvm-save hvm-restore; do
  cat "$WORK/$name.out"
  PASSED=$((PASSED + $(grep -c '^ok   - ' "$WORK/$name.out" || true)))
  FAILED=$((FAILED + $(grep -c '^FAIL - ' "$WORK/$name.out" || true)))
  cat "$WORK/$name/trace.all" >>"$trace_all" 2>/dev/null || true
done
# A job that died before its check line is a failure too.
[ "$(cat "$WORK"/*.out | grep -cE '^(ok   -|FAIL -) ')" -eq 6 ] || fail "a sweep ended without its verdict"

# Rows taken, against the tables (the .def files are the truth); the suite's
# row-coverage check (test/CMakeLists.txt: row_coverage) reads them too.
if [ -n "${LOCKSTEP_BUILD_DIR:-}" ]; then
  mkdir -p "$LOCKSTEP_BUILD_DIR/rows"
  grep -E '^fsm +[1-9]' "$trace_all" >"$LOCKSTEP_BUILD_DIR/rows/integration_faults.trace" || true
fi
python3 "$SRC"/test/integration/rows_taken.py "$trace_all" "$SRC"/states/save.def \
  "$SRC"/states/restore.def "$SRC"/states/stream_tx.def "$SRC"/states/stream_rx.def \
  "$SRC"/states/memtask.def
finish
