#!/usr/bin/env bash
# make bench: build, then run the save/restore benchmark on a 1 GiB and a 4 GiB
# simulated guest (bench_stream) and, when it was built, the QMP benchmark
# (bench_qmp). A private sim daemon serves the run and is killed by its pid at
# the end. Benchmarks report; they do not fail on a missed target.
#
#   scripts/bench.sh BUILD_DIR          (BENCH_SIZES=1G,4G to change the sizes,
#                                        BENCH_HUGE_PAGES=0 for 4 KiB guest pages)
set -euo pipefail
build=${1:-build}
sizes=${BENCH_SIZES:-1G,4G}

cmake --build "$build" -j"$(nproc)"
bench=$build/bench/bench_stream
if [ ! -x "$bench" ]; then
  echo "bench: $bench was not built (it needs the sim backend and lib/lockstep.c)" >&2
  exit 1
fi

work=$(mktemp -d /tmp/lockstep-bench.XXXXXX)
shm=$(mktemp -d /dev/shm/lockstep-bench.XXXXXX)   # the tmpfs leg's file lives here
export LOCKSTEP_RUNDIR=$work/run
export LOCKSTEP_SIMD=$build/backends/sim/lockstep-simd
export LOCKSTEP_SIMD_IDLE_EXIT=300   # a safety net if this script is killed
cleanup() {
  if [ -f "$LOCKSTEP_RUNDIR/simd.pid" ]; then
    kill "$(cat "$LOCKSTEP_RUNDIR/simd.pid")" 2>/dev/null || true
  fi
  rm -rf "$work" "$shm"
}
trap cleanup EXIT

# The largest guest needs its memory twice over (guest + tmpfs file, or guest +
# restored copy) plus room to breathe.
largest_mib=0
IFS=, read -ra list <<<"$sizes"
for s in "${list[@]}"; do
  case $s in
    *G|*GiB) m=$(( ${s%%G*} * 1024 )) ;;
    *M|*MiB) m=${s%%M*} ;;
    *) echo "bench: BENCH_SIZES: '$s' is not like 1G or 256M" >&2; exit 1 ;;
  esac
  [ "$m" -gt "$largest_mib" ] && largest_mib=$m
done
need_mib=$(( 3 * largest_mib + 2048 ))   # guest, its restored copy, the pool (below)
avail_mib=$(( $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) / 1024 ))
shm_mib=$(( $(df -Pk /dev/shm | awk 'NR == 2 {print $4}') / 1024 ))
if [ "$avail_mib" -lt "$need_mib" ] || [ "$shm_mib" -lt $(( largest_mib + 64 )) ]; then
  echo "bench: a ${largest_mib} MiB guest needs ~${need_mib} MiB of RAM and $(( largest_mib + 64 )) MiB" \
       "free in /dev/shm; have ${avail_mib} MiB and ${shm_mib} MiB: running 1G only" >&2
  sizes=1G
fi

# The daemons play Xen's heap (backends/sim/mempool.h): a destroyed guest's
# memory is allocated again in the background for the next guest, as a Xen
# host's new guests get pages its heap already holds. Enough for the largest
# guest's restored copy and one smaller one; each leg says which memory its
# receiver had.
export LOCKSTEP_SIMD_MEMORY_POOL=$(( largest_mib + largest_mib / 4 + 1024 ))M
echo "sim daemons keep up to $LOCKSTEP_SIMD_MEMORY_POOL of destroyed guests' memory ready for the next ones"

# Guest memory in 2 MiB pages, as Xen backs HVM guests with superpages
# (lockstep-simd --huge-pages: a private tmpfs, which needs root). On this kind
# of nested VM, 1 GiB of guest memory in 4 KiB pages reads at ~0.6 of a hot
# buffer even by sendfile, in 2 MiB pages at ~0.85-0.9 (backends/sim/guestmem.h).
# BENCH_HUGE_PAGES=0 keeps memfds in 4 KiB pages.
if [ "${BENCH_HUGE_PAGES:-1}" != 0 ] && [ "$(id -u)" = 0 ]; then
  export LOCKSTEP_SIMD_HUGE_PAGES=1
  echo "sim daemons back guest memory with 2 MiB pages (BENCH_HUGE_PAGES=0: 4 KiB pages)"
else
  unset LOCKSTEP_SIMD_HUGE_PAGES
  echo "sim daemons back guest memory with 4 KiB pages (memfds)"
fi

echo "== bench_stream: save/restore throughput (sizes $sizes) =="
timeout 900 "$bench" --sizes "$sizes" --shm-dir "$shm" || echo "bench_stream exited with status $?"

# The daemon's own timings of the state digests each save and restore takes
# (part of every whole-operation time above).
if [ -f "$LOCKSTEP_RUNDIR/simd.log" ]; then
  echo
  echo "== sim daemon: domain digests (taken inside each save at suspend and each restore at the end) =="
  grep -E "digest [0-9a-f]+\.\.\. in [0-9]+ ms" "$LOCKSTEP_RUNDIR/simd.log" \
    | sed -E 's/^.*(domain [0-9]+): digest [0-9a-f]+\.\.\. in ([0-9]+ ms).*/  \1: \2/' || true
fi

if [ -x "$build/bench/bench_migrate" ]; then
  echo
  echo "== bench_migrate: live migration of a 1 GiB guest over loopback TCP =="
  timeout 900 "$build/bench/bench_migrate" --lockstep "$build/cli/lockstep" \
    || echo "bench_migrate exited with status $?"
fi

if [ -x "$build/bench/bench_dmload" ]; then
  echo
  echo "== bench_dmload: a device state loaded into QEMU 7.2 through a standby QEMU =="
  timeout 300 "$build/bench/bench_dmload" || echo "bench_dmload exited with status $?"
fi

if [ -x "$build/bench/bench_colo" ]; then
  echo
  echo "== bench_colo: COLO checkpoints with a real QEMU vs the stand-in; network output through colo-compare vs direct =="
  timeout 300 "$build/bench/bench_colo" || echo "bench_colo exited with status $?"
fi

if [ -x "$build/bench/bench_colo_disk" ]; then
  echo
  echo "== bench_colo_disk: a guest's disk writes with COLO block replication vs without =="
  timeout 300 "$build/bench/bench_colo_disk" || echo "bench_colo_disk exited with status $?"
fi

if [ -x "$build/bench/bench_qmp" ]; then
  echo
  echo "== bench_qmp =="
  timeout 300 "$build/bench/bench_qmp" || echo "bench_qmp exited with status $?"
fi
