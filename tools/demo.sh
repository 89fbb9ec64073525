#!/bin/sh
# Sets everything up, builds libcnn and runs the main demo.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
# The demo needs no test framework: its own build directory leaves the tests out.
[ -d build-demo/meson-private ] || meson setup build-demo -Dtests=false
meson compile -C build-demo
./build-demo/examples/lenet_demo
