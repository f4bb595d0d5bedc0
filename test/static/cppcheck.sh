#!/usr/bin/env bash
# test/static/cppcheck.sh SRC BUILD - cppcheck over the whole tree (sources,
# tests, tools, benchmarks): warnings, performance and portability. Its build
# dir in BUILD keeps results of unchanged files. Any finding fails; each is
# fixed or suppressed at its line ("cppcheck-suppress ID" with the reason).
set -euo pipefail
src=$1 out=$2
command -v cppcheck >/dev/null || {
  echo "cppcheck is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
mkdir -p "$out"
cd "$src"
dirs=()
for d in fsm io qmp states backends lib cli tools test bench examples; do
  [ -d "$d" ] && dirs+=("$d")
done
# -D__x86_64__: the one configuration lockstep builds for (the sim backend
# refuses others with #error), which also spares checking every #ifdef combination.
cppcheck -j"${STATIC_JOBS:-$(nproc)}" --cppcheck-build-dir="$out" \
  --enable=warning,performance,portability --inline-suppr --std=c11 \
  -D_GNU_SOURCE -D__x86_64__ -I. -Iinclude --library=posix \
  --error-exitcode=1 --quiet --template='{file}:{line}: {severity}: {message} [{id}]' \
  "${dirs[@]}" 2>"$out/findings.txt" && rc=0 || rc=$?
n=$(grep -c ': \(error\|warning\|performance\|portability\|style\): ' "$out/findings.txt" || true)
echo "cppcheck: $n finding(s)"
cat "$out/findings.txt"
exit $rc
