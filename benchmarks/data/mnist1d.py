"""MNIST-1D: procedural 40-d signals of the ten digits, generated offline by ``mnist1d``."""

from __future__ import annotations

import importlib
import os
import random

import numpy as np

from benchmarks.data._cache import cache_root, cached_arrays
from benchmarks.data._packages import missing_package, package_version
from graceful.data import LabelledArrays, Splits, stratified_split
from graceful.errors import InputError

__all__ = ["load_mnist1d"]


def load_mnist1d(
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    num_samples: int = 5000,
    val_size: int = 500,
) -> Splits:
    """MNIST-1D made by ``mnist1d.data.make_dataset`` (never ``get_dataset``, which downloads).

    ``seed`` seeds the generator, so each seed is a different draw of the data set. The
    generator's own 80/20 train/test split is kept and ``val_size`` signals are carved from its
    training part, stratified. ``x`` is ``(N, 40)`` float32, standardised by the generator.
    The global ``random`` and ``numpy.random`` states, which the generator reseeds, are restored.

    Args:
        seed: generator seed.
        cache_dir: cache folder (default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``).
        num_samples: signals to generate (a multiple of 10).
        val_size: validation signals carved from the training part.

    Raises:
        InputError: when ``mnist1d`` is missing or a size is out of range.

    Example:
        >>> s = load_mnist1d(seed=0, num_samples=1000, val_size=100)  # doctest: +SKIP
        >>> s.train.x.shape, len(s.val), len(s.test)  # doctest: +SKIP
        ((700, 40), 100, 200)
    """
    if num_samples < 10 or num_samples % 10:
        raise InputError(
            f"Expected argument `num_samples` to be a multiple of 10 from 10, but got {num_samples}"
        )
    n_train = int(num_samples * 0.8)
    if not 0 <= val_size <= n_train:
        raise InputError(f"Expected argument `val_size` in [0, {n_train}], but got {val_size}")
    version = package_version("mnist1d")
    if version is None:
        raise missing_package("MNIST-1D", "mnist1d", no_deps=False)

    def compute() -> dict[str, np.ndarray]:
        try:
            data = importlib.import_module("mnist1d.data")
        except ImportError:
            raise missing_package("MNIST-1D", "mnist1d", no_deps=False) from None
        args = data.get_dataset_args()
        args.seed, args.num_samples, args.train_split = seed, num_samples, 0.8
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            made = data.make_dataset(args)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        x = np.concatenate([made["x"], made["x_test"]]).astype(np.float32)
        y = np.concatenate([made["y"], made["y_test"]]).astype(np.int64)
        return {"x": x, "y": y, "n_train": np.array([len(made["y"])])}

    meta = {"seed": seed, "num_samples": num_samples, "mnist1d": version}
    arrays = cached_arrays(
        cache_root(cache_dir) / "mnist1d", f"mnist1d-{num_samples}-{seed}", meta, compute
    )
    full = LabelledArrays(
        arrays["x"], arrays["y"], np.arange(len(arrays["y"])), [str(d) for d in range(10)]
    )
    n_fit = int(arrays["n_train"][0])
    train_pos, val_pos = stratified_split(full.y[:n_fit], [n_fit - val_size, val_size], seed=seed)
    test = np.arange(n_fit, len(full))
    return Splits(full.subset(train_pos), full.subset(val_pos), full.subset(test))
