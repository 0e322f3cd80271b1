import numpy as np
import pytest

from graceful.data import stratified_split, train_val_test_split
from graceful.errors import InputError


def _labels() -> np.ndarray:
    return np.repeat(np.arange(4), [50, 30, 15, 5])


@pytest.mark.parametrize("sizes", [[60, 20, 20], [33, 33, 34], [1, 98, 1], [70, 10]])
def test_exact_sizes_disjoint_and_proportional(sizes: list[int]) -> None:
    y = _labels()
    parts = stratified_split(y, sizes, seed=3)
    assert [len(p) for p in parts] == sizes
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(joined)
    share = np.bincount(y) / len(y)
    for part in parts:
        assert np.all(np.diff(part) > 0)
        counts = np.bincount(y[part], minlength=4)
        # each class within one sample of its proportional share of the part
        assert np.all(np.abs(counts - share * len(part)) < 1 + 1e-9)


def test_full_partition_covers_every_sample() -> None:
    y = _labels()
    parts = stratified_split(y, [60, 20, 20], seed=0)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(100))
    assert np.bincount(y[parts[1]]).tolist() == [10, 6, 3, 1]


def test_deterministic_per_seed() -> None:
    y = _labels()
    a = stratified_split(y, [60, 40], seed=7)
    b = stratified_split(y, [60, 40], seed=7)
    c = stratified_split(y, [60, 40], seed=8)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_string_labels_and_empty_part() -> None:
    y = np.array(["a", "b"] * 5)
    big, empty = stratified_split(y, [10, 0], seed=0)
    assert len(big) == 10 and len(empty) == 0 and empty.dtype == np.int64


@pytest.mark.parametrize("sizes", [[101], [-1, 5], [60, 41]])
def test_bad_sizes(sizes: list[int]) -> None:
    with pytest.raises(InputError, match="`sizes`"):
        stratified_split(_labels(), sizes, seed=0)


def test_bad_labels() -> None:
    with pytest.raises(InputError, match="`y`"):
        stratified_split(np.zeros((2, 2)), [1], seed=0)


def test_train_val_test_keeps_test_fixed_when_val_changes() -> None:
    y = _labels()
    tr1, va1, te1 = train_val_test_split(y, val_size=10, test_size=20, seed=1)
    tr2, va2, te2 = train_val_test_split(y, val_size=25, test_size=20, seed=1)
    assert np.array_equal(te1, te2)
    assert (len(tr1), len(va1), len(tr2), len(va2)) == (70, 10, 55, 25)
    assert np.array_equal(np.sort(np.concatenate([tr1, va1, te1])), np.arange(100))
    with pytest.raises(InputError, match="`val_size`"):
        train_val_test_split(y, val_size=90, test_size=20, seed=0)
