"""A CPU-bound stand-in for a new embedding model, for the Ray backfill benchmark.

Kept apart from :mod:`benchmarks.bench_ray_backfill` so that a Ray actor unpickling
:class:`MakeMLP` imports NumPy alone, as a worker holding a real model imports its own
framework, and not the whole of graceful (which loads torch).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

import numpy as np

DIM_IN, HIDDEN, DIM_OUT = 256, 512, 64

__all__ = ["DIM_OUT", "MakeMLP", "calibrate"]


class MakeMLP:
    """Builds the 'new model' (picklable: Ray ships it to each actor).

    ``layers`` dense layers of ``HIDDEN`` units, tanh, on a deterministic input per id
    (eight distinct weight matrices, applied in turn, keep the memory small); the cost per
    item grows linearly with ``layers``.

    Example:
        >>> MakeMLP(1)()(["a", "b"]).shape
        (2, 64)
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
        distinct = [
            (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
            for _ in range(min(self.layers, 8))
        ]
        hidden = [distinct[k % len(distinct)] for k in range(self.layers)]
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


def _ms_per_item(layers: int, batch: int, rounds: int = 5) -> float:
    ids = [f"cal{i}" for i in range(batch)]
    embed = MakeMLP(layers)()
    embed(ids)
    start = time.perf_counter()
    for _ in range(rounds):
        embed(ids)
    return (time.perf_counter() - start) / rounds / batch * 1000


def calibrate(ms_per_item: float, batch: int) -> tuple[int, float]:
    """Hidden layers for which the whole model costs about ``ms_per_item`` ms per item.

    The cost is measured at 1 and 9 layers and taken as linear in between (the input's
    generation and the first and last layers are the fixed part). Returns the layers and
    the measured cost per item at that depth.
    """
    low, high = _ms_per_item(1, batch), _ms_per_item(9, batch)
    per_layer = max((high - low) / 8, 1e-6)
    layers = max(1, round(1 + (ms_per_item - low) / per_layer))
    return layers, _ms_per_item(layers, batch, rounds=3)
