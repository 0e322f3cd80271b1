"""class_prototypes: the prototype head of BCT's influence loss."""

import pytest
import torch

from graceful.errors import InputError
from graceful.losses import BCTInfluenceLoss, class_prototypes


def test_class_prototypes_are_unit_class_means_of_the_old_embeddings():
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(60, 5, generator=g, dtype=torch.float64)
    labels = torch.arange(60) % 4
    protos = class_prototypes(emb, labels, 4)
    for c in range(4):
        mean = emb[labels == c].mean(0)
        torch.testing.assert_close(protos[c], mean / mean.norm())
    assert not protos.requires_grad


def test_a_prototype_head_pulls_new_embeddings_towards_their_class_direction():
    protos = class_prototypes(torch.tensor([[3.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]), 2)
    loss = BCTInfluenceLoss(protos, head="cosine", scale=8.0)
    aligned = loss(torch.tensor([[5.0, 0.1]]), torch.tensor([0]))
    longer = loss(torch.tensor([[50.0, 1.0]]), torch.tensor([0]))
    torch.testing.assert_close(aligned, longer)  # the norm does not help a cosine head
    assert loss(torch.tensor([[0.1, 5.0]]), torch.tensor([0])) > aligned


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([0, 0, 2]), "class 1 has no sample"),
        (torch.tensor([0, 1, 3]), r"classes in \[0, 3\)"),
        (torch.tensor([0, 1]), r"shape \(3,\)"),
    ],
)
def test_class_prototypes_refuse_bad_labels(labels, message):
    with pytest.raises(InputError, match=message):
        class_prototypes(torch.ones(3, 2), labels, 3)
