"""A tiny pure-Python reference for the two-model metrics, written from the definitions.

It shares no code with :mod:`graceful.metrics`: it loops over samples, decides whether each
model is right, and divides sums. Undefined values are ``math.nan``.

Definitions (N = compared weight; samples whose target no mapped old class reaches are
excluded, old predictions go through the class map and unmapped ones are never right):

* ER_old = #old wrong / N, ER_new = #new wrong / N
* NFR = #(old right & new wrong) / N, PFR = #(old wrong & new right) / N
* NFI = NF / #new wrong, PFI = PF / #old wrong
* relative NFR = NFR / ((1 - ER_old) * ER_new)
* BTC = #both right / #old right, BEC = #both wrong / #new wrong

The second half of the file builds seeded random inputs for the tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NAN = math.nan


def _top(pred: Any, top_k: int) -> list[int]:
    """The ``top_k`` best classes of one prediction: a label, a score row or a ranked row."""
    if isinstance(pred, (int, np.integer)):
        return [int(pred)]
    row = list(pred)
    if all(isinstance(v, (int, np.integer)) for v in row):  # ranked labels, best first
        return [int(v) for v in row[:top_k]]
    order = sorted(range(len(row)), key=lambda c: (-float(row[c]), c))
    return order[:top_k]


def _map_old(label: int, class_map: Mapping[int, int] | Sequence[int] | None) -> int:
    if class_map is None:
        return label
    if isinstance(class_map, Mapping):
        return int(class_map.get(label, -1))
    return int(class_map[label]) if label < len(class_map) else -1


def _reachable(class_map: Mapping[int, int] | Sequence[int]) -> set[int]:
    values = class_map.values() if isinstance(class_map, Mapping) else class_map
    return {int(v) for v in values if int(v) >= 0}


def _div(num: float, den: float) -> float:
    return num / den if den != 0 else NAN


@dataclass
class Table:
    """Reference 2x2 table (weighted) plus the excluded weight and count."""

    both_wrong: float = 0.0
    positive_flips: float = 0.0
    negative_flips: float = 0.0
    both_correct: float = 0.0
    excluded: float = 0.0
    n_excluded: int = 0


def ref_table(
    target: Sequence[int],
    preds_old: Sequence[Any],
    preds_new: Sequence[Any],
    *,
    top_k: int = 1,
    sample_weight: Sequence[float] | None = None,
    class_map: Mapping[int, int] | Sequence[int] | None = None,
) -> Table:
    """Loop over samples and add each one's weight to its cell."""
    table = Table()
    reachable = None if class_map is None else _reachable(class_map)
    for i, y in enumerate(target):
        y = int(y)
        w = 1.0 if sample_weight is None else float(sample_weight[i])
        if reachable is not None and y not in reachable:
            table.excluded += w
            table.n_excluded += 1
            continue
        old_right = any(_map_old(c, class_map) == y for c in _top(preds_old[i], top_k))
        new_right = y in _top(preds_new[i], top_k)
        if old_right and new_right:
            table.both_correct += w
        elif old_right:
            table.negative_flips += w
        elif new_right:
            table.positive_flips += w
        else:
            table.both_wrong += w
    return table


def ref_metrics(
    target: Sequence[int],
    preds_old: Sequence[Any],
    preds_new: Sequence[Any],
    **kwargs: Any,
) -> dict[str, float]:
    """Every metric, by name, straight from the definitions."""
    t = ref_table(target, preds_old, preds_new, **kwargs)
    n = t.both_wrong + t.positive_flips + t.negative_flips + t.both_correct
    old_right = t.both_correct + t.negative_flips
    old_wrong = t.both_wrong + t.positive_flips
    new_wrong = t.both_wrong + t.negative_flips
    er_old = _div(old_wrong, n)
    er_new = _div(new_wrong, n)
    nfr = _div(t.negative_flips, n)
    rel_den = (1 - er_old) * er_new if n else 0.0
    return {
        "error_rate_old": er_old,
        "error_rate_new": er_new,
        "negative_flip_rate": nfr,
        "positive_flip_rate": _div(t.positive_flips, n),
        "negative_flip_impact": _div(t.negative_flips, new_wrong),
        "positive_flip_impact": _div(t.positive_flips, old_wrong),
        "relative_negative_flip_rate": _div(nfr, rel_den),
        "backward_trust_compatibility": _div(t.both_correct, old_right),
        "backward_error_compatibility": _div(t.both_wrong, new_wrong),
    }


def ref_error_rate(
    target: Sequence[int],
    preds: Sequence[Any],
    *,
    top_k: int = 1,
    sample_weight: Sequence[float] | None = None,
) -> float:
    """Weighted share of samples whose target is not among the ``top_k`` best classes."""
    wrong = total = 0.0
    for i, y in enumerate(target):
        w = 1.0 if sample_weight is None else float(sample_weight[i])
        total += w
        if int(y) not in _top(preds[i], top_k):
            wrong += w
    return _div(wrong, total)


def same(a: float, b: float, *, rel: float = 0.0) -> bool:
    """Equal (NaN equals NaN), within ``rel`` relative tolerance when given."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b if rel == 0 else math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


# -- seeded random inputs -----------------------------------------------------------------

KINDS = ("labels", "logits", "probs", "ranked")

# Old model has 4 classes, new model 5: old 2 is dropped, old 0 and 1 keep their index,
# old 3 becomes new 2, new classes 3 and 4 are added (their samples are excluded).
CLASS_MAP = {0: 0, 1: 1, 2: -1, 3: 2}
CLASS_MAP_SEQ = [0, 1, -1, 2]


@dataclass
class Case:
    """Random inputs as numpy arrays, plus the same as Python lists for the reference."""

    target: np.ndarray
    preds_old: np.ndarray
    preds_new: np.ndarray
    sample_weight: np.ndarray | None
    class_map: dict[int, int] | None
    top_k: int
    ranked: bool = False

    def kwargs(self) -> dict[str, Any]:
        return {
            "top_k": self.top_k,
            "sample_weight": self.sample_weight,
            "class_map": self.class_map,
            "ranked": self.ranked,
        }

    def ref(self) -> dict[str, float]:
        return ref_metrics(
            self.target.tolist(),
            self.preds_old.tolist(),
            self.preds_new.tolist(),
            top_k=self.top_k,
            sample_weight=None if self.sample_weight is None else self.sample_weight.tolist(),
            class_map=self.class_map,
        )


def _preds(
    rng: np.random.Generator, target: np.ndarray, kind: str, num_classes: int, skill: float
) -> np.ndarray:
    """Predictions of a model that is right about ``skill`` of the time (top-1)."""
    n = len(target)
    logits = rng.normal(size=(n, num_classes))
    right = rng.random(n) < skill
    hit = np.flatnonzero(right & (target < num_classes))
    logits[hit, target[hit]] += 3.0
    if kind == "labels":
        return logits.argmax(axis=1).astype(np.int64)
    if kind == "logits":
        return logits
    if kind == "probs":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if kind == "ranked":
        return np.argsort(-logits, axis=1, kind="stable")[:, :3].astype(np.int64)
    raise ValueError(kind)


def random_case(
    seed: int,
    *,
    kind: str = "logits",
    n: int = 200,
    top_k: int = 1,
    weighted: bool = False,
    class_map: bool = False,
    num_classes: int = 4,
) -> Case:
    """Seeded random two-model inputs; with ``class_map`` the old model has 4 classes, new 5."""
    rng = np.random.default_rng(seed)
    c_new = 5 if class_map else num_classes
    c_old = 4 if class_map else num_classes
    target = rng.integers(0, c_new, n)
    old_target = target.copy()
    if class_map:  # the old model aims at the old class of each target
        back = {v: k for k, v in CLASS_MAP.items() if v >= 0}
        old_target = np.array([back.get(int(y), c_old) for y in target])
    preds_old = _preds(rng, old_target, kind, c_old, 0.6)
    preds_new = _preds(rng, target, kind, c_new, 0.7)
    weight = rng.random(n) * 3 if weighted else None
    if weighted:
        weight[rng.random(n) < 0.1] = 0.0
    return Case(
        target=target.astype(np.int64),
        preds_old=preds_old,
        preds_new=preds_new,
        sample_weight=weight,
        class_map=dict(CLASS_MAP) if class_map else None,
        top_k=top_k,
        ranked=kind == "ranked",
    )
