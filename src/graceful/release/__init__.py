"""Release decisions: compare and gate model updates, log them, update stored predictions.

Comparing two versions, gating the update and logging it to MLflow; and updating stored
predictions with a new version without retraining (:mod:`graceful.release.prediction_update`).

Example:
    >>> from graceful.release import Gate
    >>> Gate(max_nfr=0.01).evaluate({"negative_flip_rate": 0.005}).passed
    True
"""

from .chain import ChainComparison, compare_chain
from .compare import Comparison, compare, compare_eval_logs, compare_files
from .gate import Gate, GateCheck, GateResult
from .mlflow import log_comparison, mlflow_records
from .prediction_update import (
    FileUpdate,
    PredictionUpdate,
    PredictionUpdater,
    class_prior,
    estimate_confusion,
    label_log_posterior,
    posterior_entropy,
    select_for_update,
    update_prediction_files,
    update_predictions,
)

__all__ = [
    "ChainComparison",
    "Comparison",
    "FileUpdate",
    "Gate",
    "GateCheck",
    "GateResult",
    "PredictionUpdate",
    "PredictionUpdater",
    "class_prior",
    "compare",
    "compare_chain",
    "compare_eval_logs",
    "compare_files",
    "estimate_confusion",
    "label_log_posterior",
    "log_comparison",
    "mlflow_records",
    "posterior_entropy",
    "select_for_update",
    "update_prediction_files",
    "update_predictions",
]
