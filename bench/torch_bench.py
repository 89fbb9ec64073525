#!/usr/bin/python3
"""PyTorch (eager) baseline for bench/: the conv suite of conv_bench through
torch.nn.functional.conv2d under torch.no_grad(), and LeNet-5 end to end at
batch 1 and 64. Same timing method and CSV schema as conv_bench.

The thread count must be in the environment before torch is imported
(torch.set_num_threads alone does not limit OpenBLAS), so each thread count
runs in a child process started with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS set; this parent process never imports torch.

Run with /usr/bin/python3 (Debian's python3-torch)."""
import argparse
import csv
import math
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CSV_FIELDS = ["impl", "kind", "name", "threads", "batch", "ms_median", "gflops",
              "ceiling_gflops", "ratio_median", "ratio_min", "ratio_max", "ws_bytes",
              "ws_source", "images_per_s", "note", "reps"]


def load_suite():
    """The layer table of bench_common.c, so that there is one list of layers."""
    with open(os.path.join(HERE, "bench_common.c")) as source:
        text = source.read()
    row = re.compile(r'\{\s*"(\w+)",\s*' + r",\s*".join([r"(\d+)"] * 8) + r"\s*\}")
    suite = []
    for m in row.finditer(text):
        n, h, w, cin, cout, k, s, p = (int(v) for v in m.groups()[1:])
        suite.append(dict(name=m.group(1), n=n, h=h, w=w, cin=cin, cout=cout, k=k, s=s, p=p))
    if not suite:
        sys.exit("torch_bench: found no layer table in bench_common.c")
    return suite


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke runs; noisy)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--csv", help="also write the results as CSV")
    ap.add_argument("--filter", help="run only the cases whose name contains this")
    ap.add_argument("--reps", type=int, help="repetitions (>= 5; default 9, quick 5)")
    ap.add_argument("--samples", type=int, help="samples per repetition (default 7, quick 3)")
    ap.add_argument("--layout", choices=["channels_last", "nchw"], default="channels_last",
                    help="memory format of activations and weights (default channels_last)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        args.thread_counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        ap.error("--threads takes a comma-separated list of integers")
    if any(t < 1 for t in args.thread_counts):
        ap.error("thread counts must be at least 1")
    if args.reps is not None and args.reps < 5:
        ap.error("--reps must be at least 5")
    args.reps = args.reps or (5 if args.quick else 9)
    args.samples = args.samples or (3 if args.quick else 7)
    args.sample_ms = 0.2 if args.quick else 1.0
    return args


def selected(args, name):
    return not args.filter or args.filter in name


def time_calls(run, calls):
    start = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - start) * 1e3 / calls


def median_ms(run, args):
    """Warm-up, then reps x samples timed samples; median ms per call."""
    budget, spent, per_call, i = (10.0 if args.quick else 50.0), 0.0, 0.0, 0
    while i < 3 or spent < budget:
        per_call = time_calls(run, 1)
        spent += per_call
        i += 1
    calls = max(1, min(10000, math.ceil(args.sample_ms / per_call) if per_call > 0 else 1))
    samples = [time_calls(run, calls) for _ in range(args.reps * args.samples)]
    return statistics.median(samples)


def write_row(writer, **fields):
    if writer:
        writer.writerow({k: fields.get(k, "") for k in CSV_FIELDS})


def worker(args):
    threads = args.thread_counts[0]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var) != str(threads):
            sys.exit(f"torch_bench: worker needs {var}={threads} set before importing torch")
    import torch  # only here: after the environment is set
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    if torch.get_num_threads() != threads:
        sys.exit(f"torch_bench: torch uses {torch.get_num_threads()} threads, not {threads}")
    fmt = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    out_file = open(args.csv, "a", newline="") if args.csv else None
    writer = csv.DictWriter(out_file, CSV_FIELDS) if out_file else None
    print(f"\nPyTorch {torch.__version__} eager conv2d, {args.layout}, no_grad; "
          f"{threads} thread(s) (OMP/OPENBLAS/MKL_NUM_THREADS={threads}); "
          f"mkldnn {'on' if torch.backends.mkldnn.is_available() else 'off'}"
          f"{'; --quick: smoke run, noisy' if args.quick else ''}\n")
    print(f"{'case':<13} {'thr':>3} {'N HxWxCin>Cout k/s/p':<26} {'ms':>9} {'GFLOP/s':>8}")
    torch.manual_seed(0)
    with torch.no_grad():
        for l in load_suite():
            if not selected(args, l["name"]):
                continue
            x = (torch.rand(l["n"], l["cin"], l["h"], l["w"]) * 2 - 1).contiguous(memory_format=fmt)
            w = torch.randn(l["cout"], l["cin"], l["k"], l["k"]).contiguous(memory_format=fmt)
            b = torch.randn(l["cout"])
            conv = lambda: F.conv2d(x, w, b, stride=l["s"], padding=l["p"])
            y = conv()
            # Which layout the result really came back in (a fallback path may change it).
            got = "channels_last" if (y.is_contiguous(memory_format=torch.channels_last)
                                      and not y.is_contiguous()) else "nchw"
            ms = median_ms(conv, args)
            oh, ow = y.shape[2], y.shape[3]
            flops = 2.0 * l["n"] * oh * ow * l["cout"] * l["k"] * l["k"] * l["cin"]
            gflops = flops / (ms * 1e6)
            shape = f"{l['n']} {l['h']}x{l['w']}x{l['cin']}>{l['cout']} {l['k']}/{l['s']}/{l['p']}"
            print(f"{l['name']:<13} {threads:>3} {shape:<26} {ms:9.4f} {gflops:8.2f}  out {got}",
                  flush=True)
            write_row(writer, impl="torch", kind="conv", name=l["name"], threads=threads,
                      batch=l["n"], ms_median=f"{ms:.6f}", gflops=f"{gflops:.3f}",
                      note=f"{args.layout} in; {got} out", reps=args.reps)

        # LeNet-5 runs in both memory formats and the faster one counts: the
        # peer at its best (NCHW measured 20-30% faster here at batch 64).
        formats = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}
        for batch in (1, 64):
            name = f"lenet5_b{batch}"
            if not selected(args, name):
                continue
            timed = {}
            for layout, memory_format in formats.items():
                lenet = torch.nn.Sequential(
                    torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                    torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                    torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
                    torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10),
                    torch.nn.Softmax(dim=1)).eval().to(memory_format=memory_format)
                x = torch.rand(batch, 1, 28, 28).contiguous(memory_format=memory_format)
                timed[layout] = median_ms(lambda: lenet(x), args)
            layout = min(timed, key=timed.get)
            ms = timed[layout]
            ips = batch / (ms * 1e-3)
            others = ", ".join(f"{k} {v:.4f} ms" for k, v in timed.items() if k != layout)
            print(f"{name:<13} {threads:>3} {str(batch) + ' 28x28x1 LeNet-5':<26} {ms:9.4f} "
                  f"{'':>8}  {ips:.0f} images/s ({layout}; {others})", flush=True)
            write_row(writer, impl="torch", kind="e2e", name=name, threads=threads, batch=batch,
                      ms_median=f"{ms:.6f}", images_per_s=f"{ips:.1f}",
                      note=f"{layout} eager (faster of both formats; {others})",
                      reps=args.reps)
    if out_file:
        out_file.close()
    return 0


def main(argv):
    args = parse_args(argv)
    if args.worker:
        if len(args.thread_counts) != 1:
            sys.exit("torch_bench: a worker runs one thread count")
        return worker(args)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            csv.DictWriter(f, CSV_FIELDS).writeheader()
    status = 0
    for threads in args.thread_counts:
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        env.setdefault("OMP_WAIT_POLICY", "passive")
        child = [a for i, a in enumerate(argv)
                 if a != "--threads" and (i == 0 or argv[i - 1] != "--threads")
                 and not a.startswith("--threads=")]
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(threads)]
        status |= subprocess.run(cmd + child, env=env).returncode
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
