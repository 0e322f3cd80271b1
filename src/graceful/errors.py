"""Exceptions and warnings raised by graceful, and the one rule they follow.

Every error caused by what a user passed in (an argument, a file, a column, a missing
optional part) is an :class:`InputError`, a :class:`ValueError` whose message is one line
naming the argument, file or column and what was wrong with it; nothing else is raised
for bad input. The command line catches :class:`InputError` alone and turns it into that
line on stderr and exit status 2; any other exception is a bug in graceful.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "MissingExtraError",
    "TrainingCollapseWarning",
    "TrainingCollapsedError",
    "TrainingDivergedError",
    "UndefinedMetricWarning",
]


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
    """Training went off the rails; the message says in which epoch.

    Raised for a non-finite loss (NaN or inf); its subclass
    :class:`TrainingCollapsedError` for a run that collapsed with a finite loss.

    Example:
        >>> issubclass(TrainingDivergedError, RuntimeError)
        True
    """


class TrainingCollapsedError(TrainingDivergedError):
    """Training collapsed: the validation error or predictions say so, the loss is finite.

    Raised by :meth:`graceful.training.Trainer.fit` with ``TrainConfig.on_collapse="raise"``;
    the message is the one line of :class:`TrainingCollapseWarning` (the epoch and the
    figures). The rule is in :mod:`graceful.training.collapse`.

    Example:
        >>> issubclass(TrainingCollapsedError, TrainingDivergedError)
        True
    """


class TrainingCollapseWarning(UserWarning):
    """Training collapsed (see :class:`TrainingCollapsedError`): warned, not raised.

    Warned by :meth:`graceful.training.Trainer.fit` with ``TrainConfig.on_collapse`` set to
    ``"warn"`` (the default) or ``"stop"``.

    Example:
        >>> issubclass(TrainingCollapseWarning, UserWarning)
        True
    """
