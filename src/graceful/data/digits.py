"""scikit-learn's 8×8 handwritten digits (1,797 images), split stratified and seeded."""

from __future__ import annotations

import importlib
import os

import numpy as np

from graceful.data._cache import cache_root, cached_arrays
from graceful.data._packages import missing_package, package_version
from graceful.data.dataset import LabelledArrays, Splits
from graceful.data.splits import train_val_test_split

__all__ = ["load_digits"]


def load_digits(
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    val_size: int = 360,
    test_size: int = 360,
) -> Splits:
    """The digits of :func:`sklearn.datasets.load_digits` as ``(N, 1, 8, 8)`` images in ``[0, 1]``.

    Pixels (0 to 16) are divided by 16. The split is about 60/20/20, stratified by digit;
    the test part depends only on ``seed`` and ``test_size``.

    Args:
        seed: seed of the split.
        cache_dir: cache folder (default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``).
        val_size: validation images.
        test_size: test images; training gets the rest.

    Raises:
        InputError: when scikit-learn is missing or the sizes do not fit in 1,797.

    Example:
        >>> import tempfile
        >>> s = load_digits(seed=1, cache_dir=tempfile.mkdtemp())
        >>> s.test.x.shape, s.classes[:3], sorted(set(s.train.ids) & set(s.test.ids))
        ((360, 1, 8, 8), ['0', '1', '2'], [])
    """
    version = package_version("scikit-learn")

    def compute() -> dict[str, np.ndarray]:
        try:
            datasets = importlib.import_module("sklearn.datasets")
        except ImportError:
            raise missing_package("Digits", "scikit-learn", no_deps=False) from None
        bunch = datasets.load_digits()
        x = (np.asarray(bunch.images, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
        return {"x": x, "y": np.asarray(bunch.target, dtype=np.int64)}

    arrays = cached_arrays(
        cache_root(cache_dir) / "digits", "digits", {"scikit-learn": version}, compute
    )
    full = LabelledArrays(
        arrays["x"], arrays["y"], np.arange(len(arrays["y"])), [str(d) for d in range(10)]
    )
    train, val, test = train_val_test_split(
        full.y, val_size=val_size, test_size=test_size, seed=seed
    )
    return Splits(full.subset(train), full.subset(val), full.subset(test))
