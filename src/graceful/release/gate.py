"""A release gate: bars an update must clear before it ships.

A gate is a set of optional thresholds checked against a comparison's metrics. The
``graceful compare`` command exits 1 when a bar is broken, so it can stop a pipeline.

Every check names the statistic it looked at and says what it saw
(:attr:`GateCheck.detail`), e.g. ``"NFR = 2.34% > max 2%"`` or
``"McNemar p = 0.003 < alpha 0.05, new model significantly worse"``: the command line and
the HTML report print that sentence as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graceful._validation import check_bool, check_instance, check_optional, check_real
from graceful.errors import InputError
from graceful.metrics import McNemarResult

__all__ = ["Gate", "GateCheck", "GateResult"]

SIGNIFICANCE = "no_significant_regression"
"""The name of the check on McNemar's test."""

_VERDICTS = {
    "worse": "new model significantly worse",
    "better": "new model significantly better",
    "no significant difference": "no significant difference",
}


def _percent(value: float, digits: int) -> str:
    return f"{100 * value:.{digits}g}%"


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def _ratio(value: float, digits: int) -> str:
    return f"{value:.{digits + 1}g}"


@dataclass(frozen=True)
class _Bar:
    """A threshold bar: the metric it reads, its statistic's short name, its direction."""

    metric: str
    statistic: str
    upper: bool  # the value must be <= the threshold (else >=)
    show: Callable[[float, int], str]


_BARS = {
    "max_nfr": _Bar("negative_flip_rate", "NFR", True, _percent),
    "max_rel_nfr": _Bar("relative_negative_flip_rate", "relative NFR", True, _ratio),
    "min_btc": _Bar("backward_trust_compatibility", "BTC", False, _percent),
}


def _shown(value: float, threshold: float, show: Callable[[float, int], str]) -> tuple[str, str]:
    """``value`` and ``threshold`` as text, with as many digits as it takes to tell them apart.

    Example:
        >>> _shown(0.04999, 0.05, _number)
        ('0.04999', '0.05')
    """
    for digits in (3, 4, 6, 9, 12, 17):
        text, bar = show(value, digits), show(threshold, digits)
        if text != bar or value == threshold:
            break
    return text, bar


@dataclass(frozen=True)
class GateCheck:
    """One bar and whether the update clears it.

    An undefined metric (NaN) fails its bar: a gate never passes on a value it cannot see.
    The significance check (``name == "no_significant_regression"``) holds McNemar's
    p-value in ``value``, its significance level in ``threshold`` and McNemar's
    ``verdict``; it fails only when the verdict is ``"worse"`` (a small p-value of a better
    model passes). Given only the verdict (``Gate.evaluate(significant_regression=...)``),
    its p-value and level are NaN.

    Attributes:
        name: the bar, as the :class:`Gate` field that set it.
        threshold: the bar's threshold (McNemar's alpha for the significance check).
        value: the statistic's value (McNemar's p-value for the significance check).
        passed: whether the update clears the bar.
        description: what the bar requires, in words.
        statistic: the short name of the statistic in ``value``: ``"NFR"``,
            ``"relative NFR"``, ``"BTC"`` or ``"McNemar p"`` (``""`` when not given).
        verdict: McNemar's verdict (``"worse"``, ``"better"`` or
            ``"no significant difference"``) for the significance check, else ``None``.

    Example:
        >>> check = Gate(max_nfr=0.02).evaluate({"negative_flip_rate": 0.0234}).checks[0]
        >>> check.statistic, check.passed, check.detail
        ('NFR', False, 'NFR = 2.34% > max 2%')
    """

    name: str
    threshold: float
    value: float
    passed: bool
    description: str
    statistic: str = ""
    verdict: str | None = None

    @property
    def detail(self) -> str:
        """The statistic, its value and the bar, in one line; the CLI and report print it."""
        if self.name == SIGNIFICANCE:
            return self._significance_detail()
        bar = _BARS.get(self.name)
        statistic = self.statistic or (bar.statistic if bar else self.name)
        show = bar.show if bar else _number
        if bar is None:
            relation, side = "", "threshold"
        else:
            relation, side = ("<=", "max") if bar.upper else (">=", "min")
        if math.isnan(self.value):
            limit = show(self.threshold, 3)
            return f"{statistic} undefined, {side} {limit}: an undefined value fails"
        value, threshold = _shown(self.value, self.threshold, show)
        if bar is None:
            return f"{statistic} = {value}, {side} {threshold}"
        if not self.passed:
            relation = ">" if bar.upper else "<"
        return f"{statistic} = {value} {relation} {side} {threshold}"

    def _significance_detail(self) -> str:
        statistic = self.statistic or "McNemar p"
        outcome = _VERDICTS.get(self.verdict or "", self.verdict or "")
        if math.isnan(self.value):
            found = "finds" if not self.passed else "does not find"
            return f"McNemar's exact test {found} the new model significantly worse (p not given)"
        if math.isnan(self.threshold):
            text = f"{statistic} = {_number(self.value, 3)}"
        else:
            p, alpha = _shown(self.value, self.threshold, _number)
            relation = "<" if self.value < self.threshold else ">="
            text = f"{statistic} = {p} {relation} alpha {alpha}"
        return f"{text}, {outcome}" if outcome else text

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN becomes ``None``), with :attr:`detail`."""
        return {
            "name": self.name,
            "statistic": self.statistic,
            "threshold": None if math.isnan(self.threshold) else self.threshold,
            "value": None if math.isnan(self.value) else self.value,
            "passed": self.passed,
            "verdict": self.verdict,
            "description": self.description,
            "detail": self.detail,
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
        >>> [c.detail for c in result.checks]
        ['NFR = 3% > max 2%', 'BTC = 97% >= min 95%']
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
        self,
        metrics: dict[str, float],
        *,
        significant_regression: bool | None = None,
        mcnemar: McNemarResult | None = None,
    ) -> GateResult:
        """Check each configured bar against ``metrics`` (names as in ``graceful.metrics``).

        Args:
            metrics: metric name -> value.
            significant_regression: McNemar's verdict that the update is worse; needed
                only without ``mcnemar`` (default ``False``), and must agree with it.
            mcnemar: McNemar's test (:func:`graceful.metrics.mcnemar_test`): its verdict
                decides the significance bar, and its p-value and level are shown.

        Returns:
            A :class:`GateResult`.

        Raises:
            InputError: if ``mcnemar`` is not a :class:`~graceful.metrics.McNemarResult`,
                or ``significant_regression`` is not a bool or contradicts ``mcnemar``.

        Example:
            >>> from graceful.metrics import mcnemar_test
            >>> gate = Gate(fail_on_significant_regression=True)
            >>> gate.evaluate({}, mcnemar=mcnemar_test(40, 10)).checks[0].detail
            'McNemar p = 2.39e-05 < alpha 0.05, new model significantly worse'
            >>> gate.evaluate({}, mcnemar=mcnemar_test(12, 10)).checks[0].detail
            'McNemar p = 0.832 >= alpha 0.05, no significant difference'
        """
        check_optional(check_bool, "significant_regression", significant_regression)
        if mcnemar is not None:
            check_instance("mcnemar", mcnemar, McNemarResult, "a McNemarResult")
            if (
                significant_regression is not None
                and significant_regression != mcnemar.significant_regression
            ):
                raise InputError(
                    f"Expected argument `significant_regression` to agree with `mcnemar`"
                    f" (verdict {mcnemar.verdict!r}), but got {significant_regression}"
                )
        checks: list[GateCheck] = []
        for name, threshold in (
            ("max_nfr", self.max_nfr),
            ("max_rel_nfr", self.max_rel_nfr),
            ("min_btc", self.min_btc),
        ):
            if threshold is None:
                continue
            bar = _BARS[name]
            value = float(metrics.get(bar.metric, math.nan))
            ok = not math.isnan(value) and (value <= threshold if bar.upper else value >= threshold)
            words = bar.metric.replace("_", " ")
            relation = "<=" if bar.upper else ">="
            text = f"{words} {relation} {threshold:.4g}"
            checks.append(GateCheck(name, threshold, value, ok, text, bar.statistic))
        if self.fail_on_significant_regression:
            verdict: str | None
            if mcnemar is not None:
                worse = mcnemar.significant_regression
                p_value, alpha, verdict = mcnemar.p_value, mcnemar.alpha, mcnemar.verdict
            else:
                worse = bool(significant_regression)
                p_value = alpha = math.nan
                verdict = "worse" if worse else None
            checks.append(
                GateCheck(
                    SIGNIFICANCE,
                    alpha,
                    p_value,
                    not worse,
                    "McNemar's exact test does not find the new model significantly worse",
                    "McNemar p",
                    verdict,
                )
            )
        return GateResult(tuple(checks))
