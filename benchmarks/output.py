"""Write benchmark results: JSON, a Markdown table in the paper's form, and the HTML page."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ._common import write_json_and_markdown

__all__ = ["markdown_table", "write_results"]


def _cell(stat: dict[str, Any] | None, *, percent: bool = True) -> str:
    if not stat or stat.get("mean") is None:
        return "n/a"
    mean, std = stat["mean"], stat.get("std")
    scale = 100.0 if percent else 1.0
    text = f"{scale * mean:.2f}"
    if std is not None and math.isfinite(std):
        text += f" ± {scale * std:.2f}"
    return text


def markdown_table(setting: dict[str, Any]) -> str:
    """One setting's table (ER and NFR in %, mean ± std over seeds) with its targets.

    Example:
        >>> row = {"label": "No treatment", "n_models": 1,
        ...        "error_rate_old": {"mean": 0.1, "std": 0.01},
        ...        "error_rate_new": {"mean": 0.08, "std": 0.01},
        ...        "negative_flip_rate": {"mean": 0.03, "std": 0.002},
        ...        "relative_negative_flip_rate": {"mean": 0.4, "std": 0.05}}
        >>> print(markdown_table({"title": "t", "seeds": [0, 1], "rows": [row]}).splitlines()[4])
        | No treatment | 10.00 ± 1.00 | 8.00 ± 1.00 | 3.00 ± 0.20 | 0.40 ± 0.05 |
    """
    paired = any("paired" in row for row in setting["rows"])
    collapsed = setting.get("collapsed") or {}
    lines = [f"### {setting['title']}", ""]
    head = "| method | ER_old (%) | ER_new (%) | NFR (%) | relative NFR |"
    if paired:
        head += " p (NFR vs none) |"
    lines += [head, "|---" * (head.count("|") - 1) + "|"]
    for row in setting["rows"]:
        label = row["label"]
        if row.get("n_models", 1) > 1:
            label += f" ({row['n_models']} vs {row['n_models']})"
        if row.get("diverged"):
            label += f" (diverged in {row['diverged']} seed(s))"
        if collapsed.get(row.get("method")):
            label += f" (collapse flagged in {collapsed[row['method']]} seed(s))"
        line = (
            f"| {label} | {_cell(row['error_rate_old'])} | {_cell(row['error_rate_new'])} | "
            f"{_cell(row['negative_flip_rate'])} | "
            f"{_cell(row['relative_negative_flip_rate'], percent=False)} |"
        )
        if paired:
            p_value = (row.get("paired") or {}).get("negative_flip_rate", {}).get("p_value")
            line += " – |" if p_value is None else f" {p_value:.2g} |"
        lines.append(line)
    lines.append("")
    accuracy = setting.get("old_train_accuracy")
    if accuracy and accuracy.get("mean") is not None:
        flips = setting.get("no_treatment_negative_flips") or []
        lines.append(
            f"Old model's accuracy on its own training data: {_cell(accuracy)} %; "
            f"no-treatment negative flips per seed: {', '.join(map(str, flips))}. "
            "p: paired t-test over seeds against no treatment."
        )
        lines.append("")
    seeds = setting["seeds"]
    lines.append(f"Mean ± std over {len(seeds)} seeds ({', '.join(map(str, seeds))}).")
    if setting.get("seconds") is not None:
        lines[-1] += f" Wall time {setting['seconds'] / 60:.1f} min on this machine."
    targets = setting.get("targets") or []
    if targets:
        lines += ["", "| target | value | met |", "|---|---|---|"]
        for t in targets:
            value = "n/a" if t.get("value") is None else f"{t['value']:.3g}"
            met = "yes" if t["passed"] else "**no**"
            lines.append(f"| {t['name']} | {value} ({t['detail']}) | {met} |")
    sweep = setting.get("sweep") or []
    if sweep:
        lines += [
            "",
            f"Trade-off sweep ({sweep[0].get('method', 'fd_lm')}): ER_new and NFR in %",
            "",
            "| parameter | value | ER_new | NFR |",
            "|---|---|---|---|",
        ]
        for p in sweep:
            lines.append(
                f"| {p['parameter']} | {p['value']:g} | {_cell(p['error_rate_new'])} | "
                f"{_cell(p['negative_flip_rate'])} |"
            )
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.html`` into ``out_dir``."""
    from benchmarks.pages import write_bench_html

    sections = [markdown_table(setting) for setting in results["settings"]]
    json_path, md_path = write_json_and_markdown(results, out_dir, stem, sections)
    html_path = write_bench_html(results, out_dir / f"{stem}.html")
    return [json_path, md_path, html_path]
