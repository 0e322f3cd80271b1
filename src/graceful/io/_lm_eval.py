"""Read lm-evaluation-harness ``--log_samples`` output: ``samples_<task>_<date>.jsonl``.

Private part of :mod:`graceful.io.eval_logs`. Each line of a samples file is one document
of one task under one filter: ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``,
``filtered_resps``, ``filter``, ``doc_hash``, ``prompt_hash``, ``target_hash``, (from 0.4.3 on)
``metrics``, the list of the metric keys, and one key per metric (``acc``, ``exact_match``
...). An item is keyed by its task and ``doc_id``; a filter other than ``"none"`` makes a
task of its own, ``<task>/<filter>``, as lm-eval reports ``exact_match,<filter>``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from graceful.errors import InputError

from ._eval_run import EvalRun, RunBuilder, as_number, as_text

__all__ = ["PREFERRED", "detect", "read"]

#: ``samples_<task>_<date>.jsonl`` as lm-eval names them (the date sorts as text).
_NAME = re.compile(
    r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)\.jsonl$"
)

#: Keys of a sample record that are not metrics.
_NOT_METRICS = frozenset(
    {
        "doc_id",
        "doc",
        "target",
        "arguments",
        "resps",
        "filtered_resps",
        "filter",
        "metrics",
        "doc_hash",
        "prompt_hash",
        "target_hash",
    }
)

#: The default metric when a task has several: lm-eval's usual ones, in order.
PREFERRED: tuple[str, ...] = ("acc", "exact_match")


def _first_record(path: Path) -> dict[str, Any] | None:
    """The first line of ``path`` as a JSON object, or ``None`` when it is not one."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    value = json.loads(line)
                    return value if isinstance(value, dict) else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return None


def _is_samples_file(path: Path) -> bool:
    if path.name.startswith("samples_") and path.suffix == ".jsonl":
        return True
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return False
    first = _first_record(path)
    return first is not None and "doc_id" in first and ("doc_hash" in first or "resps" in first)


def _samples_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("samples_*.jsonl") if p.is_file())


def detect(path: Path) -> bool:
    """Whether ``path`` is a samples file, or a folder holding samples files."""
    if path.is_dir():
        return bool(_samples_in(path))
    return path.is_file() and _is_samples_file(path)


def _task_and_date(path: Path) -> tuple[str, str]:
    match = _NAME.match(path.name)
    if match is not None:
        return match["task"], match["date"]
    stem = path.stem
    return (stem[len("samples_") :] if stem.startswith("samples_") else stem) or stem, ""


def _pick_files(folder: Path, notes: list[str]) -> list[Path]:
    """One samples file per task (the newest), all from one run's folder."""
    files = _samples_in(folder)
    if not files:
        raise InputError(
            f"{folder}: no lm-evaluation-harness samples files (samples_<task>_<date>.jsonl) "
            "found; run lm_eval with --log_samples"
        )
    parents = sorted({str(p.parent) for p in files})
    if len(parents) > 1:
        shown = ", ".join(parents[:4]) + (", ..." if len(parents) > 4 else "")
        raise InputError(
            f"{folder}: holds the samples of {len(parents)} runs ({shown}); name one run's folder"
        )
    by_task: dict[str, list[tuple[str, Path]]] = {}
    for path in files:
        task, date = _task_and_date(path)
        by_task.setdefault(task, []).append((date, path))
    chosen = []
    for task, dated in by_task.items():
        dated.sort()
        chosen.append(dated[-1][1])
        if len(dated) > 1:
            notes.append(
                f"{folder}: task {task!r} has {len(dated)} samples files; read the newest, "
                f"{dated[-1][1].name}"
            )
    return chosen


def _prompt(arguments: object) -> str | None:
    """The prompt of the first request: ``[[prompt, ...], ...]`` or ``{"gen_args_0": {...}}``."""
    first: object = arguments
    for _ in range(2):
        if isinstance(first, (list, tuple)) and first:
            first = first[0]
        elif isinstance(first, dict) and first:
            first = next(iter(first.values()))
        else:
            break
    return first if isinstance(first, str) else as_text(arguments)


def _response(filtered: object) -> str | None:
    if isinstance(filtered, list) and len(filtered) == 1 and isinstance(filtered[0], str):
        return filtered[0]
    return as_text(filtered)


def _read_file(path: Path, task: str, builder: RunBuilder) -> None:
    name = str(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{name}: line {number}: not valid JSON ({exc.msg}, column {exc.colno}); "
                    "is the file truncated?"
                ) from None
            if not isinstance(record, dict) or "doc_id" not in record:
                raise InputError(
                    f"{name}: line {number}: not an lm-evaluation-harness sample (no 'doc_id')"
                )
            listed = record.get("metrics")
            keys = (
                [k for k in listed if isinstance(k, str)]
                if isinstance(listed, list)
                else [k for k in record if k not in _NOT_METRICS]
            )
            values = {}
            for key in keys:
                value = as_number(record.get(key))
                if value is not None:
                    values[key] = value
            flt = record.get("filter")
            builder.add(
                task=task if flt in (None, "none") else f"{task}/{flt}",
                key=str(record["doc_id"]),
                record=f"{name}: line {number}",
                values=values,
                prompt=_prompt(record.get("arguments")),
                target=as_text(record.get("target")),
                response=_response(record.get("filtered_resps")),
                hashes={
                    h: None if record.get(h) is None else str(record[h])
                    for h in ("doc_hash", "prompt_hash", "target_hash")
                },
            )


def read(path: Path) -> EvalRun:
    """Read a samples file, or the newest samples file of every task of one run's folder."""
    builder = RunBuilder(str(path), "lm-eval")
    if path.is_dir():
        files = _pick_files(path, builder.notes)
    else:
        if not _is_samples_file(path):
            raise InputError(
                f"{path}: not an lm-evaluation-harness samples file (expected "
                "samples_<task>_<date>.jsonl, one JSON object per line with 'doc_id')"
            )
        files = [path]
    try:
        for file in files:
            _read_file(file, _task_and_date(file)[0], builder)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return builder.build()
