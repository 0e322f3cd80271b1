"""A realistic comparison summary for the report tests, built from seeded synthetic predictions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from graceful.release import Gate

HOSTILE_IDS = ["<script>alert(1)</script>", '"</script><img src=x onerror=alert(2)>']
HOSTILE_GROUP = "<b>bold</b> & $x$"
LONG = 20_000  # characters of each long value of make_compared_summary(long_values=True)


def _wilson(k: float, n: float, z: float = 1.959963984540054) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _metric(num: float, den: float, direction: str) -> dict[str, Any]:
    value = num / den if den else None
    low, high = _wilson(num, den)
    return {
        "value": value,
        "low": low,
        "high": high,
        "numerator": float(num),
        "denominator": float(den),
        "direction": direction,
    }


def _rows(mask_groups: dict[str, np.ndarray], y, old, new) -> list[dict[str, Any]]:
    rows = []
    for name, mask in mask_groups.items():
        n = int(mask.sum())
        old_ok, new_ok = old[mask] == y[mask], new[mask] == y[mask]
        nf = int((old_ok & ~new_ok).sum())
        pf = int((~old_ok & new_ok).sum())
        low, high = _wilson(nf, n)
        rows.append(
            {
                "group": name,
                "n": n,
                "error_rate_old": float((~old_ok).mean()) if n else None,
                "error_rate_new": float((~new_ok).mean()) if n else None,
                "negative_flip_rate": nf / n if n else None,
                "negative_flip_rate_low": low,
                "negative_flip_rate_high": high,
                "positive_flip_rate": pf / n if n else None,
                "negative_flips": nf,
                "positive_flips": pf,
            }
        )
    return rows


def make_summary(*, n: int = 1797, seed: int = 0, hostile: bool = True) -> dict[str, Any]:
    """Build a summary with the schema of the lead's summary code, from seeded predictions."""
    rng = np.random.default_rng(seed)
    classes = [str(c) for c in range(10)]
    y = rng.integers(0, 10, size=n)
    hard = rng.random(n) < 0.07
    wrong = (y + rng.integers(1, 10, size=n)) % 10
    old = np.where((hard & (rng.random(n) < 0.85)) | (rng.random(n) < 0.012), wrong, y)
    new = np.where((hard & (rng.random(n) < 0.6)) | (rng.random(n) < 0.01), wrong, y)
    # make class 8 regress more, towards 1
    eights = (y == 8) & (old == 8) & (rng.random(n) < 0.06)
    new = np.where(eights, 1, new)
    old_ok, new_ok = old == y, new == y
    nf_mask, pf_mask = old_ok & ~new_ok, ~old_ok & new_ok
    nf, pf = int(nf_mask.sum()), int(pf_mask.sum())
    both_ok, both_wrong = int((old_ok & new_ok).sum()), int((~old_ok & ~new_ok).sum())
    err_old, err_new = int((~old_ok).sum()), int((~new_ok).sum())
    ids = [str(i) for i in range(n)]
    if hostile:
        ids[int(np.flatnonzero(nf_mask)[0])] = HOSTILE_IDS[0]
        ids[int(np.flatnonzero(pf_mask)[0])] = HOSTILE_IDS[1]

    by_class = _rows({c: y == int(c) for c in classes}, y, old, new)
    ink = rng.choice(["thin", "thick", HOSTILE_GROUP if hostile else "bold"], size=n)
    by_ink = _rows({g: ink == g for g in sorted(set(ink.tolist()))}, y, old, new)
    most = sorted(
        [{"column": "class", **r} for r in by_class] + [{"column": "ink", **r} for r in by_ink],
        key=lambda r: -(r["negative_flip_rate"] or 0),
    )[:5]

    flip_rows = sorted({str(v) for v in old[nf_mask]}, key=int)
    flip_cols = sorted({str(v) for v in new[nf_mask]}, key=int)
    counts = [
        [int(((old == int(r)) & (new == int(c)) & nf_mask).sum()) for c in flip_cols]
        for r in flip_rows
    ]

    conf_old = rng.uniform(0.4, 1.0, size=n)
    conf_new = rng.uniform(0.4, 1.0, size=n)
    examples = []
    for i in np.flatnonzero(nf_mask | pf_mask)[:60]:
        examples.append(
            {
                "id": ids[i],
                "label": str(y[i]),
                "old_pred": str(old[i]),
                "new_pred": str(new[i]),
                "old_confidence": round(float(conf_old[i]), 4) if i % 7 else None,
                "new_confidence": round(float(conf_new[i]), 4),
                "kind": "negative" if nf_mask[i] else "positive",
            }
        )

    expected_nfr = (1 - err_old / n) * (err_new / n)
    rnfr = (nf / n) / expected_nfr if expected_nfr else None
    metrics = {
        "error_rate_old": _metric(err_old, n, "lower"),
        "error_rate_new": _metric(err_new, n, "lower"),
        "negative_flip_rate": _metric(nf, n, "lower"),
        "positive_flip_rate": _metric(pf, n, "higher"),
        "negative_flip_impact": _metric(nf, err_new, "lower"),
        "positive_flip_impact": _metric(pf, err_old, "higher"),
        "relative_negative_flip_rate": {
            "value": rnfr,
            "low": None if rnfr is None else rnfr * 0.8,
            "high": None if rnfr is None else rnfr * 1.25,
            "numerator": None,
            "denominator": None,
            "direction": "lower",
        },
        "backward_trust_compatibility": _metric(both_ok, n - err_old, "higher"),
        "backward_error_compatibility": _metric(both_wrong, err_new, "higher"),
    }
    return {
        "graceful_version": "0.1.0",
        "title": "old.parquet -> new.parquet",
        "inputs": {
            "old": "runs/<old>/preds.parquet",
            "new": "runs/new/preds.parquet",
            "labels": None,
            "id_source": "id",
            "n_rows": n,
            "n_compared": n,
            "n_excluded": 0,
            "top_k": 1,
            "weighted": False,
        },
        "confidence_level": 0.95,
        "interval_method": "wilson",
        "metrics": metrics,
        "counts": {
            "both_correct": both_ok,
            "negative_flips": nf,
            "positive_flips": pf,
            "both_wrong": both_wrong,
            "excluded": 0,
        },
        "mcnemar": {
            "negative_flips": nf,
            "positive_flips": pf,
            "p_value": 0.005,
            "alpha": 0.05,
            "verdict": "better",
        },
        "class_names": classes,
        "by_class": by_class,
        "by_group": {"ink": by_ink},
        "most_affected": most,
        "flip_matrix": {"rows": flip_rows, "columns": flip_cols, "counts": counts},
        "flipped_examples": {
            "total_negative": nf,
            "total_positive": pf,
            "shown": len(examples),
            "rows": examples,
        },
        "gate": Gate(max_nfr=0.01).evaluate({"negative_flip_rate": nf / n}).as_dict(),
    }


def make_compared_summary(
    *,
    classes: int = 20,
    n: int = 6000,
    seed: int = 0,
    long_values: bool = False,
    max_examples: int = 500,
) -> dict[str, Any]:
    """The summary that `graceful compare` writes, from the library itself on seeded
    predictions: ``classes`` classes, about 1,600 flips (so ``max_examples`` rows), one group
    column and every gate bar. ``long_values`` makes one of each kind of user value
    ``LONG`` characters long: the id of the first listed example, a class name, a group
    value, the group column's name, and the input paths."""
    from graceful.io.predictions import ComparisonInputs
    from graceful.release import compare

    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)

    def predictions(error: float) -> np.ndarray:
        wrong = rng.random(n) < error
        return np.where(wrong, (y + rng.integers(1, classes, n)) % classes, y)

    old, new = predictions(0.15), predictions(0.18)
    names = [f"class-{i}" for i in range(classes)]
    ids = np.asarray([f"sample-{i}" for i in range(n)], dtype=object)
    new_confidence = rng.uniform(0.3, 0.99, n).astype(np.float32)
    site = np.asarray(rng.choice(["north", "south", "east"], n), dtype=object)
    column = "site"
    paths = {"old": "runs/old/preds.parquet", "new": "runs/new/preds.parquet"}
    if long_values:
        first = int(np.flatnonzero((old == y) & (new != y))[0])
        ids[first] = "i" * LONG
        new_confidence[first] = 1.0  # the most confident negative flip: listed first
        names[3] = "c" * LONG
        site[site == "east"] = "e" * LONG
        column = "g" * LONG
        paths = {key: "/" + "p" * LONG + f"/{key}.parquet" for key in paths}
    inputs = ComparisonInputs(
        ids=ids,
        id_source="id",
        target=y,
        old_topk=old[:, None],
        new_topk=new[:, None],
        old_confidence=rng.uniform(0.3, 0.99, n).astype(np.float32),
        new_confidence=new_confidence,
        class_names=names,
        old_class_names=names,
        class_map=None,
        groups={column: site},
        n_rows_old=n,
        n_rows_new=n,
    )
    gate = Gate(max_nfr=0.01, max_rel_nfr=1.5, min_btc=0.8, fail_on_significant_regression=True)
    comparison = compare(inputs, n_resamples=200, gate=gate)
    return comparison.summary(max_examples=max_examples, paths=paths)


@pytest.fixture
def summary() -> dict[str, Any]:
    """A realistic summary (1797 samples, 10 classes, one group column, a failed gate)."""
    return make_summary()


@pytest.fixture
def summary_factory() -> Callable[..., dict[str, Any]]:
    """The summary builder, for tests that need several or a variant."""
    return make_summary


@pytest.fixture(scope="session")
def large_summary() -> dict[str, Any]:
    """A 20-class summary from the library with all 500 default flipped examples listed.
    Shared by the tests that read it: copy it before changing it."""
    return make_compared_summary()


@pytest.fixture(scope="session")
def long_summary() -> dict[str, Any]:
    """As ``large_summary``, with a 20,000-character value of every kind (see
    :func:`make_compared_summary`). Copy it before changing it."""
    return make_compared_summary(long_values=True)


@pytest.fixture
def hostile() -> dict[str, Any]:
    """The hostile values that the summary fixture puts in ids and group names."""
    return {"ids": list(HOSTILE_IDS), "group": HOSTILE_GROUP}
