"""Regression metrics between two model versions.

Argument order everywhere: ``(target, preds_old, preds_new, *, ...)``. Each metric is a
function (:mod:`graceful.metrics.functional`) and a :mod:`torchmetrics` class sharing one
implementation, plus intervals, McNemar's test and a disaggregated :class:`FlipFrame`.

Example:
    >>> from graceful.metrics import negative_flip_rate, NegativeFlipRate
    >>> negative_flip_rate([0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 2, 1])
    0.5
"""

from typing import TYPE_CHECKING, Any

from ._counts import METRICS, FlipCounts, MetricSpec

if TYPE_CHECKING:
    from .classes import (
        BackwardErrorCompatibility,
        BackwardTrustCompatibility,
        ErrorRate,
        ModelUpdateMetrics,
        NegativeFlipImpact,
        NegativeFlipRate,
        PositiveFlipImpact,
        PositiveFlipRate,
        RelativeNegativeFlipRate,
    )
    from .functional import (
        backward_error_compatibility,
        backward_trust_compatibility,
        error_rate,
        flip_counts,
        model_update_metrics,
        negative_flip_impact,
        negative_flip_rate,
        positive_flip_impact,
        positive_flip_rate,
        relative_negative_flip_rate,
    )
from .frame import FlipFrame
from .stats import (
    Interval,
    McNemarResult,
    bootstrap_cells,
    bootstrap_relative_nfr,
    exact_interval,
    mcnemar_test,
    metric_intervals,
    wilson_interval,
)

__all__ = [
    "METRICS",
    "BackwardErrorCompatibility",
    "BackwardTrustCompatibility",
    "ErrorRate",
    "FlipCounts",
    "FlipFrame",
    "Interval",
    "McNemarResult",
    "MetricSpec",
    "ModelUpdateMetrics",
    "NegativeFlipImpact",
    "NegativeFlipRate",
    "PositiveFlipImpact",
    "PositiveFlipRate",
    "RelativeNegativeFlipRate",
    "backward_error_compatibility",
    "backward_trust_compatibility",
    "bootstrap_cells",
    "bootstrap_relative_nfr",
    "error_rate",
    "exact_interval",
    "flip_counts",
    "mcnemar_test",
    "metric_intervals",
    "model_update_metrics",
    "negative_flip_impact",
    "negative_flip_rate",
    "positive_flip_impact",
    "positive_flip_rate",
    "relative_negative_flip_rate",
    "wilson_interval",
]


_FUNCTIONAL = frozenset(
    {
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
    }
)


def __getattr__(name: str) -> Any:
    # The names of __all__ not imported above load on first use: the functions on raw
    # predictions (torch) and the torchmetrics classes (torchmetrics). Importing torch
    # costs most of a second, which the command line (counts, intervals and frames on
    # NumPy arrays) should not pay on every run.
    if name in _FUNCTIONAL:
        from . import functional

        return getattr(functional, name)
    if name in __all__:
        from . import classes

        return getattr(classes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
