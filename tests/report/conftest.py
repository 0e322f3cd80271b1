"""A realistic comparison summary for the report tests, built from seeded synthetic predictions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

HOSTILE_IDS = ["<script>alert(1)</script>", '"</script><img src=x onerror=alert(2)>']
HOSTILE_GROUP = "<b>bold</b> & $x$"


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
        "gate": {
            "passed": False,
            "checks": [
                {
                    "name": "max_nfr",
                    "threshold": 0.01,
                    "value": nf / n,
                    "passed": nf / n <= 0.01,
                    "description": "negative flip rate <= 1%",
                }
            ],
        },
    }


@pytest.fixture
def summary() -> dict[str, Any]:
    """A realistic summary (1797 samples, 10 classes, one group column, a failed gate)."""
    return make_summary()


@pytest.fixture
def summary_factory() -> Callable[..., dict[str, Any]]:
    """The summary builder, for tests that need several or a variant."""
    return make_summary


@pytest.fixture
def hostile() -> dict[str, Any]:
    """The hostile values that the summary fixture puts in ids and group names."""
    return {"ids": list(HOSTILE_IDS), "group": HOSTILE_GROUP}


# (method, label, n_models, (ER_old, ER_new, NFR) means in %, their stds in %)
_BENCH_METHODS: dict[str, list[tuple[str, str, int, tuple[float, ...], tuple[float, ...]]]] = {
    "animal_mnist": [
        ("no_treatment", "No treatment", 1, (8.70, 6.20, 3.50), (0.40, 0.30, 0.20)),
        ("kd", "KD", 1, (8.70, 6.00, 3.00), (0.40, 0.25, 0.20)),
        ("fd_kl", "FD-KL", 1, (8.70, 6.40, 2.20), (0.40, 0.30, 0.15)),
        ("fd_lm", "FD-LM", 1, (8.70, 6.50, 1.90), (0.40, 0.35, 0.10)),
        ("ldi", "LDI", 1, (8.70, 6.60, 2.40), (0.40, 0.30, 0.20)),
        ("elodi", "ELODI (ensemble teacher)", 1, (8.70, 5.90, 1.60), (0.40, 0.20, 0.10)),
        ("paragon", "Ensemble paragon", 5, (8.70, 5.20, 1.20), (0.40, 0.15, 0.05)),
    ],
    "rotten_tomatoes": [
        ("no_treatment", "No treatment", 1, (24.1, 21.3, 7.80), (0.60, 0.50, 0.40)),
        ("kd", "KD", 1, (24.1, 21.0, 6.90), (0.60, 0.40, 0.30)),
        ("fd_kl", "FD-KL", 1, (24.1, 21.6, 5.60), (0.60, 0.50, 0.30)),
        ("fd_lm", "FD-LM", 1, (24.1, 21.8, 5.10), (0.60, 0.60, 0.20)),
        ("ldi", "LDI", 1, (24.1, 22.0, 6.00), (0.60, 0.50, 0.30)),
        ("elodi", "ELODI (ensemble teacher)", 1, (24.1, 20.9, 4.70), (0.60, 0.40, 0.20)),
        ("paragon", "Ensemble paragon", 5, (24.1, 19.8, 3.90), (0.60, 0.30, 0.20)),
    ],
}


def _stat(mean: float, std: float) -> dict[str, Any]:
    # Three seeds at mean - std, mean, mean + std have exactly this mean and sample std.
    return {"mean": mean, "std": std, "values": [mean - std, mean, mean + std]}


def _bench_rows(setting: str) -> list[dict[str, Any]]:
    rows = []
    for method, label, n_models, means, stds in _BENCH_METHODS[setting]:
        er_old, er_new, nfr = (m / 100 for m in means)
        s_old, s_new, s_nfr = (s / 100 for s in stds)
        rel = nfr / ((1 - er_old) * er_new)
        rows.append(
            {
                "method": method,
                "label": label,
                "n_models": n_models,
                "error_rate_old": _stat(er_old, s_old),
                "error_rate_new": _stat(er_new, s_new),
                "negative_flip_rate": _stat(nfr, s_nfr),
                "relative_negative_flip_rate": _stat(rel, rel * s_nfr / nfr),
            }
        )
    return rows


def _sweep_point(parameter: str, value: float, method: str, er: float, nfr: float) -> dict:
    return {
        "parameter": parameter,
        "value": value,
        "method": method,
        "error_rate_new": {"mean": er / 100, "std": 0.002},
        "negative_flip_rate": {"mean": nfr / 100, "std": 0.001},
    }


def make_bench_results() -> dict[str, Any]:
    """Results of ``graceful bench pct`` on two settings, three seeds each."""
    sweep = [
        _sweep_point("beta", beta, "fd_lm", er, nfr)
        for beta, er, nfr in (
            (0.5, 6.25, 2.90),
            (1.0, 6.30, 2.40),
            (2.0, 6.40, 2.10),
            (5.0, 6.50, 1.90),
            (10.0, 6.90, 1.70),
        )
    ] + [
        _sweep_point("lambda", lam, "fd_kl", er, nfr)
        for lam, er, nfr in (
            (0.1, 6.15, 3.20),
            (0.3, 6.25, 2.70),
            (1.0, 6.40, 2.20),
            (3.0, 6.85, 2.00),
        )
    ]
    return {
        "benchmark": "pct",
        "title": "Positive-congruent training",
        "graceful_version": "0.1.0",
        "created": "2026-11-24T18:00:00Z",
        "machine": {
            "cpus": 2,
            "torch": "2.13.0+cpu",
            "platform": "Linux-6.8.0-x86_64-with-glibc2.39",
        },
        "settings": [
            {
                "name": "animal_mnist",
                "title": "Animal-MNIST: CNN w=8 -> CNN w=16",
                "description": (
                    "Digits relabelled as animals; the old model is a CNN of width 8 "
                    "trained on 5 classes, the new one a CNN of width 16 trained on all 10."
                ),
                "seeds": [0, 1, 2],
                "seconds": 512.3,
                "rows": _bench_rows("animal_mnist"),
                "targets": [
                    {
                        "name": "FD-LM NFR <= 0.6 x no-treatment NFR",
                        "value": 0.543,
                        "threshold": 0.6,
                        "passed": True,
                        "detail": "NFR 1.9% vs 3.5%",
                    },
                    {
                        "name": "FD-LM ER_new <= no-treatment ER_new + 0.5 points",
                        "value": 0.003,
                        "threshold": 0.005,
                        "passed": True,
                        "detail": "6.5% vs 6.2%",
                    },
                ],
                "epoch_time": {
                    "plain_s": {"mean": 11.8, "std": 0.3},
                    "fd_cached_s": {"mean": 12.3, "std": 0.4},
                    "ratio": {"mean": 1.04, "std": 0.02},
                },
                "sweep": sweep,
                "predictions": "benchmarks/results/pct/animal_mnist",
            },
            {
                "name": "rotten_tomatoes",
                "title": "Rotten Tomatoes: bag-of-words MLP -> frozen-encoder MLP",
                "description": "Movie-review sentiment, 2 classes.",
                "seeds": [0, 1, 2],
                "seconds": 3725.0,
                "rows": _bench_rows("rotten_tomatoes"),
                "targets": [
                    {
                        "name": "FD-LM NFR <= 0.6 x no-treatment NFR",
                        "value": 0.654,
                        "threshold": 0.6,
                        "passed": False,
                        "detail": "NFR 5.1% vs 7.8%",
                    }
                ],
                "epoch_time": {
                    "plain_s": {"mean": 3.1, "std": 0.1},
                    "fd_cached_s": {"mean": 3.3, "std": 0.1},
                    "ratio": {"mean": 1.06, "std": 0.03},
                },
                "predictions": None,
            },
        ],
    }


@pytest.fixture
def bench_results() -> dict[str, Any]:
    """Realistic results of ``graceful bench pct`` (two settings, seven methods, a sweep)."""
    return make_bench_results()
