"""Prediction updates (Träuble et al. 2021): posterior, rules, budget, files and command line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from graceful.cli.app import app
from graceful.errors import InputError
from graceful.metrics import error_rate, negative_flip_rate
from graceful.release import (
    PredictionUpdate,
    PredictionUpdater,
    class_prior,
    compare_files,
    estimate_confusion,
    label_log_posterior,
    posterior_entropy,
    select_for_update,
    update_prediction_files,
    update_predictions,
)

runner = CliRunner()


# -- a tiny reference, written with loops -------------------------------------------------------


def ref_confusion(target, preds, k, s, form):
    """(n_ij + s/K) / (n_i + s): a symmetric Dirichlet of concentration s on each row."""
    counts = [[0.0] * k for _ in range(k)]
    for t, p in zip(target, preds, strict=True):
        counts[t][p] += 1
    out = []
    for i in range(k):
        n_i = sum(counts[i])
        row = [(counts[i][j] + s / k) / (n_i + s) for j in range(k)]
        if form == "diagonal":
            acc = row[i]
            row = [acc if j == i else (1 - acc) / (k - 1) for j in range(k)]
        out.append(row)
    return out


def ref_run(prior, steps, rule, ratio=None):
    """Stored labels and posteriors after ``steps`` = [(preds, confusion, count or None), ...]."""
    k = len(prior)
    preds0, conf0, _ = steps[0]
    posts = []
    for y_hat in preds0:
        row = [prior[y] * conf0[y][y_hat] for y in range(k)]
        z = sum(row)
        posts.append([r / z for r in row])
    labels = list(preds0)
    for preds, conf, count in steps[1:]:
        entropy = [-sum(p * math.log(p) for p in row if p > 0) for row in posts]
        order = sorted(range(len(posts)), key=lambda i: (-entropy[i], i))
        for i in order if count is None else order[:count]:
            row = [posts[i][y] * conf[y][preds[i]] for y in range(k)]
            z = sum(row)
            posts[i] = row = [r / z for r in row]
            best = max(range(k), key=lambda y: (row[y], -y))  # lowest index among ties
            if rule == "replace":
                labels[i] = preds[i]
            elif rule == "max_belief" or (best != labels[i] and row[best] > ratio * row[labels[i]]):
                labels[i] = best
    return labels, posts


def random_confusion(rng, k, strength=3.0):
    conf = rng.random((k, k)) + strength * np.eye(k)
    return conf / conf.sum(axis=1, keepdims=True)


# -- confusion matrices and the prior -----------------------------------------------------------


@pytest.mark.parametrize("form", ["full", "diagonal"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 3.0])
def test_estimate_confusion_against_the_counts(form, alpha):
    target = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    preds = [0, 1, 0, 1, 2, 2, 2, 0, 1]
    got = estimate_confusion(target, preds, num_classes=3, form=form, smoothing=alpha)
    np.testing.assert_allclose(got, ref_confusion(target, preds, 3, alpha, form), rtol=1e-15)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-15)


def test_estimate_confusion_hand_worked():
    # class 0: 2 of 3 right (one called 1); class 1: 1 of 2 (one called 2); class 2: never seen
    target, preds = [0, 0, 0, 1, 1], [0, 1, 0, 1, 2]
    # s = K = 3: Laplace's add-one in every cell
    full = estimate_confusion(target, preds, num_classes=3, smoothing=3.0)
    np.testing.assert_allclose(
        full, [[3 / 6, 2 / 6, 1 / 6], [1 / 5, 2 / 5, 2 / 5], [1 / 3, 1 / 3, 1 / 3]]
    )
    diag = estimate_confusion(target, preds, num_classes=3, form="diagonal", smoothing=3.0)
    np.testing.assert_allclose(
        diag, [[1 / 2, 1 / 4, 1 / 4], [3 / 10, 2 / 5, 3 / 10], [1 / 3, 1 / 3, 1 / 3]]
    )


def test_estimate_confusion_scores_weights_and_inferred_classes():
    scores = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.3, 0.3, 0.3]])  # ties: lowest
    got = estimate_confusion([0, 2, 1], scores, smoothing=0.0)  # K from the score width
    np.testing.assert_array_equal(got, [[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    weighted = estimate_confusion(
        [0, 0, 1, 1], [0, 1, 1, 1], smoothing=0.0, sample_weight=[3, 1, 1, 1]
    )
    np.testing.assert_allclose(weighted, [[0.75, 0.25], [0.0, 1.0]])
    repeated = estimate_confusion([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1], smoothing=0.0)
    np.testing.assert_allclose(weighted, repeated)


def test_class_prior():
    np.testing.assert_allclose(class_prior([0, 0, 1, 2], smoothing=0.0), [0.5, 0.25, 0.25])
    np.testing.assert_allclose(
        class_prior([0, 0, 1], num_classes=3, smoothing=3.0), [3 / 6, 2 / 6, 1 / 6]
    )
    np.testing.assert_allclose(class_prior([0, 0, 1], num_classes=3), [7 / 12, 4 / 12, 1 / 12])
    np.testing.assert_allclose(
        class_prior([0, 1], smoothing=0.0, sample_weight=[3.0, 1.0]), [0.75, 0.25]
    )


# -- the posterior ------------------------------------------------------------------------------

C1 = np.array([[0.8, 0.1, 0.1], [0.2, 0.6, 0.2], [0.25, 0.25, 0.5]])  # diagonal: acc .8 .6 .5
C2 = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.2, 0.2, 0.6]])
PRIOR = np.array([0.5, 0.3, 0.2])


def test_hand_worked_three_class_example():
    # model 1 says 1, model 2 says 0:
    # p(y) ∝ prior * C1[:, 1] * C2[:, 0] = [.5*.1*.9, .3*.6*.05, .2*.25*.2] = [.045, .009, .01]
    expected = np.array([0.045, 0.009, 0.01]) / 0.064  # [0.703125, 0.140625, 0.15625]
    first = update_predictions(None, [1], C1, prior=PRIOR)
    np.testing.assert_allclose(
        first.posterior, [[0.5 * 0.1, 0.3 * 0.6, 0.2 * 0.25]] / np.float64(0.28)
    )
    assert first.labels.tolist() == [1]  # the initial annotation is stored as it is
    for rule, ratio, label in [
        ("replace", None, 0),
        ("max_belief", None, 0),
        ("cost_ratio", 10.0, 1),  # p(0)/p(1) = 5 < 10: keep
        ("cost_ratio", 4.999, 0),  # 5 > 4.999: change
        ("cost_ratio", 5.001, 1),
    ]:
        state = update_predictions(first, [0], C2, rule=rule, cost_ratio=ratio)
        np.testing.assert_allclose(state.posterior, [expected], rtol=1e-14)
        assert state.labels.tolist() == [label], (rule, ratio)
        assert state.changed.tolist() == [label != 1]
    batch = label_log_posterior([[1], [0]], [C1, C2], prior=PRIOR)
    np.testing.assert_allclose(np.exp(batch), [expected], rtol=1e-14)
    h = -(expected * np.log(expected)).sum()
    assert posterior_entropy(batch)[0] == pytest.approx(h, rel=1e-14)


@pytest.mark.parametrize(
    ("rule", "ratio"), [("replace", None), ("max_belief", None), ("cost_ratio", 2.0)]
)
@pytest.mark.parametrize("budget", [None, 7, 0.5])
def test_function_class_and_reference_agree(rule, ratio, budget):
    rng = np.random.default_rng(3)
    k, n = 3, 20
    confs = [random_confusion(rng, k) for _ in range(4)]
    preds = [rng.integers(0, k, n) for _ in range(4)]
    prior = np.array([0.2, 0.5, 0.3])
    count = {None: None, 7: 7, 0.5: 10}[budget]
    ref_labels, ref_posts = ref_run(
        prior.tolist(),
        [
            (p.tolist(), c.tolist(), None if t == 0 else count)
            for t, (p, c) in enumerate(zip(preds, confs, strict=True))
        ],
        rule,
        ratio,
    )
    state = None
    updater = PredictionUpdater(rule=rule, cost_ratio=ratio, prior=prior)
    for t, (p, c) in enumerate(zip(preds, confs, strict=True)):
        opts = {"prior": prior} if t == 0 else {"rule": rule, "cost_ratio": ratio, "budget": budget}
        state = update_predictions(state, p, c, **opts)
        from_class = updater.update(p, c, budget=None if t == 0 else budget)
        np.testing.assert_array_equal(from_class.labels, state.labels)
        np.testing.assert_array_equal(from_class.log_posterior, state.log_posterior)
    assert state.labels.tolist() == ref_labels
    np.testing.assert_allclose(state.posterior, ref_posts, rtol=1e-12)
    assert updater.n_updates == 4
    if budget is None:  # every model on every sample: the batch form
        np.testing.assert_allclose(
            state.log_posterior, label_log_posterior(preds, confs, prior=prior), rtol=1e-12
        )


def test_scores_are_read_by_the_ranking_rule():
    scores = np.array([[0.2, 0.4, 0.4], [0.7, 0.1, 0.2]])  # a tie: the lower class, 1
    from_scores = update_predictions(None, scores, C1)
    from_labels = update_predictions(None, [1, 0], C1)
    np.testing.assert_array_equal(from_scores.labels, [1, 0])
    np.testing.assert_array_equal(from_scores.log_posterior, from_labels.log_posterior)


def test_perfect_model_makes_the_posterior_one_hot():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 50)
    perfect = estimate_confusion(y, y, num_classes=4, smoothing=0.0)
    np.testing.assert_array_equal(perfect, np.eye(4))
    first = update_predictions(None, rng.integers(0, 4, 50), random_confusion(rng, 4))
    state = update_predictions(first, y, perfect, rule="max_belief")
    np.testing.assert_array_equal(state.posterior, np.eye(4)[y])
    np.testing.assert_array_equal(state.labels, y)
    assert posterior_entropy(state.log_posterior).tolist() == [0.0] * 50


def test_model_at_chance_leaves_the_prior():
    prior = np.array([0.1, 0.2, 0.3, 0.4])
    # the prediction does not depend on the true class: every row the same
    chance = np.tile([0.4, 0.3, 0.2, 0.1], (4, 1))
    preds = [0, 1, 2, 3, 3]
    state = update_predictions(None, preds, chance, prior=prior)
    np.testing.assert_allclose(state.posterior, np.tile(prior, (5, 1)), rtol=1e-14)
    again = update_predictions(state, [3, 2, 1, 0, 0], chance)
    np.testing.assert_allclose(again.posterior, state.posterior, rtol=1e-14)
    # and at chance in the diagonal form: accuracy 1/K everywhere is the uniform matrix
    y = np.repeat(np.arange(4), 4)
    guess = np.tile(np.arange(4), 4)
    uniform = estimate_confusion(y, guess, form="diagonal", smoothing=0.0)
    np.testing.assert_allclose(uniform, np.full((4, 4), 0.25))


# -- the rules ----------------------------------------------------------------------------------


def test_cost_ratio_one_is_max_belief_when_the_stored_label_is_the_argmax():
    rng = np.random.default_rng(7)
    k, n = 5, 400
    confs = [random_confusion(rng, k, strength=s) for s in (1.0, 2.0, 3.0, 4.0, 5.0)]
    preds = [rng.integers(0, k, n) for _ in confs]
    start = update_predictions(None, preds[0], confs[0])
    mb = update_predictions(start, preds[1], confs[1], rule="max_belief")
    np.testing.assert_array_equal(mb.labels, mb.log_posterior.argmax(axis=1))  # stored = argmax
    cr = mb
    for p, c in zip(preds[2:], confs[2:], strict=True):
        mb = update_predictions(mb, p, c, rule="max_belief")
        cr = update_predictions(cr, p, c, rule="cost_ratio", cost_ratio=1.0)
        np.testing.assert_array_equal(cr.labels, mb.labels)
        assert mb.changed.any()


def test_an_exact_tie_keeps_the_stored_label_under_cost_ratio_one():
    even = np.array([[0.5, 0.5], [0.5, 0.5]])
    start = update_predictions(None, [1], np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert start.posterior.tolist() == [[0.5, 0.5]]
    assert update_predictions(start, [0], even, rule="max_belief").labels.tolist() == [0]
    assert update_predictions(
        start, [0], even, rule="cost_ratio", cost_ratio=1.0
    ).labels.tolist() == [1]


def test_a_huge_cost_ratio_never_changes_a_label():
    rng = np.random.default_rng(1)
    k, n = 4, 300
    state = update_predictions(None, rng.integers(0, k, n), random_confusion(rng, k))
    stored = state.labels.copy()
    for strength in (2.0, 5.0, 10.0, 20.0):
        state = update_predictions(
            state,
            rng.integers(0, k, n),
            random_confusion(rng, k, strength),
            rule="cost_ratio",
            cost_ratio=1e12,
        )
        assert not state.changed.any()
    np.testing.assert_array_equal(state.labels, stored)
    assert (state.log_posterior.argmax(axis=1) != stored).any()  # max belief would change some


def test_replace_takes_the_new_predictions_where_evaluated():
    state = update_predictions(None, [0, 1, 2, 0], C1)
    new = update_predictions(state, [2, 2], C2, rule="replace", index=[3, 0])
    assert new.labels.tolist() == [2, 1, 2, 2]
    assert new.changed.tolist() == [True, False, False, True]
    assert new.evaluated.tolist() == [3, 0]


# -- the budget ---------------------------------------------------------------------------------


def test_budget_picks_the_highest_entropy_first_and_ties_by_index():
    post = np.log(
        np.array(
            [
                [0.90, 0.05, 0.05],  # 0: low entropy
                [1 / 3, 1 / 3, 1 / 3],  # 1: the highest
                [0.50, 0.25, 0.25],  # 2
                [0.50, 0.25, 0.25],  # 3: ties with 2
                [1 / 3, 1 / 3, 1 / 3],  # 4: ties with 1
                [0.25, 0.50, 0.25],  # 5: the same entropy as 2 and 3, another order
            ]
        )
    )
    h = posterior_entropy(post)
    assert h[1] == h[4] and h[2] == h[3] and h[1] > h[2] > h[0]
    order = select_for_update(post, None).tolist()
    assert order[:2] == [1, 4] and order[-1] == 0
    assert set(order[2:5]) == {2, 3, 5} and order.index(2) < order.index(3)
    assert select_for_update(post, 3).tolist() == order[:3]
    assert select_for_update(post, 0).tolist() == []
    assert select_for_update(post, 0.5).tolist() == order[:3]
    assert select_for_update(post, 0.25).tolist() == order[:2]  # 1.5 rounds up to 2
    assert select_for_update(post, 1.0).tolist() == order
    assert select_for_update(post, np.int64(2)).tolist() == [1, 4]


def test_budget_leaves_the_others_untouched():
    rng = np.random.default_rng(5)
    k, n = 3, 40
    state = update_predictions(None, rng.integers(0, k, n), random_confusion(rng, k))
    chosen = select_for_update(state.log_posterior, 0.25)
    preds = rng.integers(0, k, n)
    new = update_predictions(state, preds, random_confusion(rng, k), budget=0.25)
    assert new.evaluated.tolist() == chosen.tolist() and len(chosen) == 10
    others = np.setdiff1d(np.arange(n), chosen)
    np.testing.assert_array_equal(new.log_posterior[others], state.log_posterior[others])
    np.testing.assert_array_equal(new.labels[others], state.labels[others])
    assert not (new.log_posterior[chosen] == state.log_posterior[chosen]).all(axis=1).any()
    # the same update given as the index of the samples the model was run on
    conf = random_confusion(np.random.default_rng(9), k)
    by_budget = update_predictions(state, preds, conf, budget=10)
    by_index = update_predictions(state, preds[chosen], conf, index=chosen)
    np.testing.assert_array_equal(by_budget.labels, by_index.labels)
    np.testing.assert_array_equal(by_budget.log_posterior, by_index.log_posterior)


def test_updater_select_then_update_with_the_index():
    rng = np.random.default_rng(2)
    u = PredictionUpdater(rule="cost_ratio", cost_ratio=3.0)
    u.update(rng.integers(0, 3, 30), C1)
    chosen = u.select(5)
    assert chosen.tolist() == select_for_update(u.log_posterior, 5).tolist()
    state = u.update(rng.integers(0, 3, 5), C2, index=chosen)
    assert state is u.state and u.n_updates == 2
    assert state.evaluated.tolist() == chosen.tolist()


# -- a simulation: CR-10 against replacing ------------------------------------------------------


def _simulate(seed, *, budget=None):
    """Six versions sampled from known confusion matrices (per-class accuracies .55 .. .80).

    Each model's confusion matrix is estimated from 2000 validation samples (diagonal form);
    the data set has 5000 samples and 10 classes. Returns the mean NFR per update step and the
    final accuracy of replacing, max belief and CR-10.
    """
    rng = np.random.default_rng(seed)
    k, n_val, n = 10, 2000, 5000
    accs = []
    for acc in (0.55, 0.60, 0.65, 0.70, 0.75, 0.80):
        per_class = np.clip(acc + rng.uniform(-0.05, 0.05, k), 0, 1)
        conf = np.repeat(((1 - per_class) / (k - 1))[:, None], k, axis=1)
        np.fill_diagonal(conf, per_class)
        accs.append(conf)

    def sample(y, conf):
        cum = conf.cumsum(axis=1)
        return np.minimum((rng.random(len(y))[:, None] > cum[y]).sum(axis=1), k - 1)

    y_val, y = rng.integers(0, k, n_val), rng.integers(0, k, n)
    val_preds = [sample(y_val, c) for c in accs]
    preds = [sample(y, c) for c in accs]
    out = {}
    for name, rule, ratio in (
        ("replace", "replace", None),
        ("max_belief", "max_belief", None),
        ("cr10", "cost_ratio", 10.0),
    ):
        u = PredictionUpdater.from_validation(
            y_val, val_preds, rule=rule, cost_ratio=ratio, form="diagonal", prior="uniform"
        )
        nfr = []
        for t, p in enumerate(preds):
            before = None if u.state is None else u.labels
            u.update(p, budget=None if t == 0 else budget)
            if before is not None:
                nfr.append(negative_flip_rate(y, before, u.labels))
        out[name] = (float(np.mean(nfr)), 1.0 - error_rate(y, u.labels))
    out["first"] = 1.0 - error_rate(y, preds[0])
    out["last"] = 1.0 - error_rate(y, preds[-1])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cost_ratio_ten_gives_far_fewer_negative_flips_than_replacing(seed):
    result = _simulate(seed)
    (nfr_replace, acc_replace), (nfr_cr, acc_cr) = result["replace"], result["cr10"]
    assert acc_replace == pytest.approx(result["last"])  # replacing keeps the last model's
    assert nfr_replace > 0.15  # ~19 % of the samples flip to wrong at each step
    assert nfr_cr < nfr_replace / 20  # ~0.3 %
    assert acc_cr > result["first"] + 0.2  # and the stored labels still improve
    assert result["max_belief"][0] < nfr_replace


def test_cost_ratio_ten_under_a_budget():
    result = _simulate(0, budget=0.3)
    (nfr_replace, _), (nfr_cr, acc_cr) = result["replace"], result["cr10"]
    assert nfr_cr < nfr_replace / 20
    assert acc_cr > result["first"]


# -- state and errors ---------------------------------------------------------------------------


def test_states_are_read_only_and_never_changed_by_an_update():
    state = update_predictions(None, [0, 1], C1[:2, :2] / C1[:2, :2].sum(1, keepdims=True))
    with pytest.raises(ValueError, match="read-only"):
        state.labels[0] = 1
    labels = np.array([0, 1])
    mine = PredictionUpdate(labels, np.log(np.full((2, 2), 0.5)), np.arange(2), np.zeros(2, bool))
    labels[0] = 1
    assert mine.labels.tolist() == [0, 1] and labels.flags.writeable  # copied, not frozen
    before = state.log_posterior.copy()
    update_predictions(state, [1, 1], np.eye(2) * 0.8 + 0.1)
    np.testing.assert_array_equal(state.log_posterior, before)


def test_the_updater_keeps_its_state_on_an_error():
    u = PredictionUpdater.from_validation([0, 1, 1, 0], [[0, 1, 1, 1], [0, 1, 1, 0]])
    u.update([0, 1, 1])
    state = u.state
    with pytest.raises(InputError, match="`budget`"):
        u.update([0, 0, 0], budget=4)
    assert u.state is state and u.n_updates == 1
    u.update([0, 0, 0], budget=1)
    with pytest.raises(InputError, match="`confusion` for update 3"):
        u.update([0, 0, 0])
    assert "n_updates=2" in repr(u)


def test_contradicting_certain_models_are_an_error():
    certain = np.eye(2)
    state = update_predictions(None, [0, 1], certain)
    with pytest.raises(InputError, match="sample 1 has probability zero under every class"):
        update_predictions(state, [0, 0], certain)


K3 = np.full((3, 3), 1 / 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: estimate_confusion([[0, 1]], [0, 1]), "argument `target`"),
        (lambda: estimate_confusion([0.0, 1.0], [0, 1]), "argument `target`"),
        (lambda: estimate_confusion(["a", "b"], [0, 1]), "argument `target`"),
        (lambda: estimate_confusion([True, False], [0, 1]), "argument `target`"),
        (lambda: estimate_confusion(None, [0, 1]), "argument `target`"),
        (lambda: estimate_confusion([0, 1], [[0, 1], [1, 0]]), "argument `preds`.*one-hot"),
        (lambda: estimate_confusion([0, 1], [0, 1, 1]), "argument `preds` to have 2 rows"),
        (lambda: estimate_confusion([0, 1], [0, 3], num_classes=3), r"`preds`.*\[0, 3\).*3"),
        (lambda: estimate_confusion([0, -1], [0, 1]), r"`target`.*class indices.*-1"),
        (lambda: estimate_confusion([0, 1], [[0.5, np.nan], [1.0, 0.0]]), "`preds` to be finite"),
        (
            lambda: estimate_confusion([0, 1], [[0.5, 0.5, 0.0]] * 2, num_classes=2),
            "`preds`.*2 classes",
        ),
        (lambda: estimate_confusion([0, 1], [0, 1], form="dense"), "argument `form`"),
        (lambda: estimate_confusion([0, 1], [0, 1], smoothing=-1.0), "argument `smoothing`"),
        (lambda: estimate_confusion([0, 1], [0, 1], num_classes=1), "argument `num_classes`"),
        (lambda: estimate_confusion([0, 0], [0, 0]), "at least 2 classes.*`num_classes`"),
        (lambda: estimate_confusion([0, 1], [0, 1], sample_weight=[1, -1]), "`sample_weight`"),
        (lambda: estimate_confusion([0, 1], [0, 1], sample_weight=[1]), "`sample_weight`"),
        (
            lambda: estimate_confusion([0, 1], [0, 1], num_classes=3, smoothing=0.0),
            "`target`.*class 2 has no samples",
        ),
        (lambda: class_prior([0, 1], smoothing=math.inf), "argument `smoothing`"),
        (lambda: class_prior([], num_classes=2, smoothing=0.0), "argument `target`"),
        (lambda: label_log_posterior(np.array([0, 1]), [K3]), "argument `predictions`"),
        (lambda: label_log_posterior([], []), "argument `predictions`"),
        (lambda: label_log_posterior([[0]], [K3, K3]), "`predictions` and `confusions`"),
        (
            lambda: label_log_posterior([[0], [0, 1]], [K3, K3]),
            "`predictions\\[1\\]` to have 1 rows",
        ),
        (
            lambda: label_log_posterior([[0]], [[[0.5, 0.4], [0.5, 0.5]]]),
            r"`confusions\[0\]`.*row 0 sums",
        ),
        (
            lambda: label_log_posterior([[0]], [[[1.5, -0.5], [0.5, 0.5]]]),
            r"`confusions\[0\]`.*\[0, 1\]",
        ),
        (
            lambda: label_log_posterior([[0]], [np.ones((2, 3)) / 3]),
            r"`confusions\[0\]` to have shape",
        ),
        (lambda: label_log_posterior([[0], [0]], [K3, np.eye(2)]), r"`confusions\[1\]`.*\(3, 3\)"),
        (lambda: label_log_posterior([[0]], [K3], prior=[0.5, 0.5]), "argument `prior`"),
        (lambda: label_log_posterior([[0]], [K3], prior=[0.5, 0.4, 0.2]), "argument `prior`"),
        (lambda: label_log_posterior([[0]], [K3], prior="flat"), "argument `prior`"),
        (lambda: posterior_entropy([0.5, 0.5]), "argument `log_posterior`"),
        (lambda: posterior_entropy([[np.nan, 0.0]]), "argument `log_posterior`"),
        (lambda: select_for_update([[0.0, -1.0]], 2), "argument `budget`"),
        (lambda: select_for_update([[0.0, -1.0]], -1), "argument `budget`"),
        (lambda: select_for_update([[0.0, -1.0]], 1.5), "argument `budget`"),
        (lambda: select_for_update([[0.0, -1.0]], "0.3"), "argument `budget`"),
        (lambda: select_for_update([[0.0, -1.0]], True), "argument `budget`"),
        (lambda: update_predictions(None, [0], K3, rule="newest"), "argument `rule`"),
        (lambda: update_predictions(None, [0], K3, rule="cost_ratio"), "argument `cost_ratio`"),
        (lambda: update_predictions(None, [0], K3, cost_ratio=10.0), "argument `cost_ratio`"),
        (
            lambda: update_predictions(None, [0], K3, rule="cost_ratio", cost_ratio=0.0),
            "`cost_ratio`",
        ),
        (lambda: update_predictions(None, [0], K3, budget=1), "argument `budget` to be None"),
        (lambda: update_predictions(None, [0], K3, index=[0]), "argument `index` to be None"),
        (lambda: update_predictions("state", [0], K3), "argument `state`"),
        (lambda: update_predictions(None, [0, 5], K3), r"`predictions`.*\[0, 3\)"),
        (lambda: update_predictions(None, [0], np.eye(3) * 2), "argument `confusion`"),
    ],
)
def test_bad_input_is_one_line_naming_the_argument(call, message):
    with pytest.raises(InputError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.fixture
def first_state():
    return update_predictions(None, [0, 1, 2], K3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": [0, 1]}, "argument `predictions` to have 3 rows"),
        ({"confusion": np.eye(2)}, r"argument `confusion` to have shape \(3, 3\)"),
        ({"prior": [1 / 3] * 3}, "argument `prior` to be None after the first update"),
        ({"budget": 1, "index": [0]}, "`budget` and `index`"),
        ({"index": [0, 0], "predictions": [1, 1]}, "argument `index`.*at most once"),
        ({"index": [3], "predictions": [1]}, r"argument `index`.*sample indices in \[0, 3\)"),
        ({"index": [0.5], "predictions": [1]}, "argument `index`"),
        ({"budget": 4}, "argument `budget`"),
    ],
)
def test_bad_input_to_a_later_update(first_state, kwargs, message):
    args = {"predictions": [0, 0, 0], "confusion": K3, **kwargs}
    with pytest.raises(InputError, match=message) as info:
        update_predictions(first_state, args.pop("predictions"), args.pop("confusion"), **args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PredictionUpdater(rule="max-belief"), "argument `rule`"),
        (lambda: PredictionUpdater(form="sparse"), "argument `form`"),
        (lambda: PredictionUpdater(prior="empirical"), "argument `prior`"),
        (lambda: PredictionUpdater(prior=[0.2, 0.2], num_classes=2), "argument `prior`"),
        (lambda: PredictionUpdater(smoothing=-0.1), "argument `smoothing`"),
        (lambda: PredictionUpdater(num_classes=1), "argument `num_classes`"),
        (lambda: PredictionUpdater(rule="cost_ratio"), "argument `cost_ratio`"),
        (lambda: PredictionUpdater().fit([0, 1], np.array([0, 1])), "argument `predictions`"),
        (lambda: PredictionUpdater().fit([0, 1], [[0, 1, 1]]), r"`predictions\[0\]` to have 2"),
        (lambda: PredictionUpdater(prior="validation").update([0], K3), "prior='validation'"),
        (lambda: PredictionUpdater().update([0]), "argument `confusion` for update 1"),
        (lambda: PredictionUpdater().labels, "no stored predictions yet"),
        (lambda: PredictionUpdater().select(1), "no stored predictions yet"),
        (
            lambda: PredictionUpdate([0, 5], np.zeros((2, 2)), [0], np.zeros(2, bool)),
            r"`PredictionUpdate.labels` to hold class indices in \[0, 2\)",
        ),
        (
            lambda: PredictionUpdate([0], np.zeros((2, 2)), [0], np.zeros(2, bool)),
            "`PredictionUpdate.labels` to have 2 rows",
        ),
        (
            lambda: PredictionUpdate([0, 1], np.zeros((2, 2)), [0], np.zeros(2)),
            "`PredictionUpdate.changed`",
        ),
        (
            lambda: PredictionUpdate([0, 1], np.zeros((2, 2)), [2], np.zeros(2, bool)),
            "`PredictionUpdate.evaluated`",
        ),
    ],
)
def test_bad_updater_input(make, message):
    with pytest.raises(InputError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_fit_then_a_different_number_of_classes_is_refused():
    u = PredictionUpdater()
    u.update([0, 1], np.eye(2) * 0.8 + 0.1)  # K = 2 from here on
    with pytest.raises(InputError, match=r"`target` to hold class indices in \[0, 2\), but got 2"):
        u.fit([0, 1, 2], [[0, 1, 2]])


def test_from_validation_estimates_each_model_and_the_prior():
    y = [0, 0, 1, 2]
    preds = [[0, 1, 1, 2], np.eye(3)[[0, 0, 1, 2]].astype(float)]
    u = PredictionUpdater.from_validation(y, preds, form="diagonal", smoothing=0.5)
    assert len(u.confusions) == 2 and u.num_classes == 3
    for conf, p in zip(u.confusions, [[0, 1, 1, 2], [0, 0, 1, 2]], strict=True):
        np.testing.assert_allclose(conf, ref_confusion(y, p, 3, 0.5, "diagonal"))
    np.testing.assert_allclose(u.prior, [(2 + 1 / 6) / 4.5, (1 + 1 / 6) / 4.5, (1 + 1 / 6) / 4.5])
    assert not u.prior.flags.writeable and not u.confusions[0].flags.writeable
    uniform = PredictionUpdater(prior="uniform").fit(y, preds)
    np.testing.assert_allclose(uniform.prior, [1 / 3] * 3)


# -- prediction files ---------------------------------------------------------------------------


def _files(tmp_path, *, seed=0, n_val=300, n=200, labels=True, k=4):
    """A stored model (60 %) and a new one (75 %): validation and data-set files."""
    rng = np.random.default_rng(seed)

    def model(y, acc):
        right = rng.random(len(y)) < acc
        return np.where(right, y, (y + rng.integers(1, k, len(y))) % k)

    y_val, y = rng.integers(0, k, n_val), rng.integers(0, k, n)
    paths = {}
    for name, acc in (("old", 0.6), ("new", 0.75)):
        pd.DataFrame({"label": y_val, "pred": model(y_val, acc)}).to_csv(
            tmp_path / f"{name}_val.csv", index=False
        )
        test = pd.DataFrame({"id": np.arange(n) * 10})
        if labels:
            test["label"] = y
        test["pred"] = model(y, acc)
        if name == "new":
            test = test.sample(frac=1.0, random_state=1)  # another row order: joined on id
        test.to_parquet(tmp_path / f"{name}.parquet", index=False)
        paths[name] = tmp_path / f"{name}.parquet"
        paths[f"{name}_val"] = tmp_path / f"{name}_val.csv"
    return paths, y


def test_update_prediction_files_against_the_library(tmp_path):
    paths, y = _files(tmp_path)
    out = tmp_path / "updated.parquet"
    result = update_prediction_files(
        [paths["old_val"], paths["new_val"]],
        paths["old"],
        paths["new"],
        rule="cost_ratio",
        cost_ratio=2.0,
        budget=0.5,
        out=out,
    )
    val_old, val_new = pd.read_csv(paths["old_val"]), pd.read_csv(paths["new_val"])
    old = pd.read_parquet(paths["old"])
    new = pd.read_parquet(paths["new"]).set_index("id").loc[old["id"]]
    prior = class_prior(np.concatenate([val_old["label"], val_new["label"]]), num_classes=4)
    u = PredictionUpdater.from_validation(  # both validation files hold the same labels here
        val_old["label"],
        [val_old["pred"], val_new["pred"]],
        rule="cost_ratio",
        cost_ratio=2.0,
        num_classes=4,
        prior=prior,
    )
    u.update(old["pred"].to_numpy())
    state = u.update(new["pred"].to_numpy(), budget=0.5)
    np.testing.assert_array_equal(result.state.labels, state.labels)
    np.testing.assert_allclose(result.state.posterior, state.posterior, rtol=1e-12)
    written = pd.read_parquet(out)
    assert list(written.columns[:5]) == ["id", "label", "pred", "changed", "evaluations"]
    assert [c for c in written.columns if c.startswith("posterior_")] == [
        f"posterior_{c}" for c in range(4)
    ]
    assert written["id"].tolist() == old["id"].tolist()
    assert written["pred"].tolist() == state.labels.tolist()
    assert written["changed"].tolist() == (state.labels != old["pred"].to_numpy()).tolist()
    assert (
        sorted(set(written["evaluations"])) == [1, 2] and (written["evaluations"] == 2).sum() == 100
    )
    assert result.evaluated == (200, 100)
    m = result.metrics
    assert list(m.index) == ["stored", "replace", "cost-ratio 2"]
    assert m.loc["stored", "error_rate"] == error_rate(y, old["pred"])
    assert m.loc["cost-ratio 2", "negative_flip_rate"] == negative_flip_rate(
        y, old["pred"], state.labels
    )
    assert m.loc["replace", "changed"] == int((result.baseline.labels != old["pred"]).sum())
    assert m.loc["cost-ratio 2", "negative_flip_rate"] < m.loc["replace", "negative_flip_rate"]
    # the written file is a prediction file: graceful compare reads it
    again = compare_files(paths["old"], out)
    assert again.metrics["negative_flip_rate"] == m.loc["cost-ratio 2", "negative_flip_rate"]


def test_update_prediction_files_without_labels_scores_and_csv(tmp_path):
    paths, _ = _files(tmp_path, labels=False)
    rng = np.random.default_rng(4)
    new = pd.read_parquet(paths["new"])
    scores = np.eye(4)[new["pred"]] * 0.7 + rng.random((len(new), 4)) * 0.1
    probs = scores / scores.sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"id": new["id"], **{f"prob_{c}": probs[:, c] for c in range(4)}})
    frame.to_parquet(tmp_path / "new_scores.parquet", index=False)
    out = tmp_path / "updated.csv"
    result = update_prediction_files(
        [paths["old_val"], paths["new_val"]],
        paths["old"],
        tmp_path / "new_scores.parquet",
        prior="uniform",
        form="diagonal",
        posterior=False,
        out=out,
    )
    same = update_prediction_files(
        [paths["old_val"], paths["new_val"]],
        paths["old"],
        paths["new"],
        prior="uniform",
        form="diagonal",
    )
    assert result.metrics is None and same.out is None
    np.testing.assert_array_equal(result.state.labels, same.state.labels)  # top-1 of scores
    written = pd.read_csv(out)
    assert list(written.columns) == ["id", "pred", "changed", "evaluations"]
    assert written["pred"].tolist() == result.state.labels.tolist()


def test_update_prediction_files_refuses_bad_input(tmp_path):
    paths, _ = _files(tmp_path)
    vals = [paths["old_val"], paths["new_val"]]
    cases = [
        (dict(val=vals[:1]), "one validation file per model version"),
        (dict(out=tmp_path / "x.txt"), "argument `out`"),
        (dict(val=[paths["old"], tmp_path / "nolabel.csv"]), "nolabel.csv"),
        (dict(new=[]), "argument `new`"),
        (dict(val=str(vals[0])), "argument `val`"),
        (dict(prior="flat"), "argument `prior`"),
        (dict(budget=1.5), "argument `budget`"),
    ]
    pd.DataFrame({"pred": [0, 1]}).to_csv(tmp_path / "nolabel.csv", index=False)
    for change, message in cases:
        args = dict(val=vals, stored=paths["old"], new=paths["new"], out=tmp_path / "o.parquet")
        args.update(change)
        with pytest.raises(InputError, match=message) as info:
            update_prediction_files(args.pop("val"), args.pop("stored"), args.pop("new"), **args)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "o.parquet").exists()


# -- the command line ---------------------------------------------------------------------------


def _cli(*args):
    return runner.invoke(app, ["update-predictions", *map(str, args)])


def test_cli_end_to_end(tmp_path):
    paths, _ = _files(tmp_path)
    out = tmp_path / "updated.parquet"
    args = [
        "--val",
        paths["old_val"],
        "--val",
        paths["new_val"],
        "--stored",
        paths["old"],
        "--new",
        paths["new"],
        "--rule",
        "cost-ratio",
        "--cost-ratio",
        "2",
        "--budget",
        "0.5",
        "--out",
        out,
    ]
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    lib = update_prediction_files(
        [paths["old_val"], paths["new_val"]],
        paths["old"],
        paths["new"],
        rule="cost_ratio",
        cost_ratio=2.0,
        budget=0.5,
    )
    assert pd.read_parquet(out)["pred"].tolist() == lib.state.labels.tolist()
    for name in ("stored", "replace", "cost-ratio 2"):
        assert name in result.stdout
    row = lib.metrics.loc["cost-ratio 2"]
    assert f"{100 * row['negative_flip_rate']:.2f}%" in result.stdout
    assert f"written: {out}" in result.stdout.replace("\n", "")
    counted = _cli(*args[:-2], "--budget", "50", "--out", tmp_path / "b.jsonl")
    assert counted.exit_code == 0, counted.output
    assert "re-evaluated per new version: 50" in counted.stdout
    assert len(pd.read_json(tmp_path / "b.jsonl", lines=True)) == 200


def test_cli_without_labels(tmp_path):
    paths, _ = _files(tmp_path, labels=False)
    result = _cli(
        "--val",
        paths["old_val"],
        "--val",
        paths["new_val"],
        "--stored",
        paths["old"],
        "--new",
        paths["new"],
        "--out",
        tmp_path / "u.csv",
    )
    assert result.exit_code == 0, result.output
    assert "no labels" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--budget": "lots"}, "--budget: expected a fraction in [0, 1] (0.3) or a count"),
        ({"--budget": "1.5"}, "argument `budget`"),
        ({"--cost-ratio": "10"}, "argument `cost_ratio` to be None with rule='max_belief'"),
        ({"--rule": "cost-ratio"}, "argument `cost_ratio`"),
        ({"--out": "updated.txt"}, "argument `out`"),
        ({"--out": " "}, "--out must not be empty"),
        ({"--stored": "missing.parquet"}, "missing.parquet"),
        ({"--smoothing": "-1"}, "argument `smoothing`"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    paths, _ = _files(tmp_path)
    options = {"--stored": paths["old"], "--new": paths["new"], "--out": "updated.parquet"}
    options.update(change)
    args = ["--val", paths["old_val"], "--val", paths["new_val"]]
    for key, value in options.items():
        args += [key, value]
    result = _cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("graceful update-predictions: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "updated.parquet").exists()


def test_cli_val_count_mismatch(tmp_path):
    paths, _ = _files(tmp_path)
    result = _cli(
        "--val",
        paths["old_val"],
        "--stored",
        paths["old"],
        "--new",
        paths["new"],
        "--out",
        tmp_path / "u.parquet",
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "graceful update-predictions: error: Expected one validation file per model version "
        "(2: the stored model and 1 new), but got 1 in argument `val`\n"
    )
