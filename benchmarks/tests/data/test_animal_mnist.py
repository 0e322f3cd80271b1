import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

import benchmarks.data.animal_mnist as animal_module
from benchmarks.data import load_animal_mnist
from benchmarks.data.animal_mnist import read_animal_mnist
from graceful.errors import InputError


def _dump(path: Path, obj: object) -> Path:
    with gzip.open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


def _fake(folder: Path, per_class: int = 20) -> tuple[Path, Path]:
    """Two gzipped pickles like animal-mnist's: uint8 (N, 28, 28) images, int64 labels by class."""
    rng = np.random.default_rng(0)
    n = 10 * per_class
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.int64), per_class)
    return _dump(folder / "data.gz", images), _dump(folder / "label.gz", labels)


def test_read(tmp_path: Path) -> None:
    images, labels = _fake(tmp_path)
    x, y = read_animal_mnist(images, labels)
    assert x.shape == (200, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y).tolist() == [20] * 10


def test_load_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _fake(tmp_path)
    monkeypatch.setattr(animal_module, "animal_mnist_files", lambda: files)
    s = load_animal_mnist(seed=0, cache_dir=tmp_path / "cache", val_size=20, test_size=40)
    assert (len(s.train), len(s.val), len(s.test)) == (140, 20, 40)
    assert np.bincount(s.test.y).tolist() == [4] * 10
    assert np.bincount(s.val.y).tolist() == [2] * 10
    assert s.classes[0] == "bear" and len(s.classes) == 10
    other = load_animal_mnist(seed=0, cache_dir=tmp_path / "cache", val_size=0, test_size=40)
    assert np.array_equal(other.test.ids, s.test.ids)
    assert (tmp_path / "cache" / "animal_mnist" / "animal_mnist.json").is_file()


def test_bad_files(tmp_path: Path) -> None:
    images, labels = _fake(tmp_path)
    wrong = _dump(tmp_path / "wrong.gz", np.zeros((200, 28, 28), np.float32))
    with pytest.raises(InputError, match=r"wrong\.gz holds a float32 array"):
        read_animal_mnist(wrong, labels)
    short = _dump(tmp_path / "short.gz", np.zeros(3, np.int64))
    with pytest.raises(InputError, match=r"short\.gz"):
        read_animal_mnist(images, short)
    listed = _dump(tmp_path / "list.gz", [1, 2])
    with pytest.raises(InputError, match=r"list\.gz holds a list"):
        read_animal_mnist(images, listed)
