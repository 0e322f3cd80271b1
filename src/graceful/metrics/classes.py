"""Stateful :mod:`torchmetrics` faces of the two-model metrics.

Each class accumulates the count state of :mod:`graceful.metrics.functional` over
batches (``update(target, preds_old, preds_new, sample_weight=None)``) and computes its
metric from it (``compute``). The state is one float64 vector summed across processes
(``dist_reduce_fx="sum"``), so results under ``torch.distributed`` equal those of one
process seeing all the data, and the last small batch does not bias anything (counts are
summed, never per-batch scores averaged).

Every two-model class takes the same keyword arguments:

* ``top_k``, ``class_map``, ``num_classes``, ``ranked``: as for the functions
  (:func:`graceful.metrics.flip_counts`). A class map is validated and turned into lookup
  tensors once, in ``__init__``; they move with the metric (``metric.to(device)``).
* ``validate_args`` (default ``True``): check the values of every batch (class ranges,
  finite scores, non-negative weights). With ``False`` only shapes and dtypes are checked
  and ``update`` reads nothing back from the device (no ``.item()``, ``bincount``,
  ``unique`` or boolean indexing), so it never waits for the accelerator; bad values then
  give wrong counts instead of an error. As in torchmetrics.
* any other keyword argument goes to :class:`torchmetrics.Metric`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torchmetrics import Metric

from graceful._validation import check_bool, check_int, check_optional

from ._counts import STATE_SIZE, FlipCounts, compute_all
from ._inputs import ArrayLike, ClassMap, ClassMapping, class_mapping
from .functional import _correct_update, _error_compute, _flip_compute, _flip_update


def _options(
    top_k: object, num_classes: object, ranked: object, validate_args: object
) -> tuple[int, int | None, bool, bool]:
    """The constructor options every class shares, checked before any state exists."""
    return (
        check_int("top_k", top_k, low=1),
        check_optional(check_int, "num_classes", num_classes, low=1),
        check_bool("ranked", ranked),
        check_bool("validate_args", validate_args),
    )


class _FlipStateMetric(Metric):
    """Base: accumulates the 2x2 flip table; subclasses say which metric to compute."""

    is_differentiable = False
    full_state_update = False
    metric_name: ClassVar[str] = ""
    counts: torch.Tensor
    class_map_lut: torch.Tensor
    class_map_reachable: torch.Tensor

    def __init__(
        self,
        *,
        top_k: int = 1,
        class_map: ClassMap | None = None,
        num_classes: int | None = None,
        ranked: bool = False,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        options = _options(top_k, num_classes, ranked, validate_args)
        mapping = None if class_map is None else class_mapping(class_map)
        super().__init__(**kwargs)
        self.top_k, self.num_classes, self.ranked, self.validate_args = options
        self.class_map = class_map
        self._max_new = -1 if mapping is None else mapping.max_new
        if mapping is not None:  # buffers, so that .to(device) moves them with the state
            self.register_buffer("class_map_lut", mapping.lut, persistent=False)
            self.register_buffer("class_map_reachable", mapping.reachable, persistent=False)
        self.add_state(
            "counts", default=torch.zeros(STATE_SIZE, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def _mapping(self) -> ClassMapping | None:
        if self._max_new < 0:
            return None
        return ClassMapping(self.class_map_lut, self.class_map_reachable, self._max_new)

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
            class_map=self._mapping(),
            num_classes=self.num_classes,
            ranked=self.ranked,
            validate=self.validate_args,
        )
        self.counts.add_(state.to(self.counts.device))  # in place: no Module.__setattr__

    def flip_counts(self) -> FlipCounts:
        """The accumulated table (after synchronisation when called inside ``compute``)."""
        return FlipCounts.from_state(self.counts.detach().cpu())

    def compute(self) -> torch.Tensor:
        """The metric as a 0-d float64 tensor; NaN with a warning when undefined."""
        value = _flip_compute(self.counts.detach().cpu(), self.metric_name)
        return torch.tensor(value, dtype=torch.float64)


class NegativeFlipRate(_FlipStateMetric):
    """Negative flip rate (NFR) over batches: ``old right and new wrong / N``, lower is better.

    The maths of :func:`graceful.metrics.negative_flip_rate`; constructor arguments in
    :mod:`graceful.metrics.classes`. Batches of any size add up exactly:

    Example:
        >>> nfr = NegativeFlipRate()
        >>> nfr.update([0, 1], [0, 1], [0, 2])
        >>> nfr.update([2, 2], [1, 2], [2, 1])
        >>> float(nfr.compute())
        0.5

        In a training loop on an accelerator, ``validate_args=False`` keeps ``update``
        from waiting for the device:

        >>> fast = NegativeFlipRate(validate_args=False)
        >>> fast.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]),
        ...             torch.tensor([0, 2, 2, 1]))
        >>> float(fast.compute())
        0.5
    """

    metric_name = "negative_flip_rate"
    higher_is_better = False


class PositiveFlipRate(_FlipStateMetric):
    """Positive flip rate (PFR), the samples an update fixes; higher is better.

    ``old wrong and new right / N``, as :func:`graceful.metrics.positive_flip_rate`.
    With scores, ``top_k`` counts a model right when the target is among its ``top_k``
    best classes (ties go to the lower class index).

    Example:
        >>> pfr = PositiveFlipRate(top_k=2)
        >>> old = torch.tensor([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]])
        >>> new = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
        >>> pfr.update(torch.tensor([2, 2]), old, new)
        >>> float(pfr.compute())
        1.0
    """

    metric_name = "positive_flip_rate"
    higher_is_better = True


class NegativeFlipImpact(_FlipStateMetric):
    """Negative flip impact (NFI): ``negative flips / new wrong``, lower is better.

    Which share of the new model's errors are new ones, as
    :func:`graceful.metrics.negative_flip_impact`. ``update`` takes an optional fourth
    argument, the batch's sample weights:

    Example:
        >>> nfi = NegativeFlipImpact()
        >>> nfi.update([0, 1, 2, 2], [0, 1, 0, 2], [1, 1, 0, 2], sample_weight=[3.0, 1, 1, 1])
        >>> float(nfi.compute())
        0.75
    """

    metric_name = "negative_flip_impact"
    higher_is_better = False


class PositiveFlipImpact(_FlipStateMetric):
    """Positive flip impact (PFI), ``positive flips / old wrong``: the old errors fixed.

    Higher is better; see :func:`graceful.metrics.positive_flip_impact`. When the two
    models have different classes, ``class_map`` sends old classes to new ones; samples of
    a new class no old class maps to are excluded (and counted in :meth:`flip_counts`).

    Example:
        >>> pfi = PositiveFlipImpact(class_map={0: 1, 1: 0})  # the old model swapped 0 and 1
        >>> pfi.update([1, 0, 2, 1], [1, 0, 0, 0], [1, 1, 2, 1])
        >>> float(pfi.compute()), pfi.flip_counts().n_excluded
        (0.5, 1)
    """

    metric_name = "positive_flip_impact"
    higher_is_better = True


class RelativeNegativeFlipRate(_FlipStateMetric):
    """Relative NFR, ``NFR / ((1 - ER_old) * ER_new)``: 1 is no better than chance.

    Lower is better; see :func:`graceful.metrics.relative_negative_flip_rate`. ``reset``
    empties the state, e.g. between validation epochs.

    Example:
        >>> rel = RelativeNegativeFlipRate()
        >>> rel.update([0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1])
        >>> rel.reset()
        >>> rel.update([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        >>> round(float(rel.compute()), 4)
        1.3333
    """

    metric_name = "relative_negative_flip_rate"
    higher_is_better = False


class BackwardTrustCompatibility(_FlipStateMetric):
    """Backward trust compatibility (BTC): share of old right answers kept; higher is better.

    Formula: ``both right / old right`` (:func:`graceful.metrics.backward_trust_compatibility`).
    The state is a sum, so metrics filled on separate shards merge exactly, as under
    ``torch.distributed``:

    Example:
        >>> shard_a, shard_b = BackwardTrustCompatibility(), BackwardTrustCompatibility()
        >>> shard_a.update([0, 1], [0, 1], [0, 2])
        >>> shard_b.update([2, 2], [1, 2], [2, 1])
        >>> shard_a.merge_state(shard_b)
        >>> round(float(shard_a.compute()), 4)
        0.3333
    """

    metric_name = "backward_trust_compatibility"
    higher_is_better = True


class BackwardErrorCompatibility(_FlipStateMetric):
    """Backward error compatibility (BEC), ``both wrong / new wrong``; higher is better.

    The share of the new model's errors the old one made too
    (:func:`graceful.metrics.backward_error_compatibility`). Predictions can be ranked
    top-k label lists, best first, when ``ranked=True`` says so.

    Example:
        >>> bec = BackwardErrorCompatibility(top_k=2, ranked=True)
        >>> bec.update([0, 1, 2], [[1, 2], [0, 1], [0, 1]], [[1, 2], [2, 0], [2, 1]])
        >>> float(bec.compute())
        0.5
    """

    metric_name = "backward_error_compatibility"
    higher_is_better = True


class ModelUpdateMetrics(_FlipStateMetric):
    """Every two-model metric from one accumulated table.

    ``compute`` returns a dict of 0-d tensors with the keys of
    :func:`graceful.metrics.model_update_metrics`; :meth:`flip_counts` the table itself.

    Example:
        >>> every = ModelUpdateMetrics()
        >>> every.update([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        >>> float(every.compute()["negative_flip_rate"]), every.flip_counts().n_total
        (0.5, 4)
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
        ranked: 2-D integer predictions are ranked label lists, best first.
        validate_args: check each batch's values; ``False`` makes ``update`` read nothing
            back from the device (see :mod:`graceful.metrics.classes`).
        kwargs: passed on to :class:`torchmetrics.Metric`.

    Example:
        >>> err = ErrorRate()
        >>> err.update([0, 1, 2], [0, 1, 1])
        >>> err.update([2], [2])
        >>> float(err.compute())
        0.25
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    counts: torch.Tensor

    def __init__(
        self,
        *,
        top_k: int = 1,
        num_classes: int | None = None,
        ranked: bool = False,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        options = _options(top_k, num_classes, ranked, validate_args)
        super().__init__(**kwargs)
        self.top_k, self.num_classes, self.ranked, self.validate_args = options
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
            ranked=self.ranked,
            validate=self.validate_args,
        )
        self.counts.add_(state.to(self.counts.device))

    def compute(self) -> torch.Tensor:
        """The error rate as a 0-d float64 tensor; NaN with a warning when empty."""
        return torch.tensor(_error_compute(self.counts.detach().cpu()), dtype=torch.float64)
