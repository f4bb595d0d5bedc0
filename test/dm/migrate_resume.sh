#!/usr/bin/env bash
# No guest is lost, its QEMU included (issue 4), with real QEMUs and real
# processes. A live migration's save stops the source guest's QEMU (stop,
# xen-save-devices-state) and leaves it stopped for the destination.
# (a) When the migration then fails before the go-ahead, the source guest runs
#     again and so must its QEMU (cont), as libxl's resume does:
#      - the receiver's restore fails before the pages (its standby QEMU cannot
#        start) or after the stream (its QEMU cannot load the state);
#      - the receiver cannot start its copy (REPORT_FAILED, leave to resume);
#      - the source QEMU dies before the cont: the guest runs, and the error
#        says its QEMU does not;
#      - an injected failure at each sender dispatch from the resume on (and
#        a cancel at each of its own machine's), in both: the guest runs, and
#        its QEMU runs or the error says it does not; every migrate_send row
#        of the QEMU's cont, and from the leave to resume, is taken.
# (b) The sender SIGKILLed while it awaits "domain received" (a receiver that
#     never answers): lockstep-simd's guard resumes the guest and lets its
#     QEMU run again; not a QEMU that never ran, nor while the guest is paused.
# (c) A restore into a toolstack's domain (--domid) that fails after starting
#     its QEMU gives the domain back without one: no QEMU process is left.
# The source guests are HVM with a running QEMU (restored from a save, so
# their QEMU was let run); the checks ask QEMU itself (query-status over QMP).
source "$(dirname "$0")/../integration/lib.sh"
L=$LOCKSTEP_BIN
HERE=$(dirname "$0")
SRC=${LOCKSTEP_SOURCE_DIR:-$HERE/../..}
QMP="python3 $HERE/qmp.py"
export LOCKSTEP_TRACE=1
export FSM_STRICT=1   # a (state, event) without a row aborts
trace_all=$WORK/trace.all
dm() { "$L" sim dm "$1" | awk -v k="$2" '$1 == k { sub(/^[^ ]+ /, ""); print }'; }
status() {   # QEMU's own answer to query-status, or dead
  local s
  s=$($QMP "$(dm "$1" qmp)" query-status 2>/dev/null | sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p')
  echo "${s:-dead}"
}
state() { "$L" sim info "$1" 2>/dev/null | awk '{ print $4 }'; }
qemus() { pgrep -f "qmp unix:$LOCKSTEP_RUNDIR/" | grep -c . || true; }
outcome() { awk '$1 == "outcome" { print $2 }' "$1" | tr -d :; }
running_hvm() {   # an HVM domain whose QEMU runs: restored from the base save
  "$L" restore -i "$WORK/base.xl" 2>/dev/null | awk '/^domid/ { print $2 }'
}

# migrate_failing DOMID RECEIVER_REFUSES [SENDER_ENV...]: a migration of DOMID
# to a receiver on this host whose backend refuses RECEIVER_REFUSES
# (LOCKSTEP_SIM_FAULT); the sender's exit status in $RC, its output in
# $WORK/send.out, its stderr (trace) in $WORK/send.err.
migrate_failing() {
  local d=$1 refuse=$2 recv
  shift 2
  rm -f "$WORK/mig.sock"
  LOCKSTEP_SIM_FAULT=$refuse timeout 60 "$L" migrate-receive \
    --listen "unix:$WORK/mig.sock" --timeout 20 >"$WORK/recv.out" 2>"$WORK/recv.err" &
  recv=$!
  for _ in $(seq 200); do [ -S "$WORK/mig.sock" ] && break; sleep 0.05; done
  set +e
  env "$@" timeout 60 "$L" migrate --domid "$d" --to "unix:$WORK/mig.sock" --timeout 20 \
    >"$WORK/send.out" 2>"$WORK/send.err"
  RC=$?
  wait $recv
  set -e
  cat "$WORK/send.err" >>"$trace_all"
}

"$L" save --sim hvm --memory 4M --seed 7 -o "$WORK/base.xl" >/dev/null 2>&1

# ---- the receiver fails; the source's guest and QEMU run again ----------------
for refuse in dm-standby dm-load unpause; do
  case $refuse in
    dm-standby) what="the receiver cannot start its standby QEMU (before the stream's pages)" ;;
    dm-load) what="the receiver's restore fails after the stream (its QEMU cannot load the state)" ;;
    unpause)  what="the receiver cannot start its copy (it reports so, then gives leave to resume)" ;;
  esac
  d=$(running_hvm)
  check "$what: the source QEMU runs before" [ "$(status "$d")" = running ]
  migrate_failing "$d" "$refuse"
  check "$what: the sender fails (exit $RC): $(grep 'lockstep migrate:' "$WORK/send.err")" [ $RC = 1 ]
  check "$what: the sender reports source-runs" [ "$(outcome "$WORK/send.out")" = source-runs ]
  check "$what: the source guest runs" [ "$(state "$d")" = running ]
  q=$(status "$d")
  check "$what: the source guest's QEMU runs again (query-status: $q)" [ "$q" = running ]
  check "$what: the destination has no copy, one QEMU in all" eval "[ $(sim_domains) = 1 ] && [ $(qemus) = 1 ]"
  "$L" sim destroy "$d"
done

# ---- the source QEMU dies before its cont ---------------------------------------
# Its 6th QMP command is the cont (query-status, stop, add-fd,
# xen-save-devices-state and remove-fd come first, in the save).
d=$(running_hvm)
migrate_failing "$d" dm-load LOCKSTEP_DM_FAULT_KILL=6
what="the source QEMU is killed before the cont"
check "$what: the sender fails (exit $RC)" [ $RC = 1 ]
check "$what: the sender still reports source-runs" [ "$(outcome "$WORK/send.out")" = source-runs ]
check "$what: the error says the guest runs and its QEMU does not: $(grep 'lockstep migrate:' "$WORK/send.err")" \
  grep -q "lockstep migrate: .*domain $d runs again here, but its QEMU does not: device model of domain $d died: cont failed" "$WORK/send.err"
check "$what: the source guest runs" [ "$(state "$d")" = running ]
check "$what: its dead QEMU is reported" [ "$(dm "$d" state)" = "killed by signal 9 (Killed)" ]
"$L" sim destroy "$d"

# ---- a fault or a cancel at each sender dispatch from the resume on -----------
# sweep REFUSE ALL: a reference run with the receiver refusing REFUSE, then
# each a run of its own: an injected failure at each sender dispatch from its
# resume on (ALL=1: also one seeded dispatch of its children's (devmodel,
# qmp_conn) up to QEMU's answer to the cont, and one after it, where all
# eight took the same rows; DM_RESUME_POINTS=all: every one; else only
# migrate_send's own), and a
# cancel at each migrate_send dispatch from the one that reads the leave to
# resume (or from the resume). A cancel is ignored from there on: resuming
# and letting QEMU run are the teardown. After each: exit 1, source-runs, the
# guest runs, and its QEMU runs or the error says it does not.
SEED=${DM_RESUME_SEED:-20261208}
sweep() {
  local refuse=$1 all=$2 k how err first last faults cancels
  d=$(running_hvm)
  migrate_failing "$d" "$refuse"
  first=$(awk '$1 == "fsm" && $7 == "mig_resume_source" { print $2; exit }' "$WORK/send.err")
  last=$(awk '$1 == "fsm" && $2 > 0 { n = $2 } END { print n }' "$WORK/send.err")
  faults=" $(awk -v f="$first" -v all="$all" -v every="${DM_RESUME_POINTS:-}" -v s="$SEED$refuse" '
    $1 != "fsm" || $2 < f { next }
    $3 == "migrate_send" || (all && every == "all") { print $2; next }
    !all { next }
    $3 == "devmodel" && $5 == "CONTINUING" { answered = 1 }
    answered { b[nb++] = $2; next }
    { a[na++] = $2 }
    END { srand(s); if (na) print a[int(rand() * na)]; if (nb) print b[int(rand() * nb)] }' \
    "$WORK/send.err" | sort -n | tr '\n' ' ') "
  cancels=" $(awk -v f="$first" '$1 == "fsm" && $7 == "mig_read_permission" { f = $2 }
                $1 == "fsm" && $2 >= f && $3 == "migrate_send" { print $2 }' "$WORK/send.err" | tr '\n' ' ') "
  local bad=0 runs=0 qemu=running start
  start=$(echo $faults $cancels | tr ' ' '\n' | sort -n | head -n 1)
  for k in $(seq "$start" "$last"); do
    for how in 5 cancel; do
      if [ $how = 5 ]; then [[ $faults == *" $k "* ]] || continue; else [[ $cancels == *" $k "* ]] || continue; fi
      [ "$qemu" = running ] || { "$L" sim destroy "$d"; d=$(running_hvm); }
      migrate_failing "$d" "$refuse" FSM_FAULT=$k:$how
      runs=$((runs + 1))
      err=$(grep 'lockstep migrate:' "$WORK/send.err" || true)
      qemu=$(status "$d")
      if [ $RC != 1 ]; then
        echo "  $refuse, $k:$how: exit $RC $(grep -m1 -E "no row|Assertion|ERROR" "$WORK/send.err" || true)"; bad=$((bad + 1))
      elif [ "$(outcome "$WORK/send.out")" != source-runs ] || [ "$(state "$d")" != running ]; then
        echo "  $refuse, $k:$how: outcome $(outcome "$WORK/send.out"), guest $(state "$d")"; bad=$((bad + 1))
      elif [ "$qemu" != running ] && ! grep -q "runs again here, but its QEMU does not" <<<"$err"; then
        echo "  $refuse, $k:$how: the QEMU is $qemu and the error does not say so: $err"; bad=$((bad + 1))
      fi
      [ "$(sim_domains)" = 1 ] || { echo "  $refuse, $k:$how: $(sim_domains) domains"; bad=$((bad + 1)); }
    done
  done
  "$L" sim destroy "$d"
  SWEEP_RUNS=$runs
  return $bad
}
echo "# sweep seed $SEED (DM_RESUME_SEED; DM_RESUME_POINTS=all: every dispatch)"
check "the receiver's restore failing: a fault at each migrate_send dispatch from the resume on and at two seeded of its children's, a cancel at each of migrate_send's: exit 1, source-runs, the guest runs, its QEMU runs or the error says it does not" \
  sweep dm-load 1
echo "  ($SWEEP_RUNS runs)"
check "the receiver unable to start its copy: a fault and a cancel at each migrate_send dispatch from the leave to resume on: the same" \
  sweep unpause 0
echo "  ($SWEEP_RUNS runs)"

# ---- the sender is SIGKILLed after the save stopped QEMU --------------------------
# A receiver that takes the stream and never answers: the sender awaits
# "domain received" with the guest suspended and its QEMU stopped. Killed
# there, its guard (the daemon) resumes the guest, and lets its QEMU run again
# if the save had stopped it: not a QEMU that never ran (-S, "prelaunch"),
# and not when the guest stays paused.
silent_receiver() {   # silent_receiver SOCKET: banner, then read to EOF (60 s bound)
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1); s.settimeout(60)
c, _ = s.accept(); c.settimeout(60)
c.sendall(b"xl migration receiver ready, send binary domain data.\n")
while c.recv(1 << 20):
    pass
' "$1"
}
# kill_awaiting_received DOMID: the sender killed in AWAIT_RECEIVED; $SUSPENDED
# is the domain's state and $QEMU_BEFORE its QEMU's status just before.
kill_awaiting_received() {
  local d=$1 recv send
  rm -f "$WORK/mig.sock"
  silent_receiver "$WORK/mig.sock" &
  recv=$!
  for _ in $(seq 200); do [ -S "$WORK/mig.sock" ] && break; sleep 0.05; done
  # Its own --timeout bounds it; it is started directly, so $! is its pid.
  "$L" migrate --domid "$d" --to "unix:$WORK/mig.sock" --timeout 100 \
    >"$WORK/send.out" 2>"$WORK/send.err" &
  send=$!
  for _ in $(seq 1200); do
    grep -q -- '-> AWAIT_RECEIVED ' "$WORK/send.err" && break
    kill -0 $send 2>/dev/null || break
    sleep 0.05
  done
  SUSPENDED=$(state "$d")
  [ -z "${PAUSE_FIRST:-}" ] || "$L" sim pause "$d"
  QEMU_BEFORE=$(status "$d")
  # For a failing check: where the sender was when it was killed, and its last words.
  SENDER_AT="the sender never reached AWAIT_RECEIVED"
  grep -q -- '-> AWAIT_RECEIVED ' "$WORK/send.err" && SENDER_AT="the sender reached AWAIT_RECEIVED"
  kill -0 $send 2>/dev/null || SENDER_AT="$SENDER_AT and had exited before the kill"
  kill -9 $send 2>/dev/null || true
  wait $send 2>/dev/null || true
  wait $recv 2>/dev/null || true
  SENDER_AT="$SENDER_AT; its stderr ended: $(tail -n 2 "$WORK/send.err" | tr '\n' ' ')"
}
simd_log() { grep "domain $1: its device model" "$LOCKSTEP_RUNDIR/simd.log" | tail -n 1; }

d=$(running_hvm)
kill_awaiting_received "$d"
what="sender SIGKILLed awaiting \"domain received\""
if [ "$SUSPENDED" = suspended ] && [ "$QEMU_BEFORE" = paused ]; then
  ok "$what: the guest was suspended and its QEMU stopped"
else
  fail "$what: the guest was suspended ($SUSPENDED) and its QEMU stopped ($QEMU_BEFORE): $SENDER_AT"
  echo "  the daemon's log of domain $d:"; grep -E "domain $d[: ]" "$LOCKSTEP_RUNDIR/simd.log" | tail -n 25 | sed 's/^/    /'
  echo "  the sender's last trace lines:"; grep '^fsm' "$WORK/send.err" | tail -n 8 | sed 's/^/    /'
fi
for _ in $(seq 100); do [ "$(state "$d")" = running ] && break; sleep 0.1; done
check "$what: the daemon's guard resumed the guest" [ "$(state "$d")" = running ]
q=$(status "$d")
check "$what: and let its QEMU run again (query-status: $q; simd: $(simd_log "$d"))" [ "$q" = running ]
check "$what: simd.log says so" grep -q "domain $d: its device model (pid [0-9]*) was paused: let run again (cont)" "$LOCKSTEP_RUNDIR/simd.log"
"$L" sim destroy "$d"

d=$("$L" sim create --type hvm --memory 4M --seed 3)
kill_awaiting_received "$d"
what="a fresh guest's sender SIGKILLed awaiting \"domain received\""
check "$what: its QEMU had never run ($QEMU_BEFORE)" [ "$QEMU_BEFORE" = prelaunch ]
for _ in $(seq 100); do [ "$(state "$d")" = running ] && break; sleep 0.1; done
check "$what: the daemon's guard resumed the guest" [ "$(state "$d")" = running ]
q=$(status "$d")
check "$what: its QEMU is left as it was, never run (query-status: $q; simd: $(simd_log "$d"))" [ "$q" = prelaunch ]
"$L" sim destroy "$d"

d=$(running_hvm)
PAUSE_FIRST=1 kill_awaiting_received "$d"
what="sender SIGKILLed awaiting \"domain received\", the guest paused meanwhile"
for _ in $(seq 100); do [ "$(state "$d")" != suspended ] && break; sleep 0.1; done
check "$what: the guard ended the suspend and the guest stays paused" [ "$(state "$d")" = paused ]
q=$(status "$d")
check "$what: its QEMU stays stopped (query-status: $q)" [ "$q" = paused ]
"$L" sim destroy "$d"

# ---- a restore into a toolstack's domain fails after its QEMU started ----------
# The domain is given back as it came: paused, and without a device model
# (no QEMU process left, none reported). (Issue 3's restore --domid.)
empty_hvm() {   # an empty paused HVM domain, as a toolstack creates one to restore into
  python3 -c '
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(30)
s.connect(os.path.join(os.environ["LOCKSTEP_RUNDIR"], "simd.sock"))
body = struct.pack("<IIQQII64s256s", 2, 0, 0, 0, 0, 0, b"", b"")   # HVM, no populate
s.sendall(struct.pack("<IHHIHHIi", 0x4D49534C, 2, 2, 0, 0, 0, len(body), 0) + body)
hdr = b""
while len(hdr) < 24:
    hdr += s.recv(24 - len(hdr))
n, status = struct.unpack_from("<Ii", hdr, 16)
data = b""
while len(data) < n:
    data += s.recv(n - len(data))
if status:
    sys.exit(data.decode(errors="replace"))
print(struct.unpack_from("<I", data)[0])
'
}
for how in "LOCKSTEP_SIM_FAULT=unpause" "LOCKSTEP_DM_FAULT_KILL=1"; do
  case $how in
    LOCKSTEP_SIM_FAULT=*) what="restore --domid, the unpause refused after its QEMU ran" ;;
    *)                    what="restore --domid, its QEMU killed before the load check" ;;
  esac
  t=$(empty_hvm)
  set +e
  env "$how" timeout 60 "$L" restore --domid "$t" -i "$WORK/base.xl" >/dev/null 2>"$WORK/err"
  rc=$?
  set -e
  cat "$WORK/err" >>"$trace_all"
  # The standby that took the state became the domain's device model.
  pid=$(grep "domain $t: device state [0-9]* loaded by the standby device model (pid" \
          "$LOCKSTEP_RUNDIR/simd.log" | tail -n 1 | sed 's/.*device model (pid \([0-9]*\)).*/\1/' || true)
  check "$what: exit 1, the domain left to the toolstack: $(grep 'lockstep restore:' "$WORK/err")" \
    eval "[ $rc = 1 ] && grep -q 'domain $t is the toolstack.s: lockstep did not destroy it' '$WORK/err'"
  check "$what: a QEMU had been started (pid ${pid:-none})" [ -n "$pid" ]
  for _ in $(seq 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  check "$what: that QEMU is gone" eval "! kill -0 ${pid:-0} 2>/dev/null"
  check "$what: the domain is still there, paused" [ "$(state "$t")" = paused ]
  check "$what: it has no device model any more ($(dm "$t" state))" [ "$(dm "$t" state)" = none ]
  "$L" sim destroy "$t"
done

# The daemon refusing to stop that QEMU: the error says so (and the QEMU is
# the domain's until the toolstack destroys it).
t=$(empty_hvm)
set +e
LOCKSTEP_SIM_FAULT=unpause,dm-stop timeout 60 "$L" restore --domid "$t" -i "$WORK/base.xl" \
  >/dev/null 2>"$WORK/err"
rc=$?
set -e
check "restore --domid, the QEMU's stop refused too: exit 1 and the error says so: $(grep 'lockstep restore:' "$WORK/err")" \
  eval "[ $rc = 1 ] && grep -q 'the device model it started for domain $t could not be stopped' '$WORK/err'"
"$L" sim destroy "$t"

# Rows taken: every migrate_send row into, in and out of CONTINUING_DM, and
# those that lead to the resume from the receiver's leave to resume. A row the
# suite lists as pending (test/integration/rows_pending.txt, with its reason;
# row_coverage enforces the list) is reported, not required; one the .def marks
# FSM_UNREACHABLE (CONTINUING_DM + FAIL: the outcome actions are FSM_NOFAIL)
# is not asked for.
python3 - "$trace_all" "$SRC"/states/migrate_send.def "$SRC"/test/integration/rows_pending.txt >"$WORK/rows" <<'PY'
import re, sys
taken = set()
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) > 6 and f[0] == "fsm" and f[1] != "0":
        taken.add((f[2], f[4], f[5]))
text = open(sys.argv[2]).read()
rows = [m.groups() for m in re.finditer(r"FSM_ROW\((\w+),\s*(\w+),\s*\w+,\s*(\w+)\)", text)]
marked = set(re.findall(r"^\s*FSM_UNREACHABLE\((\w+),\s*(\w+),", text, re.M))
want = [(s, e) for s, e, nxt in rows
        if ("CONTINUING_DM" in (s, nxt) or s == "AWAIT_PERMISSION") and (s, e) not in marked]
pending = {tuple(l.split()[:3]) for l in open(sys.argv[3]) if l.strip() and not l.startswith("#")}
missing = [f"{s} + {e}" for s, e in want
           if ("migrate_send", s, e) not in taken and ("migrate_send", s, e) not in pending]
for s, e in want:
    if ("migrate_send", s, e) not in taken and ("migrate_send", s, e) in pending:
        print(f"  pending (rows_pending.txt): {s} + {e}")
if not want:
    missing.append("(migrate_send.def has no CONTINUING_DM rows)")
print(f"migrate_send rows of the resume and the QEMU's cont taken: "
      f"{sum(('migrate_send', s, e) in taken for s, e in want)} of {len(want)}")
for m in missing:
    print(f"  not taken: {m}")
PY
cat "$WORK/rows"
check "every migrate_send row of the resume and the QEMU's cont was taken" test -z "$(grep 'not taken' "$WORK/rows")"
check "no domain and no QEMU left" eval "[ $(sim_domains) = 0 ] && [ $(qemus) = 0 ]"
finish
