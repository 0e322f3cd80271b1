"""Render the HTML report in headless Chromium: no script errors, and a non-blank screenshot."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from graceful.report.html import ERROR_HOOK_SCRIPT, EXAMPLES_PAGE_SIZE, write_html
from tests.report.browser import assert_screenshot_not_blank, dump_dom
from tests.report.conftest import LONG

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
    assert negatives > EXAMPLES_PAGE_SIZE  # one page of them is shown
    assert attributes["data-visible-negative"] == str(EXAMPLES_PAGE_SIZE)
    assert f"({negatives} match the filter)" in attributes["data-counter"]


def _with_script(page: Path, script: str) -> Path:
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", f"<script>{script}</script></body>"), encoding="utf-8")
    return page


_PAGING = """
(function () {
  var root = document.documentElement, table = document.getElementById("examples-table");
  var shown = function () {
    return Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
      return r.getBoundingClientRect().height > 0;
    });
  };
  var first = function () { var c = shown()[0].cells[0]; return c.title || c.textContent; };
  root.dataset.height = String(root.scrollHeight);
  root.dataset.visible = String(shown().length);
  root.dataset.pageLabel = document.getElementById("example-page").textContent;
  document.getElementById("example-next").click();
  root.dataset.nextFirst = first();
  root.dataset.nextLabel = document.getElementById("example-page").textContent;
  table.tHead.rows[0].cells[0].click();  // sorting goes back to page 1
  root.dataset.sortedLabel = document.getElementById("example-page").textContent;
  var size = document.getElementById("example-page-size");
  size.value = "0";
  size.dispatchEvent(new Event("change"));
  root.dataset.visibleAll = String(shown().length);
})();
"""


def test_many_examples_are_paged(tmp_path: Path, large_summary: dict[str, Any]) -> None:
    """A 20-class report with the 500 default flipped examples shows one page of them
    (it was 21,000 px tall with every row shown); the pager reaches the others."""
    assert len(large_summary["class_names"]) == 20
    rows = large_summary["flipped_examples"]["rows"]
    assert len(rows) == 500
    page = _with_script(write_html(large_summary, tmp_path / "report.html"), _PAGING)
    attributes = dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert attributes["data-visible"] == str(EXAMPLES_PAGE_SIZE)
    assert int(attributes["data-height"]) < 7000, attributes["data-height"]
    assert attributes["data-page-label"] == f"rows 1–{EXAMPLES_PAGE_SIZE} of 500"
    assert attributes["data-next-first"] == rows[EXAMPLES_PAGE_SIZE]["id"]
    assert attributes["data-next-label"] == (
        f"rows {EXAMPLES_PAGE_SIZE + 1}–{2 * EXAMPLES_PAGE_SIZE} of 500"
    )
    assert attributes["data-sorted-label"] == f"rows 1–{EXAMPLES_PAGE_SIZE} of 500"
    assert attributes["data-visible-all"] == "500"


_FOLDING = """
(function () {
  var root = document.documentElement;
  Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) {
    d.open = true;
  });
  var tallest = 0, overflow = 0;
  Array.prototype.forEach.call(document.querySelectorAll("tr"), function (r) {
    tallest = Math.max(tallest, r.getBoundingClientRect().height);
  });
  Array.prototype.forEach.call(document.querySelectorAll(".table-wrap"), function (w) {
    overflow = Math.max(overflow, w.scrollWidth - w.clientWidth);
  });
  root.dataset.tallest = String(Math.round(tallest));
  root.dataset.overflow = String(overflow);
  root.dataset.width = String(root.scrollWidth);
  root.dataset.height = String(root.scrollHeight);
  var search = document.getElementById("example-search");
  search.value = "%s";
  search.dispatchEvent(new Event("input"));
  root.dataset.counter = document.getElementById("example-count").textContent;
})();
"""


def test_long_values_fold(tmp_path: Path, long_summary: dict[str, Any]) -> None:
    """20,000-character ids, class names, group values and paths: no row taller than a few
    lines (one was 12,000 px), no table wider than the page; search still sees them whole."""
    script = _FOLDING % ("i" * 200)  # from the middle of the long id
    page = _with_script(write_html(long_summary, tmp_path / "report.html"), script)
    attributes = dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert int(attributes["data-tallest"]) <= 300, attributes["data-tallest"]
    assert int(attributes["data-overflow"]) <= 1, attributes["data-overflow"]
    assert int(attributes["data-width"]) <= 1280, attributes["data-width"]
    assert int(attributes["data-height"]) < 12000, attributes["data-height"]
    assert "(1 match the filter)" in attributes["data-counter"], attributes["data-counter"]
    assert long_summary["flipped_examples"]["rows"][0]["id"] == "i" * LONG


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
