"""compare_chain: every pair, the re-introduced errors and the gate, against a direct count."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.io.eval_logs import load_eval_comparison
from graceful.io.predictions import load_comparison
from graceful.metrics import wilson_interval
from graceful.release import Gate, compare_chain
from tests.io.eval_log_files import lm_eval_record, write_lm_eval

CLASSES = 5


def prediction_versions(tmp: Path, n: int = 400, versions: int = 4, seed: int = 0):
    """``versions`` CSV files (ids shuffled per file, labels and a group in each) and the
    right/wrong matrix they imply."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, CLASSES, n)
    site = rng.choice(["north", "south"], n)
    right = rng.random(n) < 0.7
    paths, preds = [], []
    for v in range(versions):
        if v:
            redo = rng.random(n) < 0.25
            right = np.where(redo, rng.random(n) < 0.75, right)
        wrong = (label + rng.integers(1, CLASSES, n)) % CLASSES
        pred = np.where(right, label, wrong)
        order = rng.permutation(n)
        frame = pd.DataFrame({"id": order, "label": label[order], "pred": pred[order]})
        frame["site"] = site[order]
        path = tmp / f"v{v + 1}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
        preds.append(pred)
    correct = np.stack([p == label for p in preds], axis=1)
    return paths, correct, label, site


def direct(correct: np.ndarray):
    """NFR, PFR of every pair and the re-introduced counts, straight from the definitions."""
    n, versions = correct.shape
    pairs = {}
    for i in range(versions):
        for j in range(i + 1, versions):
            nf = int((correct[:, i] & ~correct[:, j]).sum())
            pf = int((~correct[:, i] & correct[:, j]).sum())
            pairs[(i, j)] = (nf, pf)
    back = {}
    for k in range(2, versions):
        count = 0
        for x in range(n):
            if not correct[x, k] and correct[x, k - 1]:
                count += any(not correct[x, i] for i in range(k - 1))
        back[k] = count
    return pairs, back


def test_every_pair_and_the_reintroduced_errors_match_a_direct_count(tmp_path):
    paths, correct, label, _ = prediction_versions(tmp_path)
    chain = compare_chain(paths, n_resamples=200)
    n = len(label)
    # the chain's items are in the last file's order: map back by id
    order = chain.ids.astype(np.int64)
    assert sorted(order.tolist()) == list(range(n))
    assert (chain.correct == correct[order]).all()
    pairs, back = direct(correct)
    table = chain.flip_table().set_index(["old", "new"])
    assert len(table) == 6
    for (i, j), (nf, pf) in pairs.items():
        row = table.loc[(i, j)]
        assert row["n"] == n
        assert row["negative_flips"] == nf and row["positive_flips"] == pf
        assert row["negative_flip_rate"] == nf / n
        assert row["positive_flip_rate"] == pf / n
        low, high = wilson_interval(nf, n)
        assert math.isclose(row["negative_flip_rate_low"], low)
        assert math.isclose(row["negative_flip_rate_high"], high)
        assert row["consecutive"] == (j == i + 1)
    matrix = chain.matrix()
    assert matrix.iloc[0, 3] == pairs[(0, 3)][0] / n and np.isnan(matrix.iloc[3, 0])
    again = chain.reintroduced()
    assert again.index.tolist() == [2, 3]
    for k, count in back.items():
        assert again.loc[k, "count"] == count
        assert again.loc[k, "rate"] == count / n
        assert again.loc[k, "negative_flips"] == pairs[(k - 1, k)][0]
        assert again.loc[k, "share_of_negative_flips"] == count / pairs[(k - 1, k)][0]
        assert math.isclose(again.loc[k, "rate_low"], wilson_interval(count, n)[0])
    rates = chain.error_rates()
    assert rates["errors"].tolist() == [int((~correct[:, v]).sum()) for v in range(4)]
    assert chain.names == ("v1.csv", "v2.csv", "v3.csv", "v4.csv")
    assert chain.n_excluded == 0 and chain.format == "predictions"


def test_a_pair_of_the_chain_is_the_two_file_comparison(tmp_path):
    paths, *_ = prediction_versions(tmp_path, versions=3)
    chain = compare_chain(paths, group_cols=["site"], n_resamples=200)
    pair = load_comparison(paths[1], paths[2], group_cols=["site"])
    from graceful.release import compare

    alone = compare(pair, n_resamples=200)
    step = chain.pair(1, 2)
    assert step.metrics == pytest.approx(alone.metrics)
    assert step.frame.by("site")["negative_flips"].tolist() == (
        alone.frame.by("site")["negative_flips"].tolist()
    )


def test_the_gate_covers_every_consecutive_pair_and_optionally_the_first(tmp_path):
    paths, correct, *_ = prediction_versions(tmp_path)
    pairs, _ = direct(correct)
    n = len(correct)
    steps = [pairs[(k - 1, k)][0] / n for k in range(1, 4)]
    bar = sorted(steps)[1]  # one consecutive pair breaks it
    chain = compare_chain(paths, gate=Gate(max_nfr=bar), n_resamples=200)
    assert chain.gated == ((0, 1), (1, 2), (2, 3))
    verdicts = [p["passed"] for p in chain.gate_summary()["pairs"]]
    assert verdicts == [s <= bar for s in steps]
    assert chain.passed is False
    assert chain.pair(0, 2).gate is None
    # a bar every step clears but the first-to-last pair does not
    loose = max(steps)
    assert pairs[(0, 3)][0] / n > loose
    assert compare_chain(paths, gate=Gate(max_nfr=loose), n_resamples=200).passed
    first = compare_chain(paths, gate=Gate(max_nfr=loose), gate_against_first=True, n_resamples=200)
    assert first.gated[3:] == ((0, 2), (0, 3)) and first.passed is False
    assert [p["passed"] for p in first.gate_summary()["pairs"]][3:] == [
        pairs[(0, 2)][0] / n <= loose,
        False,
    ]
    both = compare_chain(paths, gate=Gate(max_nfr=1.0), gate_against_first=True, n_resamples=200)
    assert both.passed and len(both.gate_summary()["checks"]) == 5
    assert both.gate_summary()["checks"][0]["pair"] == "v1.csv → v2.csv"
    assert compare_chain(paths, n_resamples=200).gate_summary() is None


def test_comparison_inputs_must_chain(tmp_path):
    paths, *_ = prediction_versions(tmp_path, versions=3)
    a = load_comparison(paths[0], paths[1])
    b = load_comparison(paths[1], paths[2])
    chain = compare_chain([a, b], n_resamples=200)
    assert chain.names == ("v1", "v2", "v3") and chain.paths == (None, None, None)
    skipped = load_comparison(paths[0], paths[2])
    with pytest.raises(InputError, match="do not chain"):
        compare_chain([a, skipped])
    with pytest.raises(InputError, match="options for reading files"):
        compare_chain([a, b], labels="x.csv")


# -- evaluation logs ---------------------------------------------------------------------------


def lm_versions(tmp: Path, versions: int = 4, n: int = 60, seed: int = 3):
    """lm-eval output folders of ``versions`` runs over two tasks; in v2 one document
    changed, v3 lacks one document."""
    rng = np.random.default_rng(seed)
    right = {t: rng.random(n) < 0.7 for t in ("arc", "piqa")}
    runs = []
    for v in range(versions):
        if v:
            right = {
                t: np.where(rng.random(n) < 0.3, rng.random(n) < 0.75, r) for t, r in right.items()
            }
        run = {
            t: [lm_eval_record(t, i, float(r[i]), 0.0) for i in range(n)] for t, r in right.items()
        }
        runs.append(run)
    runs[1]["arc"][4]["doc_hash"] = "changed"
    if versions > 2:
        del runs[2]["piqa"][7]
    folders = [write_lm_eval(tmp / f"run{v + 1}", run) for v, run in enumerate(runs)]
    return folders, runs


def lm_direct(runs):
    keys = None
    for run in runs:
        here = {(t, r["doc_id"]) for t, records in run.items() for r in records}
        keys = here if keys is None else keys & here
    hashes = [
        {(t, r["doc_id"]): r["doc_hash"] for t, rs in run.items() for r in rs} for run in runs
    ]
    keys = sorted(k for k in keys if len({h[k] for h in hashes}) == 1)
    acc = [{(t, r["doc_id"]): r["acc"] for t, rs in run.items() for r in rs} for run in runs]
    return keys, np.array([[a[k] == 1.0 for a in acc] for k in keys])


def test_evaluation_logs_are_compared_on_the_items_every_version_kept(tmp_path):
    folders, runs = lm_versions(tmp_path)
    with pytest.warns(UserWarning, match="excluded"):
        chain = compare_chain(folders, n_resamples=200)
    keys, correct = lm_direct(runs)
    n = len(keys)
    assert n == 120 - 2 and len(chain.ids) == n
    # item 'arc:4' changed in v2 (excluded from two comparisons), 'piqa:7' lacks in v3
    assert "arc:4" not in set(chain.ids) and "piqa:7" not in set(chain.ids)
    assert chain.n_excluded == 2 and chain.format == "lm-eval"
    position = {f"{t}:{k}": i for i, (t, k) in enumerate(keys)}
    mine = correct[[position[i] for i in chain.ids]]
    assert (chain.correct == mine).all()
    pairs, back = direct(correct)
    table = chain.flip_table().set_index(["old", "new"])
    for (i, j), (nf, pf) in pairs.items():
        assert table.loc[(i, j), "negative_flip_rate"] == nf / n
        assert table.loc[(i, j), "positive_flip_rate"] == pf / n
    assert chain.reintroduced()["count"].to_dict() == back
    # each consecutive step keeps its pairing, restricted to the chain's items
    step = chain.pair(1, 2)
    assert step.eval_logs is not None
    summary = step.eval_logs.summary()
    assert summary["excluded"]["changed"] == 1  # arc:4 between run2 and run3
    assert summary["excluded"]["only_old"] == 1  # piqa:7
    assert summary["excluded"]["not_in_every_version"] == 0
    first = chain.pair(0, 1).eval_logs.summary()["excluded"]
    assert first["changed"] == 1 and first["not_in_every_version"] == 1  # piqa:7
    by_task = chain.pair(2, 3).by_task()
    assert by_task["n"].sum() == n
    assert chain.pair(0, 2).eval_logs is None


def test_the_chain_summary(tmp_path):
    folders, _runs = lm_versions(tmp_path, versions=3)
    with pytest.warns(UserWarning):
        chain = compare_chain(folders, gate=Gate(max_nfr=0.5), n_resamples=200)
    summary = chain.summary(max_examples=10)
    versions = summary["versions"]
    assert versions["names"] == ["run1", "run2", "run3"]
    assert versions["headline"] == {"old": 1, "new": 2}
    assert len(versions["pairs"]) == 3 and len(versions["reintroduced"]) == 1
    assert versions["n_compared"] == summary["inputs"]["n_compared"] == len(chain.ids)
    assert summary["title"] == "run1 -> run2 -> run3"
    assert summary["gate"]["passed"] is True and summary["gate"]["against_first"] is False
    assert summary["inputs"]["old"].endswith("run2")
    assert summary["eval_logs"]["flipped_items"]["shown"] <= 10
    import json

    json.dumps(summary, allow_nan=False)


def test_a_metric_chosen_differently_per_pair_is_an_error(tmp_path):
    def table(name, columns):
        path = tmp_path / f"{name}.csv"
        pd.DataFrame({"id": [1, 2, 3], **columns}).to_csv(path, index=False)
        return path

    a = table("a", {"correct": [1, 0, 1]})
    b = table("b", {"correct": [1, 1, 1], "em": [1, 1, 0]})
    c = table("c", {"em": [0, 1, 1]})
    with pytest.raises(InputError, match=r"b.csv: task '\(all\)' is compared on 'correct'"):
        compare_chain([a, b, c], format="table")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: [p[0]], "at least 2 versions, but got 1"),
        (lambda p: [p[0], p[1], p[2].parent / "nope.csv"], r"version 3 \(.*nope.csv\): no such"),
        (lambda p: [], "files \\(at least 2\\)"),
        (lambda p: [p[0], load_comparison(p[0], p[1])], "files \\(at least 2\\)"),
        (lambda p: [p[0], p[1]], None),
    ],
    ids=["one version", "missing file", "nothing", "mixed", "two versions"],
)
def test_bad_versions(tmp_path, make, needle):
    paths, *_ = prediction_versions(tmp_path, versions=3, n=30)
    if needle is None:
        assert compare_chain(make(paths), n_resamples=200).n_versions == 2
        return
    with pytest.raises(InputError, match=needle):
        compare_chain(make(paths))


def test_versions_of_different_kinds(tmp_path):
    paths, *_ = prediction_versions(tmp_path, versions=2, n=30)
    folders, _ = lm_versions(tmp_path, versions=2)
    with pytest.raises(InputError, match=r"versions of different kinds: .*v1\.csv is a prediction"):
        compare_chain([paths[0], paths[1], folders[0]])


def test_eval_log_inputs_chain(tmp_path):
    folders, _runs = lm_versions(tmp_path, versions=3)
    with pytest.warns(UserWarning):
        a = load_eval_comparison(folders[0], folders[1])
        b = load_eval_comparison(folders[1], folders[2])
        from_files = compare_chain(folders, n_resamples=200)
    chain = compare_chain([a, b], names=["x", "y", "z"], n_resamples=200)
    assert chain.names == ("x", "y", "z")
    assert chain.matrix().equals(
        from_files.matrix().set_axis(["x", "y", "z"]).set_axis(["x", "y", "z"], axis=1)
    )
