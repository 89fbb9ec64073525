#!/bin/sh
# Sets everything up, builds libcnn and runs the main demo.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
[ -d build/meson-private ] || meson setup build
meson compile -C build
./build/examples/lenet_demo
