#!/bin/bash
# Sets everything up and runs the whole test suite: the plain build's tests,
# the same Check suites under ASan+UBSan, the threading suite under TSan, the
# Check suites under valgrind memcheck, and the ABI check. Exits non-zero on
# any failure and ends with one "N passed, N failed, N skipped" line.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sh tools/install-deps.sh --test

out=${CNN_TEST_DIR:-$root/build-test}
mkdir -p "$out"
passed=0 failed=0 skipped=0
failures=()

# Adds the counts of one `meson test` run to the totals. meson names the log
# after the wrapper when there is one (testlog-valgrind.json), hence the glob.
count_results() {
    local counts
    counts=$(/usr/bin/python3 - "$1"/meson-logs/testlog*.json <<'PY'
import glob, json, sys
p = f = s = 0
lines = [line for path in sys.argv[1:] if glob.glob(path) for line in open(path)]
for line in lines:
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
PY
)
    read -r p f s <<<"$counts"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

# stage NAME BUILD-DIR SETUP-ARGS... -- TEST-ARGS...
stage() {
    local name=$1 dir=$2; shift 2
    local setup=() tests=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    tests=("$@")
    echo "=== $name"
    rm -rf "$dir"
    if ! meson setup "$dir" "${setup[@]}" >"$out/$name.setup.log" 2>&1; then
        cat "$out/$name.setup.log"; failures+=("$name (setup)"); failed=$((failed + 1)); return
    fi
    if ! meson compile -C "$dir" >"$out/$name.build.log" 2>&1; then
        tail -50 "$out/$name.build.log"; failures+=("$name (build)"); failed=$((failed + 1)); return
    fi
    if ! meson test -C "$dir" --print-errorlogs "${tests[@]}"; then
        failures+=("$name")
    fi
    count_results "$dir"
}

export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600}

stage plain "$out/plain" -Dwerror=true --buildtype=debugoptimized --

# Outside processes (pkg-config consumer, Python) cannot load a sanitized
# libcnn without preloading the runtime, so these runs take the Check suites only.
CC=clang stage asan-ubsan "$out/asan" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all \
    --buildtype=debugoptimized -- --suite check --suite examples

if [ -f tests/tsan.supp ]; then
    TSAN_OPTIONS="suppressions=$root/tests/tsan.supp halt_on_error=1" \
    CC=clang stage tsan "$out/tsan" -Db_sanitize=thread -Db_lundef=false \
        --buildtype=debugoptimized -- --suite threads
fi

# Check's fork mode hides leaks from valgrind; CNN_TEST_SMALL shrinks the sizes
# because valgrind runs OpenBLAS's AVX2 kernels ~3000x slower. Valgrind 3.19
# cannot execute AVX-512 (SIGILL) and hides it from CPUID, so libcnn takes its
# AVX2 paths there anyway; CNN_MAX_SIMD=avx2 says so and keeps it that way.
CK_FORK=no CNN_TEST_SMALL=1 CNN_MAX_SIMD=avx2 stage valgrind "$out/valgrind" --buildtype=debug -- \
    --suite check --timeout-multiplier 4 \
    --wrapper "valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible --quiet"

echo "=== abi"
if tools/abi-check.sh "$out/abi"; then
    passed=$((passed + 1))
else
    failures+=("abi"); failed=$((failed + 1))
fi

if [ ${#failures[@]} -gt 0 ]; then
    echo "failed stages: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ ${#failures[@]} -eq 0 ] && [ "$failed" -eq 0 ]
