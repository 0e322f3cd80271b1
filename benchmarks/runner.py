"""Run ``python -m benchmarks pct`` end to end and write its results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._common import results_header
from .output import write_results
from .pct import run_pct_setting, summarise
from .pct_settings import get_setting

__all__ = ["run_pct"]


def run_pct(
    settings: Sequence[str],
    seeds: Sequence[int],
    *,
    out_dir: Path,
    sweep_seeds: Sequence[int] = (0,),
    stem: str = "pct",
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the positive-congruent training benchmark on ``settings`` and write the results.

    Writes ``<out_dir>/<stem>.json``, ``.md`` and ``.html``, and every model's test
    predictions under ``<out_dir>/<stem>/<setting>/seed<k>/``.

    Args:
        settings: names from :data:`benchmarks.SETTINGS`.
        seeds: model seeds.
        out_dir: results folder.
        sweep_seeds: seeds on which FD-LM's beta and lambda are swept.
        stem: file name stem of the outputs.
        command: the command line, recorded in the outputs.
        log: progress lines.

    Returns:
        The results dict (as written to JSON).
    """
    specs = [get_setting(name) for name in settings]  # fail fast on a bad name
    title = "Positive-congruent training (python -m benchmarks pct)"
    results = results_header("pct", title, command)
    for spec in specs:
        predictions = out_dir / stem / spec.name
        raw = run_pct_setting(spec, seeds, out_dir=predictions, sweep_seeds=sweep_seeds, log=log)
        summary = summarise(spec, raw)
        summary["predictions"] = str(predictions)
        results["settings"].append(summary)
    write_results(results, out_dir, stem)
    return results
