"""Labelled arrays, seeded stratified splits, and the digits the demo and the guide use.

:class:`LabelledArrays` holds ``float32`` features, ``int64`` labels and stable sample
ids (the ids key cached teacher outputs); :class:`Splits` holds three of them.
:func:`load_digits` reads scikit-learn's 8x8 digits (``pip install 'graceful[demo]'``).
The loaders of the benchmark data sets live in the repository's ``benchmarks/`` package.

Example:
    >>> from graceful.data import load_digits
    >>> s = load_digits(seed=0)
    >>> s.train.x.shape, len(s.val), len(s.test)
    ((1077, 1, 8, 8), 360, 360)
"""

from graceful.data.dataset import LabelledArrays, Splits
from graceful.data.digits import load_digits
from graceful.data.splits import stratified_split, train_val_test_split

__all__ = ["LabelledArrays", "Splits", "load_digits", "stratified_split", "train_val_test_split"]
