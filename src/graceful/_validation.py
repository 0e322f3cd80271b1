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
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from graceful.errors import InputError

_T = TypeVar("_T")

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_fields",
    "check_instance",
    "check_int",
    "check_name",
    "check_optional",
    "check_real",
    "check_seed",
    "check_str",
    "check_vectors",
    "describe",
    "fail",
    "subject",
]


def subject(name: str) -> str:
    """How a message names an input: a field (dotted) as itself, else as an argument.

    Example:
        >>> subject("x"), subject("config.lr")
        ('argument `x`', '`config.lr`')
    """
    return f"`{name}`" if "." in name else f"argument `{name}`"


def describe(value: object, limit: int = 80) -> str:
    """A short, one-line description of ``value`` for an error message.

    Example:
        >>> import torch
        >>> describe(torch.zeros(2, 3)), describe([1, 2]), describe("x" * 100)[-5:]
        ('a torch.float32 tensor of shape (2, 3)', '[1, 2]', 'xx...')
    """
    # torch is never imported here (the command line runs without it): a tensor exists
    # only once its caller has imported torch.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
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
    return InputError(f"Expected {subject(name)} to be {expected}, but got {describe(value)}")


def _bound(
    kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    def num(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"  # ints exact, never 4.29497e+09

    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"{kind} in {left}{num(low)}, {num(high)}{right}"
    if low is not None:
        if kind == "an int" and low == 1:
            return "a positive int"
        return f"{kind} {'>' if low_open else '>='} {num(low)}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {num(high)}"
    return kind


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` within ``[low, high]``.

    Example:
        >>> check_int("epochs", 3, low=1)
        3
        >>> check_int("epochs", 0, low=1)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `epochs` to be a positive int, but got 0
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    number = int(value) if ok else 0  # type: ignore[call-overload]
    if ok and (low is None or number >= low) and (high is None or number <= high):
        return number
    raise fail(name, _bound("an int", low, high, False, False), value)


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` within the bounds (open or closed at each end).

    Example:
        >>> check_real("lr", 1)
        1.0
        >>> check_real("lr", 0.0, low=0.0, low_open=True)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `lr` to be a finite number > 0, but got 0.0
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    number = float(value) if ok else math.nan  # type: ignore[arg-type]
    if math.isfinite(number):
        above = low is None or (number > low if low_open else number >= low)
        below = high is None or (number < high if high_open else number <= high)
        if above and below:
            return number
    raise fail(name, _bound("a finite number", low, high, low_open, high_open), value)


def check_optional(check: Callable[..., _T], name: str, value: object, **bounds: Any) -> _T | None:
    """``None`` when ``value`` is ``None``, else ``check(name, value, **bounds)``.

    Example:
        >>> check_optional(check_int, "refresh", None, low=1) is None
        True
        >>> check_optional(check_int, "refresh", 5, low=1)
        5
    """
    return None if value is None else check(name, value, **bounds)


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
        >>> import torch
        >>> check_instance("model", [], torch.nn.Module, "a torch.nn.Module")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `model` to be a torch.nn.Module, but got list
    """
    if isinstance(value, kind):
        return value
    expected = what or f"a {getattr(kind, '__name__', kind)}"
    raise InputError(f"Expected {subject(name)} to be {expected}, but got {type(value).__name__}")


def check_callable(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` if it is callable (or ``None`` when ``optional``).

    Example:
        >>> check_callable("loss", print) is print
        True
    """
    if (value is None and optional) or callable(value):
        return value
    raise InputError(
        f"Expected {subject(name)} to be callable{' or None' if optional else ''},"
        f" but got {type(value).__name__}"
    )


def check_str(name: str, value: object) -> str:
    """``value`` if it is a non-empty ``str``.

    Example:
        >>> check_str("job", "default")
        'default'
        >>> check_str("job", "")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `job` to be a non-empty str, but got ''
    """
    if isinstance(value, str) and value:
        return value
    raise fail(name, "a non-empty str", value)


def check_names(name: str, values: Sequence[str]) -> None:
    r"""Refuse an empty string or one with control characters among ``values`` (all ``str``).

    :func:`check_name` for many at once (one pass over their concatenation); the message
    names the first bad one.

    Example:
        >>> check_names("ids", ["a", "b"])
        >>> check_names("ids", ["a", "b\tc"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `ids` to hold no control ..., but got 'b\tc'
    """
    if not all(values) or _CONTROL.search("".join(values)):
        for value in values:
            check_name(name, value)


def check_vectors(
    name: str,
    value: object,
    *,
    rows: int | None = None,
    dim: int | None = None,
    nonzero: bool = False,
    where: str = "",
) -> npt.NDArray[np.float32]:
    """``value`` as a C-contiguous float32 ``(rows, dim)`` array of finite numbers.

    ``rows`` or ``dim`` ``None`` accepts any size; ``nonzero`` also refuses an all-zero
    row (a vector that cannot be normalised); ``where`` ends the expectation in the
    message (``" for version 'v1'"``).

    Example:
        >>> check_vectors("x", [[1, 2]], dim=2).dtype
        dtype('float32')
        >>> check_vectors("x", [[1, 2]], rows=1, dim=3)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `x` to have shape (1, 3), but got shape (1, 2)
    """
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise fail(name, "a float array", value) from None
    if (
        arr.ndim != 2
        or (rows is not None and len(arr) != rows)
        or (dim not in (None, arr.shape[1]))
    ):
        want = f"({'n' if rows is None else rows}, {'d' if dim is None else dim})"
        raise InputError(
            f"Expected {subject(name)} to have shape {want}{where}, but got shape {arr.shape}"
        )
    # a row is finite iff its float64 sum is (no overflow there; NaN and inf carry over)
    with np.errstate(invalid="ignore"):  # inf - inf is the NaN that tells
        finite = np.isfinite(arr.sum(axis=1, dtype=np.float64))
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InputError(f"Expected {subject(name)} to be finite, but row {row} holds NaN or inf")
    if nonzero and len(arr):
        zero = ~arr.any(axis=1)
        if zero.any():
            row = int(np.flatnonzero(zero)[0])
            raise InputError(
                f"Expected {subject(name)} to have non-zero rows{where}, but row {row} is zero"
            )
    return np.ascontiguousarray(arr)


SEED_MAX = 2**32 - 1
"""The largest seed every generator accepts (NumPy's legacy seeding takes 32 bits)."""


def check_seed(name: str, value: object) -> int:
    """``value`` as an ``int`` seed in ``[0, 2**32 - 1]``, the range NumPy and torch share.

    Example:
        >>> check_seed("cfg.seed", -1)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected `cfg.seed` to be an int in [0, 4294967295], but got -1
    """
    return check_int(name, value, low=0, high=SEED_MAX)


def check_fields(instance: object, checks: Mapping[str, Callable[[str, Any], Any]]) -> None:
    """Check the named fields of a dataclass instance in order; store each checked value.

    ``checks`` maps a field to a check called as ``check("Class.field", value)`` (bind
    bounds with :func:`functools.partial`); the value it returns replaces the field's, so
    a frozen dataclass holds plain Python values. The first bad field raises.

    Example:
        >>> from dataclasses import dataclass
        >>> from functools import partial
        >>> @dataclass(frozen=True)
        ... class Recipe:
        ...     epochs: int
        ...     def __post_init__(self):
        ...         check_fields(self, {"epochs": partial(check_int, low=1)})
        >>> Recipe(np.int64(3)).epochs, type(Recipe(np.int64(3)).epochs)
        (3, <class 'int'>)
        >>> Recipe(0)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected `Recipe.epochs` to be a positive int, but got 0
    """
    kind = type(instance).__name__
    for name, check in checks.items():
        object.__setattr__(instance, name, check(f"{kind}.{name}", getattr(instance, name)))


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def check_name(name: str, value: object) -> str:
    r"""``value`` if it is a non-empty ``str`` without control characters.

    For names and ids that are shown in terminals and written to text files (item ids,
    version names): a newline, a NUL or a terminal escape sequence in one is a mistake or
    an attack, never part of the name.

    Example:
        >>> check_name("version", "v1")
        'v1'
        >>> check_name("id", "a\nb")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `id` to hold no control ..., but got 'a\nb'
    """
    text = check_str(name, value)
    if _CONTROL.search(text):
        raise InputError(
            f"Expected {subject(name)} to hold no control characters, but got {describe(text)}"
        )
    return text
