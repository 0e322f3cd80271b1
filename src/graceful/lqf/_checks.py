"""Argument checks shared by the LQF modules (one-line errors naming the argument)."""

from __future__ import annotations

from graceful.errors import InputError

CURVATURE_LOSSES = ("squared", "cross_entropy")


def check_positive(name: str, value: object) -> None:
    """Raise unless ``value`` is a real number > 0 (``bool`` is not a number here).

    Example:
        >>> check_positive("lr", 0)
        Traceback (most recent call last):
        ...
        graceful.errors.InputError: Expected argument `lr` to be a number > 0, but got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"Expected argument `{name}` to be a number > 0, but got {value!r}")


def check_curvature_loss(loss: object) -> None:
    """Raise unless ``loss`` is ``"squared"`` or ``"cross_entropy"``.

    Example:
        >>> check_curvature_loss("squared")
    """
    if loss not in CURVATURE_LOSSES:
        raise InputError(
            f"Expected argument `loss` to be 'squared' or 'cross_entropy', but got {loss!r}"
        )
