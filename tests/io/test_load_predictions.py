"""load_predictions: several prediction files in one class space, joined on request."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.io.predictions import load_predictions


def _csv(path, **columns):
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_open_class_sets_are_the_union_in_natural_order(tmp_path):
    a = _csv(tmp_path / "a.csv", label=[10, 2, 2], pred=[2, 2, 1])
    b = _csv(tmp_path / "b.csv", pred=[3, 10])
    files = load_predictions([a, b])
    assert files.class_names == ["1", "2", "3", "10"]
    assert files.preds[0].tolist() == [1, 1, 0] and files.preds[1].tolist() == [2, 3]
    assert files.target[0].tolist() == [3, 1, 1] and files.target[1] is None
    assert files.ids == (None, None) and files.joined is None
    assert files.scores == (None, None)


def test_score_columns_define_the_class_space(tmp_path):
    pd.DataFrame(
        {"id": [1, 2], "prob_b": [0.5, 0.9], "prob_a": [0.5, 0.1], "label": ["a", "b"]}
    ).to_parquet(tmp_path / "s.parquet")
    hard = _csv(tmp_path / "h.csv", id=[2, 1], pred=["a", "a"])
    files = load_predictions([hard, tmp_path / "s.parquet"])
    assert files.class_names == ["b", "a"]  # the score columns' order
    assert files.preds[1].tolist() == [0, 0]  # a tie goes to the first column, "b"
    assert files.preds[0].tolist() == [1, 1] and files.target[1].tolist() == [1, 0]
    assert files.scores == (None, "probs")


def test_refuses_values_outside_the_score_classes_and_different_score_classes(tmp_path):
    pd.DataFrame({"logit_0": [0.1], "logit_1": [0.2]}).to_parquet(tmp_path / "s.parquet")
    pd.DataFrame({"logit_0": [0.1], "logit_2": [0.2]}).to_parquet(tmp_path / "t.parquet")
    bad = _csv(tmp_path / "bad.csv", label=[0], pred=[7])
    with pytest.raises(InputError, match=r"bad.csv: prediction column 'pred' has 1 value\(s\)"):
        load_predictions([tmp_path / "s.parquet", bad], scores="logits")
    bad_label = _csv(tmp_path / "bl.csv", label=[5], pred=[0])
    with pytest.raises(InputError, match=r"bl\.csv: label column 'label'.*'5'"):
        load_predictions([tmp_path / "s.parquet", bad_label], scores="logits")
    with pytest.raises(InputError, match="different class names"):
        load_predictions([tmp_path / "s.parquet", tmp_path / "t.parquet"], scores="logits")


def test_aligned_on_ids_and_by_position(tmp_path):
    a = _csv(tmp_path / "a.csv", id=["x", "y", "z"], pred=[0, 1, 2], label=[0, 1, 1])
    b = _csv(tmp_path / "b.csv", id=["z", "x", "y"], pred=[1, 1, 0], label=[1, 0, 1])
    c = _csv(tmp_path / "c.csv", pred=[2, 2, 2])
    files = load_predictions([a, b, c])
    joined = files.aligned([0, 1])
    assert joined.joined == "id" and joined.ids[1].tolist() == ["x", "y", "z"]
    assert joined.preds[1].tolist() == [1, 0, 1] and joined.labels.tolist() == [0, 1, 1]
    swapped = files.aligned([1, 0])
    assert swapped.preds[1].tolist() == [2, 0, 1]
    by_position = files.aligned([0, 2])  # c has no ids
    assert by_position.joined == "position" and by_position.ids[0].tolist() == [0, 1, 2]
    with pytest.raises(InputError, match=r"labels disagree: .*a\.csv and .*b\.csv .* at row 0"):
        files.aligned([0, 1], on_ids=False)  # by position the rows are other samples
    with pytest.raises(InputError, match=r"c\.csv: no id column 'id'"):
        files.aligned([0, 2], on_ids=True)


@pytest.mark.parametrize(
    ("b_columns", "message"),
    [
        ({"id": [1, 2, 4], "pred": [0, 0, 0]}, "lacks 1 id"),
        ({"id": [1, 1, 2], "pred": [0, 0, 0]}, "duplicate id 1"),
        ({"id": [1, 2, 3], "pred": [0, 0, 0], "label": [0, 1, 0]}, "labels disagree.*id 3"),
    ],
)
def test_aligned_refuses(tmp_path, b_columns, message):
    a = _csv(tmp_path / "a.csv", id=[1, 2, 3], pred=[0, 1, 0], label=[0, 1, 1])
    b = _csv(tmp_path / "b.csv", **b_columns)
    with pytest.raises(InputError, match=message):
        load_predictions([a, b]).aligned([0, 1])


def test_bad_arguments(tmp_path):
    a = _csv(tmp_path / "a.csv", pred=[0, 1])
    short = _csv(tmp_path / "short.csv", pred=[0])
    files = load_predictions([a, short])
    with pytest.raises(InputError, match="different lengths without an id column"):
        files.aligned([0, 1])
    for bad in ([0, 0], [], [2]):
        with pytest.raises(InputError, match="argument `files`"):
            files.aligned(bad)
    with pytest.raises(InputError, match="argument `on_ids`"):
        files.aligned([0], on_ids=1)
    with pytest.raises(InputError, match="argument `paths`"):
        load_predictions(str(a))
    with pytest.raises(InputError, match="argument `paths`"):
        load_predictions([])
    with pytest.raises(InputError, match="argument `scores`"):
        load_predictions([a], scores="raw")


def test_npy_scores_and_ids_column_option(tmp_path):
    np.save(tmp_path / "s.npy", np.array([[0.1, 0.9], [0.8, 0.2]]))
    k = _csv(tmp_path / "k.csv", key=[5, 6], pred=[1, 1])
    files = load_predictions([tmp_path / "s.npy", k], id_col="key")
    assert files.class_names == ["0", "1"] and files.preds[0].tolist() == [1, 0]
    assert files.ids[0] is None and files.ids[1].tolist() == [5, 6]
    assert files.aligned([1, 0]).joined == "position"
