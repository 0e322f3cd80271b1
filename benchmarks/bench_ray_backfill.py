"""Benchmark: items per second of a backfill in one process and on 1 and 2 Ray workers.

One SQLite gallery of N items under v0 is backfilled to v1 three times, each from a fresh
copy of the same file: by :func:`graceful.gallery.backfill` in this process, and by
:func:`graceful.gallery.ray_backfill` on a local Ray cluster of 2 CPUs with one and with
two actors (one CPU each). The embedding is CPU-bound and the same everywhere: a small
MLP in NumPy (float32, one BLAS thread) run on a deterministic input per id, costing
about ``--ms-per-item`` milliseconds of one core per item. The vectors committed by the
three runs are checked equal. Throughput is items / wall time of the backfill call (the
Ray cluster is started before and its start is not counted; each Ray run does start its
actors, which load the model, and that is counted).

Target (issue 17): two workers >= 1.6x the items per second of one, on 2 cores.

Usage: python benchmarks/bench_ray_backfill.py [--items 3000] [--batch 50]
       [--ms-per-item 4] [--repeats 2] [--out benchmarks/results]
Writes OUT/bench_ray_backfill.json and OUT/bench_ray_backfill.md. Needs the ``ray``
extra (installed by ``make test``'s environment).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import graceful
from graceful.gallery import Gallery, RandomOrder, backfill, ray_backfill
from graceful.io.atomic import atomic_write_text

DIM_IN, HIDDEN, DIM_OUT = 256, 512, 64


class MakeMLP:
    """Builds the CPU-bound 'new model' (picklable: Ray ships it to each actor).

    ``layers`` dense layers of ``HIDDEN`` units, tanh, on a deterministic input per id;
    the cost per item grows linearly with ``layers``.
    """

    def __init__(self, layers: int) -> None:
        self.layers = layers

    def __call__(self) -> Callable[[list[str]], np.ndarray]:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        try:  # one BLAS thread per worker: the benchmark measures cores, not BLAS threads
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

            threadpool_limits(1)
        except ImportError:
            pass
        rng = np.random.default_rng(0)
        w_in = (rng.standard_normal((DIM_IN, HIDDEN)) / np.sqrt(DIM_IN)).astype(np.float32)
        hidden = [
            (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
            for _ in range(self.layers)
        ]
        w_out = (rng.standard_normal((HIDDEN, DIM_OUT)) / np.sqrt(HIDDEN)).astype(np.float32)

        def embed(ids: list[str]) -> np.ndarray:
            x = np.stack([_input(i) for i in ids])
            h = np.tanh(x @ w_in)
            for w in hidden:
                h = np.tanh(h @ w)
            out: np.ndarray = h @ w_out
            return out

        return embed


def _input(item_id: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=8).digest())
    return np.random.default_rng(seed).standard_normal(DIM_IN).astype(np.float32)


def calibrate(ms_per_item: float, batch: int) -> int:
    """The number of hidden layers for which one item costs about ``ms_per_item`` ms."""
    ids = [f"cal{i}" for i in range(batch)]
    one = MakeMLP(1)()
    one(ids)
    start = time.perf_counter()
    for _ in range(5):
        one(ids)
    per_layer = (time.perf_counter() - start) / 5 / batch * 1000
    return max(1, round(ms_per_item / per_layer))


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    layers = calibrate(args.ms_per_item, args.batch)
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
    runs: dict[str, list[float]] = {"single_process": [], "ray_1_worker": [], "ray_2_workers": []}
    reference = None
    try:
        for repeat in range(args.repeats):
            for name in runs:
                path = work / f"{name}_{repeat}.sqlite"
                shutil.copyfile(template, path)
                g = Gallery(str(path))
                start = time.perf_counter()
                if name == "single_process":
                    backfill(
                        g,
                        to_version="v1",
                        embed=make(),
                        policy=RandomOrder(0),
                        batch_size=args.batch,
                        progress=False,
                    )
                else:
                    ray_backfill(
                        g,
                        to_version="v1",
                        make_embed=make,
                        policy=RandomOrder(0),
                        batch_size=args.batch,
                        num_workers=1 if name == "ray_1_worker" else 2,
                    )
                seconds = time.perf_counter() - start
                g.close()
                vectors = moved_vectors(path, args.items)
                if reference is None:
                    reference = vectors
                elif not np.allclose(vectors, reference, atol=1e-5):
                    raise RuntimeError(f"{name} committed other vectors than the first run")
                runs[name].append(args.items / seconds)
                path.unlink()
                print(f"{name} (repeat {repeat}): {args.items / seconds:.0f} items/s", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    best = {name: max(values) for name, values in runs.items()}
    ratio = best["ray_2_workers"] / best["ray_1_worker"]
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
        "items_per_second": runs,
        "best_items_per_second": best,
        "ray_1_worker_over_single_process": best["ray_1_worker"] / best["single_process"],
        "ray_2_over_1_worker": ratio,
        "targets": [
            {
                "name": "two Ray workers >= 1.6x the items/s of one (2 cores)",
                "value": round(ratio, 3),
                "threshold": 1.6,
                "passed": bool(ratio >= 1.6),
            }
        ],
    }


def markdown(r: dict[str, Any]) -> str:
    best = r["best_items_per_second"]
    lines = [
        "# Backfill throughput: one process, 1 and 2 Ray workers",
        "",
        f"graceful {r['graceful']}, Ray {r['ray']}, Python {r['python']}, {r['cpus']} CPU cores. "
        f"Command: `{r['command']}`.",
        "",
        f"{r['items']} items, batches of {r['batch_size']}, a NumPy MLP of "
        f"{r['hidden_layers']} hidden layers ({r['ms_per_item_target']} ms of one core per "
        "item aimed at), SQLite store; best of the repeats, items per second.",
        "",
        "| run | items/s (best) | all repeats |",
        "|---|---|---|",
    ]
    for name, values in r["items_per_second"].items():
        lines.append(
            f"| {name.replace('_', ' ')} | {best[name]:.0f} | "
            + ", ".join(f"{v:.0f}" for v in values)
            + " |"
        )
    lines += [
        "",
        f"Ray, 1 worker / single process: {r['ray_1_worker_over_single_process']:.2f}x. "
        f"Ray, 2 workers / 1 worker: {r['ray_2_over_1_worker']:.2f}x.",
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    for t in r["targets"]:
        lines.append(f"| {t['name']} | {t['value']} | {'yes' if t['passed'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50)
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
