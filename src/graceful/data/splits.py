"""Exact-size, seeded, stratified splits of a labelled data set, written with numpy alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graceful.errors import InputError

__all__ = ["stratified_split", "train_val_test_split"]


def stratified_split(y: np.ndarray, sizes: Sequence[int], *, seed: int = 0) -> list[np.ndarray]:
    """Split sample indices into parts of exactly ``sizes`` samples, stratified by label.

    Parts are allocated in order: part ``k`` takes from each class ``c`` its share
    ``sizes[k] * remaining_c / remaining`` of what earlier parts left, rounded by largest
    remainder so the part has exactly ``sizes[k]`` samples. Within a class the samples are
    taken in an order drawn from ``numpy.random.default_rng(seed)``. ``sum(sizes)`` may be
    less than ``len(y)``: the rest is left out.

    Args:
        y: integer labels ``(N,)``.
        sizes: the number of samples of each part.
        seed: seed of the shuffle; the same ``y``, ``sizes`` and ``seed`` give the same parts.

    Returns:
        One sorted ``int64`` index array per part; the parts are disjoint.

    Raises:
        InputError: if ``y`` is not one-dimensional or ``sizes`` are negative or too large.

    Example:
        >>> import numpy as np
        >>> y = np.array([0] * 6 + [1] * 4)
        >>> a, b = stratified_split(y, [5, 5], seed=0)
        >>> (len(a), len(b), int(y[a].sum()), int(y[b].sum()))
        (5, 5, 2, 2)
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise InputError(f"Expected argument `y` to be one-dimensional, but got {labels.shape}")
    wanted = [int(s) for s in sizes]
    if any(s < 0 for s in wanted) or sum(wanted) > len(labels):
        raise InputError(
            f"Expected argument `sizes` to be non-negative and sum to at most {len(labels)}, "
            f"but got {wanted}"
        )
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    pools = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(classes))]
    remaining = np.array([len(p) for p in pools], dtype=np.int64)
    taken = np.zeros(len(classes), dtype=np.int64)
    parts: list[np.ndarray] = []
    for size in wanted:
        total = int(remaining.sum())
        quota = size * remaining / total if total else np.zeros(len(classes))
        counts = np.floor(quota).astype(np.int64)
        short = size - int(counts.sum())
        order = np.argsort(-(quota - counts), kind="stable")
        counts[order[:short]] += 1
        chunks = [pools[c][taken[c] : taken[c] + counts[c]] for c in range(len(classes))]
        parts.append(
            np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.empty(0, np.int64)
        )
        taken += counts
        remaining -= counts
    return parts


def train_val_test_split(
    y: np.ndarray, *, val_size: int, test_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train, validation and test indices; the test part does not depend on ``val_size``.

    The test part is split off first, then the validation part is carved from what is left,
    so changing ``val_size`` never moves a sample into or out of the test part.

    Args:
        y: integer labels ``(N,)``.
        val_size: samples in the validation part.
        test_size: samples in the test part; the training part gets the rest.
        seed: seed of both stratified splits.

    Returns:
        ``(train, val, test)`` sorted index arrays.

    Example:
        >>> import numpy as np
        >>> tr, va, te = train_val_test_split(np.arange(100) % 4, val_size=20, test_size=20)
        >>> (len(tr), len(va), len(te), len(np.intersect1d(tr, te)))
        (60, 20, 20, 0)
    """
    labels = np.asarray(y)
    if val_size < 0 or test_size < 0 or val_size + test_size > len(labels):
        raise InputError(
            f"Expected `val_size` + `test_size` to be at most {len(labels)}, "
            f"but got {val_size} + {test_size}"
        )
    rest, test = stratified_split(labels, [len(labels) - test_size, test_size], seed=seed)
    train_pos, val_pos = stratified_split(labels[rest], [len(rest) - val_size, val_size], seed=seed)
    return rest[train_pos], rest[val_pos], test
