"""Real Inspect logs written by inspect-ai's built-in ``mockllm/model``, offline.

:func:`write_logs` needs inspect-ai (not a dependency of graceful's reader, but part of
the ``dev`` install that ``make test`` uses); :func:`right` does not. The mock model
answers item ``i`` right when a hash of ``(version, i)`` says so, so an old and a new run
differ item by item; the
``partial`` scorer gives Inspect's partial credit ``"P"``; with ``fail`` the new model fails
on one item (an errored sample). The mock model is given its token usage, so that inspect
does not download a tokenizer to count tokens.

Run as a script to refresh the two small ``.eval`` logs committed under
``tests/io/data/inspect`` (12 items, 2 epochs, Zstandard-compressed as inspect-ai 0.3.285
writes them; the ``.json`` logs are left out, at 300 kB each)::

    python tests/io/inspect_mock.py tests/io/data/inspect
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

#: Items a model gets right, in percent, by version.
SKILL = {"old": 70, "new": 75}

#: The item the new model fails on when ``fail`` is set.
FAILING_ITEM = 3


def right(version: str, item: int) -> bool:
    """Whether ``version`` answers ``item`` right (the rule the mock model follows)."""
    h = int(hashlib.sha256(f"{version}-{item}".encode()).hexdigest(), 16) % 100
    return h < SKILL[version]


def answer(item: int) -> str:
    return str(item % 7)


def write_logs(
    folder: Path,
    version: str,
    *,
    n: int,
    log_format: str = "eval",
    epochs: int = 1,
    fail: bool = False,
) -> Path:
    """Run a toy QA task of ``n`` items with the mock model; return the log's path."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import Score, Target, accuracy, match, scorer
    from inspect_ai.solver import TaskState, generate

    @scorer(metrics=[accuracy()])
    def partial() -> Any:
        """``"C"`` for the exact answer, ``"P"`` for one of the right length, else ``"I"``."""

        async def score(state: TaskState, target: Target) -> Score:
            text = state.output.completion.strip()
            right_length = len(text) == len(target.text)
            value = "C" if text == target.text else ("P" if right_length else "I")
            return Score(value=value, answer=text)

        return score

    def respond(messages: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        item = int(messages[-1].text.split()[1].rstrip(":"))
        if fail and item == FAILING_ITEM:
            raise RuntimeError(f"mock failure on item {item}")
        text = answer(item) if right(version, item) else ("x" if item % 2 else "?#")
        output = ModelOutput.from_content(model="mockllm", content=text)
        output.usage = ModelUsage(input_tokens=4, output_tokens=1, total_tokens=5)
        return output

    samples = [Sample(input=f"item {i}: the answer?", target=answer(i), id=i) for i in range(n)]
    task = Task(
        dataset=MemoryDataset(samples, name="toy"),
        solver=generate(),
        scorer=[match(), partial()],
        name="toy_qa",
        epochs=epochs,
    )
    (log,) = inspect_eval(
        task,
        model=get_model("mockllm/model", custom_outputs=respond),
        log_dir=str(folder),
        log_format=log_format,  # type: ignore[arg-type]
        display="none",
        fail_on_error=False,
        max_tasks=1,
    )
    return Path(log.location)


if __name__ == "__main__":  # pragma: no cover - refreshes the committed fixtures
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for version in ("old", "new"):
        path = write_logs(out / "tmp", version, n=12, epochs=2, fail=version == "new")
        path.rename(out / f"{version}.eval")
    (out / "tmp").rmdir()
