"""A release gate: bars an update must clear before it ships.

A gate is a set of optional thresholds checked against a comparison's metrics. The
``graceful compare`` command exits 1 when a bar is broken, so it can stop a pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from graceful._validation import check_optional, check_real

__all__ = ["Gate", "GateCheck", "GateResult"]


@dataclass(frozen=True)
class GateCheck:
    """One bar and whether the update clears it.

    An undefined metric (NaN) fails its bar: a gate never passes on a value it cannot see.
    """

    name: str
    threshold: float
    value: float
    passed: bool
    description: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN becomes ``None``)."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "value": None if math.isnan(self.value) else self.value,
            "passed": self.passed,
            "description": self.description,
        }


@dataclass(frozen=True)
class GateResult:
    """The outcome of every configured bar."""

    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        """True when every bar is cleared (and trivially when no bar is set)."""
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[GateCheck, ...]:
        """The bars that were broken."""
        return tuple(check for check in self.checks if not check.passed)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"passed": self.passed, "checks": [c.as_dict() for c in self.checks]}


@dataclass(frozen=True)
class Gate:
    """Thresholds for a release; ``None`` leaves a bar unset.

    Args:
        max_nfr: highest acceptable negative flip rate (a fraction, 0.02 = 2 %).
        max_rel_nfr: highest acceptable relative NFR.
        min_btc: lowest acceptable backward trust compatibility (fraction).
        fail_on_significant_regression: fail when McNemar's exact test says the new model
            is significantly worse than the old one.

    Example:
        >>> gate = Gate(max_nfr=0.02, min_btc=0.95)
        >>> result = gate.evaluate({"negative_flip_rate": 0.03,
        ...                         "backward_trust_compatibility": 0.97})
        >>> result.passed, [c.name for c in result.failures]
        (False, ['max_nfr'])
    """

    max_nfr: float | None = None
    max_rel_nfr: float | None = None
    min_btc: float | None = None
    fail_on_significant_regression: bool = False

    def __post_init__(self) -> None:
        check_optional(check_real, "max_nfr", self.max_nfr, low=0.0, high=1.0)
        check_optional(check_real, "max_rel_nfr", self.max_rel_nfr, low=0.0)
        check_optional(check_real, "min_btc", self.min_btc, low=0.0, high=1.0)

    @property
    def configured(self) -> bool:
        """True when at least one bar is set."""
        return (
            self.max_nfr is not None
            or self.max_rel_nfr is not None
            or self.min_btc is not None
            or self.fail_on_significant_regression
        )

    def evaluate(
        self, metrics: dict[str, float], *, significant_regression: bool = False
    ) -> GateResult:
        """Check each configured bar against ``metrics`` (names as in ``graceful.metrics``).

        Args:
            metrics: metric name -> value.
            significant_regression: McNemar's verdict that the update is worse.

        Returns:
            A :class:`GateResult`.
        """
        checks: list[GateCheck] = []

        def add(name: str, key: str, threshold: float, upper: bool, text: str) -> None:
            value = float(metrics.get(key, math.nan))
            ok = not math.isnan(value) and (value <= threshold if upper else value >= threshold)
            checks.append(GateCheck(name, threshold, value, ok, text))

        if self.max_nfr is not None:
            add(
                "max_nfr",
                "negative_flip_rate",
                self.max_nfr,
                True,
                f"negative flip rate <= {self.max_nfr:.4g}",
            )
        if self.max_rel_nfr is not None:
            add(
                "max_rel_nfr",
                "relative_negative_flip_rate",
                self.max_rel_nfr,
                True,
                f"relative negative flip rate <= {self.max_rel_nfr:.4g}",
            )
        if self.min_btc is not None:
            add(
                "min_btc",
                "backward_trust_compatibility",
                self.min_btc,
                False,
                f"backward trust compatibility >= {self.min_btc:.4g}",
            )
        if self.fail_on_significant_regression:
            checks.append(
                GateCheck(
                    "no_significant_regression",
                    0.0,
                    1.0 if significant_regression else 0.0,
                    not significant_regression,
                    "McNemar's exact test does not find the new model significantly worse",
                )
            )
        return GateResult(tuple(checks))
