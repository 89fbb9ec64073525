#!/bin/sh
# Cross-check whole nets against PyTorch (meson test 'pytorch_crosscheck').
# Usage: pytorch_check.sh DRIVER PYTHON_SCRIPT SCRATCH_DIR
#   DRIVER         the test_pytorch executable
#   PYTHON_SCRIPT  tests/pytorch_lenet.py, which writes the reference nets
#   SCRATCH_DIR    a directory under the build dir for the reference files
# Exit 77 (meson's SKIP) when /usr/bin/python3 or torch is missing, unless CI is set:
# CI installs what the tests need, so there a missing torch is a failure.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 DRIVER PYTHON_SCRIPT SCRATCH_DIR" >&2
    exit 2
fi
driver=$1
script=$2
scratch=$3
python=/usr/bin/python3

missing() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL: $1, and CI is set: the CI setup must install python3-torch" >&2
        exit 1
    fi
    echo "SKIP: $1; the PyTorch cross-check did not run" >&2
    exit 77
}

[ -x "$python" ] || missing "$python is missing"
"$python" -c "import torch, numpy" 2>/dev/null || missing "$python cannot import torch and numpy"

mkdir -p "$scratch" || exit 2
# A directory of its own per run, so concurrent runs never share files.
work=$(mktemp -d "$scratch/run.XXXXXX") || exit 2

"$python" "$script" "$work" || { echo "FAIL: $script failed; files kept in $work" >&2; exit 1; }

echo "== libcnn against PyTorch (weights imported with CNN_LAYOUT_PYTORCH)"
"$driver" "$work"
status=$?

echo "== negative controls: the same weights imported in the wrong layout must not match"
"$driver" --negative "$work"
negative=$?

if [ $status -ne 0 ] || [ $negative -ne 0 ]; then
    echo "FAIL: cross-check exit $status, negative controls exit $negative; files kept in $work" >&2
    exit 1
fi
rm -rf "$work"
echo "PASS: every net matches PyTorch and every wrong-layout import is caught"
exit 0
