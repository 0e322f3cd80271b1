"""Saved faiss indexes: a gallery that reopens with ``faiss.read_index`` instead of a rebuild.

The store is the source of truth and the indexes are derived from it, so a saved index is
a cache tied to one state of one gallery. A *snapshot* in the index folder holds, at one
change sequence number ``seq``:

* ``manifest.json``: the format, the store's :meth:`~graceful.gallery.GalleryStore.identity`
  (a random id drawn when the gallery was created), ``seq``, each version's definition
  (name, dim, metric, index kind, options, registration seq) with its file's size and
  item count, and the snapshot's folder;
* in that folder, one ``faiss.write_index`` file per version and ``labels.arrow`` (Arrow
  IPC: each label's item id and version code).

Saving writes a new folder, fsyncs it, then replaces ``manifest.json`` atomically
(:func:`graceful.io.atomic.atomic_write_text`) and removes older folders, under a lock
file, so a crash or a concurrent save never leaves a half-written snapshot in use.

Opening a :class:`~graceful.gallery.Gallery` with ``index_dir`` reads the snapshot when
its identity and version definitions match the store and its ``seq`` is not ahead of the
store's, then applies the writes made after it (:meth:`~graceful.gallery.GalleryStore.
changes_since`): current means no work, behind means a catch-up. Anything else (no
snapshot, another gallery's, a version redefined, a file missing, truncated or not faiss's,
counts that disagree) rebuilds from the store, and :attr:`~graceful.gallery.Gallery.
index_source` says why. Bit flips inside the vectors of a file of the right size are not
detected (there is no checksum: reading one would cost as much as the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from graceful.errors import InputError
from graceful.io.atomic import atomic_write_text

from .index import VersionIndex
from .store import VersionInfo

__all__ = ["IndexSource", "Snapshot", "read_snapshot", "write_snapshot"]

FORMAT = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class IndexSource:
    """Where a :class:`~graceful.gallery.Gallery`'s indexes came from when it opened.

    Attributes:
        kind: ``"saved"`` (read from the index folder) or ``"rebuilt"`` (from the store).
        saved_seq: the ``seq`` of the snapshot read (0 when rebuilt).
        caught_up: writes applied on top of the snapshot (0: it was current).
        reason: why the saved indexes were not used (``None`` when they were, or when
            the gallery has no index folder).

    Example:
        >>> IndexSource("saved", 12, 0, None).kind
        'saved'
    """

    kind: str
    saved_seq: int = 0
    caught_up: int = 0
    reason: str | None = None


@dataclass
class Snapshot:
    """A snapshot read back: the indexes of the first ``len(versions)`` versions, at ``seq``.

    Attributes:
        seq: the store's ``seq`` the snapshot is at.
        versions: the versions it holds, in registration order.
        indexes: each version's index.
        id_of: label -> item id (null where no item is), as read: an Arrow string array,
            turned into Python strings only where they are needed (a million of them cost
            about as much as reading the index).
        code_of: label -> position of its version in ``versions`` (-1: none).
    """

    seq: int
    versions: list[VersionInfo]
    indexes: list[VersionIndex]
    id_of: pa.ChunkedArray
    code_of: npt.NDArray[np.int32]


class StaleSnapshotError(Exception):
    """The saved indexes cannot be used (the message says why); rebuild instead."""


def _definition(info: VersionInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "dim": info.dim,
        "metric": info.metric,
        "index": info.index,
        "options": dict(sorted(info.options.items())),
        "seq": info.seq,
    }


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively: one save at a time per folder (any process)."""
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_snapshot(
    folder: str | os.PathLike[str],
    *,
    identity: str,
    seq: int,
    versions: Sequence[VersionInfo],
    indexes: Sequence[VersionIndex],
    id_of: npt.NDArray[np.object_] | pa.ChunkedArray,
    code_of: npt.NDArray[np.int32],
) -> Path:
    """Save one snapshot into ``folder`` (created if missing); return its manifest's path.

    Raises:
        InputError: the folder cannot be created or written (one line naming it); the
            previous snapshot stays in use.

    Example:
        >>> import numpy as np, tempfile
        >>> idx = VersionIndex(2, "l2", "flat")
        >>> idx.add_with_ids(np.ones((1, 2), np.float32), np.array([1]))
        >>> folder = tempfile.mkdtemp()
        >>> path = write_snapshot(folder, identity="sqlite:7", seq=2,
        ...     versions=[VersionInfo("v0", 2, "l2", "flat", seq=1)], indexes=[idx],
        ...     id_of=np.array([None, "a"], object), code_of=np.array([-1, 0], np.int32))
        >>> read_snapshot(folder, identity="sqlite:7", last_seq=2,
        ...     versions=[VersionInfo("v0", 2, "l2", "flat", seq=1)]).indexes[0].ntotal
        1
    """
    root = Path(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _locked(root):
            snap = root / f"snap-{seq}-{secrets.token_hex(4)}"
            snap.mkdir()
            entries = []
            for number, (info, index) in enumerate(zip(versions, indexes, strict=True)):
                file = snap / f"version-{number}.faiss"
                index.write(file)
                _fsync(file)
                entries.append(
                    {
                        **_definition(info),
                        "file": file.name,
                        "bytes": file.stat().st_size,
                        "held": index.held,
                    }
                )
            table = pa.table(
                {
                    "id": id_of
                    if isinstance(id_of, pa.ChunkedArray)
                    else pa.array(id_of, type=pa.string()),
                    "code": pa.array(np.asarray(code_of, dtype=np.int32)),
                }
            )
            labels = snap / "labels.arrow"
            with pa.OSFile(str(labels), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
            _fsync(labels)
            _fsync(snap)
            manifest = {
                "format": FORMAT,
                "identity": identity,
                "seq": seq,
                "folder": snap.name,
                "versions": entries,
                "labels": {"file": labels.name, "rows": len(id_of)},
            }
            atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
            for old in root.glob("snap-*"):
                if old.name != snap.name:
                    shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise InputError(
            f"Index folder {str(root)!r} cannot be written: {exc.strerror or exc}"
        ) from None
    return root / MANIFEST


def read_snapshot(
    folder: str | os.PathLike[str],
    *,
    identity: str | None,
    last_seq: int,
    versions: Sequence[VersionInfo],
) -> Snapshot:
    """The snapshot in ``folder`` if it belongs to this state of this gallery.

    Args:
        folder: the index folder.
        identity: the store's identity.
        last_seq: the store's ``seq`` (a snapshot ahead of it is another history).
        versions: the store's versions, in registration order; the snapshot's must be
            the first of them, defined the same.

    Raises:
        StaleSnapshotError: with the reason the snapshot cannot be used.
    """
    root = Path(folder)
    manifest_path = root / MANIFEST
    if identity is None:
        raise StaleSnapshotError("the store has no gallery id (written by an older graceful)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StaleSnapshotError(f"no saved indexes in {str(root)!r}") from None
    except (OSError, ValueError) as exc:
        raise StaleSnapshotError(f"{str(manifest_path)!r} cannot be read: {exc}") from None
    try:
        return _read(root, manifest, identity, last_seq, versions)
    except StaleSnapshotError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise StaleSnapshotError(f"the saved indexes are damaged ({text})") from None


def _read(
    root: Path,
    manifest: dict[str, Any],
    identity: str,
    last_seq: int,
    versions: Sequence[VersionInfo],
) -> Snapshot:
    if manifest.get("format") != FORMAT:
        raise StaleSnapshotError(f"the saved indexes have format {manifest.get('format')!r}")
    if manifest["identity"] != identity:
        raise StaleSnapshotError("the saved indexes are another gallery's")
    seq = int(manifest["seq"])
    if seq > last_seq:
        raise StaleSnapshotError(
            f"the saved indexes are at seq {seq}, ahead of the store's {last_seq} "
            "(the store was restored or replaced)"
        )
    entries = manifest["versions"]
    if len(entries) > len(versions) or any(
        {k: e[k] for k in ("name", "dim", "metric", "index", "options", "seq")} != _definition(info)
        for e, info in zip(entries, versions, strict=False)
    ):
        raise StaleSnapshotError("the saved indexes were made for other version definitions")
    snap = root / manifest["folder"]
    table = pa.ipc.open_file(pa.memory_map(str(snap / manifest["labels"]["file"]))).read_all()
    if table.num_rows != int(manifest["labels"]["rows"]):
        raise StaleSnapshotError("the saved indexes are damaged (the label table is short)")
    id_of = table.column("id")
    if not pa.types.is_string(id_of.type):
        raise StaleSnapshotError("the saved indexes are damaged (the ids are not strings)")
    code_of = np.array(table.column("code").to_numpy(), dtype=np.int32)  # a writable copy
    held = np.bincount(code_of[code_of >= 0], minlength=len(entries))
    if len(held) > len(entries):
        raise StaleSnapshotError("the saved indexes are damaged (a label of an unknown version)")
    indexes = []
    for code, (entry, info) in enumerate(zip(entries, versions, strict=False)):
        file = snap / entry["file"]
        size = file.stat().st_size
        if size != int(entry["bytes"]):
            raise StaleSnapshotError(
                f"the saved index of {info.name!r} is damaged ({size} bytes, "
                f"{entry['bytes']} written)"
            )
        index = VersionIndex.read(file, info.dim, info.metric, info.index, info.options)
        index.bury_all_but(code_of, code)
        if index.held != int(entry["held"]) or index.ntotal != int(held[code]):
            raise StaleSnapshotError(
                f"the saved index of {info.name!r} is damaged (it holds {index.ntotal} "
                f"items, the label table {int(held[code])})"
            )
        indexes.append(index)
    return Snapshot(seq, list(versions[: len(entries)]), indexes, id_of, code_of)
