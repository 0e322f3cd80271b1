"""One run's evaluation log as a canonical per-item table, and the builder the readers share.

Private part of :mod:`graceful.io.eval_logs`. Every reader (lm-evaluation-harness, Inspect,
HELM, plain tables) turns its format into an :class:`EvalRun`: one row per evaluated item,
keyed by task and item key, with every per-item metric the log holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from graceful.errors import InputError

__all__ = [
    "HASH_COLUMNS",
    "ITEM_COLUMNS",
    "EvalRun",
    "RunBuilder",
    "as_number",
    "as_text",
    "pick_metric",
]

#: Columns of :attr:`EvalRun.items`, in order (texts and hashes are ``None`` where absent).
ITEM_COLUMNS: tuple[str, ...] = (
    "task",
    "key",
    "record",
    "prompt",
    "target",
    "response",
    "doc_hash",
    "prompt_hash",
    "target_hash",
    "errored",
)

#: The hash columns, compared between two runs where both hold them.
HASH_COLUMNS: tuple[str, ...] = ("doc_hash", "prompt_hash", "target_hash")


def as_number(value: object) -> float | None:
    """A per-item metric value as a float: numbers and booleans; ``None`` for anything else.

    Example:
        >>> as_number(True), as_number(3), as_number("3"), as_number(None)
        (1.0, 3.0, None, None)
    """
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return None


def as_text(value: object) -> str | None:
    """Text of a prompt, target or response: a string as it is, anything else as JSON.

    Example:
        >>> as_text("a"), as_text(["a", 1]), as_text(None)
        ('a', '["a", 1]', None)
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def pick_metric(
    found: Sequence[str], preferred: Sequence[str], where: str, *, single_only: bool = False
) -> str:
    """The default metric among ``found``: the only one, else the first of ``preferred``.

    Raises:
        InputError: naming ``where`` and listing the metrics when the choice is ambiguous.

    Example:
        >>> pick_metric(["acc", "acc_norm"], ["acc", "exact_match"], "task 'x'")
        'acc'
        >>> pick_metric(["f1", "bleu"], ["acc"], "task 'x'")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: task 'x': several metrics (bleu, f1) and none is the default; choose one with metric= (--metric)
    """  # noqa: E501
    if len(found) == 1:
        return found[0]
    if not single_only:
        for name in preferred:
            if name in found:
                return name
    if not found:
        raise InputError(f"{where}: no per-item metric found")
    listed = ", ".join(sorted(found))
    raise InputError(
        f"{where}: several metrics ({listed}) and none is the default; choose one with "
        "metric= (--metric)"
    )


@dataclass(frozen=True)
class EvalRun:
    """One run's evaluation results, one row per evaluated item.

    Attributes:
        path: the file or folder read, as named.
        format: ``"lm-eval"``, ``"inspect"``, ``"helm"`` or ``"table"``.
        items: a ``pd.DataFrame`` with the columns :data:`ITEM_COLUMNS`: ``task`` and ``key``
            (strings; unique together), ``record`` (where the item was read, for messages:
            ``file:line``, a zip member, a list index), the ``prompt``, ``target`` and
            ``response`` texts and the ``doc_hash``, ``prompt_hash`` and ``target_hash`` of
            lm-evaluation-harness (``None`` where the format has none), and ``errored``
            (``True`` for an Inspect sample that ended in an error).
        values: a ``pd.DataFrame`` on the same index, one float64 column per metric found
            anywhere in the run, NaN where a record holds no number for it.
        notes: what the reader decided on its own (e.g. which of several dated files of a
            task it read).

    Example:
        >>> import pandas as pd
        >>> builder = RunBuilder("run.jsonl", "table")
        >>> builder.add(task="t", key="1", record="run.jsonl: row 1", values={"acc": 1.0})
        >>> builder.add(task="t", key="2", record="run.jsonl: row 2", values={"acc": 0.0})
        >>> run = builder.build()
        >>> run.tasks, run.metrics("t")
        (['t'], ['acc'])
        >>> run.table("acc")[["task", "key", "value"]].to_dict("list")
        {'task': ['t', 't'], 'key': ['1', '2'], 'value': [1.0, 0.0]}
    """

    path: str
    format: str
    items: pd.DataFrame
    values: pd.DataFrame
    notes: tuple[str, ...] = field(default=())

    @property
    def tasks(self) -> list[str]:
        """The tasks, in the order they were read."""
        return list(pd.unique(self.items["task"]))

    def metrics(self, task: str | None = None) -> list[str]:
        """Metrics with at least one value (in ``task``, or anywhere), sorted by name."""
        values = self.values
        if task is not None:
            values = values[(self.items["task"] == task).to_numpy()]
        return sorted(str(c) for c in values.columns if values[c].notna().any())

    def table(self, metric: str) -> pd.DataFrame:
        """The canonical per-item table for one metric.

        Args:
            metric: a metric of the run (a column of :attr:`values`).

        Returns:
            A ``pd.DataFrame`` with the columns ``task, key, value`` (float64, NaN where a
            record holds no number for ``metric``) followed by ``record, prompt, target,
            response`` and the hash columns.

        Raises:
            InputError: the run has no metric of that name.
        """
        if metric not in self.values.columns:
            found = ", ".join(self.metrics()) or "none"
            raise InputError(f"{self.path}: no metric {metric!r} (metrics found: {found})")
        out = self.items[["task", "key"]].copy()
        out["value"] = self.values[metric].to_numpy(dtype=np.float64)
        rest = [c for c in ITEM_COLUMNS if c not in ("task", "key", "errored")]
        return pd.concat([out, self.items[rest]], axis=1)


class RunBuilder:
    """Collects one run's items, record by record, and builds the :class:`EvalRun`."""

    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self._columns: dict[str, list[Any]] = {c: [] for c in ITEM_COLUMNS}
        self._values: dict[str, dict[int, float]] = {}
        self._seen: dict[tuple[str, str], str] = {}
        self.notes: list[str] = []

    def __len__(self) -> int:
        return len(self._columns["task"])

    def add(
        self,
        *,
        task: str,
        key: str,
        record: str,
        values: dict[str, float],
        prompt: str | None = None,
        target: str | None = None,
        response: str | None = None,
        hashes: dict[str, str | None] | None = None,
        errored: bool = False,
    ) -> None:
        """Add one item; an item key seen twice in a task is an :class:`InputError`."""
        first = self._seen.get((task, key))
        if first is not None:
            raise InputError(
                f"{record}: item {key!r} of task {task!r} appears twice (first at {first})"
            )
        self._seen[(task, key)] = record
        row = len(self)
        hashes = hashes or {}
        for column, value in (
            ("task", task),
            ("key", key),
            ("record", record),
            ("prompt", prompt),
            ("target", target),
            ("response", response),
            ("doc_hash", hashes.get("doc_hash")),
            ("prompt_hash", hashes.get("prompt_hash")),
            ("target_hash", hashes.get("target_hash")),
            ("errored", bool(errored)),
        ):
            self._columns[column].append(value)
        for name, number in values.items():
            if math.isnan(number):
                continue
            self._values.setdefault(name, {})[row] = number

    def build(self) -> EvalRun:
        """The run read so far; an :class:`InputError` when it holds no item."""
        n = len(self)
        if n == 0:
            raise InputError(f"{self.path}: no evaluated items found")
        items = pd.DataFrame(
            {
                c: pd.Series(v, dtype=bool if c == "errored" else object)
                for c, v in self._columns.items()
            }
        )
        columns: dict[str, np.ndarray[Any, np.dtype[np.float64]]] = {}
        for name in sorted(self._values):
            column = np.full(n, np.nan)
            cells = self._values[name]
            column[np.fromiter(cells.keys(), np.int64, len(cells))] = np.fromiter(
                cells.values(), np.float64, len(cells)
            )
            columns[name] = column
        values = pd.DataFrame(columns, index=items.index)
        return EvalRun(self.path, self.format, items, values, tuple(self.notes))
