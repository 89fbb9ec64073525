#!/bin/sh
# Build libcnn from the source tree the way a user does, install it into a
# scratch prefix, and compile and run tests/consumer/consumer.c against the
# installed copy, found only through pkg-config.
#   install_consumer.sh shared|static SOURCE_ROOT SCRATCH_DIR
# shared: default_library=shared; the consumer links libcnn.so.1.
# static: default_library=both; the consumer links libcnn.a with
#         `pkg-config --static`, and must not need libcnn.so at run time.
# Environment: MESON, PKG_CONFIG, CC (a command, may hold several words),
# READELF, NM; each defaults to the usual name on PATH.
set -eu

mode=$1
src=$2
scratch=$3
meson=${MESON:-meson}
pkgconfig=${PKG_CONFIG:-pkg-config}
cc=${CC:-cc}
readelf=${READELF:-readelf}
nm=${NM:-nm}

fail() {
    echo "install_consumer ($mode): FAIL: $*" >&2
    exit 1
}

case $mode in
shared) library=shared ;;
static) library=both ;;
*) fail "unknown mode '$mode' (shared or static)" ;;
esac

rm -rf "$scratch"
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
prefix=$scratch/prefix

"$meson" setup "$scratch/build" "$src" --prefix "$prefix" --buildtype release \
    -Ddefault_library=$library -Dtests=false -Dexamples=false -Dbench=false
"$meson" install -C "$scratch/build"

# The libdir may be multiarch (lib/x86_64-linux-gnu on Debian): find it.
pcfiles=$(find "$prefix" -name cnn.pc -path '*/pkgconfig/*')
[ -n "$pcfiles" ] || fail "no cnn.pc installed under $prefix"
[ "$(printf '%s\n' "$pcfiles" | wc -l)" -eq 1 ] || fail "several cnn.pc installed: $pcfiles"
PKG_CONFIG_PATH=$(dirname "$pcfiles")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
libdir=$("$pkgconfig" --variable=libdir cnn)
case $libdir in
"$prefix"/*) ;;
*) fail "cnn.pc names libdir '$libdir', outside the prefix $prefix" ;;
esac
[ "$(dirname "$pcfiles")" = "$libdir/pkgconfig" ] || fail "cnn.pc is not in \$libdir/pkgconfig"
[ "$("$pkgconfig" --modversion cnn)" = "$("$meson" introspect --projectinfo "$scratch/build" |
    sed -n 's/.*"version": *"\([^"]*\)".*/\1/p')" ] || fail "cnn.pc version differs from the project's"

# cnn.h is the whole public API: no other header may be installed.
headers=$(find "$prefix" -name '*.h' -o -name '*.hpp' -o -name '*.hh')
includedir=$("$pkgconfig" --variable=includedir cnn)
[ "$headers" = "$includedir/cnn.h" ] || fail "installed headers are not exactly $includedir/cnn.h: $headers"

# The shared library is installed in both modes, with its SONAME and links.
[ -f "$libdir/libcnn.so.1" ] || fail "libcnn.so.1 not installed in $libdir"
soname=$("$readelf" -d "$libdir/libcnn.so.1" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = libcnn.so.1 ] || fail "SONAME of the installed library is '$soname', not libcnn.so.1"
if [ ! -L "$libdir/libcnn.so" ] || [ "$(readlink "$libdir/libcnn.so")" != libcnn.so.1 ]; then
    fail "libcnn.so is not a link to libcnn.so.1"
fi

exe=$scratch/consumer
if [ "$mode" = shared ]; then
    # shellcheck disable=SC2046 # pkg-config output is a list of words
    $cc -std=c11 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Werror \
        "$src/tests/consumer/consumer.c" -o "$exe" $("$pkgconfig" --cflags --libs cnn)
    "$readelf" -d "$exe" | grep -q 'NEEDED.*\[libcnn\.so\.1\]' ||
        fail "the consumer does not record libcnn.so.1 as NEEDED"
    # Only the scratch libdir: meson test may have put its own build dir here.
    LD_LIBRARY_PATH=$libdir
    export LD_LIBRARY_PATH
    loaded=$(ldd "$exe" | sed -n 's/.*libcnn\.so\.1 => \([^ ]*\).*/\1/p')
    [ "$loaded" = "$libdir/libcnn.so.1" ] || fail "the consumer would load libcnn from '$loaded'"
else
    [ -f "$libdir/libcnn.a" ] || fail "libcnn.a not installed in $libdir"
    # A static archive has no visibility or version script to hide internals:
    # every global it defines must carry the library's prefix.
    unprefixed=$("$nm" -g --defined-only "$libdir/libcnn.a" |
        awk 'NF == 3 && $3 !~ /^cnn_/ { print $3 }')
    [ -z "$unprefixed" ] || fail "libcnn.a defines globals without the cnn_ prefix: $unprefixed"
    # Only libcnn is forced static: its dependencies (OpenBLAS, libm) come from
    # Libs.private / Requires.private and may be shared.
    libs=
    for flag in $("$pkgconfig" --static --libs cnn); do
        if [ "$flag" = -lcnn ]; then
            flag="-Wl,-Bstatic -lcnn -Wl,-Bdynamic"
        fi
        libs="$libs $flag"
    done
    # shellcheck disable=SC2046,SC2086
    $cc -std=c11 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Werror \
        "$src/tests/consumer/consumer.c" -o "$exe" $("$pkgconfig" --static --cflags cnn) $libs
    if "$readelf" -d "$exe" | grep -q 'NEEDED.*libcnn'; then
        fail "the statically linked consumer still needs libcnn: $("$readelf" -d "$exe" | grep NEEDED)"
    fi
    "$nm" "$exe" | grep -q ' T cnn_forward$' || fail "cnn_forward is not linked into the consumer"
    # With no library path at all, a hidden need for libcnn.so would fail to load.
    unset LD_LIBRARY_PATH
    ! ldd "$exe" | grep libcnn || fail "ldd lists libcnn for the statically linked consumer"
fi

"$exe" || fail "the consumer reported failures (exit status $?)"
echo "install_consumer ($mode): OK"
