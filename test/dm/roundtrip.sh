#!/usr/bin/env bash
# HVM save and restore with the domain's real QEMU: the stream passes Xen's
# verify-stream-v2 and its EMULATOR_CONTEXT is QEMU's savevm image (emulator
# qemu-upstream); a restore starts a new QEMU on it that loaded it (paused,
# and its state saved again is the same bytes) and runs once the domain does;
# the sim digests match; a failed save lets the QEMU run again; the stand-in
# keeps working; --no-device-model refuses a real QEMU's state.
source "$(dirname "$0")/../integration/lib.sh"
L=$LOCKSTEP_BIN
HERE=$(dirname "$0")
QMP="python3 $HERE/qmp.py"
dm() { "$L" sim dm "$1" | awk -v k="$2" '$1 == k { sub(/^[^ ]+ /, ""); print }'; }
status() { $QMP "$(dm "$1" qmp)" query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
qemus() { pgrep -f "qmp unix:$LOCKSTEP_RUNDIR/" | grep -c . || true; }

for fmt in xl libxl; do
  f=$WORK/hvm.$fmt
  t0=$(date +%s%N)
  d=$("$L" save --sim hvm --memory 16M --vcpus 2 --seed 5 --format $fmt -o "$f")
  t1=$(date +%s%N)
  echo "# $fmt: save of a 16 MiB HVM guest with its QEMU: $(( (t1 - t0) / 1000000 )) ms"
  check "$fmt: verify-stream-v2 accepts the HVM stream with QEMU's state" verify $fmt "$f"
  read -r emu_id emu_len < <(python3 "$HERE/emu_context.py" "$f" "$WORK/emu.$fmt")
  echo "# $fmt: EMULATOR_CONTEXT of $emu_len bytes"
  check "$fmt: EMULATOR_CONTEXT is emulator 2 (qemu-upstream)" [ "$emu_id" = 2 ]
  check "$fmt: EMULATOR_CONTEXT starts with QEMU's QEVM magic, version 3" \
    [ "$(head -c 8 "$WORK/emu.$fmt" | od -An -tx1 | tr -d ' \n')" = 5145564d00000003 ]
  check "$fmt: the saved domain and its QEMU are gone" [ "$(qemus)" = 0 ]
done
f=$WORK/hvm.xl

# Restore left paused: QEMU loaded the state and saves the same bytes again.
out=$("$L" restore --paused -i "$f")
r=$(echo "$out" | awk '/^domid/ { print $2 }')
check "paused restore: digest equals the saved one" [ "$(echo "$out" | tail -n 1)" = "$d" ]
check "paused restore: the domain has a QEMU started on the state (incoming)" [ "$(dm "$r" incoming)" = 1 ]
check "paused restore: QEMU's status is paused" [ "$(status "$r")" = paused ]
$QMP "$(dm "$r" qmp)" stop >/dev/null
$QMP "$(dm "$r" qmp)" xen-save-devices-state "{\"filename\": \"$WORK/resave.bin\", \"live\": false}" >/dev/null
check "paused restore: QEMU's device state saved again equals EMULATOR_CONTEXT byte for byte" \
  cmp -s "$WORK/resave.bin" "$WORK/emu.xl"
"$L" sim destroy "$r"

# Restore that runs: QEMU is let run (cont) with the domain.
out=$("$L" restore -i "$f")
r=$(echo "$out" | awk '/^domid/ { print $2 }')
check "restore: digest equals the saved one" [ "$(echo "$out" | tail -n 1)" = "$d" ]
check "restore: the domain runs" [ "$("$L" sim info "$r" | awk '{ print $4 }')" = running ]
check "restore: its QEMU runs (cont)" [ "$(status "$r")" = running ]
# Its device model's TCG CPU must idle in the halting firmware, as a created
# domain's does. A QEMU started with -incoming leaves -bios ROM contents to a
# migration stream's RAM, which device state lacks: it ran zeros at 100% CPU.
hmp() { $QMP "$(dm "$1" qmp)" human-monitor-command "{\"command-line\": \"$2\"}"; }
check "restore: its QEMU has its firmware at the reset vector (cli; hlt), not zeros" \
  grep -q '0xfa 0xf4 0xeb 0xfd' <(hmp "$r" "x/4xb 0xfffffff0")
halted() { for _ in $(seq 50); do hmp "$1" "info registers" | grep -q 'HLT=1' && return 0; sleep 0.1; done; return 1; }
check "restore: its QEMU's CPU sits halted (HLT=1)" halted "$r"

# A failed save of that running domain: the guest is resumed and its QEMU runs
# again. (The save's last step, the destroy, is refused by the backend.)
if LOCKSTEP_SIM_FAULT=destroy "$L" save --domid "$r" -o "$WORK/fail.xl" 2>"$WORK/err"; then
  fail "a save whose destroy is refused succeeded"
else
  check "failed save: the guest runs again" [ "$("$L" sim info "$r" | awk '{ print $4 }')" = running ]
  check "failed save: its QEMU runs again (cont)" [ "$(status "$r")" = running ]
fi
# --keep: saved, and both run on.
"$L" save --domid "$r" --keep -o "$WORK/kept.xl" >/dev/null
check "save --keep: the guest runs on" [ "$("$L" sim info "$r" | awk '{ print $4 }')" = running ]
check "save --keep: its QEMU runs on (cont)" [ "$(status "$r")" = running ]
check "save --keep: verify-stream-v2 accepts it" verify xl "$WORK/kept.xl"
"$L" sim destroy "$r"

# --no-device-model refuses a real QEMU's state and leaves nothing.
before=$(sim_domains)
if "$L" restore --no-device-model -i "$f" 2>"$WORK/err"; then
  fail "--no-device-model restored a QEMU state without a QEMU"
else
  check "--no-device-model with QEMU's state: a clear error: $(cat "$WORK/err")" \
    grep -q "holds a real QEMU's device state .* no device model to load it into" "$WORK/err"
fi
check "--no-device-model: no domain left" [ "$(sim_domains)" = "$before" ]

# The stand-in: no QEMU on either side, and the stream still verifies.
d=$("$L" save --sim hvm --memory 8M --no-device-model -o "$WORK/standin.xl")
check "stand-in: verify-stream-v2 accepts it" verify xl "$WORK/standin.xl"
out=$("$L" restore -i "$WORK/standin.xl")
r=$(echo "$out" | awk '/^domid/ { print $2 }')
check "stand-in: restored with the same digest" [ "$(echo "$out" | tail -n 1)" = "$d" ]
check "stand-in: the restored domain has no QEMU" [ "$(dm "$r" state)" = none ]
"$L" sim destroy "$r"

# Live migration between two processes over a unix socket: the destination's
# QEMU starts on the source's state and runs with the guest; the source's goes.
"$L" migrate-receive --listen "unix:$WORK/mig.sock" >"$WORK/recv.out" 2>"$WORK/recv.err" &
recv=$!
for _ in $(seq 100); do [ -S "$WORK/mig.sock" ] && break; sleep 0.1; done
"$L" migrate --sim hvm --memory 16M --to "unix:$WORK/mig.sock" >"$WORK/send.out" 2>"$WORK/send.err"
sent=$?
wait $recv
check "migrate: both sides succeed (sender $sent: $(tail -n 1 "$WORK/send.err"))" [ $sent = 0 ]
r=$(awk '/^domid/ { print $2 }' "$WORK/recv.out")
check "migrate: the destination domain has a QEMU started on the source's state" [ "$(dm "$r" incoming)" = 1 ]
check "migrate: the destination's QEMU runs with the guest" [ "$(status "$r")" = running ]
check "migrate: one domain remains" [ "$(sim_domains)" = 1 ]
check "migrate: one QEMU remains" [ "$(qemus)" = 1 ]
"$L" sim destroy "$r"

# A missing QEMU binary on restore: a clear error, nothing left.
if "$L" restore --qemu /nonexistent -i "$f" 2>"$WORK/err"; then
  fail "restore --qemu /nonexistent succeeded"
else
  check "restore --qemu /nonexistent: the error names it: $(cat "$WORK/err")" grep -q "/nonexistent is missing" "$WORK/err"
fi
check "no domain left behind" [ "$(sim_domains)" -eq 0 ]
check "no QEMU left behind" [ "$(qemus)" = 0 ]
finish
