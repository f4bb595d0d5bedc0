#!/usr/bin/env bash
# test/abi/abi_check.sh SO BASELINE HEADERS_DIR - liblockstep.so's ABI against
# the baseline kept in the tree (lib/abi/liblockstep.abi, written by abidw).
#
# Compatible: nothing removed, nothing changed; functions may be added (the
# test passes and says the baseline wants refreshing). Anything else fails,
# unless the SONAME moved (then the baseline must be refreshed with it).
# Refresh: cmake --build BUILD --target abi_baseline (README.md, "ABI").
# First the classifier is checked on two tiny libraries, so this test fails
# if abidiff or the classification stops seeing a break.
set -uo pipefail
so=$1 baseline=$2 headers=$3
command -v abidw >/dev/null && command -v abidiff >/dev/null ||
  { echo "skipped: abidw/abidiff missing (abigail-tools; scripts/install-deps.sh)"; exit 77; }
work=$(mktemp -d /tmp/lockstep-abi.XXXXXX)
trap 'rm -rf "$work"' EXIT
ABIDW=(abidw --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed)

soname_of() { sed -n "1s/.*soname='\([^']*\)'.*/\1/p" "$1"; }

# classify OLD.xml NEW.xml: prints compatible|added|incompatible|soname-moved
# and leaves abidiff's report in $work/report.
classify() {
  abidiff "$1" "$2" > "$work/report" 2>&1
  local rc=$?
  if [ $((rc & 3)) -ne 0 ]; then echo error; return; fi
  if [ "$(soname_of "$1")" != "$(soname_of "$2")" ]; then echo soname-moved; return; fi
  if [ $((rc & 8)) -ne 0 ]; then echo incompatible; return; fi
  if [ $rc -eq 0 ]; then echo compatible; return; fi
  # rc 4: an ABI change; only additions are compatible.
  if grep -qE 'changes summary: .*\b[1-9][0-9]* (Removed|Changed)' "$work/report"; then
    echo incompatible
  else
    echo added
  fi
}

fails=0
expect() {   # expect WHAT VERDICT OLD NEW
  local got; got=$(classify "$3" "$4")
  if [ "$got" = "$2" ]; then echo "ok   - $1: $got"; else
    echo "FAIL - $1: classified $got, want $2"; cat "$work/report"; fails=$((fails + 1)); fi
}

# The classifier on known cases.
cc=${CC:-cc}
mk() {   # mk NAME SONAME SOURCE
  printf '%b' "$3" > "$work/$1.c"
  "$cc" -g -shared -fPIC -Wl,-soname,"$2" -o "$work/$1.so" "$work/$1.c" &&
    "${ABIDW[@]}" "$work/$1.so" > "$work/$1.xml"
}
base='struct s { int a; int b; };\nint f(struct s *p);\nint f(struct s *p) { return p->a; }\n'
g='int g(void);\nint g(void) { return 1; }\n'
mk v1 libt.so.0 "$base" &&
mk added libt.so.0 "$base$g" &&
mk changed libt.so.0 "${base/int a;/long a;}$g" &&
mk removed libt.so.0 "$g" &&
mk moved libt.so.1 "$g" || { echo "FAIL - could not build the classifier's test libraries"; exit 1; }
expect "same library" compatible "$work/v1.xml" "$work/v1.xml"
expect "a function added" added "$work/v1.xml" "$work/added.xml"
expect "a struct member's type changed" incompatible "$work/v1.xml" "$work/changed.xml"
expect "a function removed" incompatible "$work/v1.xml" "$work/removed.xml"
expect "a function removed, SONAME moved" soname-moved "$work/v1.xml" "$work/moved.xml"

# liblockstep.so against its baseline.
if [ ! -f "$baseline" ]; then
  echo "FAIL - no baseline $baseline (cmake --build BUILD --target abi_baseline)"; exit 1
fi
"${ABIDW[@]}" --headers-dir "$headers" --drop-private-types "$so" > "$work/current.xml" ||
  { echo "FAIL - abidw could not read $so"; exit 1; }
if ! grep -q '<function-decl ' "$work/current.xml"; then
  echo "skipped: $so has no debug information (a Release build); the ABI is checked in make test's Debug build"
  exit 77
fi
verdict=$(classify "$baseline" "$work/current.xml")
case $verdict in
  compatible) echo "ok   - liblockstep ($(soname_of "$work/current.xml")): the ABI is the baseline's" ;;
  added) echo "ok   - liblockstep: compatible, functions added:"
         grep -E "^  \[A\]" "$work/report"
         echo "       (refresh the baseline: cmake --build BUILD --target abi_baseline)" ;;
  soname-moved) echo "ok   - liblockstep: the SONAME moved ($(soname_of "$baseline") -> $(soname_of "$work/current.xml")):"
                echo "       incompatible changes are allowed; refresh the baseline with it" ;;
  *) echo "FAIL - liblockstep: an incompatible ABI change against $baseline with SONAME" \
          "$(soname_of "$work/current.xml") unchanged. Either keep the ABI, or move the SONAME" \
          "(LOCKSTEP_VERSION_MAJOR) and refresh the baseline. abidiff says:"
     cat "$work/report"; fails=$((fails + 1)) ;;
esac
[ $fails -eq 0 ]
