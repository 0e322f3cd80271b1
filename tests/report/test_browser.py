"""Render the HTML report in headless Chromium: no script errors, and a non-blank screenshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from graceful.report import write_bench_html, write_html
from graceful.report.html import ERROR_HOOK_SCRIPT

pytestmark = pytest.mark.browser

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is not installed (looked for `chromium` and `chromium-browser` on PATH); "
        "`make test` installs it with `apt-get install -y --no-install-recommends chromium`"
    )


def _clean_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": str(home),
    }


def _run(args: list[str], workdir: Path, name: str) -> subprocess.CompletedProcess[str]:
    # Chromium puts a Unix socket in its profile and TMPDIR; pytest's tmp paths under
    # xdist are too long for a socket path (108 bytes), so both live in a short temp dir.
    with tempfile.TemporaryDirectory(prefix="gr-") as short:
        profile = Path(short) / name
        profile.mkdir()
        command = [_chromium(), *_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(Path(short)),
            check=False,
            cwd=workdir,
        )


def _dump_dom(page: Path, workdir: Path) -> dict[str, str]:
    """Load ``page`` in Chromium and return the attributes of its root ``<html>`` element."""
    result = _run(["--virtual-time-budget=2000", "--dump-dom", page.as_uri()], workdir, "dom")
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"<html\b([^>]*)>", result.stdout)
    assert match is not None, f"no <html> element in the dumped DOM: {result.stdout[:500]!r}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))


def _assert_screenshot_not_blank(page: Path, workdir: Path) -> None:
    """Screenshot ``page`` in Chromium and check that it shows more than a blank page."""
    png = workdir / f"{page.stem}.png"
    result = _run([f"--screenshot={png}", page.as_uri()], workdir, "shot")
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.is_file(), result.stderr[-2000:]
    with Image.open(png) as image:
        image.load()
        assert image.size == (1280, 2000)
        rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=1 << 24)
    assert colours is not None
    assert len(colours) > 10, f"only {len(colours)} distinct colours: the page looks blank"
    background = rgb.getpixel((0, 0))
    share_of_background = max(count for count, colour in colours if colour == background)
    assert share_of_background < 0.97 * rgb.width * rgb.height
    assert ImageStat.Stat(rgb.convert("L")).stddev[0] > 10


def test_report_renders_without_script_errors(tmp_path: Path, summary: dict[str, Any]) -> None:
    page = write_html(summary, tmp_path / "report.html")
    _assert_screenshot_not_blank(page, tmp_path)

    attributes = _dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert attributes.get("data-summary-keys") == str(len(summary)), attributes


def test_bench_page_renders_without_script_errors(
    tmp_path: Path, bench_results: dict[str, Any]
) -> None:
    page = write_bench_html(bench_results, tmp_path / "bench.html")
    _assert_screenshot_not_blank(page, tmp_path)

    attributes = _dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert attributes.get("data-settings") == str(len(bench_results["settings"])), attributes


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
    attributes = _dump_dom(page, tmp_path)
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
    attributes = _dump_dom(page, tmp_path)
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
    attributes = _dump_dom(page, tmp_path)
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
    _assert_screenshot_not_blank(page, tmp_path)
    attributes = _dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert attributes.get("data-searches") == str(searches), attributes
    target = os.environ.get("GRACEFUL_SCREENSHOT")
    if target:
        shutil.copyfile(tmp_path / f"{page.stem}.png", target)
