"""Atomic output: one file or a folder's files, all or nothing, with the user's permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from graceful.io.atomic import atomic_folder, atomic_open, atomic_write_text


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def test_atomic_open_gives_the_umask_mode_not_0600(tmp_path: Path, umask_027: None) -> None:
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_open(tmp_path / "b.bin", "wb") as handle:
        handle.write(b"y")  # type: ignore[arg-type]
    assert _mode(tmp_path / "a.txt") == _mode(tmp_path / "b.bin") == 0o640
    reference = tmp_path / "plain.txt"
    reference.write_text("z")  # what open() gives
    assert _mode(reference) == 0o640


def test_atomic_open_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("exists", [False, True])
def test_folder_files_are_published_together(tmp_path: Path, umask_027: None, exists) -> None:
    out = tmp_path / "deep" / "out"
    if exists:
        out.mkdir(parents=True)
        (out / "keep.txt").write_text("mine")
    with atomic_folder(out) as stage:
        (stage / "a.json").write_text("{}")
        (stage / "b.html").write_text("<p>")
        assert not (out / "a.json").exists()  # nothing is visible before the block ends
    expected = {"a.json": b"{}", "b.html": b"<p>"} | ({"keep.txt": b"mine"} if exists else {})
    assert _tree(out) == expected
    assert _mode(out / "a.json") == 0o640
    assert _mode(out) == 0o750 and _mode(out.parent) == 0o750


def test_failed_block_leaves_nothing_and_removes_new_parents(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError), atomic_folder(out) as stage:
        (stage / "a.json").write_text("{}")
        raise RuntimeError("a later step failed")
    assert list(tmp_path.iterdir()) == []


def test_failed_block_keeps_an_existing_folder_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text("old")
    before = _tree(out)
    with pytest.raises(KeyboardInterrupt), atomic_folder(out) as stage:
        (stage / "a.json").write_text("new")
        raise KeyboardInterrupt
    assert _tree(out) == before


def test_a_failed_move_puts_the_replaced_files_back(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text("old a")
    (out / "b.html").write_text("old b")
    before = _tree(out)
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == out / "b.html":
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"), atomic_folder(out) as stage:
        (stage / "a.json").write_text("new a")
        (stage / "b.html").write_text("new b")
        (stage / "c.txt").write_text("new c")
    assert _tree(out) == before  # a.json restored, c.txt never moved in


def test_a_folder_in_the_way_is_refused_before_anything_moves(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "b.html").mkdir(parents=True)
    (out / "a.json").write_text("old")
    with (
        pytest.raises(IsADirectoryError, match=r"b\.html there is a folder"),
        atomic_folder(out) as stage,
    ):
        (stage / "a.json").write_text("new")
        (stage / "b.html").write_text("new")
    assert (out / "a.json").read_text() == "old"
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.html"]


def test_a_file_for_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError), atomic_folder(tmp_path / "f"):
        pass
