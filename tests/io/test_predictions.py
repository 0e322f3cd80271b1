from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graceful.errors import InputError
from graceful.io.predictions import ComparisonInputs, load_comparison

N = 24
CLASSES = ["0", "1", "2", "3"]


def softmax_max(scores: np.ndarray) -> np.ndarray:
    """Tiny reference: the largest softmax probability per row."""
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).max(axis=1)


def frame(
    seed: int,
    *,
    n: int = N,
    n_classes: int = 4,
    ids: bool = True,
    label: bool = True,
    probs: bool = False,
    labels: np.ndarray | None = None,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    if ids:
        data["id"] = np.arange(100, 100 + n)
    if label:
        data["label"] = labels if labels is not None else rng.integers(0, n_classes, n)
    scores = rng.standard_normal((n, n_classes))
    if probs:
        scores = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    prefix = "prob_" if probs else "logit_"
    for c in range(n_classes):
        data[f"{prefix}{c}"] = scores[:, c]
    return pd.DataFrame(data)


def write(df: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        df.to_parquet(path, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        df.to_json(path, orient="records", lines=True, double_precision=15)
    elif suffix == ".npz":
        score_cols = [c for c in df.columns if c.startswith(("logit_", "prob_"))]
        arrays: dict[str, np.ndarray] = {}
        if score_cols:
            key = "logits" if score_cols[0].startswith("logit_") else "probs"
            arrays[key] = df[score_cols].to_numpy()
        for c in df.columns:
            if c not in score_cols:
                values = df[c].to_numpy()
                arrays[c] = values.astype(str) if values.dtype == object else values
        np.savez(path, **arrays)  # type: ignore[arg-type]
    elif suffix == ".npy":
        score_cols = [c for c in df.columns if c.startswith(("logit_", "prob_"))]
        np.save(path, df[score_cols].to_numpy() if score_cols else df.iloc[:, 0].to_numpy())
    else:  # pragma: no cover
        raise AssertionError(suffix)
    return path


def assert_same(a: ComparisonInputs, b: ComparisonInputs, *, ids: bool = True) -> None:
    if ids:
        np.testing.assert_array_equal(a.ids, b.ids)
        assert a.id_source == b.id_source
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_array_equal(a.old_topk, b.old_topk)
    np.testing.assert_array_equal(a.new_topk, b.new_topk)
    for x, y in ((a.old_confidence, b.old_confidence), (a.new_confidence, b.new_confidence)):
        if x is None or y is None:
            assert x is None and y is None
        else:
            assert x.dtype == y.dtype == np.float32
            np.testing.assert_allclose(x, y, rtol=1e-6)
    assert a.class_names == b.class_names
    assert a.old_class_names == b.old_class_names
    if a.class_map is None or b.class_map is None:
        assert a.class_map is None and b.class_map is None
    else:
        np.testing.assert_array_equal(a.class_map, b.class_map)
    assert a.groups.keys() == b.groups.keys()
    for g in a.groups:
        np.testing.assert_array_equal(a.groups[g], b.groups[g])
    assert (a.n_rows_old, a.n_rows_new) == (b.n_rows_old, b.n_rows_new)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    old = frame(0)
    new = frame(1, labels=old["label"].to_numpy())
    return old, new


# -- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".ndjson", ".pq", ".npz"])
def test_every_format_gives_the_same_result(tmp_path: Path, pair, suffix: str) -> None:
    old, new = pair
    ref = load_comparison(write(old, tmp_path / "o.parquet"), write(new, tmp_path / "n.parquet"))
    got = load_comparison(write(old, tmp_path / f"o{suffix}"), write(new, tmp_path / f"n{suffix}"))
    assert_same(ref, got)
    assert ref.id_source == "id"
    assert ref.class_names == CLASSES and ref.class_map is None
    np.testing.assert_array_equal(ref.target, old["label"].to_numpy())
    np.testing.assert_array_equal(
        ref.new_topk[:, 0], new.filter(like="logit_").to_numpy().argmax(1)
    )


def test_npy_files_join_by_position_with_labels_file(tmp_path: Path, pair) -> None:
    old, new = pair
    ref = load_comparison(
        write(old.drop(columns="id"), tmp_path / "o.csv"),
        write(new.drop(columns="id"), tmp_path / "n.csv"),
    )
    np.save(tmp_path / "y.npy", old["label"].to_numpy())
    got = load_comparison(
        write(old.drop(columns=["id", "label"]), tmp_path / "o.npy"),
        write(new.drop(columns=["id", "label"]), tmp_path / "n.npy"),
        labels=tmp_path / "y.npy",
    )
    assert_same(ref, got)
    assert got.id_source == "position"
    np.testing.assert_array_equal(got.ids, np.arange(N))


def test_hard_label_npy_and_npz_classes(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([0, 1, 2, 1]))
    np.savez(
        tmp_path / "n.npz",
        probs=np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]]),
        classes=np.array(["0", "1", "2"]),
        label=np.array([0, 1, 2, 1]),
    )
    got = load_comparison(tmp_path / "o.npy", tmp_path / "n.npz")
    assert got.old_confidence is None
    assert got.new_confidence is not None
    np.testing.assert_allclose(got.new_confidence, [0.9, 0.7, 0.8, 0.5], rtol=1e-6)
    assert got.old_topk[:, 0].tolist() == [0, 1, 2, 1]
    assert got.new_topk[:, 0].tolist() == [0, 1, 2, 0]
    assert got.class_map is None


# -- joining ------------------------------------------------------------------------------------


def test_join_by_id_with_shuffled_rows(tmp_path: Path, pair) -> None:
    old, new = pair
    perm = np.random.default_rng(5).permutation(N)
    shuffled = new.iloc[perm].reset_index(drop=True)
    ref = load_comparison(write(old, tmp_path / "o.parquet"), write(new, tmp_path / "n.parquet"))
    got = load_comparison(write(old, tmp_path / "o.csv"), write(shuffled, tmp_path / "n.csv"))
    np.testing.assert_array_equal(got.ids, shuffled["id"].to_numpy())
    np.testing.assert_array_equal(got.target, ref.target[perm])
    np.testing.assert_array_equal(got.old_topk, ref.old_topk[perm])
    np.testing.assert_array_equal(got.new_topk, ref.new_topk[perm])
    assert got.old_confidence is not None and ref.old_confidence is not None
    np.testing.assert_allclose(got.old_confidence, ref.old_confidence[perm], rtol=1e-6)


def test_join_by_string_ids_and_explicit_id_col(tmp_path: Path) -> None:
    old = pd.DataFrame({"key": ["a", "b", "c"], "label": ["x", "y", "x"], "pred": ["x", "x", "x"]})
    new = pd.DataFrame({"key": ["c", "a", "b"], "pred": ["x", "y", "y"]})
    got = load_comparison(
        write(old, tmp_path / "o.parquet"), write(new, tmp_path / "n.jsonl"), id_col="key"
    )
    assert got.ids.tolist() == ["c", "a", "b"]
    assert got.id_source == "key"
    assert got.class_names == ["x", "y"] == got.old_class_names
    assert got.target.tolist() == [0, 0, 1]
    assert got.old_topk[:, 0].tolist() == [0, 0, 0]
    assert got.new_topk[:, 0].tolist() == [0, 1, 1]


def test_join_by_position_without_id_column(tmp_path: Path) -> None:
    old = pd.DataFrame({"label": [1, 0, 2], "pred": [1, 0, 0]})
    new = pd.DataFrame({"label": [1, 0, 2], "pred": [1, 2, 2]})
    got = load_comparison(write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.csv"))
    assert got.id_source == "position"
    assert got.ids.tolist() == [0, 1, 2]
    assert got.class_names == ["0", "1", "2"]
    assert got.target.tolist() == [1, 0, 2]
    assert got.old_topk.tolist() == [[1], [0], [0]]
    assert got.new_topk.tolist() == [[1], [2], [2]]


def test_labels_from_third_file_with_ids(tmp_path: Path) -> None:
    old = pd.DataFrame({"id": [1, 2, 3], "pred": ["a", "b", "a"]})
    new = pd.DataFrame({"id": [3, 1, 2], "pred": ["b", "a", "b"]})
    lab = pd.DataFrame({"id": [2, 3, 1], "label": ["b", "b", "a"], "site": ["s2", "s3", "s1"]})
    got = load_comparison(
        write(old, tmp_path / "o.csv"),
        write(new, tmp_path / "n.parquet"),
        labels=write(lab, tmp_path / "y.csv"),
        group_cols=["site"],
    )
    assert got.class_names == ["a", "b"]
    assert got.target.tolist() == [1, 0, 1]
    assert got.groups["site"].tolist() == ["s3", "s1", "s2"]
    assert got.groups["site"].dtype == object


def test_groups_come_from_old_then_new_and_missing_is_na(tmp_path: Path) -> None:
    old = pd.DataFrame({"id": [1, 2], "label": [0, 1], "pred": [0, 1], "g": ["u", None]})
    new = pd.DataFrame({"id": [2, 1], "pred": [1, 1], "g": ["zz", "zz"], "h": [7, 8]})
    got = load_comparison(
        write(old, tmp_path / "o.parquet"),
        write(new, tmp_path / "n.parquet"),
        group_cols=["g", "h"],
    )
    assert got.groups["g"].tolist() == ["<NA>", "u"]
    assert got.groups["h"].tolist() == ["7", "8"]


# -- scores -------------------------------------------------------------------------------------


def test_logits_confidence_is_softmax_max(tmp_path: Path) -> None:
    old = frame(3, n=10)
    new = frame(4, n=10, labels=old["label"].to_numpy())
    got = load_comparison(write(old, tmp_path / "o.parquet"), write(new, tmp_path / "n.parquet"))
    assert got.old_confidence is not None and got.new_confidence is not None
    np.testing.assert_allclose(
        got.old_confidence, softmax_max(old.filter(like="logit_").to_numpy()), rtol=1e-6
    )
    np.testing.assert_allclose(
        got.new_confidence, softmax_max(new.filter(like="logit_").to_numpy()), rtol=1e-6
    )


def test_probabilities_are_detected(tmp_path: Path) -> None:
    old = frame(3, n=10, probs=True)
    new = frame(4, n=10, probs=True, labels=old["label"].to_numpy())
    got = load_comparison(write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.csv"))
    assert got.new_confidence is not None
    np.testing.assert_array_equal(
        got.new_confidence, new.filter(like="prob_").to_numpy().max(axis=1).astype(np.float32)
    )
    forced = load_comparison(tmp_path / "o.csv", tmp_path / "n.csv", scores="logits")
    assert forced.new_confidence is not None
    np.testing.assert_allclose(
        forced.new_confidence, softmax_max(new.filter(like="prob_").to_numpy()), rtol=1e-6
    )


def test_scores_probs_rejects_values_outside_unit_interval(tmp_path: Path, pair) -> None:
    old, new = pair
    o, n = write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.csv")
    with pytest.raises(InputError, match=r"o\.csv: scores='probs'"):
        load_comparison(o, n, scores="probs")


def test_top_k_ordering_and_ties(tmp_path: Path) -> None:
    scores = np.array(
        [[0.1, 3.0, 2.0, -1.0], [5.0, 5.0, 1.0, 5.0], [0.0, 0.0, 0.0, 0.0], [-2.0, -1.0, -3.0, 0.5]]
    )
    df = pd.DataFrame({f"score_{c}": scores[:, c] for c in range(4)})
    df["label"] = [1, 0, 2, 3]
    path = write(df, tmp_path / "s.parquet")
    got = load_comparison(path, path, top_k=3)
    expected = [[1, 2, 0], [0, 1, 3], [0, 1, 2], [3, 1, 0]]
    assert got.new_topk.tolist() == expected
    assert got.old_topk.tolist() == expected
    assert got.new_topk.dtype == np.int64
    top1 = load_comparison(path, path)
    assert top1.new_topk[:, 0].tolist() == [row[0] for row in expected]
    streamed = load_comparison(path, path, top_k=3, batch_rows=3)
    assert streamed.new_topk.tolist() == expected


def test_top_k_with_many_classes_uses_partial_sort(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    scores = rng.standard_normal((30, 100)).astype(np.float32)
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", rng.integers(0, 100, 30))
    got = load_comparison(
        tmp_path / "s.npy", tmp_path / "s.npy", labels=tmp_path / "y.npy", top_k=5
    )
    np.testing.assert_array_equal(got.new_topk, np.argsort(-scores, axis=1, kind="stable")[:, :5])


# -- classes ------------------------------------------------------------------------------------


def test_class_map_between_different_class_sets(tmp_path: Path) -> None:
    old = pd.DataFrame(
        {"label": ["A", "B"], "logit_a": [1.0, 0.0], "logit_b": [0.0, 1.0], "logit_c": [0.5, 0.5]}
    )
    new = pd.DataFrame(
        {"logit_A": [1.0, 0.0], "logit_B": [0.0, 2.0], "logit_C": [0.0, 0.0], "logit_D": [0.0, 0.0]}
    )
    o, n = write(old, tmp_path / "o.parquet"), write(new, tmp_path / "n.parquet")
    with pytest.raises(
        InputError,
        match=r"different numbers of classes: .*o\.parquet has 3.*n\.parquet has 4.*class-map",
    ):
        load_comparison(o, n)
    got = load_comparison(o, n, class_map={"a": "A", "b": "B"}, scores="logits")
    assert got.class_names == ["A", "B", "C", "D"]
    assert got.old_class_names == ["a", "b", "c"]
    assert got.class_map is not None
    assert got.class_map.tolist() == [0, 1, -1]
    assert got.target.tolist() == [0, 1]
    assert got.old_top1_in_new_space().tolist() == [0, 1]


def test_class_map_errors(tmp_path: Path) -> None:
    old = pd.DataFrame({"label": ["a"], "logit_a": [1.0], "logit_b": [0.0]})
    new = pd.DataFrame({"label": ["a"], "logit_a": [1.0], "logit_c": [0.0]})
    o, n = write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.csv")
    with pytest.raises(InputError, match=r"different class names.*o\.csv"):
        load_comparison(o, n)
    with pytest.raises(InputError, match=r"class_map: value 'z'.*n\.csv"):
        load_comparison(o, n, class_map={"a": "z"})
    with pytest.raises(InputError, match=r"class_map: key 'q'.*o\.csv"):
        load_comparison(o, n, class_map={"q": "a"})


def test_same_classes_in_other_order_are_mapped_by_name(tmp_path: Path) -> None:
    old = pd.DataFrame({"label": ["b"], "logit_b": [1.0], "logit_a": [0.0]})
    new = pd.DataFrame({"logit_a": [1.0], "logit_b": [0.0]})
    got = load_comparison(
        write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.csv"), scores="logits"
    )
    assert got.class_map is not None and got.class_map.tolist() == [1, 0]
    assert got.old_top1_in_new_space().tolist() == [1]
    assert got.target.tolist() == [1]


def test_open_class_sets_are_the_union(tmp_path: Path) -> None:
    old = pd.DataFrame({"label": [10, 2, 2], "pred": [10, 2, 7]})
    new = pd.DataFrame({"pred": [3, 2, 2]})
    got = load_comparison(write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.parquet"))
    assert got.class_names == ["2", "3", "7", "10"] == got.old_class_names
    assert got.class_map is None
    assert got.target.tolist() == [3, 0, 0]


def test_hard_old_against_closed_new(tmp_path: Path) -> None:
    old = pd.DataFrame({"label": [0, 1], "pred": [1, 9]})
    new = pd.DataFrame({"logit_0": [1.0, 0.0], "logit_1": [0.0, 1.0]})
    got = load_comparison(
        write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.csv"), scores="logits"
    )
    assert got.class_names == ["0", "1"]
    assert got.old_class_names == ["0", "1", "9"]
    assert got.class_map is not None and got.class_map.tolist() == [0, 1, -1]
    assert got.old_top1_in_new_space().tolist() == [1, -1]


# -- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl", ".npz"])
def test_small_batches_give_the_same_result(tmp_path: Path, suffix: str) -> None:
    old = frame(8, n=50)
    new = frame(9, n=50, labels=old["label"].to_numpy()).sample(frac=1.0, random_state=1)
    old["grp"] = np.where(old["id"] % 3 == 0, "x", "y")
    o, n = write(old, tmp_path / f"o{suffix}"), write(new, tmp_path / f"n{suffix}")
    one = load_comparison(o, n, group_cols=["grp"], top_k=2)
    many = load_comparison(o, n, group_cols=["grp"], top_k=2, batch_rows=7)
    assert_same(one, many)


def test_mixed_numbers_and_words_in_a_csv_label_column(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("label,pred\n1,1\n" + "2,2\n" * 3000 + "cat,cat\n")
    got = load_comparison(tmp_path / "o.csv", tmp_path / "o.csv", batch_rows=5)
    assert got.class_names == ["1", "2", "cat"]
    assert got.target[-1] == 2


# -- bad input ----------------------------------------------------------------------------------


def _ok(tmp_path: Path) -> Path:
    return write(frame(0, n=5), tmp_path / "ok.parquet")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"top_k": 0}, r"`top_k`.*0"),
        ({"top_k": 5}, r"`top_k`.*5 > 4 classes in .*ok\.parquet"),
        ({"batch_rows": 0}, r"`batch_rows`.*0"),
        ({"scores": "odds"}, r"`scores`.*'odds'"),
        ({"group_cols": "g"}, r"`group_cols`.*'g'"),
        ({"group_cols": ["nope"]}, r"group column 'nope' not found in .*ok\.parquet"),
        ({"id_col": "key"}, r"ok\.parquet: no id column 'key' \(columns: 'id', 'label'"),
        ({"pred_col": "yhat"}, r"ok\.parquet: no prediction column 'yhat' \(columns: "),
        ({"score_prefix": "p_"}, r"ok\.parquet: no prediction columns: looked for 'pred' .*'p_\*'"),
        ({"label_col": "y"}, r"no labels: .*ok\.parquet.*'y'"),
        ({"group_cols": ["g", "h", "g"]}, r"`group_cols` to name each column once.*'g' 2 times"),
        ({"group_cols": [3]}, r"`group_cols` to be a sequence of column names, but got \[3\]"),
        ({"score_prefix": ""}, r"`score_prefix` to be a non-empty str or None, but got ''"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, pattern: str) -> None:
    ok = _ok(tmp_path)
    with pytest.raises(InputError, match=pattern):
        load_comparison(ok, ok, **kwargs)


def test_unsupported_extension(tmp_path: Path) -> None:
    ok = _ok(tmp_path)
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(
        InputError, match=r"p\.txt: unsupported file extension '\.txt' \(supported: \.csv"
    ):
        load_comparison(tmp_path / "p.txt", ok)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: no such file"):
        load_comparison(tmp_path / "nope.csv", _ok(tmp_path))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl", ".npy"])
def test_empty_files(tmp_path: Path, suffix: str) -> None:
    ok = _ok(tmp_path)
    zero = tmp_path / f"zero{suffix}"
    zero.write_bytes(b"")
    with pytest.raises(InputError, match=rf"zero\{suffix}: empty file"):
        load_comparison(zero, ok)
    empty = tmp_path / f"empty{suffix}"
    if suffix == ".npy":
        np.save(empty, np.zeros(0, dtype=np.int64))
    elif suffix == ".jsonl":
        empty.write_text("\n\n")
    else:
        write(frame(0, n=5).iloc[:0], empty)
    with pytest.raises(InputError, match=rf"empty\{suffix}: empty file \(no rows\)"):
        load_comparison(ok, empty)


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".parquet", "Parquet"),
        (".npz", "NumPy .npz"),
        (".npy", "NumPy .npy"),
        (".jsonl", "JSON Lines"),
        (".csv", "CSV"),
    ],
)
def test_corrupt_files(tmp_path: Path, suffix: str, fmt: str) -> None:
    bad = tmp_path / f"bad{suffix}"
    if suffix == ".csv":
        bad.write_text('id,label,pred\n1,2,3\n4,"5\n')
    elif suffix == ".jsonl":
        bad.write_text('{"label": 1, "pred": 1}\n{"label": 2, "pred"\n')
    else:
        bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match=rf"bad\{suffix}: cannot read as {fmt}: "):
        load_comparison(bad, _ok(tmp_path))


def test_unreadable_value_in_a_later_csv_block(tmp_path: Path) -> None:
    bad = tmp_path / "late.csv"
    bad.write_text("label,logit_0,logit_1\n" + "1,0.5,0.25\n" * 6000 + "1,abc,0.1\n")
    with pytest.raises(InputError, match=r"late\.csv: cannot read as CSV: .*abc"):
        load_comparison(bad, bad, batch_rows=5)
    with pytest.raises(InputError, match=r"late\.csv: score column 'logit_0' has dtype string"):
        load_comparison(bad, bad)


def test_truncated_parquet(tmp_path: Path) -> None:
    ok = _ok(tmp_path)
    data = ok.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.parquet: cannot read as Parquet: "):
        load_comparison(cut, ok)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_scores(tmp_path: Path, value: float) -> None:
    df = frame(0, n=20)
    df.loc[13, "logit_2"] = value
    bad = write(df, tmp_path / "bad.parquet")
    with pytest.raises(
        InputError, match=r"bad\.parquet: non-finite score .* column 'logit_2' at row 13 \(id 113\)"
    ):
        load_comparison(_ok(tmp_path), bad, batch_rows=4)


def test_missing_label_and_pred(tmp_path: Path) -> None:
    ok = _ok(tmp_path)
    df = frame(0, n=5)
    df["label"] = df["label"].astype(float)
    df.loc[3, "label"] = np.nan
    with pytest.raises(
        InputError, match=r"nl\.parquet: missing value .* column 'label' at row 3 \(id 103\)"
    ):
        load_comparison(ok, write(df, tmp_path / "nl.parquet"))
    hard = pd.DataFrame({"label": [1, 2, 3], "pred": ["1", None, "3"]})
    with pytest.raises(InputError, match=r"np\.csv: missing value .* column 'pred' at row 1"):
        load_comparison(
            write(hard, tmp_path / "np.csv"), write(hard.fillna("2"), tmp_path / "h.csv")
        )


def test_non_numeric_score_column(tmp_path: Path) -> None:
    df = frame(0, n=5)
    df["logit_1"] = ["a", "b", "c", "d", "e"]
    with pytest.raises(
        InputError, match=r"s\.csv: score column 'logit_1' has dtype string, expected numbers"
    ):
        load_comparison(_ok(tmp_path), write(df, tmp_path / "s.csv"))


def test_top_k_needs_scores(tmp_path: Path) -> None:
    hard = write(pd.DataFrame({"label": [1, 2], "pred": [1, 2]}), tmp_path / "h.csv")
    with pytest.raises(InputError, match=r"h\.csv: top_k=2 needs score columns"):
        load_comparison(hard, hard, top_k=2)


def test_duplicate_ids(tmp_path: Path) -> None:
    df = frame(0, n=5)
    df.loc[4, "id"] = 101
    with pytest.raises(InputError, match=r"dup\.csv: duplicate id 101 in column 'id'"):
        load_comparison(write(df, tmp_path / "dup.csv"), write(frame(0, n=5), tmp_path / "ok.csv"))
    df["id"] = df["id"].map(lambda i: f"k{i}")
    with pytest.raises(InputError, match=r"dup\.parquet: duplicate id 'k101'"):
        load_comparison(_ok(tmp_path), write(df, tmp_path / "dup.parquet"))


def test_id_sets_must_match(tmp_path: Path) -> None:
    ok = _ok(tmp_path)
    fewer = write(frame(0, n=3), tmp_path / "fewer.parquet")
    with pytest.raises(
        InputError, match=r"fewer\.parquet: lacks 2 id\(s\) present in .*ok\.parquet: \[103, 104\]"
    ):
        load_comparison(fewer, ok)
    with pytest.raises(
        InputError, match=r"fewer\.parquet: lacks 2 id\(s\) present in .*ok\.parquet"
    ):
        load_comparison(ok, fewer)
    many = frame(0, n=5)
    many["id"] = np.arange(5) + 1000
    with pytest.raises(InputError, match=r"lacks 5 id\(s\) .*\[1000, 1001, 1002, 1003, 1004\]"):
        load_comparison(ok, write(many, tmp_path / "m.csv"))
    huge = frame(0, n=7)
    huge["id"] = np.arange(7) * 10**12
    with pytest.raises(InputError, match=r"\.\.\. \(7 in all\)"):
        load_comparison(ok, write(huge, tmp_path / "h.csv"))


def test_different_lengths_without_ids(tmp_path: Path) -> None:
    a = write(frame(0, n=5, ids=False), tmp_path / "a.csv")
    b = write(frame(0, n=4, ids=False), tmp_path / "b.csv")
    with pytest.raises(
        InputError,
        match=r"different lengths without an id column: .*a\.csv has 5 rows, .*b\.csv has 4",
    ):
        load_comparison(a, b)


def test_labels_file_errors(tmp_path: Path) -> None:
    ok = _ok(tmp_path)
    np.save(tmp_path / "short.npy", np.array([1, 2]))
    with pytest.raises(InputError, match=r"short\.npy has 2 rows"):
        load_comparison(ok, ok, labels=tmp_path / "short.npy")
    noid = write(pd.DataFrame({"label": [1] * 5, "x": [0] * 5}), tmp_path / "noid.csv")
    with pytest.raises(InputError, match=r"noid\.csv: no id column 'id'"):
        load_comparison(ok, ok, labels=noid)
    nolabel = write(pd.DataFrame({"id": [1] * 5}), tmp_path / "nolab.csv")
    with pytest.raises(InputError, match=r"nolab\.csv: no label column 'label'"):
        load_comparison(ok, ok, labels=nolabel)


def test_labels_must_agree(tmp_path: Path) -> None:
    old = frame(0, n=6)
    new = frame(1, n=6, labels=old["label"].to_numpy())
    new.loc[4, "label"] = (old.loc[4, "label"] + 1) % 4
    new = new.iloc[::-1]
    with pytest.raises(
        InputError, match=r"labels disagree: .*o\.csv and .*n\.csv .*'label' at id 104"
    ):
        load_comparison(write(old, tmp_path / "o.csv"), write(new, tmp_path / "n.csv"))


def test_label_outside_closed_class_set(tmp_path: Path) -> None:
    df = frame(0, n=8)
    df["label"] = ["0", "1", "x", "y", "z", "u", "v", "w"]
    path = write(df, tmp_path / "l.parquet")
    pattern = (
        r"l\.parquet: column 'label' has 6 label value\(s\) outside the 4 classes of "
        r".*l\.parquet: \['u', 'v', 'w', 'x', 'y', \.\.\. \(6 in all\)\]"
    )
    with pytest.raises(InputError, match=pattern):
        load_comparison(path, path)


def test_no_labels_anywhere(tmp_path: Path) -> None:
    a = write(frame(0, n=5, label=False), tmp_path / "a.csv")
    with pytest.raises(
        InputError, match=r"no labels: neither .*a\.csv nor .*a\.csv has a column 'label'"
    ):
        load_comparison(a, a)


def test_bad_npy_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.array([0.5, 0.2]))
    with pytest.raises(
        InputError, match=r"f\.npy: a 1-D \.npy array must hold integer class labels"
    ):
        load_comparison(tmp_path / "f.npy", tmp_path / "f.npy")
    np.savez(tmp_path / "z.npz", logits=np.zeros((3, 2)), label=np.array([0, 1]))
    with pytest.raises(InputError, match=r"z\.npz: arrays have different lengths"):
        load_comparison(tmp_path / "z.npz", tmp_path / "z.npz")


# -- columns that are not what their role needs ------------------------------------------------


def _table(tmp_path: Path, name: str, **columns: object) -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(
    ("role", "option"),
    [("id", "id_col"), ("label", "label_col"), ("prediction", "pred_col"), ("group", None)],
)
@pytest.mark.parametrize(
    "values", [[[1], [2], [3]], [{"a": 1}, {"a": 2}, {"a": 3}]], ids=["list", "struct"]
)
def test_nested_columns_are_refused_in_every_role(tmp_path, role, option, values) -> None:
    path = _table(
        tmp_path, "f.parquet", id=[1, 2, 3], label=[0, 1, 1], pred=[0, 1, 0], x=pa.array(values)
    )
    kwargs = {"group_cols": ["x"]} if option is None else {option: "x"}
    with pytest.raises(InputError) as info:
        load_comparison(path, path, **kwargs)
    message = str(info.value)
    assert re.fullmatch(
        rf".*f\.parquet: {role} column 'x' holds nested values \((list|struct)<.*>\); it must "
        r"hold one number or string per row",
        message,
    ), message


def test_dictionary_columns_work_in_every_role(tmp_path: Path) -> None:
    def words(*values: str) -> pa.Array:
        return pa.array(values).dictionary_encode()

    path = _table(
        tmp_path,
        "d.parquet",
        key=words("a", "b", "c"),
        label=words("x", "y", "y"),
        pred=words("x", "y", "x"),
        site=words("s", "t", "s"),
    )
    got = load_comparison(path, path, id_col="key", group_cols=["site"])
    assert got.ids.tolist() == ["a", "b", "c"]
    assert got.class_names == ["x", "y"] and got.target.tolist() == [0, 1, 1]
    assert got.groups["site"].tolist() == ["s", "t", "s"]


def test_non_utf8_ids_name_the_file_column_and_row(tmp_path: Path) -> None:
    path = _table(
        tmp_path, "b.parquet", id=pa.array([b"ok", b"\xff\xfe"]), label=[0, 1], pred=[0, 1]
    )
    with pytest.raises(InputError) as info:
        load_comparison(path, path)
    assert str(info.value).endswith(
        "b.parquet: id column 'id' is not UTF-8 text: b'\\xff\\xfe' at row 1"
    )
    text = _table(tmp_path, "t.parquet", id=pa.array([b"a", b"b"]), label=[0, 1], pred=[0, 1])
    assert load_comparison(text, text).ids.tolist() == ["a", "b"]


def test_a_score_column_as_hard_labels_is_refused(tmp_path: Path) -> None:
    df = frame(0, n=6, probs=True)
    parquet, csv = write(df, tmp_path / "p.parquet"), write(df, tmp_path / "p.csv")
    for path in (parquet, csv):
        with pytest.raises(InputError) as info:
            load_comparison(path, path, pred_col="prob_1")
        value = float(df.loc[0, "prob_1"])
        shown = repr(value) if path is parquet else repr(str(value))
        assert str(info.value) == (
            f"{path}: prediction column 'prob_1' holds scores, not class labels: {shown} at row 0"
            " (id 100) is not an integer; read score columns <prefix><class> by their prefix"
            " instead (score_prefix, --score-prefix 'prob_')"
        )


def test_integral_numbers_and_words_are_labels(tmp_path: Path) -> None:
    floats = _table(tmp_path, "f.parquet", label=[0.0, 1.0, 2.0], pred=[0.0, 2.0, 2.0])
    assert load_comparison(floats, floats).class_names == ["0", "1", "2"]
    # a CSV column of numbers, then a word: class names, whatever the batch boundaries
    (tmp_path / "w.csv").write_text("label,pred\n1,1\n" + "2.5,2.5\n" * 30 + "cat,cat\n")
    got = load_comparison(tmp_path / "w.csv", tmp_path / "w.csv", batch_rows=4)
    assert got.class_names == ["1", "2.5", "cat"]


def test_a_label_column_of_fractions_is_refused(tmp_path: Path) -> None:
    path = _table(tmp_path, "y.parquet", id=[7, 8], label=[1.0, 0.25], pred=[1, 0])
    with pytest.raises(InputError) as info:
        load_comparison(path, path)
    assert str(info.value) == (
        f"{path}: label column 'label' holds numbers that are not integers: 0.25 at row 1"
        " (id 8); class labels must be integers or names"
    )


# -- how scores are read ----------------------------------------------------------------------


def _probs(tmp_path: Path, name: str, rows: list[list[float]], prefix: str = "prob_") -> Path:
    df = pd.DataFrame(rows, columns=[f"{prefix}{c}" for c in range(len(rows[0]))])
    df.insert(0, "id", range(10, 10 + len(rows)))
    df.insert(1, "label", 0)
    return write(df, tmp_path / name)


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([[0.5, 0.5], [0.25, 0.25]], "its scores sum to 0.5"),
        ([[0.5, 0.5], [0.75, 0.75]], "its scores sum to 1.5"),
        ([[0.5, 0.5], [1.5, -0.5]], "'prob_1' is -0.5 < 0"),
        ([[0.5, 0.5], [1.25, 0.0]], "'prob_0' is 1.25 > 1"),
    ],
)
def test_scores_probs_names_the_first_row_that_is_no_distribution(tmp_path, rows, why) -> None:
    bad = _probs(tmp_path, "bad.csv", [[0.5, 0.5]] * 5 + rows)
    with pytest.raises(InputError) as info:
        load_comparison(bad, bad, scores="probs", batch_rows=3)  # the bad row in a later batch
    assert str(info.value) == (
        f"{bad}: scores='probs' but row 6 (id 16) is not a probability distribution: {why}"
    )


def test_auto_reads_the_whole_file_before_choosing(tmp_path: Path) -> None:
    # the first batch holds distributions, a later one does not: logits, for every row
    path = _probs(tmp_path, "s.csv", [[0.0, 1.0]] * 4 + [[3.0, -1.0]], prefix="score_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clear-cut: values outside [0, 1], neutral names
        got = load_comparison(path, path, batch_rows=2)
    assert (got.old_scores, got.new_scores) == ("logits", "logits")
    assert got.new_confidence is not None
    np.testing.assert_allclose(got.new_confidence[:1], [1 / (1 + np.exp(-1.0))], rtol=1e-6)


def test_auto_warns_when_the_choice_is_not_obvious(tmp_path: Path) -> None:
    halves = _probs(tmp_path, "h.csv", [[0.5, 0.5], [0.25, 0.25]])
    with pytest.warns(UserWarning) as record:
        got = load_comparison(halves, halves)
    assert (got.old_scores, got.new_scores) == ("logits", "logits")
    assert [str(w.message) for w in record] == [
        f"{halves}: scores='auto' reads the score columns 'prob_0'..'prob_1' as logits (taking"
        " their softmax), although they are named 'prob_*': row 1 (id 11) is not a probability"
        " distribution: its scores sum to 0.5; pass scores='logits' or scores='probs'"
        " (--scores) to choose"
    ] * 2
    sigmoid = _probs(tmp_path, "s.csv", [[0.5, 0.5], [0.9, 0.8]], prefix="score_")
    with pytest.warns(UserWarning, match=r"although every score lies in \[0, 1\]: row 1"):
        load_comparison(sigmoid, sigmoid)
    one_hot = _probs(tmp_path, "l.csv", [[1.0, 0.0], [0.0, 1.0]], prefix="logit_")
    with pytest.warns(UserWarning, match=r"as probabilities, since every row is a probability"):
        got = load_comparison(one_hot, one_hot)
    assert got.new_scores == "probs"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said explicitly: no warning
        assert load_comparison(one_hot, one_hot, scores="logits").new_scores == "logits"


def test_clear_probabilities_and_hard_labels_do_not_warn(tmp_path: Path) -> None:
    probs = write(frame(3, n=10, probs=True), tmp_path / "p.csv")
    hard = write(pd.DataFrame({"id": range(100, 110), "pred": 0}), tmp_path / "h.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = load_comparison(hard, probs)
    assert (got.old_scores, got.new_scores) == (None, "probs")


# -- labels from several files ----------------------------------------------------------------


def test_a_labels_file_must_agree_with_the_prediction_files(tmp_path: Path) -> None:
    old = write(
        pd.DataFrame({"id": [1, 2, 3], "label": [0, 1, 1], "pred": [0, 1, 0]}), tmp_path / "o.csv"
    )
    new = write(
        pd.DataFrame({"id": [3, 2, 1], "label": [1, 1, 0], "pred": [1, 1, 1]}), tmp_path / "n.csv"
    )
    bare = write(pd.DataFrame({"id": [3, 2, 1], "pred": [1, 1, 1]}), tmp_path / "bare.csv")
    same = write(pd.DataFrame({"id": [2, 1, 3], "label": [1, 0, 1]}), tmp_path / "same.csv")
    other = write(pd.DataFrame({"id": [2, 1, 3], "label": [1, 0, 2]}), tmp_path / "y.csv")
    assert load_comparison(old, new, labels=same).target.tolist() == [1, 1, 0]
    with pytest.raises(InputError) as info:
        load_comparison(old, new, labels=other)
    assert str(info.value) == (
        f"labels disagree: {other} and {new} have different 'label' at id 3 ('2' vs '1')"
    )
    with pytest.raises(InputError) as info:  # only the old file holds labels
        load_comparison(old, bare, labels=other)
    assert str(info.value) == (
        f"labels disagree: {other} and {old} have different 'label' at id 3 ('2' vs '1')"
    )
    np.save(tmp_path / "y.npy", np.array([1, 1, 1]))  # by position, in the new file's rows
    with pytest.raises(InputError, match=r"y\.npy and .*n\.csv have different 'label' at id 1"):
        load_comparison(old, new, labels=tmp_path / "y.npy")


def test_a_column_that_appears_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,label,label,pred,x,x\n1,0,1,0,5,5\n")
    with pytest.raises(InputError) as info:
        load_comparison(tmp_path / "d.csv", tmp_path / "d.csv")
    assert (
        str(info.value)
        == f"{tmp_path / 'd.csv'}: column 'label' appears 2 times; rename all but one"
    )
    (tmp_path / "ok.csv").write_text("id,label,pred,x,x\n1,0,0,5,5\n")  # unused twins: fine
    assert load_comparison(tmp_path / "ok.csv", tmp_path / "ok.csv").n_rows == 1


def test_integer_labels_by_lookup_equal_the_hashed_codes():
    from graceful.io.predictions import _Vocab

    rng = np.random.default_rng(0)
    for values, names in (
        (rng.integers(0, 10, 1000), [str(c) for c in range(10)]),  # all known: lookup
        (np.array([3, 42, 1, 42, -5, 3]), ["0", "1", "2", "3"]),  # new names: hashed
        (rng.integers(-128, 128, 500).astype(np.int8), [str(c) for c in range(-128, 128)]),
        (np.array([0, 1, 1 << 40]), ["0", "1"]),  # too wide a range for a table
    ):
        fast, slow = _Vocab(names), _Vocab(names)
        arr = pa.array(values)
        codes = fast.encode(arr)
        encoded = pa.compute.dictionary_encode(arr)
        table = slow.add([str(v) for v in encoded.dictionary.to_pylist()])
        np.testing.assert_array_equal(codes, table[encoded.indices.to_numpy()])
        assert fast.names == slow.names


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classes", [1, 3, 20])
def test_column_wise_scan_equals_argmax_and_softmax(tmp_path, dtype, classes):
    from graceful.io.predictions import load_comparison

    rng = np.random.default_rng(classes)
    n = 3000
    # integer-valued logits: many rows with tied maxima, which go to the lowest class
    scores = rng.integers(-3, 4, (2, n, classes)).astype(dtype)
    y = rng.integers(0, classes, n)
    for name, s in zip(("old", "new"), scores, strict=True):
        frame = pd.DataFrame({"id": np.arange(n), "label": y})
        for c in range(classes):
            frame[f"logit_{c}"] = s[:, c]
        frame.to_parquet(tmp_path / f"{name}.parquet")
    inputs = load_comparison(
        tmp_path / "old.parquet", tmp_path / "new.parquet", scores="logits", batch_rows=700
    )
    for top, conf, s in (
        (inputs.old_topk, inputs.old_confidence, scores[0]),
        (inputs.new_topk, inputs.new_confidence, scores[1]),
    ):
        np.testing.assert_array_equal(top[:, 0], s.argmax(axis=1))
        ref = s.astype(np.float64)
        soft = np.exp(ref - ref.max(axis=1, keepdims=True))
        np.testing.assert_allclose(conf, (soft / soft.sum(axis=1, keepdims=True)).max(axis=1),
                                   rtol=1e-6)  # fmt: skip
