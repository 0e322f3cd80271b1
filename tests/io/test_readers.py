from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graceful.errors import InputError
from graceful.io._readers import _prefetch, open_source


def test_prefetch_passes_batches_and_errors_through() -> None:
    def gen() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk on fire")

    out = []
    with pytest.raises(OSError, match="disk on fire"):
        for item in _prefetch(gen()):  # type: ignore[arg-type]
            out.append(item)
    assert out == [1, 2]


def test_prefetch_stops_when_the_consumer_stops() -> None:
    stream = _prefetch(iter(range(1000)))  # type: ignore[arg-type]
    assert next(stream) == 0
    stream.close()  # joins the reader thread without hanging


def test_parquet_batches_hold_only_the_requested_columns(tmp_path: Path) -> None:
    table = pa.table({"a": np.arange(10), "b": np.arange(10.0), "c": ["x"] * 10})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=4)
    src = open_source(tmp_path / "t.parquet", one_d_name="pred")
    assert src.columns == ["a", "b", "c"]
    assert src.num_rows == 10
    batches = list(src.batches(["c", "a"], batch_rows=3))
    assert all(b.schema.names == ["c", "a"] for b in batches)
    assert all(b.num_rows <= 3 for b in batches)
    assert sum(b.num_rows for b in batches) == 10


def test_npz_extra_arrays_are_columns(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "a.npz",
        scores=np.zeros((3, 2)),
        classes=np.array(["cat", "dog"]),
        domain=np.array(["u", "v", "u"]),
    )
    src = open_source(tmp_path / "a.npz", one_d_name="pred")
    assert src.columns == ["domain", "score_cat", "score_dog"]
    assert src.array_scores == ("score_", ["cat", "dog"])


def test_npz_with_two_score_matrices_is_rejected(tmp_path: Path) -> None:
    np.savez(tmp_path / "b.npz", logits=np.zeros((3, 2)), probs=np.zeros((3, 2)))
    with pytest.raises(InputError, match=r"b\.npz: holds several score matrices"):
        open_source(tmp_path / "b.npz", one_d_name="pred")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputError, match=r"d\.csv: not a regular file"):
        open_source(tmp_path / "d.csv", one_d_name="pred")
