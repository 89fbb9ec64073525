#!/bin/sh
# Runs conv_bench, onednn_bench (when built) and torch_bench.py alternately for
# several rounds, one process per program and thread count, then prints per
# case and thread count the median over rounds of the per-round ratios
# libcnn/oneDNN and libcnn/PyTorch (bench/compare.py).
#
# usage: bench/run_all.sh [--build DIR] [--out DIR] [--rounds N] [--threads "1 2"]
#                         [--filter NAME] [--quick]
#   --build DIR   meson build directory holding bench/conv_bench (default: build)
#   --out DIR     where the CSV files and logs go (default: DIR/bench-results)
#   --rounds N    rounds of alternating runs (default 3; --quick: 2)
#   --threads L   space- or comma-separated thread counts (default "1 2")
#   --filter NAME only the cases whose name contains NAME
#   --quick       pass --quick to every program (smoke run; noisy)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=build
out=
rounds=
threads="1 2"
quick=
filter=
python=/usr/bin/python3

while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --threads) threads=$(echo "$2" | tr ',' ' '); shift 2 ;;
        --filter) filter=$2; shift 2 ;;
        --quick) quick=--quick; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run_all.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$rounds" ] || rounds=$([ -n "$quick" ] && echo 2 || echo 3)
[ -n "$out" ] || out=$build/bench-results

conv_bench=$build/bench/conv_bench
onednn_bench=$build/bench/onednn_bench
if [ ! -x "$conv_bench" ]; then
    echo "run_all.sh: $conv_bench not found; build first: meson setup $build --buildtype=release && ninja -C $build" >&2
    exit 2
fi
have_onednn=yes
if [ ! -x "$onednn_bench" ]; then
    have_onednn=
    echo "run_all.sh: oneDNN not found at configure time (apt-get install libdnnl-dev, then reconfigure): skipping onednn_bench"
fi
have_torch=yes
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
    have_torch=
    echo "run_all.sh: $python cannot import torch (apt-get install python3-torch): skipping torch_bench.py"
fi

mkdir -p "$out"
rm -f "$out"/r*_libcnn_t*.csv "$out"/r*_onednn_t*.csv "$out"/r*_torch_t*.csv
common="$quick"
[ -z "$filter" ] || common="$common --filter $filter"

run_one() { # program round threads
    log=$out/r$2_$1_t$3.log
    csv=$out/r$2_$1_t$3.csv
    case "$1" in
        libcnn) "$conv_bench" $common --threads "$3" --csv "$csv" >"$log" 2>&1 ;;
        onednn) OMP_NUM_THREADS=$3 OMP_WAIT_POLICY=passive \
                    "$onednn_bench" $common --threads "$3" --csv "$csv" >"$log" 2>&1 ;;
        torch) "$python" "$here/torch_bench.py" $common --threads "$3" --csv "$csv" >"$log" 2>&1 ;;
    esac || { echo "run_all.sh: $1 failed (round $2, $3 threads); see $log" >&2; return 1; }
    echo "  round $2, $3 thread(s): $1 done"
}

programs=libcnn
[ -z "$have_onednn" ] || programs="$programs onednn"
[ -z "$have_torch" ] || programs="$programs torch"

status=0
r=1
while [ "$r" -le "$rounds" ]; do
    # Rotate the order each round so no program always runs right after another.
    order=$programs
    i=1
    while [ "$i" -lt "$r" ]; do
        first=${order%% *}
        [ "$first" = "$order" ] || order="${order#* } $first"
        i=$((i + 1))
    done
    for t in $threads; do
        for p in $order; do
            run_one "$p" "$r" "$t" || status=1
        done
    done
    r=$((r + 1))
done

echo
echo "Median over $rounds rounds of per-round ratios (> 1: libcnn faster); /ceiling is libcnn's"
echo "median per-repetition ratio to one cblas_sgemm of the layer's im2col GEMM. Logs and CSV: $out"
if [ -n "$quick" ]; then echo "(--quick: smoke run on whatever machine this is; not a measurement)"; fi
echo
"$python" "$here/compare.py" "$out" "$out/summary.csv" || status=1
exit $status
