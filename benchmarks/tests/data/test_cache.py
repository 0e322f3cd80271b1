import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.data import CacheWarning
from benchmarks.data._cache import array_sha256, cache_root, cached_arrays


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "y": np.array([1, 2])}


def test_computes_once_then_reads(tmp_path: Path) -> None:
    compute = Counter()
    first = cached_arrays(tmp_path, "toy", {"v": 1}, compute)
    second = cached_arrays(tmp_path, "toy", {"v": 1}, compute)
    assert compute.calls == 1
    assert np.array_equal(first["x"], second["x"]) and second["y"].tolist() == [1, 2]
    sidecar = json.loads((tmp_path / "toy.json").read_text())
    assert sidecar["meta"] == {"v": 1}
    assert sidecar["arrays"]["x"]["sha256"] == array_sha256(first["x"])
    assert sidecar["arrays"]["x"]["shape"] == [2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.json", "toy.x.npy", "toy.y.npy"]


def test_tampered_array_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    compute = Counter()
    cached_arrays(tmp_path, "toy", {"v": 1}, compute)
    np.save(tmp_path / "toy.x.npy", np.zeros((2, 3), dtype=np.float32))
    with pytest.warns(CacheWarning, match="sha256"):
        again = cached_arrays(tmp_path, "toy", {"v": 1}, compute)
    assert compute.calls == 2
    assert again["x"][1, 2] == 5.0
    assert np.load(tmp_path / "toy.x.npy")[1, 2] == 5.0  # repaired on disk


def test_truncated_file_and_broken_sidecar_are_recomputed(tmp_path: Path) -> None:
    compute = Counter()
    cached_arrays(tmp_path, "toy", {"v": 1}, compute)
    (tmp_path / "toy.y.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(CacheWarning, match="unreadable"):
        cached_arrays(tmp_path, "toy", {"v": 1}, compute)
    (tmp_path / "toy.json").write_text("{not json")
    with pytest.warns(CacheWarning, match="unreadable"):
        cached_arrays(tmp_path, "toy", {"v": 1}, compute)
    assert compute.calls == 3


def test_other_meta_is_recomputed_silently(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    compute = Counter()
    cached_arrays(tmp_path, "toy", {"v": 1, "t": (1, 2)}, compute)
    cached_arrays(tmp_path, "toy", {"v": 1, "t": (1, 2)}, compute)  # tuples compare as lists
    cached_arrays(tmp_path, "toy", {"v": 2, "t": (1, 2)}, compute)
    assert compute.calls == 2
    assert not [w for w in recwarn if issubclass(w.category, CacheWarning)]


def test_array_sha256_sees_dtype_shape_and_values() -> None:
    a = np.arange(6, dtype=np.int64)
    assert array_sha256(a) == array_sha256(a.copy())
    assert array_sha256(a) != array_sha256(a.reshape(2, 3))
    assert array_sha256(a) != array_sha256(a.astype(np.int32))
    assert array_sha256(a[::2]) == array_sha256(np.array([0, 2, 4]))
    assert array_sha256(np.empty((0, 3))) != array_sha256(np.empty((0, 4)))


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRACEFUL_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("GRACEFUL_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "graceful"
