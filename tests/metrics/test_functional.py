"""The functional metrics against the pure-Python reference, plus identities and bad input."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
from reference import CLASS_MAP, CLASS_MAP_SEQ, KINDS, random_case, ref_error_rate, same

from graceful.errors import InputError, UndefinedMetricWarning
from graceful.metrics import (
    METRICS,
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

FUNCTIONS: dict[str, Callable[..., float]] = {
    "negative_flip_rate": negative_flip_rate,
    "positive_flip_rate": positive_flip_rate,
    "negative_flip_impact": negative_flip_impact,
    "positive_flip_impact": positive_flip_impact,
    "relative_negative_flip_rate": relative_negative_flip_rate,
    "backward_trust_compatibility": backward_trust_compatibility,
    "backward_error_compatibility": backward_error_compatibility,
}

# relative NFR is computed as nf * N / (old_right * new_wrong) by the library and as
# (nf / N) / ((1 - ER_old) * ER_new) by the reference: the same number up to rounding.
REL = {"relative_negative_flip_rate": 1e-12}


def _check_against_reference(got: dict[str, float], want: dict[str, float], rel: float) -> None:
    assert set(got) == set(want) == set(METRICS)
    for name in want:
        tol = max(rel, REL.get(name, 0.0))
        assert same(got[name], want[name], rel=tol), (name, got[name], want[name])


CASES = [
    (kind, top_k, weighted, class_map)
    for kind in KINDS
    for top_k in ((1,) if kind == "labels" else (1, 2, 3))
    for weighted in (False, True)
    for class_map in (False, True)
]


@pytest.mark.parametrize(("kind", "top_k", "weighted", "class_map"), CASES)
def test_every_metric_matches_reference(kind, top_k, weighted, class_map):
    case = random_case(len(CASES) * top_k + 7, kind=kind, top_k=top_k, weighted=weighted,
                       class_map=class_map)  # fmt: skip
    want = case.ref()
    args = (case.target, case.preds_old, case.preds_new)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # realistic data: nothing is undefined
        got = model_update_metrics(*args, **case.kwargs())
        # unweighted counts are integers, so the plain ratios are bit-identical
        _check_against_reference(got, want, rel=1e-12 if weighted else 0.0)
        for name, fn in FUNCTIONS.items():
            assert fn(*args, **case.kwargs()) == got[name]
    if class_map:
        counts = flip_counts(*args, **case.kwargs())
        assert counts.n_excluded == int(np.isin(case.target, [3, 4]).sum()) > 0


def test_reference_case_is_not_trivial():
    case = random_case(1, kind="logits", class_map=True)
    ref = case.ref()
    assert 0 < ref["negative_flip_rate"] < ref["error_rate_new"] < 1
    assert 0 < ref["backward_trust_compatibility"] < 1


def test_hand_computed_example():
    # cells: both right, negative flip, positive flip, both wrong, negative flip
    target = [0, 1, 2, 2, 1]
    old = [0, 1, 0, 1, 1]
    new = [0, 2, 2, 0, 0]
    m = model_update_metrics(target, old, new)
    assert m == {
        "error_rate_old": 2 / 5,
        "error_rate_new": 3 / 5,
        "negative_flip_rate": 2 / 5,
        "positive_flip_rate": 1 / 5,
        "negative_flip_impact": 2 / 3,
        "positive_flip_impact": 1 / 2,
        "relative_negative_flip_rate": 2 * 5 / (3 * 3),
        "backward_trust_compatibility": 1 / 3,
        "backward_error_compatibility": 1 / 3,
    }
    c = flip_counts(target, old, new)
    assert (c.both_correct, c.negative_flips, c.positive_flips, c.both_wrong) == (1, 2, 1, 1)
    assert (c.n_both_correct, c.n_negative_flips, c.n_positive_flips, c.n_both_wrong) == (
        1,
        2,
        1,
        1,
    )
    assert c.excluded == 0 and c.n_excluded == 0


def test_weights_hand_computed():
    target = [0, 1, 2, 2]
    old = [0, 1, 1, 2]  # right, right, wrong, right
    new = [0, 2, 2, 1]  # right, wrong, right, wrong
    w = [1.0, 2.0, 3.0, 4.0]
    c = flip_counts(target, old, new, sample_weight=w)
    assert (c.both_correct, c.negative_flips, c.positive_flips, c.both_wrong) == (1, 6, 3, 0)
    assert (c.n_both_correct, c.n_negative_flips, c.n_positive_flips) == (1, 2, 1)
    assert (c.sq_both_correct, c.sq_negative_flips, c.sq_positive_flips) == (1, 20, 9)
    assert negative_flip_rate(target, old, new, sample_weight=w) == 6 / 10
    # zero weight removes a sample exactly
    assert negative_flip_rate(target, old, new, sample_weight=[1, 0, 1, 1]) == 1 / 3
    assert negative_flip_rate(target[:1] + target[2:], old[:1] + old[2:], new[:1] + new[2:]) == (
        1 / 3
    )


def test_top_k_hand_computed():
    target = [0, 1, 2]
    old = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]  # ranking 0 > 1 > 2
    new = [[0.1, 0.2, 0.7], [0.1, 0.2, 0.7], [0.1, 0.2, 0.7]]  # ranking 2 > 1 > 0
    assert flip_counts(target, old, new, top_k=1).negative_flips == 1  # sample 0
    c2 = flip_counts(target, old, new, top_k=2)
    assert (c2.negative_flips, c2.positive_flips, c2.both_correct) == (1, 1, 1)
    c3 = flip_counts(target, old, new, top_k=3)
    assert c3.both_correct == 3
    ranked_old = [[0, 1], [0, 1], [0, 1]]
    ranked_new = [[2, 1], [2, 1], [2, 1]]
    assert flip_counts(target, ranked_old, ranked_new, top_k=2, ranked=True) == c2


def test_class_map_hand_computed():
    # old classes: 0 cat, 1 dog, 2 fox (dropped); new: 0 dog, 1 cat, 2 bird (added)
    class_map = {0: 1, 1: 0, 2: -1}
    target = [1, 0, 2, 1, 0]
    old = [0, 1, 0, 2, 0]  # cat right, dog right, (bird excluded), fox never right, cat wrong
    new = [1, 1, 2, 1, 0]
    c = flip_counts(target, old, new, class_map=class_map)
    assert (c.both_correct, c.negative_flips, c.positive_flips, c.both_wrong) == (1, 1, 2, 0)
    assert (c.excluded, c.n_excluded) == (1.0, 1)
    for form in ([1, 0, -1], np.array([1, 0, -1]), torch.tensor([1, 0, -1]), (1, 0, -1)):
        assert flip_counts(target, old, new, class_map=form) == c
    # an old class missing from a mapping is unmapped: never right
    assert flip_counts(target, old, new, class_map={0: 1, 1: 0}) == c
    # identity map equals no map
    assert flip_counts([0, 1], [0, 1], [1, 1], class_map=[0, 1]) == flip_counts(
        [0, 1], [0, 1], [1, 1]
    )


def test_class_map_merges_and_scores():
    case = random_case(3, kind="probs", class_map=True)
    args = (case.target, case.preds_old, case.preds_new)
    assert model_update_metrics(*args, class_map=CLASS_MAP_SEQ) == model_update_metrics(
        *args, class_map=CLASS_MAP
    )
    # two old classes merged into one new class: both count as right for it
    c = flip_counts([0, 0, 1], [0, 1, 2], [0, 0, 1], class_map={0: 0, 1: 0, 2: 1})
    assert c.both_correct == 3


@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_difference_identity(weighted):
    for seed in range(5):
        case = random_case(seed, kind="logits", weighted=weighted, top_k=1 + seed % 3)
        m = model_update_metrics(case.target, case.preds_old, case.preds_new, **case.kwargs())
        acc_old, acc_new = 1 - m["error_rate_old"], 1 - m["error_rate_new"]
        diff = m["positive_flip_rate"] - m["negative_flip_rate"]
        assert math.isclose(acc_new - acc_old, diff, rel_tol=0, abs_tol=1e-12)
    # with integer cell counts the identity holds exactly on the counts
    c = flip_counts(case.target, case.preds_old, case.preds_new, top_k=2)
    assert c.new_correct - c.old_correct == c.positive_flips - c.negative_flips
    assert c.total == len(case.target) == c.n_total


@pytest.mark.parametrize("kind", ["labels", "logits", "ranked"])
def test_input_containers_agree(kind):
    case = random_case(11, kind=kind, n=60, weighted=True)
    t, o, n, w = case.target, case.preds_old, case.preds_new, case.sample_weight
    ranked = case.ranked
    want = model_update_metrics(t, o, n, sample_weight=w, ranked=ranked)
    forms = {
        "torch": (
            torch.from_numpy(t),
            torch.from_numpy(o),
            torch.from_numpy(n),
            torch.from_numpy(w),
        ),
        "list": (t.tolist(), o.tolist(), n.tolist(), w.tolist()),
        "pandas": (
            pd.Series(t),
            pd.Series(o) if o.ndim == 1 else pd.DataFrame(o),
            pd.Series(n) if n.ndim == 1 else pd.DataFrame(n),
            pd.Series(w),
        ),
        "int32/float32": (
            t.astype(np.int32),
            o.astype(np.int32 if o.dtype.kind == "i" else np.float32),
            n.astype(np.int32 if n.dtype.kind == "i" else np.float32),
            w,
        ),
        "non-contiguous": (t[::-1][::-1], np.asfortranarray(o), n.copy(), w),
        "tuple": (tuple(t.tolist()), o, n, tuple(w.tolist())),
    }
    for name, (ft, fo, fn, fw) in forms.items():
        got = model_update_metrics(ft, fo, fn, sample_weight=fw, ranked=ranked)
        for key in want:
            if name == "int32/float32" and kind == "logits":
                continue  # float32 rounding may reorder near-ties
            assert same(got[key], want[key]), (name, key)


def test_string_labels():
    target = ["cat", "dog", "bird", "bird", "dog"]
    old = np.array(["cat", "dog", "cat", "dog", "dog"])
    new = pd.Series(["cat", "bird", "bird", "cat", "cat"])
    want = model_update_metrics([0, 1, 2, 2, 1], [0, 1, 0, 1, 1], [0, 2, 2, 0, 0])
    assert model_update_metrics(target, old, new) == want
    # a label only one model ever predicts is simply wrong
    assert negative_flip_rate(["a", "b"], ["a", "b"], ["zzz", "b"]) == 0.5


def test_error_rate_matches_reference():
    for kind in ("labels", "logits", "probs", "ranked"):
        for top_k in (1,) if kind == "labels" else (1, 2, 3):
            case = random_case(5, kind=kind, weighted=True, top_k=top_k)
            for w in (None, case.sample_weight):
                got = error_rate(case.target, case.preds_new, top_k=top_k, sample_weight=w,
                                 ranked=case.ranked)  # fmt: skip
                want = ref_error_rate(
                    case.target.tolist(),
                    case.preds_new.tolist(),
                    top_k=top_k,
                    sample_weight=None if w is None else w.tolist(),
                )
                assert math.isclose(got, want, rel_tol=1e-12), (kind, top_k)
            kw = {"top_k": top_k, "ranked": case.ranked}
            m = model_update_metrics(case.target, case.preds_old, case.preds_new, **kw)
            assert error_rate(case.target, case.preds_old, **kw) == m["error_rate_old"]


# -- undefined values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target", "old", "new"),
    [
        ("backward_trust_compatibility", [0, 1], [1, 0], [0, 1]),  # old never right
        ("relative_negative_flip_rate", [0, 1], [0, 0], [0, 1]),  # new never wrong
        ("relative_negative_flip_rate", [0, 1], [1, 0], [1, 0]),  # old never right
        ("negative_flip_impact", [0, 1], [0, 0], [0, 1]),  # new never wrong
        ("backward_error_compatibility", [0, 1], [1, 0], [0, 1]),  # new never wrong
        ("positive_flip_impact", [0, 1], [0, 1], [1, 1]),  # old never wrong
    ],
)
def test_undefined_is_nan_with_warning(name, target, old, new):
    with pytest.warns(UndefinedMetricWarning, match=name):
        value = FUNCTIONS[name](target, old, new)
    assert math.isnan(value)
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(model_update_metrics(target, old, new)[name])


def test_defined_values_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backward_trust_compatibility([0, 1], [0, 0], [1, 0]) == 0.0  # 0, not NaN
        assert negative_flip_rate([0, 1], [1, 0], [1, 0]) == 0.0


def test_all_excluded_is_nan():
    with pytest.warns(UndefinedMetricWarning):
        m = model_update_metrics([2, 2], [0, 1], [2, 2], class_map={0: 0, 1: 1})
    assert all(math.isnan(v) for v in m.values())
    c = flip_counts([2, 2], [0, 1], [2, 2], class_map={0: 0, 1: 1})
    assert (c.total, c.excluded, c.n_excluded) == (0, 2, 2)


def test_all_zero_weights_is_nan():
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(negative_flip_rate([0, 1], [0, 1], [1, 1], sample_weight=[0, 0]))
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(error_rate([0, 1], [0, 1], sample_weight=[0.0, 0.0]))


# -- bad input ----------------------------------------------------------------------------

T = [0, 1, 2, 1]
L = [0, 1, 1, 2]
S = np.eye(3)[[0, 1, 2, 0]] * 0.8 + 0.1
S4 = np.full((4, 4), 0.25)
S4[:, 0] = 0.5
NAN_S = S.copy()
NAN_S[2, 1] = np.nan
INF_S = S.copy()
INF_S[1, 0] = -np.inf

BAD = {
    "empty": ((([], [], []), {}), InputError, "`target`"),
    "old too short": (((T, L[:3], L), {}), InputError, "`preds_old`"),
    "new too long": (((T, L, [*L, 0]), {}), InputError, "`preds_new`"),
    "3-D preds": (((T, S[:, :, None], S), {}), InputError, "`preds_old`"),
    "0-D preds": (((T, L, np.array(1)), {}), InputError, "`preds_new`"),
    "float 1-D preds": (((T, L, [0.0, 1.0, 1.0, 2.0]), {}), InputError, "`preds_new`"),
    "float target": (((np.array(T, dtype=float), L, L), {}), InputError, "`target`"),
    "2-D target": ((([T], L, L), {}), InputError, "`target`"),
    "NaN score": (((T, NAN_S, S), {}), InputError, "`preds_old`.*row 2"),
    "inf score": (((T, S, INF_S), {}), InputError, "`preds_new`.*row 1"),
    "negative target": ((([0, -1, 2, 1], L, L), {}), InputError, "`target`"),
    "negative old label": (((T, [0, -1, 1, 2], L), {}), InputError, "`preds_old`"),
    "negative ranked": (((T, L, [[0, 1], [-2, 1], [2, 0], [1, 0]]), {"ranked": True}), InputError,
                        "`preds_new`.*>= 0"),
    "ranked lists without ranked=True": (((T, L, [[0, 1], [2, 1], [2, 0], [1, 0]]), {}), InputError,
                                         r"`preds_new`.*2-D.*int64.*ranked=True"),
    "one-hot without ranked=True": (((T, np.eye(3, dtype=int)[T], L), {}), InputError,
                                    r"`preds_old`.*ranked=True.*cast scores to float"),
    "ranked not a bool": (((T, L, L), {"ranked": 1}), InputError, "`ranked`"),
    "target >= C": ((([0, 1, 3, 1], S, S), {}), InputError, "`target`"),
    "old label >= C": (((T, [0, 1, 3, 2], S), {}), InputError, "`preds_old`"),
    "new label >= num_classes": (((T, L, [0, 1, 5, 2]), {"num_classes": 3}), InputError,
                                 "`preds_new`"),
    "top_k 0": (((T, S, S), {"top_k": 0}), InputError, "`top_k`"),
    "top_k float": (((T, S, S), {"top_k": 1.0}), InputError, "`top_k`"),
    "top_k bool": (((T, S, S), {"top_k": True}), InputError, "`top_k`"),
    "top_k > C": (((T, S, S), {"top_k": 4}), InputError, "`top_k`"),
    "top_k with labels": (((T, L, S), {"top_k": 2}), InputError, "`preds_old`.*top_k=2"),
    "top_k > ranked": (((T, [[0], [1], [1], [2]], S), {"top_k": 2, "ranked": True}), InputError,
                       "`preds_old`.*at least top_k=2"),
    "class counts differ": (((T, S, S4), {}), InputError, "`class_map`"),
    "num_classes vs scores": (((T, S, S), {"num_classes": 4}), InputError, "`num_classes`"),
    "num_classes 0": (((T, L, L), {"num_classes": 0}), InputError, "`num_classes`"),
    "num_classes str": (((T, L, L), {"num_classes": "3"}), InputError, "`num_classes`"),
    "class_map < -1": (((T, L, L), {"class_map": {0: 0, 1: -2}}), InputError, "`class_map`"),
    "class_map >= C": (((T, S, S), {"class_map": [0, 1, 3]}), InputError, "`class_map`"),
    "class_map empty dict": (((T, L, L), {"class_map": {}}), InputError, "`class_map`"),
    "class_map empty list": (((T, L, L), {"class_map": []}), InputError, "`class_map`"),
    "class_map all -1": (((T, L, L), {"class_map": [-1, -1]}), InputError, "`class_map`"),
    "class_map key < 0": (((T, L, L), {"class_map": {-1: 0}}), InputError, "`class_map`"),
    "class_map too long": (((T, S, S), {"class_map": [0, 1, 2, 2]}), InputError, "`class_map`"),
    "class_map fractional": (((T, L, L), {"class_map": [0.5, 1.0]}), InputError, "`class_map`"),
    "class_map strings": (((T, L, L), {"class_map": ["a", "b"]}), InputError, "`class_map`"),
    "negative weight": (((T, L, L), {"sample_weight": [1, -1, 1, 1]}), InputError,
                        "`sample_weight`"),
    "NaN weight": (((T, L, L), {"sample_weight": [1, np.nan, 1, 1]}), InputError,
                   "`sample_weight`"),
    "inf weight": (((T, L, L), {"sample_weight": [1, np.inf, 1, 1]}), InputError,
                   "`sample_weight`"),
    "short weight": (((T, L, L), {"sample_weight": [1, 1, 1]}), InputError, "`sample_weight`"),
    "2-D weight": (((T, L, L), {"sample_weight": [[1, 1, 1, 1]]}), InputError, "`sample_weight`"),
    "string weight": (((T, L, L), {"sample_weight": ["a"] * 4}), InputError, "`sample_weight`"),
    "int target": (((5, L, L), {}), InputError, "`target`"),
    "dict preds": (((T, {"a": 1}, L), {}), InputError, "`preds_old`"),
    "set preds": (((T, L, {0, 1, 2}), {}), InputError, "`preds_new`"),
    "complex scores": (((T, S.astype(complex), S), {}), InputError, "`preds_old`"),
    "datetime preds": (((T, L, np.array(["2020-01-01"] * 4, dtype="datetime64[D]")), {}),
                       InputError, "`preds_new`"),
    "ragged list": (((T, [[0.1, 0.9], [0.5], [0.2, 0.8], [1.0, 0.0]], L), {}), InputError,
                    "`preds_old`"),
    "strings with scores": (((["a", "b", "a", "b"], S, L), {}), InputError, "`preds_old`"),
    "strings with torch": (((["a", "b"], torch.tensor([0, 1]), [0, 1]), {}),
                           InputError, "`target`"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD.values(), ids=list(BAD))
def test_bad_input_names_the_argument(case):
    (args, kwargs), error, match = case
    for fn in (negative_flip_rate, model_update_metrics, flip_counts):
        with pytest.raises(error, match=match) as info:
            fn(*args, **kwargs)
        assert "\n" not in str(info.value)


def test_input_error_is_value_error():
    assert issubclass(InputError, ValueError)
    with pytest.raises(ValueError, match="`top_k`"):
        relative_negative_flip_rate(T, S, S, top_k=0)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((T, [0.0, 1.0, 1.0, 2.0]), {}, "`preds`"),
        ((T, [0, 1, 5, 2]), {"num_classes": 3}, "`preds`"),
        ((T, S), {"num_classes": 4}, "`preds`"),
        ((T, S[:3]), {}, "`preds`"),
        ((T, L), {"top_k": 2}, "`preds`"),
        ((T, L), {"sample_weight": [1, 2]}, "`sample_weight`"),
        ((T, {"a": 1}), {}, "`preds`"),
    ],
)
def test_error_rate_bad_input_names_preds(args, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        error_rate(*args, **kwargs)
    assert "preds_old" not in str(info.value) and "preds_new" not in str(info.value)


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_missing_string_label_is_an_error(missing):
    target = np.array(["cat", "dog", missing], dtype=object)
    with pytest.raises(InputError, match=r"`target`.*row 2"):
        negative_flip_rate(target, ["cat", "dog", "dog"], ["cat", "cat", "dog"])
