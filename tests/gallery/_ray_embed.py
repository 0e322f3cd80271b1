"""Embedding functions for the Ray backfill tests, importable by Ray's worker processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np

DIM = 8


def new_vector(ids):
    """Deterministic 'new model': a vector from the id."""
    return np.stack(
        [np.random.default_rng(int(i[4:]) + 7).standard_normal(DIM) for i in ids]
    ).astype(np.float32)


def make_embed():
    return new_vector


class FailingOn:
    """Builds an embed that raises on ``bad_id`` until the file ``fixed`` exists."""

    def __init__(self, bad_id: str, fixed: str) -> None:
        self.bad_id, self.fixed = bad_id, fixed

    def __call__(self):
        def embed(ids):
            if self.bad_id in ids and not Path(self.fixed).exists():
                raise RuntimeError(f"model server down while embedding {self.bad_id}")
            return new_vector(ids)

        return embed


class DyingOnce:
    """Builds an embed whose worker process kills itself (SIGKILL) on ``bad_id``, once."""

    def __init__(self, bad_id: str, marker: str) -> None:
        self.bad_id, self.marker = bad_id, marker

    def __call__(self):
        def embed(ids):
            if self.bad_id in ids and not Path(self.marker).exists():
                Path(self.marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            return new_vector(ids)

        return embed


class Slow:
    """Builds an embed that spends ``seconds`` per batch (for kills at random moments)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self):
        import time

        def embed(ids):
            time.sleep(self.seconds)
            return new_vector(ids)

        return embed


class WrongShape:
    def __call__(self):
        return lambda ids: np.zeros((len(ids) + 1, DIM), dtype=np.float32)


class Recording:
    """Builds an embed that notes its worker's pid in ``folder`` and spends ``seconds`` a batch.

    The Ray crash test picks the workers to kill from those files.
    """

    def __init__(self, folder: str, seconds: float) -> None:
        self.folder, self.seconds = folder, seconds

    def __call__(self):
        import time

        Path(self.folder, str(os.getpid())).write_text("")

        def embed(ids):
            time.sleep(self.seconds)
            return new_vector(ids)

        return embed
