"""Pieces every ``graceful bench`` benchmark shares: statistics, training, embedding, headers."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

import graceful
from graceful.data import LabelledArrays
from graceful.embedding import EmbeddingOf
from graceful.errors import InputError
from graceful.io.atomic import atomic_write_text
from graceful.retrieval import retrieval_metrics
from graceful.training import TrainConfig, Trainer, predict

__all__ = [
    "embed",
    "loo_retrieval",
    "results_header",
    "setting_from",
    "setting_named",
    "stat",
    "train",
    "write_json_and_markdown",
]


def stat(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std and the values over seeds; non-finite values are left out (``None``).

    Example:
        >>> stat([0.1, 0.3, float("nan")])["values"]
        [0.1, 0.3, None]
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    return {
        "mean": float(finite.mean()) if finite.size else None,
        "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
        "values": [None if not math.isfinite(v) else float(v) for v in arr],
    }


def results_header(benchmark: str, title: str, command: str) -> dict[str, Any]:
    """The head of a benchmark's results: version, time, command, machine; no settings yet."""
    return {
        "benchmark": benchmark,
        "title": title,
        "graceful_version": graceful.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
        },
        "settings": [],
    }


_Setting = TypeVar("_Setting")


def setting_from(factories: Mapping[str, Callable[[], _Setting]], name: str) -> _Setting:
    """Build the setting called ``name`` from its factory, or say which names exist.

    Example:
        >>> setting_from({"a": lambda: 1}, "a")
        1
    """
    try:
        factory = factories[name]
    except KeyError:
        raise InputError(
            f"Expected a setting among {sorted(factories)}, but got {name!r}"
        ) from None
    return factory()


def setting_named(settings: Mapping[str, _Setting], name: str) -> _Setting:
    """The ready-made setting called ``name`` (no factory), or say which names exist.

    Example:
        >>> setting_named({"a": 1}, "a")
        1
    """

    def constant(setting: _Setting) -> Callable[[], _Setting]:
        return lambda: setting

    return setting_from({key: constant(value) for key, value in settings.items()}, name)


def write_json_and_markdown(
    results: dict[str, Any], out_dir: Path, stem: str, sections: Sequence[str]
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` (the results) and ``<stem>.md`` (a header line, then ``sections``).

    The Markdown starts with the title and a line naming the version, torch, the CPU count
    and the command; each of ``sections`` (one per setting, already rendered) follows.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    atomic_write_text(json_path, json.dumps(results, indent=2, allow_nan=False) + "\n")
    machine = results.get("machine", {})
    md = [
        f"# {results['title']}",
        "",
        f"graceful {results['graceful_version']}, torch {machine.get('torch')}, "
        f"{machine.get('cpus')} CPU cores. Command: `{results.get('command', '')}`.",
        "",
        *sections,
    ]
    md_path = out_dir / f"{stem}.md"
    atomic_write_text(md_path, "\n".join(md))
    return json_path, md_path


def train(
    model: nn.Module,
    config: TrainConfig,
    seed: int,
    train_part: LabelledArrays,
    val_part: LabelledArrays,
    **kwargs: Any,
) -> None:
    """Fit ``model`` with ``config`` under ``seed`` (the Trainer seeds everything from it)."""
    Trainer(model, replace(config, seed=seed), **kwargs).fit(
        train_part.to_tensor_dataset(), val_part.to_tensor_dataset()
    )


def embed(model: nn.Module, part: LabelledArrays, batch_size: int = 512) -> torch.Tensor:
    """An embedding model's embeddings of ``part`` (:func:`graceful.training.predict`)."""
    return predict(EmbeddingOf(model), torch.as_tensor(part.x), batch_size=batch_size)


def loo_retrieval(q: torch.Tensor, g: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    """Leave-one-out top-1, top-5 and mAP of queries ``q`` against gallery ``g`` (same items)."""
    return retrieval_metrics(q, labels, g, labels, leave_one_out=True, top_k=(1, 5))
