"""Load a page in headless Chromium: its root element's attributes, and a screenshot check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageStat

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is not installed (looked for `chromium` and `chromium-browser` on PATH); "
        "`make test` installs it with `apt-get install -y --no-install-recommends chromium`"
    )


def _clean_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": str(home),
    }


def _run(args: list[str], workdir: Path, name: str) -> subprocess.CompletedProcess[str]:
    # Chromium puts a Unix socket in its profile and TMPDIR; pytest's tmp paths under
    # xdist are too long for a socket path (108 bytes), so both live in a short temp dir.
    with tempfile.TemporaryDirectory(prefix="gr-") as short:
        profile = Path(short) / name
        profile.mkdir()
        command = [_chromium(), *_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(Path(short)),
            check=False,
            cwd=workdir,
        )


def dump_dom(page: Path, workdir: Path) -> dict[str, str]:
    """Load ``page`` in Chromium and return the attributes of its root ``<html>`` element."""
    result = _run(["--virtual-time-budget=2000", "--dump-dom", page.as_uri()], workdir, "dom")
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"<html\b([^>]*)>", result.stdout)
    assert match is not None, f"no <html> element in the dumped DOM: {result.stdout[:500]!r}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))


def assert_screenshot_not_blank(page: Path, workdir: Path) -> None:
    """Screenshot ``page`` in Chromium and check that it shows more than a blank page."""
    png = workdir / f"{page.stem}.png"
    result = _run([f"--screenshot={png}", page.as_uri()], workdir, "shot")
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.is_file(), result.stderr[-2000:]
    with Image.open(png) as image:
        image.load()
        assert image.size == (1280, 2000)
        rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=1 << 24)
    assert colours is not None
    assert len(colours) > 10, f"only {len(colours)} distinct colours: the page looks blank"
    background = rgb.getpixel((0, 0))
    share_of_background = max(count for count, colour in colours if colour == background)
    assert share_of_background < 0.97 * rgb.width * rgb.height
    assert ImageStat.Stat(rgb.convert("L")).stddev[0] > 10
