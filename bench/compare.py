#!/usr/bin/python3
"""Joins the CSV files of several rounds of conv_bench, onednn_bench and
torch_bench (written by run_all.sh as r<round>_<impl>_t<threads>.csv) and
prints, per case and thread count, the median over rounds of the per-round
ratio libcnn/oneDNN and libcnn/PyTorch (GFLOP/s for conv layers, images/s for
LeNet-5), beside libcnn's own median ratio to its GEMM ceiling.

usage: compare.py OUT_DIR [SUMMARY_CSV]"""
import csv
import glob
import os
import re
import statistics
import sys

FILE_NAME = re.compile(r"r(\d+)_(libcnn|onednn|torch)_t(\d+)\.csv$")


def load(out_dir):
    """{(impl, kind, name, threads): {round: row}}"""
    table = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "r*_*_t*.csv"))):
        m = FILE_NAME.search(os.path.basename(path))
        if not m:
            continue
        rnd = int(m.group(1))
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                key = (row["impl"], row["kind"], row["name"], int(row["threads"]))
                table.setdefault(key, {})[rnd] = row
    return table


def speed(row):
    """GFLOP/s of a conv row, images/s of an end-to-end row; None if absent."""
    value = row["gflops"] if row["kind"] == "conv" else row["images_per_s"]
    return float(value) if value else None


def median_ratio(mine, other):
    """Median over the rounds both ran of mine/other, and how many rounds that was."""
    ratios = [speed(mine[r]) / speed(other[r]) for r in mine
              if r in other and speed(mine[r]) and speed(other[r])]
    return (statistics.median(ratios), len(ratios)) if ratios else (None, 0)


def fmt(value, width, decimals):
    return f"{value:{width}.{decimals}f}" if value is not None else f"{'-':>{width}}"


def main(argv):
    if len(argv) < 1:
        sys.exit(__doc__)
    table = load(argv[0])
    libcnn = [k for k in table if k[0] == "libcnn"]  # in the order conv_bench printed them
    if not libcnn:
        sys.exit(f"compare.py: no libcnn results in {argv[0]}")
    rows = []
    print(f"{'case':<13} {'thr':>3} {'unit':<9} {'libcnn':>9} {'oneDNN':>9} {'PyTorch':>9} "
          f"{'/ceiling':>8} {'/oneDNN':>8} {'/PyTorch':>8} {'rounds':>6}")
    for key in libcnn:
        _, kind, name, threads = key
        mine = table[key]
        onednn = table.get(("onednn", kind, name, threads), {})
        torch = table.get(("torch", kind, name, threads), {})
        med = lambda runs: (statistics.median(s for s in (speed(r) for r in runs.values()) if s)
                            if any(speed(r) for r in runs.values()) else None)
        ceiling = [float(r["ratio_median"]) for r in mine.values() if r["ratio_median"]]
        vs_onednn, n_onednn = median_ratio(mine, onednn)
        vs_torch, n_torch = median_ratio(mine, torch)
        unit = "GFLOP/s" if kind == "conv" else "images/s"
        summary = dict(name=name, kind=kind, threads=threads, unit=unit,
                       libcnn=med(mine), onednn=med(onednn) if onednn else None,
                       torch=med(torch) if torch else None,
                       libcnn_over_ceiling=statistics.median(ceiling) if ceiling else None,
                       libcnn_over_onednn=vs_onednn, libcnn_over_torch=vs_torch,
                       rounds=len(mine), rounds_onednn=n_onednn, rounds_torch=n_torch)
        rows.append(summary)
        decimals = 2 if kind == "conv" else 0
        print(f"{name:<13} {threads:>3} {unit:<9} {fmt(summary['libcnn'], 9, decimals)} "
              f"{fmt(summary['onednn'], 9, decimals)} {fmt(summary['torch'], 9, decimals)} "
              f"{fmt(summary['libcnn_over_ceiling'], 8, 3)} {fmt(vs_onednn, 8, 3)} "
              f"{fmt(vs_torch, 8, 3)} {len(mine):>6}")
    if len(argv) > 1:
        with open(argv[1], "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0].keys()))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else round(v, 4) if isinstance(v, float) else v)
                                 for k, v in row.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
