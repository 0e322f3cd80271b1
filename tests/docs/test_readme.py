"""The README's Python snippets run as written, in order, in a fresh folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_readme_is_short_and_has_snippets() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    assert FENCE.findall(text)


@pytest.mark.slow
def test_readme_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for number, code in enumerate(FENCE.findall(README.read_text(encoding="utf-8")), start=1):
        namespace: dict[str, object] = {"__name__": f"readme_{number}"}
        try:  # each snippet alone, as a reader would paste it
            exec(compile(code, f"README.md#snippet{number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"README.md, snippet {number}: {exc!r}") from exc
