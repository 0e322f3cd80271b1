"""Exceptions and warnings raised by graceful.

Every error caused by what a user passed in (an argument, a file, a column) is an
:class:`InputError`, a :class:`ValueError` whose message is one line naming the argument,
file or column and what was wrong with it. The command line turns it into that line on
stderr and exit status 2.
"""

from __future__ import annotations

__all__ = ["InputError", "TrainingDivergedError", "UndefinedMetricWarning"]


class InputError(ValueError):
    """Bad user input: the message is one line naming the argument, file or column.

    Example:
        >>> raise InputError("Expected argument `top_k` to be a positive int, but got 0")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `top_k` to be a positive int, but got 0
    """


class UndefinedMetricWarning(UserWarning):
    """A metric's denominator is zero, so its value is NaN (never silently 0).

    Example:
        >>> import warnings
        >>> issubclass(UndefinedMetricWarning, UserWarning)
        True
    """


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss (NaN or inf); the message says which epoch.

    Example:
        >>> issubclass(TrainingDivergedError, RuntimeError)
        True
    """
