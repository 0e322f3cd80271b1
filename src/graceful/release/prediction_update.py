r"""Regression control without retraining: update stored predictions through a label posterior.

The method of Träuble et al., "Backward-compatible prediction updates: a probabilistic
approach" (NeurIPS 2021). A data set's predictions are stored; when a new model version
arrives, each re-evaluated sample's belief about its label is updated, and a rule decides
whether the stored label changes, instead of replacing every stored prediction.

**Likelihood.** Model ``k`` is summarised by its confusion matrix
:math:`C_k[i, j] = p(\hat y_k = j \mid y = i)`, estimated on labelled validation data by
:func:`estimate_confusion`. With counts :math:`n_{ij}` (true class ``i``, predicted ``j``)
over ``K`` classes and a symmetric Dirichlet prior of concentration ``s`` on each row (``s``
pseudo-observations per class, spread evenly: ``s = K`` is Laplace's add-one):

* ``form="full"``: :math:`C[i, j] = (n_{ij} + s/K) / (n_i + s)`;
* ``form="diagonal"`` (the paper's simple form): the same diagonal, the per-class accuracy
  :math:`a_i = C[i, i]`, and :math:`C[i, j] = (1 - a_i) / (K - 1)` off it.

**Posterior.** For one sample, after the predictions :math:`\hat y_1 .. \hat y_t`:

.. math:: p(y \mid \hat y_{1:t}) \propto p(y) \prod_k C_k[y, \hat y_k]

with the prior :math:`p(y)` uniform or the validation class frequencies
(:func:`class_prior`). Models' errors are taken as independent given the true class (the
paper's assumption; correlated models make the posterior over-confident). Everything is
computed in log space and each row is normalised (log-sum-exp).

**Rules.** When model ``t`` arrives, for each re-evaluated sample with stored label ``a``:

* ``"replace"`` (the baseline): store :math:`\hat y_t`;
* ``"max_belief"``: store :math:`b = \arg\max_y p(y \mid \hat y_{1:t})` (the lowest class
  index among ties, the rule of :mod:`graceful._ranking`);
* ``"cost_ratio"`` (CR-``r``, :math:`r = |c_{NF} / c_{PF}|`): change ``a`` to ``b`` only if
  :math:`p(b) / p(a) > r`, i.e. when the expected gain of the change,
  :math:`p(b)\,c_{PF} - p(a)\,|c_{NF}|`, is positive. ``r = 1`` is max belief except that an
  exact tie keeps the stored label; a large ``r`` almost never changes one (a stored label
  of probability zero always changes).

Before the first update there is no stored label: the first model's predictions are stored
as they are (the initial annotation) under every rule, and its likelihood starts the
posterior.

**Budget.** When the new model may run on a ``budget`` of samples only, the samples with the
highest posterior entropy :math:`H = -\sum_y p(y) \log p(y)` are re-evaluated first (the
lowest index first among equal entropies, :func:`select_for_update`); the others keep their
stored posterior and label.

There are two faces over one implementation: :func:`update_predictions`, a pure function
from one :class:`PredictionUpdate` state to the next, and :class:`PredictionUpdater`,
which holds the state over a sequence of updates and estimates each model's confusion
matrix from validation data. :func:`update_prediction_files` runs it on prediction files
(what ``graceful update-predictions`` runs).

Example:
    >>> import numpy as np
    >>> C = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> first = update_predictions(None, [0, 1, 1], C)
    >>> second = update_predictions(first, [1, 1, 0], C, rule="cost_ratio", cost_ratio=2.0)
    >>> second.labels.tolist(), second.changed.tolist()
    ([0, 1, 1], [False, False, False])
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from graceful._ranking import top1_columns
from graceful._validation import (
    check_bool,
    check_choice,
    check_instance,
    check_int,
    check_optional,
    check_real,
    describe,
    fail,
    subject,
)
from graceful.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FileUpdate",
    "PredictionUpdate",
    "PredictionUpdater",
    "class_prior",
    "estimate_confusion",
    "label_log_posterior",
    "posterior_entropy",
    "select_for_update",
    "update_prediction_files",
    "update_predictions",
]

Rule = Literal["replace", "max_belief", "cost_ratio"]
Form = Literal["full", "diagonal"]

_RULES: tuple[str, ...] = ("replace", "max_belief", "cost_ratio")
_FORMS: tuple[str, ...] = ("full", "diagonal")
#: Tolerance of the row sums of a confusion matrix and of a prior.
_SUM_TOL = 1e-6
#: Output formats of :func:`update_prediction_files`, by file extension.
_OUT_FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

_IntArray = npt.NDArray[np.int64]
_FloatArray = npt.NDArray[np.float64]


# -- input checks -------------------------------------------------------------------------------


def _as_array(name: str, value: object, what: str) -> np.ndarray[Any, Any]:
    """``value`` as a NumPy array of numbers (any array-like; never a string or a mapping)."""
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise fail(name, what, value)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        raise fail(name, what, value) from None
    if arr.dtype.kind not in "iuf" and not (arr.size == 0 and arr.ndim == 1):
        raise fail(name, what, value)
    return arr


def _check_range(
    name: str, labels: _IntArray, num_classes: int | None, what: str = "class indices"
) -> _IntArray:
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            bad = low if low < 0 else high
            bound = "" if num_classes is None else f", {num_classes}"
            raise InputError(
                f"Expected {subject(name)} to hold {what} in [0{bound}), but got {bad}"
            )
    return labels


def _labels(name: str, value: object, num_classes: int | None = None) -> _IntArray:
    """1-D integer class indices in ``[0, num_classes)``, as int64."""
    arr = _as_array(name, value, "1-D integer class labels")
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise fail(name, "1-D integer class labels", arr)
    return _check_range(name, np.asarray(arr, dtype=np.int64), num_classes)


def _predictions(
    name: str, value: object, num_classes: int | None = None, rows: int | None = None
) -> _IntArray:
    """Hard labels ``(N,)`` or scores ``(N, K)`` as top-1 class indices ``(N,)``.

    Told apart as :mod:`graceful.metrics` does: 1-D integers are labels, 2-D floats are
    scores (the top-1 class by the rule of :mod:`graceful._ranking`, the lowest index among
    ties); a 2-D integer array is refused (a one-hot matrix or integer scores?).
    """
    what = "1-D integer class labels or (N, K) float scores"
    arr = _as_array(name, value, what)
    if arr.ndim == 2 and arr.dtype.kind == "f":
        if num_classes is not None and arr.shape[1] != num_classes:
            raise InputError(
                f"Expected {subject(name)} to hold scores for {num_classes} classes, but got "
                f"shape {arr.shape}"
            )
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise InputError(
                f"Expected {subject(name)} to be finite, but row {row} holds NaN or inf"
            )
        top1: _IntArray = top1_columns(arr.T)[0]
        labels = top1
    elif arr.ndim == 2 and arr.dtype.kind in "iu":
        raise InputError(
            f"Expected {subject(name)} to be {what}, but got a 2-D integer array of shape "
            f"{arr.shape} (one-hot labels or integer scores?); pass labels or float scores"
        )
    elif arr.ndim == 1 and (arr.size == 0 or arr.dtype.kind in "iu"):
        labels = _check_range(name, np.asarray(arr, dtype=np.int64), num_classes)
    else:
        raise fail(name, what, arr)
    if rows is not None and len(labels) != rows:
        raise InputError(f"Expected {subject(name)} to have {rows} rows, but got {len(labels)}")
    return labels


def _num_classes(value: object) -> int | None:
    return check_optional(check_int, "num_classes", value, low=2)


def _infer_classes(target: _IntArray, preds: Sequence[object]) -> int:
    """The number of classes the (checked) inputs show: a score width, else the top label + 1."""
    arrays = [np.asarray(p) for p in preds]
    widths = [a.shape[1] for a in arrays if a.ndim == 2]
    if widths:
        return int(max(widths))
    highest = [int(a.max()) for a in (target, *arrays) if a.size]
    k = max(highest, default=0) + 1
    if k < 2:
        raise InputError(
            f"Expected the labels and predictions to show at least 2 classes, but they show {k}; "
            f"pass `num_classes`"
        )
    return k


def _confusion(name: str, value: object, num_classes: int | None) -> _FloatArray:
    """A ``(K, K)`` likelihood matrix: finite entries in [0, 1], rows summing to 1."""
    arr = _as_array(name, value, "a (K, K) confusion matrix")
    k = arr.shape[0] if arr.ndim == 2 else -1
    if arr.ndim != 2 or arr.shape[1] != k or k < 2 or num_classes not in (None, k):
        want = "(K, K), K >= 2" if num_classes is None else f"({num_classes}, {num_classes})"
        raise InputError(
            f"Expected {subject(name)} to have shape {want}, but got shape {arr.shape}"
        )
    conf = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(conf).all() or conf.min() < 0 or conf.max() > 1:
        raise InputError(
            f"Expected {subject(name)} to hold probabilities in [0, 1], but got values in "
            f"[{conf.min():g}, {conf.max():g}]"
        )
    sums = conf.sum(axis=1)
    off = np.abs(sums - 1.0) > _SUM_TOL
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise InputError(
            f"Expected {subject(name)} to have rows p(prediction | true class) summing to 1, "
            f"but row {row} sums to {sums[row]:.6g}"
        )
    return conf


def _prior(value: object, num_classes: int) -> _FloatArray:
    """``None``/``"uniform"``, or ``(K,)`` class probabilities summing to 1."""
    if value is None or (isinstance(value, str) and value == "uniform"):
        return np.full(num_classes, 1.0 / num_classes)
    what = f"'uniform' or ({num_classes},) class probabilities"
    if isinstance(value, str):
        raise fail("prior", what, value)
    arr = _as_array("prior", value, what)
    if arr.shape != (num_classes,):
        raise InputError(f"Expected argument `prior` to be {what}, but got shape {np.shape(arr)}")
    prior = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(prior).all() or prior.min() < 0 or abs(prior.sum() - 1.0) > _SUM_TOL:
        raise InputError(
            f"Expected argument `prior` to hold non-negative probabilities summing to 1, "
            f"but got {describe(prior.tolist())}"
        )
    return prior


def _weights(value: object, rows: int) -> _FloatArray | None:
    if value is None:
        return None
    arr = _as_array("sample_weight", value, f"({rows},) non-negative weights")
    w = np.asarray(arr, dtype=np.float64)
    if w.shape != (rows,) or not np.isfinite(w).all() or (w.size and w.min() < 0):
        raise fail("sample_weight", f"({rows},) finite non-negative weights", arr)
    return w


def _rule(rule: object, cost_ratio: object) -> tuple[str, float | None]:
    """The checked rule and cost ratio: the ratio goes with ``"cost_ratio"`` and nothing else."""
    name = check_choice("rule", rule, _RULES)
    if name == "cost_ratio":
        if cost_ratio is None:
            raise InputError(
                "Expected argument `cost_ratio` to be a number > 0 with rule='cost_ratio' "
                "(|c_NF / c_PF|, e.g. 10), but got None"
            )
        return name, check_real("cost_ratio", cost_ratio, low=0.0, low_open=True)
    if cost_ratio is not None:
        raise InputError(
            f"Expected argument `cost_ratio` to be None with rule={name!r} (it is used by "
            f"rule='cost_ratio' only), but got {describe(cost_ratio)}"
        )
    return name, None


def _budget(budget: object, n: int) -> int:
    """How many of ``n`` samples a budget allows: an int is a count, a float a fraction."""
    if isinstance(budget, numbers.Integral) and not isinstance(budget, (bool, np.bool_)):
        return check_int("budget", budget, low=0, high=n)
    if isinstance(budget, numbers.Real) and not isinstance(budget, (bool, np.bool_)):
        fraction = check_real("budget", budget, low=0.0, high=1.0)
        return min(n, math.floor(fraction * n + 0.5))  # the nearest count, halves up
    raise fail("budget", f"None, a count in [0, {n}] (int) or a fraction in [0, 1] (float)", budget)


def _index(value: object, n: int) -> _IntArray:
    arr = _as_array("index", value, "1-D integer sample indices")
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise fail("index", "1-D integer sample indices", arr)
    index = _check_range("index", np.asarray(arr, dtype=np.int64), n, "sample indices")
    if len(np.unique(index)) != len(index):
        raise InputError("Expected argument `index` to name each sample at most once")
    return index


# -- the maths, written once --------------------------------------------------------------------


def _log(x: _FloatArray) -> _FloatArray:
    with np.errstate(divide="ignore"):
        out: _FloatArray = np.log(x)
    return out


def _normalise(log_post: _FloatArray, rows: _IntArray | None = None) -> _FloatArray:
    """Rows shifted to log-probabilities (log-sum-exp); a row that is impossible is an error.

    ``rows`` gives the sample index of each row, for the message.
    """
    top = log_post.max(axis=1, keepdims=True)
    dead = ~np.isfinite(top[:, 0])
    if dead.any():
        row = int(np.flatnonzero(dead)[0])
        sample = row if rows is None else int(rows[row])
        raise InputError(
            f"sample {sample} has probability zero under every class: its predictions "
            f"contradict confusion matrices that hold zeros; estimate them with smoothing > 0"
        )
    shifted = log_post - top
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    out: _FloatArray = shifted - lse
    return out


def _entropy(log_post: _FloatArray) -> _FloatArray:
    p = np.exp(log_post)
    terms = np.where(p > 0, p * np.where(p > 0, log_post, 0.0), 0.0)
    out: _FloatArray = 0.0 - terms.sum(axis=1)  # 0.0, never -0.0, for a certain row
    return out


def _select(log_post: _FloatArray, count: int) -> _IntArray:
    """The ``count`` highest-entropy rows, highest first; equal entropies: lowest index first."""
    order: _IntArray = np.argsort(-_entropy(log_post), kind="stable")[:count]
    return order.astype(np.int64)


def _top1(log_post: _FloatArray) -> _IntArray:
    top: _IntArray = top1_columns(log_post.T)[0]
    return top


def _readonly(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    arr.setflags(write=False)
    return arr


def _start(preds: _IntArray, log_conf: _FloatArray, log_prior: _FloatArray) -> PredictionUpdate:
    """The initial annotation: the first predictions stored as they are, the posterior begun."""
    log_post = _normalise(log_prior[None, :] + log_conf.T[preds])
    n = len(preds)
    return PredictionUpdate(
        labels=_readonly(preds.copy()),
        log_posterior=_readonly(log_post),
        evaluated=_readonly(np.arange(n, dtype=np.int64)),
        changed=_readonly(np.zeros(n, dtype=bool)),
    )


def _step(
    state: PredictionUpdate,
    preds: _IntArray,
    log_conf: _FloatArray,
    rule: str,
    cost_ratio: float | None,
    index: _IntArray,
) -> PredictionUpdate:
    """One update: the posterior of the rows ``index`` (``preds`` is theirs), then the rule."""
    log_post = np.array(state.log_posterior, dtype=np.float64)
    log_post[index] = _normalise(log_post[index] + log_conf.T[preds], index)
    labels = np.array(state.labels, dtype=np.int64)
    if rule == "replace":
        labels[index] = preds
    else:
        best = _top1(log_post[index])
        if rule == "max_belief":
            labels[index] = best
        else:
            stored = labels[index]
            gain = log_post[index, best] - log_post[index, stored]  # log p(b) - log p(a)
            change = (best != stored) & (gain > math.log(cost_ratio))  # type: ignore[arg-type]
            labels[index[change]] = best[change]
    return PredictionUpdate(
        labels=_readonly(labels),
        log_posterior=_readonly(log_post),
        evaluated=_readonly(index.copy()),
        changed=_readonly(labels != state.labels),
    )


# -- the state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionUpdate:
    """The stored predictions after an update, and the belief behind them.

    Its arrays are read-only: a state is never changed in place, an update makes a new one.

    Attributes:
        labels: ``(N,)`` int64 stored label of each sample.
        log_posterior: ``(N, K)`` float64 normalised log-posterior over the classes.
        evaluated: ``(B,)`` int64 samples whose new prediction this update took in, in the
            order they were chosen (highest posterior entropy first under a budget).
        changed: ``(N,)`` bool, where this update changed the stored label.

    Example:
        >>> import numpy as np
        >>> state = update_predictions(None, [0, 1], np.array([[0.8, 0.2], [0.4, 0.6]]))
        >>> state.labels.tolist(), state.posterior.round(3).tolist()
        ([0, 1], [[0.667, 0.333], [0.25, 0.75]])
    """

    labels: _IntArray
    log_posterior: _FloatArray
    evaluated: _IntArray
    changed: npt.NDArray[np.bool_]

    def __post_init__(self) -> None:
        log_post = np.asarray(self.log_posterior, dtype=np.float64)
        if log_post.ndim != 2 or log_post.shape[1] < 2:
            raise InputError(
                f"Expected `PredictionUpdate.log_posterior` to have shape (N, K), K >= 2, but "
                f"got shape {log_post.shape}"
            )
        n, k = log_post.shape
        if np.isnan(log_post).any() or (log_post == np.inf).any():
            raise InputError(
                "Expected `PredictionUpdate.log_posterior` to hold log-probabilities, but it "
                "holds NaN or +inf"
            )
        labels = _labels("PredictionUpdate.labels", self.labels, k)
        if len(labels) != n:
            raise InputError(
                f"Expected `PredictionUpdate.labels` to have {n} rows, but got {len(labels)}"
            )
        evaluated = _as_array("PredictionUpdate.evaluated", self.evaluated, "sample indices")
        if evaluated.ndim != 1 or (evaluated.size and evaluated.dtype.kind not in "iu"):
            raise fail("PredictionUpdate.evaluated", "1-D integer sample indices", evaluated)
        evaluated = _check_range(
            "PredictionUpdate.evaluated", np.asarray(evaluated, dtype=np.int64), n, "sample indices"
        )
        changed = np.asarray(self.changed)
        if changed.shape != (n,) or changed.dtype != np.bool_:
            raise InputError(
                f"Expected `PredictionUpdate.changed` to be a bool array of shape ({n},), but "
                f"got {describe(changed)}"
            )
        # Read-only arrays are kept (the update functions build them so); any other is
        # copied, so that a caller's array is never frozen, nor the state changed through it.
        for field, arr in (
            ("labels", labels),
            ("log_posterior", log_post),
            ("evaluated", evaluated),
            ("changed", changed),
        ):
            if arr.flags.writeable:
                arr = _readonly(arr.copy())
            object.__setattr__(self, field, arr)

    @property
    def posterior(self) -> _FloatArray:
        """``(N, K)`` posterior probabilities, ``exp(log_posterior)``."""
        out: _FloatArray = np.exp(self.log_posterior)
        return out

    @property
    def num_classes(self) -> int:
        """The number of classes ``K``."""
        return int(self.log_posterior.shape[1])


# -- the functions ------------------------------------------------------------------------------


def estimate_confusion(
    target: object,
    preds: object,
    *,
    num_classes: int | None = None,
    form: Form = "full",
    smoothing: float = 1.0,
    sample_weight: object = None,
) -> _FloatArray:
    r"""A model's likelihood :math:`C[i, j] = p(\hat y = j \mid y = i)` from labelled data.

    .. math::
        C[i, j] = \frac{n_{ij} + s/K}{n_i + s} \quad (\text{full}), \qquad
        C[i, j] = \begin{cases} a_i = C_\text{full}[i, i] & i = j \\
        (1 - a_i)/(K - 1) & i \ne j \end{cases} \quad (\text{diagonal})

    with :math:`n_{ij}` the (weighted) count of samples of class ``i`` predicted ``j`` and
    :math:`s` = ``smoothing``, the concentration of a symmetric Dirichlet prior on each row:
    ``s`` pseudo-observations per class spread evenly over the ``K`` predictions, so the
    estimate stays near the counts however many classes there are (``s = K`` is Laplace's
    add-one, which for 1000 classes and 50 samples each would pull every accuracy below
    5 %). The diagonal form is the paper's: it keeps only each class's accuracy and spreads
    its errors evenly.

    Args:
        target: ``(N,)`` true class indices.
        preds: ``(N,)`` predicted class indices or ``(N, K)`` scores (top-1, ties to the
            lowest index).
        num_classes: ``K``; ``None`` infers it (the score width, else the largest label + 1).
        form: ``"full"`` or ``"diagonal"``.
        smoothing: the concentration :math:`s \ge 0` (pseudo-observations per class). With
            ``0`` every class needs validation samples, and a cell never seen is a
            likelihood of zero: that prediction then rules the class out.
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        ``(K, K)`` float64, rows (true classes) summing to 1.

    Example:
        >>> estimate_confusion([0, 0, 1, 1], [0, 1, 1, 1], smoothing=0.0)
        array([[0.5, 0.5],
               [0. , 1. ]])
        >>> estimate_confusion([0, 0, 0, 1], [0, 0, 2, 1], num_classes=3, form="diagonal")
        array([[0.58333333, 0.20833333, 0.20833333],
               [0.16666667, 0.66666667, 0.16666667],
               [0.33333333, 0.33333333, 0.33333333]])
    """
    form = check_choice("form", form, _FORMS)  # type: ignore[assignment]
    concentration = check_real("smoothing", smoothing, low=0.0)
    k = _num_classes(num_classes)
    if k is None:
        y = _labels("target", target)
        _predictions("preds", preds, None, rows=len(y))
        k = _infer_classes(y, [preds])
    y = _labels("target", target, k)
    p = _predictions("preds", preds, k, rows=len(y))
    w = _weights(sample_weight, len(y))
    counts = np.bincount(y * k + p, weights=w, minlength=k * k).reshape(k, k)
    rows = counts.sum(axis=1) + concentration
    if (rows <= 0).any():
        c = int(np.flatnonzero(rows <= 0)[0])
        raise InputError(
            f"Expected argument `target` to hold every class when `smoothing` is 0, but class "
            f"{c} has no samples (of weight > 0)"
        )
    full: _FloatArray = (counts + concentration / k) / rows[:, None]
    if form == "full":
        return full
    acc = np.diag(full).copy()
    out: _FloatArray = np.repeat(((1.0 - acc) / (k - 1))[:, None], k, axis=1)
    np.fill_diagonal(out, acc)
    return out


def class_prior(
    target: object,
    *,
    num_classes: int | None = None,
    smoothing: float = 1.0,
    sample_weight: object = None,
) -> _FloatArray:
    r"""Class frequencies :math:`p(y = i) = (n_i + s/K) / (N + s)`, as a prior.

    Args:
        target: ``(N,)`` class indices (validation labels).
        num_classes: ``K``; ``None``: the largest label + 1.
        smoothing: the concentration :math:`s \ge 0` of a symmetric Dirichlet prior:
            ``s`` pseudo-observations spread evenly over the classes.
        sample_weight: optional ``(N,)`` non-negative weights.

    Returns:
        ``(K,)`` float64 summing to 1.

    Example:
        >>> class_prior([0, 0, 0, 1], smoothing=0.0).tolist()
        [0.75, 0.25]
        >>> class_prior([0, 0, 0, 1], num_classes=3).round(3).tolist()
        [0.667, 0.267, 0.067]
    """
    concentration = check_real("smoothing", smoothing, low=0.0)
    k = _num_classes(num_classes)
    if k is None:
        k = _infer_classes(_labels("target", target), [])
    y = _labels("target", target, k)
    w = _weights(sample_weight, len(y))
    counts = np.bincount(y, weights=w, minlength=k) + concentration / k
    total = counts.sum()
    if total <= 0:
        raise InputError(
            "Expected argument `target` to hold samples (of weight > 0) when `smoothing` is 0"
        )
    out: _FloatArray = counts / total
    return out


def _sequence(name: str, value: object) -> list[Any]:
    """One entry per model: a list or tuple, never a bare array (one model or many?)."""
    if isinstance(value, (list, tuple)) and value:
        return list(value)
    raise InputError(
        f"Expected {subject(name)} to be a non-empty list with one entry per model, but got "
        f"{describe(value)}"
    )


def label_log_posterior(
    predictions: Sequence[object],
    confusions: Sequence[object],
    *,
    prior: object = None,
) -> _FloatArray:
    r"""The normalised log-posterior of every sample's label, given every model's prediction.

    :math:`\log p(y \mid \hat y_{1:T}) = \log p(y) + \sum_k \log C_k[y, \hat y_k] - \log Z`,
    every model evaluated on every sample (the batch form of a sequence of updates without
    a budget).

    Args:
        predictions: one ``(N,)`` label or ``(N, K)`` score array per model.
        confusions: one ``(K, K)`` likelihood (:func:`estimate_confusion`) per model.
        prior: ``None`` or ``"uniform"``, or ``(K,)`` class probabilities.

    Returns:
        ``(N, K)`` float64 log-probabilities; ``np.exp`` gives the posterior.

    Example:
        >>> import numpy as np
        >>> C = np.array([[0.9, 0.1], [0.3, 0.7]])
        >>> np.exp(label_log_posterior([[0, 1], [1, 1]], [C, C])).round(3).tolist()
        [[0.3, 0.7], [0.02, 0.98]]
    """
    preds = _sequence("predictions", predictions)
    confs = _sequence("confusions", confusions)
    if len(preds) != len(confs):
        raise InputError(
            f"Expected arguments `predictions` and `confusions` to have one entry per model "
            f"each, but got {len(preds)} and {len(confs)}"
        )
    k = _confusion("confusions[0]", confs[0], None).shape[0]
    log_post: _FloatArray = _log(_prior(prior, k))[None, :]
    rows: int | None = None
    for i, (value, conf) in enumerate(zip(preds, confs, strict=True)):
        y_hat = _predictions(f"predictions[{i}]", value, k, rows)
        rows = len(y_hat)
        log_post = log_post + _log(_confusion(f"confusions[{i}]", conf, k)).T[y_hat]
    return _normalise(log_post)


def _log_posterior(value: object) -> _FloatArray:
    arr = _as_array("log_posterior", value, "an (N, K) float array of log-probabilities")
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InputError(
            f"Expected argument `log_posterior` to have shape (N, K), K >= 2, but got shape "
            f"{arr.shape}"
        )
    log_post = np.asarray(arr, dtype=np.float64)
    if np.isnan(log_post).any() or (log_post == np.inf).any():
        raise InputError(
            "Expected argument `log_posterior` to hold log-probabilities, but it holds NaN or +inf"
        )
    return _normalise(log_post)


def posterior_entropy(log_posterior: object) -> _FloatArray:
    r"""The entropy :math:`H = -\sum_y p(y) \log p(y)` (nats) of each row's posterior.

    Args:
        log_posterior: ``(N, K)`` log-probabilities (rows are normalised first; ``-inf``
            is a probability of zero, and :math:`0 \log 0 = 0`).

    Returns:
        ``(N,)`` float64, from 0 (certain) to :math:`\log K` (uniform).

    Example:
        >>> import numpy as np
        >>> posterior_entropy(np.log([[0.5, 0.5], [1.0, 1e-300]])).round(4).tolist()
        [0.6931, 0.0]
    """
    return _entropy(_log_posterior(log_posterior))


def select_for_update(log_posterior: object, budget: int | float | None) -> _IntArray:
    """The samples to re-evaluate under a budget: the highest posterior entropy first.

    Args:
        log_posterior: ``(N, K)`` log-probabilities (normalised first).
        budget: ``None`` (every sample), an ``int`` count in ``[0, N]``, or a ``float``
            fraction in ``[0, 1]`` of ``N``, rounded to the nearest count (halves up).

    Returns:
        ``(B,)`` int64 sample indices, highest entropy first; among equal entropies, the
        lowest index first.

    Example:
        >>> import numpy as np
        >>> post = np.log([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.5, 0.5]])
        >>> select_for_update(post, 3).tolist(), select_for_update(post, 0.5).tolist()
        ([1, 3, 2], [1, 3])
    """
    log_post = _log_posterior(log_posterior)
    n = len(log_post)
    count = n if budget is None else _budget(budget, n)
    return _select(log_post, count)


def update_predictions(
    state: PredictionUpdate | None,
    predictions: object,
    confusion: object,
    *,
    prior: object = None,
    rule: Rule = "max_belief",
    cost_ratio: float | None = None,
    budget: int | float | None = None,
    index: object = None,
) -> PredictionUpdate:
    r"""One prediction update: a new model's predictions into the stored state (pure function).

    With ``state=None`` this is the initial annotation: the predictions are stored as they
    are, and the posterior is :math:`\propto p(y)\, C[y, \hat y]`. Otherwise the samples to
    re-evaluate are chosen (all of them, ``index``, or the ``budget`` of highest posterior
    entropy), their posteriors take in :math:`C[y, \hat y]`, and ``rule`` decides their
    stored labels (see the module's description); the other samples keep both.

    Args:
        state: the previous :class:`PredictionUpdate`, or ``None`` for the first model.
        predictions: the new model's ``(N,)`` labels or ``(N, K)`` scores; with ``index``,
            those of the ``len(index)`` samples it names, in its order.
        confusion: the new model's ``(K, K)`` likelihood (:func:`estimate_confusion`).
        prior: the first update's prior: ``None`` or ``"uniform"``, or ``(K,)`` class
            probabilities (:func:`class_prior`); a later update's ``state`` holds it in its
            posterior.
        rule: ``"replace"``, ``"max_belief"`` or ``"cost_ratio"``.
        cost_ratio: :math:`r = |c_{NF}/c_{PF}| > 0`, with ``rule="cost_ratio"`` only.
        budget: ``None``, or how many samples to re-evaluate: an ``int`` count or a
            ``float`` fraction of ``N`` (:func:`select_for_update`).
        index: the samples the new model was run on (instead of ``budget``).

    Returns:
        The new :class:`PredictionUpdate` (``state`` itself is left as it was).

    Example:
        >>> import numpy as np
        >>> old = np.array([[0.7, 0.3], [0.3, 0.7]])     # 70 % right on both classes
        >>> new = np.array([[0.9, 0.1], [0.1, 0.9]])     # 90 %
        >>> state = update_predictions(None, [0, 0, 1], old)
        >>> mb = update_predictions(state, [1, 0, 0], new)
        >>> cr = update_predictions(state, [1, 0, 0], new, rule="cost_ratio", cost_ratio=10)
        >>> mb.labels.tolist(), cr.labels.tolist()      # p(1)/p(0) = 0.9*0.3/(0.1*0.7) < 10
        ([1, 0, 0], [0, 0, 1])
        >>> update_predictions(state, [1], new, index=[0]).evaluated.tolist()
        [0]
    """
    rule, ratio = _rule(rule, cost_ratio)  # type: ignore[assignment]
    if state is None:
        for name, value in (("budget", budget), ("index", index)):
            if value is not None:
                raise InputError(
                    f"Expected {subject(name)} to be None for the first update (every "
                    f"sample needs its initial prediction), but got {describe(value)}"
                )
        conf = _confusion("confusion", confusion, None)
        k = conf.shape[0]
        return _start(
            _predictions("predictions", predictions, k), _log(conf), _log(_prior(prior, k))
        )
    check_instance("state", state, PredictionUpdate, "a PredictionUpdate or None")
    if prior is not None:
        raise InputError(
            f"Expected argument `prior` to be None after the first update (the state holds "
            f"it), but got {describe(prior)}"
        )
    k, n = state.num_classes, len(state.labels)
    conf = _confusion("confusion", confusion, k)
    rows, chosen = _chosen(state.log_posterior, n, budget, index)
    preds = _predictions("predictions", predictions, k, rows)
    if index is None:
        preds = preds[chosen]
    return _step(state, preds, _log(conf), rule, ratio, chosen)


def _chosen(log_post: _FloatArray, n: int, budget: object, index: object) -> tuple[int, _IntArray]:
    """``(rows the predictions must have, samples re-evaluated)`` from a budget or an index."""
    if budget is not None and index is not None:
        raise InputError(
            "Expected one of the arguments `budget` and `index`, but got both: a budget "
            "chooses the samples, an index says which were chosen"
        )
    if index is not None:
        chosen = _index(index, n)
        return len(chosen), chosen
    if budget is None:
        return n, np.arange(n, dtype=np.int64)
    return n, _select(log_post, _budget(budget, n))


# -- the stateful face --------------------------------------------------------------------------


class PredictionUpdater:
    r"""Stored predictions kept over a sequence of model versions (the stateful face).

    Holds the rule and its options, each model's confusion matrix (from :meth:`fit` on
    validation data, or given to :meth:`update`), the prior, and the state: the stored
    labels and the per-sample posterior. Each :meth:`update` is :func:`update_predictions`
    on that state.

    Args:
        rule: ``"replace"``, ``"max_belief"`` or ``"cost_ratio"``.
        cost_ratio: :math:`|c_{NF}/c_{PF}| > 0`, with ``rule="cost_ratio"`` only (CR-10:
            ``10``).
        prior: ``"uniform"``, ``"validation"`` (class frequencies of :meth:`fit`'s
            ``target``, smoothed by ``smoothing``) or ``(K,)`` class probabilities.
        form: the confusion matrices :meth:`fit` estimates: ``"full"`` or ``"diagonal"``.
        smoothing: their Dirichlet concentration per class (and the validation prior's);
            see :func:`estimate_confusion`.
        num_classes: ``K``; ``None``: from :meth:`fit`'s data or the first confusion matrix.

    Example:
        >>> import numpy as np
        >>> val_y = np.array([0, 0, 1, 1, 2, 2])
        >>> updater = PredictionUpdater.from_validation(
        ...     val_y, [[0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]], rule="cost_ratio",
        ...     cost_ratio=1.2, prior="uniform")
        >>> updater.update([0, 1, 2, 0]).labels.tolist()   # model 1: stored as they are
        [0, 1, 2, 0]
        >>> updater.update([0, 2, 2, 1], budget=2).labels.tolist()  # samples 0 and 3 only
        [0, 1, 2, 1]
        >>> updater.state.evaluated.tolist(), updater.n_updates
        ([0, 3], 2)
    """

    def __init__(
        self,
        *,
        rule: Rule = "max_belief",
        cost_ratio: float | None = None,
        prior: object = "uniform",
        form: Form = "full",
        smoothing: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        self._rule, self._cost_ratio = _rule(rule, cost_ratio)
        self._form = check_choice("form", form, _FORMS)
        self._smoothing = check_real("smoothing", smoothing, low=0.0)
        self._num_classes = _num_classes(num_classes)
        self._prior_option: object = prior
        self._prior: _FloatArray | None = None
        self._prior_validation = False  # the prior comes from fit()'s labels
        if isinstance(prior, str):
            self._prior_validation = check_choice("prior", prior, ("uniform", "validation")) == (
                "validation"
            )
        elif self._num_classes is not None:
            self._prior = _readonly(_prior(prior, self._num_classes))
        self._confusions: tuple[_FloatArray, ...] = ()
        self._state: PredictionUpdate | None = None
        self._n_updates = 0

    @classmethod
    def from_validation(
        cls,
        target: object,
        predictions: Sequence[object],
        *,
        rule: Rule = "max_belief",
        cost_ratio: float | None = None,
        prior: object = "validation",
        form: Form = "full",
        smoothing: float = 1.0,
        num_classes: int | None = None,
        sample_weight: object = None,
    ) -> PredictionUpdater:
        """An updater fitted on validation data: ``PredictionUpdater(...).fit(...)``.

        The prior defaults to the validation class frequencies here.

        Example:
            >>> u = PredictionUpdater.from_validation([0, 1, 1, 1], [[0, 1, 1, 0]],
            ...                                       smoothing=0.0)
            >>> u.prior.tolist(), u.confusions[0].tolist()
            ([0.25, 0.75], [[1.0, 0.0], [0.3333333333333333, 0.6666666666666666]])
        """
        updater = cls(
            rule=rule,
            cost_ratio=cost_ratio,
            prior=prior,
            form=form,
            smoothing=smoothing,
            num_classes=num_classes,
        )
        return updater.fit(target, predictions, sample_weight=sample_weight)

    def fit(
        self, target: object, predictions: Sequence[object], *, sample_weight: object = None
    ) -> PredictionUpdater:
        """Estimate each model's confusion matrix on the same labelled validation samples.

        The ``k``-th :meth:`update` then uses the ``k``-th matrix unless it is given one.
        Fitting again replaces the matrices (and the validation prior).

        Args:
            target: ``(N,)`` validation labels.
            predictions: one ``(N,)`` label or ``(N, K)`` score array per model version, in
                the order the versions will be applied.
            sample_weight: optional ``(N,)`` non-negative weights.

        Returns:
            ``self``.

        Example:
            >>> u = PredictionUpdater(form="diagonal").fit([0, 1, 1], [[0, 1, 0]])
            >>> u.confusions[0].round(2).tolist()
            [[0.75, 0.25], [0.5, 0.5]]
        """
        preds = _sequence("predictions", predictions)
        k = self._num_classes
        if k is None:
            y = _labels("target", target)
            for i, p in enumerate(preds):
                _predictions(f"predictions[{i}]", p, None, rows=len(y))
            k = _infer_classes(y, preds)
        confusions = tuple(
            _readonly(
                estimate_confusion(
                    target,
                    p,
                    num_classes=k,
                    form=self._form,  # type: ignore[arg-type]
                    smoothing=self._smoothing,
                    sample_weight=sample_weight,
                )
            )
            for p in preds
        )
        prior = self._prior
        if self._prior_validation:
            prior = _readonly(
                class_prior(
                    target, num_classes=k, smoothing=self._smoothing, sample_weight=sample_weight
                )
            )
        elif not isinstance(self._prior_option, str) or prior is None:
            prior = _readonly(_prior(self._prior_option, k))
        self._num_classes, self._confusions, self._prior = k, confusions, prior
        return self

    # -- state ----------------------------------------------------------------------------

    @property
    def rule(self) -> str:
        """The update rule."""
        return self._rule

    @property
    def cost_ratio(self) -> float | None:
        """The cost ratio of ``rule="cost_ratio"``, else ``None``."""
        return self._cost_ratio

    @property
    def num_classes(self) -> int | None:
        """``K``, once known (given, fitted or from the first update)."""
        return self._num_classes

    @property
    def confusions(self) -> tuple[_FloatArray, ...]:
        """The fitted ``(K, K)`` confusion matrices, one per model version (read-only)."""
        return self._confusions

    @property
    def prior(self) -> _FloatArray | None:
        """The ``(K,)`` prior, once known (read-only)."""
        return self._prior

    @property
    def n_updates(self) -> int:
        """How many model versions have been applied."""
        return self._n_updates

    @property
    def state(self) -> PredictionUpdate | None:
        """The last :class:`PredictionUpdate`, or ``None`` before the first update."""
        return self._state

    @property
    def labels(self) -> _IntArray:
        """``(N,)`` stored labels."""
        return self._require_state().labels

    @property
    def log_posterior(self) -> _FloatArray:
        """``(N, K)`` normalised log-posterior."""
        return self._require_state().log_posterior

    @property
    def posterior(self) -> _FloatArray:
        """``(N, K)`` posterior probabilities."""
        return self._require_state().posterior

    def _require_state(self) -> PredictionUpdate:
        if self._state is None:
            raise InputError("no stored predictions yet: call update() with the first model's")
        return self._state

    def select(self, budget: int | float | None) -> _IntArray:
        """The samples the next model should run on under ``budget`` (:func:`select_for_update`).

        Example:
            >>> u = PredictionUpdater()
            >>> _ = u.update([1, 0, 1], [[0.9, 0.1], [0.4, 0.6]])
            >>> u.select(1).tolist(), u.select(2).tolist()  # least certain first, then index
            ([1], [1, 0])
        """
        state = self._require_state()
        count = len(state.labels) if budget is None else _budget(budget, len(state.labels))
        return _select(state.log_posterior, count)

    def update(
        self,
        predictions: object,
        confusion: object = None,
        *,
        budget: int | float | None = None,
        index: object = None,
    ) -> PredictionUpdate:
        """Apply the next model version's predictions; returns (and keeps) the new state.

        Args:
            predictions: ``(N,)`` labels or ``(N, K)`` scores (with ``index``: of those
                samples only).
            confusion: the model's ``(K, K)`` likelihood; ``None``: the fitted one of this
                version (the ``n_updates``-th of :attr:`confusions`).
            budget: how many samples to re-evaluate (``None``: all); see
                :func:`update_predictions`. The first update takes every sample.
            index: the samples the model was run on, instead of ``budget``.

        Returns:
            The new :class:`PredictionUpdate`; on an error the state is left as it was.

        Example:
            >>> import numpy as np
            >>> u = PredictionUpdater(rule="cost_ratio", cost_ratio=10.0)
            >>> _ = u.update([0, 1], np.array([[0.8, 0.2], [0.2, 0.8]]))
            >>> u.update([1, 1], np.array([[0.95, 0.05], [0.05, 0.95]])).labels.tolist()
            [0, 1]
        """
        if confusion is None:
            if self._n_updates >= len(self._confusions):
                raise InputError(
                    f"Expected argument `confusion` for update {self._n_updates + 1}, since "
                    f"fit() estimated {len(self._confusions)} confusion matrices, but got None"
                )
            confusion = self._confusions[self._n_updates]
        k = self._num_classes
        conf = _confusion("confusion", confusion, k)
        k = conf.shape[0]
        if self._state is None:
            prior = self._prior
            if prior is None:
                if self._prior_validation:
                    raise InputError(
                        "prior='validation' needs the validation labels: call fit() first, or "
                        "pass prior='uniform' or class probabilities"
                    )
                prior = _readonly(_prior(self._prior_option, k))
            state = update_predictions(
                None, predictions, conf, prior=prior, budget=budget, index=index
            )
            self._num_classes, self._prior = k, prior
        else:
            state = update_predictions(
                self._state,
                predictions,
                conf,
                rule=self._rule,  # type: ignore[arg-type]
                cost_ratio=self._cost_ratio,
                budget=budget,
                index=index,
            )
        self._state = state
        self._n_updates += 1
        return state

    def __repr__(self) -> str:
        ratio = "" if self._cost_ratio is None else f", cost_ratio={self._cost_ratio:g}"
        n = None if self._state is None else len(self._state.labels)
        return (
            f"PredictionUpdater(rule={self._rule!r}{ratio}, num_classes={self._num_classes}, "
            f"n_samples={n}, n_updates={self._n_updates})"
        )


# -- prediction files ---------------------------------------------------------------------------


def _rule_label(rule: str, cost_ratio: float | None) -> str:
    """``"max-belief"``, ``"cost-ratio 10"``: the name a table shows for a rule."""
    name = rule.replace("_", "-")
    return name if cost_ratio is None else f"{name} {cost_ratio:g}"


@dataclass(frozen=True)
class FileUpdate:
    """What :func:`update_prediction_files` computed (and wrote).

    Attributes:
        table: a ``pd.DataFrame``, one row per sample of the stored file, in its order:
            the id column (when rows were joined on ids), ``label`` (when a test file holds
            labels), ``pred`` (the updated stored label), ``changed`` (differs from the
            stored file's prediction), ``evaluations`` (how many versions' predictions the
            posterior took in) and, when asked, ``posterior_<class>`` for every class.
        class_names: the class names; ``state`` indexes them.
        state: the final :class:`PredictionUpdate` of the rule.
        baseline: the final state of ``rule="replace"`` under the same budget and choice of
            samples (the posterior, and so the choice, does not depend on the rule).
        metrics: with labels, a ``pd.DataFrame`` indexed by ``"stored"``, ``"replace"``
            and the rule (``"cost-ratio 10"``), with columns ``error_rate``,
            ``negative_flip_rate`` and ``positive_flip_rate`` (both against the stored
            file's predictions, 0 for the stored row) and ``changed``; ``None`` without.
        evaluated: per model version, how many samples its predictions were taken in for.
        out: the file written, or ``None``.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for name, pred in (("v1", [0, 1, 1, 0]), ("v2", [0, 1, 0, 0])):
        ...     pd.DataFrame({"label": [0, 1, 0, 0], "pred": pred}).to_csv(
        ...         d / f"{name}.csv", index=False)
        >>> files = [d / "v1.csv", d / "v2.csv"]  # here the labelled files serve as both
        >>> result = update_prediction_files(files, *files, budget=0.5)
        >>> result.metrics["error_rate"].to_dict(), result.evaluated
        ({'stored': 0.25, 'replace': 0.0, 'max-belief': 0.0}, (4, 2))
    """

    table: pd.DataFrame
    class_names: list[str]
    state: PredictionUpdate
    baseline: PredictionUpdate
    metrics: pd.DataFrame | None
    evaluated: tuple[int, ...]
    out: str | None


def _out_format(out: str | os.PathLike[str] | None) -> str | None:
    if out is None:
        return None
    suffix = Path(out).suffix.lower()
    if not str(out).strip() or suffix not in _OUT_FORMATS:
        raise InputError(
            f"Expected argument `out` to be a file ending in "
            f"{', '.join(sorted(_OUT_FORMATS))}, but got {describe(str(out))}"
        )
    return _OUT_FORMATS[suffix]


def _class_values(names: list[str]) -> np.ndarray[Any, Any]:
    """Class names as the values written: integers when every name is one, else strings."""
    if all(n.lstrip("-").isdigit() and n == str(int(n)) for n in names):
        return np.array([int(n) for n in names], dtype=np.int64)
    return np.array(names, dtype=object)


def _write(table: pd.DataFrame, out: str | os.PathLike[str], fmt: str) -> None:
    from graceful.io.atomic import atomic_open

    try:
        if fmt == "parquet":
            with atomic_open(out, "wb") as handle:
                table.to_parquet(handle, index=False)  # type: ignore[arg-type]  # binary in "wb"
        else:
            with atomic_open(out, "w") as handle:
                if fmt == "csv":
                    table.to_csv(handle, index=False)
                else:
                    table.to_json(handle, orient="records", lines=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None


def update_prediction_files(
    val: Sequence[str | os.PathLike[str]],
    stored: str | os.PathLike[str],
    new: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str] | None = None,
    rule: Rule = "max_belief",
    cost_ratio: float | None = None,
    budget: int | float | None = None,
    form: Form = "full",
    smoothing: float = 1.0,
    prior: Literal["validation", "uniform"] = "validation",
    posterior: bool = True,
    id_col: str | None = None,
    label_col: str = "label",
    pred_col: str | None = None,
    score_prefix: str | None = None,
    scores: Literal["auto", "logits", "probs"] = "auto",
) -> FileUpdate:
    """Update stored predictions with new model versions' prediction files.

    Version 1 is the stored (deployed) model: ``stored`` holds its predictions on the data
    set, ``new`` those of versions 2, 3, ... on the same samples (joined on the id column,
    else by position), and ``val`` one labelled validation file per version, 1 first, from
    which each version's confusion matrix is estimated (:func:`estimate_confusion`; the
    validation files need not hold the same samples). The files are read as
    :func:`graceful.io.predictions.load_predictions` reads them (hard ``pred`` columns or
    score columns; one class space). Then :class:`PredictionUpdater` applies the versions
    in order, every later one under ``budget``, and, next to it, ``rule="replace"`` under
    the same budget as the baseline. This is what ``graceful update-predictions`` runs.

    Args:
        val: one validation file per version (labels and predictions).
        stored: version 1's predictions on the data set.
        new: the later versions' predictions on it (one file or a list).
        out: a ``.parquet``, ``.csv`` or ``.jsonl`` file for :attr:`FileUpdate.table`,
            written atomically (a failure leaves no partial file), or ``None``.
        rule: ``"replace"``, ``"max_belief"`` or ``"cost_ratio"``.
        cost_ratio: :math:`|c_{NF}/c_{PF}|`, with ``rule="cost_ratio"`` only.
        budget: samples each later version may be run on: an ``int`` count, a ``float``
            fraction, or ``None`` for all.
        form: ``"full"`` or ``"diagonal"`` confusion matrices.
        smoothing: their Dirichlet concentration per class, and the prior's
            (:func:`estimate_confusion`).
        prior: ``"validation"`` (class frequencies of every validation file together) or
            ``"uniform"``.
        posterior: write the ``posterior_<class>`` columns.
        id_col: id column to join the data-set files on (``None``: ``"id"`` if each has it).
        label_col: label column (required in the validation files; in a data-set file it
            enables the metrics).
        pred_col: hard prediction column (``None``: score columns if any, else ``"pred"``).
        score_prefix: prefix of the score columns (``None``: ``logit_``/``prob_``/``score_``).
        scores: ``"auto"``, ``"logits"`` or ``"probs"``.

    Returns:
        A :class:`FileUpdate`.

    Example:
        >>> import tempfile, pathlib, pandas as pd
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> y = [0, 0, 0, 0, 1, 1, 1, 1]
        >>> pd.DataFrame({"label": y, "pred": [0, 0, 0, 1, 1, 1, 0, 0]}).to_csv(
        ...     d / "v1_val.csv", index=False)
        >>> pd.DataFrame({"label": y, "pred": [0, 0, 0, 0, 1, 1, 1, 0]}).to_csv(
        ...     d / "v2_val.csv", index=False)
        >>> pd.DataFrame({"id": [1, 2, 3], "pred": [0, 1, 1]}).to_csv(d / "v1.csv", index=False)
        >>> pd.DataFrame({"id": [3, 2, 1], "pred": [0, 0, 1]}).to_csv(d / "v2.csv", index=False)
        >>> result = update_prediction_files(
        ...     [d / "v1_val.csv", d / "v2_val.csv"], d / "v1.csv", d / "v2.csv",
        ...     rule="cost_ratio", cost_ratio=2.0, out=d / "updated.parquet")
        >>> result.table[["id", "pred", "changed"]].to_dict("list")
        {'id': [1, 2, 3], 'pred': [1, 1, 1], 'changed': [True, False, False]}
        >>> pd.read_parquet(d / "updated.parquet")["pred"].tolist()
        [1, 1, 1]
    """
    import pandas as pd

    from graceful.io.predictions import load_predictions
    from graceful.metrics import error_rate, negative_flip_rate, positive_flip_rate

    fmt = _out_format(out)
    rule, ratio = _rule(rule, cost_ratio)  # type: ignore[assignment]
    form = check_choice("form", form, _FORMS)  # type: ignore[assignment]
    smoothing = check_real("smoothing", smoothing, low=0.0)
    check_choice("prior", prior, ("validation", "uniform"))
    posterior = check_bool("posterior", posterior)
    if isinstance(val, (str, os.PathLike)) or not isinstance(val, Sequence):
        raise fail("val", "a list of validation files, one per model version", val)
    new_files = [new] if isinstance(new, (str, os.PathLike)) else list(new)
    if not new_files:
        raise InputError("Expected argument `new` to name at least one file, but got none")
    if len(val) != 1 + len(new_files):
        raise InputError(
            f"Expected one validation file per model version ({1 + len(new_files)}: the stored "
            f"model and {len(new_files)} new), but got {len(val)} in argument `val`"
        )
    files = load_predictions(
        [*val, stored, *new_files],
        id_col=id_col,
        label_col=label_col,
        pred_col=pred_col,
        score_prefix=score_prefix,
        scores=scores,
    )
    names, k = files.class_names, len(files.class_names)
    if k < 2:
        raise InputError(f"the files show only {k} class ({names!r}); updates need at least 2")
    n_val = len(val)
    confusions = []
    for i in range(n_val):
        target = files.target[i]
        if target is None:
            raise InputError(
                f"{files.paths[i]}: a validation file needs labels, but it has no column "
                f"{label_col!r} (--label-col)"
            )
        confusions.append(
            estimate_confusion(
                target, files.preds[i], num_classes=k, form=form, smoothing=smoothing
            )
        )
    if prior == "validation":
        val_labels = np.concatenate([t for t in files.target[:n_val] if t is not None])
        prior_probs = class_prior(val_labels, num_classes=k, smoothing=smoothing)
    else:
        prior_probs = np.full(k, 1.0 / k)
    data = files.aligned(range(n_val, len(files.paths)), on_ids=True if id_col else None)

    updater = PredictionUpdater(rule=rule, cost_ratio=ratio, prior=prior_probs, num_classes=k)
    baseline = PredictionUpdater(rule="replace", prior=prior_probs, num_classes=k)
    n = len(data.preds[0])
    evaluations = np.zeros(n, dtype=np.int64)
    evaluated = []
    for version, (preds, conf) in enumerate(zip(data.preds, confusions, strict=True)):
        share = None if version == 0 else budget
        state = updater.update(preds, conf, budget=share)
        baseline.update(preds, conf, budget=share)
        evaluations[state.evaluated] += 1
        evaluated.append(len(state.evaluated))
    final, replaced = state, baseline.state
    if replaced is None:  # pragma: no cover - one update at least
        raise InputError("no update was applied")

    values = _class_values(names)
    stored_preds = data.preds[0]
    columns: dict[str, Any] = {}

    def put(column: str, value: Any) -> None:
        if column in columns:
            raise InputError(
                f"the output would hold two columns named {column!r}; rename the id or label "
                f"column (--id-col, --label-col)"
            )
        columns[column] = value

    if data.joined != "position":
        put(data.id_col, data.ids[0])
    target = data.labels
    if target is not None:
        put(label_col, values[target])
    put("pred", values[final.labels])
    put("changed", final.labels != stored_preds)
    put("evaluations", evaluations)
    if posterior:
        probs = final.posterior
        for c, name in enumerate(names):
            put(f"posterior_{name}", probs[:, c])
    table = pd.DataFrame(columns)

    metrics = None
    if target is not None:
        rows: dict[str, dict[str, float]] = {
            "stored": {
                "error_rate": error_rate(target, stored_preds),
                "negative_flip_rate": 0.0,
                "positive_flip_rate": 0.0,
                "changed": 0,
            }
        }
        outcomes = [("replace", replaced.labels), (_rule_label(rule, ratio), final.labels)]
        for label, labels in outcomes:
            rows[label] = {
                "error_rate": error_rate(target, labels),
                "negative_flip_rate": negative_flip_rate(target, stored_preds, labels),
                "positive_flip_rate": positive_flip_rate(target, stored_preds, labels),
                "changed": int((labels != stored_preds).sum()),
            }
        metrics = pd.DataFrame.from_dict(rows, orient="index")
        metrics["changed"] = metrics["changed"].astype(np.int64)
    if fmt is not None and out is not None:
        _write(table, out, fmt)
    return FileUpdate(
        table=table,
        class_names=list(names),
        state=final,
        baseline=replaced,
        metrics=metrics,
        evaluated=tuple(evaluated),
        out=None if out is None else str(out),
    )
