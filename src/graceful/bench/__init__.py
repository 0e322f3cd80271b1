"""Benchmarks on real data that anyone can rerun: ``graceful bench <name>``.

Example:
    >>> from graceful.bench import METHODS
    >>> list(METHODS)[:3]
    ['no_treatment', 'kd', 'fd_kl']
"""

from .pct import METHODS, PCTSetting, run_pct_setting, summarise
from .runner import run_pct
from .settings import SETTINGS, get_setting

__all__ = [
    "METHODS",
    "SETTINGS",
    "PCTSetting",
    "get_setting",
    "run_pct",
    "run_pct_setting",
    "summarise",
]
