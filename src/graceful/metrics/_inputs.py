"""Turn user inputs (labels, logits, probabilities; numpy, torch, lists, pandas) into tensors.

Every public metric goes through :func:`prepare`, so validation and error messages are the
same everywhere. Conventions:

* ``target``: 1-D class indices in the *new* model's label space.
* ``preds_old`` / ``preds_new``: 1-D integer class indices (hard labels), 2-D floating
  scores of shape ``(N, C)`` (logits or probabilities: only their ranking is used), or
  2-D integer ranked label lists of shape ``(N, k)`` (top-k predictions, best first).
* String labels are accepted when all three inputs are 1-D labels; they are encoded
  jointly, so equal strings get equal codes.
* ``class_map``: maps old class indices to new class indices (a mapping, or a sequence
  of length ``C_old`` holding ``-1`` for old classes the new model does not have). Samples
  whose target class the old model cannot predict are *excluded* and counted apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import torch

from graceful.errors import InputError

__all__ = ["ArrayLike", "ClassMap", "Prepared", "prepare", "to_tensor"]

ArrayLike: TypeAlias = Any
"""numpy array, torch tensor, list/tuple, pandas Series or DataFrame."""

ClassMap: TypeAlias = Mapping[int, int] | Sequence[int] | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Prepared:
    """Validated inputs, all on one device.

    Attributes:
        correct_old: ``(N,)`` bool, old model right (target within its top-k).
        correct_new: ``(N,)`` bool, new model right.
        included: ``(N,)`` bool, or ``None`` when every sample counts (no class map).
        weight: ``(N,)`` float64 sample weights, or ``None`` for unit weights.
        top1_old: ``(N,)`` int64 old top-1 prediction in the new label space (-1: an old
            class with no counterpart).
        top1_new: ``(N,)`` int64 new top-1 prediction.
        target: ``(N,)`` int64.
    """

    correct_old: torch.Tensor
    correct_new: torch.Tensor
    included: torch.Tensor | None
    weight: torch.Tensor | None
    top1_old: torch.Tensor
    top1_new: torch.Tensor
    target: torch.Tensor


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
    raise TypeError(
        f"Expected argument `{name}` to be a numpy array, torch tensor, list or pandas object,"
        f" but got {type(x).__name__}"
    )


def to_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Convert ``x`` to a tensor without copying when possible.

    Args:
        x: numpy array, torch tensor, list/tuple or pandas object (numeric).
        name: argument name used in error messages.

    Returns:
        A tensor; booleans become int64.

    Raises:
        TypeError: for unsupported types or non-numeric values.

    Example:
        >>> to_tensor([1, 2, 3], "target")
        tensor([1, 2, 3])
    """
    arr = _as_numpy_or_tensor(x, name)
    if isinstance(arr, np.ndarray):
        if _is_string_like(arr):
            raise TypeError(
                f"Expected argument `{name}` to hold numbers, but got {arr.dtype} values;"
                " string labels are accepted only when target and both predictions are 1-D"
                " labels"
            )
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"Expected argument `{name}` to hold numbers, but got {arr.dtype}")
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
        raise TypeError(f"Expected argument `{name}` to hold real numbers, but got complex")
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
    if t.numel() == 0:
        return
    lo, hi = torch.aminmax(t)
    if int(lo) < 0:
        raise InputError(f"Expected argument `{name}` to hold {what} >= 0, but got {int(lo)}")
    if upper is not None and int(hi) >= upper:
        raise InputError(
            f"Expected argument `{name}` to hold {what} < {upper} (the number of classes),"
            f" but got {int(hi)}"
        )


def _ranked(preds: torch.Tensor, *, top_k: int, name: str) -> tuple[torch.Tensor, int | None]:
    """Return ``(N, k)`` ranked class indices and the number of classes when scores say it."""
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
        return preds.long().unsqueeze(1), None
    if preds.ndim != 2:
        raise InputError(
            f"Expected argument `{name}` to be 1-D labels or 2-D scores, but got"
            f" {preds.ndim}-D with shape {tuple(preds.shape)}"
        )
    if preds.is_floating_point():
        num_classes = preds.shape[1]
        if num_classes == 0:
            raise InputError(f"Expected argument `{name}` to have at least one class column")
        # One summing pass finds NaN/inf (they propagate); only then locate the row.
        # A finite-but-overflowing sum falls through to the exact check.
        if not bool(torch.isfinite(preds.sum())):
            finite = torch.isfinite(preds)
            if not bool(finite.all()):
                bad_row = int((~finite).any(dim=1).nonzero()[0, 0])
                raise InputError(
                    f"Expected argument `{name}` to hold finite scores, but row {bad_row} has"
                    " NaN or inf"
                )
        if top_k > num_classes:
            raise InputError(
                f"Expected argument `top_k` to be at most the number of classes"
                f" ({num_classes}) of `{name}`, but got {top_k}"
            )
        if top_k == 1:
            return preds.argmax(dim=1, keepdim=True), num_classes
        return preds.topk(top_k, dim=1).indices, num_classes
    if preds.shape[1] < top_k:
        raise InputError(
            f"Expected argument `{name}` to hold at least top_k={top_k} ranked labels per row,"
            f" but got {preds.shape[1]}"
        )
    return preds[:, :top_k].long(), None


def _hit(ranked: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Whether the target is among the ranked predictions, per row."""
    if ranked.shape[1] == 1:
        return ranked[:, 0] == target
    return (ranked == target.unsqueeze(1)).any(dim=1)


def _class_map_lut(class_map: ClassMap, num_new: int | None) -> torch.Tensor:
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
        raw = to_tensor(class_map, "class_map")
        if raw.is_floating_point() and not bool((raw == raw.round()).all()):
            # .long() would silently truncate 0.5 -> 0 (and NaN / inf to garbage)
            raise InputError("Expected argument `class_map` to hold integer class indices")
        lut = raw.long().reshape(-1)
        if lut.numel() == 0:
            raise InputError("Expected argument `class_map` to map at least one class")
    if int(lut.min()) < -1:
        raise InputError(
            "Expected argument `class_map` to hold new class indices or -1, but got"
            f" {int(lut.min())}"
        )
    if num_new is not None and int(lut.max()) >= num_new:
        raise InputError(
            f"Expected argument `class_map` to map into the new model's {num_new} classes,"
            f" but got {int(lut.max())}"
        )
    if int(lut.max()) < 0:
        raise InputError("Expected argument `class_map` to map at least one class")
    return lut


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"Expected argument `top_k` to be a positive int, but got {top_k!r}")


def _weights(sample_weight: ArrayLike | None, n: int, device: torch.device) -> torch.Tensor | None:
    if sample_weight is None:
        return None
    w = to_tensor(sample_weight, "sample_weight").to(device=device, dtype=torch.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise InputError(
            f"Expected argument `sample_weight` to have shape ({n},), but got {tuple(w.shape)}"
        )
    if not bool(torch.isfinite(w).all()) or (n and float(w.min()) < 0):
        raise InputError("Expected argument `sample_weight` to hold finite values >= 0")
    return w


def prepare(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> Prepared:
    """Validate the inputs of a two-model metric and compute per-sample correctness.

    Args:
        target: true classes, 1-D, in the new model's label space.
        preds_old: old model's labels, scores or ranked labels.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` best classes.
        sample_weight: optional non-negative weight per sample.
        class_map: optional old-class -> new-class map (see module docstring).
        num_classes: number of classes of the new model, when its predictions are labels.

    Returns:
        The :class:`Prepared` per-sample arrays.

    Example:
        >>> p = prepare([0, 1, 1], [0, 1, 0], [0, 0, 1])
        >>> p.correct_old.tolist(), p.correct_new.tolist()
        ([True, True, False], [True, False, True])
    """
    _check_top_k(top_k)
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise InputError(
            f"Expected argument `num_classes` to be a positive int, but got {num_classes!r}"
        )
    target, preds_old, preds_new = _encode_strings(target, preds_old, preds_new)
    t = to_tensor(target, "target")
    if t.ndim != 1:
        raise InputError(f"Expected argument `target` to be 1-D, but got shape {tuple(t.shape)}")
    if t.is_floating_point():
        raise InputError(
            f"Expected argument `target` to hold integer class indices, but got {t.dtype} values"
        )
    t = t.long()
    n = t.shape[0]
    if n == 0:
        raise InputError("Expected argument `target` to be non-empty, but got 0 samples")
    old = to_tensor(preds_old, "preds_old").to(t.device)
    new = to_tensor(preds_new, "preds_new").to(t.device)
    for value, name in ((old, "preds_old"), (new, "preds_new")):
        if value.ndim >= 1 and value.shape[0] != n:
            raise InputError(
                f"Expected argument `{name}` to have {n} rows like `target`, but got"
                f" {value.shape[0]}"
            )
    ranked_old, c_old = _ranked(old, top_k=top_k, name="preds_old")
    ranked_new, c_new = _ranked(new, top_k=top_k, name="preds_new")
    if num_classes is not None and c_new is not None and c_new != num_classes:
        raise InputError(
            f"Expected argument `num_classes` ({num_classes}) to match the {c_new} score"
            " columns of `preds_new`"
        )
    c_ref = c_new if c_new is not None else num_classes
    _check_int_range(t, "target", c_ref, "class indices")
    if c_new is None:
        _check_int_range(ranked_new, "preds_new", c_ref, "class indices")

    included: torch.Tensor | None = None
    if class_map is None:
        if c_old is not None and c_ref is not None and c_old != c_ref:
            raise InputError(
                f"The old model has {c_old} classes and the new model {c_ref}; pass"
                " `class_map` to say how old classes map to new ones"
            )
        if c_old is None:
            _check_int_range(ranked_old, "preds_old", c_ref, "class indices")
        mapped_old = ranked_old
    else:
        lut = _class_map_lut(class_map, c_ref).to(t.device)
        if c_old is not None and lut.numel() > c_old:
            raise InputError(
                f"Expected argument `class_map` to have keys < {c_old} (the old model's"
                f" classes), but got {lut.numel() - 1}"
            )
        _check_int_range(ranked_old, "preds_old", c_old, "class indices")
        in_lut = ranked_old < lut.numel()
        mapped_old = torch.where(in_lut, lut[ranked_old.clamp(max=lut.numel() - 1)], -1)
        shared = torch.unique(lut[lut >= 0])
        included = torch.isin(t, shared)

    correct_old = _hit(mapped_old, t)
    correct_new = _hit(ranked_new, t)
    return Prepared(
        correct_old=correct_old,
        correct_new=correct_new,
        included=included,
        weight=_weights(sample_weight, n, t.device),
        top1_old=mapped_old[:, 0],
        top1_new=ranked_new[:, 0],
        target=t,
    )
