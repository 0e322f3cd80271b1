import pytest
import torch

from graceful.embedding import (
    CosineClassifier,
    EmbeddingOf,
    EmbeddingOutput,
    WithEmbedding,
    classifier_logits,
)
from graceful.errors import InputError
from graceful.models import EmbeddingMLP, SmallCNN


def test_default_cnn_is_unchanged_by_the_embedding_options():
    torch.manual_seed(0)
    plain = SmallCNN(width=4)
    torch.manual_seed(0)
    again = SmallCNN(width=4, embedding_dim=None, head="linear")
    for a, b in zip(plain.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert isinstance(plain.project, torch.nn.Identity)


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_with_embedding_returns_the_forward_logits_and_the_embedding(head):
    torch.manual_seed(0)
    model = SmallCNN(width=2, num_classes=5, embedding_dim=6, head=head).eval()
    x = torch.randn(3, 1, 28, 28)
    out = WithEmbedding(model)(x)
    assert isinstance(out, EmbeddingOutput)
    torch.testing.assert_close(out.logits, model(x))
    torch.testing.assert_close(out.embedding, model.embed(x))
    torch.testing.assert_close(EmbeddingOf(model)(x), model.embed(x))
    assert out.embedding.shape == (3, 6)
    # the wrapper trains the wrapped model's parameters
    assert {id(p) for p in WithEmbedding(model).parameters()} == {id(p) for p in model.parameters()}


def test_cosine_head_is_scaled_cosine_similarity():
    head = CosineClassifier(3, 2, scale=5.0)
    e = torch.tensor([[1.0, 2.0, 2.0]])
    expected = 5.0 * torch.nn.functional.cosine_similarity(e, head.weight)
    torch.testing.assert_close(head(e)[0], expected)
    assert head.bias is None
    torch.testing.assert_close(classifier_logits(e, head.weight, head="cosine", scale=5.0), head(e))


def test_embedding_mlp_projects_into_the_target_dimension():
    model = EmbeddingMLP(10, 4, 3, hidden=8, head="cosine")
    x = torch.randn(5, 10)
    assert model.embed(x).shape == (5, 4)
    torch.testing.assert_close(model(x), model.head(model.embed(x)))


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: SmallCNN(width=2, embedding_dim=0), "embedding_dim"),
        (lambda: SmallCNN(width=2, head="arc"), "head"),
        (lambda: CosineClassifier(3, 2, scale=0), "scale"),
        (lambda: CosineClassifier(0, 2), "in_features"),
        (lambda: EmbeddingMLP(4, 0, 2), "embedding_dim"),
        (lambda: EmbeddingMLP(4, 2, 2, hidden=-1), "hidden"),
        (lambda: WithEmbedding(torch.nn.Linear(2, 2)), "model"),
        (lambda: EmbeddingOf("not a model"), "model"),
        (lambda: classifier_logits(torch.ones(1, 2), torch.ones(2, 2), head="arc"), "head"),
    ],
)
def test_bad_arguments_name_them(factory, name):
    with pytest.raises(InputError, match=f"`{name}`"):
        factory()
