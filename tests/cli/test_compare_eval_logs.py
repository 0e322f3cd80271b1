"""`graceful compare` on evaluation logs end to end: exit codes, summary.json, bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from graceful.cli.app import app
from tests.io.eval_log_files import (
    direct_inspect_nfr,
    direct_nfr,
    inspect_pair,
    lm_eval_pair,
    write_inspect_eval,
    write_jsonl,
    write_lm_eval,
)

runner = CliRunner()
DATA = Path(__file__).parents[1] / "io" / "data" / "inspect"


def _run(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


@pytest.fixture
def lm_pair(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 1200, "hellaswag": 800}, seed=21)
    new["arc_easy"][0]["doc_hash"] = "changed"
    return (
        write_lm_eval(tmp_path / "old", old),
        write_lm_eval(tmp_path / "new", new),
        old,
        new,
    )


def test_lm_eval_folders_end_to_end(lm_pair, tmp_path):
    a, b, old, new = lm_pair
    out = tmp_path / "out"
    result = _run(a, b, "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    keep = {t: [r for r in rs if r["doc_hash"] != "changed"] for t, rs in new.items()}
    nfr, pfr, n = direct_nfr(old, keep)
    assert summary["inputs"]["format"] == "lm-eval"
    assert summary["inputs"]["n_compared"] == n == 1999
    assert summary["metrics"]["negative_flip_rate"]["value"] == nfr
    assert summary["metrics"]["positive_flip_rate"]["value"] == pfr
    tasks = {row["group"]: row for row in summary["by_group"]["task"]}
    assert set(tasks) == {"arc_easy", "hellaswag"}
    assert (
        tasks["hellaswag"]["negative_flip_rate"]
        == direct_nfr({"hellaswag": old["hellaswag"]}, {"hellaswag": new["hellaswag"]})[0]
    )
    logs = summary["eval_logs"]
    assert logs["metric"] == "acc" and logs["rule"] == "correct when acc = 1"
    assert logs["excluded"]["changed"] == 1
    # the exclusion is one warning line on stderr
    assert "warning: excluded 1 item(s) from the comparison: 1 changed" in result.stderr
    assert "per task (correct when acc = 1)" in result.stdout
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "hellaswag" in page


def test_the_gate_on_evaluation_logs(lm_pair, tmp_path):
    a, b, *_ = lm_pair
    failing = _run(a, b, "--out", tmp_path / "f", "--max-nfr", "0.0", "--quiet")
    assert failing.exit_code == 1, failing.output
    assert json.loads((tmp_path / "f" / "summary.json").read_text())["gate"]["passed"] is False
    passing = _run(a, b, "--out", tmp_path / "p", "--max-nfr", "0.5", "--format", "lm-eval")
    assert passing.exit_code == 0, passing.output


def test_inspect_logs_with_a_score_threshold(tmp_path):
    pytest.importorskip("zstandard")
    out = tmp_path / "out"
    result = _run(
        DATA / "old.eval",
        DATA / "new.eval",
        "--metric",
        "partial",
        "--score-threshold",
        "0.5",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    logs = json.loads((out / "summary.json").read_text())["eval_logs"]
    assert logs["format"] == "inspect" and logs["score_threshold"] == 0.5
    assert logs["rule"] == "correct when partial >= 0.5"
    assert logs["tasks"][0]["binary"] is False
    assert logs["excluded"]["errored"] == 2
    changes = logs["score_changes"]["overall"]
    assert changes["n"] == 22
    assert changes["total_decrease"] == pytest.approx(
        changes["decreased"] * changes["mean_decrease"]
    )


def test_inspect_few_thousand_items(tmp_path):
    old, new = inspect_pair(2500, seed=22)
    a = write_inspect_eval(tmp_path / "a.eval", "mmlu", old)
    b = write_inspect_eval(tmp_path / "b.eval", "mmlu", new)
    result = _run(a, b, "--out", tmp_path / "out", "--format", "inspect", "--no-html")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["negative_flip_rate"]["value"] == direct_inspect_nfr(old, new)[0]


def test_a_table_needs_its_format_named(tmp_path):
    pd.DataFrame({"id": [1, 2], "task": "t", "correct": [1, 0]}).to_csv(tmp_path / "o.csv")
    pd.DataFrame({"id": [1, 2], "task": "t", "correct": [0, 0]}).to_csv(tmp_path / "n.csv")
    result = _run(
        tmp_path / "o.csv", tmp_path / "n.csv", "--format", "table", "--out", tmp_path / "x"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["metrics"]["negative_flip_rate"]["value"] == 0.5
    assert summary["inputs"]["format"] == "table"


def _bad_cases(tmp: Path) -> dict[str, tuple[list[object], str]]:
    old, new = lm_eval_pair({"arc_easy": 6, "piqa": 4}, seed=23)
    a, b = write_lm_eval(tmp / "a", old), write_lm_eval(tmp / "b", new)
    log = write_inspect_eval(tmp / "log.eval", "t", inspect_pair(4)[0])
    truncated = write_jsonl(
        tmp / "t" / "samples_arc_easy_2024-01-01T00-00-00.jsonl", old["arc_easy"]
    )
    truncated.write_text(truncated.read_text()[:-25])
    with zipfile.ZipFile(tmp / "other.eval", "w") as archive:
        archive.writestr("readme.txt", "hello")
    other_tasks = write_lm_eval(tmp / "c", lm_eval_pair({"boolq": 3})[0])
    missing = lm_eval_pair({"arc_easy": 6, "piqa": 4}, seed=23)[1]
    del missing["piqa"][2]["acc"]
    missing_dir = write_lm_eval(tmp / "m", missing)
    pd.DataFrame({"id": [1], "label": [0], "pred": [0]}).to_csv(tmp / "p.csv", index=False)
    return {
        "another format than named": (
            [log, log, "--format", "lm-eval"],
            "log.eval: is an Inspect log, not an lm-evaluation-harness",
        ),
        "formats differ": ([log, b], "is an Inspect log but"),
        "truncated line": ([a, truncated.parent], "line 6: not valid JSON"),
        "zip not an inspect log": (
            [tmp / "other.eval", log],
            "other.eval: a zip, but not an Inspect log",
        ),
        "no common task": ([a, other_tasks], "have no task in common"),
        "metric missing": ([a, missing_dir], "line 3: no numeric value for the metric 'acc'"),
        "unknown metric": ([a, b, "--metric", "f1"], "has the metric 'f1' in both runs"),
        "labels with logs": (
            [a, b, "--labels", tmp / "p.csv"],
            "--labels applies to prediction files",
        ),
        "group col with logs": (
            [a, b, "--group-col", "x"],
            "--group-col applies to prediction files",
        ),
        "metric with predictions": (
            [tmp / "p.csv", tmp / "p.csv", "--metric", "acc"],
            "--metric applies to evaluation logs",
        ),
        "table not detected": ([tmp / "p.csv", log], "p.csv: not an evaluation log"),
        "score threshold not a number": ([a, b, "--score-threshold", "nan"], "score_threshold"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "another format than named",
        "formats differ",
        "truncated line",
        "zip not an inspect log",
        "no common task",
        "metric missing",
        "unknown metric",
        "labels with logs",
        "group col with logs",
        "metric with predictions",
        "table not detected",
        "score threshold not a number",
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    args, needle = _bad_cases(tmp_path)[case]
    out = tmp_path / "out"
    result = _run(*args, "--out", out)
    assert result.exit_code == 2, (case, result.output)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("graceful compare: error:"), result.stderr
    assert needle in err[0], err[0]
    assert not out.exists()


def test_a_task_of_one_run_is_a_warning_and_the_rest_is_compared(tmp_path):
    old, new = lm_eval_pair({"arc_easy": 30, "piqa": 20}, seed=24)
    del new["piqa"]
    out = tmp_path / "out"
    result = _run(
        write_lm_eval(tmp_path / "a", old), write_lm_eval(tmp_path / "b", new), "--out", out
    )
    assert result.exit_code == 0, result.output
    assert "warning: 1 task(s) only in" in result.stderr and "'piqa' " not in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_logs"]["tasks_only_old"] == ["piqa"]
    assert summary["inputs"]["n_compared"] == 30
