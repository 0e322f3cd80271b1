"""Read plain per-item tables of correctness or scores (CSV, Parquet, JSON Lines).

Private part of :mod:`graceful.io.eval_logs`. One row per item: an id column, optionally a
task column, and one or more metric columns (numbers or booleans: ``correct``, ``f1``,
``rougeL`` ...); the columns ``prompt``, ``target``, ``response`` and the hash columns of
lm-evaluation-harness are read as texts where present. Every other numeric or boolean
column is a metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graceful.errors import InputError

from ._eval_run import HASH_COLUMNS, EvalRun, RunBuilder

__all__ = ["ALL_TASKS", "read"]

#: The task of every row of a table without a task column.
ALL_TASKS = "(all)"

_TEXT_COLUMNS = ("prompt", "target", "response", *HASH_COLUMNS)


def _frame(path: Path) -> pd.DataFrame:
    from ._readers import open_source

    source = open_source(path, one_d_name="value")
    if source.format_name.startswith("NumPy"):
        raise InputError(f"{path}: a per-item table must be CSV, Parquet or JSON Lines")
    import pyarrow as pa

    batches = list(source.batches(source.columns, batch_rows=1 << 16))
    if not batches:
        raise InputError(f"{path}: empty file (no rows)")
    frame: pd.DataFrame = pa.Table.from_batches(batches).to_pandas()
    return frame


def read(path: Path, *, id_col: str | None = None, task_col: str | None = None) -> EvalRun:
    """Read a per-item table: an id column, a task column, metrics and texts.

    ``id_col`` defaults to ``"id"``, ``task_col`` to ``"task"`` where present.
    """
    frame = _frame(path)
    id_name = id_col or "id"
    if id_name not in frame.columns:
        raise InputError(
            f"{path}: no id column {id_name!r} (columns: {', '.join(map(str, frame.columns))});"
            " name it with id_col= (--id-col)"
        )
    if task_col is not None and task_col not in frame.columns:
        raise InputError(f"{path}: no task column {task_col!r}")
    task_name = task_col or ("task" if "task" in frame.columns else None)
    skip = {id_name, task_name, *_TEXT_COLUMNS}
    metrics = [
        str(c)
        for c in frame.columns
        if c not in skip
        and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]
    ids = frame[id_name]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise InputError(f"{path}: row {row + 1}: no value in id column {id_name!r}")
    tasks = (
        frame[task_name].astype(object).where(frame[task_name].notna(), "<NA>")
        if task_name is not None
        else pd.Series(ALL_TASKS, index=frame.index)
    )
    values = {m: frame[m].to_numpy(dtype=np.float64, na_value=np.nan) for m in metrics}
    texts = {c: frame[c] for c in _TEXT_COLUMNS if c in frame.columns}

    def text(column: str, row: int) -> str | None:
        series = texts.get(column)
        if series is None:
            return None
        value: Any = series.iat[row]
        missing = value is None or (isinstance(value, float) and np.isnan(value))
        return None if missing else str(value)

    builder = RunBuilder(str(path), "table")
    for row in range(len(frame)):
        builder.add(
            task=str(tasks.iat[row]),
            key=str(ids.iat[row]),
            record=f"{path}: row {row + 1}",
            values={m: float(v[row]) for m, v in values.items()},
            prompt=text("prompt", row),
            target=text("target", row),
            response=text("response", row),
            hashes={h: text(h, row) for h in HASH_COLUMNS},
        )
    return builder.build()
