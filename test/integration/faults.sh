#!/usr/bin/env bash
# Fault injection over the tables. A normal save and restore are run once to
# count their dispatches (N). Then, for every k = 1..N:
#   - FSM_FAULT=k:5       dispatch k fails as if its action had returned -EIO;
#   - FSM_FAULT=k:cancel  dispatch k runs, then its machine is cancelled;
#   - FSM_FAULT=k:5,j:5   for every dispatch j after k of the run that k
#                         failed: a second fault on the failure path itself.
# Every run must end in a final state with a clear error (exit 1, or exit 0
# only when a cancel came after the operation had finished), no sanitizer
# report, no hang; the fault must have fired; a saved guest must be left
# running (unless the save had already reached the point where xl save
# destroys it) with no partial output file; a restore must leave no domain.
# Rows taken across all runs are listed against the rows of the .def files.
source "$(dirname "$0")/lib.sh"
L=$LOCKSTEP_BIN
# HVM guests here use the stand-in device model: the tables' rows with a real
# QEMU are swept by test/dm/faults_dm.sh (a QEMU per run would not fit here).
DM_OPT=--no-device-model
SRC=${LOCKSTEP_SOURCE_DIR:-$(dirname "$0")/../..}
export LOCKSTEP_TRACE=1
trace_all=$WORK/trace.all
RUNS=0

dispatches() { grep -cE '^fsm +[1-9]' "$1" || true; }

# only_moot TRACE: no injected fault made an action fail: each was skipped
# on an fsm_nop row (which cannot fail) or was a cancel, which a state that
# is finishing anyway ignores (or which came after the end).
only_moot() { ! grep -qE '\(injected fault\)' "$1"; }

# save_run TYPE SPEC: one faulted save; prints a complaint on failure, and
# leaves the run's dispatch count in $LAST_N.
save_run() {
  local type=$1 spec=$2 dom rc state bad=0
  dom=$(LOCKSTEP_SIM_FAULT= "$L" sim create --type "$type" --memory 1M --seed 9 $DM_OPT)
  set +e
  FSM_FAULT=$spec timeout 60 "$L" save --domid "$dom" -o "$WORK/f.xl" >/dev/null 2>"$WORK/trace"
  rc=$?
  set -e
  RUNS=$((RUNS + 1))
  LAST_N=$(dispatches "$WORK/trace")
  cat "$WORK/trace" >>"$trace_all"
  state=$(LOCKSTEP_SIM_FAULT= "$L" sim info "$dom" 2>/dev/null | awk '{print $4}' || true)
  local past_finish=0
  grep -qE 'TASKS_DONE +save_finish_domain +-> FINISHING +rc=0' "$WORK/trace" && past_finish=1
  local refused=${LOCKSTEP_SIM_FAULT:-}
  spec="${spec:-(no fault)}${refused:+ with $refused refused}"
  if [ $rc -eq 0 ] && grep -qE -- '-> DONE ' "$WORK/trace" && only_moot "$WORK/trace"; then
    # The fault was moot (or the refused call not needed): the file is whole.
    verify xl "$WORK/f.xl" || { echo "  save $spec: succeeded but the file fails the verifier"; bad=1; }
    rm -f "$WORK/f.xl"
  elif ! grep -q "injected" "$WORK/trace"; then
    echo "  save $spec: the fault never fired"; bad=1
  elif [ $rc -ne 1 ]; then
    echo "  save $spec: rc=$rc $(grep 'lockstep save:' "$WORK/trace")"; bad=1
  elif [ "$state" != running ] && [ $past_finish -eq 0 ] &&
       ! { [ "$refused" = resume ] && grep -q 'could not be resumed: it is left suspended' "$WORK/trace"; }; then
    # Only a refused resume may leave the guest suspended, and it must say so.
    echo "  save $spec: guest left '$state', not running"; bad=1
  elif [ -e "$WORK/f.xl" ]; then
    echo "  save $spec: partial file left"; rm -f "$WORK/f.xl"; bad=1
  fi
  LOCKSTEP_SIM_FAULT= "$L" sim destroy "$dom" >/dev/null 2>&1 || true
  return $bad
}

restore_run() {   # restore_run TYPE SPEC (the type is the saved file's)
  local spec=$2 rc
  set +e
  FSM_FAULT=$spec timeout 60 "$L" restore -i "$WORK/ok.xl" --destroy >/dev/null 2>"$WORK/trace"
  rc=$?
  set -e
  RUNS=$((RUNS + 1))
  LAST_N=$(dispatches "$WORK/trace")
  cat "$WORK/trace" >>"$trace_all"
  local bad=0 refused=${LOCKSTEP_SIM_FAULT:-}
  spec="${spec:-(no fault)}${refused:+ with $refused refused}"
  if [ $rc -eq 0 ] && grep -qE -- '-> DONE ' "$WORK/trace" && only_moot "$WORK/trace"; then
    :
  elif ! grep -q "injected" "$WORK/trace"; then
    echo "  restore $spec: the fault never fired"; bad=1
  elif [ $rc -ne 1 ]; then
    echo "  restore $spec: rc=$rc $(grep 'lockstep restore:' "$WORK/trace")"; bad=1
  fi
  if [ "$(sim_domains)" -ne 0 ] &&
     { [ "$refused" = destroy ] && grep -q 'destroy.*injected failure' "$WORK/trace"; }; then
    # Only a refused destroy may leave the partial domain, and it must say so.
    for d in $("$L" sim list | awk 'NR>1{print $1}'); do LOCKSTEP_SIM_FAULT= "$L" sim destroy "$d"; done
  elif [ "$(sim_domains)" -ne 0 ]; then
    echo "  restore $spec: a domain was left behind"; LOCKSTEP_SIM_FAULT= "$L" sim list; bad=1
    for d in $(LOCKSTEP_SIM_FAULT= "$L" sim list | awk 'NR>1{print $1}'); do LOCKSTEP_SIM_FAULT= "$L" sim destroy "$d"; done
  fi
  return $bad
}

# sweep ROLE TYPE N: single faults, cancels, and double faults.
sweep() {
  local role=$1 type=$2 n=$3 bad=0 k j n1
  for k in $(seq 1 "$n"); do
    ${role}_run $type "$k:cancel" || bad=$((bad + 1))
    ${role}_run $type "$k:5" || bad=$((bad + 1))
    n1=$LAST_N
    for j in $(seq $((k + 1)) "$n1"); do
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
    for k in $(seq 1 "$n"); do
      ${role}_run $type "$k:cancel" || bad=$((bad + 1))
    done
  done
  unset LOCKSTEP_SIM_FAULT
  return $bad
}

for type in pv hvm; do
  dom=$("$L" sim create --type $type --memory 1M --seed 9 $DM_OPT)
  "$L" save --domid "$dom" -o "$WORK/ok.xl" >/dev/null 2>"$WORK/trace"
  n=$(dispatches "$WORK/trace"); cat "$WORK/trace" >>"$trace_all"
  save_n=$n
  before=$RUNS
  check "$type save: faults and cancels at each of $n dispatches, and a second fault on each failure path: clean failures, guest left running" sweep save $type "$n"
  echo "  ($((RUNS - before)) save runs)"

  "$L" restore -i "$WORK/ok.xl" --destroy >/dev/null 2>"$WORK/trace"
  n=$(dispatches "$WORK/trace"); cat "$WORK/trace" >>"$trace_all"
  before=$RUNS
  check "$type restore: faults and cancels at each of $n dispatches, and a second fault on each failure path: clean failures, no domain left" sweep restore $type "$n"
  echo "  ($((RUNS - before)) restore runs)"

  [ $type = pv ] || continue   # the backend calls are the same for both types
  before=$RUNS
  check "$type save with the backend refusing suspend, resume or destroy, alone and with a cancel after each dispatch" \
    refusal_sweep save $type "$save_n" "suspend resume destroy"
  check "$type restore with the backend refusing create, unpause or destroy, alone and with a cancel after each dispatch" \
    refusal_sweep restore $type "$n" "create unpause destroy"
  echo "  ($((RUNS - before)) runs with refusals)"
done

# Rows taken, against the tables (the .def files are the truth).
python3 - "$trace_all" "$SRC"/states/save.def "$SRC"/states/restore.def "$SRC"/states/stream_tx.def \
  "$SRC"/states/stream_rx.def "$SRC"/states/memtask.def <<'PY'
import re, sys
taken = set()
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) > 6 and f[0] == "fsm" and f[1] != "0":
        taken.add((f[2], f[4], f[5]))
total, missing = 0, []
for path in sys.argv[2:]:
    name = re.search(r"FSM_MACHINE\((\w+)", open(path).read()).group(1)
    for m in re.finditer(r"FSM_ROW\((\w+),\s*(\w+),", open(path).read()):
        total += 1
        if (name, m.group(1), m.group(2)) not in taken:
            missing.append(f"{name}: {m.group(1)} + {m.group(2)}")
print(f"rows taken by the fault runs: {total - len(missing)} of {total}")
for r in missing:
    print(f"  not taken: {r}")
PY
finish
