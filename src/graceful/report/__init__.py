"""The HTML report: one self-contained page that shows a comparison summary.

:func:`render_html` turns the summary dict (JSON-able, undefined values as ``None``) into a
page with no external references; :func:`write_html` writes it atomically. The summary has
these keys, all optional except that a useful page needs ``metrics``:

``graceful_version``, ``title``, ``inputs``, ``confidence_level``, ``interval_method``,
``metrics`` (name → ``value``/``low``/``high``/``numerator``/``denominator``/``direction``),
``counts``, ``mcnemar``, ``class_names``, ``by_class``, ``by_group``, ``most_affected``,
``flip_matrix`` (``rows``/``columns``/``counts``), ``flipped_examples`` and ``gate``.

:func:`render_page` renders any other page in the same style (the demo's, the benchmarks'),
with :func:`graceful.report.html.script_json` and :func:`graceful.report.html.write_page`;
:mod:`graceful.report.svg` writes the comparison's charts as inline SVG and
:mod:`graceful.report.charts` draws the curves of the other pages with matplotlib. Needs
the ``report`` extra (jinja2, matplotlib).

Example:
    >>> from graceful.report import render_html
    >>> render_html({"title": "old -> new"}).startswith("<!DOCTYPE html>")
    True
"""

from __future__ import annotations

from graceful._extras import require

# jinja2 only: the comparison report's charts are written without matplotlib, which the
# curves of graceful.report.charts import (and require) when they are used.
require("report", "graceful.report", ("jinja2",))

from graceful.report.html import render_html, render_page, write_html

__all__ = ["render_html", "render_page", "write_html"]
