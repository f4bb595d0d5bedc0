#!/usr/bin/env bash
# The device-model supervisor of lockstep-simd: an HVM sim domain has a real
# QEMU answering QMP in its private directory; destroying the domain or killing
# the daemon (a host dying) takes the QEMU with it; a QEMU that dies on its own
# is reported; PV/PVH domains have none; a missing binary is a clear error and
# leaves no domain.
source "$(dirname "$0")/../integration/lib.sh"
L=$LOCKSTEP_BIN
QMP="python3 $(dirname "$0")/qmp.py"
dm() { "$L" sim dm "$1" | awk -v k="$2" '$1 == k { sub(/^[^ ]+ /, ""); print }'; }
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
gone_within() { for _ in $(seq 100); do alive "$1" || return 0; sleep 0.05; done; return 1; }
parent_of() { awk '/^PPid:/ { print $2 }' "/proc/$1/status"; }

d=$("$L" sim create --type hvm --memory 16M)
pid=$(dm "$d" pid)
sock=$(dm "$d" qmp)
check "HVM domain $d has a live QEMU (pid $pid)" alive "$pid"
check "its QEMU is a child of the daemon" [ "$(parent_of "$pid")" = "$(cat "$LOCKSTEP_RUNDIR/simd.pid")" ]
check "its QMP socket is in the domain's private directory" [ "$sock" = "$LOCKSTEP_RUNDIR/domain-$d/qmp.sock" ]
check "that directory is mode 0700" [ "$(stat -c %a "$LOCKSTEP_RUNDIR/domain-$d")" = 700 ]
status=$($QMP "$sock" query-status)
check "QEMU answers query-status over QMP: $status" grep -q '"status": "prelaunch"' <<<"$status"
check "the log is captured in the domain's directory" [ -f "$(dm "$d" log)" ]
check "load-state-in-place is off for this QEMU" [ "$(dm "$d" load-state-in-place)" = 0 ]
"$L" sim destroy "$d"
check "destroy: the QEMU is gone" gone_within "$pid"
check "destroy: its pid was reaped (no zombie, no process)" [ ! -d "/proc/$pid" ]
check "destroy: its socket and directory are removed" test ! -e "$sock" -a ! -e "$LOCKSTEP_RUNDIR/domain-$d"

for t in pv pvh; do
  d=$("$L" sim create --type $t --memory 16M)
  check "$t domain has no device model" [ "$(dm "$d" state)" = none ]
  check "$t domain has no private directory" [ ! -e "$LOCKSTEP_RUNDIR/domain-$d" ]
  "$L" sim destroy "$d"
done
# Item 5: xen-load-devices-state into a running QEMU aborts Debian's 7.2, so
# the capability is never probed: off unless the domain is configured with it.
d=$("$L" sim create --type hvm --memory 16M --dm-load-state-in-place)
check "--dm-load-state-in-place: reported only because it was configured" [ "$(dm "$d" load-state-in-place)" = 1 ]
"$L" sim destroy "$d"
if grep -rq "xen-load-devices-state\"" "${LOCKSTEP_SOURCE_DIR:-$(dirname "$0")/../..}"/states "${LOCKSTEP_SOURCE_DIR:-$(dirname "$0")/../..}"/lib; then
  fail "lockstep's tables send xen-load-devices-state"
else
  ok "lockstep's tables and library never send xen-load-devices-state"
fi
d=$("$L" sim create --type hvm --memory 16M --no-device-model)
check "--no-device-model: an HVM domain without a QEMU" [ "$(dm "$d" state)" = none ]
"$L" sim destroy "$d"

# A QEMU that dies on its own: reaped, and reported rather than hidden.
d=$("$L" sim create --type hvm --memory 16M)
pid=$(dm "$d" pid)
kill -9 "$pid"
for _ in $(seq 100); do [ "$(dm "$d" state)" = running ] || break; sleep 0.05; done
check "a killed QEMU is reported: $(dm "$d" state)" [ "$(dm "$d" state)" = "killed by signal 9 (Killed)" ]
check "a killed QEMU was reaped by the daemon" [ ! -d "/proc/$pid" ]
"$L" sim destroy "$d"

# A binary that is missing, or exits at once.
before=$(sim_domains)
if "$L" sim create --type hvm --memory 16M --qemu /nonexistent 2>"$WORK/err"; then
  fail "--qemu /nonexistent was accepted"
else
  check "--qemu /nonexistent: the error names it: $(cat "$WORK/err")" grep -q "/nonexistent is missing" "$WORK/err"
fi
check "--qemu /nonexistent: no domain left" [ "$(sim_domains)" = "$before" ]
printf '#!/bin/sh\necho "qemu: cannot set up the machine, on purpose" >&2\nexit 3\n' >"$WORK/badqemu"
chmod +x "$WORK/badqemu"
if "$L" sim create --type hvm --memory 16M --qemu "$WORK/badqemu" 2>"$WORK/err"; then
  fail "a QEMU that exits at once was accepted"
else
  check "a QEMU exiting before QMP is ready: its status and last log line: $(cat "$WORK/err")" \
    grep -q "exited with status 3 before its QMP socket was ready: qemu: cannot set up the machine, on purpose" "$WORK/err"
fi
check "a QEMU exiting at once: no domain left" [ "$(sim_domains)" = "$before" ]
check "no private directory left" [ -z "$(find "$LOCKSTEP_RUNDIR" -name 'domain-*')" ]

# The host dying: SIGKILL the daemon, its QEMUs die with it (PR_SET_PDEATHSIG).
d1=$("$L" sim create --type hvm --memory 16M)
d2=$("$L" sim create --type hvm --memory 16M)
p1=$(dm "$d1" pid); p2=$(dm "$d2" pid)
kill -9 "$(cat "$LOCKSTEP_RUNDIR/simd.pid")"
both_gone() { gone_within "$1" && gone_within "$2"; }
check "SIGKILL of the daemon: both QEMUs are gone" both_gone "$p1" "$p2"
finish
