#!/usr/bin/env bash
# test/debian/package.sh SRC - the Debian packages, end to end, as a user
# gets them: dpkg-buildpackage -us -uc -b on a copy of the tree (tests off,
# no debug-symbol packages, -j2, -O0: this tests the packaging, not the
# code), lintian with no error, the three packages unpacked into a scratch
# root (dpkg -x: the real system is not touched),
# then the example toolstack (examples/toolstack.c) built against the
# installed files only, found through pkg-config, and run against the
# packaged lockstep-simd. Skipped (77) with the reason where it cannot run.
set -uo pipefail
src=$1
skip() { echo "skipped: $*"; exit 77; }
for tool in dpkg-buildpackage dpkg-checkbuilddeps dh fakeroot lintian pkg-config cc; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/install-deps.sh installs it)"
done
[ -f "$src/examples/toolstack.c" ] || skip "no examples/toolstack.c to build against the packages"
missing=$(cd "$src" && dpkg-checkbuilddeps 2>&1) || skip "build dependencies missing: $missing"

work=$(mktemp -d /tmp/lockstep-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
t0=$(date +%s)

# A copy of the tree without build directories (dpkg-buildpackage builds in
# place and writes the packages next to it).
tree=$work/lockstep
mkdir -p "$tree"
tar -C "$src" --exclude='./build*' --exclude=./.git --exclude=./out -cf - . | tar -C "$tree" -xf -
if (cd "$tree" && DEB_BUILD_OPTIONS="nocheck noddebs noopt parallel=2" \
      dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1; then
  ok "dpkg-buildpackage -us -uc -b ($(( $(date +%s) - t0 )) s)"
else
  fail "dpkg-buildpackage failed:"; tail -n 40 "$work/build.log"; exit 1
fi
for p in liblockstep0 liblockstep-dev lockstep; do
  if ls "$work/${p}_"*.deb >/dev/null 2>&1; then ok "package $p built"
  else fail "no package $p in: $(ls "$work")"; fi
done

t1=$(date +%s)
lintian --tag-display-limit 0 "$work"/lockstep_*.changes > "$work/lintian.log" 2>&1
if grep -q '^E: ' "$work/lintian.log"; then
  fail "lintian errors:"; grep '^E: ' "$work/lintian.log"
else
  ok "lintian: no errors ($(grep -c '^W: ' "$work/lintian.log") warnings, $(( $(date +%s) - t1 )) s)"
  grep '^W: ' "$work/lintian.log" | sed 's/^/       /'
fi

root=$work/root
for deb in "$work"/*.deb; do dpkg -x "$deb" "$root"; done
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=$root/usr/lib/$multiarch
[ -L "$libdir/liblockstep.so.0" ] && [ -f "$root/usr/include/lockstep/lockstep.h" ] &&
  [ -x "$root/usr/bin/lockstep" ] && [ -x "$root/usr/bin/lockstep-simd" ] &&
  [ -x "$root/usr/bin/fsm-dot" ] && ls "$root"/usr/share/doc/lockstep/diagrams/*.svg >/dev/null 2>&1 &&
  ok "unpacked: library, headers, programs, diagrams" || fail "unpacked tree incomplete: $(cd "$root" && find . -type f | sort)"

# Only the scratch root's lockstep.pc; libuv's from the system (the
# dependency liblockstep-dev declares). The sysroot prefixes lockstep's
# -I and -L with the scratch root.
export PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_LIBDIR=$libdir/pkgconfig:/usr/lib/$multiarch/pkgconfig:/usr/share/pkgconfig
flags=$(pkg-config --cflags --libs lockstep) || { fail "pkg-config lockstep: $flags"; exit 1; }
case $flags in
  *"-I$root/usr/include"*"-L$libdir"*) ok "pkg-config --cflags --libs lockstep: $flags" ;;
  *) fail "pkg-config gave flags outside the scratch root: $flags" ;;
esac
# shellcheck disable=SC2086
if cc -o "$work/example" "$src/examples/toolstack.c" $flags 2> "$work/cc.log"; then
  ok "the example builds against the installed files"
else
  fail "the example does not build:"; cat "$work/cc.log"; exit 1
fi

# Run it: the packaged library, CLI and daemon, nothing from the build tree.
export LD_LIBRARY_PATH=$libdir
export LOCKSTEP_BIN=$root/usr/bin/lockstep LOCKSTEP_SIMD=$root/usr/bin/lockstep-simd
# ldd's output read whole first: with pipefail, a grep -q that stops reading
# early can fail the pipeline by ldd's SIGPIPE (seen once under load).
libs=$(ldd "$work/example")
if grep -q "liblockstep.so.0 => $libdir/" <<<"$libs"; then
  ok "the example loads the packaged liblockstep.so.0"
else
  fail "the example loads another liblockstep: $(grep lockstep <<<"$libs")"
fi
if bash "$src/examples/with_sim.sh" bash "$src/examples/run_example.sh" "$work/example"; then
  ok "the example runs against the packaged library and daemon"
else
  fail "the example failed against the packages"
fi
echo "# $(( $(date +%s) - t0 )) s in all"
[ $fails -eq 0 ]
