#!/bin/bash
# test/soak/valgrind.sh - memcheck over a sample of what the integration tests
# run (`make soak`): every lockstep below runs under valgrind (definite leaks
# and memory errors fail it, status 99): saves and restores of PV and HVM
# guests (the HVM one with its real QEMU), inspect, a live migration over a
# unix socket, PV and HVM COLO pairs, and
# test/integration/owned_destroy.sh with LOCKSTEP_BIN
# pointing at a valgrind wrapper. Needs a build without sanitizers (valgrind
# and ASan exclude each other) and with the fault hooks (owned_destroy).
set -euo pipefail
: "${LOCKSTEP_BIN:?}" "${LOCKSTEP_SIMD:?}"
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/lockstep-vg.XXXXXX)
export LOCKSTEP_RUNDIR=$WORK/run
trap '[ -f "$WORK/run/simd.pid" ] && kill "$(cat "$WORK/run/simd.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/lockstep" <<WRAP
#!/bin/bash
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --track-fds=no "$LOCKSTEP_BIN" "\$@"
WRAP
chmod +x "$WORK/lockstep"
V=$WORK/lockstep
ok=0 bad=0
step() { local what=$1; shift
  if "$@" >"$WORK/out" 2>"$WORK/err"; then ok=$((ok + 1)); echo "ok   - $what"
  else bad=$((bad + 1)); echo "FAIL - $what"; tail -20 "$WORK/err"; fi; }
step "save --sim pv" "$V" save --sim pv --memory 16M -o "$WORK/pv.xl"
step "inspect" "$V" inspect "$WORK/pv.xl"
step "restore --destroy" "$V" restore -i "$WORK/pv.xl" --destroy
step "save --sim hvm (QEMU)" "$V" save --sim hvm --memory 16M -o "$WORK/hvm.xl"
step "restore hvm --destroy (QEMU)" "$V" restore -i "$WORK/hvm.xl" --destroy
d=$("$LOCKSTEP_BIN" sim create --type pv --memory 16M --dirty-rate 2000)
"$V" migrate-receive --listen "unix:$WORK/m.sock" >"$WORK/r.out" 2>"$WORK/r.err" & rp=$!
for _ in $(seq 400); do [ -S "$WORK/m.sock" ] && break; sleep 0.05; done
step "migrate (sender)" "$V" migrate --domid "$d" --to "unix:$WORK/m.sock"
if wait $rp; then ok=$((ok + 1)); echo "ok   - migrate-receive"
else bad=$((bad + 1)); echo "FAIL - migrate-receive"; tail -20 "$WORK/r.err"; fi
"$LOCKSTEP_BIN" sim destroy "$(sed -n 's/^domid //p' "$WORK/r.out")" || true
# COLO: a pair through 50 checkpoints of a guest that dirties memory, both
# under memcheck, then an orderly stop (--checkpoints).
"$V" colo-secondary --listen "unix:$WORK/c.sock" >"$WORK/cs.out" 2>"$WORK/cs.err" & cs=$!
for _ in $(seq 400); do [ -S "$WORK/c.sock" ] && break; sleep 0.05; done
step "colo-primary (50 checkpoints)" "$V" colo-primary --sim pv --memory 16M --dirty-rate 2000 \
  --interval 20 --checkpoints 50 --to "unix:$WORK/c.sock"
if wait $cs; then ok=$((ok + 1)); echo "ok   - colo-secondary"
else bad=$((bad + 1)); echo "FAIL - colo-secondary"; tail -20 "$WORK/cs.err"; fi
# and an HVM pair with their real QEMUs (device state at every checkpoint)
"$V" colo-secondary --listen "unix:$WORK/h.sock" >"$WORK/hs.out" 2>"$WORK/hs.err" & hs=$!
for _ in $(seq 400); do [ -S "$WORK/h.sock" ] && break; sleep 0.05; done
step "colo-primary hvm (QEMU, 10 checkpoints)" "$V" colo-primary --sim hvm --memory 16M \
  --dirty-rate 2000 --interval 100 --checkpoints 10 --to "unix:$WORK/h.sock"
if wait $hs; then ok=$((ok + 1)); echo "ok   - colo-secondary hvm (QEMU)"
else bad=$((bad + 1)); echo "FAIL - colo-secondary hvm (QEMU)"; tail -20 "$WORK/hs.err"; fi
step "test/integration/owned_destroy.sh" env LOCKSTEP_BIN="$V" bash "$HERE/../integration/owned_destroy.sh"
echo "valgrind: $ok passed, $bad failed"
[ $bad -eq 0 ]
