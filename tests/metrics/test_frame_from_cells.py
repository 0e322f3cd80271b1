"""FlipFrame.from_cells and counts_from_cells: the NumPy path equals the torch path exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference import random_case

from graceful.errors import InputError
from graceful.metrics import FlipFrame
from graceful.metrics._counts import counts_from_cells


def _torch_frame(case, groups):
    return FlipFrame(
        case.target,
        case.preds_old,
        case.preds_new,
        groups=groups,
        top_k=case.top_k,
        sample_weight=case.sample_weight,
        class_map=case.class_map,
        ranked=case.ranked,
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("kind", "top_k", "weighted", "class_map"),
    [
        ("labels", 1, False, False),
        ("logits", 2, True, False),
        ("logits", 1, False, True),
        ("ranked", 2, True, True),
    ],
)
def test_from_cells_equals_constructor(seed, kind, top_k, weighted, class_map):
    case = random_case(seed, kind=kind, top_k=top_k, weighted=weighted, class_map=class_map)
    n = len(case.target)
    groups = {"g": np.random.default_rng(seed).choice(["a", "b", "c"], n)}
    ref = _torch_frame(case, groups)
    frame = FlipFrame.from_cells(
        ref.cells(),
        case.target,
        ref._top1_old,
        ref._top1_new,
        groups=groups,
        sample_weight=case.sample_weight,
    )
    assert frame.counts == ref.counts
    pd.testing.assert_series_equal(frame.overall, ref.overall)
    pd.testing.assert_frame_equal(frame.by_class, ref.by_class)
    pd.testing.assert_frame_equal(frame.by_group, ref.by_group)
    pd.testing.assert_frame_equal(frame.flip_matrix, ref.flip_matrix)
    np.testing.assert_array_equal(frame.cells(), ref.cells())


@pytest.mark.parametrize("weighted", [False, True])
def test_counts_from_cells_equals_flip_state(weighted):
    case = random_case(3, kind="logits", weighted=weighted, class_map=True)
    ref = _torch_frame(case, None)
    assert counts_from_cells(ref.cells(), case.sample_weight) == ref.counts


def test_counts_add_without_torch():
    a = counts_from_cells(np.array([0, 1, 2, 3, 4]))
    b = counts_from_cells(np.array([3, 3, 2]))
    assert a + b == counts_from_cells(np.array([0, 1, 2, 3, 4, 3, 3, 2]))


def _good():
    return {
        "cells": np.array([3, 2, 1, 0]),
        "target": np.array([0, 1, 1, 0]),
        "top1_old": np.array([0, 1, 0, 1]),
        "top1_new": np.array([0, 0, 1, 1]),
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("cells", np.array([3, 2, 1, 5]), "cell indices 0..4, but got 5"),
        ("cells", np.array([3, 2, 1, -1]), "`cells` to hold values >= 0"),
        ("target", np.array([0, 1, 1]), "`target` to have 4 values like `cells`, but got 3"),
        ("top1_old", np.array([0, 1, 0, -2]), "`top1_old` to hold values >= -1"),
        ("top1_new", np.array([0.0, 1, 0, 1]), "`top1_new` to be a 1-D integer array"),
        ("target", np.zeros((4, 1), dtype=int), "`target` to be a 1-D integer array"),
    ],
)
def test_from_cells_bad_input(name, value, message):
    args = _good()
    args[name] = value
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FlipFrame.from_cells(**args)


def test_from_cells_bad_weight_and_empty():
    with pytest.raises(InputError, match=r"`sample_weight` to have shape \(4,\)"):
        FlipFrame.from_cells(**_good(), sample_weight=np.ones(3))
    with pytest.raises(InputError, match="finite non-negative"):
        FlipFrame.from_cells(**_good(), sample_weight=np.array([1.0, -1, 1, 1]))
    empty = np.array([], dtype=np.int64)
    with pytest.raises(InputError, match="at least one sample"):
        FlipFrame.from_cells(empty, empty, empty, empty)
    with pytest.raises(InputError, match=r"cell indices 0\.\.4"):
        counts_from_cells(np.array([0, 7]))
