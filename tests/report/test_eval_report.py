"""The report of evaluation logs (per-task flips, flipped items with their texts, a task
filter) and of a chain of versions: content, escaping, and the page in Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from graceful.metrics import wilson_interval
from graceful.release import Gate, compare_chain, compare_eval_logs
from graceful.release.compare import TEXT_CHARS
from graceful.report import render_html, write_html
from tests.report.browser import dump_dom
from tests.report.test_html import _parse

HOSTILE = "<script>alert('prompt')</script>"
HOSTILE_RESPONSE = '"</pre></details><img src=x onerror=alert(1)>'
LONG_PROMPT = "Few-shot example. " * 400 + "QUESTION AT THE END?"


def write_runs(folder: Path, versions: int = 2, n: int = 40, seed: int = 5) -> list[Path]:
    """Per-item tables of ``versions`` runs over tasks ``math`` and ``<b>qa</b>``, with
    prompts, targets and responses, one of them hostile and one long."""
    rng = np.random.default_rng(seed)
    task = np.where(np.arange(n) < n // 2, "math", "<b>qa</b>")
    prompt = np.array([f"What is {i} + {i}?" for i in range(n)], dtype=object)
    prompt[0], prompt[1] = HOSTILE, LONG_PROMPT
    right = rng.random(n) < 0.6
    right[:2] = True  # flipped below in the last run
    paths = []
    for v in range(versions):
        if v:
            right = np.where(rng.random(n) < 0.4, rng.random(n) < 0.6, right)
            if v == versions - 1:
                right[:2] = False
        response = np.where(right, "right answer", f"wrong answer {v}").astype(object)
        if v == versions - 1:
            response[0] = HOSTILE_RESPONSE
        frame = pd.DataFrame(
            {
                "id": np.arange(n),
                "task": task,
                "correct": right.astype(int),
                "prompt": prompt,
                "target": [f"{2 * i}" for i in range(n)],
                "response": response,
            }
        )
        path = folder / f"run{v + 1}.jsonl"
        frame.to_json(path, orient="records", lines=True)
        paths.append(path)
    return paths


@pytest.fixture
def eval_summary(tmp_path: Path) -> dict[str, Any]:
    old, new = write_runs(tmp_path)
    result = compare_eval_logs(old, new, format="table", n_resamples=200)
    return result.summary(paths={"old": str(old), "new": str(new)})


def test_the_summary_holds_per_task_flips_and_the_flipped_items(tmp_path: Path) -> None:
    old, new = write_runs(tmp_path)
    result = compare_eval_logs(old, new, format="table", n_resamples=200)
    summary = result.summary(max_examples=1000)
    a = pd.read_json(old, lines=True)
    b = pd.read_json(new, lines=True)
    rows = {row["task"]: row for row in summary["eval_logs"]["by_task"]}
    assert list(rows) == ["math", "<b>qa</b>"]
    for task, row in rows.items():
        mask = (a["task"] == task).to_numpy()
        was, now = a["correct"].to_numpy()[mask] == 1, b["correct"].to_numpy()[mask] == 1
        nf, pf, n = int((was & ~now).sum()), int((~was & now).sum()), int(mask.sum())
        assert (row["n"], row["negative_flips"], row["positive_flips"]) == (n, nf, pf)
        assert row["negative_flip_rate"] == nf / n and row["positive_flip_rate"] == pf / n
        assert (row["positive_flip_rate_low"], row["positive_flip_rate_high"]) == (
            wilson_interval(pf, n)
        )
        assert row["excluded"] == 0 and row["metric"] == "correct"
    items = summary["eval_logs"]["flipped_items"]
    flips = (a["correct"] != b["correct"]).to_numpy()
    assert items["shown"] == len(items["rows"]) == int(flips.sum())
    by_key = {row["key"]: row for row in items["rows"]}
    first = by_key["0"]
    assert first["prompt"] == HOSTILE and first["kind"] == "negative"
    assert first["new_response"] == HOSTILE_RESPONSE and first["old_response"] == "right answer"
    assert first["target"] == "0" and (first["old_value"], first["new_value"]) == (1.0, 0.0)
    long = by_key["1"]["prompt"]
    assert len(long) < TEXT_CHARS + 60 and long.endswith("QUESTION AT THE END?")
    assert "characters left out" in long
    # the same rows, in the same order, as the generic flipped examples
    assert [r["id"] for r in items["rows"]] == [
        r["id"] for r in summary["flipped_examples"]["rows"]
    ]


def test_the_page_escapes_the_texts_and_folds_long_ones(eval_summary: dict[str, Any]) -> None:
    page = render_html(eval_summary)
    parsed = _parse(page)
    # the hostile prompt and response are text, never markup
    assert HOSTILE not in page and HOSTILE_RESPONSE not in page
    assert "&lt;script&gt;alert(&#39;prompt&#39;)&lt;/script&gt;" in page
    assert not any(tag == "img" for tag, _ in parsed.tags)
    scripts = [body for attrs, body in parsed.scripts if attrs.get("type") != "application/json"]
    assert all("alert" not in body for body in scripts)
    assert "&lt;b&gt;qa&lt;/b&gt;" in page and "<b>qa</b>" not in page
    # the per-task table and the task filter
    assert 'id="tasks-table"' in page and 'id="task-filter"' in page
    options = [a.get("value") for tag, a in parsed.tags if tag == "option" and "value" in a]
    assert "math" in options and "<b>qa</b>" in options
    # long texts are folded; the whole kept text is in the page
    assert page.count("<details><summary>") >= 1
    assert "QUESTION AT THE END?" in page
    # the correct/incorrect examples table gives way to the texts
    assert "<th>Old prediction</th>" not in page and "<th>Old response</th>" in page


def test_a_chain_page_has_the_versions_section(tmp_path: Path) -> None:
    paths = write_runs(tmp_path, versions=3)
    chain = compare_chain(
        paths, format="table", gate=Gate(max_nfr=0.0), gate_against_first=True, n_resamples=200
    )
    summary = chain.summary()
    page = render_html(summary)
    assert 'id="versions"' in page and 'id="version-matrix"' in page
    assert "run1.jsonl → run2.jsonl" in page  # each gate check names its pair
    assert "The sections below describe the last step" in page
    parsed = _parse(page)
    rows = [a for tag, a in parsed.tags if tag == "tr"]
    assert rows  # sanity
    table = chain.flip_table()
    first_nfr = table.loc[(table["old"] == 0) & (table["new"] == 2), "negative_flip_rate"].item()
    assert f"NFR {100 * first_nfr:.2f}%" in page
    assert 'id="tasks-table"' in page and HOSTILE not in page
    json.dumps(summary, allow_nan=False)


_FILTER = """
<script>
(function () {
  var root = document.documentElement, table = document.getElementById("examples-table");
  var visible = function () {
    return Array.prototype.filter.call(table.tBodies[0].rows, function (r) { return !r.hidden; });
  };
  root.dataset.allRows = String(visible().length);
  var select = document.getElementById("task-filter");
  select.value = "<b>qa</b>";
  select.dispatchEvent(new Event("change"));
  root.dataset.qaRows = String(visible().length);
  root.dataset.qaOnly = String(visible().every(function (r) {
    return r.getAttribute("data-task") === "<b>qa</b>"; }));
  root.dataset.folded = String(document.querySelectorAll("td.fold details").length);
})();
</script>
"""


@pytest.mark.browser
def test_the_task_filter_in_chromium(tmp_path: Path, eval_summary: dict[str, Any]) -> None:
    page = write_html(eval_summary, tmp_path / "report.html")
    page.write_text(
        page.read_text(encoding="utf-8").replace("</body>", _FILTER + "</body>"), encoding="utf-8"
    )
    attributes = dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    rows = eval_summary["eval_logs"]["flipped_items"]["rows"]
    assert attributes["data-all-rows"] == str(len(rows))
    qa = sum(r["task"] == "<b>qa</b>" for r in rows)
    assert 0 < qa < len(rows) and attributes["data-qa-rows"] == str(qa)
    assert attributes["data-qa-only"] == "true"
    assert int(attributes["data-folded"]) >= 1
