#!/bin/sh
# Installs the Debian 12 packages libcnn needs (as root). With --test, also what
# the whole test suite needs. Does nothing when all of them are already there.
set -eu
packages="build-essential pkgconf meson ninja-build libopenblas-dev"
if [ "${1:-}" = "--test" ]; then
    packages="$packages check g++ python3 python3-numpy python3-torch valgrind abigail-tools clang libclang-rt-14-dev"
fi
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi
