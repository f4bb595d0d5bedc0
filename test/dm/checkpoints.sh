#!/usr/bin/env bash
# Repeated device-state loads into one domain (a COLO secondary's
# checkpoints) through standby QEMUs, and their failures: checkpoints.py.
source "$(dirname "$0")/../integration/lib.sh"
export WORK
t0=$(date +%s%N)
if python3 "$(dirname "$0")/checkpoints.py"; then ok "checkpoint loads (checkpoints.py)"; else fail "checkpoint loads (checkpoints.py)"; fi
echo "# $(( ($(date +%s%N) - t0) / 1000000 )) ms"
finish
