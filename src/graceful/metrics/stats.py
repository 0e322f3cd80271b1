"""Uncertainty for the regression metrics: intervals, McNemar's exact test, a paired bootstrap.

* Rates that are ratios of cell counts get a Wilson score interval (default) or the exact
  Clopper-Pearson interval. With sample weights the interval uses Kish's effective sample
  size ``(sum w)^2 / sum w^2`` of the denominator's samples.
* Whether an update is better or worse is McNemar's exact test on the discordant pairs:
  under "no difference", each flip is a negative one with probability 1/2.
* The relative NFR is not a proportion; its interval comes from a seeded paired bootstrap
  (both models scored on the same resampled samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

# scipy.special, not scipy.stats: same functions underneath, a third of the import time,
# which `graceful compare` pays on every run.
from scipy import special as _special

from graceful._validation import check_choice, check_int, check_real
from graceful.errors import InputError

from ._counts import (
    CELL_BOTH_CORRECT,
    CELL_BOTH_WRONG,
    CELL_EXCLUDED,
    CELL_NEGATIVE_FLIP,
    METRICS,
    FlipCounts,
    cells_from_prepared,
    compute_metric,
)

if TYPE_CHECKING:
    from ._inputs import ArrayLike

__all__ = [
    "Interval",
    "McNemarResult",
    "bootstrap_cells",
    "bootstrap_relative_nfr",
    "exact_interval",
    "mcnemar_test",
    "metric_intervals",
    "wilson_interval",
]

IntervalMethod = Literal["wilson", "exact"]


def _check_confidence(confidence: float) -> None:
    check_real("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)


def wilson_interval(
    successes: float, total: float, *, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Args:
        successes: number of successes (may be fractional: an effective count).
        total: number of trials; 0 gives ``(nan, nan)``.
        confidence: two-sided confidence level.

    Returns:
        ``(low, high)``.

    Example:
        >>> [round(v, 4) for v in wilson_interval(3, 100)]
        [0.0103, 0.0845]
    """
    _check_confidence(confidence)
    if total <= 0:
        return math.nan, math.nan
    z = float(_special.ndtri(0.5 + confidence / 2))
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    # at p = 0 (p = 1) the bound is exactly 0 (1); rounding must not leave p outside
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= total else min(1.0, centre + half)
    return low, high


def exact_interval(
    successes: float, total: float, *, confidence: float = 0.95
) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a binomial proportion.

    Example:
        >>> [round(v, 4) for v in exact_interval(3, 100)]
        [0.0062, 0.0852]
        >>> exact_interval(0, 10)[0]
        0.0
    """
    _check_confidence(confidence)
    if total <= 0:
        return math.nan, math.nan
    alpha = 1 - confidence
    # Beta quantiles: betaincinv(a, b, q) is the q-quantile of Beta(a, b).
    low = (
        0.0
        if successes <= 0
        else float(_special.betaincinv(successes, total - successes + 1, alpha / 2))
    )
    high = (
        1.0
        if successes >= total
        else float(_special.betaincinv(successes + 1, total - successes, 1 - alpha / 2))
    )
    return low, high


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval (NaN where undefined).

    Example:
        >>> Interval(0.1, 0.05, 0.2).as_dict()
        {'value': 0.1, 'low': 0.05, 'high': 0.2}
    """

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        """``{"value", "low", "high"}``."""
        return {"value": self.value, "low": self.low, "high": self.high}


def _effective(counts: FlipCounts, cells: tuple[int, ...]) -> tuple[float, float]:
    weights = (counts.both_wrong, counts.positive_flips, counts.negative_flips, counts.both_correct)
    squares = (
        counts.sq_both_wrong,
        counts.sq_positive_flips,
        counts.sq_negative_flips,
        counts.sq_both_correct,
    )
    w = sum(weights[c] for c in cells)
    w2 = sum(squares[c] for c in cells)
    return w, (w * w / w2 if w2 > 0 else 0.0)


def metric_intervals(
    counts: FlipCounts,
    *,
    method: IntervalMethod = "wilson",
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Interval for every ratio metric of :data:`graceful.metrics.METRICS`.

    The relative NFR is not a proportion and is left out here: use
    :func:`bootstrap_relative_nfr`.

    Args:
        counts: a :class:`FlipCounts` table.
        method: ``"wilson"`` or ``"exact"`` (Clopper-Pearson).
        confidence: two-sided confidence level.

    Returns:
        Metric name -> :class:`Interval`; undefined metrics are all-NaN.

    Example:
        >>> from graceful.metrics import flip_counts
        >>> iv = metric_intervals(flip_counts([0] * 100, [0] * 100, [1] * 3 + [0] * 97))
        >>> round(iv["negative_flip_rate"].value, 2), round(iv["negative_flip_rate"].high, 4)
        (0.03, 0.0845)
    """
    check_choice("method", method, ("wilson", "exact"))
    interval = wilson_interval if method == "wilson" else exact_interval
    out: dict[str, Interval] = {}
    for name, spec in METRICS.items():
        if spec.cells is None:
            continue
        _, den_cells = spec.cells
        value = compute_metric(counts, name, warn=False)
        den, n_eff = _effective(counts, den_cells)
        if den <= 0 or math.isnan(value):
            out[name] = Interval(math.nan, math.nan, math.nan)
            continue
        low, high = interval(value * n_eff, n_eff, confidence=confidence)
        out[name] = Interval(value, low, high)
    return out


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's exact test on the discordant pairs of an update.

    Attributes:
        negative_flips: old right, new wrong (sample counts, not weights).
        positive_flips: old wrong, new right.
        p_value: two-sided exact p-value (binomial test with p = 1/2).
        alpha: significance level used for ``verdict``.
        verdict: ``"worse"`` or ``"better"`` when significant, else
            ``"no significant difference"``.
    """

    negative_flips: int
    positive_flips: int
    p_value: float
    alpha: float
    verdict: str

    @property
    def significant_regression(self) -> bool:
        """True when the new model is significantly worse than the old one."""
        return self.verdict == "worse"


def mcnemar_test(
    negative_flips: int | FlipCounts,
    positive_flips: int | None = None,
    *,
    alpha: float = 0.05,
) -> McNemarResult:
    """McNemar's exact test: is the update significantly better or worse?

    Only the discordant pairs carry information on which model is better. Under the null
    hypothesis each of the ``b + c`` flips is negative with probability 1/2, so the
    two-sided p-value is ``min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``.
    Sample weights do not enter the test: it counts samples.

    Args:
        negative_flips: ``b``, or a :class:`FlipCounts` (then leave ``positive_flips`` out).
        positive_flips: ``c``.
        alpha: significance level in (0, 1).

    Returns:
        A :class:`McNemarResult`.

    Example:
        >>> r = mcnemar_test(30, 57)
        >>> round(r.p_value, 4), r.verdict
        (0.005, 'better')
        >>> mcnemar_test(0, 0).verdict
        'no significant difference'
    """
    if isinstance(negative_flips, FlipCounts):
        if positive_flips is not None:
            raise InputError("Pass `positive_flips` only with an integer `negative_flips`")
        b, c = negative_flips.n_negative_flips, negative_flips.n_positive_flips
    else:
        if positive_flips is None:
            raise InputError("Expected argument `positive_flips` with an integer `negative_flips`")
        b, c = negative_flips, positive_flips
    b = check_int("negative_flips", b, low=0)
    c = check_int("positive_flips", c, low=0)
    check_real("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
    # Binomial(n, 1/2) is symmetric, so the two-sided exact p-value is twice the smaller
    # tail (scipy.stats.binomtest gives the same; the tests compare them).
    p_value = 1.0 if b + c == 0 else min(1.0, 2.0 * float(_special.bdtr(min(b, c), b + c, 0.5)))
    verdict = "no significant difference"
    if p_value < alpha:
        verdict = "worse" if b > c else "better"
    return McNemarResult(b, c, p_value, alpha, verdict)


def _relative_nfr_from_cell_sums(sums: np.ndarray) -> np.ndarray:
    """Relative NFR for rows of weighted cell sums ``(B, 4)``; NaN where undefined."""
    nf = sums[:, CELL_NEGATIVE_FLIP]
    total = sums.sum(axis=1)
    old_correct = nf + sums[:, CELL_BOTH_CORRECT]
    new_wrong = nf + sums[:, CELL_BOTH_WRONG]
    den = old_correct * new_wrong
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, nf * total / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_cells(
    cells: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> Interval:
    """Paired percentile bootstrap of the relative NFR from per-sample cells.

    Unweighted, resampling rows with replacement is the same as drawing the four cell
    counts from a multinomial, which is what is done (exact and O(1) in the data size).
    Weighted, rows are resampled explicitly (O(N * n_resamples)).

    Args:
        cells: per-sample cell index (see :mod:`graceful.metrics._counts`); excluded
            samples (4) are dropped first.
        weight: optional per-sample weights.
        n_resamples: number of bootstrap resamples (>= 100).
        confidence: two-sided confidence level.
        random_state: seed or generator.

    Returns:
        :class:`Interval` with the full-sample value and percentile bounds over the
        resamples where the statistic is defined.

    Example:
        >>> cells = np.array([3] * 80 + [2] * 5 + [1] * 8 + [0] * 7)
        >>> iv = bootstrap_cells(cells, random_state=0)
        >>> round(iv.value, 4), iv.low < iv.value < iv.high
        (0.4902, True)
    """
    _check_confidence(confidence)
    check_int("n_resamples", n_resamples, low=100)
    rng = np.random.default_rng(random_state)
    cells = np.asarray(cells)
    keep = cells != CELL_EXCLUDED
    cells = cells[keep]
    if weight is None:
        raw = np.bincount(cells, minlength=4)[:4].astype(np.int64)
        point = _relative_nfr_from_cell_sums(raw[None, :].astype(np.float64))[0]
        n = int(raw.sum())
        if n == 0:
            return Interval(math.nan, math.nan, math.nan)
        draws = rng.multinomial(n, raw / n, size=n_resamples).astype(np.float64)
    else:
        w = np.asarray(weight, dtype=np.float64)[keep]
        point = _relative_nfr_from_cell_sums(np.bincount(cells, weights=w, minlength=4)[None, :4])[
            0
        ]
        n = len(cells)
        if n == 0:
            return Interval(math.nan, math.nan, math.nan)
        draws = np.empty((n_resamples, 4))
        for b in range(n_resamples):
            idx = rng.integers(0, n, n)
            draws[b] = np.bincount(cells[idx], weights=w[idx], minlength=4)[:4]
    values = _relative_nfr_from_cell_sums(draws)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Interval(float(point), math.nan, math.nan)
    alpha = 1 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return Interval(float(point), float(low), float(high))


def bootstrap_relative_nfr(
    target: ArrayLike,
    preds_old: ArrayLike,
    preds_new: ArrayLike,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    **options: Any,
) -> Interval:
    """Seeded paired bootstrap interval for the relative negative flip rate.

    ``options`` are the keyword arguments of :func:`graceful.metrics.flip_counts`
    (``top_k``, ``sample_weight``, ``class_map``, ``num_classes``, ``ranked``); the others
    are the bootstrap options of :func:`bootstrap_cells`. The same seed gives the same
    interval.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 500)
        >>> old = np.where(rng.random(500) < 0.8, y, (y + 1) % 3)
        >>> new = np.where(rng.random(500) < 0.85, y, (y + 2) % 3)
        >>> iv = bootstrap_relative_nfr(y, old, new, random_state=1)
        >>> iv.low < iv.value < iv.high
        True
    """
    from ._inputs import prepare  # torch, loaded by the functions on raw predictions only

    prepared = prepare(target, preds_old, preds_new, **options)
    cells = cells_from_prepared(prepared).cpu().numpy()
    weight = None if prepared.weight is None else prepared.weight.cpu().numpy()
    return bootstrap_cells(
        cells,
        weight,
        n_resamples=n_resamples,
        confidence=confidence,
        random_state=random_state,
    )
