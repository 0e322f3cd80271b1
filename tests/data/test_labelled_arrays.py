import numpy as np
import pytest
import torch

from graceful.data import LabelledArrays, Splits
from graceful.errors import InputError


def _part() -> LabelledArrays:
    return LabelledArrays(
        np.arange(12, dtype=np.float64).reshape(4, 3),
        np.array([0, 1, 1, 0]),
        np.array([7, 8, 9, 10]),
        ["a", "b"],
    )


def test_dtypes_are_normalised() -> None:
    part = _part()
    assert part.x.dtype == np.float32 and part.y.dtype == np.int64 and part.ids.dtype == np.int64
    assert len(part) == 4


def test_subset_by_positions_and_mask() -> None:
    part = _part()
    assert part.subset([3, 1]).ids.tolist() == [10, 8]
    assert part.subset(part.y == 1).x[:, 0].tolist() == [3.0, 6.0]
    assert len(part.subset(np.array([], dtype=np.int64))) == 0
    with pytest.raises(InputError, match="`index`"):
        part.subset([True, False])
    with pytest.raises(InputError, match="`index`"):
        part.subset(np.array([0.5]))


def test_tensor_dataset_items() -> None:
    x, y, i = _part().to_tensor_dataset()[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and int(y) == 1 and int(i) == 9
    assert x.dtype == torch.float32 and y.dtype == torch.int64


@pytest.mark.parametrize(
    ("x", "y", "ids", "match"),
    [
        (np.zeros(3), [0, 0, 0], [0, 1, 2], "`x`"),
        (np.zeros((3, 1)), [0, 0], [0, 1, 2], "`y` and `ids`"),
        (np.zeros((2, 1)), [0.5, 1.0], [0, 1], "integer"),
        (np.zeros((2, 1)), [0, 2], [0, 1], "`y`"),
    ],
)
def test_validation(x: np.ndarray, y: list[float], ids: list[int], match: str) -> None:
    with pytest.raises(InputError, match=match):
        LabelledArrays(x, np.asarray(y), np.asarray(ids), ["a", "b"])


def test_splits_classes() -> None:
    p = _part()
    assert Splits(p, p, p).classes == ["a", "b"]
