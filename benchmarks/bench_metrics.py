"""Benchmark: the metrics and `graceful compare` at 10,000,000 samples.

Prints measured figures and ratios against baselines timed in the same run (never a
timed unit test: shared machines are noisy). Targets from the foundation issue:

* all metrics from arrays <= 5x a plain numpy reduction over the same arrays;
* `graceful compare` on a 10M-row Parquet pair, end to end (process start, imports,
  join, metrics, bootstrap, JSON and HTML) <= 2.5x reading the same two files with
  pyarrow alone, with peak memory (max RSS) <= 2 GB.

Usage: python benchmarks/bench_metrics.py [--n 10000000] [--classes 10] [--out DIR]
Writes DIR/bench_metrics.json and DIR/bench_metrics.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import graceful
from graceful.metrics import (
    ModelUpdateMetrics,
    bootstrap_cells,
    flip_counts,
    mcnemar_test,
    metric_intervals,
    model_update_metrics,
)


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_reduction(y, old, new):
    """The baseline: the 2x2 table and the nine ratios in plain numpy."""
    if old.ndim == 2:
        old = old.argmax(axis=1)
        new = new.argmax(axis=1)
    co = old == y
    cn = new == y
    table = np.bincount(2 * co + cn, minlength=4).astype(np.float64)
    bw, pf, nf, bc = table
    n = table.sum()
    return {
        "error_rate_old": (bw + pf) / n,
        "error_rate_new": (bw + nf) / n,
        "nfr": nf / n,
        "pfr": pf / n,
        "nfi": nf / (nf + bw),
        "pfi": pf / (pf + bw),
        "rel_nfr": nf * n / ((nf + bc) * (nf + bw)),
        "btc": bc / (bc + nf),
        "bec": bw / (bw + nf),
    }


def make_arrays(n, classes, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = []
    for acc in (0.80, 0.85):
        s = rng.standard_normal((n, classes), dtype=np.float32)
        right = rng.random(n) < acc
        s[np.arange(n), y] += np.where(right, 3.0, -3.0).astype(np.float32)
        logits.append(s)
    return y, logits[0], logits[1]


def bench_arrays(y, old_logits, new_logits):
    rows = []
    old_labels = old_logits.argmax(axis=1)
    new_labels = new_logits.argmax(axis=1)
    for kind, old, new in (
        ("hard labels", old_labels, new_labels),
        ("logits (N x C float32)", old_logits, new_logits),
    ):
        ref = numpy_reduction(y, old, new)
        ours = model_update_metrics(y, old, new)
        if abs(ours["negative_flip_rate"] - ref["nfr"]) > 1e-12:
            raise SystemExit(f"mismatch with the numpy reduction on {kind}")
        t_numpy = best_of(lambda old=old, new=new: numpy_reduction(y, old, new))
        t_all = best_of(lambda old=old, new=new: model_update_metrics(y, old, new))

        def everything(old=old, new=new):
            counts = flip_counts(y, old, new)
            metric_intervals(counts)
            mcnemar_test(counts)

        t_full = best_of(everything)

        def in_batches(old=old, new=new, batch=1_000_000):
            metric = ModelUpdateMetrics()
            for i in range(0, len(y), batch):
                metric.update(y[i : i + batch], old[i : i + batch], new[i : i + batch])
            metric.compute()

        t_class = best_of(in_batches)
        rows.append(
            {
                "input": kind,
                "numpy_s": t_numpy,
                "functional_s": t_all,
                "functional_ratio": t_all / t_numpy,
                "with_intervals_and_mcnemar_s": t_full,
                "with_intervals_ratio": t_full / t_numpy,
                "metric_class_1M_batches_s": t_class,
                "metric_class_ratio": t_class / t_numpy,
            }
        )
    cells = np.random.default_rng(0).choice(4, size=len(y), p=[0.08, 0.1, 0.05, 0.77])
    t_boot = best_of(lambda: bootstrap_cells(cells, n_resamples=2000, random_state=0))
    return rows, t_boot


def write_parquet_pair(folder, y, old_logits, new_logits, batch=1_000_000):
    paths = []
    n, classes = old_logits.shape
    for name, logits in (("old", old_logits), ("new", new_logits)):
        path = Path(folder) / f"{name}.parquet"
        schema = pa.schema(
            [("id", pa.int64()), ("label", pa.int64())]
            + [(f"logit_{c}", pa.float32()) for c in range(classes)]
        )
        with pq.ParquetWriter(path, schema) as writer:
            for i in range(0, n, batch):
                cols = {"id": np.arange(i, min(i + batch, n)), "label": y[i : i + batch]}
                for c in range(classes):
                    cols[f"logit_{c}"] = logits[i : i + batch, c]
                writer.write_table(pa.table(cols, schema=schema), row_group_size=batch)
        paths.append(path)
    return paths


# Peak memory is read from /proc/self/status (VmHWM) inside the child, at exit. The
# rusage of a child is no good here: Linux carries the parent's peak RSS over fork/exec
# into it, and this parent holds the 10M-sample arrays.
_HWM = """
import atexit, sys
def _report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("\\nVMHWM_KB " + line.split()[1] + "\\n")
atexit.register(_report)
"""


def run_measured(code, *args):
    """Run Python ``code`` in a fresh process; return (wall s, peak RSS bytes, rc, output)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _HWM + code, *map(str, args)], capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    peak = 0
    for line in proc.stderr.splitlines():
        if line.startswith("VMHWM_KB "):
            peak = int(line.split()[1]) * 1024
    return wall, peak, proc.returncode, proc.stdout + proc.stderr


def bench_cli(old_path, new_path, out_dir):
    def read_both():
        pq.read_table(old_path)
        pq.read_table(new_path)

    read_both()  # warm the page cache for both sides alike
    t_read = best_of(read_both)
    read_script = (
        "import time, pyarrow.parquet as pq\n"
        "t = time.perf_counter(); pq.read_table(sys.argv[1]); pq.read_table(sys.argv[2])\n"
        "print('READ_S', time.perf_counter() - t)"
    )
    reads = [run_measured(read_script, old_path, new_path) for _ in range(2)]
    t_read_proc = min(r[0] for r in reads)
    rss_read = max(r[1] for r in reads)
    t_read_cold = min(float(r[3].split("READ_S")[1].split()[0]) for r in reads)
    cli = (
        "from graceful.cli.app import main\n"
        "sys.argv = ['graceful', 'compare', *sys.argv[1:]]\n"
        "main()",
        old_path,
        new_path,
        "--out",
        out_dir,
        "--quiet",
    )
    runs = [run_measured(*cli) for _ in range(2)]
    for _, _, code, output in runs:
        if code != 0:
            raise SystemExit(f"graceful compare failed ({code}):\n{output}")
    t_cli = min(r[0] for r in runs)
    rss_cli = max(r[1] for r in runs)
    return {
        "pyarrow_read_both_s": t_read,
        "pyarrow_read_both_process_s": t_read_proc,
        "pyarrow_read_both_fresh_process_read_only_s": t_read_cold,
        "pyarrow_read_peak_rss_gb": rss_read / 1e9,
        "cli_end_to_end_s": t_cli,
        "cli_ratio_vs_read": t_cli / t_read,
        "cli_ratio_vs_read_process": t_cli / t_read_proc,
        "cli_ratio_vs_fresh_read_only": t_cli / t_read_cold,
        "cli_peak_rss_gb": rss_cli / 1e9,
        "file_size_mb": (old_path.stat().st_size + new_path.stat().st_size) / 2 / 1e6,
    }


def markdown(result):
    n = result["n"]
    lines = [
        f"# bench_metrics: {n:,} samples, {result['classes']} classes",
        "",
        f"graceful {result['graceful_version']}, torch {result['torch']}, "
        f"{result['cpus']} CPU cores, {result['platform']}. Best of 3 runs (CLI: best of 2).",
        "",
        "## Metrics from arrays vs a plain numpy reduction (target <= 5x)",
        "",
        "| input | numpy | all metrics (functional) | ratio | + intervals + McNemar | ratio "
        "| Metric class, 1M batches | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["arrays"]:
        lines.append(
            f"| {r['input']} | {r['numpy_s']:.3f} s | {r['functional_s']:.3f} s | "
            f"{r['functional_ratio']:.2f}x | {r['with_intervals_and_mcnemar_s']:.3f} s | "
            f"{r['with_intervals_ratio']:.2f}x | {r['metric_class_1M_batches_s']:.3f} s | "
            f"{r['metric_class_ratio']:.2f}x |"
        )
    lines += [
        "",
        f"Relative-NFR paired bootstrap, 2,000 resamples over {n:,} samples: "
        f"{result['bootstrap_s']:.3f} s.",
        "",
    ]
    c = result.get("cli")
    if c:
        lines += [
            "## `graceful compare` on a Parquet pair vs pyarrow reading it"
            " (target <= 2.5x, <= 2 GB)",
            "",
            f"Each file: {n:,} rows, int64 `id` and `label`, {result['classes']} float32 "
            f"`logit_*` columns, {c['file_size_mb']:.0f} MB. The CLI time is the whole process "
            "(interpreter start, imports, streaming read, join, metrics, bootstrap, JSON and "
            "HTML report).",
            "",
            "| | time | `graceful compare` / this | peak RSS |",
            "|---|---|---|---|",
            f"| pyarrow `read_table` of both files, whole process (start, import, read) | "
            f"{c['pyarrow_read_both_process_s']:.2f} s | **{c['cli_ratio_vs_read_process']:.2f}x** "
            f"| {c['pyarrow_read_peak_rss_gb']:.2f} GB |",
            f"| the same, the read calls alone (fresh process) | "
            f"{c['pyarrow_read_both_fresh_process_read_only_s']:.2f} s | "
            f"{c['cli_ratio_vs_fresh_read_only']:.2f}x | |",
            f"| the same, the read calls alone, warm (in this process, best of 3) | "
            f"{c['pyarrow_read_both_s']:.2f} s | {c['cli_ratio_vs_read']:.2f}x | |",
            f"| `graceful compare` end to end | {c['cli_end_to_end_s']:.2f} s | 1.00x | "
            f"**{c['cli_peak_rss_gb']:.2f} GB** |",
            "",
        ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()

    y, old_logits, new_logits = make_arrays(args.n, args.classes, seed=0)
    arrays, t_boot = bench_arrays(y, old_logits, new_logits)
    result = {
        "n": args.n,
        "classes": args.classes,
        "graceful_version": graceful.__version__,
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "arrays": arrays,
        "bootstrap_s": t_boot,
    }
    if not args.skip_cli:
        with tempfile.TemporaryDirectory() as tmp:
            old_path, new_path = write_parquet_pair(tmp, y, old_logits, new_logits)
            del old_logits, new_logits
            result["cli"] = bench_cli(old_path, new_path, Path(tmp) / "report")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / "bench_metrics.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
