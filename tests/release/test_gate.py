import math

import pytest

from graceful.errors import InputError
from graceful.release import Gate


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
