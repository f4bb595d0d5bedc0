#!/usr/bin/env bash
# Fault injection over the tables: a normal save and restore are run once to
# count their dispatches (N), then once per k = 1..N with FSM_FAULT=k, which
# makes dispatch k fail as if its action had returned -EIO. Every run must end
# in a failed final state with a clear error (exit 1, no sanitizer report, no
# hang), the fault must have fired, a saved guest must be left running and a
# restore must leave no domain behind. Rows taken across all runs are listed
# against the rows of the .def files.
source "$(dirname "$0")/lib.sh"
L=$LOCKSTEP_BIN
SRC=${LOCKSTEP_SOURCE_DIR:-$(dirname "$0")/../..}
export LOCKSTEP_TRACE=1
trace_all=$WORK/trace.all

dispatches() { grep -cE '^fsm +[1-9]' "$1"; }

for type in pv hvm; do
  # --- save ---
  dom=$("$L" sim create --type $type --memory 1M --seed 9)
  "$L" save --domid "$dom" -o "$WORK/ok.xl" >/dev/null 2>"$WORK/trace"
  n=$(dispatches "$WORK/trace"); cat "$WORK/trace" >>"$trace_all"
  bad=0
  for k in $(seq 1 "$n"); do
    dom=$("$L" sim create --type $type --memory 1M --seed 9)
    set +e
    FSM_FAULT=$k:5 timeout 60 "$L" save --domid "$dom" -o "$WORK/f.xl" >/dev/null 2>"$WORK/trace"; rc=$?
    set -e
    cat "$WORK/trace" >>"$trace_all"
    state=$("$L" sim info "$dom" 2>/dev/null | awk '{print $4}' || true)
    if [ $rc -ne 1 ] || ! grep -q "injected fault at dispatch $k" "$WORK/trace"; then
      bad=$((bad + 1)); echo "  save fault $k: rc=$rc $(grep 'lockstep save:' "$WORK/trace")"
    elif [ "$state" != running ] && ! grep -q "FINISHED in FINISHING" "$WORK/trace"; then
      bad=$((bad + 1)); echo "  save fault $k: guest left '$state', not running"
    fi
    "$L" sim destroy "$dom" >/dev/null 2>&1 || true
    [ -e "$WORK/f.xl" ] && { bad=$((bad + 1)); echo "  save fault $k: partial file left"; }
  done
  check "$type save: $n faults, each a clean failure with the guest left running" [ $bad -eq 0 ]

  # --- restore ---
  "$L" restore -i "$WORK/ok.xl" --destroy >/dev/null 2>"$WORK/trace"
  n=$(dispatches "$WORK/trace"); cat "$WORK/trace" >>"$trace_all"
  bad=0
  for k in $(seq 1 "$n"); do
    set +e
    FSM_FAULT=$k:5 timeout 60 "$L" restore -i "$WORK/ok.xl" --destroy >/dev/null 2>"$WORK/trace"; rc=$?
    set -e
    cat "$WORK/trace" >>"$trace_all"
    if [ $rc -ne 1 ] || ! grep -q "injected fault at dispatch $k" "$WORK/trace"; then
      bad=$((bad + 1)); echo "  restore fault $k: rc=$rc $(grep 'lockstep restore:' "$WORK/trace")"
    fi
    if [ "$(sim_domains)" -ne 0 ]; then
      bad=$((bad + 1)); echo "  restore fault $k: a domain was left behind"; "$L" sim list
      for d in $("$L" sim list | awk 'NR>1{print $1}'); do "$L" sim destroy "$d"; done
    fi
  done
  check "$type restore: $n faults, each a clean failure leaving no domain" [ $bad -eq 0 ]
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
