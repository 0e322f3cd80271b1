"""Read Inspect (inspect-ai) evaluation logs: ``.eval`` (a zip) and ``.json``.

Private part of :mod:`graceful.io.eval_logs`. The schema is inspect-ai's ``EvalLog``:

* ``.json``: one object ``{"version", "status", "eval": EvalSpec, "plan", "results",
  "stats", "samples": [EvalSample, ...], ...}``;
* ``.eval``: a zip holding ``header.json`` (the log without its samples; ``_journal/
  start.json`` while a run is in progress), one ``samples/<id>_epoch_<n>.json`` per sample
  (an ``EvalSample``), and ``summaries.json``, ``reductions.json``. Recent releases compress
  the members with Zstandard (zip method 93), which Python reads natively from 3.14 on and
  through the ``zstandard`` package before (``pip install 'graceful[inspect]'``).

A sample carries ``id``, ``epoch``, ``input``, ``target``, ``output`` (``completion``),
``scores`` (scorer name -> ``{"value", "answer", "explanation", ...}``) and ``error`` when
it failed. An item is keyed by the task (``eval.task``) and ``<id>#<epoch>``. A score value
is read as inspect's ``value_to_float`` reads it: ``"C"`` 1, ``"P"`` 0.5, ``"I"`` and
``"N"`` 0, booleans and numbers as numbers, ``"yes"``/``"true"`` 1, ``"no"``/``"false"`` 0,
numeric strings as numbers; a dict value gives one metric per key, ``<scorer>/<key>``.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

from graceful._extras import require
from graceful.errors import InputError

from ._eval_run import EvalRun, RunBuilder, as_text

__all__ = ["detect", "read", "score_value"]

#: Zip compression method number of Zstandard.
_ZSTD = 93

#: The opening of an Inspect ``.json`` log (pydantic writes ``version`` and ``status`` first).
_JSON_HEAD = re.compile(rb'^\s*\{\s*"version"\s*:\s*\d+\s*,\s*"status"\s*:')

_SAMPLE_MEMBER = re.compile(r"^samples/.+\.json$")


def score_value(value: object) -> float | None:
    """An Inspect score value as a float, as inspect's ``value_to_float()`` reads it.

    Returns ``None`` for a value inspect cannot read either (a list, a word, NaN).

    Example:
        >>> [score_value(v) for v in ("C", "P", "I", "N", True, 0.25, "yes", "2.5", "x")]
        [1.0, 0.5, 0.0, 0.0, 1.0, 0.25, 1.0, 2.5, None]
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str):
        return None
    fixed = {"C": 1.0, "P": 0.5, "I": 0.0, "N": 0.0}.get(value)
    if fixed is not None:
        return fixed
    word = value.lower()
    if word in ("yes", "true"):
        return 1.0
    if word in ("no", "false"):
        return 0.0
    try:
        number = float(word)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _is_json_log(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return False
    return bool(_JSON_HEAD.match(head))


def _is_log_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".eval":
        return True
    return suffix == ".json" and _is_json_log(path)


def _logs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_log_file(p))


def detect(path: Path) -> bool:
    """Whether ``path`` is an Inspect log, or a folder holding Inspect logs."""
    if path.is_dir():
        return bool(_logs_in(path))
    return path.is_file() and _is_log_file(path)


# -- reading the members of a .eval zip --------------------------------------------------------


def _zstd_decompress(data: bytes, where: str) -> bytes:
    try:  # Python >= 3.14
        from compression import zstd  # type: ignore[import-not-found]

        return bytes(zstd.decompress(data))
    except ImportError:
        pass
    (zstandard,) = require("inspect", f"{where}: reading a Zstandard-compressed Inspect log", None)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    return bytes(reader.read())


def _member_bytes(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    where = f"{path}: {info.filename}"
    if info.compress_type != _ZSTD or getattr(zipfile, "ZIP_ZSTANDARD", None) == _ZSTD:
        return archive.read(info)
    # zipfile cannot decompress method 93 here: read the member's raw bytes and decompress.
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise InputError(f"{where}: bad zip local header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        raw = handle.read(info.compress_size)
    data = _zstd_decompress(raw, where)
    if len(data) != info.file_size:
        raise InputError(f"{where}: decompressed {len(data)} bytes, expected {info.file_size}")
    return data


def _member_json(path: Path, archive: zipfile.ZipFile, name: str) -> Any:
    try:
        data = _member_bytes(path, archive, archive.getinfo(name))
        return json.loads(data)
    except InputError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {name}: not valid JSON ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: {name}: cannot read the zip member ({exc})") from None


# -- samples -----------------------------------------------------------------------------------


def _content_text(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(part.get("text"))
            for part in content
            if isinstance(part, dict) and part.get("text") is not None
        ]
        return "\n".join(parts) if parts else as_text(content)
    return as_text(content)


def _prompt(value: object) -> str | None:
    if isinstance(value, list):
        texts = [
            _content_text(message.get("content")) if isinstance(message, dict) else as_text(message)
            for message in value
        ]
        return "\n\n".join(t for t in texts if t)
    return as_text(value)


def _target(value: object) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " | ".join(value)
    return as_text(value)


def _response(output: object) -> str | None:
    if not isinstance(output, dict):
        return None
    completion = output.get("completion")
    if isinstance(completion, str) and completion:
        return completion
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return _content_text(message.get("content"))
    return completion if isinstance(completion, str) else None


def _values(scores: object) -> dict[str, float]:
    values: dict[str, float] = {}
    if not isinstance(scores, dict):
        return values
    for scorer, score in scores.items():
        value = score.get("value") if isinstance(score, dict) else None
        if isinstance(value, dict):
            for key, part in value.items():
                number = score_value(part)
                if number is not None:
                    values[f"{scorer}/{key}"] = number
        else:
            number = score_value(value)
            if number is not None:
                values[str(scorer)] = number
    return values


def _add_sample(builder: RunBuilder, task: str, sample: object, record: str) -> None:
    if not isinstance(sample, dict) or "id" not in sample:
        raise InputError(f"{record}: not an Inspect sample (no 'id')")
    epoch = sample.get("epoch", 1)
    builder.add(
        task=task,
        key=f"{sample['id']}#{epoch}",
        record=record,
        values=_values(sample.get("scores")),
        prompt=_prompt(sample.get("input")),
        target=_target(sample.get("target")),
        response=_response(sample.get("output")),
        errored=sample.get("error") is not None,
    )


def _task(path: Path, header: object) -> tuple[str, str, str]:
    """``(task, created, status)`` of a log's header (or start record)."""
    spec = header.get("eval") if isinstance(header, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("task"), str):
        raise InputError(f"{path}: not an Inspect log (no eval spec naming the task)")
    status = header.get("status", "started") if isinstance(header, dict) else "started"
    return spec["task"], str(spec.get("created", "")), str(status)


def _status_note(path: Path, status: str, n: int, notes: list[str]) -> None:
    if status != "success":
        notes.append(f"{path}: the log's status is {status!r}; read the {n} samples it holds")


def _read_eval(path: Path, builder: RunBuilder) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not an Inspect .eval log (not a zip file)") from None
    with archive:
        names = set(archive.namelist())
        if "header.json" in names:
            header = _member_json(path, archive, "header.json")
        elif "_journal/start.json" in names:  # a run still in progress, or one that crashed
            header = {"status": "started", **_member_json(path, archive, "_journal/start.json")}
        else:
            raise InputError(
                f"{path}: a zip, but not an Inspect log (no header.json or _journal/start.json)"
            )
        task, _, status = _task(path, header)
        members = [n for n in archive.namelist() if _SAMPLE_MEMBER.match(n)]
        if not members:
            raise InputError(f"{path}: the log holds no samples (written with log_samples off?)")
        for name in members:
            sample = _member_json(path, archive, name)
            _add_sample(builder, task, sample, f"{path}: {name}")
    _status_note(path, status, len(members), builder.notes)


def _read_json(path: Path, builder: RunBuilder) -> None:
    try:
        log = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); is the file truncated?"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    task, _, status = _task(path, log)
    samples = log.get("samples")
    if not isinstance(samples, list) or not samples:
        raise InputError(f"{path}: the log holds no samples (written with log_samples off?)")
    for index, sample in enumerate(samples):
        _add_sample(builder, task, sample, f"{path}: samples[{index}]")
    _status_note(path, status, len(samples), builder.notes)


def _header_of(path: Path) -> tuple[str, str, str]:
    """``(task, created, status)`` of one log file, without reading its samples."""
    if path.suffix.lower() == ".eval":
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                member = "header.json" if "header.json" in names else "_journal/start.json"
                if member not in names:
                    raise InputError(f"{path}: a zip, but not an Inspect log (no header.json)")
                return _task(path, _member_json(path, archive, member))
        except zipfile.BadZipFile:
            raise InputError(f"{path}: not an Inspect .eval log (not a zip file)") from None
    try:
        log = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); is the file truncated?") from None
    return _task(path, log)


def _read_file(path: Path, builder: RunBuilder) -> None:
    if path.suffix.lower() == ".eval":
        _read_eval(path, builder)
    elif path.suffix.lower() == ".json":
        _read_json(path, builder)
    else:
        raise InputError(f"{path}: not an Inspect log (expected a .eval or .json file)")


def read(path: Path) -> EvalRun:
    """Read one Inspect log, or the newest log of every task in a folder of logs."""
    builder = RunBuilder(str(path), "inspect")
    try:
        if path.is_dir():
            logs = _logs_in(path)
            if not logs:
                raise InputError(f"{path}: no Inspect logs (.eval or .json) found")
            by_task: dict[str, list[tuple[str, Path]]] = {}
            for log in logs:
                task, created, _ = _header_of(log)
                by_task.setdefault(task, []).append((created, log))
            for task, dated in by_task.items():
                dated.sort()
                if len(dated) > 1:
                    builder.notes.append(
                        f"{path}: task {task!r} has {len(dated)} logs; read the newest, "
                        f"{dated[-1][1].name}"
                    )
                _read_file(dated[-1][1], builder)
        else:
            _read_file(path, builder)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return builder.build()
