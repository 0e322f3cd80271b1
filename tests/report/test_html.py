from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from graceful.errors import InputError
from graceful.report import render_html, write_html
from graceful.report.charts import flip_matrix_heatmap, nfr_bar_chart, short_label
from graceful.report.html import ERROR_HOOK_SCRIPT, EXAMPLES_PAGE_SIZE
from tests.report.conftest import LONG


class _Collector(HTMLParser):
    """Collects tags, attributes and script bodies of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict[str, str | None] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        else:
            self.text.append(data)


def _parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture
def page(summary: dict[str, Any]) -> str:
    return render_html(summary)


def test_headline_values_and_verdict(page: str, summary: dict[str, Any]) -> None:
    nfr = summary["metrics"]["negative_flip_rate"]
    assert f"{nfr['value'] * 100:.2f}%" in page
    assert f"{nfr['low'] * 100:.2f}% – {nfr['high'] * 100:.2f}%" in page
    nf, pf = summary["counts"]["negative_flips"], summary["counts"]["positive_flips"]
    assert f"{nf} / 1,797" in page
    rnfr = summary["metrics"]["relative_negative_flip_rate"]["value"]
    assert f"{rnfr:.3f}" in page
    assert "New model is significantly better" in page
    assert f"p = 0.005, exact McNemar on {nf} negative vs {pf} positive flips" in page
    assert "Gate failed" in page and "max_nfr" in page
    for text in (
        "old right and new wrong / N: regressions: samples the update breaks",
        "negative flips / new wrong: share of the new model",
        "both wrong / new wrong",
    ):
        assert text in page
    assert "old.parquet -&gt; new.parquet" in page


@pytest.mark.parametrize(
    ("verdict", "text"),
    [("worse", "significantly worse"), ("no significant difference", "no significant difference")],
)
def test_other_verdicts(summary: dict[str, Any], verdict: str, text: str) -> None:
    summary["mcnemar"]["verdict"] = verdict
    summary["mcnemar"]["p_value"] = 0.00001234
    page = render_html(summary)
    assert text in page
    assert "p = 1.23e-05" in page


def test_gate_checks_of_an_older_summary(summary: dict[str, Any]) -> None:
    """Checks written without a `detail`: the value against the threshold, and no 0/1 flag
    of the significance check passed off as a value."""
    summary["gate"]["checks"] = [
        {
            "name": "max_nfr",
            "threshold": 0.01,
            "value": 0.02,
            "passed": False,
            "description": "negative flip rate <= 0.01",
        },
        {
            "name": "max_rel_nfr",
            "threshold": 0.8,
            "value": 0.447,
            "passed": True,
            "description": "relative negative flip rate <= 0.8",
        },
        {
            "name": "no_significant_regression",
            "threshold": 0.0,
            "value": 0.0,
            "passed": True,
            "description": "no significant regression",
        },
    ]
    page = render_html(summary)
    assert "0.447 against threshold 0.800" in page
    assert "2.00% against threshold 1.00%" in page
    check = re.search(r'<li data-check="no_significant_regression">(.*?)</li>', page, re.DOTALL)
    assert check is not None
    assert "against threshold" not in check.group(1) and "0" not in _parse(check.group(1)).text


def test_gate_checks_name_their_statistic(large_summary: dict[str, Any]) -> None:
    page = render_html(large_summary)
    checks = {c["name"]: c for c in large_summary["gate"]["checks"]}
    assert set(checks) == {"max_nfr", "max_rel_nfr", "min_btc", "no_significant_regression"}
    for name, check in checks.items():
        line = re.search(rf'<li data-check="{name}">(.*?)</li>', page, re.DOTALL)
        assert line is not None, name
        text = " ".join("".join(_parse(line.group(1)).text).split())
        assert check["detail"] in text, (name, text)
        assert "against threshold" not in text
    mc = large_summary["mcnemar"]
    assert mc["verdict"] == "worse"
    assert checks["no_significant_regression"]["detail"] == (
        f"McNemar p = {mc['p_value']:.3g} < alpha 0.05, new model significantly worse"
    )
    nfr = large_summary["metrics"]["negative_flip_rate"]["value"]
    assert checks["max_nfr"]["detail"] == f"NFR = {100 * nfr:.3g}% > max 1%"


def test_gate_passed_and_absent(summary: dict[str, Any]) -> None:
    summary["gate"]["passed"] = True
    summary["gate"]["checks"][0]["passed"] = True
    assert "Gate passed" in render_html(summary)
    del summary["gate"]
    page = render_html(summary)
    assert "Gate passed" not in page and "Gate failed" not in page
    summary["gate"] = None
    assert "Gate" not in _parse(render_html(summary)).text


def test_optional_sections_missing(summary: dict[str, Any]) -> None:
    for key in ("by_group", "most_affected", "gate", "flipped_examples", "by_class"):
        del summary[key]
    page = render_html(summary)
    assert "Most affected groups" not in page
    assert 'id="examples-table"' not in page
    assert "Headline metrics" in page


def test_hostile_values_are_escaped(page: str, hostile: dict[str, Any]) -> None:
    ids = hostile["ids"]
    for value in [*ids, hostile["group"], "runs/<old>/preds.parquet"]:
        assert value not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "alert(1)</script>" not in page
    parsed = _parse(page)
    # No injected element: the only scripts are ours, and there is no <img> at all.
    assert [tag for tag, _ in parsed.tags if tag == "img"] == []
    assert len(parsed.scripts) == 3
    # The hostile group name appears as text in the bar chart, escaped by the SVG writer,
    # and is not parsed as mathtext.
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; $x$" in page
    text = "".join(parsed.text)
    assert ids[0] in text and ids[1] in text


def test_embedded_json_is_script_safe_and_round_trips(page: str, summary: dict[str, Any]) -> None:
    parsed = _parse(page)
    data = [body for attrs, body in parsed.scripts if attrs.get("id") == "graceful-summary"]
    assert len(data) == 1
    assert "</" not in data[0] and "<" not in data[0]
    assert json.loads(data[0]) == json.loads(json.dumps(summary))


def test_nan_in_summary_becomes_null_in_embedded_json(summary: dict[str, Any]) -> None:
    summary["metrics"]["negative_flip_rate"]["value"] = float("nan")
    parsed = _parse(render_html(summary))
    body = next(b for a, b in parsed.scripts if a.get("id") == "graceful-summary")
    assert json.loads(body)["metrics"]["negative_flip_rate"]["value"] is None


def test_undefined_values_show_undefined(summary: dict[str, Any]) -> None:
    summary["metrics"]["negative_flip_impact"].update(
        {"value": None, "low": None, "high": None, "numerator": 0.0, "denominator": 0.0}
    )
    summary["metrics"]["relative_negative_flip_rate"].update(
        {"value": None, "low": None, "high": None}
    )
    summary["by_class"][3].update(
        {
            "negative_flip_rate": None,
            "negative_flip_rate_low": None,
            "negative_flip_rate_high": None,
        }
    )
    page = render_html(summary)
    row = re.search(r'<tr data-metric="negative_flip_impact">(.*?)</tr>', page, re.DOTALL)
    assert row is not None
    assert "undefined" in row.group(1)
    assert "0.00%" not in row.group(1)
    row = re.search(r'<tr data-metric="relative_negative_flip_rate">(.*?)</tr>', page, re.DOTALL)
    assert row is not None and "undefined" in row.group(1) and "0.000" not in row.group(1)


def test_no_external_resources(page: str) -> None:
    parsed = _parse(page)
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "xlink:href", "action", "data", "poster"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#") or value.startswith("data:"), (tag, name, value)
        assert tag not in ("link", "iframe", "object", "embed", "img")
    assert "http://" not in page and "https://" not in page
    assert "url(http" not in page and "@import" not in page
    assert 'http-equiv="Content-Security-Policy"' in page


def test_error_hook_is_first_in_head(page: str) -> None:
    head = page[page.index("<head>") + len("<head>") :].lstrip()
    assert head.startswith(f"<script>{ERROR_HOOK_SCRIPT}</script>")
    assert page.index('<meta charset="utf-8">') < 1024
    assert 'dataset.ready = "1"' in page


def test_charts_are_inline_svg(page: str) -> None:
    assert page.count("<svg ") == 3  # by class, by ink, flip matrix
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids must be unique across charts"


def test_empty_flip_matrix(summary: dict[str, Any]) -> None:
    summary["flip_matrix"] = {"rows": [], "columns": [], "counts": []}
    page = render_html(summary)
    assert 'id="no-negative-flips"' in page
    assert "No negative flips" in page
    assert page.count("<svg ") == 2


def test_all_zero_flip_matrix() -> None:
    assert flip_matrix_heatmap(["a"], ["b"], [[0]]) is None


def test_bad_flip_matrix_shape(summary: dict[str, Any]) -> None:
    summary["flip_matrix"]["counts"] = [[1, 2]]
    with pytest.raises(InputError, match="flip_matrix"):
        render_html(summary)


def _hidden_rows(page: str) -> tuple[int, int]:
    """(rows, hidden rows) of the flipped-examples table."""
    body = page[page.index('id="examples-table"') :]
    body = body[: body.index("</table>")]
    rows = re.findall(r"<tr data-kind=[^>]*>", body)
    return len(rows), sum(row.endswith(" hidden>") for row in rows)


def test_examples_are_paged(large_summary: dict[str, Any]) -> None:
    page = render_html(large_summary)
    assert large_summary["flipped_examples"]["shown"] == 500
    assert _hidden_rows(page) == (500, 500 - EXAMPLES_PAGE_SIZE)
    assert f"rows 1–{EXAMPLES_PAGE_SIZE} of 500" in page
    assert 'id="example-next"' in page and 'id="example-page-size"' in page
    parsed = _parse(page)
    body = next(b for a, b in parsed.scripts if a.get("id") == "graceful-summary")
    assert len(json.loads(body)["flipped_examples"]["rows"]) == 500  # every row is kept
    left_out = (
        large_summary["counts"]["negative_flips"] + large_summary["counts"]["positive_flips"] - 500
    )
    assert f"The other {left_out:,} flipped examples are not in this report" in page


def test_few_examples_need_no_pager(summary: dict[str, Any]) -> None:
    summary["flipped_examples"]["rows"] = summary["flipped_examples"]["rows"][:EXAMPLES_PAGE_SIZE]
    page = render_html(summary)
    assert _hidden_rows(page) == (EXAMPLES_PAGE_SIZE, 0)
    assert 'id="example-pager"' not in page


def test_long_values_are_shortened_with_the_whole_value_in_a_title(
    long_summary: dict[str, Any],
) -> None:
    page = render_html(long_summary)
    parsed = _parse(page)
    css = page[page.index("<style>") : page.index("</style>")]
    longest = max(len(text.strip()) for text in parsed.text if text not in css)
    assert longest <= 300, longest  # no 20,000-character text node
    titles = {attrs.get("title") for _, attrs in parsed.tags}
    column = next(iter(long_summary["by_group"]))
    for value in (
        "i" * LONG,  # an id
        "c" * LONG,  # a class name
        "e" * LONG,  # a group value
        column,  # a group column's name
        long_summary["inputs"]["old"],  # a path
    ):
        assert value in titles
    # a cell shows the start and the end of a long value
    assert f'<td class="text id" title="{"i" * LONG}">{short_label("i" * LONG, 80)}</td>' in page


def test_every_cell_of_a_user_value_folds(long_summary: dict[str, Any]) -> None:
    """Each cell that shows an id, a class name or a group value has the folding class."""
    page = render_html(long_summary)
    tags = [(tag, attrs) for tag, attrs in _parse(page).tags if tag == "td"]
    titled = [attrs for _, attrs in tags if attrs.get("title")]
    assert titled and all("text" in (attrs.get("class") or "").split() for attrs in titled)
    css = page[page.index("<style>") : page.index("</style>")]
    assert re.search(r"td\.text \{[^}]*overflow-wrap: anywhere", css)


def test_most_affected_states_its_ranking(summary: dict[str, Any]) -> None:
    page = render_html(summary)
    assert "highest negative flip rates" not in page
    assert "ranked by the lower bound of the NFR's 95% interval" in page
    summary["confidence_level"] = 0.9
    assert "ranked by the lower bound of the NFR's 90% interval" in render_html(summary)
    del summary["confidence_level"]
    assert "ranked by the lower bound of the NFR's interval" in render_html(summary)


def test_examples_table_and_cap(summary: dict[str, Any]) -> None:
    page = render_html(summary)
    fx = summary["flipped_examples"]
    total = fx["total_negative"] + fx["total_positive"]
    assert f"showing {fx['shown']} of {total} flipped examples" in page
    assert len(re.findall(r'<tr data-kind="negative"[ >]', page)) == sum(
        r["kind"] == "negative" for r in fx["rows"]
    )
    summary["flipped_examples"]["total_negative"] = sum(r["kind"] == "negative" for r in fx["rows"])
    summary["flipped_examples"]["total_positive"] = sum(r["kind"] == "positive" for r in fx["rows"])
    assert "showing" not in render_html(summary)


def test_many_classes_chart_is_capped() -> None:
    rows = [{"group": f"c{i}", "negative_flip_rate": i / 1000} for i in range(100)]
    svg = nfr_bar_chart(rows, chart_id="many")
    assert svg is not None
    assert ">c99<" in svg and ">c0<" not in svg


@pytest.mark.parametrize("bad", [None, [1, 2], "summary"])
def test_render_rejects_non_mapping(bad: Any) -> None:
    with pytest.raises(InputError, match="`summary`"):
        render_html(bad)


def test_render_rejects_bad_section(summary: dict[str, Any]) -> None:
    summary["metrics"] = [1, 2]
    with pytest.raises(InputError, match=r"summary\['metrics'\]"):
        render_html(summary)


@pytest.mark.parametrize(
    ("section", "where"),
    [("gate", r"summary\['gate'\]\['checks'\]\[0\]"),
     ("flipped_examples", r"summary\['flipped_examples'\]\['rows'\]\[0\]")],
)  # fmt: skip
def test_render_rejects_a_bad_row(summary: dict[str, Any], section: str, where: str) -> None:
    summary[section]["checks" if section == "gate" else "rows"][0] = "not a mapping"
    with pytest.raises(InputError, match=where):
        render_html(summary)


def test_bad_chart_arguments() -> None:
    with pytest.raises(InputError, match="`max_bars`"):
        nfr_bar_chart([{"group": "a", "negative_flip_rate": 0.1}], max_bars=0)
    with pytest.raises(InputError, match="`max_labels`"):
        flip_matrix_heatmap(["a"], ["b"], [[1]], max_labels=True)


def test_write_html_is_atomic(tmp_path: Path, summary: dict[str, Any]) -> None:
    target = tmp_path / "report.html"
    assert write_html(summary, target) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    assert target.read_text(encoding="utf-8") == render_html(summary)


def test_write_html_leaves_nothing_when_rendering_fails(
    tmp_path: Path, summary_factory: Callable[..., dict[str, Any]]
) -> None:
    target = tmp_path / "report.html"
    bad = summary_factory()
    bad["flip_matrix"]["counts"] = [[1]]
    with pytest.raises(InputError):
        write_html(bad, target)
    assert list(tmp_path.iterdir()) == []


def test_write_html_keeps_old_file_when_rendering_fails(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous", encoding="utf-8")
    with pytest.raises(InputError):
        write_html(None, target)  # type: ignore[arg-type]
    assert target.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_write_html_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="`path`"):
        write_html({"title": "x"}, tmp_path / "nope" / "report.html")


def test_render_does_not_mutate_summary(summary: dict[str, Any]) -> None:
    before = copy.deepcopy(summary)
    render_html(summary)
    assert summary == before


def test_render_is_deterministic(summary: dict[str, Any]) -> None:
    assert render_html(summary) == render_html(copy.deepcopy(summary))


def test_no_pyplot_figures_left_open(summary: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    render_html(summary)
    assert plt.get_fignums() == before
