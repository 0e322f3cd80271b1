"""FlipFrame tables on small hand-built cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from reference import random_case

from graceful.errors import InputError
from graceful.metrics import FlipFrame, flip_counts, model_update_metrics, wilson_interval
from graceful.metrics.frame import GROUP_COLUMNS

# cells: both right, NF (0 -> 1), both right, NF (1 -> 0), PF, NF (2 -> 0)
TARGET = [0, 0, 1, 1, 1, 2]
OLD = [0, 0, 1, 1, 0, 2]
NEW = [0, 1, 1, 0, 1, 0]
DEVICE = ["a", "b", "a", "b", "b", "a"]


def _frame(**kwargs):
    return FlipFrame(TARGET, OLD, NEW, groups={"device": DEVICE}, **kwargs)


def test_overall_and_counts():
    frame = _frame()
    assert frame.overall.to_dict() == model_update_metrics(TARGET, OLD, NEW)
    assert frame.counts == flip_counts(TARGET, OLD, NEW)
    np.testing.assert_array_equal(frame.cells(), [3, 2, 3, 2, 1, 2])
    assert frame.class_names == ["0", "1", "2"]
    assert frame.group_names == ["device"]
    assert "negative_flips=3" in repr(frame)


def test_by_class_exact():
    table = _frame().by_class
    assert list(table.columns) == list(GROUP_COLUMNS)
    assert table.index.tolist() == ["0", "1", "2"]
    assert table["n"].tolist() == [2, 3, 1]
    assert table["weight"].tolist() == [2.0, 3.0, 1.0]
    assert table["negative_flip_rate"].tolist() == [1 / 2, 1 / 3, 1.0]
    assert table["positive_flip_rate"].tolist() == [0.0, 1 / 3, 0.0]
    assert table["error_rate_old"].tolist() == [0.0, 1 / 3, 0.0]
    assert table["error_rate_new"].tolist() == [1 / 2, 1 / 3, 1.0]
    assert table["negative_flips"].tolist() == [1.0, 1.0, 1.0]
    assert table["positive_flips"].tolist() == [0.0, 1.0, 0.0]
    for (k, n), low, high in zip(
        [(1, 2), (1, 3), (1, 1)],
        table["negative_flip_rate_low"],
        table["negative_flip_rate_high"],
        strict=True,
    ):
        assert (low, high) == wilson_interval(k, n)


def test_by_group_exact():
    frame = _frame()
    table = frame.by_group
    assert table.index.names == ["column", "group"]
    assert table.index.tolist() == [("device", "a"), ("device", "b")]
    assert table["negative_flip_rate"].tolist() == [1 / 3, 2 / 3]
    assert table["positive_flip_rate"].tolist() == [0.0, 1 / 3]
    pd.testing.assert_frame_equal(frame.by("device"), table.loc["device"])
    with pytest.raises(InputError, match="'colour'"):
        frame.by("colour")


def test_groups_as_dataframe_equal_mapping():
    extra = pd.DataFrame({"device": DEVICE, "size": [1, 2, 1, 2, 1, 2]}, index=range(10, 16))
    frame = FlipFrame(TARGET, OLD, NEW, groups=extra)
    assert frame.group_names == ["device", "size"]
    pd.testing.assert_frame_equal(frame.by("device"), _frame().by("device"))
    assert frame.by("size").index.tolist() == ["1", "2"]
    assert frame.by("size")["negative_flips"].tolist() == [0.0, 3.0]
    assert frame.by_group.index.get_level_values("column").unique().tolist() == ["device", "size"]


def test_no_groups_gives_empty_by_group():
    frame = FlipFrame(TARGET, OLD, NEW)
    assert frame.by_group.empty
    assert list(frame.by_group.columns) == list(GROUP_COLUMNS)


def test_flip_matrix_exact():
    matrix = _frame().flip_matrix
    assert matrix.index.name == "old_prediction" and matrix.columns.name == "new_prediction"
    assert matrix.to_dict() == {
        "0": {"0": 0.0, "1": 1.0, "2": 1.0},
        "1": {"0": 1.0, "1": 0.0, "2": 0.0},
    }
    weighted = _frame(sample_weight=[1, 2, 1, 3, 1, 0.5]).flip_matrix
    assert weighted.loc["1", "0"] == 3.0 and weighted.loc["2", "0"] == 0.5
    assert FlipFrame([0, 1], [0, 1], [0, 1]).flip_matrix.empty


def test_flip_matrix_unmapped_old_class():
    # top-2: old right through its 2nd choice, while its 1st is a dropped class
    frame = FlipFrame([0, 0], [[1, 0], [0, 1]], [[1, 2], [0, 1]], top_k=2,
                      class_map={0: 0, 1: -1}, num_classes=3, ranked=True)  # fmt: skip
    assert frame.flip_matrix.to_dict() == {"1": {"(none)": 1.0}}


def test_class_names():
    frame = _frame(class_names=["cat", "dog", "bird"])
    assert frame.by_class.index.tolist() == ["cat", "dog", "bird"]
    assert frame.flip_matrix.columns.tolist() == ["cat", "dog"]
    with pytest.raises(InputError, match="`class_names`"):
        _frame(class_names=["cat", "dog"])
    names = ["cat", "dog", "bird"]
    frame = _frame(class_names=names)
    names.append("fish")
    assert frame.class_names == ["cat", "dog", "bird"]


def test_most_affected_ranked_by_lower_bound():
    frame = _frame()
    top = frame.most_affected(n=10)
    assert top.index.names == ["column", "group"]
    # every group with a negative flip: 3 classes + 2 devices
    assert len(top) == 5
    lows = top["negative_flip_rate_low"].tolist()
    assert lows == sorted(lows, reverse=True)
    expected_first = max(
        [("class", "0", 1, 2), ("class", "1", 1, 3), ("class", "2", 1, 1),
         ("device", "a", 1, 3), ("device", "b", 2, 3)],
        key=lambda g: wilson_interval(g[2], g[3])[0],
    )  # fmt: skip
    assert top.index[0] == expected_first[:2]
    assert len(frame.most_affected(n=2)) == 2
    assert set(frame.most_affected(min_samples=3).index) == {
        ("class", "1"),
        ("device", "a"),
        ("device", "b"),
    }
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="`n`"):
            frame.most_affected(n=bad)


def test_group_max_and_difference():
    frame = _frame()
    assert frame.group_max() == 1.0
    assert frame.difference() == 1.0 - 1 / 3
    assert frame.group_max("negative_flip_rate", "device") == 2 / 3
    assert frame.difference("negative_flip_rate", "device") == 1 / 3
    assert frame.group_max("error_rate_old") == 1 / 3
    assert frame.difference("positive_flip_rate", "device") == 1 / 3
    with pytest.raises(InputError, match="`metric`"):
        frame.group_max("backward_trust_compatibility")
    with pytest.raises(InputError, match="'nope'"):
        frame.difference(column="nope")


def test_tables_are_copies():
    frame = _frame()
    for getter in (
        lambda f: f.by_class,
        lambda f: f.by_group,
        lambda f: f.by("device"),
        lambda f: f.flip_matrix,
        lambda f: f.overall,
        lambda f: f.most_affected(),
    ):
        first = getter(frame)
        before = first.copy()
        first.iloc[0] = -99
        after = getter(frame)
        if isinstance(before, pd.Series):
            pd.testing.assert_series_equal(after, before)
        else:
            pd.testing.assert_frame_equal(after, before)
    cells = frame.cells()
    cells[:] = 0
    assert frame.cells().tolist() == [3, 2, 3, 2, 1, 2]
    frame.class_names.append("x")
    frame.group_names.append("x")
    assert frame.class_names == ["0", "1", "2"] and frame.group_names == ["device"]


def test_bad_groups():
    with pytest.raises(InputError, match="`device`"):
        FlipFrame(TARGET, OLD, NEW, groups={"device": DEVICE[:-1]})
    with pytest.raises(InputError, match="`device`"):
        FlipFrame(TARGET, OLD, NEW, groups={"device": [DEVICE]})
    with pytest.raises(InputError, match="`target`"):
        FlipFrame([], [], [])


def test_class_map_exclusion_in_counts():
    # old classes 0, 1; new 0, 1, 2 (added): target 2 is excluded
    frame = FlipFrame([0, 1, 2, 2, 1], [0, 1, 0, 1, 0], [0, 0, 2, 2, 1],
                      class_map={0: 0, 1: 1}, sample_weight=[1, 1, 2, 3, 1],
                      groups={"g": list("xxyyx")})  # fmt: skip
    assert (frame.counts.excluded, frame.counts.n_excluded) == (5.0, 2)
    assert frame.counts.n_total == 3
    assert frame.by_class.index.tolist() == ["0", "1"]  # class 2 had no compared sample
    assert frame.by("g").index.tolist() == ["x"]
    assert frame.cells().tolist() == [3, 2, 4, 4, 1]
    assert frame.overall["negative_flip_rate"] == 1 / 3


def test_weighted_tables_match_functions():
    case = random_case(9, kind="logits", weighted=True, n=300)
    groups = {"half": np.arange(300) < 120}
    frame = FlipFrame(case.target, case.preds_old, case.preds_new,
                      sample_weight=case.sample_weight, groups=groups)  # fmt: skip
    table = frame.by_class
    for cls, row in table.iterrows():
        mask = case.target == int(cls)
        m = model_update_metrics(
            case.target[mask], case.preds_old[mask], case.preds_new[mask],
            sample_weight=case.sample_weight[mask],
        )  # fmt: skip
        assert math.isclose(row["negative_flip_rate"], m["negative_flip_rate"], rel_tol=1e-12)
        assert math.isclose(row["error_rate_old"], m["error_rate_old"], rel_tol=1e-12)
        assert row["n"] == mask.sum()
    half = frame.by("half")
    assert half.index.tolist() == ["False", "True"]
    assert half["n"].tolist() == [180, 120]
