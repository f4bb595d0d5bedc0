#!/usr/bin/env bash
# test/fuzz/build.sh SRC BUILD - set up and build the fuzz build: clang with
# -fsanitize=fuzzer-no-link,address,undefined over every source (CMake's
# LOCKSTEP_FUZZ), the harnesses, their seed corpora and the sim daemon they
# start. Incremental: a second run rebuilds only what changed.
set -euo pipefail
src=$1 out=$2
cc=$(command -v clang-14 || command -v clang || true)
if [ -z "$cc" ]; then
  echo "fuzz: clang-14 is missing (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
if [ ! -f "$out/CMakeCache.txt" ]; then
  # -O1 keeps asserts (Debug) at a speed fuzzing can live with; make test's
  # few seconds a harness ask for FUZZ_OPT=-O0, half the compile's CPU.
  CC=$cc cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="${FUZZ_OPT:--O1} -g" \
    -DLOCKSTEP_FUZZ=ON -DLOCKSTEP_TESTS=OFF >/dev/null
fi
cmake --build "$out" -j"${FUZZ_JOBS:-$(nproc)}" --target fuzz_all
