"""Functional two-model regression metrics.

All functions share one signature shape::

    metric(target, preds_old, preds_new, *, top_k=1, sample_weight=None,
           class_map=None, num_classes=None, ranked=False) -> float

``target`` holds true classes in the new model's label space; predictions are hard labels
(1-D integers), scores of shape ``(N, C)`` (2-D floats: logits or probabilities) or, with
``ranked=True``, ranked top-k label lists (2-D integers, best first). A 2-D integer array
without ``ranked=True`` is refused rather than guessed at. Scores are ranked by the rule
of :mod:`graceful._ranking` (ties go to the lower class index, as ``argmax``). Inputs may
be numpy arrays, torch tensors, lists or pandas objects. Undefined values (a zero
denominator) are NaN with an :class:`~graceful.errors.UndefinedMetricWarning`, never 0.

Each metric is one line over the same helpers: :func:`_flip_update` (a batch's count
state, which adds up over batches) and :func:`_flip_compute` (a metric from a state). The
:mod:`torchmetrics` classes in :mod:`graceful.metrics` call the same two, so both faces
always agree.
"""

from __future__ import annotations

from typing import Any

import torch

from ._counts import FlipCounts, compute_all, compute_metric, flip_state
from ._inputs import ArrayLike, ClassMap, prepare, prepare_single


def _flip_update(
    target: ArrayLike, preds_old: ArrayLike, preds_new: ArrayLike, **options: Any
) -> torch.Tensor:
    """Count state (float64, length 14) of one batch; states of batches add up.

    ``options`` are the keyword arguments of :func:`~graceful.metrics._inputs.prepare`.
    """
    return flip_state(prepare(target, preds_old, preds_new, **options))


def _flip_compute(state: torch.Tensor, name: str) -> float:
    """Metric ``name`` from a count state."""
    return compute_metric(FlipCounts.from_state(state), name)


def _metric(name: str, arguments: dict[str, Any]) -> float:
    """Metric ``name`` of the arguments of a public metric function (its ``locals()``)."""
    return _flip_compute(_flip_update(**arguments), name)


def flip_counts(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> FlipCounts:
    """The 2x2 table of old/new correctness (weighted), plus excluded samples.

    Every metric of this module is a function of this table (see
    :data:`graceful.metrics.METRICS`); tables of batches or shards add up with ``+``.

    Args:
        target: true classes ``(N,)``, in the new model's label space.
        preds_old: old model's labels ``(N,)``, scores ``(N, C)``, or ranked labels
            ``(N, k)`` with ``ranked=True``.
        preds_new: new model's predictions, in one of the same forms.
        top_k: a model is right when the target is among its ``top_k`` best classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class (a mapping, or a sequence with -1 for dropped
            classes); samples whose class the old model cannot predict are excluded.
        num_classes: the new model's number of classes, when its predictions are labels.
        ranked: 2-D integer predictions are ranked label lists, best first.

    Returns:
        A :class:`FlipCounts`.

    Example:
        >>> c = flip_counts([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        >>> c.both_correct, c.negative_flips, c.positive_flips, c.both_wrong
        (1.0, 2.0, 1.0, 0.0)
    """
    return FlipCounts.from_state(_flip_update(**locals()))


def model_update_metrics(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> dict[str, float]:
    """Every two-model metric at once, from one pass over the data.

    Keys: ``error_rate_old``, ``error_rate_new``, ``negative_flip_rate``,
    ``positive_flip_rate``, ``negative_flip_impact``, ``positive_flip_impact``,
    ``relative_negative_flip_rate``, ``backward_trust_compatibility``,
    ``backward_error_compatibility``.

    The arguments are those of :func:`flip_counts`.

    Returns:
        Metric name -> value (NaN, with a warning, where undefined).

    Example:
        >>> m = model_update_metrics([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        >>> m["negative_flip_rate"], m["positive_flip_rate"], m["error_rate_new"]
        (0.5, 0.25, 0.5)
    """
    return compute_all(flip_counts(**locals()))


def negative_flip_rate(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Negative flip rate (NFR): share of samples the old model got right and the new gets wrong.

    Formula: ``old right and new wrong / N`` (lower is better).

    The arguments are those of :func:`flip_counts`.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> negative_flip_rate([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        0.5
    """
    return _metric("negative_flip_rate", locals())


def positive_flip_rate(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Positive flip rate (PFR): share of samples the old model got wrong and the new gets right.

    Formula: ``old wrong and new right / N`` (higher is better). The accuracy gain of an
    update is exactly ``PFR - NFR``.

    The arguments are those of :func:`flip_counts`.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when there are no samples.

    Example:
        >>> y, old, new = [0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1]
        >>> positive_flip_rate(y, old, new)
        0.25
        >>> positive_flip_rate(y, old, new) - negative_flip_rate(y, old, new)  # accuracy gain
        -0.25
    """
    return _metric("positive_flip_rate", locals())


def negative_flip_impact(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Negative flip impact (NFI): negative flips as a share of the new model's errors.

    Formula: ``negative flips / new wrong`` (lower is better): 1 means every error of
    the new model is one the old model did not make.

    The arguments are those of :func:`flip_counts`.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when the new model is never wrong.

    Example:
        >>> negative_flip_impact([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        1.0
        >>> negative_flip_impact([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1],
        ...                      sample_weight=[1.0, 0.0, 1.0, 3.0])
        1.0
    """
    return _metric("negative_flip_impact", locals())


def positive_flip_impact(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Positive flip impact (PFI): positive flips as a share of the old model's errors.

    Formula: ``positive flips / old wrong`` (higher is better): the share of the old
    model's errors that the update fixes.

    The arguments are those of :func:`flip_counts`.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when the old model is never wrong.

    Example:
        Old class 1 became new class 0 and old class 0 new class 1; the new class 2 has no
        old counterpart, so its sample is excluded:

        >>> positive_flip_impact([1, 0, 2, 1], [1, 0, 0, 0], [1, 1, 2, 1],
        ...                      class_map={0: 1, 1: 0})
        0.5
    """
    return _metric("positive_flip_impact", locals())


def relative_negative_flip_rate(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Relative NFR: NFR over the NFR two models erring independently would have.

    Formula: ``NFR / ((1 - ER_old) * ER_new)`` (lower is better).

    ``(1 - ER_old) * ER_new`` is the chance that a sample is an old success and a new
    error when the two models err independently; 1 means no better than chance.

    The arguments are those of :func:`flip_counts`.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when the old model is never right
        or the new one never wrong.

    Example:
        >>> relative_negative_flip_rate([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        1.3333333333333333
    """
    return _metric("relative_negative_flip_rate", locals())


def backward_trust_compatibility(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Backward trust compatibility (BTC): share of the old model's right answers the new one keeps.

    Formula: ``both right / old right`` (higher is better).

    The arguments are those of :func:`flip_counts`.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when the old model is never right.

    Example:
        Ranked top-2 lists (best first) need ``ranked=True``:

        >>> old = [[0, 1], [1, 2], [2, 0], [0, 2]]
        >>> new = [[0, 2], [0, 2], [2, 1], [2, 0]]
        >>> backward_trust_compatibility([0, 1, 2, 2], old, new, top_k=2, ranked=True)
        0.75
    """
    return _metric("backward_trust_compatibility", locals())


def backward_error_compatibility(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Backward error compatibility (BEC): share of the new model's errors the old one made too.

    Formula: ``both wrong / new wrong`` (higher is better).

    The denominator is the *new* model's errors (Srivastava et al., 2020). One published
    library divides by the *old* model's errors instead, so its numbers differ from these.

    The arguments are those of :func:`flip_counts`.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when the new model is never wrong.

    Example:
        >>> backward_error_compatibility([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        0.0
        >>> backward_error_compatibility([0, 1, 2, 2], [1, 1, 1, 2], [2, 2, 2, 2])
        0.5
    """
    return _metric("backward_error_compatibility", locals())


def _correct_update(target: ArrayLike, preds: ArrayLike, **options: Any) -> torch.Tensor:
    """State ``[wrong weight, total weight]`` of a single model (float64).

    ``options`` are the keyword arguments of :func:`~graceful.metrics._inputs.prepare_single`.
    """
    correct, weight = prepare_single(target, preds, **options)
    wrong = (~correct).to(torch.float64)
    if weight is None:
        wrong_count = wrong.sum()  # the total is filled in on the device: no host copy
        return torch.stack([wrong_count, torch.full_like(wrong_count, wrong.shape[0])])
    return torch.stack([wrong @ weight, weight.sum()])


def _error_compute(state: torch.Tensor) -> float:
    wrong, total = (float(v) for v in state.tolist())
    counts = FlipCounts(wrong, 0.0, 0.0, total - wrong, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
    return compute_metric(counts, "error_rate_new")


def error_rate(
    target: ArrayLike,
    preds: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    num_classes: int | None = None,
    ranked: bool = False,
) -> float:
    """Error rate of one model: (weighted) share of samples whose target is not in its top-k.

    The arguments are those of :func:`flip_counts`, with the one model's predictions as
    ``preds``.

    Returns:
        The error rate; NaN with a warning when the total weight is zero.

    Example:
        >>> error_rate([0, 1, 2, 2], [[0.9, 0.1, 0.0], [0.2, 0.5, 0.3],
        ...                          [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]])
        0.25
        >>> error_rate([0, 1, 2, 2], [[0.9, 0.1, 0.0], [0.2, 0.5, 0.3],
        ...                          [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]], top_k=2)
        0.0
    """
    return _error_compute(_correct_update(**locals()))
