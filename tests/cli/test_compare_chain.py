"""`graceful compare v1 v2 v3 ...` end to end: the chain's summary, exit codes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graceful.cli.app import app
from tests.release.test_chain import direct, lm_direct, lm_versions, prediction_versions

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


def test_a_chain_of_prediction_files(tmp_path):
    paths, correct, *_ = prediction_versions(tmp_path)
    pairs, back = direct(correct)
    n = len(correct)
    out = tmp_path / "out"
    result = _run(*paths, "--out", out, "--bootstrap", "200")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    versions = summary["versions"]
    assert versions["names"] == ["v1.csv", "v2.csv", "v3.csv", "v4.csv"]
    assert versions["paths"] == [str(p) for p in paths]
    assert versions["n_compared"] == n and versions["n_excluded"] == 0
    got = {
        (r["old"], r["new"]): (r["negative_flips"], r["positive_flips"]) for r in versions["pairs"]
    }
    assert got == pairs
    for row in versions["pairs"]:
        assert row["negative_flip_rate"] == pairs[(row["old"], row["new"])][0] / n
    assert {r["version"]: r["count"] for r in versions["reintroduced"]} == back
    # the other sections are the last step's, as a two-file run writes them
    assert summary["inputs"]["old"] == str(paths[2]) and summary["inputs"]["new"] == str(paths[3])
    assert summary["metrics"]["negative_flip_rate"]["value"] == pairs[(2, 3)][0] / n
    assert summary["gate"] is None
    assert "re-introduced errors" in result.stdout and "v3.csv -> v4.csv" in result.stdout
    page = (out / "report.html").read_text()
    assert 'id="versions"' in page


def test_the_gate_over_the_chain(tmp_path):
    paths, correct, *_ = prediction_versions(tmp_path)
    pairs, _ = direct(correct)
    n = len(correct)
    worst_step = max(pairs[(k - 1, k)][0] for k in range(1, 4)) / n
    ok = _run(*paths, "--out", tmp_path / "a", "--max-nfr", worst_step, "--quiet")
    assert ok.exit_code == 0, ok.output
    first = _run(*paths, "--out", tmp_path / "b", "--max-nfr", worst_step, "--gate-against-first")
    assert first.exit_code == 1, first.output
    assert "gate: FAILED" in first.stderr
    gate = json.loads((tmp_path / "b" / "summary.json").read_text())["gate"]
    assert gate["passed"] is False and gate["against_first"] is True
    assert [(p["old"], p["new"], p["passed"]) for p in gate["pairs"]][-1] == (0, 3, False)
    strict = _run(*paths, "--out", tmp_path / "c", "--max-nfr", 0.0, "--no-html")
    assert strict.exit_code == 1
    assert not (tmp_path / "c" / "report.html").exists()


def test_a_chain_of_evaluation_logs(tmp_path):
    folders, runs = lm_versions(tmp_path)
    keys, correct = lm_direct(runs)
    pairs, back = direct(correct)
    out = tmp_path / "out"
    result = _run(*folders, "--out", out, "--bootstrap", "200")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    versions = summary["versions"]
    assert versions["format"] == "lm-eval" and versions["n_compared"] == len(keys)
    assert versions["n_excluded"] == 2
    got = {
        (r["old"], r["new"]): (r["negative_flips"], r["positive_flips"]) for r in versions["pairs"]
    }
    assert got == pairs
    assert {r["version"]: r["count"] for r in versions["reintroduced"]} == back
    assert summary["eval_logs"]["excluded"]["not_in_every_version"] == 1
    assert {row["task"] for row in summary["eval_logs"]["by_task"]} == {"arc", "piqa"}
    # the same exclusion is read twice (run2 with run1 and with run3): one warning line
    warned = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warned) == len(set(warned))


def _bad(tmp: Path) -> dict[str, tuple[list[object], str]]:
    paths, *_ = prediction_versions(tmp, versions=3, n=40)
    folders, _ = lm_versions(tmp, versions=2)
    return {
        "one version": ([paths[0]], "expected at least two versions (OLD NEW [NEWER]...), got 1"),
        "missing file": (
            [paths[0], paths[1], tmp / "gone.csv"],
            "version 3 (" + str(tmp / "gone.csv") + "): no such file or folder",
        ),
        "different kinds": (
            [paths[0], paths[1], folders[0]],
            "versions of different kinds: " + str(paths[0]) + " is a prediction file",
        ),
        "log options with predictions": (
            [*paths, "--metric", "acc"],
            "--metric applies to evaluation logs",
        ),
        "prediction options with logs": (
            [folders[0], folders[1], folders[0], "--top-k", "2"],
            "--top-k applies to prediction files",
        ),
        "class map": ([*paths, "--class-map", tmp / "map.json"], "--class-map applies to two"),
        "mlflow": ([*paths, "--mlflow-experiment", "x"], "--mlflow-experiment applies to two"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "one version",
        "missing file",
        "different kinds",
        "log options with predictions",
        "prediction options with logs",
        "class map",
        "mlflow",
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    args, needle = _bad(tmp_path)[case]
    out = tmp_path / "out"
    result = _run(*args, "--out", out)
    assert result.exit_code == 2, (case, result.output)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("graceful compare: error:"), result.stderr
    assert needle in err[0], err[0]
    assert not out.exists()
