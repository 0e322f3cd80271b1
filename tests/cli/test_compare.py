"""`graceful compare` end to end: outputs, the release gate's exit codes, and bad input."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from graceful.cli.app import app

runner = CliRunner()


def _frames(n=60, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    out = []
    for acc in (0.7, 0.8):
        logits = rng.normal(size=(n, classes)).astype(np.float32)
        right = rng.random(n) < acc
        logits[np.arange(n), y] += np.where(right, 4.0, -4.0)
        frame = pd.DataFrame({"id": np.arange(n), "label": y})
        for c in range(classes):
            frame[f"logit_{c}"] = logits[:, c]
        frame["region"] = np.where(np.arange(n) % 2, "north", "south")
        out.append(frame)
    return out


@pytest.fixture
def pair(tmp_path):
    old, new = _frames()
    old.to_csv(tmp_path / "old.csv", index=False)
    new.sample(frac=1.0, random_state=1).to_parquet(tmp_path / "new.parquet", index=False)
    return tmp_path / "old.csv", tmp_path / "new.parquet"


def _run(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


def test_compare_writes_summary_and_report(pair, tmp_path):
    out = tmp_path / "out"
    result = _run(*pair, "--out", out, "--group-col", "region")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["n_compared"] == 60
    assert summary["inputs"]["id_source"] == "id"
    assert set(summary["by_group"]) == {"region"}
    nfr = summary["metrics"]["negative_flip_rate"]
    assert nfr["value"] == nfr["numerator"] / nfr["denominator"]
    acc_gain = (
        summary["metrics"]["error_rate_old"]["value"]
        - summary["metrics"]["error_rate_new"]["value"]
    )
    pfr = summary["metrics"]["positive_flip_rate"]["value"]
    assert acc_gain == pytest.approx(pfr - nfr["value"], abs=1e-12)
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "negative_flip_rate" in result.stdout


def test_gate_exit_codes(pair, tmp_path):
    passing = _run(*pair, "--out", tmp_path / "a", "--max-nfr", "0.99", "--min-btc", "0.01")
    assert passing.exit_code == 0, passing.output
    failing = _run(*pair, "--out", tmp_path / "b", "--max-nfr", "0.0")
    assert failing.exit_code == 1
    # the report is still written when the gate fails: it explains the failure
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["gate"]["passed"] is False
    assert summary["gate"]["checks"][0]["name"] == "max_nfr"


def test_gate_significant_regression(tmp_path):
    y = np.zeros(200, dtype=int)
    old = pd.DataFrame({"id": range(200), "label": y, "pred": y})
    new_pred = y.copy()
    new_pred[:40] = 1  # 40 negative flips, no positive flip
    new = pd.DataFrame({"id": range(200), "pred": new_pred})
    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    args = (tmp_path / "old.csv", tmp_path / "new.csv", "--out", tmp_path / "o")
    assert _run(*args).exit_code == 0
    assert _run(*args, "--fail-on-significant-regression").exit_code == 1


def _write(tmp_path, name, frame):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    return path


def _bad_cases(tmp_path):
    old, new = _frames(n=20)
    cases = {}
    cases["lengths"] = (
        _write(tmp_path, "o1.csv", old.drop(columns="id")),
        _write(tmp_path, "n1.csv", new.drop(columns="id").iloc[:19]),
        [],
        "different lengths",
    )
    dup = new.copy()
    dup.loc[3, "id"] = 2
    cases["duplicated ids"] = (
        _write(tmp_path, "o2.csv", old),
        _write(tmp_path, "n2.csv", dup),
        [],
        "2",
    )
    missing = new.copy()
    missing.loc[5, "id"] = 999
    cases["missing ids"] = (
        _write(tmp_path, "o3.csv", old),
        _write(tmp_path, "n3.csv", missing),
        [],
        "999",
    )
    outside = old.copy()
    outside.loc[0, "label"] = 7
    cases["label outside classes"] = (
        _write(tmp_path, "o4.csv", outside),
        _write(tmp_path, "n4.csv", new.drop(columns="label")),
        [],
        "7",
    )
    nan = new.copy()
    nan.loc[4, "logit_2"] = np.nan
    cases["nan logits"] = (
        _write(tmp_path, "o5.csv", old),
        _write(tmp_path, "n5.parquet", nan),
        [],
        "logit_2",
    )
    inf = new.copy()
    inf.loc[4, "logit_1"] = np.inf
    cases["inf logits"] = (
        _write(tmp_path, "o6.csv", old),
        _write(tmp_path, "n6.parquet", inf),
        [],
        "logit_1",
    )
    more = new.copy()
    more["logit_4"] = 0.0
    cases["class count"] = (
        _write(tmp_path, "o7.csv", old),
        _write(tmp_path, "n7.csv", more),
        [],
        "class",
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases["empty"] = (_write(tmp_path, "o8.csv", old), empty, [], "empty.csv")
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,label,pred\n")
    cases["no rows"] = (_write(tmp_path, "o9.csv", old), header_only, [], "header.csv")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    cases["corrupt"] = (_write(tmp_path, "o10.csv", old), corrupt, [], "corrupt.parquet")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    cases["unreadable"] = (_write(tmp_path, "o11.csv", old), folder, [], "folder.csv")
    cases["missing column"] = (
        _write(tmp_path, "o12.csv", old),
        _write(tmp_path, "n12.csv", new),
        ["--label-col", "target"],
        "target",
    )
    mixed = new.copy().astype({"logit_0": object})
    mixed.loc[2, "logit_0"] = "high"
    cases["mixed types"] = (
        _write(tmp_path, "o13.csv", old),
        _write(tmp_path, "n13.csv", mixed),
        [],
        "logit_0",
    )
    cases["no such file"] = (
        _write(tmp_path, "o14.csv", old),
        tmp_path / "nope.csv",
        [],
        "nope.csv",
    )
    bad_map = tmp_path / "map.json"
    bad_map.write_text("{not json")
    cases["bad class map"] = (
        _write(tmp_path, "o15.csv", old),
        _write(tmp_path, "n15.csv", new),
        ["--class-map", str(bad_map)],
        "map.json",
    )
    cases["top-k too large"] = (
        _write(tmp_path, "o16.csv", old),
        _write(tmp_path, "n16.csv", new),
        ["--top-k", "9"],
        "top_k",
    )
    cases["unsupported format"] = (
        _write(tmp_path, "o17.csv", old),
        tmp_path / "new.xlsx",
        [],
        "new.xlsx",
    )
    (tmp_path / "new.xlsx").write_text("x")
    cases["bad gate"] = (
        _write(tmp_path, "o18.csv", old),
        _write(tmp_path, "n18.csv", new),
        ["--max-nfr", "2"],
        "max_nfr",
    )
    # Columns of nested values (a Parquet list or struct), in every role.
    nested = pa.Table.from_pandas(new, preserve_index=False)
    nested = nested.append_column("tags", pa.array([[i, 1] for i in range(20)]))
    nested = nested.append_column("meta", pa.array([{"k": i} for i in range(20)]))
    pq.write_table(nested, tmp_path / "nested.parquet")
    for role, column, option in [
        ("group", "tags", "--group-col"),
        ("id", "meta", "--id-col"),
        ("label", "tags", "--label-col"),
        ("prediction", "meta", "--pred-col"),
    ]:
        cases[f"nested {role} column"] = (
            tmp_path / "nested.parquet",
            tmp_path / "nested.parquet",
            [option, column],
            f"nested.parquet: {role} column '{column}' holds nested values",
        )
    bad_utf8 = tmp_path / "latin1.csv"
    bad_utf8.write_bytes(
        b"id,label,pred\n" + b"".join(b"caf\xe9%d,%d,0\n" % (i, i % 2) for i in range(20))
    )
    cases["non-UTF-8 ids"] = (
        bad_utf8,
        bad_utf8,
        [],
        "latin1.csv: id column 'id' is not UTF-8 text: b'caf\\xe90' at row 0",
    )
    cases["score column as hard labels"] = (
        _write(tmp_path, "o19.csv", old),
        _write(tmp_path, "n19.csv", new),
        ["--pred-col", "logit_0"],
        "o19.csv: prediction column 'logit_0' holds scores, not class labels",
    )
    uniform = old.drop(columns=[f"logit_{c}" for c in range(4)])
    probs = new.drop(columns=[f"logit_{c}" for c in range(4)])
    for c in range(4):
        uniform[f"prob_{c}"] = 0.25
        probs[f"prob_{c}"] = 0.125  # rows sum to 0.5
    cases["probabilities that are no distribution"] = (
        _write(tmp_path, "o20.csv", uniform),
        _write(tmp_path, "n20.csv", probs),
        ["--scores", "probs"],
        "n20.csv: scores='probs' but row 0 (id 0) is not a probability distribution: its"
        " scores sum to 0.5",
    )
    labels = old[["id", "label"]].copy()
    labels.loc[3, "label"] = (labels.loc[3, "label"] + 1) % 4
    cases["labels file disagrees"] = (
        _write(tmp_path, "o21.csv", old),
        _write(tmp_path, "n21.csv", new),
        ["--labels", str(_write(tmp_path, "y21.csv", labels))],
        "labels disagree: y21.csv and n21.csv have different 'label' at id 3",
    )
    twice = tmp_path / "twice.csv"
    twice.write_text("id,label,pred,pred\n" + "".join(f"{i},0,0,1\n" for i in range(20)))
    cases["duplicate column names"] = (
        twice,
        twice,
        [],
        "twice.csv: column 'pred' appears 2 times",
    )
    cases["group column twice"] = (
        _write(tmp_path, "o22.csv", old),
        _write(tmp_path, "n22.csv", new),
        ["--group-col", "region", "--group-col", "region"],
        "`group_cols` to name each column once, but got 'region' 2 times",
    )
    nan_labels = old.copy()
    nan_labels["label"] = nan_labels["label"].astype(float)
    nan_labels.loc[6, "label"] = np.nan
    cases["NaN labels"] = (
        _write(tmp_path, "o23.parquet", nan_labels),
        _write(tmp_path, "n23.csv", new.drop(columns="label")),
        [],
        "o23.parquet: missing value (null/NaN) in column 'label' at row 6 (id 6)",
    )
    cases["huge top-k"] = (
        _write(tmp_path, "o24.csv", old),
        _write(tmp_path, "n24.csv", new),
        ["--top-k", str(10**30)],
        "top_k",
    )
    cases["negative top-k"] = (
        _write(tmp_path, "o25.csv", old),
        _write(tmp_path, "n25.csv", new),
        ["--top-k", "-3"],
        "Expected argument `top_k` to be a positive int, but got -3",
    )
    cases["negative seed"] = (
        _write(tmp_path, "o26.csv", old),
        _write(tmp_path, "n26.csv", new),
        ["--seed", "-1"],
        "Expected argument `random_state` to be an int in [0, 4294967295], but got -1",
    )
    cases["empty score prefix"] = (
        _write(tmp_path, "o27.csv", old),
        _write(tmp_path, "n27.csv", new),
        ["--score-prefix", ""],
        "`score_prefix` to be a non-empty str",
    )
    cases["directory as labels file"] = (
        _write(tmp_path, "o28.csv", old),
        _write(tmp_path, "n28.csv", new),
        ["--labels", str(folder)],
        "folder.csv: not a regular file",
    )
    cases["header-only labels file"] = (
        _write(tmp_path, "o29.csv", old),
        _write(tmp_path, "n29.csv", new),
        ["--labels", str(header_only)],
        "header.csv: empty file (no rows)",
    )
    return cases


CASES = [
    "lengths",
    "duplicated ids",
    "missing ids",
    "label outside classes",
    "nan logits",
    "inf logits",
    "class count",
    "empty",
    "no rows",
    "corrupt",
    "unreadable",
    "missing column",
    "mixed types",
    "no such file",
    "bad class map",
    "top-k too large",
    "unsupported format",
    "bad gate",
    "nested group column",
    "nested id column",
    "nested label column",
    "nested prediction column",
    "non-UTF-8 ids",
    "score column as hard labels",
    "probabilities that are no distribution",
    "labels file disagrees",
    "duplicate column names",
    "group column twice",
    "NaN labels",
    "huge top-k",
    "negative top-k",
    "negative seed",
    "empty score prefix",
    "directory as labels file",
    "header-only labels file",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    old, new, extra, needle = _bad_cases(tmp_path)[case]
    out = tmp_path / "out"
    result = _run(old, new, "--out", out, *extra)
    assert result.exit_code == 2, (case, result.output)
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("graceful compare: error:"), err
    assert needle.lower() in err.replace(f"{tmp_path}/", "").lower(), err
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_real_process_exit_code_and_stderr(tmp_path):
    """The installed entry point, not just the in-process runner."""
    old, _ = _frames(n=10)
    _write(tmp_path, "old.csv", old)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "graceful",
            "compare",
            str(tmp_path / "old.csv"),
            str(tmp_path / "x.csv"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "x.csv" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_gate_lines_name_each_statistic(tmp_path):
    """Every gate line names its statistic, its value and its bar; the significance line
    shows McNemar's p-value against alpha and the direction, not a 0/1 flag."""
    y = np.zeros(200, dtype=int)
    new_pred = y.copy()
    new_pred[:40] = 1  # 40 negative flips, no positive flip
    pd.DataFrame({"id": range(200), "label": y, "pred": y}).to_csv(tmp_path / "o.csv", index=False)
    pd.DataFrame({"id": range(200), "pred": new_pred}).to_csv(tmp_path / "n.csv", index=False)
    result = _run(
        tmp_path / "o.csv", tmp_path / "n.csv", "--out", tmp_path / "out", "--max-nfr", "0.1",
        "--max-rel-nfr", "2", "--min-btc", "0.5", "--fail-on-significant-regression",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    text = " ".join(result.stdout.split())  # rich wraps long lines
    assert "(value" not in text
    for line in (
        "gate FAIL: max_nfr: NFR = 20% > max 10%",
        "gate pass: min_btc: BTC = 80% >= min 50%",
        "gate pass: max_rel_nfr: relative NFR = 1 <= max 2",
        "gate FAIL: no_significant_regression: McNemar p = 1.82e-12 < alpha 0.05,"
        " new model significantly worse",
    ):
        assert line in text, text


# -- outputs: all of them or none, with the user's permissions ----------------------------------


def _listing(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else None


def test_unwritable_report_leaves_no_summary(pair, tmp_path):
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)  # in the way of the report
    result = _run(*pair, "--out", out)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"graceful compare: error: --out {out}: cannot write: report.html there is a folder,"
        " not a file\n"
    )
    assert [p.name for p in out.iterdir()] == ["report.html"]  # no summary.json
    assert not any((out / "report.html").iterdir())


@pytest.mark.parametrize("failing", ["report.html", "summary.json"])
def test_failed_run_leaves_the_previous_files_whole(pair, tmp_path, monkeypatch, failing):
    out = tmp_path / "out"
    assert _run(*pair, "--out", out).exit_code == 0
    before = _listing(out)
    real_replace = os.replace

    def replace(src, dst):  # one of the files cannot be moved in place
        if Path(dst) == out / failing:
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    result = _run(*pair, "--out", out, "--top-k", "2")  # other results, same file names
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert (
        result.stderr == f"graceful compare: error: --out {out}: cannot write: Permission denied\n"
    )
    assert _listing(out) == before  # the files moved in were put back; nothing else is there


def test_out_inside_a_folder_that_cannot_be_written(pair, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):  # as in a read-only folder, whoever runs the test
        if self.parent == locked or locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    out = locked / "deep" / "out"
    result = _run(*pair, "--out", out)
    assert result.exit_code == 2, result.output
    assert (
        result.stderr == f"graceful compare: error: --out {out}: cannot write: Permission denied\n"
    )
    assert list(locked.iterdir()) == []


def test_out_in_a_read_only_folder(pair, tmp_path, as_unprivileged):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = as_unprivileged(
            [sys.executable, "-m", "graceful", "compare", *pair, "--out", locked / "out"]
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr == (
            f"graceful compare: error: --out {locked / 'out'}: cannot write: Permission denied\n"
        )
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


@pytest.mark.parametrize("exists", [False, True])
def test_outputs_get_the_users_permissions(pair, tmp_path, umask_027, exists):
    out = tmp_path / "out"
    if exists:
        out.mkdir()
    assert _run(*pair, "--out", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "summary.json"]
    for name in ("summary.json", "report.html"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o640, name  # 0o666 & ~0o027
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


def test_empty_out_is_refused(pair, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(*pair, "--out", "")  # e.g. --out "$UNSET": not the current folder
    assert result.exit_code == 2
    assert result.stderr == "graceful compare: error: --out must not be empty\n"
    assert not (tmp_path / "summary.json").exists()


# -- how the scores were read -------------------------------------------------------------------


def test_auto_scores_warn_in_one_line_and_are_recorded(tmp_path):
    old, new = _frames(n=20)
    halves = new.drop(columns=[f"logit_{c}" for c in range(4)])
    for c in range(4):
        halves[f"prob_{c}"] = 0.125
    out = tmp_path / "out"
    result = _run(
        _write(tmp_path, "old.csv", old), _write(tmp_path, "new.csv", halves), "--out", out
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"graceful compare: warning: {tmp_path / 'new.csv'}: scores='auto' reads the score"
        " columns 'prob_0'..'prob_3' as logits (taking their softmax), although they are named"
        " 'prob_*': row 0 (id 0) is not a probability distribution: its scores sum to 0.5;"
        " pass scores='logits' or scores='probs' (--scores) to choose\n"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["scores"] == {"old": "logits", "new": "logits"}


def test_obvious_scores_do_not_warn(pair, tmp_path):
    result = _run(*pair, "--out", tmp_path / "out")
    assert result.exit_code == 0 and result.stderr == ""


# -- terminal output is never read as markup ----------------------------------------------------


def test_data_in_terminal_output_is_not_markup(tmp_path):
    old, new = _frames(n=20)
    old_path = _write(tmp_path, "[red]old.csv", old)
    new_path = _write(tmp_path, "[b]new.csv", new)
    result = runner.invoke(
        app,
        ["compare", str(old_path), str(new_path), "--out", str(tmp_path / "o")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "[red]old.csv -> [b]new.csv" in result.stdout


def test_help_shows_bracketed_notes(monkeypatch):
    result = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for note in (
        "Id column to join on [default: 'id' if present, else row position].",
        "Hard-label prediction column [default: 'pred' if present].",
        "Prefix of score columns, e.g. 'logit_' [default: auto: logit_/prob_/score_].",
        "(needs graceful[mlflow])",
        "[default: $MLFLOW_TRACKING_URI, else MLflow's own].",
    ):
        assert note in text, note


def test_demo_failures_are_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "file" / "sub")])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "graceful demo: error: NotADirectoryError: [Errno 20] Not a directory:"
        f" '{tmp_path / 'file' / 'sub'}'\n"
    )


def test_a_bug_exits_3_with_its_traceback_never_1(pair, tmp_path, monkeypatch):
    import graceful.release

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(graceful.release, "compare_files", broken)
    out = tmp_path / "out"
    result = _run(*pair, "--out", out, "--max-nfr", "0.5")
    assert result.exit_code == 3, result.output
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "graceful compare: internal error (a bug in graceful; please report it with the "
        "traceback above): ZeroDivisionError: division by zero"
    )
    assert not out.exists()
