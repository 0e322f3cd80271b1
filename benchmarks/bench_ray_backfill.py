"""Benchmark: items per second of a backfill in one process and on 1 and 2 Ray workers.

One SQLite gallery of N items under v0 is backfilled to v1 three times per repeat, each
from a fresh copy of the same file: by :func:`graceful.gallery.backfill` in this process, and by
:func:`graceful.gallery.ray_backfill` on a local Ray cluster of 2 CPUs with one and with
two actors (one CPU each). The embedding is CPU-bound and the same everywhere: a small
MLP in NumPy (float32, one BLAS thread) run on a deterministic input per id, costing
about ``--ms-per-item`` milliseconds of one core per item (calibrated on the whole model),
defined in :mod:`benchmarks._cpu_embedding` so that an actor imports NumPy and not
graceful. The vectors committed by the runs are checked equal. Two throughputs: the
*whole call* (items / wall time of the backfill call; the Ray cluster is started before
and not counted, the actors' start and model load are), and the *steady* rate (items
committed after the first batch / time from the first commit to the last), which is what
a long backfill runs at once its actors are up.

Target (issue 17): two workers >= 1.6x the items per second of one, on 2 cores (checked
on both rates).

Usage: python benchmarks/bench_ray_backfill.py [--items 20000] [--batch 256]
       [--ms-per-item 4] [--repeats 2] [--out benchmarks/results]
About 7 minutes on 2 cores. Batches of 256 are the library's default; at small sizes the
actors' start (about 5 s) weighs on the whole-call rate (6,000 items in batches of 50:
1.64x steady, 1.49x whole call).
Writes OUT/bench_ray_backfill.json and OUT/bench_ray_backfill.md. Needs the ``ray``
extra (installed by ``make test``'s environment).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import graceful
from graceful.gallery import Gallery, RandomOrder, backfill, ray_backfill
from graceful.io.atomic import atomic_write_text

try:  # run as a script (python benchmarks/bench_ray_backfill.py) or as a module
    from ._cpu_embedding import DIM_OUT, MakeMLP, calibrate
    from ._markdown import targets_table
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks._cpu_embedding import DIM_OUT, MakeMLP, calibrate
    from benchmarks._markdown import targets_table


def make_gallery(path: Path, n: int) -> None:
    g = Gallery(str(path))
    g.register_version("v0", dim=DIM_OUT)
    g.register_version("v1", dim=DIM_OUT, compatible_with=["v0"], evidence={"bench": 1.0})
    rng = np.random.default_rng(0)
    g.add_with_ids(
        rng.standard_normal((n, DIM_OUT)).astype(np.float32),
        [f"item{i:06d}" for i in range(n)],
        version="v0",
    )
    g.close()


def moved_vectors(path: Path, n: int) -> np.ndarray:
    g = Gallery(str(path))
    try:
        if g.status() != {"v0": 0, "v1": n}:
            raise RuntimeError(f"backfill left {g.status()} in {path}")
        records = g.store.get([f"item{i:06d}" for i in range(n)])
        return np.stack([r.vector for r in records])
    finally:
        g.close()


def _rates(items: int, seconds: float, stamps: list[tuple[float, int]]) -> dict[str, float]:
    """Whole-call items/s, and the steady rate: items committed after the first batch over
    the time from the first commit to the last (the actors' start-up left out)."""
    (first, _), (last, _) = stamps[0], stamps[-1]
    after_first = sum(n for _, n in stamps[1:])
    steady = after_first / (last - first) if last > first else float("nan")
    return {"whole_call": items / seconds, "steady": steady, "first_batch_s": first}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    layers, measured_ms = calibrate(args.ms_per_item, args.batch)
    work = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    template = work / "template.sqlite"
    make_gallery(template, args.items)
    make = MakeMLP(layers)
    here = str(Path(__file__).resolve().parent.parent)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            "env_vars": {
                "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]),
                "OMP_NUM_THREADS": "1",
            }
        },
    )
    names = ("single_process", "ray_1_worker", "ray_2_workers")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    reference = None
    try:
        for repeat in range(args.repeats):
            for name in names:
                path = work / f"{name}_{repeat}.sqlite"
                shutil.copyfile(template, path)
                g = Gallery(str(path))
                stamps: list[tuple[float, int]] = []
                start = time.perf_counter()

                def stamp(info: Any, start: float = start, stamps: list = stamps) -> None:
                    stamps.append((time.perf_counter() - start, info.embedded))

                if name == "single_process":
                    backfill(
                        g,
                        to_version="v1",
                        embed=make(),
                        policy=RandomOrder(0),
                        batch_size=args.batch,
                        progress=False,
                        on_batch=stamp,
                    )
                else:
                    ray_backfill(
                        g,
                        to_version="v1",
                        make_embed=make,
                        policy=RandomOrder(0),
                        batch_size=args.batch,
                        num_workers=1 if name == "ray_1_worker" else 2,
                        on_batch=stamp,
                    )
                seconds = time.perf_counter() - start
                g.close()
                vectors = moved_vectors(path, args.items)
                if reference is None:
                    reference = vectors
                elif not np.allclose(vectors, reference, atol=1e-5):
                    raise RuntimeError(f"{name} committed other vectors than the first run")
                rates = _rates(args.items, seconds, stamps)
                runs[name].append(rates)
                path.unlink()
                print(
                    f"{name} (repeat {repeat}): {rates['whole_call']:.0f} items/s whole call, "
                    f"{rates['steady']:.0f} steady, first batch after "
                    f"{rates['first_batch_s']:.1f} s",
                    flush=True,
                )
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    best = {
        name: {key: max(r[key] for r in values) for key in ("whole_call", "steady")}
        for name, values in runs.items()
    }
    steady = best["ray_2_workers"]["steady"] / best["ray_1_worker"]["steady"]
    whole = best["ray_2_workers"]["whole_call"] / best["ray_1_worker"]["whole_call"]
    return {
        "benchmark": "bench_ray_backfill",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "graceful": graceful.__version__,
        "ray": ray.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "items": args.items,
        "batch_size": args.batch,
        "hidden_layers": layers,
        "ms_per_item_target": args.ms_per_item,
        "ms_per_item_measured": measured_ms,
        "runs": runs,
        "best": best,
        "ray_1_worker_over_single_process_steady": (
            best["ray_1_worker"]["steady"] / best["single_process"]["steady"]
        ),
        "ray_2_over_1_worker_steady": steady,
        "ray_2_over_1_worker_whole_call": whole,
        "targets": [
            {
                "name": "two Ray workers >= 1.6x the items/s of one (2 cores), steady rate",
                "value": round(steady, 3),
                "threshold": 1.6,
                "passed": bool(steady >= 1.6),
            },
            {
                "name": "two Ray workers >= 1.6x the items/s of one (2 cores), whole call",
                "value": round(whole, 3),
                "threshold": 1.6,
                "passed": bool(whole >= 1.6),
            },
        ],
    }


def markdown(r: dict[str, Any]) -> str:
    best = r["best"]
    lines = [
        "# Backfill throughput: one process, 1 and 2 Ray workers",
        "",
        f"graceful {r['graceful']}, Ray {r['ray']}, Python {r['python']}, {r['cpus']} CPU cores. "
        f"Command: `{r['command']}`.",
        "",
        f"{r['items']} items, batches of {r['batch_size']}, a NumPy MLP of "
        f"{r['hidden_layers']} hidden layers ({r['ms_per_item_measured']:.2f} ms of one core "
        f"per item, {r['ms_per_item_target']} aimed at), SQLite store. *Whole call*: items "
        "over the wall time of the backfill call, the actors' start included. *Steady*: the "
        "items committed after the first batch over the time from the first commit to the "
        "last. Best of the repeats.",
        "",
        "| run | items/s whole call | items/s steady | first batch after (s) |",
        "|---|---|---|---|",
    ]
    for name, values in r["runs"].items():
        lines.append(
            f"| {name.replace('_', ' ')} | {best[name]['whole_call']:.0f} | "
            f"{best[name]['steady']:.0f} | "
            + ", ".join(f"{v['first_batch_s']:.1f}" for v in values)
            + " |"
        )
    lines += [
        "",
        f"Ray, 1 worker / single process (steady): "
        f"{r['ray_1_worker_over_single_process_steady']:.2f}x. Ray, 2 workers / 1 worker: "
        f"{r['ray_2_over_1_worker_steady']:.2f}x steady, "
        f"{r['ray_2_over_1_worker_whole_call']:.2f}x whole call.",
        "",
        *targets_table(r["targets"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--ms-per-item", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    for name in ("items", "batch", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.ms_per_item <= 0:
        parser.error(f"--ms-per-item must be > 0, got {args.ms_per_item}")
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "bench_ray_backfill.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out / "bench_ray_backfill.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
