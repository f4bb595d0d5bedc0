#!/bin/bash
# test/dm/peer_reason.sh - a failure caused by QEMU ends with QEMU's own words.
# (1) A restore whose device state QEMU refuses (a section name corrupted):
#     the error carries QEMU's "Unknown savevm section" line.
# (2) A save whose QEMU is terminated between two QMP commands (FSM_STOP
#     freezes lockstep there): "device model of domain N died" ends with the
#     last lines of QEMU's log ("terminating on signal 15"), read before the
#     teardown removes the domain's directory. About 10 s.
. "$(dirname "$0")/../integration/lib.sh"
L=$LOCKSTEP_BIN

"$L" save --sim hvm --memory 16M -o "$WORK/g.xl" >/dev/null
python3 - "$WORK/g.xl" "$WORK/bad.xl" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = d.find(b"QEVM")
assert i > 0, "no QEMU device state in the stream"
d[i + 14:i + 38] = b"A" * 24          # the first section's name
open(sys.argv[2], "wb").write(d)
PY
if "$L" restore -i "$WORK/bad.xl" --destroy >"$WORK/out" 2>"$WORK/err"; then
  fail "a corrupted device state restored"
else
  check "corrupted device state: the error has QEMU's own reason: $(cat "$WORK/err")" \
    grep -q "Unknown savevm section" "$WORK/err"
fi
check "corrupted device state: no domain left" test "$(sim_domains)" -eq 0

# The dispatch just before the device model's first (the save's QMP work).
seq=$(LOCKSTEP_TRACE=1 "$L" save --sim hvm --memory 16M -o /dev/null 2>&1 |
      awk '$1 == "fsm" && $3 == "devmodel" { print $2 - 1; exit }')
check "the traced save shows the device model's dispatches" test -n "$seq"
FSM_STOP=$seq "$L" save --sim hvm --memory 16M -o "$WORK/s.xl" >"$WORK/out" 2>"$WORK/err" &
spid=$!
for _ in $(seq 200); do
  [ "$(ps -o stat= -p $spid 2>/dev/null | cut -c1)" = T ] && break; sleep 0.05
done
dom=$("$L" sim list | awk 'NR > 1 { print $1; exit }')
qpid=$("$L" sim dm "$dom" | awk '$1 == "pid" { print $2 }')
kill -TERM "$qpid"
for _ in $(seq 200); do [ "$("$L" sim dm "$dom" | awk '$1 == "state" { print $2 }')" != running ] && break; sleep 0.05; done
kill -CONT "$spid"
if wait "$spid"; then
  fail "a save whose QEMU was terminated succeeded"
else
  check "QEMU terminated mid-save: the error says it died: $(cat "$WORK/err")" \
    grep -q "device model of domain $dom died" "$WORK/err"
  check "QEMU terminated mid-save: the error ends with QEMU's log" \
    grep -q "QEMU's log (.*) ends: .*terminating on signal 15" "$WORK/err"
fi
check "QEMU terminated mid-save: no file left" test ! -e "$WORK/s.xl"
finish
