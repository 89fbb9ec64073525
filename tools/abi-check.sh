#!/bin/sh
# Compares the ABI of a fresh -g build of libcnn.so.1 with the committed
# baseline lib/libcnn.abi. Any difference fails: abidiff 2.2 marks only symbol
# removals "incompatible", but a renumbered enum or a changed parameter type
# (exit 4) breaks callers too. Growing a size-prefixed descriptor at its end is
# allowed through lib/libcnn.abi.suppr.
#   tools/abi-check.sh BUILD-DIR            check
#   tools/abi-check.sh BUILD-DIR --update   rewrite the baseline (a deliberate ABI change)
set -eu
cd "$(dirname "$0")/.."
dir=${1:?usage: tools/abi-check.sh BUILD-DIR [--update]}
rm -rf "$dir"
meson setup "$dir" --buildtype=debug -Dtests=false -Dexamples=false >/dev/null
meson compile -C "$dir" >/dev/null
lib="$dir/libcnn.so.1"
if [ "${2:-}" = "--update" ]; then
    abidw --headers-dir include --no-corpus-path --out-file lib/libcnn.abi "$lib"
    echo "baseline lib/libcnn.abi rewritten"
    exit 0
fi
status=0
abidiff --no-added-syms --headers-dir2 include --suppressions lib/libcnn.abi.suppr \
    lib/libcnn.abi "$lib" || status=$?
if [ "$status" -ne 0 ]; then
    echo "ABI check: abidiff exited $status: the ABI differs from lib/libcnn.abi" >&2
    exit 1
fi
echo "ABI check: libcnn.so.1 matches lib/libcnn.abi"
