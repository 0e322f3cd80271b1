"""`graceful compare` end to end: outputs, the release gate's exit codes, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
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
    assert needle.lower() in err.lower(), err
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
