"""Every Python snippet of the guide (docs/*.md) runs, page by page, in order."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippets(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


def test_the_guide_has_pages_with_snippets():
    assert PAGES, "docs/ has no pages"
    assert all(snippets(p) for p in PAGES if p.name != "README.md")


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(snippets(page), start=1):
        try:
            exec(compile(code, f"{page.name}#snippet{number}", "exec"), namespace)
        except Exception as exc:  # name the page and snippet that broke
            raise AssertionError(f"{page.name}, snippet {number}: {exc!r}") from exc
