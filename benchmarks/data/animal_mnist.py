"""Animal-MNIST: 10,000 28×28 animal silhouettes in 10 classes, from the ``animal-mnist`` package.

The package ships two gzipped pickles (no split): a ``(10000, 28, 28)`` uint8 image array and
a ``(10000,)`` int64 label array, 1,000 per class. They are read directly; the package's own
loader is never imported (it imports TensorFlow).
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

from benchmarks.data._cache import cache_root, cached_arrays, file_sha256
from benchmarks.data._packages import package_dir, package_version
from graceful.data import LabelledArrays, Splits, train_val_test_split
from graceful.errors import InputError

__all__ = ["CLASSES", "animal_mnist_files", "load_animal_mnist", "read_animal_mnist"]

#: Class names by label: the package's description lists them alphabetically, and a look at
#: the images of each label confirms that label k is the k-th name.
CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def animal_mnist_files() -> tuple[Path, Path]:
    """The image and label pickles inside the installed ``animal-mnist`` package.

    Raises:
        InputError: when ``animal-mnist`` is not installed.

    Example:
        >>> [p.name for p in animal_mnist_files()]  # doctest: +SKIP
        ['animal_data_version_3.gz', 'animal_label_version_3.gz']
    """
    folder = package_dir("animal_mnist", dataset="Animal-MNIST", package="animal-mnist")
    base = folder / "data" / "Animal_MNIST"
    paths = (base / "animal_data_version_3.gz", base / "animal_label_version_3.gz")
    for path in paths:
        if not path.is_file():
            raise InputError(
                f"File {path} is missing from the `animal-mnist` package: reinstall it"
            )
    return paths


def _load(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            obj = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(f"File {path} is not a gzipped pickle: {exc}") from None
    if not isinstance(obj, np.ndarray):
        raise InputError(f"File {path} holds a {type(obj).__name__}, not a numpy array")
    return obj


def read_animal_mnist(
    images: str | os.PathLike[str], labels: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, 28, 28)`` float32 in ``[0, 1]`` and labels ``(N,)`` int64 from the pickles.

    Args:
        images: gzipped pickle of a ``(N, 28, 28)`` uint8 array.
        labels: gzipped pickle of a ``(N,)`` integer array with values 0 to 9.

    Raises:
        InputError: naming the file whose content does not have that structure.

    Example:
        >>> import gzip, pickle, tempfile, pathlib, numpy as np
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with gzip.open(d / "x.gz", "wb") as f:
        ...     pickle.dump(np.full((2, 28, 28), 255, np.uint8), f)
        >>> with gzip.open(d / "y.gz", "wb") as f:
        ...     pickle.dump(np.array([7, 2]), f)
        >>> x, y = read_animal_mnist(d / "x.gz", d / "y.gz")
        >>> x.shape, float(x.max()), y.tolist()
        ((2, 1, 28, 28), 1.0, [7, 2])
    """
    x, y = _load(Path(images)), _load(Path(labels))
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise InputError(f"File {images} holds a {x.dtype} array {x.shape}, not uint8 (N, 28, 28)")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
        raise InputError(
            f"File {labels} holds a {y.dtype} array {y.shape}, not integers ({len(x)},)"
        )
    if len(y) and (y.min() < 0 or y.max() >= len(CLASSES)):
        raise InputError(f"File {labels} holds labels outside [0, {len(CLASSES)})")
    return (x.astype(np.float32) / np.float32(255.0))[:, None], y.astype(np.int64)


def load_animal_mnist(
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    val_size: int = 1000,
    test_size: int = 2000,
) -> Splits:
    """Animal-MNIST split stratified and seeded: by default 7,000 train, 1,000 val, 2,000 test.

    The test part is split off first, so it is the same 2,000 images whatever ``val_size``
    (the validation part is carved out of the 8,000 others). Decoded arrays are cached, keyed
    by the sha256 of the package's two files.

    Args:
        seed: seed of the split.
        cache_dir: cache folder (default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``).
        val_size: validation images, carved from the training part.
        test_size: test images.

    Raises:
        InputError: when ``animal-mnist`` is missing, its files are damaged, or the sizes
            do not fit in 10,000.

    Example:
        >>> s = load_animal_mnist(seed=0)  # doctest: +SKIP
        >>> s.train.x.shape, len(s.val), len(s.test)  # doctest: +SKIP
        ((7000, 1, 28, 28), 1000, 2000)
    """
    images, labels = animal_mnist_files()
    meta = {
        "images_sha256": file_sha256(images),
        "labels_sha256": file_sha256(labels),
        "animal-mnist": package_version("animal-mnist"),
    }

    def compute() -> dict[str, np.ndarray]:
        x, y = read_animal_mnist(images, labels)
        return {"x": x, "y": y}

    arrays = cached_arrays(cache_root(cache_dir) / "animal_mnist", "animal_mnist", meta, compute)
    full = LabelledArrays(arrays["x"], arrays["y"], np.arange(len(arrays["y"])), list(CLASSES))
    train, val, test = train_val_test_split(
        full.y, val_size=val_size, test_size=test_size, seed=seed
    )
    return Splits(full.subset(train), full.subset(val), full.subset(test))
