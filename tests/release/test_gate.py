import json
import math

import numpy as np
import pandas as pd
import pytest

from graceful.errors import InputError
from graceful.metrics import McNemarResult, mcnemar_test
from graceful.release import Gate, GateCheck, compare_files


def test_unset_gate_is_not_configured_and_passes():
    gate = Gate()
    assert not gate.configured
    assert gate.evaluate({"negative_flip_rate": 0.5}).passed


@pytest.mark.parametrize(
    ("kwargs", "metrics", "passed"),
    [
        ({"max_nfr": 0.02}, {"negative_flip_rate": 0.02}, True),
        ({"max_nfr": 0.02}, {"negative_flip_rate": 0.0201}, False),
        ({"max_rel_nfr": 0.5}, {"relative_negative_flip_rate": 0.49}, True),
        ({"max_rel_nfr": 0.5}, {"relative_negative_flip_rate": 0.51}, False),
        ({"min_btc": 0.9}, {"backward_trust_compatibility": 0.9}, True),
        ({"min_btc": 0.9}, {"backward_trust_compatibility": 0.89}, False),
    ],
)
def test_bars(kwargs, metrics, passed):
    result = Gate(**kwargs).evaluate(metrics)
    assert result.passed is passed
    assert len(result.checks) == 1


def test_undefined_metric_fails_its_bar():
    result = Gate(max_rel_nfr=1.0).evaluate({"relative_negative_flip_rate": math.nan})
    assert not result.passed
    assert result.as_dict()["checks"][0]["value"] is None


def test_significant_regression_bar():
    gate = Gate(fail_on_significant_regression=True)
    assert gate.evaluate({}, significant_regression=False).passed
    failed = gate.evaluate({}, significant_regression=True)
    assert not failed.passed
    assert failed.failures[0].name == "no_significant_regression"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_nfr": -0.1}, "max_nfr"),
        ({"max_nfr": 1.5}, "max_nfr"),
        ({"min_btc": float("nan")}, "min_btc"),
        ({"max_rel_nfr": -1.0}, "max_rel_nfr"),
    ],
)
def test_bad_thresholds_name_the_argument(kwargs, name):
    with pytest.raises(InputError, match=name):
        Gate(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "metrics", "statistic", "detail"),
    [
        ({"max_nfr": 0.02}, {"negative_flip_rate": 0.0234}, "NFR", "NFR = 2.34% > max 2%"),
        ({"max_nfr": 0.02}, {"negative_flip_rate": 0.015}, "NFR", "NFR = 1.5% <= max 2%"),
        # as many digits as it takes to tell the value from the bar
        ({"max_nfr": 0.02}, {"negative_flip_rate": 0.020001}, "NFR", "NFR = 2.0001% > max 2%"),
        (
            {"max_rel_nfr": 0.8},
            {"relative_negative_flip_rate": 0.447},
            "relative NFR",
            "relative NFR = 0.447 <= max 0.8",
        ),
        (
            {"max_rel_nfr": 1.0},
            {"relative_negative_flip_rate": 1.00121},
            "relative NFR",
            "relative NFR = 1.001 > max 1",
        ),
        (
            {"max_rel_nfr": 1.0},
            {"relative_negative_flip_rate": math.nan},
            "relative NFR",
            "relative NFR undefined, max 1: an undefined value fails",
        ),
        (
            {"min_btc": 0.97},
            {"backward_trust_compatibility": 0.961},
            "BTC",
            "BTC = 96.1% < min 97%",
        ),
        (
            {"min_btc": 0.97},
            {"backward_trust_compatibility": 0.97},
            "BTC",
            "BTC = 97% >= min 97%",
        ),
    ],
)
def test_each_bar_names_its_statistic_value_and_threshold(kwargs, metrics, statistic, detail):
    (check,) = Gate(**kwargs).evaluate(metrics).checks
    assert check.statistic == statistic
    assert check.detail == detail
    assert check.as_dict()["statistic"] == statistic
    assert check.as_dict()["detail"] == detail


@pytest.mark.parametrize(
    ("flips", "passed", "verdict", "detail"),
    [
        (
            (40, 10),
            False,
            "worse",
            "McNemar p = 2.39e-05 < alpha 0.05, new model significantly worse",
        ),
        (
            (10, 40),
            True,
            "better",
            "McNemar p = 2.39e-05 < alpha 0.05, new model significantly better",
        ),
        (
            (12, 10),
            True,
            "no significant difference",
            "McNemar p = 0.832 >= alpha 0.05, no significant difference",
        ),
    ],
)
def test_significance_check_shows_p_value_alpha_and_direction(flips, passed, verdict, detail):
    test = mcnemar_test(*flips)
    result = Gate(fail_on_significant_regression=True).evaluate({}, mcnemar=test)
    (check,) = result.checks
    assert (check.name, check.statistic, check.verdict) == (
        "no_significant_regression",
        "McNemar p",
        verdict,
    )
    assert (check.value, check.threshold, check.passed) == (test.p_value, 0.05, passed)
    assert check.detail == detail
    assert check.as_dict()["value"] == test.p_value
    assert check.as_dict()["threshold"] == 0.05


def test_significance_check_tells_p_from_alpha():
    test = McNemarResult(30, 10, 0.04999, 0.05, "worse")
    (check,) = Gate(fail_on_significant_regression=True).evaluate({}, mcnemar=test).checks
    assert check.detail == "McNemar p = 0.04999 < alpha 0.05, new model significantly worse"


def test_significance_check_from_the_verdict_alone_has_no_flag_for_a_value():
    """Callers that pass only the verdict still get a verdict, but no 0/1 flag in `value`."""
    gate = Gate(fail_on_significant_regression=True)
    (failed,) = gate.evaluate({}, significant_regression=True).checks
    assert not failed.passed
    assert math.isnan(failed.value) and math.isnan(failed.threshold)
    assert failed.detail == (
        "McNemar's exact test finds the new model significantly worse (p not given)"
    )
    (passed,) = gate.evaluate({}).checks
    assert passed.passed and passed.verdict is None
    for check in (failed, passed):
        record = check.as_dict()
        assert record["value"] is None and record["threshold"] is None
        json.dumps(record, allow_nan=False)


def test_significance_from_compare_is_mcnemars(tmp_path):
    y = np.zeros(200, dtype=int)
    new = y.copy()
    new[:40] = 1  # 40 negative flips, no positive flip
    pd.DataFrame({"id": range(200), "label": y, "pred": y}).to_csv(tmp_path / "o.csv", index=False)
    pd.DataFrame({"id": range(200), "pred": new}).to_csv(tmp_path / "n.csv", index=False)
    gate = Gate(max_nfr=0.1, fail_on_significant_regression=True)
    result = compare_files(tmp_path / "o.csv", tmp_path / "n.csv", gate=gate)
    assert result.gate is not None
    nfr, significance = result.gate.checks
    assert nfr.detail == "NFR = 20% > max 10%"
    assert significance.value == result.mcnemar.p_value
    assert significance.detail == (
        "McNemar p = 1.82e-12 < alpha 0.05, new model significantly worse"
    )
    assert result.summary()["gate"]["checks"][1]["detail"] == significance.detail


def test_gate_check_is_backwards_compatible():
    check = GateCheck("max_nfr", 0.02, 0.01, True, "negative flip rate <= 0.02")
    assert check.statistic == "" and check.verdict is None
    assert check.detail == "NFR = 1% <= max 2%"
    custom = GateCheck("my_bar", 0.5, 0.25, True, "mine", "score")
    assert custom.detail == "score = 0.25, threshold 0.5"
    json.dumps(custom.as_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"significant_regression": "yes"}, "significant_regression"),
        ({"mcnemar": {"verdict": "worse"}}, "mcnemar"),
        (
            {"mcnemar": mcnemar_test(40, 10), "significant_regression": False},
            "significant_regression",
        ),
    ],
)
def test_bad_significance_arguments_name_the_argument(kwargs, name):
    with pytest.raises(InputError, match=f"`{name}`"):
        Gate(fail_on_significant_regression=True).evaluate({}, **kwargs)
