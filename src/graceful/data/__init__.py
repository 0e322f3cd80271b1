"""Real data sets for benchmarks, read offline from PyPI packages and cached with checksums.

Every loader returns :class:`Splits` of :class:`LabelledArrays` (``float32`` features,
``int64`` labels and stable sample ids) and caches what it derives under ``cache_dir``
(default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``), verifying sha256 checksums when it
reads them back. The data packages are optional: ``make bench-data`` installs them, and a
loader whose package is missing raises an :class:`~graceful.errors.InputError` saying so.

Example:
    >>> import tempfile
    >>> from graceful.data import load_digits
    >>> s = load_digits(seed=0, cache_dir=tempfile.mkdtemp())
    >>> s.train.x.shape, len(s.val), len(s.test)
    ((1077, 1, 8, 8), 360, 360)
"""

from graceful.data._cache import CacheWarning
from graceful.data.animal_mnist import load_animal_mnist
from graceful.data.dataset import LabelledArrays, Splits
from graceful.data.digits import load_digits
from graceful.data.encoders import ENCODERS, embed_texts, encoder_path
from graceful.data.mnist import load_mnist
from graceful.data.mnist1d import load_mnist1d
from graceful.data.rotten_tomatoes import load_rotten_tomatoes
from graceful.data.splits import stratified_split, train_val_test_split

__all__ = [
    "ENCODERS",
    "CacheWarning",
    "LabelledArrays",
    "Splits",
    "embed_texts",
    "encoder_path",
    "load_animal_mnist",
    "load_digits",
    "load_mnist",
    "load_mnist1d",
    "load_rotten_tomatoes",
    "stratified_split",
    "train_val_test_split",
]
