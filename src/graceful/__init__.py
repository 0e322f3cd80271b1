"""graceful: replace a deployed model without new errors and without re-processing.

The core (``pip install graceful``) needs only torch, torchmetrics, numpy, pandas, scipy
and rich:

* :mod:`graceful.metrics`: how much an update regresses (negative flips), with intervals,
  significance and per-group breakdowns;
* :mod:`graceful.losses` and :mod:`graceful.training`: positive-congruent and
  backward-compatible training (the contract of embedding models is
  :mod:`graceful.embedding`);
* :mod:`graceful.retrieval`: cross-model retrieval evaluation;
* :mod:`graceful.lqf`: linearized fine-tuning;
* :mod:`graceful.models` and :mod:`graceful.data`: the reference models and the digits of
  the demo and the guide, and the cost of a model.

The optional parts each need an extra: :mod:`graceful.io` file readers (``io``),
:mod:`graceful.gallery` (``gallery``), :mod:`graceful.report` (``report``), the
``graceful`` command line (``cli``), MLflow logging (``mlflow``) and ``graceful demo``
(``demo``); ``all`` installs every one.

Example:
    >>> import graceful
    >>> graceful.__version__
    '0.1.0'
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
