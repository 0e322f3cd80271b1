"""BCT influence, embedding regression and the combined compatible-embedding objective."""

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from graceful.embedding import EmbeddingOutput
from graceful.errors import InputError
from graceful.losses import (
    BCTInfluenceLoss,
    CompatibleEmbeddingLoss,
    EmbeddingRegressionLoss,
    synthesize_classifier,
)
from graceful.losses.functional import bct_influence_loss, embedding_regression_loss

N, D, C = 7, 5, 4


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return {
        "emb": torch.randn(N, D, generator=g, dtype=torch.float64),
        "old_emb": torch.randn(N, D, generator=g, dtype=torch.float64),
        "weight": torch.randn(C, D, generator=g, dtype=torch.float64),
        "bias": torch.randn(C, generator=g, dtype=torch.float64),
        "target": torch.randint(0, C, (N,), generator=g),
        "logits": torch.randn(N, 6, generator=g, dtype=torch.float64),
    }


def reference_influence(emb, target, weight, bias, head, scale):
    """Loops and explicit formulas, no shared code."""
    out = []
    for e, y in zip(emb, target, strict=True):
        if head == "linear":
            z = torch.stack([w @ e + b for w, b in zip(weight, bias, strict=True)])
        else:
            z = torch.stack([scale * (w @ e) / (w.norm() * e.norm()) for w in weight])
        out.append(torch.logsumexp(z, 0) - z[y])
    return torch.stack(out)


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_influence_matches_reference_and_module(data, head):
    args = (data["emb"], data["target"], data["weight"], data["bias"])
    per_sample = bct_influence_loss(*args, head=head, scale=7.0, reduction="none")
    expected = reference_influence(*args, head, 7.0)
    torch.testing.assert_close(per_sample, expected, rtol=1e-12, atol=1e-12)
    module = BCTInfluenceLoss(data["weight"], data["bias"], head=head, scale=7.0)
    torch.testing.assert_close(module(data["emb"], data["target"]), expected.mean())
    total = bct_influence_loss(*args, head=head, scale=7.0, reduction="sum")
    mean = bct_influence_loss(*args, head=head, scale=7.0)
    torch.testing.assert_close(total, mean * N)


def test_influence_gradients_reach_embeddings_only(data):
    emb = data["emb"].clone().requires_grad_(True)
    weight = data["weight"].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e: bct_influence_loss(e, data["target"], data["weight"], data["bias"]), (emb,)
    )
    bct_influence_loss(emb, data["target"], weight).backward()
    assert weight.grad is None
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_influence_module_holds_a_frozen_copy(data):
    weight = data["weight"].clone()
    loss = BCTInfluenceLoss(weight)
    weight.zero_()  # the caller's tensor changes: the loss keeps its copy
    assert loss.old_weight.abs().sum() > 0
    assert list(loss.parameters()) == []
    assert loss.to(torch.float32).old_weight.dtype == torch.float32


def test_embedding_regression(data):
    new, old = data["emb"], data["old_emb"]
    expected = ((new - old) ** 2).sum(1)
    torch.testing.assert_close(embedding_regression_loss(new, old, reduction="none"), expected)
    torch.testing.assert_close(EmbeddingRegressionLoss()(new, old), expected.mean())
    unit = embedding_regression_loss(new, old, normalize=True, reduction="none")
    cosine = F.cosine_similarity(new, old)
    torch.testing.assert_close(unit, 2 - 2 * cosine)  # |a - b|^2 = 2 - 2 cos for unit vectors
    grad_new = new.clone().requires_grad_(True)
    old_leaf = old.clone().requires_grad_(True)
    embedding_regression_loss(grad_new, old_leaf).backward()
    assert old_leaf.grad is None


def test_compatible_loss_is_the_weighted_sum(data):
    influence = BCTInfluenceLoss(data["weight"], data["bias"])
    regression = EmbeddingRegressionLoss()
    logits = data["logits"][:, :C]
    out = EmbeddingOutput(logits, data["emb"])
    loss = CompatibleEmbeddingLoss(
        influence=influence,
        regression=regression,
        lam_influence=0.5,
        lam_regression=2.0,
        ce_weight=0.3,
    )
    expected = (
        0.3 * F.cross_entropy(logits, data["target"])
        + 0.5 * influence(data["emb"], data["target"])
        + 2.0 * regression(data["emb"], data["old_emb"])
    )
    torch.testing.assert_close(loss(out, data["old_emb"], data["target"]), expected)
    plain = CompatibleEmbeddingLoss()
    torch.testing.assert_close(
        plain(out, None, data["target"]), F.cross_entropy(logits, data["target"])
    )


def test_several_influence_terms_add_up_one_per_earlier_classifier(data):
    # A chain's growing set of constraints: one frozen classifier per earlier version.
    g = torch.Generator().manual_seed(1)
    older = BCTInfluenceLoss(torch.randn(C, D, generator=g, dtype=torch.float64))
    newer = BCTInfluenceLoss(data["weight"], data["bias"])
    logits = data["logits"][:, :C]
    out = EmbeddingOutput(logits, data["emb"])
    both = CompatibleEmbeddingLoss(influence=[older, newer], lam_influence=0.4)
    expected = (
        F.cross_entropy(logits, data["target"])
        + 0.4 * older(data["emb"], data["target"])
        + 0.4 * newer(data["emb"], data["target"])
    )
    torch.testing.assert_close(both(out, None, data["target"]), expected)
    assert isinstance(both.influence, torch.nn.ModuleList) and len(both.influence) == 2
    assert len(list(both.buffers())) == len(list(older.buffers())) + len(list(newer.buffers()))
    one = CompatibleEmbeddingLoss(influence=[newer], lam_influence=0.4)
    single = CompatibleEmbeddingLoss(influence=newer, lam_influence=0.4)
    assert single.influence is newer
    torch.testing.assert_close(one(out, None, data["target"]), single(out, None, data["target"]))
    from_modules = CompatibleEmbeddingLoss(influence=torch.nn.ModuleList([older, newer]))
    torch.testing.assert_close(
        from_modules(out, None, data["target"]),
        CompatibleEmbeddingLoss(influence=[older, newer])(out, None, data["target"]),
    )


def test_synthesize_classifier_keeps_trained_rows_and_fills_new_classes():
    weight = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # row norms 3 and 1: mean 2
    bias = torch.tensor([1.0, 3.0])
    emb = torch.tensor([[1.0, 1.0], [3.0, 3.0], [9.0, 9.0], [0.0, -4.0]])
    labels = torch.tensor([2, 2, 0, 3])
    full_w, full_b = synthesize_classifier(weight, bias, emb, labels, 4, old_classes=[1, 0])
    torch.testing.assert_close(full_w[1], weight[0])
    torch.testing.assert_close(full_w[0], weight[1])
    s = 2**0.5
    torch.testing.assert_close(full_w[2], torch.tensor([s, s]))  # mean (2, 2) rescaled to norm 2
    torch.testing.assert_close(full_w[3], torch.tensor([0.0, -2.0]))
    torch.testing.assert_close(full_b, torch.tensor([3.0, 1.0, 2.0, 2.0]))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda d: bct_influence_loss(d["emb"], d["target"], d["weight"][:, :3]), "old_weight"),
        (
            lambda d: bct_influence_loss(d["emb"], d["target"], d["weight"], d["bias"][:2]),
            "old_bias",
        ),
        (lambda d: bct_influence_loss(d["emb"], d["target"], d["weight"], head="arc"), "head"),
        (
            lambda d: bct_influence_loss(
                d["emb"], d["target"], d["weight"], head="cosine", scale=0.0
            ),
            "scale",
        ),
        (lambda d: bct_influence_loss(d["emb"][0], d["target"], d["weight"]), "new_embeddings"),
        (lambda d: bct_influence_loss(d["emb"], d["target"][:3], d["weight"]), "target"),
        (
            lambda d: bct_influence_loss(d["emb"], d["target"], d["weight"], reduction="avg"),
            "reduction",
        ),
        (lambda d: BCTInfluenceLoss(d["weight"][0]), "old_weight"),
        (lambda d: embedding_regression_loss(d["emb"], d["old_emb"][:3]), "old_embeddings"),
        (lambda d: embedding_regression_loss(d["emb"], d["old_emb"], normalize=1), "normalize"),
        (
            lambda d: CompatibleEmbeddingLoss(regression=EmbeddingRegressionLoss())(
                EmbeddingOutput(d["logits"], d["emb"]), None, d["target"]
            ),
            "old_embeddings",
        ),
        (lambda d: CompatibleEmbeddingLoss()(d["logits"], None, d["target"]), "outputs"),
        (lambda d: CompatibleEmbeddingLoss(influence=EmbeddingRegressionLoss()), "influence"),
        (
            lambda d: CompatibleEmbeddingLoss(regression=EmbeddingRegressionLoss(reduction="sum")),
            "regression",
        ),
        (lambda d: CompatibleEmbeddingLoss(lam_influence=-1.0), "lam_influence"),
        (lambda d: CompatibleEmbeddingLoss(influence=[]), "at least one"),
        (
            lambda d: CompatibleEmbeddingLoss(
                influence=[BCTInfluenceLoss(d["weight"]), EmbeddingRegressionLoss()]
            ),
            r"influence\[1\]",
        ),
        (
            lambda d: CompatibleEmbeddingLoss(
                influence=[BCTInfluenceLoss(d["weight"], reduction="sum")]
            ),
            r"influence\[0\]",
        ),
        (
            lambda d: synthesize_classifier(d["weight"], None, d["emb"], d["target"] * 0, C + 1),
            "class 4",
        ),
        (
            lambda d: synthesize_classifier(
                d["weight"], None, d["emb"], d["target"], C, old_classes=[0, 0, 1, 2]
            ),
            "old_classes",
        ),
        (
            lambda d: synthesize_classifier(d["weight"], None, d["emb"][:, :2], d["target"], C),
            "old_embeddings",
        ),
    ],
)
def test_bad_input_names_the_argument(data, call, match):
    with pytest.raises(InputError, match=match):
        call(data)
