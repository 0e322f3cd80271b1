"""Benchmark: the metrics and `graceful compare` at 10,000,000 samples.

Prints measured figures and ratios against baselines timed in the same run (never a
timed unit test: shared machines are noisy). Targets:

* all metrics from arrays <= 5x a plain numpy reduction over the same arrays;
* `graceful compare` on a 10M-row Parquet pair, end to end (process start, imports,
  streaming read, join, metrics, bootstrap, JSON and HTML report), each baseline a whole
  process too: <= 1.5x a ten-line polars script computing the error rates and the NFR
  from the same files (argmax by when/then, joined on id), <= 1.0x a DuckDB query doing
  the same, <= 1.5x reading both files with pyarrow alone; peak memory (max RSS)
  <= 1.5 GB; every baseline's NFR equal to graceful's;
* `graceful compare` on an lm-evaluation-harness pair and an Inspect pair of a few
  thousand items each: the NFR of a direct computation from the raw records, in < 2 s
  each (whole process).

Usage: python benchmarks/bench_metrics.py [--n 10000000] [--classes 10] [--out DIR]
Writes DIR/bench_metrics.json and DIR/bench_metrics.md (default benchmarks/results).
The baselines need polars and duckdb (``make bench`` installs them).
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


_POLARS = """
import polars as pl
cols = [f"logit_{c}" for c in range(int(sys.argv[3]))]
def preds(path, name):
    best = pl.max_horizontal(cols)
    first = pl.when(pl.col(cols[0]) == best).then(0)
    for c, col in enumerate(cols[1:], 1):
        first = first.when(pl.col(col) == best).then(c)
    return pl.scan_parquet(path).select("id", "label", first.alias(name))
old, new = preds(sys.argv[1], "old"), preds(sys.argv[2], "new").drop("label")
right_old, right_new = pl.col("old") == pl.col("label"), pl.col("new") == pl.col("label")
out = old.join(new, on="id").select(
    er_old=(~right_old).mean(), er_new=(~right_new).mean(), nfr=(right_old & ~right_new).mean()
).collect()
print("NFR", out["nfr"][0])
"""

_DUCKDB = """
import duckdb
cols = [f"logit_{c}" for c in range(int(sys.argv[3]))]
first = "CASE " + " ".join(f"WHEN {c} = m THEN {i}" for i, c in enumerate(cols)) + " END"
def preds(path):
    scores = f"SELECT *, greatest({', '.join(cols)}) AS m FROM read_parquet('{path}')"
    return f"SELECT id, label, {first} AS pred FROM ({scores})"
duckdb.sql("SET enable_progress_bar = false")
query = f\"\"\"
WITH o AS ({preds(sys.argv[1])}), n AS ({preds(sys.argv[2])})
SELECT avg((o.pred <> o.label)::DOUBLE), avg((n.pred <> o.label)::DOUBLE),
       avg((o.pred = o.label AND n.pred <> o.label)::DOUBLE)
FROM o JOIN n USING (id)
\"\"\"
((er_old, er_new, nfr),) = duckdb.sql(query).fetchall()
print("NFR", nfr)
"""

_PYARROW = """
import time, pyarrow.parquet as pq
t = time.perf_counter(); pq.read_table(sys.argv[1]); pq.read_table(sys.argv[2])
print('READ_S', time.perf_counter() - t)
"""

_CLI = """
import json
from graceful.cli.app import main
out = sys.argv[-1]
sys.argv = ['graceful', 'compare', *sys.argv[1:-1], '--out', out, '--quiet']
try:
    main()
finally:
    summary = json.load(open(out + '/summary.json'))
    print('NFR', summary['metrics']['negative_flip_rate']['value'])
"""


def _nfr_printed(output):
    return float(output.split("NFR")[-1].split()[0])


def _best_run(code, *args, repeats=2):
    """Best wall time of ``repeats`` fresh processes, the largest peak RSS, the NFR printed."""
    runs = [run_measured(code, *args) for _ in range(repeats)]
    for _, _, rc, output in runs:
        if rc != 0:
            raise SystemExit(f"a benchmark process failed ({rc}):\n{output[-2000:]}")
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[-1][3]


def bench_cli(old_path, new_path, out_dir, classes, repeats=2):
    for module in ("polars", "duckdb"):
        try:
            __import__(module)
        except ImportError:
            raise SystemExit(
                f"bench_metrics: the {module} baseline needs {module}: make bench installs it "
                f"(or pass --skip-cli)"
            ) from None
    read_both = lambda: (pq.read_table(old_path), pq.read_table(new_path))  # noqa: E731
    read_both()  # warm the page cache for every process alike
    t_read = best_of(read_both)
    reads = [run_measured(_PYARROW, old_path, new_path) for _ in range(repeats)]
    t_read_proc = min(r[0] for r in reads)
    rss_read = max(r[1] for r in reads)
    t_read_cold = min(float(r[3].split("READ_S")[1].split()[0]) for r in reads)
    t_polars, rss_polars, out_polars = _best_run(_POLARS, old_path, new_path, classes)
    t_duckdb, rss_duckdb, out_duckdb = _best_run(_DUCKDB, old_path, new_path, classes)
    t_cli, rss_cli, out_cli = _best_run(_CLI, old_path, new_path, out_dir, repeats=repeats + 1)
    nfr = {
        "graceful": _nfr_printed(out_cli),
        "polars": _nfr_printed(out_polars),
        "duckdb": _nfr_printed(out_duckdb),
    }
    return {
        "pyarrow_read_both_s": t_read,
        "pyarrow_read_both_process_s": t_read_proc,
        "pyarrow_read_both_fresh_process_read_only_s": t_read_cold,
        "pyarrow_read_peak_rss_gb": rss_read / 1e9,
        "polars_process_s": t_polars,
        "polars_peak_rss_gb": rss_polars / 1e9,
        "duckdb_process_s": t_duckdb,
        "duckdb_peak_rss_gb": rss_duckdb / 1e9,
        "cli_end_to_end_s": t_cli,
        "cli_ratio_vs_read": t_cli / t_read,
        "cli_ratio_vs_read_process": t_cli / t_read_proc,
        "cli_ratio_vs_fresh_read_only": t_cli / t_read_cold,
        "cli_ratio_vs_polars": t_cli / t_polars,
        "cli_ratio_vs_duckdb": t_cli / t_duckdb,
        "cli_peak_rss_gb": rss_cli / 1e9,
        "nfr": nfr,
        "nfr_agree": len({round(v, 12) for v in nfr.values()}) == 1,
        "file_size_mb": (old_path.stat().st_size + new_path.stat().st_size) / 2 / 1e6,
    }


def bench_eval_logs(folder, repeats=3):
    """`graceful compare` on an lm-eval pair and an Inspect pair against the raw records."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
    from eval_log_files import (  # the test suite's writers of the tools' schemas
        direct_inspect_nfr,
        direct_nfr,
        inspect_pair,
        lm_eval_pair,
        write_inspect_eval,
        write_lm_eval,
    )

    folder = Path(folder)
    old, new = lm_eval_pair({"arc_easy": 2000, "hellaswag": 2500, "piqa": 1500}, seed=3)
    lm_old = write_lm_eval(folder / "lm_old", old)
    lm_new = write_lm_eval(folder / "lm_new", new)
    lm_nfr = direct_nfr(old, new, "acc")
    old_s, new_s = inspect_pair(4000, seed=5)
    in_old = write_inspect_eval(folder / "old.eval", "gsm8k", old_s)
    in_new = write_inspect_eval(folder / "new.eval", "gsm8k", new_s)
    in_nfr = direct_inspect_nfr(old_s, new_s)
    rows = []
    for name, a, b, (nfr, *_rest), items in (
        ("lm-eval", lm_old, lm_new, lm_nfr, 6000),
        ("inspect", in_old, in_new, in_nfr, 4000),
    ):
        t, rss, output = _best_run(_CLI, a, b, folder / f"report_{name}", repeats=repeats)
        ours = _nfr_printed(output)
        rows.append(
            {
                "format": name,
                "items": items,
                "process_s": t,
                "peak_rss_gb": rss / 1e9,
                "nfr": ours,
                "direct_nfr": nfr,
                "agree": abs(ours - nfr) < 1e-12,
            }
        )
    return rows


def targets(result):
    out = []
    c = result.get("cli")
    for r in result["arrays"]:
        out.append(
            {
                "name": f"all metrics from arrays ({r['input']}) / numpy reduction",
                "value": r["functional_ratio"],
                "threshold": 5.0,
                "passed": r["functional_ratio"] <= 5.0,
            }
        )
    if c:
        for name, key, bar in (
            ("graceful compare / polars script (whole processes)", "cli_ratio_vs_polars", 1.5),
            ("graceful compare / DuckDB query (whole processes)", "cli_ratio_vs_duckdb", 1.0),
            ("graceful compare / pyarrow read of both files (whole processes)",
             "cli_ratio_vs_read_process", 1.5),
            ("graceful compare peak RSS (GB)", "cli_peak_rss_gb", 1.5),
        ):  # fmt: skip
            out.append({"name": name, "value": c[key], "threshold": bar, "passed": c[key] <= bar})
        out.append(
            {
                "name": "polars, DuckDB and graceful agree on the NFR",
                "value": float(c["nfr_agree"]),
                "threshold": 1.0,
                "passed": bool(c["nfr_agree"]),
            }
        )
    for r in result.get("eval_logs", []):
        out.append(
            {
                "name": f"graceful compare on the {r['format']} pair, whole process (s)",
                "value": r["process_s"],
                "threshold": 2.0,
                "passed": r["process_s"] < 2.0 and r["agree"],
            }
        )
    return out


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
            "## `graceful compare` on a Parquet pair vs polars, DuckDB and pyarrow",
            "",
            f"Each file: {n:,} rows, int64 `id` and `label`, {result['classes']} float32 "
            f"`logit_*` columns, {c['file_size_mb']:.0f} MB. Every time is a whole process "
            "(interpreter start, imports, work), best of 2 (graceful: best of 3), page cache "
            "warm. graceful streams both files, joins on id, computes every metric with "
            "intervals, McNemar and the relative-NFR bootstrap, and writes summary.json and the "
            "HTML report; polars and DuckDB compute the two error rates and the NFR.",
            "",
            "| | time | `graceful compare` / this | target | peak RSS | NFR |",
            "|---|---|---|---|---|---|",
            f"| polars script (lazy scan, when/then argmax, join) | {c['polars_process_s']:.2f} s "
            f"| **{c['cli_ratio_vs_polars']:.2f}x** | <= 1.5x | {c['polars_peak_rss_gb']:.2f} GB "
            f"| {c['nfr']['polars']:.6f} |",
            f"| DuckDB query (CASE argmax, join) | {c['duckdb_process_s']:.2f} s | "
            f"**{c['cli_ratio_vs_duckdb']:.2f}x** | <= 1.0x | {c['duckdb_peak_rss_gb']:.2f} GB "
            f"| {c['nfr']['duckdb']:.6f} |",
            f"| pyarrow `read_table` of both files | {c['pyarrow_read_both_process_s']:.2f} s | "
            f"**{c['cli_ratio_vs_read_process']:.2f}x** | <= 1.5x | "
            f"{c['pyarrow_read_peak_rss_gb']:.2f} GB | |",
            f"| the same, the read calls alone (fresh process) | "
            f"{c['pyarrow_read_both_fresh_process_read_only_s']:.2f} s | "
            f"{c['cli_ratio_vs_fresh_read_only']:.2f}x | | | |",
            f"| `graceful compare` end to end | {c['cli_end_to_end_s']:.2f} s | 1.00x | | "
            f"**{c['cli_peak_rss_gb']:.2f} GB** (<= 1.5) | {c['nfr']['graceful']:.6f} |",
            "",
        ]
    rows = result.get("eval_logs")
    if rows:
        lines += [
            "## `graceful compare` on evaluation logs (target < 2 s, the raw records' NFR)",
            "",
            "| format | items | whole process | peak RSS | NFR | NFR from the raw records |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['format']} | {r['items']:,} | {r['process_s']:.2f} s | "
                f"{r['peak_rss_gb']:.2f} GB | {r['nfr']:.6f} | {r['direct_nfr']:.6f} |"
            )
        lines.append("")
    if result.get("targets"):
        lines += ["## Targets", "", "| target | value | threshold | passed |", "|---|---|---|---|"]
        for t in result["targets"]:
            lines.append(
                f"| {t['name']} | {t['value']:.3g} | {t['threshold']:g} | "
                f"{'yes' if t['passed'] else '**no**'} |"
            )
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument(
        "--keep-files",
        type=Path,
        default=None,
        help="write the Parquet pair into this folder, and reuse it when it is there",
    )
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
            folder = Path(tmp) if args.keep_files is None else args.keep_files
            folder.mkdir(parents=True, exist_ok=True)
            old_path, new_path = folder / "old.parquet", folder / "new.parquet"
            if not (old_path.is_file() and new_path.is_file()):
                old_path, new_path = write_parquet_pair(folder, y, old_logits, new_logits)
            del old_logits, new_logits, y
            result["cli"] = bench_cli(old_path, new_path, Path(tmp) / "report", args.classes)
            result["eval_logs"] = bench_eval_logs(Path(tmp) / "eval_logs")
    result["targets"] = targets(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / "bench_metrics.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
