from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from benchmarks.pages import render_bench_html, write_bench_html
from benchmarks.pages.charts import tradeoff_chart
from graceful.errors import InputError
from graceful.report.html import ERROR_HOOK_SCRIPT, render_html

HOSTILE_METHOD_LABEL = '<img src=x onerror=alert(3)> & "KD" $\\beta$'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _row(page: str, setting: int, method: str) -> str:
    section = re.search(
        rf'<section class="setting" id="setting-{setting}".*?</section>', page, re.DOTALL
    )
    assert section is not None
    row = re.search(rf'<tr data-method="{method}">(.*?)</tr>', section.group(0), re.DOTALL)
    assert row is not None, method
    return row.group(1)


def _cell(row: str, metric: str) -> str:
    cell = re.search(rf'<td class="([^"]*)" data-metric="{metric}"[^>]*>([^<]*)</td>', row)
    assert cell is not None, metric
    return f"{cell.group(1)}|{cell.group(2)}"


@pytest.fixture
def page(bench_results: dict[str, Any]) -> str:
    return render_bench_html(bench_results)


def test_table_values(page: str, bench_results: dict[str, Any]) -> None:
    fd_lm = _row(page, 0, "fd_lm")
    assert "FD-LM" in fd_lm
    assert _cell(fd_lm, "error_rate_old") == "num|8.70 ± 0.40%"
    assert _cell(fd_lm, "error_rate_new") == "num|6.50 ± 0.35%"
    assert _cell(fd_lm, "negative_flip_rate") == "num|1.90 ± 0.10%"
    rel = bench_results["settings"][0]["rows"][3]["relative_negative_flip_rate"]
    assert _cell(fd_lm, "relative_negative_flip_rate") == (
        f"num|{rel['mean']:.3f} ± {rel['std']:.3f}"
    )
    assert 'title="per seed: 1.80%, 1.90%, 2.00%"' in fd_lm
    assert "ensemble of 5 models" in _row(page, 0, "paragon")


def test_header_and_sections(page: str) -> None:
    assert "<h1>Positive-congruent training</h1>" in page
    for text in ("benchmark: <b>pct</b>", "CPUs: <b>2</b>", "torch: <b>2.13.0+cpu</b>"):
        assert text in page
    assert "<h2>Animal-MNIST: CNN w=8 -&gt; CNN w=16</h2>" in page
    assert "seeds: <b>0, 1, 2</b>" in page and "wall time: <b>8 min 32 s</b>" in page
    assert "wall time: <b>1 h 2 min</b>" in page
    assert "<b>1.04 ± 0.02×</b> that of plain training (12.3 ± 0.4 s vs 11.8 ± 0.3 s" in page
    assert page.count('class="badge badge-pass">pass</span>') == 2
    assert page.count('class="badge badge-fail">fail</span>') == 1
    assert "(NFR 5.1% vs 7.8%)" in page
    command = (
        "graceful compare benchmarks/results/pct/animal_mnist/seed0/old.parquet "
        "benchmarks/results/pct/animal_mnist/seed0/fd_lm.parquet"
    )
    assert command in page
    assert page.count("graceful compare ") == 1  # the second setting has no predictions
    assert page.count("<svg ") == 2


def test_best_single_model_nfr_is_highlighted(page: str) -> None:
    # The ensemble paragon has the lowest NFR, but only single models compete.
    for setting in (0, 1):
        assert _cell(_row(page, setting, "elodi"), "negative_flip_rate").startswith("num best|")
        assert " best" not in _row(page, setting, "paragon")
    assert page.count("num best") == 2


def test_null_values_show_na(bench_results: dict[str, Any]) -> None:
    rows = bench_results["settings"][0]["rows"]
    rows[0]["error_rate_old"] = None
    rows[1]["negative_flip_rate"] = {"mean": None, "std": None, "values": [None, None]}
    rows[2]["relative_negative_flip_rate"] = {"mean": float("nan"), "std": 0.01}
    rows[3]["error_rate_new"]["std"] = None
    bench_results["settings"][0]["targets"][0].update(value=None, passed=None)
    bench_results["settings"][0]["epoch_time"]["ratio"] = None
    bench_results["settings"][0]["seconds"] = None
    bench_results["machine"]["torch"] = None
    page = render_bench_html(bench_results)
    assert _cell(_row(page, 0, "no_treatment"), "error_rate_old") == "num undefined|n/a"
    assert _cell(_row(page, 0, "kd"), "negative_flip_rate") == "num undefined|n/a"
    assert 'title="per seed: n/a, n/a"' in _row(page, 0, "kd")
    assert _cell(_row(page, 0, "fd_kl"), "relative_negative_flip_rate") == "num undefined|n/a"
    assert _cell(_row(page, 0, "fd_lm"), "error_rate_new") == "num|6.50%"
    assert 'class="badge badge-na">n/a</span>' in page
    assert "NFR &lt;= 0.6 x no-treatment NFR: n/a against 0.6" in page
    assert "<b>n/a</b> that of plain training" in page
    assert "wall time: <b>n/a</b>" in page and "torch: <b>n/a</b>" in page
    assert "0.00%" not in page and "NaN" not in page and ">nan" not in page


def test_hostile_method_label_is_escaped(bench_results: dict[str, Any]) -> None:
    bench_results["settings"][0]["rows"][1]["label"] = HOSTILE_METHOD_LABEL
    bench_results["settings"][0]["rows"][1]["method"] = "<kd>"
    bench_results["settings"][0]["predictions"] = 'a"b<c>'
    page = render_bench_html(bench_results)
    assert "<img" not in page and "<kd>" not in page and "<c>" not in page
    assert "&lt;img src=x onerror=alert(3)&gt; &amp; &#34;KD&#34; $\\beta$" in page
    assert 'data-method="&lt;kd&gt;"' in page
    assert "a&#34;b&lt;c&gt;/seed0/old.parquet" in page
    tags = _Tags()
    tags.feed(page)
    assert not [tag for tag, _ in tags.tags if tag in ("img", "kd", "c")]
    data = page[page.index('id="graceful-results">') :]
    data = data[len('id="graceful-results">') : data.index("</script>")]
    assert json.loads(data) == json.loads(json.dumps(bench_results))


def test_missing_optional_sections(bench_results: dict[str, Any]) -> None:
    setting = bench_results["settings"][0]
    for key in ("sweep", "targets", "epoch_time", "predictions", "description", "seconds"):
        del setting[key]
    del bench_results["machine"]
    bench_results["settings"] = [setting]
    page = render_bench_html(bench_results)
    assert "Targets" not in page and "plain training" not in page
    assert "graceful compare" not in page and "Dashed lines" not in page
    assert "wall time" not in page and 'id="settings-nav"' not in page
    assert page.count("<svg ") == 1 and "FD-LM" in page


def test_minimal_and_empty_results() -> None:
    page = render_bench_html({})
    assert "<h1>Benchmark</h1>" in page and 'id="no-settings"' in page
    assert "<svg" not in page
    page = render_bench_html({"benchmark": "pct", "settings": [{"name": "x", "rows": []}]})
    assert "<h1>Benchmark pct</h1>" in page and "No method results." in page


def test_shares_head_and_style_with_compare_report(page: str) -> None:
    compare = render_html({"title": "old -> new", "graceful_version": "0.1.0"})

    def head(text: str) -> str:
        return text[text.index("<head>") : text.index("<title>")]

    def style(text: str) -> str:
        return text[text.index("<style>") : text.index("footer {")]

    assert head(page) == head(compare)
    assert style(page) == style(compare)
    assert head(page).split("<head>")[1].lstrip().startswith(f"<script>{ERROR_HOOK_SCRIPT}")
    assert 'dataset.ready = "1"' in page


def test_no_external_resources(page: str) -> None:
    tags = _Tags()
    tags.feed(page)
    for tag, attrs in tags.tags:
        for name in ("src", "href", "xlink:href", "action", "data", "poster"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#") or value.startswith("data:"), (tag, name, value)
        assert tag not in ("link", "iframe", "object", "embed", "img")
    assert "http://" not in page and "https://" not in page and "@import" not in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids must be unique across charts"


@pytest.mark.parametrize("bad", [None, [], "results"])
def test_render_rejects_non_mapping(bad: Any) -> None:
    with pytest.raises(InputError, match="argument `results` to be a mapping"):
        render_bench_html(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(settings={"a": 1}), r"`results\['settings'\]` to be a list"),
        (lambda r: r["settings"].append(3), r"`results\['settings'\]\[2\]` to be a mapping"),
        (
            lambda r: r["settings"][0].update(rows="x"),
            r"`results\['settings'\]\[0\]\['rows'\]` to be a list",
        ),
        (
            lambda r: r["settings"][1].update(epoch_time=[1]),
            r"`results\['settings'\]\[1\]\['epoch_time'\]` to be a Mapping",
        ),
    ],
)
def test_render_rejects_bad_sections(
    bench_results: dict[str, Any], change: Any, message: str
) -> None:
    change(bench_results)
    with pytest.raises(InputError, match=message):
        render_bench_html(bench_results)


def test_render_is_deterministic_and_does_not_mutate(bench_results: dict[str, Any]) -> None:
    before = json.dumps(bench_results, sort_keys=True)
    assert render_bench_html(bench_results) == render_bench_html(bench_results)
    assert json.dumps(bench_results, sort_keys=True) == before


def test_write_bench_html_is_atomic(tmp_path: Path, bench_results: dict[str, Any]) -> None:
    target = tmp_path / "bench.html"
    assert write_bench_html(bench_results, target) == target
    assert target.read_text(encoding="utf-8") == render_bench_html(bench_results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.html"]


def test_write_bench_html_keeps_old_file_when_rendering_fails(tmp_path: Path) -> None:
    target = tmp_path / "bench.html"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(InputError):
        write_bench_html({"settings": "nope"}, target)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.html"]


def test_write_bench_html_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="existing folder"):
        write_bench_html({}, tmp_path / "nope" / "bench.html")


def test_tradeoff_chart(bench_results: dict[str, Any]) -> None:
    setting = bench_results["settings"][0]
    svg = tradeoff_chart([*setting["rows"], *setting["sweep"]], chart_id="t")
    assert svg is not None and svg.startswith('<svg role="img" class="chart" data-chart="t"')
    for text in ("No treatment", "Ensemble paragon", "FD-LM: beta sweep", "FD-KL: lambda sweep"):
        assert text in svg
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for value in ("0.5", "1", "2", "5", "10", "0.1", "0.3", "3"):  # the sweep annotations
        assert value in texts, value
    assert tradeoff_chart([]) is None
    assert tradeoff_chart([{"label": "x", "error_rate_new": {"mean": None}}]) is None


def test_tradeoff_chart_sweep_only_and_hostile_label() -> None:
    svg = tradeoff_chart(
        [
            {"label": "<b>x</b> $y$", "error_rate_new": 0.1, "negative_flip_rate": 0.02},
            {
                "parameter": "t",
                "value": None,
                "method": "m",
                "error_rate_new": 0.1,
                "negative_flip_rate": 0.01,
            },
            {
                "parameter": "t",
                "value": 2,
                "method": "m",
                "error_rate_new": 0.11,
                "negative_flip_rate": None,
            },
        ],
        chart_id="h",
    )
    assert svg is not None
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt; $y$" in svg
    assert "m: t sweep" in svg and "None" in svg


@pytest.mark.browser
def test_bench_page_renders_without_script_errors(
    tmp_path: Path, bench_results: dict[str, Any]
) -> None:
    from tests.report.browser import assert_screenshot_not_blank, dump_dom

    page = write_bench_html(bench_results, tmp_path / "bench.html")
    assert_screenshot_not_blank(page, tmp_path)

    attributes = dump_dom(page, tmp_path)
    assert attributes.get("data-script-errors") == "0", attributes
    assert attributes.get("data-ready") == "1", attributes
    assert attributes.get("data-settings") == str(len(bench_results["settings"])), attributes
