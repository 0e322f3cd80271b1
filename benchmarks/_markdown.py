"""The Markdown pieces the speed benchmarks' result pages share (no heavy imports)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["targets_table"]


def targets_table(targets: Iterable[Mapping[str, Any]]) -> list[str]:
    """The lines of a ``| target | value | met |`` table, a miss in bold.

    Example:
        >>> targets_table([{"name": "x >= 1", "value": 0.5, "passed": False}])[-1]
        '| x >= 1 | 0.5 | **no** |'
    """
    lines = ["| target | value | met |", "|---|---|---|"]
    for t in targets:
        lines.append(f"| {t['name']} | {t['value']} | {'yes' if t['passed'] else '**no**'} |")
    return lines
