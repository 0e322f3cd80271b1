"""The HTML report: one self-contained page that shows a comparison summary.

:func:`render_html` turns the summary dict (JSON-able, undefined values as ``None``) into a
page with no external references; :func:`write_html` writes it atomically. The summary has
these keys, all optional except that a useful page needs ``metrics``:

``graceful_version``, ``title``, ``inputs``, ``confidence_level``, ``interval_method``,
``metrics`` (name → ``value``/``low``/``high``/``numerator``/``denominator``/``direction``),
``counts``, ``mcnemar``, ``class_names``, ``by_class``, ``by_group``, ``most_affected``,
``flip_matrix`` (``rows``/``columns``/``counts``), ``flipped_examples`` and ``gate``.

:func:`render_bench_html` and :func:`write_bench_html` do the same, in the same style, for the
results of a benchmark such as ``graceful bench pct`` (see :mod:`graceful.report.bench`);
:func:`render_bct_html` and :func:`write_bct_html` for those of ``graceful bench bct``, the
backward-compatible embeddings benchmark (see :mod:`graceful.report.bct`).

Example:
    >>> from graceful.report import render_html
    >>> render_html({"title": "old -> new"}).startswith("<!DOCTYPE html>")
    True
"""

from __future__ import annotations

from graceful.report.bct import render_bct_html, write_bct_html
from graceful.report.bench import render_bench_html, write_bench_html
from graceful.report.html import render_html, write_html

__all__ = [
    "render_bct_html",
    "render_bench_html",
    "render_html",
    "write_bct_html",
    "write_bench_html",
    "write_html",
]
