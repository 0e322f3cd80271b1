"""The demo on scikit-learn's digits: ``graceful demo`` end to end, and prediction files.

:func:`run_demo` is what ``graceful demo`` runs; :func:`make_digits_predictions` writes the
two prediction files that ``graceful compare`` examples use.

Example:
    >>> from graceful.demo import DemoConfig
    >>> DemoConfig().epochs
    20

Needs the ``demo`` extra (scikit-learn, and the gallery, report and cli extras).
"""

from graceful._extras import require

require("demo", "graceful.demo")

from .predictions import make_digits_predictions
from .story import DemoConfig, GracefulUpdateLoss, run_demo

__all__ = ["DemoConfig", "GracefulUpdateLoss", "make_digits_predictions", "run_demo"]
