#!/usr/bin/env bash
# test/fuzz/run.sh BUILD HARNESS SECONDS - run one harness of the fuzz build:
# first every regression input (test/fuzz/regress/HARNESS/, each once: any
# that crashes or hangs fails at once), then a fuzz of SECONDS from the seed
# corpora (generated in BUILD/seeds/, hand-written in test/fuzz/seeds/) and
# the corpus earlier runs grew (BUILD/corpus/HARNESS/, kept between runs).
# A crash leaves its input in BUILD/artifacts/HARNESS/; copy it into
# test/fuzz/regress/HARNESS/ with the fix. Prints executions per second.
set -euo pipefail
build=$1 h=$2 seconds=$3
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/test/fuzz/fuzz_$h
[ -x "$bin" ] || { echo "fuzz: $bin is not built (test/fuzz/build.sh)" >&2; exit 1; }
export FSM_STRICT=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Large inputs are streams; the other harnesses read small messages.
case $h in
  inspect|restore|migrate) max_len=400000 ;;
  *) max_len=16384 ;;
esac
common=(-timeout=20 -rss_limit_mb=3072 -max_len=$max_len)

# Run directories of crashed runs (their atexit never ran) go with this one.
export TMPDIR=$build/tmp/$h
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT

regress=$here/regress/$h
if compgen -G "$regress/*" >/dev/null; then
  n=$(ls "$regress" | wc -l)
  echo "fuzz_$h: $n regression input(s)"
  if ! "$bin" "${common[@]}" "$regress"/* >"$build/regress_$h.log" 2>&1; then
    tail -n 60 "$build/regress_$h.log"
    echo "fuzz_$h: a regression input fails again" >&2
    exit 1
  fi
fi

corpus=$build/corpus/$h
artifacts=$build/artifacts/$h
mkdir -p "$corpus" "$artifacts"
dirs=("$corpus")
for d in "$build/seeds/$h" "$here/seeds/$h" "$regress"; do
  [ -d "$d" ] && dirs+=("$d")
done
log=$build/fuzz_$h.log
set +e
"$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1
rc=$?
set -e
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
echo "fuzz_$h: ${runs:-?} runs in ${seconds}s, ${speed:-?} exec/s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l)"
if [ $rc -ne 0 ]; then
  tail -n 60 "$log"
  echo "fuzz_$h: FAILED; the input is in $artifacts/ (keep it in $regress/ with the fix)" >&2
  exit 1
fi
