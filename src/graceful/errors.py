"""Exceptions and warnings raised by graceful, and the one rule they follow.

Every error caused by what a user passed in (an argument, a file, a column, a missing
optional part) is an :class:`InputError`, a :class:`ValueError` whose message is one line
naming the argument, file or column and what was wrong with it; nothing else is raised
for bad input. The command line catches :class:`InputError` alone and turns it into that
line on stderr and exit status 2; any other exception is a bug in graceful.
"""

from __future__ import annotations

__all__ = ["InputError", "MissingExtraError", "TrainingDivergedError", "UndefinedMetricWarning"]


class InputError(ValueError):
    """Bad user input: the message is one line naming the argument, file or column.

    Example:
        >>> raise InputError("Expected argument `top_k` to be a positive int, but got 0")
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `top_k` to be a positive int, but got 0
    """


class MissingExtraError(InputError, ImportError):
    """An optional part of graceful was used without the extra that installs it.

    It is an :class:`InputError` (one line, exit 2 on the command line) and an
    :class:`ImportError` (what importing the optional module raises).

    Example:
        >>> err = MissingExtraError("graceful.gallery needs faiss: pip install 'graceful[gallery]'")
        >>> isinstance(err, ImportError), isinstance(err, InputError)
        (True, True)
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
