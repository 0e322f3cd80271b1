"""Each integration without its framework is one MissingExtraError naming the extra."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import graceful

CASES = [
    ("transformers", "transformers", "transformers"),
    ("lightning", "lightning", "lightning"),
    ("sentence_transformers", "sentence_transformers", "sentence-transformers"),
]


@pytest.mark.parametrize(("module", "hidden", "extra"), CASES)
def test_an_integration_without_its_framework_names_its_extra(tmp_path, module, hidden, extra):
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():  # site-packages without the framework
        framework = entry.name == hidden or entry.name.startswith(f"{hidden}-")
        if not framework and entry.suffix != ".pth":
            (tmp_path / entry.name).symlink_to(entry)
    code = (
        "from graceful.errors import MissingExtraError\n"
        f"try:\n    import graceful.integrations.{module}\n"
        "except MissingExtraError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": f"{Path(graceful.__file__).parents[1]}{os.pathsep}{tmp_path}",
            "PYTHONNOUSERSITE": "1",
            "HOME": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip()
    assert "\n" not in line and f"pip install 'graceful[{extra}]'" in line, line
