r"""The rule that says a training run has collapsed, from validation counts.

A regression-aware loss pulled too hard towards an old model (logit matching with a
large weight against large teacher logits, say) can wreck a run without a non-finite
loss: the validation error climbs far above the old model's and the predictions pile
onto a few classes. :class:`~graceful.training.Trainer` applies this rule to every epoch
after a warm-up (see ``TrainConfig.collapse_warmup`` and ``TrainConfig.on_collapse``);
:func:`collapse_reason` is the rule itself, over counts, so it applies to any predictions.

Let :math:`n_k` be the validation samples predicted as class :math:`k` (top-1, ties to
the lowest class index), :math:`m_k` those labelled :math:`k` and
:math:`N = \sum_k n_k = \sum_k m_k`. The most predicted class :math:`k^*` (lowest index
among ties) takes the share :math:`p = n_{k^*} / N` of the predictions and holds the share
:math:`t = m_{k^*} / N` of the labels. A run has collapsed when any of these holds:

1. **Error** (only with an old model's validation error :math:`e_\text{old}` and a
   margin :math:`\delta`): :math:`e_\text{new} - e_\text{old} > \delta`.
2. **One class takes over**: :math:`p - t > \max(1/4, (1 - t) / 2)`. At least
   :math:`N (p - t)` samples of the other classes are predicted as :math:`k^*`, so it has
   taken more than half of the other classes' samples, and more than a quarter of the
   validation set. Balanced labels: :math:`p > 0.55` with 10 classes, :math:`p > 2/3`
   with 3, :math:`p > 3/4` with 2. A class that holds 75 % of the labels or more never
   triggers it (predicting it everywhere costs at most 25 % error), so a model that
   leans to the majority class of imbalanced labels is not flagged.
3. **Few classes are predicted**: the classes predicted at least once hold less than
   half of the labels, :math:`\sum_{k : n_k > 0} m_k < N / 2`. With balanced labels:
   fewer than half of the classes are predicted. Weighting by the labels keeps a long
   tail of rare classes that a normal model does not predict yet from counting.

With 2 classes rule 3 implies rule 2 (predicting only the minority class); with one class
in the labels neither fires.

Example:
    >>> print(collapse_reason([0, 92, 8], [30, 40, 30], error=0.55, old_error=0.12))
    ... # doctest: +NORMALIZE_WHITESPACE
    validation error 0.550 against the old model's 0.120 (margin 0.25);
    92 % of predictions are class 1 (40 % of the labels)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import torch
from torch import Tensor

from graceful._validation import check_optional, check_real, describe, fail
from graceful.errors import InputError

__all__ = ["collapse_reason"]

Counts: TypeAlias = "Tensor | np.ndarray[Any, Any] | Sequence[float]"
"""Counts per class: a 1-D tensor, array or sequence of non-negative numbers."""


@dataclass(frozen=True)
class _Spread:
    """How the validation predictions spread over the classes (see the module docstring).

    The rules compare counts, not shares, so that integer counts decide exactly
    (``0.55 - 0.1`` is not ``0.45`` in floating point).
    """

    total: float  # N
    top_class: int  # k*, the most predicted class (lowest index among ties)
    top_predicted: float  # n_{k*}
    top_labelled: float  # m_{k*}
    predicted: int  # classes predicted at least once
    present: int  # classes present in the labels
    covered: float  # labels of the classes predicted at least once

    @property
    def top_share(self) -> float:
        """p, the share of the predictions that are the most predicted class."""
        return self.top_predicted / self.total

    @property
    def top_label_share(self) -> float:
        """t, the share of the labels that are the most predicted class."""
        return self.top_labelled / self.total

    @property
    def takes_over(self) -> bool:
        """Rule 2: ``p - t > max(1/4, (1 - t) / 2)``, in counts."""
        n, m, total = self.top_predicted, self.top_labelled, self.total
        return 2.0 * (n - m) > max(total / 2.0, total - m)

    @property
    def few_classes(self) -> bool:
        """Rule 3: the predicted classes hold less than half of the labels."""
        return 2.0 * self.covered < self.total


def _counts(name: str, value: object) -> np.ndarray:
    """``value`` as a 1-D float64 array of finite, non-negative counts."""
    if isinstance(value, Tensor):
        array = value.detach().to("cpu", torch.float64).numpy()
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise fail(name, "1-D non-negative counts per class", value) from None
    if array.ndim != 1 or array.size == 0:
        raise fail(name, "1-D non-negative counts per class", value)
    if not (np.isfinite(array).all() and (array >= 0).all()):
        raise InputError(
            f"Expected argument `{name}` to hold finite, non-negative counts, "
            f"but got {describe(value)}"
        )
    return array


def _spread(pred_counts: np.ndarray, label_counts: np.ndarray) -> _Spread:
    top = int(np.argmax(pred_counts))  # the first maximum: the lowest index among ties
    return _Spread(
        total=float(label_counts.sum()),
        top_class=top,
        top_predicted=float(pred_counts[top]),
        top_labelled=float(label_counts[top]),
        predicted=int((pred_counts > 0).sum()),
        present=int((label_counts > 0).sum()),
        covered=float(label_counts[pred_counts > 0].sum()),
    )


def _checked_spread(pred_counts: Counts, label_counts: Counts) -> _Spread:
    preds = _counts("pred_counts", pred_counts)
    labels = _counts("label_counts", label_counts)
    if preds.shape != labels.shape:
        raise InputError(
            f"Expected arguments `pred_counts` and `label_counts` to have one count per class "
            f"each, but got {preds.size} and {labels.size}"
        )
    total = float(labels.sum())
    if total <= 0:
        raise InputError("Expected argument `label_counts` to count at least one sample")
    if not math.isclose(float(preds.sum()), total, rel_tol=1e-9):
        raise InputError(
            f"Expected arguments `pred_counts` and `label_counts` to count the same samples, "
            f"but they sum to {float(preds.sum()):g} and {total:g}"
        )
    return _spread(preds, labels)


def _percent(share: float) -> str:
    return f"{100.0 * share:.0f} %"


def collapse_reason(
    pred_counts: Counts,
    label_counts: Counts,
    *,
    error: float,
    old_error: float | None = None,
    margin: float | None = 0.25,
) -> str | None:
    """Why a model's validation results show a collapsed run, or ``None`` when they do not.

    The rule is in :mod:`graceful.training.collapse`: the error exceeds the old model's by
    more than ``margin``, one class has taken over the predictions, or the predicted
    classes hold less than half of the labels. The reason gives the figures of the error
    rule when it fired, then those of the class that took over or, when none did, of the
    few classes predicted, joined by ``"; "``.

    Args:
        pred_counts: validation samples predicted as each class ``(C,)``.
        label_counts: validation samples labelled as each class ``(C,)``; the same total.
        error: the model's validation error, in ``[0, 1]``.
        old_error: the old model's validation error on the same samples; ``None``: no old
            model, the error rule is not applied.
        margin: how much higher than ``old_error`` the error may be, as a fraction
            (0.25: 25 points); ``None``: the error rule is not applied.

    Returns:
        One line, e.g. ``"92 % of predictions are class 4 (10 % of the labels)"``, or
        ``None``.

    Raises:
        InputError: naming the argument at fault.

    Example:
        >>> labels = [50, 50]
        >>> print(collapse_reason([70, 30], labels, error=0.3))
        None
        >>> collapse_reason([80, 20], labels, error=0.35)
        '80 % of predictions are class 0 (50 % of the labels)'
        >>> collapse_reason([0, 0, 5, 5] * 2 + [0, 0], [2] * 10, error=0.9)
        'only 4 of the 10 classes in the labels are predicted (40 % of the labels)'
    """
    spread = _checked_spread(pred_counts, label_counts)
    error = check_real("error", error, low=0.0, high=1.0)
    old_error = check_optional(check_real, "old_error", old_error, low=0.0, high=1.0)
    margin = check_optional(check_real, "margin", margin, low=0.0, high=1.0)
    reasons = []
    if old_error is not None and margin is not None and error - old_error > margin:
        reasons.append(
            f"validation error {error:.3f} against the old model's {old_error:.3f} "
            f"(margin {margin:g})"
        )
    if spread.takes_over:
        reasons.append(
            f"{_percent(spread.top_share)} of predictions are class {spread.top_class} "
            f"({_percent(spread.top_label_share)} of the labels)"
        )
    elif spread.few_classes:  # when one class has taken over, that says it
        verb = "is" if spread.predicted == 1 else "are"
        reasons.append(
            f"only {spread.predicted} of the {spread.present} classes in the labels {verb} "
            f"predicted ({_percent(spread.covered / spread.total)} of the labels)"
        )
    return "; ".join(reasons) or None
