"""What the crash tests share: a child process whose stdout is read as it comes, the checks.

A child prints ``ready``, then lines such as ``ack ID...`` and ``done ID...``, each flushed
in one write: a line cut by a kill has no newline and is not counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading


class ChildProcess:
    """Runs ``python *args`` with its stdout read by a thread into :attr:`lines`.

    :attr:`ready` is set at the ``ready`` line and :attr:`working` at the first ``done``.
    """

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.working = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):
                break  # a line cut by the kill: not acknowledged
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if line == "ready":
                self.ready.set()
            elif line.startswith("done "):
                self.working.set()

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        """The exit code and the end of stderr, once the process has ended."""
        self.proc.wait(timeout)
        self.reader.join(30)
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read().decode()[-2000:]

    def ids(self, kind: str) -> set[str]:
        """The ids of every complete ``kind ID...`` line (``ack`` or ``done``)."""
        out: set[str] = set()
        for line in self.lines:
            if line.startswith(kind + " "):
                out.update(line.split()[1:])
        return out


def check_rows(rows, plan, acked, done, new_vector):
    """The invariants that must hold after any kill, on the store's rows.

    ``rows``: ``(id, version, vector bytes)`` of every item; ``plan``: ``(pos, id, done_seq,
    outcome)`` of the job's plan positions. Returns (items, plan positions done).
    """
    import numpy as np

    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))  # one row, hence one version, per item
    assert {r[1] for r in rows} <= {"v0", "v1"}
    by_id = {r[0]: r for r in rows}
    missing = acked - by_id.keys()
    assert not missing, f"acknowledged items lost: {sorted(missing)[:5]}"
    for i in done:
        _, version, blob = by_id[i]
        assert version == "v1"
        np.testing.assert_array_equal(np.frombuffer(blob, np.float32), new_vector([i])[0])
    planned = [p[1] for p in plan]
    assert len(planned) == len(set(planned))  # no item planned twice
    for _, id_, done_seq, outcome in plan:  # a position is done iff its item moved
        if done_seq is not None:
            assert outcome == "embedded" and by_id[id_][1] == "v1"
    return len(rows), sum(p[2] is not None for p in plan)
