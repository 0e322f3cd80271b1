"""Teachers: the old model's logits for a batch, for losses that distil from it.

A teacher is called as ``teacher(x, ids) -> logits`` with the batch inputs and their stable
sample ids, and returns detached float32 logits of shape ``(B, C)`` on ``x``'s device,
computed under :func:`torch.no_grad`:

- :class:`OnlineTeacher` runs the old model (in eval mode) on the batch;
- :class:`CachedTeacher` looks the logits up in a table computed once by id, so
  distillation costs almost nothing over plain training when inputs are not augmented
  (with augmentation the cached logits belong to the un-augmented inputs: use
  :class:`OnlineTeacher` there);
- :class:`EnsembleTeacher` averages the logits of several teachers (ELODI-style).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol, cast, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from graceful._validation import check_callable, check_instance, fail
from graceful.errors import InputError
from graceful.io.atomic import atomic_open

from .inference import _collect, _logits_of

__all__ = ["CachedTeacher", "EnsembleTeacher", "OnlineTeacher", "Teacher"]

_FORMAT = "graceful.cached_teacher/1"


@runtime_checkable
class Teacher(Protocol):
    """Anything called as ``teacher(x, ids)`` that returns old-model logits ``(B, C)``.

    Example:
        >>> isinstance(OnlineTeacher(torch.nn.Linear(2, 3)), Teacher)
        True
    """

    def __call__(self, x: Tensor, ids: Tensor) -> Tensor:
        """Detached float32 logits of the old model for the batch ``x`` with ids ``ids``."""
        ...


class OnlineTeacher:
    """Runs the old model on each batch, in eval mode and without gradients.

    Args:
        model: the old model, on the device the batches will be on; it is put in eval mode.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> old = torch.nn.Linear(4, 3)
        >>> teacher = OnlineTeacher(old)
        >>> x = torch.randn(2, 4)
        >>> out = teacher(x, torch.tensor([0, 1]))
        >>> out.shape, out.requires_grad, torch.equal(out, old(x).detach())
        (torch.Size([2, 3]), False, True)
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = check_instance("model", model, nn.Module, "a torch.nn.Module").eval()

    @torch.no_grad()
    def __call__(self, x: Tensor, ids: Tensor) -> Tensor:
        """The old model's logits for ``x`` (``ids`` is not used)."""
        if self.model.training:  # someone switched it back; a teacher is always in eval mode
            self.model.eval()
        return _logits_of(self.model(x)).detach().float()  # an EmbeddingOutput's logits


def _checksum(ids: Tensor, logits: Tensor) -> str:
    digest = hashlib.sha256()
    digest.update(ids.contiguous().numpy().astype("<i8").tobytes())
    digest.update(logits.contiguous().numpy().astype("<f4").tobytes())
    return digest.hexdigest()


def _sorted_unique(ids: Tensor, subject: str) -> tuple[Tensor, Tensor]:
    """``ids`` (int64, CPU) sorted, and the order; an error naming ``subject`` if they repeat."""
    if ids.numel() == 0:
        raise InputError(f"Expected {subject} to hold at least one id, but it is empty")
    ids = ids.detach().to("cpu", torch.int64)
    order = torch.argsort(ids)
    sorted_ids = ids[order]
    duplicate = sorted_ids[1:] == sorted_ids[:-1]
    if bool(duplicate.any()):
        first = int(sorted_ids[1:][duplicate][0])
        raise InputError(f"Expected {subject} to be unique, but id {first} repeats")
    return sorted_ids, order


class CachedTeacher:
    """A table of old-model logits keyed by sample id, looked up per batch without a model.

    Lookup is vectorised: a direct index when the ids are ``0..N-1``, otherwise
    :func:`torch.searchsorted` over the sorted ids. The table moves to the batch's device
    on first use.

    Args:
        ids: 1-D unique integer sample ids.
        logits: ``(N, C)`` old-model logits, row ``i`` for ``ids[i]``; stored as float32.

    Raises:
        InputError: ``ids`` is not 1-D, unique and integer, or ``logits`` does not match it.

    Example:
        >>> teacher = CachedTeacher(torch.tensor([10, 30, 20]),
        ...                         torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]]))
        >>> teacher(torch.zeros(2, 5), torch.tensor([20, 10]))
        tensor([[2., 0.],
                [1., 0.]])
        >>> teacher(torch.zeros(1, 5), torch.tensor([11]))
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected every id in `ids` to be cached, but id 11 is missing
    """

    def __init__(self, ids: Tensor, logits: Tensor) -> None:
        if not isinstance(ids, Tensor) or ids.ndim != 1 or ids.is_floating_point():
            raise fail("ids", "a 1-D integer tensor", ids)
        if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != ids.shape[0]:
            raise fail("logits", f"a tensor of shape ({ids.shape[0]}, C)", logits)
        sorted_ids, order = _sorted_unique(ids, "argument `ids`")
        self._ids = sorted_ids
        self._logits = logits.detach().to("cpu", torch.float32)[order].contiguous()
        n = sorted_ids.shape[0]
        self._dense = bool(sorted_ids[0] == 0) and bool(sorted_ids[-1] == n - 1)
        # Ids within a span of at most 4n (+1024) are looked up by their offset from the
        # first: directly when they are 0..n-1, else through a position table (-1 where no
        # id), one gather instead of a binary search; ids spread wider are searched.
        self._first = int(sorted_ids[0])  # the ids are not empty (_sorted_unique)
        span = int(sorted_ids[-1]) - self._first + 1
        self._span: int | None = span if span <= 4 * n + 1024 else None
        self._positions: Tensor | None = None
        if self._span is not None and not self._dense:
            positions = torch.full((span,), -1, dtype=torch.int64)
            positions[sorted_ids - self._first] = torch.arange(n, dtype=torch.int64)
            self._positions = positions

    @property
    def ids(self) -> Tensor:
        """The sorted sample ids (int64)."""
        return self._ids

    @property
    def logits(self) -> Tensor:
        """The logits, row ``i`` for ``ids[i]`` (float32)."""
        return self._logits

    @property
    def num_classes(self) -> int:
        """Number of columns of the logits."""
        return int(self._logits.shape[1])

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @classmethod
    def build(
        cls,
        model: nn.Module,
        dataset: Dataset[Any],
        *,
        batch_size: int = 256,
        num_workers: int = 0,
    ) -> CachedTeacher:
        """Run the old model once over ``dataset`` (items ``(x, y, id)``) and keep its logits.

        Args:
            model: the old model, on the device to run it on; its train/eval mode is
                restored afterwards.
            dataset: items ``(x, y, id)``; the un-augmented inputs.
            batch_size: batch size of the single pass.
            num_workers: DataLoader workers.

        Returns:
            The table.

        Example:
            >>> from torch.utils.data import TensorDataset
            >>> data = TensorDataset(torch.randn(5, 4), torch.zeros(5, dtype=torch.long),
            ...                      torch.arange(5))
            >>> old = torch.nn.Linear(4, 3)
            >>> teacher = CachedTeacher.build(old, data, batch_size=2)
            >>> len(teacher), teacher.num_classes
            (5, 3)
        """
        if isinstance(dataset, (Tensor, np.ndarray)):  # the ids come from the items
            raise fail("dataset", "a dataset of (x, y, id) items", dataset)
        logits, ids = _collect(
            model, dataset, batch_size=batch_size, num_workers=num_workers, name="dataset"
        )
        _sorted_unique(ids, "the ids of `dataset`")
        return cls(ids, logits)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table with its SHA-256 checksum to ``path`` atomically.

        Example:
            >>> import tempfile, pathlib
            >>> p = pathlib.Path(tempfile.mkdtemp()) / "teacher.pt"
            >>> t = CachedTeacher(torch.arange(3), torch.eye(3))
            >>> t.save(p)
            >>> torch.equal(CachedTeacher.load(p).logits, t.logits)
            True
        """
        payload = {
            "format": _FORMAT,
            "ids": self._ids.cpu(),
            "logits": self._logits.cpu(),
            "sha256": _checksum(self._ids.cpu(), self._logits.cpu()),
        }
        with atomic_open(path, "wb") as handle:
            torch.save(payload, cast(IO[bytes], handle))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CachedTeacher:
        """Read a table written by :meth:`save`, verifying its checksum.

        Raises:
            InputError: naming the file, when it cannot be read, is not a cached teacher
                or fails its checksum.

        Example:
            >>> import tempfile, pathlib
            >>> p = pathlib.Path(tempfile.mkdtemp()) / "teacher.pt"
            >>> CachedTeacher(torch.tensor([4, 2]), torch.ones(2, 3)).save(p)
            >>> CachedTeacher.load(p).ids
            tensor([2, 4])
        """
        name = str(Path(path))
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any failure to read is the file's fault
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"Could not read cached teacher file `{name}`: {reason}") from None
        if (
            not isinstance(payload, dict)
            or payload.get("format") != _FORMAT
            or not isinstance(payload.get("ids"), Tensor)
            or not isinstance(payload.get("logits"), Tensor)
            or not isinstance(payload.get("sha256"), str)
        ):
            raise InputError(f"Expected file `{name}` to be a cached teacher written by save()")
        ids, logits = payload["ids"], payload["logits"]
        if ids.dtype != torch.int64 or logits.dtype != torch.float32:
            raise InputError(f"Expected file `{name}` to hold int64 ids and float32 logits")
        if _checksum(ids, logits) != payload["sha256"]:
            raise InputError(f"Cached teacher file `{name}` fails its SHA-256 checksum")
        try:
            return cls(ids, logits)
        except InputError as exc:
            raise InputError(f"Cached teacher file `{name}` is invalid: {exc}") from None

    def _to(self, device: torch.device) -> None:
        if self._ids.device != device:
            self._ids = self._ids.to(device)
            self._logits = self._logits.to(device)
            if self._positions is not None:
                self._positions = self._positions.to(device)

    @torch.no_grad()
    def __call__(self, x: Tensor, ids: Tensor) -> Tensor:
        """The cached logits of the samples ``ids``, on ``x``'s device."""
        self._to(x.device)
        ids = ids.to(self._ids.device, torch.int64)
        n = self._ids.shape[0]
        if ids.numel() == 0:
            return self._logits[:0]
        if self._span is not None:
            offsets = ids - self._first
            low, high = (int(v) for v in torch.aminmax(offsets))
            if low < 0 or high >= self._span:
                _missing(ids, (offsets >= 0) & (offsets < self._span))
            if self._positions is None:  # ids 0..n-1: the offset is the row
                return self._logits[offsets]
            rows = self._positions[offsets]
            found = rows >= 0
        else:
            rows = torch.searchsorted(self._ids, ids).clamp_(max=n - 1)
            found = self._ids[rows] == ids
        if not bool(found.all()):
            _missing(ids, found)
        return self._logits[rows]


def _missing(ids: Tensor, found: Tensor) -> NoReturn:
    """Raise naming the first id of ``ids`` not ``found``."""
    missing = int(ids[~found][0])
    raise InputError(f"Expected every id in `ids` to be cached, but id {missing} is missing")


class EnsembleTeacher:
    """The mean of several teachers' logits (ELODI-style ensemble distillation).

    Args:
        members: teachers, or models (each wrapped in an :class:`OnlineTeacher`); all
            must give logits of the same shape.

    Example:
        >>> a = CachedTeacher(torch.arange(2), torch.tensor([[1.0, 3.0], [0.0, 0.0]]))
        >>> b = CachedTeacher(torch.arange(2), torch.tensor([[3.0, 1.0], [2.0, 4.0]]))
        >>> EnsembleTeacher([a, b])(torch.zeros(2, 1), torch.tensor([0, 1]))
        tensor([[2., 2.],
                [1., 2.]])
    """

    def __init__(self, members: Sequence[Teacher | nn.Module]) -> None:
        if isinstance(members, (nn.Module, str)) or not isinstance(members, Sequence):
            raise fail("members", "a sequence of teachers or models", members)
        if len(members) == 0:
            raise InputError("Expected argument `members` to hold at least one teacher")
        wrapped: list[Teacher] = []
        for i, member in enumerate(members):
            if isinstance(member, nn.Module):
                wrapped.append(OnlineTeacher(member))
            else:
                wrapped.append(check_callable(f"members[{i}]", member))
        self.members: tuple[Teacher, ...] = tuple(wrapped)

    @torch.no_grad()
    def __call__(self, x: Tensor, ids: Tensor) -> Tensor:
        """The mean of the members' logits for the batch."""
        outputs = [member(x, ids).detach().float() for member in self.members]
        shapes = {tuple(out.shape) for out in outputs}
        if len(shapes) != 1:
            raise InputError(
                f"Expected every teacher in `members` to give logits of one shape, "
                f"but got {sorted(shapes)}"
            )
        return torch.stack(outputs).mean(dim=0)
