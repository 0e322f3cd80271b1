"""Render the HTML report in headless Chromium: no script errors, and a non-blank screenshot."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from graceful.report.html import ERROR_HOOK_SCRIPT, write_html
from tests.report.browser import assert_screenshot_not_blank, dump_dom

pytestmark = pytest.mark.browser


def test_report_renders_without_script_errors(tmp_path: Path, summary: dict[str, Any]) -> None:
    page = write_html(summary, tmp_path / "report.html")
    assert_screenshot_not_blank(page, tmp_path)

    attributes = dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert attributes.get("data-summary-keys") == str(len(summary)), attributes


def test_error_detection_catches_a_thrown_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head>"
        f"<script>{ERROR_HOOK_SCRIPT}</script><meta charset='utf-8'><title>x</title></head>"
        "<body><p>broken</p>"
        '<script>throw new Error("x");</script>'
        '<script>document.documentElement.dataset.ready = "1";</script>'
        "</body></html>",
        encoding="utf-8",
    )
    attributes = dump_dom(page, tmp_path)
    assert int(attributes.get("data-script-errors", "0")) >= 1, attributes


def test_error_detection_catches_an_external_load(tmp_path: Path) -> None:
    page = tmp_path / "external.html"
    page.write_text(
        "<!DOCTYPE html><html><head>"
        f"<script>{ERROR_HOOK_SCRIPT}</script><meta charset='utf-8'>"
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "script-src 'unsafe-inline'\">"
        "<title>x</title></head>"
        '<body><img src="https://example.invalid/x.png" alt=""></body></html>',
        encoding="utf-8",
    )
    attributes = dump_dom(page, tmp_path)
    assert int(attributes.get("data-script-errors", "0")) >= 1, attributes


_INTERACTION = """
<script>
(function () {
  var root = document.documentElement, table = document.getElementById("examples-table");
  var headers = table.tHead.rows[0].cells, rows = function () { return table.tBodies[0].rows; };
  headers[5].click();  // new confidence, ascending
  root.dataset.ascFirst = rows()[0].cells[5].getAttribute("data-sort");
  headers[5].click();  // descending
  root.dataset.descFirst = rows()[0].cells[5].getAttribute("data-sort");
  var negative = document.querySelector("input[name=kind-filter][value=negative]");
  negative.checked = true;
  negative.dispatchEvent(new Event("change"));
  root.dataset.visibleNegative = String(
    Array.prototype.filter.call(rows(), function (r) { return !r.hidden; }).length);
  root.dataset.counter = document.getElementById("example-count").textContent;
})();
</script>
"""


def test_sorting_and_filtering(tmp_path: Path, summary: dict[str, Any]) -> None:
    page = write_html(summary, tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", _INTERACTION + "</body>"), encoding="utf-8")
    attributes = dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    confidences = [r["new_confidence"] for r in summary["flipped_examples"]["rows"]]
    assert float(attributes["data-asc-first"]) == min(confidences)
    assert float(attributes["data-desc-first"]) == max(confidences)
    negatives = sum(r["kind"] == "negative" for r in summary["flipped_examples"]["rows"])
    assert attributes["data-visible-negative"] == str(negatives)
    assert f"({negatives} match the filter)" in attributes["data-counter"]


def test_demo_page_renders_without_script_errors(tmp_path: Path) -> None:
    """The demo's story page; GRACEFUL_DEMO_DIR renders a finished `graceful demo` instead
    of a quick one, and GRACEFUL_SCREENSHOT copies the screenshot there (the README's)."""
    from graceful.demo import DemoConfig, run_demo

    source = os.environ.get("GRACEFUL_DEMO_DIR")
    if source:
        page = Path(source) / "report.html"
        searches = len(json.loads((Path(source) / "demo.json").read_text())["searches"])
    else:
        story = run_demo(tmp_path / "demo", DemoConfig(epochs=2, examples=2), progress=False,
                         log=lambda _: None)  # fmt: skip
        page = tmp_path / "demo" / "report.html"
        searches = len(story["searches"])
    assert_screenshot_not_blank(page, tmp_path)
    attributes = dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert attributes.get("data-searches") == str(searches), attributes
    target = os.environ.get("GRACEFUL_SCREENSHOT")
    if target:
        shutil.copyfile(tmp_path / f"{page.stem}.png", target)
