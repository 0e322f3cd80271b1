"""graceful: replace a deployed model without new errors and without re-processing.

The first layer is :mod:`graceful.metrics`: how much an update regresses (negative flips),
with intervals, significance and per-group breakdowns. ``graceful compare`` on the command
line reports it and can gate a release.

Example:
    >>> import graceful
    >>> graceful.__version__
    '0.1.0'
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
