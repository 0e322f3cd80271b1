"""The one validation layer: argument checks with one-line messages naming the argument.

Every check returns the value in its plain Python form (``int``, ``float``, ``bool``,
``str``) or raises :class:`~graceful.errors.InputError` with the message shape of
torchmetrics: ``Expected argument `top_k` to be a positive int, but got 0``. A dotted
name is a field (``TrainConfig.epochs``) and is written without "argument". NumPy scalars
count as numbers; ``bool`` never does. The checks look at Python values only, never at
tensor contents, so they cost no device-to-host synchronisation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import torch

from graceful.errors import InputError

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_instance",
    "check_int",
    "check_real",
    "describe",
    "fail",
]


def _subject(name: str) -> str:
    return f"`{name}`" if "." in name else f"argument `{name}`"


def describe(value: object, limit: int = 80) -> str:
    """A short, one-line description of ``value`` for an error message.

    Example:
        >>> describe(torch.zeros(2, 3)), describe([1, 2]), describe("x" * 100)[-5:]
        ('a torch.float32 tensor of shape (2, 3)', '[1, 2]', 'xx...')
    """
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"a {value.dtype} array of shape {tuple(shape)}"
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(name: str, expected: str, value: object) -> InputError:
    """The error ``Expected argument `name` to be <expected>, but got <value>``, to raise.

    Example:
        >>> raise fail("k", "a positive int", 0)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `k` to be a positive int, but got 0
    """
    return InputError(f"Expected {_subject(name)} to be {expected}, but got {describe(value)}")


def _bound(
    kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        if kind == "an int" and low == 1:
            return "a positive int"
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return kind


@overload
def check_int(
    name: str,
    value: object,
    *,
    low: int | None = ...,
    high: int | None = ...,
    optional: Literal[False] = ...,
) -> int: ...
@overload
def check_int(
    name: str, value: object, *, low: int | None = ..., high: int | None = ..., optional: bool
) -> int | None: ...
def check_int(
    name: str,
    value: object,
    *,
    low: int | None = None,
    high: int | None = None,
    optional: bool = False,
) -> int | None:
    """``value`` as an ``int`` within ``[low, high]`` (``None`` passes when ``optional``).

    Example:
        >>> check_int("epochs", 3, low=1), check_int("seed", None, optional=True)
        (3, None)
        >>> check_int("epochs", 0, low=1)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `epochs` to be a positive int, but got 0
    """
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    number = int(value) if ok else 0  # type: ignore[call-overload]
    if ok and (low is None or number >= low) and (high is None or number <= high):
        return number
    expected = _bound("an int", low, high, False, False) + (" or None" if optional else "")
    raise fail(name, expected, value)


@overload
def check_real(
    name: str,
    value: object,
    *,
    low: float | None = ...,
    high: float | None = ...,
    low_open: bool = ...,
    high_open: bool = ...,
    optional: Literal[False] = ...,
) -> float: ...
@overload
def check_real(
    name: str,
    value: object,
    *,
    low: float | None = ...,
    high: float | None = ...,
    low_open: bool = ...,
    high_open: bool = ...,
    optional: bool,
) -> float | None: ...
def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> float | None:
    """``value`` as a finite ``float`` within the bounds (open or closed at each end).

    Example:
        >>> check_real("lr", 1)
        1.0
        >>> check_real("lr", 0.0, low=0.0, low_open=True)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `lr` to be a finite number > 0, but got 0.0
    """
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    if math.isfinite(number):
        above = low is None or (number > low if low_open else number >= low)
        below = high is None or (number < high if high_open else number <= high)
        if above and below:
            return number
    expected = _bound("a finite number", low, high, low_open, high_open)
    raise fail(name, expected + (" or None" if optional else ""), value)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool``.

    Example:
        >>> check_bool("normalize", 1)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `normalize` to be a bool, but got 1
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise fail(name, "a bool", value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``.

    Example:
        >>> check_choice("reduction", "sum", ("mean", "sum", "none"))
        'sum'
    """
    if isinstance(value, str) and value in choices:
        return value
    raise fail(name, "one of " + ", ".join(repr(c) for c in choices), value)


def check_instance(
    name: str, value: object, kind: type[Any] | tuple[type[Any], ...], what: str | None = None
) -> Any:
    """``value`` if it is an instance of ``kind`` (``what`` names it in the message).

    Example:
        >>> check_instance("model", [], torch.nn.Module, "a torch.nn.Module")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `model` to be a torch.nn.Module, but got list
    """
    if isinstance(value, kind):
        return value
    expected = what or f"a {getattr(kind, '__name__', kind)}"
    raise InputError(f"Expected {_subject(name)} to be {expected}, but got {type(value).__name__}")


def check_callable(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` if it is callable (or ``None`` when ``optional``).

    Example:
        >>> check_callable("loss", print) is print
        True
    """
    if (value is None and optional) or callable(value):
        return value
    raise InputError(
        f"Expected {_subject(name)} to be callable{' or None' if optional else ''},"
        f" but got {type(value).__name__}"
    )
