"""Functional two-model regression metrics.

All functions share one signature shape::

    metric(target, preds_old, preds_new, *, top_k=1, sample_weight=None,
           class_map=None, num_classes=None) -> float

``target`` holds true classes in the new model's label space; predictions are hard labels
(1-D), scores of shape ``(N, C)`` (logits or probabilities) or ranked top-k label lists
(2-D integers). Inputs may be numpy arrays, torch tensors, lists or pandas objects.
Undefined values (a zero denominator) are NaN with an
:class:`~graceful.errors.UndefinedMetricWarning`, never 0.

The stateful :mod:`torchmetrics` classes in :mod:`graceful.metrics` call the same
``_flip_update`` / ``_flip_compute`` helpers, so both faces always agree.
"""

from __future__ import annotations

import torch

from graceful.errors import InputError

from ._counts import (
    FlipCounts,
    cells_from_prepared,
    compute_all,
    compute_metric,
    state_from_cells,
)
from ._inputs import ArrayLike, ClassMap, prepare

__all__ = [
    "backward_error_compatibility",
    "backward_trust_compatibility",
    "error_rate",
    "flip_counts",
    "model_update_metrics",
    "negative_flip_impact",
    "negative_flip_rate",
    "positive_flip_impact",
    "positive_flip_rate",
    "relative_negative_flip_rate",
]


def _flip_update(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> torch.Tensor:
    """Count state (float64, length 14) of one batch; states of batches add up."""
    prepared = prepare(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return state_from_cells(cells_from_prepared(prepared), prepared.weight)


def _flip_compute(state: torch.Tensor, name: str) -> float:
    """Metric ``name`` from a count state."""
    return compute_metric(FlipCounts.from_state(state), name)


def flip_counts(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> FlipCounts:
    """The 2x2 table of old/new correctness (weighted), plus excluded samples.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores or ranked labels.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class (mapping, or a sequence with -1 for dropped
            classes); samples whose class the old model cannot predict are excluded.
        num_classes: new model's number of classes, when its predictions are labels.

    Returns:
        A :class:`FlipCounts`.

    Example:
        >>> c = flip_counts([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        >>> c.both_correct, c.negative_flips, c.positive_flips, c.both_wrong
        (1.0, 2.0, 1.0, 0.0)
    """
    return FlipCounts.from_state(
        _flip_update(
            target,
            preds_old,
            preds_new,
            top_k=top_k,
            sample_weight=sample_weight,
            class_map=class_map,
            num_classes=num_classes,
        )
    )


def model_update_metrics(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> dict[str, float]:
    """Every two-model metric at once, from one pass over the data.

    Keys: ``error_rate_old``, ``error_rate_new``, ``negative_flip_rate``,
    ``positive_flip_rate``, ``negative_flip_impact``, ``positive_flip_impact``,
    ``relative_negative_flip_rate``, ``backward_trust_compatibility``,
    ``backward_error_compatibility``. Arguments as in :func:`flip_counts`.

    Example:
        >>> m = model_update_metrics([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        >>> m["negative_flip_rate"], m["positive_flip_rate"], m["error_rate_new"]
        (0.5, 0.25, 0.5)
    """
    counts = flip_counts(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return compute_all(counts)


def negative_flip_rate(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> float:
    """Negative flip rate (NFR): share of samples the old model got right and the new gets wrong.

    Formula: ``old right and new wrong / N``.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`flip_counts`.
        num_classes: new model's number of classes, for label predictions.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> negative_flip_rate([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        0.5
    """
    state = _flip_update(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return _flip_compute(state, "negative_flip_rate")


def positive_flip_rate(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> float:
    """Positive flip rate (PFR): share of samples the old model got wrong and the new gets right.

    Formula: ``old wrong and new right / N``.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`flip_counts`.
        num_classes: new model's number of classes, for label predictions.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> positive_flip_rate([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        0.25
    """
    state = _flip_update(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return _flip_compute(state, "positive_flip_rate")


def negative_flip_impact(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> float:
    """Negative flip impact (NFI): negative flips as a share of the new model's errors.

    Formula: ``negative flips / new wrong``.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`flip_counts`.
        num_classes: new model's number of classes, for label predictions.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> negative_flip_impact([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        1.0
    """
    state = _flip_update(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return _flip_compute(state, "negative_flip_impact")


def positive_flip_impact(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> float:
    """Positive flip impact (PFI): positive flips as a share of the old model's errors.

    Formula: ``positive flips / old wrong``.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`flip_counts`.
        num_classes: new model's number of classes, for label predictions.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> positive_flip_impact([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        1.0
    """
    state = _flip_update(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return _flip_compute(state, "positive_flip_impact")


def relative_negative_flip_rate(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> float:
    """Relative NFR: NFR over the NFR two models erring independently would have.

    Formula: ``NFR / ((1 - ER_old) * ER_new)``.

    ``(1 - ER_old) * ER_new`` is the chance that a sample is an old success and a new
    error when the two models err independently; 1 means no better than chance.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`flip_counts`.
        num_classes: new model's number of classes, for label predictions.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> relative_negative_flip_rate([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        1.3333333333333333
    """
    state = _flip_update(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return _flip_compute(state, "relative_negative_flip_rate")


def backward_trust_compatibility(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> float:
    """Backward trust compatibility (BTC): share of the old model's right answers the new one keeps.

    Formula: ``both right / old right``.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`flip_counts`.
        num_classes: new model's number of classes, for label predictions.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> backward_trust_compatibility([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        0.3333333333333333
    """
    state = _flip_update(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return _flip_compute(state, "backward_trust_compatibility")


def backward_error_compatibility(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    class_map: ClassMap | None = None,
    num_classes: int | None = None,
) -> float:
    """Backward error compatibility (BEC): share of the new model's errors the old one made too.

    Formula: ``both wrong / new wrong``.

    The denominator is the *new* model's errors (Srivastava et al., 2020). One published
    library divides by the *old* model's errors instead, so its numbers differ from these.

    Args:
        target: true classes (new label space).
        preds_old: old model's labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        preds_new: new model's labels, scores or ranked labels.
        top_k: a model is right when the target is among its ``top_k`` classes.
        sample_weight: optional non-negative weight per sample.
        class_map: old class -> new class; see :func:`flip_counts`.
        num_classes: new model's number of classes, for label predictions.

    Returns:
        The value; NaN with an ``UndefinedMetricWarning`` when its denominator is zero.

    Example:
        >>> backward_error_compatibility([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
        0.0
    """
    state = _flip_update(
        target,
        preds_old,
        preds_new,
        top_k=top_k,
        sample_weight=sample_weight,
        class_map=class_map,
        num_classes=num_classes,
    )
    return _flip_compute(state, "backward_error_compatibility")


def _correct_update(
    target: ArrayLike,
    preds: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    num_classes: int | None = None,
) -> torch.Tensor:
    """State ``[wrong weight, total weight]`` of a single model (float64)."""
    try:
        prepared = prepare(
            target,
            preds,
            preds,
            top_k=top_k,
            sample_weight=sample_weight,
            num_classes=num_classes,
        )
    except (InputError, TypeError) as exc:
        # prepare() names the two-model arguments; this function has a single `preds`.
        message = str(exc).replace("`preds_old`", "`preds`").replace("`preds_new`", "`preds`")
        raise type(exc)(message) from None
    wrong = (~prepared.correct_new).to(torch.float64)
    if prepared.weight is None:
        return torch.stack([wrong.sum(), torch.tensor(float(wrong.numel()), dtype=torch.float64)])
    return torch.stack([(wrong * prepared.weight).sum(), prepared.weight.sum()])


def _error_compute(state: torch.Tensor) -> float:
    counts = FlipCounts(
        both_wrong=float(state[0]),
        positive_flips=0.0,
        negative_flips=0.0,
        both_correct=float(state[1] - state[0]),
        n_both_wrong=0,
        n_positive_flips=0,
        n_negative_flips=0,
        n_both_correct=0,
        sq_both_wrong=0.0,
        sq_positive_flips=0.0,
        sq_negative_flips=0.0,
        sq_both_correct=0.0,
    )
    return compute_metric(counts, "error_rate_new")


def error_rate(
    target: ArrayLike,
    preds: ArrayLike,
    *,
    top_k: int = 1,
    sample_weight: ArrayLike | None = None,
    num_classes: int | None = None,
) -> float:
    """Error rate of one model: (weighted) share of samples whose target is not in its top-k.

    Args:
        target: true classes.
        preds: labels, scores ``(N, C)`` or ranked labels ``(N, k)``.
        top_k: right when the target is among the ``top_k`` best classes.
        sample_weight: optional non-negative weight per sample.
        num_classes: number of classes, for label predictions.

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
    return _error_compute(
        _correct_update(
            target, preds, top_k=top_k, sample_weight=sample_weight, num_classes=num_classes
        )
    )
