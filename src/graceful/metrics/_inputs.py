"""Turn user inputs (labels, scores, ranked lists; numpy, torch, lists, pandas) into tensors.

Every metric goes through :func:`prepare` (two models) or :func:`prepare_single` (one
model), so validation and error messages are the same everywhere. Conventions:

* ``target``: 1-D class indices in the *new* model's label space.
* ``preds_old`` / ``preds_new``, one of three kinds, told apart as scikit-learn's
  ``type_of_target`` does, never guessed:

  - 1-D integers: hard labels ``(N,)``;
  - 2-D floating values: scores ``(N, C)`` (logits or probabilities: only their ranking
    is used, by the rule of :mod:`graceful._ranking`);
  - 2-D integers: ranked label lists ``(N, k)``, best first, **only** with
    ``ranked=True``. Without it a 2-D integer array is refused: it is as likely a
    one-hot matrix or integer scores as a ranking.

* String labels are accepted when all three inputs are 1-D labels; they are encoded
  jointly, so equal strings get equal codes.
* ``class_map``: maps old class indices to new class indices (a mapping, or a sequence
  of length ``C_old`` holding ``-1`` for old classes the new model does not have). Samples
  whose target class the old model cannot predict are *excluded* and counted apart.

With ``validate=False`` (the Metric classes' ``validate_args=False``) only shapes and
dtypes are checked: nothing reads tensor values back to the host, so an update queues
device work without waiting for it. Values are then the caller's responsibility.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import torch

from graceful._ranking import in_top_k, rank
from graceful._validation import check_bool, check_int, check_optional, describe, fail
from graceful.errors import InputError

__all__ = [
    "ArrayLike",
    "ClassMap",
    "ClassMapping",
    "Prepared",
    "class_mapping",
    "prepare",
    "prepare_single",
    "to_tensor",
]

ArrayLike: TypeAlias = Any
"""numpy array, torch tensor, list/tuple, pandas Series or DataFrame."""

ClassMap: TypeAlias = Mapping[int, int] | Sequence[int] | np.ndarray | torch.Tensor


def _is_string_like(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "USO"


def _as_numpy_or_tensor(x: ArrayLike, name: str) -> np.ndarray | torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return x
    to_numpy = getattr(x, "to_numpy", None)  # pandas Series / DataFrame / Index
    if callable(to_numpy):
        return np.asarray(to_numpy())
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x)
        except ValueError as exc:  # ragged nested lists
            raise InputError(f"Expected argument `{name}` to be rectangular, but {exc}") from None
    raise InputError(
        f"Expected argument `{name}` to be a numpy array, torch tensor, list or pandas object,"
        f" but got {type(x).__name__}"
    )


_CONVERTED_DTYPES = (torch.bool, torch.complex64, torch.complex128, torch.complex32)


def to_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Convert ``x`` to a tensor without copying when possible.

    Args:
        x: numpy array, torch tensor, list/tuple or pandas object (numeric).
        name: argument name used in error messages.

    Returns:
        A tensor; booleans become int64.

    Raises:
        InputError: for unsupported types or non-numeric values.

    Example:
        >>> to_tensor([1, 2, 3], "target")
        tensor([1, 2, 3])
        >>> to_tensor({"a": 1}, "x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `x` to be a numpy array, ... but got dict
    """
    if isinstance(x, torch.Tensor) and x.dtype not in _CONVERTED_DTYPES:
        return x.detach()  # the common case of the Metric classes, kept short
    arr = _as_numpy_or_tensor(x, name)
    if isinstance(arr, np.ndarray):
        if _is_string_like(arr):
            raise InputError(
                f"Expected argument `{name}` to hold numbers, but got {arr.dtype} values;"
                " string labels are accepted only when target and both predictions are 1-D"
                " labels (not torch tensors)"
            )
        if arr.dtype.kind not in "biuf":
            raise fail(name, "an array of numbers", arr)
        if arr.dtype.byteorder == ">" or not arr.flags.c_contiguous or not arr.flags.writeable:
            arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
            if not arr.flags.writeable:
                arr = arr.copy()
        if arr.dtype.kind == "u" and arr.dtype != np.uint8:
            arr = arr.astype(np.int64)
        tensor = torch.from_numpy(arr)
    else:
        tensor = arr
    if tensor.dtype == torch.bool:
        tensor = tensor.long()
    if tensor.is_complex():
        raise fail(name, "real numbers", tensor)
    return tensor


def _encode_strings(
    target: ArrayLike, preds_old: ArrayLike, preds_new: ArrayLike
) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """Encode 1-D string labels jointly; leave numeric inputs untouched."""
    arrays = []
    for value, name in ((target, "target"), (preds_old, "preds_old"), (preds_new, "preds_new")):
        if isinstance(value, torch.Tensor):
            return target, preds_old, preds_new
        arrays.append(np.asarray(_as_numpy_or_tensor(value, name)))
    if not any(_is_string_like(a) for a in arrays):
        return target, preds_old, preds_new
    for a, name in zip(arrays, ("target", "preds_old", "preds_new"), strict=True):
        if a.ndim != 1:
            raise InputError(
                f"Expected argument `{name}` to be 1-D labels when labels are strings,"
                f" but got shape {tuple(a.shape)}"
            )
        if a.dtype == object:
            missing = np.flatnonzero([v is None or (isinstance(v, float) and v != v) for v in a])
            if missing.size:
                raise InputError(
                    f"Expected argument `{name}` to hold labels, but row {int(missing[0])} is"
                    " missing (None or NaN)"
                )
    as_str = [a.astype(str) for a in arrays]
    _, codes = np.unique(np.concatenate(as_str), return_inverse=True)
    sizes = np.cumsum([0] + [len(a) for a in as_str])
    return tuple(codes[sizes[i] : sizes[i + 1]].astype(np.int64) for i in range(3))  # type: ignore[return-value]


def _check_int_range(t: torch.Tensor, name: str, upper: int | None, what: str) -> None:
    """Values in ``[0, upper)``; reads the minimum and maximum back (validation only)."""
    if t.numel() == 0:
        return
    lo, hi = (int(v) for v in torch.aminmax(t))
    if lo < 0:
        raise InputError(f"Expected argument `{name}` to hold {what} >= 0, but got {lo}")
    if upper is not None and hi >= upper:
        raise InputError(
            f"Expected argument `{name}` to hold {what} < {upper} (the number of classes),"
            f" but got {hi}"
        )


# -- class maps ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMapping:
    """A validated class map, built once: old class -> new class, as lookup tensors.

    Attributes:
        lut: ``(C_old,)`` int64, the new class of each old class, -1 where there is none.
        reachable: ``(max_new + 1,)`` bool, whether some old class maps to each new class.
        max_new: the largest new class index mapped to (a Python int, so checks against
            the number of classes read nothing back from a device).
    """

    lut: torch.Tensor
    reachable: torch.Tensor
    max_new: int

    def to(self, device: torch.device) -> ClassMapping:
        """The same map with its tensors on ``device`` (itself when already there)."""
        if self.lut.device == device:
            return self
        return ClassMapping(self.lut.to(device), self.reachable.to(device), self.max_new)

    def map(self, classes: torch.Tensor) -> torch.Tensor:
        """New class of each old class index in ``classes`` (-1 outside the map)."""
        size = self.lut.shape[0]
        inside = (classes >= 0) & (classes < size)
        return torch.where(inside, self.lut[classes.clamp(0, size - 1)], -1)

    def includes(self, target: torch.Tensor) -> torch.Tensor:
        """Whether each target class is one the old model can predict."""
        size = self.reachable.shape[0]
        inside = (target >= 0) & (target < size)
        return inside & self.reachable[target.clamp(0, size - 1)]


def class_mapping(class_map: ClassMap | ClassMapping) -> ClassMapping:
    """Validate ``class_map`` and build its lookup tensors (on the CPU).

    Example:
        >>> m = class_mapping({0: 1, 2: 0})
        >>> m.lut.tolist(), m.reachable.tolist(), m.max_new
        ([1, -1, 0], [True, True], 1)
    """
    if isinstance(class_map, ClassMapping):
        return class_map
    if isinstance(class_map, Mapping):
        if any(int(x) != x for kv in class_map.items() for x in kv):
            raise InputError("Expected argument `class_map` to hold integer class indices")
        items = [(int(k), int(v)) for k, v in class_map.items()]
        if not items:
            raise InputError("Expected argument `class_map` to map at least one class")
        if min(k for k, _ in items) < 0:
            raise InputError("Expected argument `class_map` to have keys >= 0 (old classes)")
        lut = torch.full((max(k for k, _ in items) + 1,), -1, dtype=torch.long)
        for k, v in items:
            lut[k] = v
    else:
        raw = to_tensor(class_map, "class_map").cpu()
        if raw.is_floating_point() and not bool((raw == raw.round()).all()):
            # .long() would silently truncate 0.5 -> 0 (and NaN / inf to garbage)
            raise InputError("Expected argument `class_map` to hold integer class indices")
        lut = raw.long().reshape(-1)
        if lut.numel() == 0:
            raise InputError("Expected argument `class_map` to map at least one class")
    low, high = int(lut.min()), int(lut.max())
    if low < -1:
        raise InputError(
            f"Expected argument `class_map` to hold new class indices or -1, but got {low}"
        )
    if high < 0:
        raise InputError("Expected argument `class_map` to map at least one class")
    reachable = torch.zeros(high + 1, dtype=torch.bool)
    reachable[lut[lut >= 0]] = True
    return ClassMapping(lut=lut, reachable=reachable, max_new=high)


# -- predictions --------------------------------------------------------------------------

Kind: TypeAlias = Literal["labels", "scores", "ranked"]


@dataclass(frozen=True)
class _Predictions:
    """One model's predictions, of a known kind, cut to what ``top_k`` needs."""

    kind: Kind
    values: torch.Tensor  # labels (N,), scores (N, C) or ranked lists (N, top_k)
    top_k: int

    @property
    def num_classes(self) -> int | None:
        return self.values.shape[1] if self.kind == "scores" else None

    def top(self) -> torch.Tensor:
        """``(N, top_k)`` ranked classes (``(N, 1)`` for labels)."""
        if self.kind == "labels":
            return self.values.unsqueeze(1)
        if self.kind == "ranked":
            return self.values
        return rank(self.values, self.top_k)

    def top1(self) -> torch.Tensor:
        """``(N,)`` best class."""
        if self.kind == "labels":
            return self.values
        if self.kind == "ranked":
            return self.values[:, 0]
        return self.values.argmax(dim=1)

    def hit(self, target: torch.Tensor) -> torch.Tensor:
        """``(N,)`` bool: the target is among the ``top_k`` best classes."""
        if self.kind == "scores":
            return in_top_k(self.values, target, self.top_k)
        if self.kind == "labels" or self.top_k == 1:
            return self.top1() == target
        return (self.values == target.unsqueeze(1)).any(dim=1)

    def check_range(self, name: str, upper: int | None) -> None:
        if self.kind != "scores":
            _check_int_range(self.values, name, upper, "class indices")


def _predictions(
    x: ArrayLike,
    name: str,
    *,
    n: int,
    device: torch.device,
    top_k: int,
    ranked: bool,
    validate: bool,
) -> _Predictions:
    """Tell the kind of one model's predictions and check its shape (and values)."""
    preds = to_tensor(x, name)
    if preds.device != device:
        preds = preds.to(device)
    if preds.ndim >= 1 and preds.shape[0] != n:
        raise InputError(
            f"Expected argument `{name}` to have {n} rows like `target`, but got {preds.shape[0]}"
        )
    if preds.ndim == 1:
        if preds.is_floating_point():
            raise InputError(
                f"Expected argument `{name}` to be integer class indices (1-D) or scores of"
                f" shape (N, C) (2-D), but got 1-D {preds.dtype} values"
            )
        if top_k > 1:
            raise InputError(
                f"Expected argument `{name}` to hold scores of shape (N, C) for top_k={top_k},"
                " but got 1-D labels"
            )
        return _Predictions("labels", _as_int64(preds), top_k)
    if preds.ndim != 2:
        raise InputError(
            f"Expected argument `{name}` to be 1-D labels or 2-D scores, but got"
            f" {preds.ndim}-D with shape {tuple(preds.shape)}"
        )
    if preds.is_floating_point():
        return _scores(preds, name, top_k=top_k, validate=validate)
    if not ranked:
        raise InputError(
            f"Expected argument `{name}` to be 1-D labels or 2-D float scores, but got"
            f" {describe(preds)}; pass ranked=True if its rows are ranked label lists (best"
            " first), or cast scores to float"
        )
    if preds.shape[1] < top_k:
        raise InputError(
            f"Expected argument `{name}` to hold at least top_k={top_k} ranked labels per row,"
            f" but got {preds.shape[1]}"
        )
    return _Predictions("ranked", _as_int64(preds[:, :top_k]), top_k)


def _scores(preds: torch.Tensor, name: str, *, top_k: int, validate: bool) -> _Predictions:
    num_classes = preds.shape[1]
    if num_classes == 0:
        raise InputError(f"Expected argument `{name}` to have at least one class column")
    if top_k > num_classes:
        raise InputError(
            f"Expected argument `top_k` to be at most the number of classes"
            f" ({num_classes}) of `{name}`, but got {top_k}"
        )
    # One summing pass finds NaN/inf (they propagate); only then locate the row.
    # A finite-but-overflowing sum falls through to the exact check.
    if validate and not bool(torch.isfinite(preds.sum())):
        finite = torch.isfinite(preds)
        if not bool(finite.all()):
            bad_row = int((~finite).any(dim=1).nonzero()[0, 0])
            raise InputError(
                f"Expected argument `{name}` to hold finite scores, but row {bad_row} has"
                " NaN or inf"
            )
    return _Predictions("scores", preds, top_k)


def _target(target: ArrayLike) -> torch.Tensor:
    t = to_tensor(target, "target")
    if t.ndim != 1:
        raise InputError(f"Expected argument `target` to be 1-D, but got shape {tuple(t.shape)}")
    if t.is_floating_point():
        raise InputError(
            f"Expected argument `target` to hold integer class indices, but got {t.dtype} values"
        )
    if t.shape[0] == 0:
        raise InputError("Expected argument `target` to be non-empty, but got 0 samples")
    return _as_int64(t)


def _as_int64(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == torch.int64 else t.long()


def _weights(
    sample_weight: ArrayLike | None, n: int, device: torch.device, validate: bool
) -> torch.Tensor | None:
    if sample_weight is None:
        return None
    w = to_tensor(sample_weight, "sample_weight").to(device=device, dtype=torch.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise InputError(
            f"Expected argument `sample_weight` to have shape ({n},), but got {tuple(w.shape)}"
        )
    if validate and (not bool(torch.isfinite(w).all()) or float(w.min()) < 0):
        raise InputError("Expected argument `sample_weight` to hold finite values >= 0")
    return w


def _check_num_classes(num_classes: int | None, scores_of: int | None, name: str) -> None:
    if num_classes is not None and scores_of is not None and scores_of != num_classes:
        raise InputError(
            f"Expected argument `num_classes` ({num_classes}) to match the {scores_of} score"
            f" columns of `{name}`"
        )


# -- the prepared inputs ------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """Validated inputs, all on one device, and per-sample correctness.

    Attributes:
        correct_old: ``(N,)`` bool, old model right (target within its top-k).
        correct_new: ``(N,)`` bool, new model right.
        included: ``(N,)`` bool, or ``None`` when every sample counts (no class map).
        weight: ``(N,)`` float64 sample weights, or ``None`` for unit weights.
        target: ``(N,)`` int64.
        old: the old model's predictions, of a known kind.
        new: the new model's predictions.
        mapping: the class map, or ``None``.

    The top-1 predictions (:meth:`top1_old`, :meth:`top1_new`) are computed on demand:
    only :class:`~graceful.metrics.FlipFrame` needs them.
    """

    correct_old: torch.Tensor
    correct_new: torch.Tensor
    included: torch.Tensor | None
    weight: torch.Tensor | None
    target: torch.Tensor
    old: _Predictions
    new: _Predictions
    mapping: ClassMapping | None

    def top1_old(self) -> torch.Tensor:
        """``(N,)`` int64 old top-1 prediction in the new label space (-1: no counterpart)."""
        top1 = self.old.top1()
        return top1 if self.mapping is None else self.mapping.map(top1)

    def top1_new(self) -> torch.Tensor:
        """``(N,)`` int64 new top-1 prediction."""
        return self.new.top1()


def prepare(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | ClassMapping | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
    validate: bool = True,
) -> Prepared:
    """Validate the inputs of a two-model metric and compute per-sample correctness.

    Args:
        target: true classes, 1-D, in the new model's label space.
        preds_old: old model's labels, scores or (with ``ranked``) ranked labels.
        preds_new: new model's labels, scores or (with ``ranked``) ranked labels.
        top_k: a model is right when the target is among its ``top_k`` best classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class, or a :class:`ClassMapping` built once.
        num_classes: number of classes of the new model, when its predictions are labels.
        ranked: 2-D integer predictions are ranked label lists (best first).
        validate: check values too (ranges, finiteness), reading them back to the host.

    Returns:
        A :class:`Prepared`.

    Example:
        >>> p = prepare([0, 1, 2], [0, 1, 1], [0, 2, 2])
        >>> p.correct_old.tolist(), p.correct_new.tolist()
        ([True, True, False], [True, False, True])
        >>> prepare([0, 1], [[0, 1], [1, 0]], [0, 1], ranked=True).correct_old.tolist()
        [True, True]
    """
    top_k = check_int("top_k", top_k, low=1)
    num_classes = check_optional(check_int, "num_classes", num_classes, low=1)
    ranked = check_bool("ranked", ranked)
    mapping = None if class_map is None else class_mapping(class_map)
    target, preds_old, preds_new = _encode_strings(target, preds_old, preds_new)
    t = _target(target)
    n, device = t.shape[0], t.device
    old = _predictions(
        preds_old, "preds_old", n=n, device=device, top_k=top_k, ranked=ranked, validate=validate
    )
    new = _predictions(
        preds_new, "preds_new", n=n, device=device, top_k=top_k, ranked=ranked, validate=validate
    )
    c_old, c_new = old.num_classes, new.num_classes
    _check_num_classes(num_classes, c_new, "preds_new")
    c_ref = c_new if c_new is not None else num_classes
    if mapping is None:
        if c_old is not None and c_ref is not None and c_old != c_ref:
            raise InputError(
                f"The old model has {c_old} classes and the new model {c_ref}; pass"
                " `class_map` to say how old classes map to new ones"
            )
    else:
        mapping = mapping.to(device)
        if c_ref is not None and mapping.max_new >= c_ref:
            raise InputError(
                f"Expected argument `class_map` to map into the new model's {c_ref} classes,"
                f" but got {mapping.max_new}"
            )
        if c_old is not None and mapping.lut.shape[0] > c_old:
            raise InputError(
                f"Expected argument `class_map` to have keys < {c_old} (the old model's"
                f" classes), but got {mapping.lut.shape[0] - 1}"
            )
    if validate:
        _check_int_range(t, "target", c_ref, "class indices")
        new.check_range("preds_new", c_ref)
        old.check_range("preds_old", c_ref if mapping is None else c_old)
    weight = _weights(sample_weight, n, device, validate)

    if mapping is None:
        correct_old, included = old.hit(t), None
    else:
        correct_old = (mapping.map(old.top()) == t.unsqueeze(1)).any(dim=1)
        included = mapping.includes(t)
    return Prepared(
        correct_old=correct_old,
        correct_new=new.hit(t),
        included=included,
        weight=weight,
        target=t,
        old=old,
        new=new,
        mapping=mapping,
    )


def prepare_single(
    target: ArrayLike,
    preds: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
    validate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-sample correctness ``(N,)`` bool of one model, and the weights (or ``None``).

    Arguments as in :func:`prepare`, with the single model's predictions as ``preds``.

    Example:
        >>> prepare_single([0, 1, 2], [[0.9, 0.1, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])[0]
        tensor([ True, False,  True])
    """
    top_k = check_int("top_k", top_k, low=1)
    num_classes = check_optional(check_int, "num_classes", num_classes, low=1)
    ranked = check_bool("ranked", ranked)
    t = _target(target)
    n, device = t.shape[0], t.device
    model = _predictions(
        preds, "preds", n=n, device=device, top_k=top_k, ranked=ranked, validate=validate
    )
    _check_num_classes(num_classes, model.num_classes, "preds")
    c_ref = model.num_classes if model.num_classes is not None else num_classes
    if validate:
        _check_int_range(t, "target", c_ref, "class indices")
        model.check_range("preds", c_ref)
    return model.hit(t), _weights(sample_weight, n, device, validate)
