"""Stateful :mod:`torchmetrics` faces of the two-model metrics.

Each class accumulates the count state of :mod:`graceful.metrics.functional` over
batches (``update``) and computes its metric from it (``compute``). The state is one
float64 vector summed across processes (``dist_reduce_fx="sum"``), so results under
``torch.distributed`` equal those of one process seeing all the data, and the last small
batch does not bias anything (counts are summed, never per-batch scores averaged).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torchmetrics import Metric

from ._counts import STATE_SIZE, FlipCounts, compute_all
from ._inputs import ArrayLike, ClassMap, _check_top_k
from .functional import _correct_update, _error_compute, _flip_compute, _flip_update

__all__ = [
    "BackwardErrorCompatibility",
    "BackwardTrustCompatibility",
    "ErrorRate",
    "ModelUpdateMetrics",
    "NegativeFlipImpact",
    "NegativeFlipRate",
    "PositiveFlipImpact",
    "PositiveFlipRate",
    "RelativeNegativeFlipRate",
]


class _FlipStateMetric(Metric):
    """Base: accumulates the 2x2 flip table; subclasses say which metric to compute."""

    is_differentiable = False
    full_state_update = False
    metric_name: ClassVar[str] = ""
    counts: torch.Tensor

    def __init__(
        self,
        *,
        top_k: int = 1,
        class_map: ClassMap | None = None,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        _check_top_k(top_k)
        super().__init__(**kwargs)
        self.top_k = top_k
        self.class_map = class_map
        self.num_classes = num_classes
        self.add_state(
            "counts", default=torch.zeros(STATE_SIZE, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(
        self,
        target: ArrayLike,
        preds_old: ArrayLike,
        preds_new: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> None:
        """Add one batch: true classes, old predictions, new predictions (and weights)."""
        state = _flip_update(
            target,
            preds_old,
            preds_new,
            top_k=self.top_k,
            sample_weight=sample_weight,
            class_map=self.class_map,
            num_classes=self.num_classes,
        )
        self.counts += state.to(self.counts.device)

    def flip_counts(self) -> FlipCounts:
        """The accumulated table (after synchronisation when called inside ``compute``)."""
        return FlipCounts.from_state(self.counts.detach().cpu())

    def compute(self) -> torch.Tensor:
        """The metric as a 0-d float64 tensor; NaN with a warning when undefined."""
        return torch.tensor(
            _flip_compute(self.counts.detach().cpu(), self.metric_name), dtype=torch.float64
        )


class NegativeFlipRate(_FlipStateMetric):
    """Negative flip rate (NFR), accumulated over batches.

    Formula: ``old right and new wrong / N`` (lower is better); same maths as
    :func:`graceful.metrics.negative_flip_rate`.
    ``update`` takes ``(target, preds_old, preds_new, sample_weight=None)``;
    ``top_k``, ``class_map`` and ``num_classes`` are as for the function, other keyword
    arguments go to :class:`torchmetrics.Metric`.

    Example:
        >>> m = NegativeFlipRate()
        >>> m.update([0, 1], [0, 1], [0, 2])
        >>> m.update([2, 2], [1, 2], [2, 1])
        >>> round(float(m.compute()), 4)
        0.5
    """

    metric_name = "negative_flip_rate"
    higher_is_better = False


class PositiveFlipRate(_FlipStateMetric):
    """Positive flip rate (PFR), accumulated over batches.

    Formula: ``old wrong and new right / N`` (higher is better); same maths as
    :func:`graceful.metrics.positive_flip_rate`.
    ``update`` takes ``(target, preds_old, preds_new, sample_weight=None)``;
    ``top_k``, ``class_map`` and ``num_classes`` are as for the function, other keyword
    arguments go to :class:`torchmetrics.Metric`.

    Example:
        >>> m = PositiveFlipRate()
        >>> m.update([0, 1], [0, 1], [0, 2])
        >>> m.update([2, 2], [1, 2], [2, 1])
        >>> round(float(m.compute()), 4)
        0.25
    """

    metric_name = "positive_flip_rate"
    higher_is_better = True


class NegativeFlipImpact(_FlipStateMetric):
    """Negative flip impact (NFI), accumulated over batches.

    Formula: ``negative flips / new wrong`` (lower is better); same maths as
    :func:`graceful.metrics.negative_flip_impact`.
    ``update`` takes ``(target, preds_old, preds_new, sample_weight=None)``;
    ``top_k``, ``class_map`` and ``num_classes`` are as for the function, other keyword
    arguments go to :class:`torchmetrics.Metric`.

    Example:
        >>> m = NegativeFlipImpact()
        >>> m.update([0, 1], [0, 1], [0, 2])
        >>> m.update([2, 2], [1, 2], [2, 1])
        >>> round(float(m.compute()), 4)
        1.0
    """

    metric_name = "negative_flip_impact"
    higher_is_better = False


class PositiveFlipImpact(_FlipStateMetric):
    """Positive flip impact (PFI), accumulated over batches.

    Formula: ``positive flips / old wrong`` (higher is better); same maths as
    :func:`graceful.metrics.positive_flip_impact`.
    ``update`` takes ``(target, preds_old, preds_new, sample_weight=None)``;
    ``top_k``, ``class_map`` and ``num_classes`` are as for the function, other keyword
    arguments go to :class:`torchmetrics.Metric`.

    Example:
        >>> m = PositiveFlipImpact()
        >>> m.update([0, 1], [0, 1], [0, 2])
        >>> m.update([2, 2], [1, 2], [2, 1])
        >>> round(float(m.compute()), 4)
        1.0
    """

    metric_name = "positive_flip_impact"
    higher_is_better = True


class RelativeNegativeFlipRate(_FlipStateMetric):
    """Relative negative flip rate, accumulated over batches.

    Formula: ``NFR / ((1 - ER_old) * ER_new)`` (lower is better); same maths as
    :func:`graceful.metrics.relative_negative_flip_rate`.
    ``update`` takes ``(target, preds_old, preds_new, sample_weight=None)``;
    ``top_k``, ``class_map`` and ``num_classes`` are as for the function, other keyword
    arguments go to :class:`torchmetrics.Metric`.

    Example:
        >>> m = RelativeNegativeFlipRate()
        >>> m.update([0, 1], [0, 1], [0, 2])
        >>> m.update([2, 2], [1, 2], [2, 1])
        >>> round(float(m.compute()), 4)
        1.3333
    """

    metric_name = "relative_negative_flip_rate"
    higher_is_better = False


class BackwardTrustCompatibility(_FlipStateMetric):
    """Backward trust compatibility (BTC), accumulated over batches.

    Formula: ``both right / old right`` (higher is better); same maths as
    :func:`graceful.metrics.backward_trust_compatibility`.
    ``update`` takes ``(target, preds_old, preds_new, sample_weight=None)``;
    ``top_k``, ``class_map`` and ``num_classes`` are as for the function, other keyword
    arguments go to :class:`torchmetrics.Metric`.

    Example:
        >>> m = BackwardTrustCompatibility()
        >>> m.update([0, 1], [0, 1], [0, 2])
        >>> m.update([2, 2], [1, 2], [2, 1])
        >>> round(float(m.compute()), 4)
        0.3333
    """

    metric_name = "backward_trust_compatibility"
    higher_is_better = True


class BackwardErrorCompatibility(_FlipStateMetric):
    """Backward error compatibility (BEC), accumulated over batches.

    Formula: ``both wrong / new wrong`` (higher is better); same maths as
    :func:`graceful.metrics.backward_error_compatibility`.
    ``update`` takes ``(target, preds_old, preds_new, sample_weight=None)``;
    ``top_k``, ``class_map`` and ``num_classes`` are as for the function, other keyword
    arguments go to :class:`torchmetrics.Metric`.

    Example:
        >>> m = BackwardErrorCompatibility()
        >>> m.update([0, 1], [0, 1], [0, 2])
        >>> m.update([2, 2], [1, 2], [2, 1])
        >>> round(float(m.compute()), 4)
        0.0
    """

    metric_name = "backward_error_compatibility"
    higher_is_better = True


class ModelUpdateMetrics(_FlipStateMetric):
    """Every two-model metric from one accumulated table.

    ``compute`` returns a dict of 0-d tensors with the keys of
    :func:`graceful.metrics.model_update_metrics`.

    Example:
        >>> m = ModelUpdateMetrics()
        >>> m.update([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        >>> float(m.compute()["negative_flip_rate"])
        0.5
    """

    higher_is_better = None

    def compute(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """All metrics as 0-d float64 tensors."""
        values = compute_all(FlipCounts.from_state(self.counts.detach().cpu()))
        return {name: torch.tensor(value, dtype=torch.float64) for name, value in values.items()}


class ErrorRate(Metric):
    """Error rate of a single model, accumulated over batches.

    Args:
        top_k: right when the target is among the ``top_k`` best classes.
        num_classes: number of classes, for label predictions.
        kwargs: passed on to :class:`torchmetrics.Metric`.

    Example:
        >>> m = ErrorRate()
        >>> m.update([0, 1, 2], [0, 1, 1])
        >>> m.update([2], [2])
        >>> float(m.compute())
        0.25
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    counts: torch.Tensor

    def __init__(self, *, top_k: int = 1, num_classes: int | None = None, **kwargs: Any) -> None:
        _check_top_k(top_k)
        super().__init__(**kwargs)
        self.top_k = top_k
        self.num_classes = num_classes
        self.add_state("counts", default=torch.zeros(2, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self, target: ArrayLike, preds: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        """Add one batch of true classes and predictions."""
        state = _correct_update(
            target,
            preds,
            top_k=self.top_k,
            sample_weight=sample_weight,
            num_classes=self.num_classes,
        )
        self.counts += state.to(self.counts.device)

    def compute(self) -> torch.Tensor:
        """The error rate as a 0-d float64 tensor; NaN with a warning when empty."""
        return torch.tensor(_error_compute(self.counts.detach().cpu()), dtype=torch.float64)
