"""The one ranking rule (graceful._ranking): best score first, the lower class index on ties.

Tied scores go through every face that ranks classes: the torch and NumPy rankers, the
functional metrics, the Metric classes, `compare_files` on CSV and Parquet files, and the
`graceful compare` command line. All must agree with a pure-Python reference and with each
other. Before the rule, the metrics used `torch.topk` (arbitrary order among ties) and the
file reader a stable sort, so the same data gave different numbers.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from graceful._ranking import in_top_k, rank, rank_columns, top1_columns
from graceful.cli.app import app
from graceful.losses.functional import _old_right
from graceful.metrics import METRICS, ModelUpdateMetrics, error_rate, model_update_metrics
from graceful.release import compare_files


def reference_rank(row: list[float], k: int) -> list[int]:
    """The rule from its definition: sort by (score descending, class ascending)."""
    return sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]


def tied_scores(rng: np.random.Generator, n: int, classes: int, levels: int = 3) -> np.ndarray:
    """Scores drawn from a few integer levels, so most rows hold ties (exact in any format)."""
    return rng.integers(0, levels, (n, classes)).astype(np.float32)


SHAPES = [(1, 1), (40, 2), (60, 5), (50, 16), (50, 17), (50, 33), (40, 65), (30, 200)]


@pytest.mark.parametrize(("n", "classes"), SHAPES)
def test_rank_follows_the_rule(n, classes):
    rng = np.random.default_rng(classes)
    for scores in (tied_scores(rng, n, classes), rng.standard_normal((n, classes))):
        for k in sorted({1, 2, min(5, classes), classes}):
            want = [reference_rank(row, k) for row in scores.tolist()]
            got = rank(torch.from_numpy(scores), k)
            assert got.dtype == torch.int64
            assert got.tolist() == want, (classes, k)
            assert rank_columns(np.ascontiguousarray(scores.T), k).tolist() == want, (classes, k)


@pytest.mark.parametrize(("n", "classes"), SHAPES)
def test_in_top_k_is_membership_in_rank(n, classes):
    rng = np.random.default_rng(100 + classes)
    scores = torch.from_numpy(tied_scores(rng, n, classes, levels=2))
    target = torch.from_numpy(rng.integers(0, classes, n))
    for k in sorted({1, 2, classes}):
        want = (rank(scores, k) == target.unsqueeze(1)).any(dim=1)
        assert torch.equal(in_top_k(scores, target, k), want)
    outside = torch.tensor([-1, classes] * (n // 2 + 1))[:n]
    assert not in_top_k(scores, outside, min(2, classes)).any()


@pytest.mark.parametrize("classes", [1, 3, 16, 17, 40])
def test_top1_columns_is_the_first_maximum(classes):
    rng = np.random.default_rng(7)
    scores = tied_scores(rng, 300, classes, levels=2)
    index, best = top1_columns(np.ascontiguousarray(scores.T))
    assert index.tolist() == [reference_rank(row, 1)[0] for row in scores.tolist()]
    assert best.tolist() == scores.max(axis=1).tolist()
    assert index.tolist() == scores.argmax(axis=1).tolist()


def test_signed_zeros_are_equal_scores():
    scores = np.array([[-0.0, 0.0, -1.0], [0.0, -0.0, -1.0]], dtype=np.float32)
    want = [[0, 1], [0, 1]]
    assert rank(torch.from_numpy(scores), 2).tolist() == want
    assert rank_columns(np.ascontiguousarray(scores.T), 2).tolist() == want
    assert top1_columns(np.ascontiguousarray(scores.T))[0].tolist() == [0, 0]


def test_losses_use_the_rule():
    old = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    assert _old_right(old, torch.tensor([0, 2])).tolist() == [True, False]


# -- every face of the metrics on the same tied data --------------------------------------------


def _write(path, target, scores):
    frame = pd.DataFrame({"id": np.arange(len(target)), "label": target})
    for c in range(scores.shape[1]):
        frame[f"logit_{c}"] = scores[:, c]
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def _as_float(value):
    return math.nan if value is None else float(value)


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return set(a) == set(b) and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


def every_face(tmp_path, target, old, new, top_k):
    """The nine metrics as each face computes them, by face name."""
    faces = {"function": model_update_metrics(target, old, new, top_k=top_k)}
    metric = ModelUpdateMetrics(top_k=top_k)
    for rows in np.array_split(np.arange(len(target)), 3):  # in batches
        metric.update(torch.from_numpy(target[rows]), torch.from_numpy(old[rows]),
                      torch.from_numpy(new[rows]))  # fmt: skip
    faces["Metric class"] = {k: float(v) for k, v in metric.compute().items()}
    for suffix in (".csv", ".parquet"):
        paths = tmp_path / f"old{suffix}", tmp_path / f"new{suffix}"
        _write(paths[0], target, old)
        _write(paths[1], target, new)
        faces[f"compare_files {suffix}"] = compare_files(
            *paths, top_k=top_k, scores="logits"
        ).metrics
    out = tmp_path / "cli"
    args = [
        "compare",
        *map(str, paths),
        "--top-k",
        str(top_k),
        "--out",
        str(out),
        "--no-html",
        "--scores",
        "logits",
    ]
    result = CliRunner().invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    faces["graceful compare"] = {
        name: _as_float(entry["value"]) for name, entry in summary["metrics"].items()
    }
    return faces


@pytest.mark.filterwarnings("ignore::graceful.errors.UndefinedMetricWarning")
def test_the_issue_example_agrees_everywhere(tmp_path):
    # 50 samples of class 3 among 40; the old model scores classes 3, 17 and 30 equally,
    # the new one class 3 alone. Top-2 by the rule: old [3, 17], new [3, 0]: both right.
    n, classes = 50, 40
    target = np.full(n, 3)
    old = np.zeros((n, classes), dtype=np.float32)
    old[:, [3, 17, 30]] = 1.0
    new = np.zeros((n, classes), dtype=np.float32)
    new[:, 3] = 1.0
    faces = every_face(tmp_path, target, old, new, top_k=2)
    for name, values in faces.items():
        assert set(values) == set(METRICS), name
        assert values["error_rate_old"] == 0.0, name
        assert values["positive_flip_rate"] == 0.0, name
        assert values["negative_flip_rate"] == 0.0, name
    assert error_rate(target, old, top_k=2) == 0.0
    assert error_rate(target, old, top_k=1) == 0.0  # argmax: the first maximum is class 3


@pytest.mark.filterwarnings("ignore::graceful.errors.UndefinedMetricWarning")
@pytest.mark.parametrize(("classes", "top_k"), [(4, 1), (6, 3), (80, 1), (80, 5)])
def test_random_ties_agree_everywhere(tmp_path, classes, top_k):
    rng = np.random.default_rng(classes * 10 + top_k)
    n = 120
    target = rng.integers(0, classes, n)
    old = tied_scores(rng, n, classes, levels=3)
    new = tied_scores(rng, n, classes, levels=2)
    faces = every_face(tmp_path, target, old, new, top_k=top_k)
    # and the reference: right when the target is among the reference top-k
    old_right = [t in reference_rank(r, top_k) for t, r in zip(target, old.tolist(), strict=True)]
    new_right = [t in reference_rank(r, top_k) for t, r in zip(target, new.tolist(), strict=True)]
    want_er_old = 1 - sum(old_right) / n
    nf = sum(o and not w for o, w in zip(old_right, new_right, strict=True))
    for name, values in faces.items():
        assert _same(values, faces["function"]), name
        assert values["error_rate_old"] == pytest.approx(want_er_old, abs=1e-15), name
        assert values["negative_flip_rate"] == nf / n, name
    assert 0 < faces["function"]["negative_flip_rate"] < 1  # a case with flips both ways
