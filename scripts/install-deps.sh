#!/usr/bin/env bash
# Install what lockstep needs to build, test and demo on Debian 12.
# Idempotent: a no-op (no apt-get call) when everything is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libyajl-dev libcmocka-dev libxen-dev
  libgnutls28-dev gnutls-bin  # TLS on migration channels; certtool makes the tests' certificates
  xen-utils-4.17            # Xen's own stream verifier, verify-stream-v2
  qemu-system-x86 qemu-utils  # a real QEMU device model and disk tools
  graphviz                  # state diagrams
  mandoc                    # man pages: mandoc -Tlint in make test
  python3 iproute2 procps
  clang-14 libfuzzer-14-dev libclang-rt-14-dev  # the fuzz build (test/fuzz/)
  cppcheck                  # static analysis in make test (test/static/)
  valgrind                  # make soak: memcheck over a sample (test/soak/valgrind.sh)
  abigail-tools             # abidw/abidiff: the ABI check of liblockstep.so
  debhelper dpkg-dev fakeroot lintian   # the Debian packages (debian/) and their test
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
