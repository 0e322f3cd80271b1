import pytest
import torch

from graceful.errors import InputError
from graceful.models import MLPHead, SmallCNN


def test_cnn_shapes_and_parameter_count_grows_with_width():
    small, large = SmallCNN(width=8), SmallCNN(width=16)
    x = torch.randn(4, 1, 28, 28)
    assert small(x).shape == (4, 10)
    n_small = sum(p.numel() for p in small.parameters())
    n_large = sum(p.numel() for p in large.parameters())
    assert n_large > 3 * n_small


def test_linear_head_is_a_single_layer():
    head = MLPHead(6, 2, hidden=0)
    assert isinstance(head.net, torch.nn.Linear)


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: SmallCNN(width=0), "width"),
        (lambda: SmallCNN(num_classes=True), "num_classes"),
        (lambda: MLPHead(0, 2), "in_features"),
        (lambda: MLPHead(3, 2, hidden=-1), "hidden"),
        (lambda: MLPHead(3, 2, dropout=1.0), "dropout"),
    ],
)
def test_bad_arguments_name_themselves(factory, name):
    with pytest.raises(InputError, match=name):
        factory()
