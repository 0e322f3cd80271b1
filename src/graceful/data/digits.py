"""scikit-learn's 8×8 handwritten digits (1,797 images), split stratified and seeded."""

from __future__ import annotations

import numpy as np

from graceful._extras import require
from graceful.data.dataset import LabelledArrays, Splits
from graceful.data.splits import train_val_test_split

__all__ = ["load_digits"]


def load_digits(*, seed: int = 0, val_size: int = 360, test_size: int = 360) -> Splits:
    """The digits of :func:`sklearn.datasets.load_digits` as ``(N, 1, 8, 8)`` images in ``[0, 1]``.

    Pixels (0 to 16) are divided by 16. The split is about 60/20/20, stratified by digit;
    the test part depends only on ``seed`` and ``test_size``. The images ship with
    scikit-learn (the ``demo`` extra), so nothing is downloaded or cached.

    Args:
        seed: seed of the split.
        val_size: validation images.
        test_size: test images; training gets the rest.

    Raises:
        InputError: when the sizes do not fit in 1,797 images.
        MissingExtraError: when scikit-learn is not installed.

    Example:
        >>> s = load_digits(seed=1)
        >>> s.test.x.shape, s.classes[:3], sorted(set(s.train.ids) & set(s.test.ids))
        ((360, 1, 8, 8), ['0', '1', '2'], [])
    """
    (datasets,) = require("demo", "load_digits", ("sklearn.datasets",))
    bunch = datasets.load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    full = LabelledArrays(x, y, np.arange(len(y)), [str(d) for d in range(10)])
    train, val, test = train_val_test_split(y, val_size=val_size, test_size=test_size, seed=seed)
    return Splits(full.subset(train), full.subset(val), full.subset(test))
