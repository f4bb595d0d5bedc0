#!/usr/bin/env bash
# man/lint.sh - `mandoc -Tlint` over every page, which must say nothing. Run
# in man/, where mandoc finds the pages an .Xr names (lockstep.1, ...), so
# the cross-references are checked against each other.
set -euo pipefail
cd "$(dirname "$0")"
command -v mandoc >/dev/null || { echo "mandoc is missing: run scripts/install-deps.sh"; exit 1; }
pages=(*.[1-8])
out=$(mandoc -Tlint "${pages[@]}" 2>&1) && rc=0 || rc=$?
[ -z "$out" ] && [ $rc -eq 0 ] || { echo "$out"; echo "mandoc -Tlint: status $rc"; exit 1; }
echo "mandoc -Tlint: ${#pages[@]} pages clean: ${pages[*]}"
