#!/bin/bash
# test/integration/owned_destroy.sh - a command destroys only domains it created.
# `lockstep save --sim` and `migrate --sim` create a one-off domain; when the
# create fails, no destroy may reach the daemon (once one destroyed ids read
# from an uninitialised variable), and when the sim's own create fails after
# the domain existed (its QEMU died), the domain is destroyed exactly once.
# A bystander domain must survive all of it. About 5 s.
. "$(dirname "$0")/lib.sh"
L=$LOCKSTEP_BIN
LOG=$LOCKSTEP_RUNDIR/simd.log

by=$("$L" sim create --type pv --memory 16M)
check "a bystander domain exists" test -n "$by"

destroys() { grep -c "destroying domain\|request destroy" "$LOG" || true; }

# refused: the command, its environment; asserts it fails with no destroy
refused() {
  local what=$1; shift
  local before; before=$(destroys)
  if "$@" -o "$WORK/out.xl" 2>"$WORK/err"; then
    fail "$what: the save succeeded"; return
  fi
  check "$what: no destroy reached the daemon" test "$(destroys)" -eq "$before"
  check "$what: no partial file left" test ! -e "$WORK/out.xl"
}
refused "the client refuses create" env LOCKSTEP_SIM_FAULT=create "$L" save --sim pv --memory 16M
refused "the daemon refuses create (no such QEMU)" \
  "$L" save --sim hvm --memory 16M --qemu "$WORK/no-such-qemu"
refused "the daemon refuses create (memory over its limit)" "$L" save --sim pv --memory 128G

# The domain was created, then its QEMU exited before QMP came up: the sim
# destroys its own half-made domain, once, and the CLI must not do it again.
before=$(destroys)
if "$L" save --sim hvm --memory 16M --qemu /bin/false -o "$WORK/out.xl" 2>"$WORK/err"; then
  fail "a QEMU that exits at once: the save succeeded"
else
  check "a QEMU that exits at once: its domain destroyed exactly once" \
    test "$(grep -c "destroying domain" "$LOG")" -eq 1
  check "a QEMU that exits at once: no destroy of a domain that is gone" \
    test "$(grep -c "request destroy" "$LOG" || true)" -eq 0
fi

# migrate --sim whose create fails: nothing destroyed either.
before=$(destroys)
if LOCKSTEP_SIM_FAULT=create "$L" migrate --sim pv --memory 16M --to "unix:$WORK/none.sock" \
     >"$WORK/mig.out" 2>"$WORK/err"; then
  fail "migrate --sim with create refused: it succeeded"
fi
check "migrate --sim, create refused: no destroy reached the daemon" test "$(destroys)" -eq "$before"

check "the bystander survives" "$L" sim info "$by"
check "only the bystander is left" test "$(sim_domains)" -eq 1
"$L" sim destroy "$by"
finish
