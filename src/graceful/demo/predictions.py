"""Data for ``graceful demo``: two real models trained on scikit-learn's digits.

The old model is a logistic regression trained on 300 images of the training split;
the new one is a multilayer perceptron trained on all of it. The new model is
better on average yet breaks some samples the old one got right: the situation the
regression metrics are for.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from graceful.io.atomic import atomic_open

__all__ = ["make_digits_predictions"]


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_open(path, "wb") as handle:
        frame.to_parquet(handle, index=False)  # type: ignore[arg-type]


def make_digits_predictions(out_dir: str | Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Train an old and a new digits classifier and write their test-set predictions.

    Each file is Parquet with ``id``, ``label``, ``prob_0`` ... ``prob_9`` and a group
    column ``ink`` (light / medium / heavy strokes, by total pixel intensity).

    Args:
        out_dir: folder for ``old.parquet`` and ``new.parquet`` (created if missing).
        seed: seed of the split and of both models.

    Returns:
        The paths of the old and the new predictions.

    Example:
        >>> import tempfile
        >>> old, new = make_digits_predictions(tempfile.mkdtemp())
        >>> pd.read_parquet(old).shape
        (600, 13)
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target
    ids = np.arange(len(y))
    x_train, x_test, y_train, y_test, _, id_test = train_test_split(
        x, y, ids, test_size=600, random_state=seed, stratify=y
    )
    rng = np.random.default_rng(seed)
    small = rng.choice(len(y_train), size=300, replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; both models are good enough
        old_model = LogisticRegression(max_iter=500).fit(x_train[small], y_train[small])
        new_model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=seed).fit(
            x_train, y_train
        )

    ink_total = x_test.sum(axis=1)
    ink = pd.qcut(ink_total, 3, labels=["light", "medium", "heavy"]).astype(str)
    paths = []
    for name, model in (("old", old_model), ("new", new_model)):
        probs = model.predict_proba(x_test)
        frame = pd.DataFrame({"id": id_test, "label": y_test})
        for c in range(probs.shape[1]):
            frame[f"prob_{c}"] = probs[:, c].astype(np.float32)
        frame["ink"] = np.asarray(ink)
        path = out / f"{name}.parquet"
        _write_parquet(frame, path)
        paths.append(path)
    return paths[0], paths[1]
