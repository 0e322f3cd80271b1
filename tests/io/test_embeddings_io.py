import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.io.embeddings import read_embeddings, read_scores, write_embeddings

VECTORS = np.arange(12, dtype=np.float32).reshape(4, 3) / 7


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_round_trip(tmp_path, suffix):
    path = write_embeddings(tmp_path / f"e{suffix}", ["a", "b", "c", "d"], VECTORS)
    ids, vectors = read_embeddings(path)
    assert ids == ["a", "b", "c", "d"]
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_array_equal(vectors, VECTORS)


def test_numbered_columns_in_numeric_order_and_integer_ids(tmp_path):
    frame = pd.DataFrame({"id": [10, 11, 12, 13]})
    for j in (2, 0, 1):  # out of order on purpose, and e10 would sort before e2 as text
        frame[f"e{j}"] = VECTORS[:, j]
    frame.to_csv(tmp_path / "e.csv", index=False)
    ids, vectors = read_embeddings(tmp_path / "e.csv")
    assert ids == ["10", "11", "12", "13"]
    np.testing.assert_allclose(vectors, VECTORS, rtol=1e-6)


def test_scores(tmp_path):
    pd.DataFrame({"id": ["x", "y"], "u": [0.1, 0.9]}).to_parquet(tmp_path / "s.parquet")
    assert read_scores(tmp_path / "s.parquet", column="u") == {"x": 0.1, "y": 0.9}


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing.npz", "does not exist"),
        (lambda p: _npz(p / "a.npz", vectors=VECTORS), "array `ids`"),
        (lambda p: _npz(p / "b.npz", ids=np.arange(4)), "array `vectors`"),
        (lambda p: _npz(p / "c.npz", ids=np.arange(3), vectors=VECTORS), r"shape \(3, D\)"),
        (lambda p: _npz(p / "d.npz", ids=np.array([1, 2, 2, 3]), vectors=VECTORS), "repeats id"),
        (lambda p: _npz(p / "e.npz", ids=np.arange(4), vectors=VECTORS * np.nan), "non-finite"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", ".npz, .parquet or .csv"),
        (lambda p: (p / "g.npz").write_bytes(b"not a zip") and p / "g.npz", "Could not read"),
        (lambda p: pd.DataFrame({"x": [1]}).to_csv(p / "h.csv") or p / "h.csv", "column `id`"),
        (
            lambda p: (
                pd.DataFrame({"id": [1], "a1": [1.0], "b1": [2.0]}).to_csv(p / "i.csv")
                or p / "i.csv"
            ),
            "numbered columns",
        ),
    ],
)
def test_bad_files_name_the_file(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(InputError, match=match) as info:
        read_embeddings(path)
    assert str(path.name) in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_score_files(tmp_path):
    pd.DataFrame({"id": ["a"], "score": [np.nan]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InputError, match="non-finite"):
        read_scores(tmp_path / "s.csv")
    with pytest.raises(InputError, match="column `u`"):
        read_scores(tmp_path / "s.csv", column="u")
