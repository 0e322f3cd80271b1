from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from benchmarks.pages import render_bct_html, render_bench_html, write_bct_html
from graceful.errors import InputError
from graceful.report.charts import curve_chart
from graceful.report.html import ERROR_HOOK_SCRIPT

HOSTILE = '<img src=x onerror=alert(4)> & "BCT" $\\alpha$'

PAIRS = ("old_old", "new_old", "new_new", "newstar_newstar")
MEASURES = ("top1", "top5", "map")

# method, label, top-1 means in % per pair, criterion per seed, gain mean and std
_METHODS: list[tuple[str, str, tuple[float, ...], list[bool], float, float]] = [
    ("independent", "Independent (new*)", (61.0, 12.5, 72.0, 72.0), [False] * 3, -4.41, 0.20),
    ("l2", "L2 regression", (61.0, 58.0, 70.0, 72.0), [False, True, False], -0.27, 0.10),
    ("bct", "BCT (influence loss)", (61.0, 65.5, 71.0, 72.0), [True, True, False], 0.41, 0.05),
    (
        "transformation",
        "Transformation (old -> new*)",
        (61.0, 66.0, 72.0, 72.0),
        [True] * 3,
        0.45,
        0.04,
    ),
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _stat(mean: float, std: float) -> dict[str, Any]:
    # Three seeds at mean - std, mean, mean + std have exactly this mean and sample std.
    return {"mean": mean, "std": std, "values": [mean - std, mean, mean + std]}


def _rows() -> list[dict[str, Any]]:
    rows = []
    for method, label, top1, met, gain, gain_std in _METHODS:
        row: dict[str, Any] = {"method": method, "label": label}
        for pair, mean in zip(PAIRS, top1, strict=True):
            row[f"{pair}_top1"] = _stat(mean / 100, 0.01)
            row[f"{pair}_top5"] = _stat(min(mean + 15, 99) / 100, 0.008)
            row[f"{pair}_map"] = _stat((mean - 10) / 100, 0.012)
        row["compatible_top1"] = list(met)
        row["compatible_map"] = [not m for m in met]
        row["gain_top1"] = _stat(gain, gain_std)
        row["gain_map"] = _stat(gain - 0.1, gain_std)
        rows.append(row)
    return rows


def _backfill() -> dict[str, Any]:
    fractions = [i / 10 for i in range(11)]
    out = {}
    for order, lift in (("random", 0.0), ("uncertainty", 0.02)):
        curve: dict[str, Any] = {"fraction": fractions}
        for measure, base in (("top1", 0.655), ("top5", 0.80), ("map", 0.45)):
            curve[measure] = [
                _stat(base + 0.055 * f + lift * f * (1 - f), 0.006) for f in fractions
            ]
        curve["auc"] = {
            "top1": _stat(0.6825 + lift / 6, 0.004),
            "top5": _stat(0.8275 + lift / 6, 0.003),
            "map": _stat(0.4775 + lift / 6, 0.005),
        }
        out[order] = curve
    return out


def _setting(name: str, title: str, seconds: float) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "description": f"The {name} setting: old CNN w=8 on 5 classes, new CNN w=12 on 10.",
        "seeds": [0, 1, 2],
        "seconds": seconds,
        "rows": _rows(),
        "backfill": _backfill(),
        "targets": [
            {
                "name": "BCT meets the criterion in every seed with update gain >= 0.3 (top-1)",
                "value": 0.36,
                "passed": False,
                "detail": "criterion met in 2/3 seeds; value = the smallest gain",
            },
            {
                "name": "Independent training fails the criterion (top-1)",
                "value": 0.0,
                "passed": True,
                "detail": "criterion met in 0/3 seeds",
            },
            {
                "name": "Uncertainty-ordered backfill AUC > random (top-1)",
                "value": 0.003333,
                "passed": True,
                "detail": "AUC 0.6858 vs 0.6825 (mean over seeds); higher in 3/3 seeds",
            },
        ],
    }


def make_bct_results() -> dict[str, Any]:
    """Results of ``python -m benchmarks bct`` on two settings, three seeds each."""
    return {
        "benchmark": "bct",
        "title": "Backward-compatible embeddings (python -m benchmarks bct)",
        "graceful_version": "0.1.0",
        "created": "2026-11-24T20:00:00Z",
        "command": "python -m benchmarks bct --setting animal_mnist --setting digits --seeds 0 1 2",
        "machine": {
            "cpus": 2,
            "torch": "2.13.0+cpu",
            "platform": "Linux-6.8.0-x86_64-with-glibc2.39",
            "threads": 2,
        },
        "settings": [
            _setting("animal_mnist", "Animal-MNIST: CNN w=8 -> CNN w=12", 754.0),
            _setting("digits", "Digits (8x8)", 42.25),
        ],
    }


@pytest.fixture
def results() -> dict[str, Any]:
    return make_bct_results()


@pytest.fixture
def page(results: dict[str, Any]) -> str:
    return render_bct_html(results)


def _section(page: str, setting: int) -> str:
    section = re.search(
        rf'<section class="setting" id="setting-{setting}".*?</section>', page, re.DOTALL
    )
    assert section is not None
    return section.group(0)


def _row(page: str, setting: int, method: str, measure: str = "top1") -> str:
    table = re.search(
        rf'<table class="bench" data-measure="{measure}">.*?</table>',
        _section(page, setting),
        re.DOTALL,
    )
    assert table is not None, measure
    row = re.search(rf'<tr data-method="{method}">(.*?)</tr>', table.group(0), re.DOTALL)
    assert row is not None, method
    return row.group(1)


def _cell(row: str, metric: str) -> str:
    cell = re.search(rf'<td class="([^"]*)" data-metric="{metric}"[^>]*>([^<]*)</td>', row)
    assert cell is not None, metric
    return f"{cell.group(1)}|{cell.group(2)}"


def _title(row: str, metric: str) -> str | None:
    cell = re.search(rf'<td [^>]*data-metric="{metric}"(?: title="([^"]*)")?>', row)
    assert cell is not None, metric
    return cell.group(1)


def test_top1_table_values(page: str) -> None:
    bct = _row(page, 0, "bct")
    assert "BCT (influence loss)" in bct
    assert _cell(bct, "old_old") == "num|61.00 ± 1.00%"
    assert _cell(bct, "new_old") == "num|65.50 ± 1.00%"
    assert _cell(bct, "new_new") == "num|71.00 ± 1.00%"
    assert _cell(bct, "newstar_newstar") == "num|72.00 ± 1.00%"
    assert _cell(bct, "compatible_top1") == "num|2/3"
    assert _cell(bct, "gain_top1") == "num|0.41 ± 0.05"
    assert _title(bct, "new_old") == "per seed: 64.50%, 65.50%, 66.50%"
    assert _title(bct, "compatible_top1") == "per seed: met, met, not met"
    assert _title(bct, "gain_top1") == "per seed: 0.360, 0.410, 0.460"
    # all seeds met: highlighted; none met: not
    assert _cell(_row(page, 0, "transformation"), "compatible_top1") == "num good|3/3"
    assert _cell(_row(page, 0, "independent"), "compatible_top1") == "num|0/3"
    assert _cell(_row(page, 0, "independent"), "gain_top1") == "num|-4.41 ± 0.20"


def test_map_table_and_method_order(page: str) -> None:
    bct = _row(page, 1, "bct", "map")
    assert _cell(bct, "old_old") == "num|51.00 ± 1.20%"
    assert _cell(bct, "new_old") == "num|55.50 ± 1.20%"
    assert _cell(bct, "compatible_map") == "num|1/3"
    assert _cell(bct, "gain_map") == "num|0.31 ± 0.05"
    section = _section(page, 0)
    for measure in ("top1", "map"):
        table = section[section.index(f'data-measure="{measure}"') :]
        table = table[: table.index("</table>")]
        order = re.findall(r'<tr data-method="([^"]+)">', table)
        assert order == ["independent", "l2", "bct", "transformation"]
    assert section.count("<h3>Retrieval top-1</h3>") == 1
    assert section.count("<h3>Retrieval mAP</h3>") == 1


def test_header_notes_and_targets(page: str) -> None:
    assert "<h1>Backward-compatible embeddings (python -m benchmarks bct)</h1>" in page
    for text in (
        "benchmark: <b>bct</b>",
        "run: <b>2026-11-24T20:00:00Z</b>",
        "CPUs: <b>2</b>",
        "torch threads: <b>2</b>",
        "torch: <b>2.13.0+cpu</b>",
        "platform: <b>Linux-6.8.0-x86_64-with-glibc2.39</b>",
        '<pre class="command" id="command">python -m benchmarks bct --setting animal_mnist',
    ):
        assert text in page, text
    assert "<h2>Animal-MNIST: CNN w=8 -&gt; CNN w=12</h2>" in page
    assert "seeds: <b>0, 1, 2</b>" in page
    assert "wall time: <b>12 min 34 s</b>" in page and "wall time: <b>42.2 s</b>" in page
    assert 'id="settings-nav"' in page
    assert "M(new, old) &gt; M(old, old)" in page
    assert "(M(new, old) − M(old, old)) / (M(new*, new*) − M(old, old))" in page
    section = _section(page, 0)
    assert section.count('class="badge badge-pass">pass</span>') == 2
    assert section.count('class="badge badge-fail">fail</span>') == 1
    assert '<li data-status="fail">' in section
    assert "(top-1): 0.36 <span" in section and "(top-1): 0 <span" in section
    assert "(criterion met in 2/3 seeds; value = the smallest gain)" in section


def test_backfill_chart_and_auc_table(page: str) -> None:
    assert page.count("<svg ") == 2
    for setting in (0, 1):
        section = _section(page, setting)
        assert section.count("<svg ") == 1
        assert f'data-chart="backfill{setting}"' in section
        svg = section[section.index("<svg ") : section.index("</svg>")]
        assert "random order" in svg and "most uncertain first" in svg
        assert "fraction of the gallery re-embedded" in svg
        orders = re.findall(r'<tr data-order="([^"]+)">', section)
        assert orders == ["random", "uncertainty"]
    auc = re.search(r'<tr data-order="uncertainty">(.*?)</tr>', page, re.DOTALL)
    assert auc is not None
    assert _cell(auc.group(1), "auc_top1") == "num|68.58 ± 0.40%"
    assert _cell(auc.group(1), "auc_top5") == "num|83.08 ± 0.30%"
    assert _cell(auc.group(1), "auc_map") == "num|48.08 ± 0.50%"


def test_null_values_show_na(results: dict[str, Any]) -> None:
    setting = results["settings"][0]
    rows = setting["rows"]
    rows[0]["old_old_top1"] = None
    rows[1]["new_old_top1"] = {"mean": None, "std": None, "values": [None, None, None]}
    rows[2]["gain_top1"] = {"mean": float("nan"), "std": None, "values": [None, 0.4, None]}
    rows[3]["new_new_top1"]["std"] = None
    rows[3]["compatible_top1"] = []
    del rows[3]["compatible_map"]
    setting["backfill"]["random"]["auc"]["map"] = None
    setting["backfill"]["uncertainty"]["top1"][4] = {"mean": None, "std": None}
    setting["targets"][0].update(value=float("nan"), passed=None)
    setting["seconds"] = None
    results["machine"]["threads"] = None
    page = render_bct_html(results)
    assert _cell(_row(page, 0, "independent"), "old_old") == "num undefined|n/a"
    assert _cell(_row(page, 0, "l2"), "new_old") == "num undefined|n/a"
    assert _title(_row(page, 0, "l2"), "new_old") == "per seed: n/a, n/a, n/a"
    assert _cell(_row(page, 0, "bct"), "gain_top1") == "num undefined|n/a"
    assert _title(_row(page, 0, "bct"), "gain_top1") == "per seed: n/a, 0.400, n/a"
    assert _cell(_row(page, 0, "transformation"), "new_new") == "num|72.00%"
    assert _cell(_row(page, 0, "transformation"), "compatible_top1") == "num undefined|n/a"
    assert _cell(_row(page, 0, "transformation", "map"), "compatible_map") == ("num undefined|n/a")
    auc = re.search(r'<tr data-order="random">(.*?)</tr>', page, re.DOTALL)
    assert auc is not None and _cell(auc.group(1), "auc_map") == "num undefined|n/a"
    assert 'class="badge badge-na">n/a</span>' in page
    assert "(top-1): n/a <span" in page
    assert "wall time: <b>n/a</b>" in page and "torch threads: <b>n/a</b>" in page
    assert _section(page, 0).count("<svg ") == 1  # the undefined point is skipped
    assert "NaN" not in page and ">nan" not in page


def test_hostile_values_are_escaped(results: dict[str, Any]) -> None:
    results["title"] = "<script>alert(1)</script>"
    results["command"] = "python -m benchmarks bct </pre><img src=x>"
    setting = results["settings"][0]
    setting["title"] = HOSTILE
    setting["rows"][2]["label"] = HOSTILE
    setting["rows"][2]["method"] = "<bct>"
    setting["targets"][0]["name"] = "<b>target</b>"
    page = render_bct_html(results)
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in page
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; · graceful benchmark</title>" in page
    assert "<h2>&lt;img src=x onerror=alert(4)&gt; &amp; &#34;BCT&#34; $\\alpha$</h2>" in page
    assert 'data-method="&lt;bct&gt;"' in page and "&lt;b&gt;target&lt;/b&gt;" in page
    assert "python -m benchmarks bct &lt;/pre&gt;&lt;img src=x&gt;" in page
    tags = _Tags()
    tags.feed(page)
    assert not [tag for tag, _ in tags.tags if tag in ("img", "bct")]
    assert "<b>target</b>" not in page
    assert [tag for tag, _ in tags.tags].count("script") == 3  # hook, JSON, ready
    data = page[page.index('id="graceful-results">') :]
    data = data[len('id="graceful-results">') : data.index("</script>")]
    assert json.loads(data) == json.loads(json.dumps(results))


def test_missing_optional_sections(results: dict[str, Any]) -> None:
    setting = results["settings"][0]
    for key in ("backfill", "targets", "description", "seconds"):
        del setting[key]
    for key in ("machine", "command"):
        del results[key]
    results["settings"] = [setting]
    page = render_bct_html(results)
    assert "Targets" not in page and "Backfilling" not in page and "<svg" not in page
    assert "wall time" not in page and 'id="settings-nav"' not in page
    assert "CPUs" not in page and "torch" not in page and 'id="command"' not in page
    assert "BCT (influence loss)" in page


def test_minimal_and_empty_results() -> None:
    page = render_bct_html({})
    assert "<h1>Benchmark</h1>" in page and 'id="no-settings"' in page
    assert "<svg" not in page
    page = render_bct_html({"benchmark": "bct", "settings": [{"name": "x", "rows": []}]})
    assert "<h1>Benchmark bct</h1>" in page and "No method results." in page


def test_shares_head_and_style_with_bench_page(page: str) -> None:
    pct = render_bench_html({"benchmark": "pct", "graceful_version": "0.1.0"})

    def head(text: str) -> str:
        return text[text.index("<head>") : text.index("<title>")]

    def style(text: str) -> str:
        return text[text.index("<style>") : text.index("footer {")]

    assert head(page) == head(pct)
    assert style(page) == style(pct)
    assert head(page).split("<head>")[1].lstrip().startswith(f"<script>{ERROR_HOOK_SCRIPT}")
    assert "Content-Security-Policy" in head(page)
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
        render_bct_html(bad)


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
            lambda r: r["settings"][0]["rows"][1].update(compatible_top1="yes"),
            r"`results\['settings'\]\[0\]\['rows'\]\[1\]\['compatible_top1'\]` to be a list",
        ),
        (
            lambda r: r["settings"][1].update(backfill=[1]),
            r"`results\['settings'\]\[1\]\['backfill'\]` to be a Mapping",
        ),
        (
            lambda r: r["settings"][1]["backfill"]["random"]["top1"].pop(),
            r"`results\['settings'\]\[1\]\['backfill'\]\['random'\]\['top1'\]` to have one "
            r"value per fraction \(11\), but got 10",
        ),
    ],
)
def test_render_rejects_bad_sections(results: dict[str, Any], change: Any, message: str) -> None:
    change(results)
    with pytest.raises(InputError, match=message):
        render_bct_html(results)


def test_render_is_deterministic_and_does_not_mutate(results: dict[str, Any]) -> None:
    before = json.dumps(results, sort_keys=True)
    assert render_bct_html(results) == render_bct_html(results)
    assert json.dumps(results, sort_keys=True) == before


def test_write_bct_html_is_atomic(tmp_path: Path, results: dict[str, Any]) -> None:
    target = tmp_path / "bct.html"
    assert write_bct_html(results, target) == target
    assert target.read_text(encoding="utf-8") == render_bct_html(results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bct.html"]


def test_write_bct_html_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "bct.html"
    with pytest.raises(InputError):
        write_bct_html({"settings": "nope"}, target)
    assert list(tmp_path.iterdir()) == []
    target.write_text("old", encoding="utf-8")
    with pytest.raises(InputError):
        write_bct_html({"settings": [{"rows": [1]}]}, target)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bct.html"]


def test_write_bct_html_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="existing folder"):
        write_bct_html({}, tmp_path / "nope" / "bct.html")


def test_curve_chart_draws_series_bands_and_labels() -> None:
    series = [
        {
            "label": "random order",
            "x": [0.0, 0.5, 1.0],
            "y": [{"mean": 0.6, "std": 0.01}, {"mean": 0.65, "std": 0.02}, 0.7],
        },
        {"label": "<b>uncertainty</b> $u$", "x": [0, 1], "y": [0.6, {"mean": 0.72}]},
    ]
    svg = curve_chart(series, x_label="fraction", y_label="top-1", chart_id="c1")
    assert svg is not None
    assert svg.startswith('<svg role="img" class="chart" data-chart="c1"')
    assert "random order" in svg and "&lt;b&gt;uncertainty&lt;/b&gt; $u$" in svg
    assert "<b>" not in svg
    assert "fraction" in svg and "top-1" in svg
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert any(t.endswith("%") for t in texts)  # the y axis is in percent
    assert 'id="c1-' in svg and "http" not in svg
    # deterministic: the same input gives the same SVG
    assert curve_chart(series, x_label="fraction", y_label="top-1", chart_id="c1") == svg


def test_curve_chart_band_only_with_std() -> None:
    with_std = curve_chart(
        [{"label": "a", "x": [0, 1], "y": [{"mean": 0.5, "std": 0.05}, {"mean": 0.6, "std": 0}]}],
        x_label="x",
        y_label="y",
        chart_id="b1",
    )
    without = curve_chart(
        [{"label": "a", "x": [0, 1], "y": [0.5, 0.6]}], x_label="x", y_label="y", chart_id="b1"
    )
    assert with_std is not None and without is not None
    assert "PolyCollection_1" in with_std
    assert "PolyCollection" not in without


def test_curve_chart_plain_axis_and_no_legend_without_labels() -> None:
    svg = curve_chart(
        [{"x": [1, 2, 3], "y": [10.0, 20.0, 15.0]}],
        x_label="epoch",
        y_label="loss",
        chart_id="p",
        percent=False,
    )
    assert svg is not None
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert not any(t.endswith("%") for t in texts)
    assert "legend" not in svg


def test_curve_chart_skips_undefined_points() -> None:
    full = curve_chart(
        [{"label": "s", "x": [0.0, 1.0], "y": [0.5, 0.7]}],
        x_label="x",
        y_label="y",
        chart_id="u",
    )
    gaps = curve_chart(
        [
            {
                "label": "s",
                "x": [0.0, 0.5, None, 1.0, float("nan")],
                "y": [0.5, {"mean": None, "std": 0.1}, 0.6, 0.7, 0.8],
            },
            {"label": "empty", "x": [0.5], "y": [None]},
        ],
        x_label="x",
        y_label="y",
        chart_id="u",
    )
    assert full is not None and gaps is not None
    # The undefined points are left out: the same line, and the empty series has no entry.
    assert "empty" not in gaps
    assert full == gaps


def test_curve_chart_nothing_drawable() -> None:
    kwargs: dict[str, Any] = {"x_label": "x", "y_label": "y", "chart_id": "n"}
    assert curve_chart([], **kwargs) is None
    assert curve_chart([{"label": "a", "x": [], "y": []}], **kwargs) is None
    assert curve_chart([{"label": "a", "x": [0.1, None], "y": [None, 0.2]}], **kwargs) is None


def test_curve_chart_rejects_bad_series() -> None:
    kwargs: dict[str, Any] = {"x_label": "x", "y_label": "y", "chart_id": "e"}
    with pytest.raises(InputError, match=r"argument `series\[0\]` to be a mapping"):
        curve_chart([[0.1, 0.2]], **kwargs)  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"argument `series\[1\]\['y'\]` to be a sequence"):
        curve_chart([{"x": [0], "y": [1]}, {"x": [0], "y": "0.5"}], **kwargs)
    with pytest.raises(InputError, match=r"`series\[0\]` to have as many 'y' as 'x' values"):
        curve_chart([{"x": [0, 1], "y": [0.5]}], **kwargs)
