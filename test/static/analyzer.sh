#!/usr/bin/env bash
# test/static/analyzer.sh SRC BUILD - GCC's static analyzer (-fanalyzer) over
# every source of lockstep (the CLI and every library layer it links, the sim
# daemon, the Xen helper; not the tests), in a build of its own inside BUILD.
# Incremental:
# only sources that changed are analysed again. Any finding fails (-Werror);
# each one is fixed or suppressed at its line with the reason
# (#pragma GCC diagnostic, "analyzer: ..." comment).
set -euo pipefail
src=$1 out=$2
if [ ! -f "$out/CMakeCache.txt" ]; then
  CC=gcc cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Debug -DLOCKSTEP_TESTS=OFF \
    -DCMAKE_C_FLAGS="-fanalyzer" >/dev/null
fi
log=$out/analyzer.log
set +e
cmake --build "$out" -j"${STATIC_JOBS:-$(nproc)}" --target lockstep lockstep-simd \
  lockstep-xen-helper -- -k >"$log" 2>&1
rc=$?
set -e
n=$( (grep -E ' (warning|error): .*\[-W(error=)?analyzer' "$log" || true) | sort -u | wc -l)
echo "analyzer: $n finding(s) in the sources analysed this run"
if [ "$rc" -ne 0 ]; then
  grep -E '(error|warning): ' "$log" | sort -u
  exit 1
fi
