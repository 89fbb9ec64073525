#!/bin/sh
# Build tests/subproject_consumer, a downstream meson project, with libcnn as
# its subproject, then run it.
#   subproject_consumer.sh SOURCE_ROOT SCRATCH_DIR
# The project is copied to SCRATCH_DIR and subprojects/cnn there links back to
# SOURCE_ROOT (a link inside the repository itself would be a loop).
# Environment: MESON (default: meson on PATH).
set -eu

src=$(cd "$1" && pwd)
scratch=$2
meson=${MESON:-meson}

fail() {
    echo "subproject_consumer: FAIL: $*" >&2
    exit 1
}

rm -rf "$scratch"
mkdir -p "$scratch/project/subprojects"
scratch=$(cd "$scratch" && pwd)
cp "$src/tests/subproject_consumer/meson.build" "$src/tests/subproject_consumer/main.c" \
    "$scratch/project/"
ln -s "$src" "$scratch/project/subprojects/cnn"

# --force-fallback-for: use the subproject even where a cnn.pc is installed.
"$meson" setup "$scratch/build" "$scratch/project" --force-fallback-for=cnn
"$meson" compile -C "$scratch/build"

exe=$scratch/build/subproject_consumer
# meson test may point LD_LIBRARY_PATH at another libcnn; the build's rpath must suffice.
unset LD_LIBRARY_PATH
# The program must run against the subproject's libcnn, not an installed one.
loaded=$(ldd "$exe" | sed -n 's/.*libcnn\.so\.1 => \([^ ]*\).*/\1/p')
case $loaded in
"$scratch/build/subprojects/cnn/"*) ;;
*) fail "subproject_consumer would load libcnn from '$loaded'" ;;
esac
"$exe" || fail "the program reported failures (exit status $?)"
echo "subproject_consumer: OK"
