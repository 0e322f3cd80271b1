"""Read HELM run folders: ``per_instance_stats.json`` (+ ``display_predictions.json``).

Private part of :mod:`graceful.io.eval_logs`. A HELM run folder
(``benchmark_output/runs/<suite>/<run name>``) holds, among others:

* ``per_instance_stats.json``: a list of ``{"instance_id", "perturbation"?,
  "train_trial_index", "stats": [{"name": {"name", "split", ...}, "count", "sum", "mean",
  ...}, ...]}``, one per evaluated (instance, perturbation, trial): the metrics, read as
  each stat's ``mean`` (``sum / count`` where it has none);
* ``display_predictions.json``: the same keys with ``predicted_text`` (the response);
* ``instances.json``: ``{"id", "input": {"text"}, "references": [{"output": {"text"},
  "tags"}], "perturbation"?}`` (the prompt, and the references tagged ``correct`` as the
  target).

The task is the run's name without its ``model=`` and ``model_deployment=`` arguments, so
that two models' runs of one scenario have the same task. A suite folder (several run
folders) gives one task per run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graceful.errors import InputError

from ._eval_run import EvalRun, RunBuilder, as_number, as_text

__all__ = ["PREFERRED", "detect", "read"]

_STATS = "per_instance_stats.json"

#: The default metric: HELM's usual correctness metrics, in order.
PREFERRED: tuple[str, ...] = ("exact_match", "quasi_exact_match")

#: Arguments of a run name that say which model ran it, not what was evaluated.
_MODEL_ARGS = ("model=", "model_deployment=")


def _run_folders(path: Path) -> list[Path]:
    if (path / _STATS).is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_dir() and (p / _STATS).is_file())
    return []


def detect(path: Path) -> bool:
    """Whether ``path`` is a HELM run folder, a suite of them, or a run's stats file."""
    if path.is_file():
        named = path.name in (_STATS, "display_predictions.json")
        return named and (path.parent / _STATS).is_file()
    return bool(_run_folders(path))


def task_name(run: str) -> str:
    """A run's name without the arguments naming the model.

    Example:
        >>> task_name("mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2")
        'mmlu:subject=anatomy,method=multiple_choice_joint'
    """
    scenario, sep, args = run.partition(":")
    if not sep:
        return run
    kept = [a for a in args.split(",") if not a.startswith(_MODEL_ARGS)]
    return f"{scenario}:{','.join(kept)}" if kept else scenario


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); is the file truncated?"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _perturbation(value: object) -> str | None:
    if not isinstance(value, dict) or not value:
        return None
    if set(value) == {"name"}:
        return str(value["name"])
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _key(entry: dict[str, Any]) -> str:
    key = str(entry.get("instance_id", entry.get("id")))
    perturbation = _perturbation(entry.get("perturbation"))
    if perturbation is not None:
        key += f" [{perturbation}]"
    trial = entry.get("train_trial_index", 0)
    if trial not in (0, None):
        key += f" trial {trial}"
    return key


def _stat_value(stat: dict[str, Any]) -> float | None:
    mean = as_number(stat.get("mean"))
    if mean is not None:
        return mean
    total, count = as_number(stat.get("sum")), as_number(stat.get("count"))
    if total is not None and count:
        return total / count
    return None


def _values(stats: object) -> dict[str, float]:
    values: dict[str, float] = {}
    if not isinstance(stats, list):
        return values
    for stat in stats:
        if not isinstance(stat, dict):
            continue
        name = stat.get("name")
        metric = name.get("name") if isinstance(name, dict) else name
        if not isinstance(metric, str):
            continue
        # a stat computed on a perturbation is named for it; the plain one comes first
        if isinstance(name, dict) and name.get("perturbation") and metric in values:
            continue
        value = _stat_value(stat)
        if value is not None:
            values.setdefault(metric, value)
    return values


def _texts(folder: Path) -> tuple[dict[str, str | None], dict[str, tuple[str | None, str | None]]]:
    """Responses by item key, and (prompt, target) by item key, where the files exist."""
    responses: dict[str, str | None] = {}
    predictions = folder / "display_predictions.json"
    if predictions.is_file():
        for entry in _load(predictions) or []:
            if isinstance(entry, dict):
                responses[_key(entry)] = as_text(entry.get("predicted_text"))
    inputs: dict[str, tuple[str | None, str | None]] = {}
    instances = folder / "instances.json"
    if instances.is_file():
        for entry in _load(instances) or []:
            if not isinstance(entry, dict):
                continue
            given = entry.get("input")
            prompt = as_text(given.get("text") if isinstance(given, dict) else given)
            correct = [
                ref.get("output", {}).get("text")
                for ref in entry.get("references") or []
                if isinstance(ref, dict) and "correct" in (ref.get("tags") or [])
            ]
            target = " | ".join(str(t) for t in correct) if correct else None
            key = str(entry.get("id"))
            perturbation = _perturbation(entry.get("perturbation"))
            if perturbation is not None:
                key += f" [{perturbation}]"
            inputs[key] = (prompt, target)
    return responses, inputs


def _read_run(folder: Path, task: str, builder: RunBuilder) -> None:
    stats_path = folder / _STATS
    entries = _load(stats_path)
    if not isinstance(entries, list):
        raise InputError(f"{stats_path}: not a HELM per-instance stats list")
    responses, inputs = _texts(folder)
    for index, entry in enumerate(entries):
        record = f"{stats_path}: [{index}]"
        if not isinstance(entry, dict) or "instance_id" not in entry:
            raise InputError(f"{record}: not a HELM per-instance stats entry (no 'instance_id')")
        key = _key(entry)
        base = key.split(" trial ")[0]
        prompt, target = inputs.get(base, (None, None))
        builder.add(
            task=task,
            key=key,
            record=record,
            values=_values(entry.get("stats")),
            prompt=prompt,
            target=target,
            response=responses.get(key),
        )


def read(path: Path) -> EvalRun:
    """Read a HELM run folder, or every run folder of a suite (one task each)."""
    if path.is_file():
        path = path.parent
    builder = RunBuilder(str(path), "helm")
    folders = _run_folders(path)
    if not folders:
        raise InputError(f"{path}: not a HELM run folder (no {_STATS}) nor a suite of them")
    tasks: dict[str, Path] = {}
    for folder in folders:
        task = task_name(folder.name)
        if task in tasks:
            raise InputError(
                f"{path}: run folders {tasks[task].name} and {folder.name} are the same task "
                f"{task!r} (runs of several models?); name one model's run folder"
            )
        tasks[task] = folder
    try:
        for task, folder in tasks.items():
            _read_run(folder, task, builder)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return builder.build()
