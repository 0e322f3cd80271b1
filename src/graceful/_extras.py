"""The optional parts of graceful and the extras that install them.

The core install (``pip install graceful``) is what the metrics, losses and training
need. Each optional subpackage calls :func:`require` before it imports anything optional,
so that using it without its extra is one :class:`~graceful.errors.MissingExtraError`
naming the extra to install, never a bare ``ModuleNotFoundError`` from deep inside.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from graceful.errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "io": ("pyarrow",),
    "gallery": ("faiss", "pyarrow"),
    "postgres": ("psycopg",),
    "ray": ("ray",),
    "report": ("jinja2", "matplotlib"),
    "cli": ("typer", "pyarrow", "jinja2", "matplotlib"),
    "mlflow": ("mlflow",),
    "inspect": ("zstandard",),
    "transformers": ("transformers", "accelerate"),
    "lightning": ("lightning",),
    "sentence-transformers": ("sentence_transformers", "transformers", "accelerate", "datasets"),
    "demo": ("sklearn", "faiss", "pyarrow", "jinja2", "matplotlib"),
}
"""Extra -> the importable modules it provides (``pip install 'graceful[<extra>]'``)."""

_DISTRIBUTIONS = {
    "faiss": "faiss-cpu",
    "sklearn": "scikit-learn",
    "mlflow": "mlflow-skinny",
    "sentence_transformers": "sentence-transformers",
}


def require(extra: str, feature: str, modules: tuple[str, ...] | None = None) -> list[ModuleType]:
    """Import the modules of ``extra`` (or just ``modules``), or say which extra to install.

    Args:
        extra: a key of :data:`EXTRAS`.
        feature: what needs them, for the message (``"graceful.gallery"``).
        modules: the modules to import; default: all of the extra's.

    Returns:
        The imported modules, in order.

    Raises:
        MissingExtraError: naming the first missing module and the extra.

    Example:
        >>> [m.__name__ for m in require("io", "reading files")]
        ['pyarrow']
        >>> require("io", "reading files", ("no_such_module_here",))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graceful.errors.MissingExtraError: reading files needs no_such_module_here, ...
    """
    loaded = []
    for name in modules if modules is not None else EXTRAS[extra]:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            dist = _DISTRIBUTIONS.get(name, name)
            if exc.name is not None and not name.startswith(exc.name):
                # installed, but something it imports is missing or broken
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise MissingExtraError(
                    f"{dist} is installed but fails to import: {reason}"
                ) from None
            raise MissingExtraError(
                f"{feature} needs {dist}, which is not installed: pip install 'graceful[{extra}]'"
            ) from None
    return loaded
