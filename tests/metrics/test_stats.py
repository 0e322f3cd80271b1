"""Intervals, McNemar's test and the paired bootstrap against textbook values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from graceful.errors import InputError
from graceful.metrics import (
    FlipCounts,
    Interval,
    bootstrap_cells,
    bootstrap_relative_nfr,
    exact_interval,
    flip_counts,
    mcnemar_test,
    metric_intervals,
    relative_negative_flip_rate,
    wilson_interval,
)

# -- Wilson and Clopper-Pearson -----------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "want"),
    [
        (3, 100, (0.0103, 0.0845)),
        (0, 10, (0.0, 0.2775)),  # upper = z^2 / (n + z^2)
        (10, 10, (0.7225, 1.0)),
        (81, 263, (0.2553, 0.3662)),
        (5, 10, (0.2366, 0.7634)),
    ],
)
def test_wilson_textbook_values(k, n, want):
    low, high = wilson_interval(k, n)
    assert (round(low, 4), round(high, 4)) == want


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 20), (3, 100), (7, 19), (20, 20)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_exact_interval_matches_scipy(k, n, confidence):
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    low, high = exact_interval(k, n, confidence=confidence)
    assert math.isclose(low, ci.low, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(high, ci.high, rel_tol=1e-9, abs_tol=1e-12)
    wl, wh = wilson_interval(k, n, confidence=confidence)
    wci = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert math.isclose(wl, wci.low, abs_tol=1e-12)
    assert math.isclose(wh, wci.high, abs_tol=1e-12)


@pytest.mark.parametrize("interval", [wilson_interval, exact_interval])
def test_intervals_contain_estimate_and_edges(interval):
    for n in (1, 2, 10, 57):
        for k in range(n + 1):
            low, high = interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0
        assert interval(0, n)[0] == pytest.approx(0.0, abs=1e-15)
        assert interval(n, n)[1] == pytest.approx(1.0, abs=1e-15)
        # wider at higher confidence
        narrow, wide = interval(n // 2, n, confidence=0.8), interval(n // 2, n, confidence=0.99)
        assert wide[0] <= narrow[0] and narrow[1] <= wide[1]
    assert exact_interval(0, 10)[0] == 0.0 and exact_interval(10, 10)[1] == 1.0
    assert all(math.isnan(v) for v in interval(0, 0))


@pytest.mark.parametrize("interval", [wilson_interval, exact_interval, bootstrap_cells])
@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 95])
def test_bad_confidence(interval, confidence):
    args = (np.array([3, 2, 1, 0] * 30),) if interval is bootstrap_cells else (3, 10)
    with pytest.raises(InputError, match="`confidence`"):
        interval(*args, confidence=confidence)


# -- McNemar ------------------------------------------------------------------------------


@pytest.mark.parametrize(("b", "c"), [(1, 0), (5, 9), (30, 57), (12, 3), (40, 41), (0, 7)])
def test_mcnemar_matches_binomtest(b, c):
    r = mcnemar_test(b, c)
    assert r.p_value == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
    # two-sided exact p-value from its definition
    tail = sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c)
    assert r.p_value == pytest.approx(min(1.0, 2 * tail), rel=1e-12)
    assert (r.negative_flips, r.positive_flips, r.alpha) == (b, c, 0.05)


def test_mcnemar_known_cases():
    for b in (1, 4, 100):
        r = mcnemar_test(b, b)
        assert r.p_value == 1.0 and r.verdict == "no significant difference"
    r = mcnemar_test(0, 0)
    assert r.p_value == 1.0 and r.verdict == "no significant difference"
    worse = mcnemar_test(10, 0)
    assert worse.p_value == 2 * 0.5**10 and worse.verdict == "worse"
    assert worse.significant_regression
    better = mcnemar_test(0, 10)
    assert better.verdict == "better" and not better.significant_regression
    assert mcnemar_test(5, 0).verdict == "no significant difference"  # p = 0.0625
    assert mcnemar_test(5, 0, alpha=0.1).verdict == "worse"
    assert mcnemar_test(30, 57).verdict == "better"


def test_mcnemar_from_counts_uses_sample_counts():
    counts = flip_counts([0, 1, 2, 2, 1], [0, 1, 0, 1, 1], [0, 2, 2, 0, 0], sample_weight=[9] * 5)
    r = mcnemar_test(counts)
    assert (r.negative_flips, r.positive_flips) == (2, 1)
    assert r.p_value == mcnemar_test(2, 1).p_value


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((-1, 3), {}, "`negative_flips`"),
        ((2, 2.5), {}, "`positive_flips`"),
        ((True, 3), {}, "`negative_flips`"),
        ((3,), {}, "`positive_flips`"),
        ((3, 4), {"alpha": 0.0}, "`alpha`"),
        ((3, 4), {"alpha": 1.5}, "`alpha`"),
    ],
)
def test_mcnemar_bad_input(args, kwargs, match):
    with pytest.raises(InputError, match=match):
        mcnemar_test(*args, **kwargs)
    counts = flip_counts([0, 1], [0, 1], [1, 1])
    with pytest.raises(InputError, match="`positive_flips`"):
        mcnemar_test(counts, 3)


# -- bootstrap ----------------------------------------------------------------------------


def _realistic(seed=0, n=600):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    old = np.where(rng.random(n) < 0.8, y, (y + 1) % 4)
    new = np.where(rng.random(n) < 0.85, y, (y + 2) % 4)
    return y, old, new


def test_bootstrap_is_seeded_and_contains_estimate():
    y, old, new = _realistic()
    a = bootstrap_relative_nfr(y, old, new, random_state=7)
    b = bootstrap_relative_nfr(y, old, new, random_state=7)
    c = bootstrap_relative_nfr(y, old, new, random_state=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.value == relative_negative_flip_rate(y, old, new)
    assert a.low < a.value < a.high
    assert isinstance(a, Interval)
    g1 = bootstrap_relative_nfr(y, old, new, random_state=np.random.default_rng(3))
    g2 = bootstrap_relative_nfr(y, old, new, random_state=np.random.default_rng(3))
    assert g1 == g2
    wider = bootstrap_relative_nfr(y, old, new, random_state=7, confidence=0.99)
    assert wider.low <= a.low and a.high <= wider.high


def test_multinomial_shortcut_matches_row_resampling():
    y, old, new = _realistic(1, n=400)
    cells = 2 * (old == y) + (new == y)
    q = [0.025, 0.25, 0.5, 0.75, 0.975]
    # explicit row resampling, written here from scratch
    rng = np.random.default_rng(99)
    values = []
    for _ in range(4000):
        s = np.bincount(cells[rng.integers(0, len(cells), len(cells))], minlength=4)
        oc, nw = s[2] + s[3], s[2] + s[0]
        if oc * nw:
            values.append(s[2] * s.sum() / (oc * nw))
    explicit = np.quantile(values, q)
    lo_hi = bootstrap_cells(cells, n_resamples=4000, random_state=5)
    weighted_path = bootstrap_cells(cells, np.ones(len(cells)), n_resamples=4000, random_state=5)
    assert 0.5 < lo_hi.value < 3
    for iv in (lo_hi, weighted_path):
        assert iv.value == pytest.approx(relative_negative_flip_rate(y, old, new), rel=1e-12)
        assert iv.low == pytest.approx(explicit[0], abs=0.05)
        assert iv.high == pytest.approx(explicit[-1], abs=0.05)
    half = bootstrap_cells(cells, n_resamples=4000, confidence=0.5, random_state=5)
    assert half.low == pytest.approx(explicit[1], abs=0.05)
    assert half.high == pytest.approx(explicit[3], abs=0.05)


def test_bootstrap_weighted_and_excluded():
    y, old, new = _realistic(2, n=300)
    w = np.random.default_rng(0).random(300) + 0.5
    iv = bootstrap_relative_nfr(y, old, new, sample_weight=w, n_resamples=500, random_state=0)
    assert iv.value == pytest.approx(relative_negative_flip_rate(y, old, new, sample_weight=w))
    assert iv.low < iv.value < iv.high
    assert iv == bootstrap_relative_nfr(
        y, old, new, sample_weight=w, n_resamples=500, random_state=0
    )
    cells = 2 * (old == y) + (new == y)
    with_excluded = np.concatenate([cells, [4] * 50])
    assert bootstrap_cells(with_excluded, random_state=1) == bootstrap_cells(cells, random_state=1)
    assert all(
        math.isnan(v) for v in bootstrap_cells(np.array([4, 4]), random_state=1).as_dict().values()
    )
    # undefined everywhere: point and bounds NaN, no exception
    never_wrong = bootstrap_cells(np.array([3] * 50 + [1] * 5), random_state=0)
    assert all(math.isnan(v) for v in (never_wrong.value, never_wrong.low, never_wrong.high))


@pytest.mark.parametrize("n_resamples", [0, 99, 500.0, True])
def test_bootstrap_bad_resamples(n_resamples):
    with pytest.raises(InputError, match="`n_resamples`"):
        bootstrap_cells(np.array([3, 2, 1, 0]), n_resamples=n_resamples)


# -- metric_intervals ---------------------------------------------------------------------


def test_metric_intervals_unweighted_are_wilson_of_counts():
    y, old, new = _realistic(3)
    counts = flip_counts(y, old, new)
    for method, fn in (("wilson", wilson_interval), ("exact", exact_interval)):
        ivs = metric_intervals(counts, method=method)
        assert "relative_negative_flip_rate" not in ivs
        assert len(ivs) == 8
        nfr = ivs["negative_flip_rate"]
        assert nfr.value == counts.negative_flips / counts.total
        low, high = fn(counts.negative_flips, counts.total)
        assert nfr.low == pytest.approx(low, rel=1e-12)
        assert nfr.high == pytest.approx(high, rel=1e-12)
        btc = ivs["backward_trust_compatibility"]
        low, high = fn(counts.both_correct, counts.old_correct)
        assert (btc.low, btc.high) == (
            pytest.approx(low, rel=1e-12),
            pytest.approx(high, rel=1e-12),
        )
        for iv in ivs.values():
            assert iv.low <= iv.value <= iv.high


def test_metric_intervals_equal_weights_equal_unweighted():
    y, old, new = _realistic(4)
    plain = metric_intervals(flip_counts(y, old, new))
    for c in (2.0, 0.37, 13.0):
        weighted = metric_intervals(flip_counts(y, old, new, sample_weight=np.full(len(y), c)))
        for name, iv in plain.items():
            for a, b in zip(iv.as_dict().values(), weighted[name].as_dict().values(), strict=True):
                assert a == pytest.approx(b, rel=1e-12), name


def test_metric_intervals_use_kish_effective_n():
    target = [0] * 6
    old = [0] * 6
    new = [0, 1, 0, 1, 0, 0]  # negative flips at 1 and 3
    w = np.array([1.0, 3.0, 1.0, 1.0, 2.0, 2.0])
    counts = flip_counts(target, old, new, sample_weight=w)
    iv = metric_intervals(counts)["negative_flip_rate"]
    p = 4.0 / 10.0
    n_eff = w.sum() ** 2 / (w**2).sum()  # 100 / 20 = 5
    assert n_eff == 5.0
    assert iv.value == p
    assert (iv.low, iv.high) == pytest.approx(wilson_interval(p * n_eff, n_eff), rel=1e-12)
    # unequal weights carry less information than 6 unit samples: the interval is wider
    assert iv.high - iv.low > np.subtract(*wilson_interval(p * 6, 6)[::-1])


def test_metric_intervals_undefined_and_bad_method():
    counts = flip_counts([0, 1], [1, 0], [0, 1])  # old never right
    ivs = metric_intervals(counts)
    assert all(math.isnan(v) for v in ivs["backward_trust_compatibility"].as_dict().values())
    assert ivs["positive_flip_rate"].value == 1.0
    empty = FlipCounts.from_state(np.zeros(14))
    assert all(math.isnan(iv.value) for iv in metric_intervals(empty).values())
    with pytest.raises(InputError, match="`method`"):
        metric_intervals(counts, method="bayes")
