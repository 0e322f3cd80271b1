"""What the cached teacher costs per epoch, timed with the plain runs interleaved.

``python -m benchmarks pct`` times the plain and the default-recipe models of each seed
minutes apart, in one pass each: on a shared 2-core machine the speed of back-to-back
fits of the *same* model varies by a third, and a small model's epoch lasts a fraction of
a second, so one pair of runs measures the machine's drift as much as the teacher. Here
each scenario's old model is trained once, and then ``rounds`` fresh new models are
trained plainly and ``rounds`` with :func:`graceful.losses.recommended_pct_loss` and the
cached teacher, alternately (plain first in even rounds, the default first in odd ones),
each for ``epochs`` epochs. The figure is the median over rounds of the ratio of the two
runs' median epoch times: each ratio compares runs a few seconds apart.

Run: ``python -m benchmarks pct-cost --out benchmarks/results``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from graceful.errors import InputError
from graceful.losses import recommended_pct_loss
from graceful.training import CachedTeacher, Trainer, seed_everything

from ._common import results_header, write_json_and_markdown
from ._markdown import targets_table
from .pct import PCTSetting, _epoch_seconds
from .pct_settings import get_setting

__all__ = ["TARGET_RATIO", "measure_teacher_cost", "run_teacher_cost", "teacher_cost_markdown"]

TARGET_RATIO = 1.15
"""Issue 14: the default recipe with the cached teacher <= 1.15 x plain time per epoch."""


def measure_teacher_cost(
    setting: PCTSetting,
    *,
    rounds: int = 7,
    epochs: int = 3,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Interleaved epoch times of plain and default-recipe training for one scenario.

    Args:
        setting: the scenario (its data, models and training configurations).
        rounds: pairs of runs, ``>= 1``.
        epochs: epochs per run, ``>= 1`` (the run's median epoch time is kept).
        seed: seed of the old model and of every new model (the same initial weights in
            every round: only the objective differs).
        log: progress lines.

    Returns:
        ``{"name", "title", "rounds", "epochs", "plain_s", "default_s", "ratios",
        "ratio", "parameters"}``: the per-round median epoch seconds of each run, the
        per-round ratios and their median.

    Raises:
        InputError: on ``rounds`` or ``epochs`` below 1.
    """
    for name, value in (("rounds", rounds), ("epochs", epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"Expected argument `{name}` to be a positive int, but got {value!r}")
    old_data, new_data = setting.load_old(), setting.load_new()
    old_train, old_val = old_data.train.to_tensor_dataset(), old_data.val.to_tensor_dataset()
    new_train, new_val = new_data.train.to_tensor_dataset(), new_data.val.to_tensor_dataset()
    log(f"[{setting.name}] old model")
    seed_everything(seed)
    old = Trainer(setting.make_old(), replace(setting.old_config, seed=seed))
    old.fit(old_train, old_val)
    teacher = CachedTeacher.build(old.model, old_train)
    old_val_logits = old.predict(old_val)
    config = replace(setting.new_config, epochs=epochs, seed=seed)

    def fit(with_teacher: bool) -> float:
        seed_everything(seed + 1)
        trainer = Trainer(
            setting.make_new(),
            config,
            loss=recommended_pct_loss() if with_teacher else None,
            teacher=teacher if with_teacher else None,
            old_val_logits=old_val_logits,
        )
        trainer.fit(new_train, new_val)
        return _epoch_seconds(trainer.history)

    plain: list[float] = []
    default: list[float] = []
    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for with_teacher in order:
            (default if with_teacher else plain).append(fit(with_teacher))
        log(
            f"[{setting.name}] round {r + 1}/{rounds}: plain {plain[-1]:.3f} s/epoch, "
            f"default {default[-1]:.3f} s/epoch"
        )
    ratios = [d / p for d, p in zip(default, plain, strict=True)]
    n_params = sum(p.numel() for p in setting.make_new().parameters())
    return {
        "name": setting.name,
        "title": setting.title,
        "rounds": rounds,
        "epochs": epochs,
        "plain_s": plain,
        "default_s": default,
        "ratios": ratios,
        "ratio": float(np.median(ratios)),
        "parameters": n_params,
        "steps_per_epoch": math.ceil(len(new_train) / setting.new_config.batch_size),
    }


def _targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{row['name']}: default recipe with cached teacher <= {TARGET_RATIO} x "
            "plain time per epoch (interleaved)",
            "value": round(row["ratio"], 3),
            "threshold": TARGET_RATIO,
            "passed": bool(row["ratio"] <= TARGET_RATIO),
        }
        for row in rows
    ]


def teacher_cost_markdown(results: dict[str, Any]) -> str:
    """The result page: one row per scenario, then the targets.

    Example:
        >>> row = {"name": "s", "title": "S", "rounds": 2, "epochs": 1, "plain_s": [1.0, 1.0],
        ...        "default_s": [1.1, 1.2], "ratios": [1.1, 1.2], "ratio": 1.15,
        ...        "parameters": 10, "steps_per_epoch": 3}
        >>> page = teacher_cost_markdown({"settings": [row],
        ...                               "targets": _targets([row]), "seconds": 1.0})
        >>> "| s | 10 | 3 | 1.000 | 1.150 | **1.15x** | 1.10, 1.20 |" in page
        True
    """
    lines = [
        "Per scenario: the old model trained once; then "
        "fresh new models (the same initial weights) trained plainly and with "
        "`recommended_pct_loss()` and the cached teacher, alternately, one pair per round. "
        "The ratio is the median over rounds of the two runs' median epoch times, so each "
        "compares runs seconds apart; the machine's drift between the runs of "
        "`python -m benchmarks pct` (minutes apart) inflates its own figure.",
        "",
        "| scenario | new model's parameters | steps per epoch | plain s/epoch (median) "
        "| default s/epoch (median) | ratio | per-round ratios |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["settings"]:
        per_round = ", ".join(f"{r:.2f}" for r in row["ratios"])
        lines.append(
            f"| {row['name']} | {row['parameters']:,} | {row['steps_per_epoch']} "
            f"| {np.median(row['plain_s']):.3f} | {np.median(row['default_s']):.3f} "
            f"| **{row['ratio']:.2f}x** | {per_round} |"
        )
    lines += ["", f"Wall time {results['seconds'] / 60:.1f} min.", ""]
    lines += targets_table(results["targets"])
    return "\n".join(lines) + "\n"


def run_teacher_cost(
    settings: Sequence[str],
    *,
    out_dir: Path,
    stem: str = "pct_teacher_cost",
    rounds: int = 7,
    epochs: int = 3,
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every scenario in ``settings`` and write ``<stem>.json`` and ``<stem>.md``.

    Raises:
        InputError: on an unknown scenario name (before anything is trained).
    """
    specs = [get_setting(name) for name in settings]
    start = time.perf_counter()
    title = "What the cached teacher costs per epoch (python -m benchmarks pct-cost)"
    results = results_header("pct-cost", title, command)
    for spec in specs:
        results["settings"].append(
            measure_teacher_cost(spec, rounds=rounds, epochs=epochs, log=log)
        )
    results["targets"] = _targets(results["settings"])
    results["seconds"] = time.perf_counter() - start
    write_json_and_markdown(results, out_dir, stem, [teacher_cost_markdown(results)])
    return results
