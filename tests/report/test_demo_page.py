"""The demo's story page: sections, escaping, undefined values and the embedded story."""

import json
import re

import pytest

from graceful.errors import InputError
from graceful.report.demo import digit_svg, render_demo_html, write_demo_html

STORY = {
    "title": "demo <b>",
    "graceful_version": "0.0",
    "data": {"train": 10, "new_train": 8, "old_train": 4, "val": 2, "test": 3},
    "config": {"old_width": 8, "new_width": 12, "embedding_dim": 32},
    "updates": {
        "naive": {"metrics": {"error_rate_old": 0.1, "error_rate_new": 0.05,
                              "negative_flip_rate": 0.02, "relative_negative_flip_rate": None},
                  "intervals": {"low": 0.01, "high": 0.04},
                  "mcnemar": {"verdict": "better", "p_value": 0.01},
                  "report": "updates/naive/report.html"},
        "graceful": {"metrics": {"negative_flip_rate": 0.01}},
    },
    "retrieval": {"old->old": {"top1": 0.9}, "graceful->old": {"top1": 0.95}},
    "compatibility": {"graceful": {"compatible": True, "gain": 0.5}},
    "refused": "Cannot search with <v2>",
    "searches": [{"query": "7", "label": 1, "pixels": [[0.5] * 8] * 8,
                  "before": [{"id": "8", "label": 1, "version": "v1", "score": 0.9}],
                  "after": None}],
    "pixels": {"8": [[1.0] * 8] * 8},
    "backfill": {"status": {"v1": 2, "v2": 1}, "done": 1, "total": 3,
                 "top1_mixed_gallery": None, "curve": {"fraction": [0, 1], "top1": [0.9, 0.95]}},
    "timings": {"total": 1.5},
}  # fmt: skip


def test_page_shows_each_section_with_values_escaped_and_na():
    page = render_demo_html(STORY)
    assert "demo &lt;b&gt;" in page and "Cannot search with &lt;v2&gt;" in page
    for section in ("update", "compatibility", "searches", "backfill", "timings"):
        assert f'id="{section}"' in page
    assert "2.00%" in page and "90.00%" in page and "n/a" in page
    assert 'href="updates/naive/report.html"' in page
    assert re.search(r'id="mixed-top1">n/a<', page)
    embedded = re.search(r'id="graceful-results">(.*?)</script>', page, re.S).group(1)
    assert json.loads(embedded)["title"] == "demo <b>"
    assert page.count('class="digit') == 2  # the query and its one hit


def test_digit_svg_and_bad_input(tmp_path):
    svg = digit_svg([[0.0, 1.0], [0.5, 0.0]], size=20, tone="right")
    assert svg.count("<rect") == 3 and 'class="digit right"' in svg  # background + 2 inked
    with pytest.raises(InputError, match="story"):
        render_demo_html(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert write_demo_html(STORY, tmp_path / "p.html").read_text().startswith("<!DOCTYPE html>")
