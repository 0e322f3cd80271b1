"""Release decisions: compare two model versions, gate the update, log it to MLflow.

Example:
    >>> from graceful.release import Gate
    >>> Gate(max_nfr=0.01).evaluate({"negative_flip_rate": 0.005}).passed
    True
"""

from .compare import Comparison, compare, compare_files
from .gate import Gate, GateCheck, GateResult
from .mlflow import log_comparison, mlflow_records

__all__ = [
    "Comparison",
    "Gate",
    "GateCheck",
    "GateResult",
    "compare",
    "compare_files",
    "log_comparison",
    "mlflow_records",
]
