"""The arrays every loader returns: features, labels and stable sample ids, split three ways."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import TensorDataset

from graceful.errors import InputError

__all__ = ["LabelledArrays", "Splits"]


@dataclass(frozen=True, eq=False)
class LabelledArrays:
    """Features, labels and stable sample ids of one part of a data set.

    Attributes:
        x: ``float32`` features, one row per sample: ``(N, 1, H, W)`` images in ``[0, 1]``,
            ``(N, 40)`` MNIST-1D signals or ``(N, D)`` sentence embeddings.
        y: ``int64`` labels ``(N,)``, indices into :attr:`classes`.
        ids: ``int64`` sample ids ``(N,)``: the row of the sample in the full data set, the
            same in every split and every seed, so cached teacher outputs can be keyed by it.
        classes: the class names, ``classes[y[i]]`` is the name of sample ``i``'s label.

    Example:
        >>> import numpy as np
        >>> part = LabelledArrays(
        ...     x=np.zeros((3, 2), dtype=np.float32),
        ...     y=np.array([0, 1, 1]),
        ...     ids=np.array([10, 11, 12]),
        ...     classes=["no", "yes"],
        ... )
        >>> len(part), part.subset([2, 0]).ids.tolist()
        (3, [12, 10])
        >>> x, y, i = part.to_tensor_dataset()[1]
        >>> (x.dtype, int(y), int(i))
        (torch.float32, 1, 11)
    """

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        x = np.asarray(self.x)
        y = np.asarray(self.y)
        ids = np.asarray(self.ids)
        if x.ndim < 2:
            raise InputError(f"Expected argument `x` to have shape (N, ...), but got {x.shape}")
        if y.shape != (len(x),) or ids.shape != (len(x),):
            raise InputError(
                f"Expected arguments `y` and `ids` to have shape ({len(x)},), "
                f"but got {y.shape} and {ids.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer) or not np.issubdtype(ids.dtype, np.integer):
            raise InputError(f"Expected integer `y` and `ids`, but got {y.dtype} and {ids.dtype}")
        if len(y) and (y.min() < 0 or (self.classes and y.max() >= len(self.classes))):
            raise InputError(
                f"Expected argument `y` in [0, {len(self.classes)}), "
                f"but got values in [{y.min()}, {y.max()}]"
            )
        object.__setattr__(self, "x", np.ascontiguousarray(x, dtype=np.float32))
        object.__setattr__(self, "y", np.ascontiguousarray(y, dtype=np.int64))
        object.__setattr__(self, "ids", np.ascontiguousarray(ids, dtype=np.int64))
        object.__setattr__(self, "classes", list(self.classes))

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray | list[int] | list[bool]) -> LabelledArrays:
        """Rows ``index`` (positions or a boolean mask) as a new :class:`LabelledArrays`.

        Example:
            >>> import numpy as np
            >>> part = LabelledArrays(np.ones((4, 1), np.float32), np.arange(4), np.arange(4))
            >>> part.subset(np.array([True, False, True, False])).y.tolist()
            [0, 2]
        """
        idx = np.asarray(index)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise InputError(f"Expected boolean `index` of length {len(self)}, got {idx.shape}")
        elif not np.issubdtype(idx.dtype, np.integer) and idx.size:
            raise InputError(f"Expected argument `index` to hold integers, but got {idx.dtype}")
        idx = idx if idx.dtype == np.bool_ else idx.astype(np.int64)
        return LabelledArrays(self.x[idx], self.y[idx], self.ids[idx], list(self.classes))

    def to_tensor_dataset(self) -> TensorDataset:
        """A :class:`torch.utils.data.TensorDataset` of ``(x, y, id)`` items (shares memory).

        Example:
            >>> import numpy as np
            >>> part = LabelledArrays(np.ones((2, 3), np.float32), np.array([1, 0]), np.arange(2))
            >>> [t.shape for t in part.to_tensor_dataset().tensors]
            [torch.Size([2, 3]), torch.Size([2]), torch.Size([2])]
        """
        return TensorDataset(
            torch.from_numpy(self.x), torch.from_numpy(self.y), torch.from_numpy(self.ids)
        )


@dataclass(frozen=True, eq=False)
class Splits:
    """A data set split into train, validation and test parts with disjoint sample ids.

    Example:
        >>> import numpy as np
        >>> def part(ids):
        ...     n = len(ids)
        ...     return LabelledArrays(np.zeros((n, 1), np.float32), np.zeros(n, int), ids)
        >>> s = Splits(part(np.array([0, 1])), part(np.array([2])), part(np.array([3])))
        >>> [len(p) for p in (s.train, s.val, s.test)]
        [2, 1, 1]
    """

    train: LabelledArrays
    val: LabelledArrays
    test: LabelledArrays

    @property
    def classes(self) -> list[str]:
        """The class names (those of the training part).

        Example:
            >>> import numpy as np
            >>> zero = np.zeros(1, int)
            >>> p = LabelledArrays(np.zeros((1, 1), np.float32), zero, zero, ["a"])
            >>> Splits(p, p, p).classes
            ['a']
        """
        return list(self.train.classes)
