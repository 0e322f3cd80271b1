"""The comparison report's two charts, written as inline SVG by hand (no matplotlib).

``graceful compare`` draws a bar chart per breakdown and the flip-matrix heatmap on every
run; matplotlib's import and layout engine cost it about a second, more than the rest of the
report. These charts are a few dozen shapes each, so they are written directly: text stays
text, escaped (a class called ``<b>`` or ``$x$`` is drawn as written), every ``id`` starts
with the chart's id (several charts can sit in one page), and the page references no URL.
The figures of the demo and the benchmark pages (:mod:`graceful.report.charts`) still use
matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from graceful._validation import check_int
from graceful.errors import InputError

__all__ = ["finite_or_none", "flip_matrix_heatmap", "nfr_bar_chart", "short_label"]

INK = "#333333"
MUTED = "#777777"
GRID = "#e5e5e5"
_REGRESS = "#c0392b"
_REGRESS_LIGHT = "#e6a199"
_FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"'
_CHAR = 6.6  # average advance of a 11 px sans-serif character, for the layout
# matplotlib's "Reds" colour map at 0, 1/4, 1/2, 3/4 and 1, interpolated linearly between.
_REDS = ((255, 245, 240), (252, 187, 161), (251, 106, 74), (203, 24, 29), (103, 0, 13))


def finite_or_none(value: Any) -> float | None:
    """Return ``value`` as a float, or None when it is missing or not finite.

    Example:
        >>> finite_or_none("0.5"), finite_or_none(None), finite_or_none(float("nan"))
        (0.5, None, None)
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def short_label(text: str, limit: int = 28) -> str:
    """Shorten a label for an axis, keeping its start and end.

    Example:
        >>> short_label("a" * 40, 12)
        'aa…aaaaaaaaa'
    """
    return text if len(text) <= limit else text[: limit - 10] + "…" + text[-9:]


def _text(x: float, y: float, text: str, *, anchor: str = "start", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>'
        f"{escape(text, quote=False)}</text>"
    )


def _svg(chart_id: str, width: float, height: float, body: list[str], title: str) -> str:
    return (
        f'<svg role="img" class="chart" data-chart="{escape(chart_id)}" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" {_FONT} '
        f'font-size="11" fill="{INK}"><title>{escape(title, quote=False)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _nice_ticks(top: float, bins: int = 6) -> list[float]:
    """Round tick values from 0 to at least ``top``, about ``bins`` of them.

    Example:
        >>> _nice_ticks(0.037)
        [0.0, 0.01, 0.02, 0.03, 0.04]
    """
    raw = top / bins
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(count + 1)]


def _percent(x: float) -> str:
    return f"{x * 100:.3g}%"


def nfr_bar_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    chart_id: str = "nfr",
    xlabel: str = "negative flip rate",
    max_bars: int = 30,
) -> str | None:
    r"""Draw each group's negative flip rate as a horizontal bar with its interval.

    Bars keep the order of ``rows`` unless there are more than ``max_bars``, in which case
    the ``max_bars`` groups with the highest negative flip rate are drawn, highest first.
    A group whose rate is undefined (``None``) is drawn as an empty row labelled
    "undefined".

    Args:
        rows: per-group rows with keys ``group``, ``negative_flip_rate`` and optionally
            ``negative_flip_rate_low`` / ``negative_flip_rate_high`` (fractions).
        chart_id: a short identifier, unique within the page, used to prefix SVG ids.
        xlabel: the label of the value axis.
        max_bars: the most bars to draw.

    Returns:
        An ``<svg>`` element as a string, or None when ``rows`` is empty.

    Raises:
        InputError: if ``max_bars`` is not a positive int.

    Example:
        >>> svg = nfr_bar_chart([
        ...     {"group": "cat", "negative_flip_rate": 0.02,
        ...      "negative_flip_rate_low": 0.01, "negative_flip_rate_high": 0.04},
        ...     {"group": "dog", "negative_flip_rate": None},
        ... ])
        >>> svg.startswith("<svg") and ">cat<" in svg and "undefined" in svg
        True
        >>> nfr_bar_chart([]) is None
        True
    """
    check_int("max_bars", max_bars, low=1)
    if not rows:
        return None
    items = list(rows)
    if len(items) > max_bars:
        items.sort(key=lambda r: -(finite_or_none(r.get("negative_flip_rate")) or -1.0))
        items = items[:max_bars]
    labels = [short_label(str(r.get("group", ""))) for r in items]
    values = [finite_or_none(r.get("negative_flip_rate")) for r in items]
    lows = [finite_or_none(r.get("negative_flip_rate_low")) for r in items]
    highs = [finite_or_none(r.get("negative_flip_rate_high")) for r in items]
    top = max([v for v in values + highs if v is not None] + [0.0])
    ticks = _nice_ticks(top if top > 0 else 0.01)
    xmax = max(ticks[-1], top * 1.04)

    row_h, pad_top, pad_bottom = 22.0, 8.0, 44.0
    left = 12.0 + _CHAR * max(len(s) for s in labels)
    width = 720.0
    right = width - 24.0
    height = pad_top + row_h * len(items) + pad_bottom
    bottom = pad_top + row_h * len(items)

    def x_of(v: float) -> float:
        return left + (right - left) * v / xmax

    body = []
    for t in ticks:
        x = x_of(t)
        body.append(
            f'<line x1="{x:.1f}" y1="{pad_top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
            f'stroke="{GRID}"/>'
        )
        body.append(_text(x, bottom + 15, _percent(t), anchor="middle", fill=MUTED))
    body.append(
        f'<line x1="{left:.1f}" y1="{bottom:.1f}" x2="{right:.1f}" y2="{bottom:.1f}" '
        f'stroke="#bbbbbb"/>'
    )
    bar = row_h * 0.62
    for i, (label, value, low, high) in enumerate(zip(labels, values, lows, highs, strict=True)):
        mid = pad_top + row_h * (i + 0.5)
        body.append(_text(left - 6, mid + 4, label, anchor="end"))
        if value is None:
            body.append(_text(left + 4, mid + 4, "undefined", fill=MUTED, font_size=10))
            continue
        body.append(
            f'<rect x="{left:.1f}" y="{mid - bar / 2:.1f}" width="{x_of(value) - left:.1f}" '
            f'height="{bar:.1f}" fill="{_REGRESS_LIGHT}" stroke="{_REGRESS}" '
            f'stroke-width="0.8"><title>{escape(label, quote=False)}: '
            f"{_percent(value)}</title></rect>"
        )
        if low is not None and high is not None:
            x1, x2 = x_of(max(min(low, value), 0.0)), x_of(max(high, value))
            cap = 3.5
            body.append(
                f'<path d="M{x1:.1f} {mid:.1f}H{x2:.1f}M{x1:.1f} {mid - cap:.1f}V{mid + cap:.1f}'
                f'M{x2:.1f} {mid - cap:.1f}V{mid + cap:.1f}" stroke="{INK}" '
                f'stroke-width="1.1" fill="none"/>'
            )
    body.append(_text((left + right) / 2, height - 8, xlabel, anchor="middle"))
    return _svg(chart_id, width, height, body, f"{xlabel} by group")


def _red(fraction: float) -> str:
    """The colour of ``fraction`` (0..1) on the Reds scale, as ``#rrggbb``."""
    f = min(max(fraction, 0.0), 1.0) * (len(_REDS) - 1)
    i = min(int(f), len(_REDS) - 2)
    a, b, t = _REDS[i], _REDS[i + 1], f - i
    return "#" + "".join(f"{round(a[k] + (b[k] - a[k]) * t):02x}" for k in range(3))


def flip_matrix_heatmap(
    rows: Sequence[Any],
    columns: Sequence[Any],
    counts: Sequence[Sequence[Any]],
    *,
    chart_id: str = "flips",
    max_labels: int = 20,
) -> str | None:
    """Draw the old-prediction → new-prediction counts of negative flips as a heatmap.

    When there are more than ``max_labels`` rows or columns, only those with the largest
    totals are drawn (the page says so next to the chart). Each cell shows its count; the
    colour scale runs from 0 to the largest count, with a legend.

    Args:
        rows: old predictions (one per matrix row).
        columns: new predictions (one per matrix column).
        counts: ``len(rows)`` lists of ``len(columns)`` counts.
        chart_id: a short identifier, unique within the page, used to prefix SVG ids.
        max_labels: the most rows and the most columns to draw.

    Returns:
        An ``<svg>`` element as a string, or None when there are no negative flips.

    Raises:
        InputError: if ``counts`` does not have the shape of ``rows`` by ``columns``, or
            ``max_labels`` is not a positive int.

    Example:
        >>> svg = flip_matrix_heatmap(["1", "8"], ["8", "9"], [[0, 3], [2, 0]])
        >>> svg.startswith("<svg") and "old prediction" in svg
        True
        >>> flip_matrix_heatmap([], [], []) is None
        True
    """
    check_int("max_labels", max_labels, low=1)
    if len(counts) != len(rows) or any(len(line) != len(columns) for line in counts):
        shape = [len(line) for line in counts]
        raise InputError(
            f"Expected argument `counts` to have {len(rows)} rows of {len(columns)} counts, "
            f"but got rows of lengths {shape!r}"
        )
    matrix = [[finite_or_none(c) or 0.0 for c in line] for line in counts]
    if not matrix or not any(c > 0 for line in matrix for c in line):
        return None
    row_order = sorted(range(len(rows)), key=lambda i: -sum(matrix[i]))[:max_labels]
    col_order = sorted(range(len(columns)), key=lambda j: -sum(m[j] for m in matrix))
    col_order = col_order[:max_labels]
    row_order.sort()
    col_order.sort()
    grid = [[matrix[i][j] for j in col_order] for i in row_order]
    peak = max(max(line) for line in grid) or 1.0
    row_labels = [short_label(str(rows[i]), 20) for i in row_order]
    col_labels = [short_label(str(columns[j]), 16) for j in col_order]

    cell_w, cell_h = 42.0, 28.0
    rotate = len(col_order) * min(max(len(s) for s in col_labels), 16) > 40
    left = 34.0 + _CHAR * max(len(s) for s in row_labels)
    top = 10.0
    plot_w, plot_h = cell_w * len(col_order), cell_h * len(row_order)
    label_h = (_CHAR * max(len(s) for s in col_labels) * 0.72 + 10) if rotate else 16.0
    legend_x = left + plot_w + 18
    width = legend_x + 60
    height = top + plot_h + label_h + 30
    gradient = f"{chart_id}-scale"

    body = [
        f'<defs><linearGradient id="{escape(gradient)}" x1="0" y1="1" x2="0" y2="0">'
        + "".join(
            f'<stop offset="{k / (len(_REDS) - 1):.2f}" stop-color="{_red(k / (len(_REDS) - 1))}"/>'
            for k in range(len(_REDS))
        )
        + "</linearGradient></defs>"
    ]
    for r, line in enumerate(grid):
        y = top + cell_h * r
        body.append(_text(left - 6, y + cell_h / 2 + 4, row_labels[r], anchor="end"))
        for c, value in enumerate(line):
            x = left + cell_w * c
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" height="{cell_h:.1f}" '
                f'fill="{_red(value / peak)}" stroke="white" stroke-width="1.2"/>'
            )
            if value > 0:
                text = f"{value:g}" if value == int(value) else f"{value:.3g}"
                colour = "white" if value > peak * 0.55 else INK
                body.append(
                    _text(x + cell_w / 2, y + cell_h / 2 + 4, text, anchor="middle",
                          fill=colour, font_size=10)
                )  # fmt: skip
    base = top + plot_h
    for c, label in enumerate(col_labels):
        x = left + cell_w * (c + 0.5)
        if rotate:
            body.append(
                f'<text x="{x:.1f}" y="{base + 12:.1f}" text-anchor="end" '
                f'transform="rotate(-45 {x:.1f} {base + 12:.1f})">'
                f"{escape(label, quote=False)}</text>"
            )
        else:
            body.append(_text(x, base + 14, label, anchor="middle"))
    body.append(_text(left + plot_w / 2, base + label_h + 20, "new prediction", anchor="middle"))
    mid_y = top + plot_h / 2
    body.append(
        f'<text x="12" y="{mid_y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {mid_y:.1f})">old prediction</text>'
    )
    legend_h = max(plot_h * 0.8, 40.0)
    legend_top = top + (plot_h - legend_h) / 2
    body.append(
        f'<rect x="{legend_x:.1f}" y="{legend_top:.1f}" width="10" height="{legend_h:.1f}" '
        f'fill="url(#{escape(gradient)})"/>'
    )
    for value in sorted({0.0, peak / 2, peak}):
        y = legend_top + legend_h * (1 - value / peak)
        text = f"{value:g}" if value == int(value) else f"{value:.3g}"
        body.append(_text(legend_x + 14, y + 3, text, fill=MUTED, font_size=9))
    return _svg(chart_id, width, height, body, "negative flips: old prediction to new")
