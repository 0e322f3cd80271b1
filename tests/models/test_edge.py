import pytest
import torch
from torch import nn

from graceful.embedding import EmbeddingOf, WithEmbedding
from graceful.errors import InputError
from graceful.models import EdgeCNN, SmallCNN, count_parameters


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("block", ["conv", "dwsep", "inverted"])
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize(("size", "embedding_dim"), [(28, None), (8, 16)])
def test_shapes(block, depth, size, embedding_dim):
    model = EdgeCNN(width=4, depth=depth, block=block, num_classes=3, embedding_dim=embedding_dim)
    x = torch.randn(2, 1, size, size)
    dim = 16 if embedding_dim is None else embedding_dim
    assert model.embedding_dim == dim
    assert model.embed(x).shape == (2, dim)
    assert model(x).shape == (2, 3)


def test_feature_map_sizes_28_and_8():
    model = EdgeCNN(width=2)
    for size, expected in ((28, [14, 7, 3]), (8, [4, 2, 1])):
        h = torch.zeros(1, 1, size, size)
        sides = []
        for stage in model.features:
            h = stage(h)
            sides.append(h.shape[-1])
        assert sides == expected


def test_rgb_input_and_cosine_head():
    model = EdgeCNN(width=2, block="dwsep", in_channels=3, head="cosine", scale=5.0)
    logits = model(torch.randn(2, 3, 28, 28))
    assert logits.shape == (2, 10)
    assert logits.abs().max() <= 5.0 + 1e-5


def test_forward_is_head_of_embed_and_wrappers_work():
    model = EdgeCNN(width=2, depth=2, block="inverted", embedding_dim=8).eval()
    x = torch.randn(3, 1, 28, 28)
    out = WithEmbedding(model)(x)
    torch.testing.assert_close(out.logits, model(x))
    torch.testing.assert_close(out.embedding, model.embed(x))
    torch.testing.assert_close(EmbeddingOf(model)(x), model.embed(x))


def test_parameter_count_by_hand():
    # width 2, depth 1, conv: Conv3x3 weights c_out * c_in * 9, BN weight + bias 2 * c_out
    convs = 2 * 1 * 9 + 4 * 2 * 9 + 8 * 4 * 9
    bns = 2 * (2 + 4 + 8)
    assert count_parameters(EdgeCNN(width=2)) == convs + bns + (8 * 10 + 10)
    with_projection = EdgeCNN(width=2, embedding_dim=64)
    assert count_parameters(with_projection) == convs + bns + (8 * 64 + 64) + (64 * 10 + 10)
    # dwsep: the stem is a plain conv; then depthwise c_in * 9 + BN, pointwise c_in * c_out + BN
    dwsep = (2 * 1 * 9 + 2 * 2) + (2 * 9 + 2 * 2 + 2 * 4 + 2 * 4) + (4 * 9 + 2 * 4 + 4 * 8 + 2 * 8)
    assert count_parameters(EdgeCNN(width=2, block="dwsep")) == dwsep + (8 * 10 + 10)


def test_conv_depth_2_is_small_cnn():
    edge, small = EdgeCNN(width=3, depth=2, embedding_dim=5), SmallCNN(width=3, embedding_dim=5)
    assert sum(isinstance(m, nn.Conv2d) for m in edge.modules()) == 6
    edge_state, small_state = edge.state_dict(), small.state_dict()
    assert [t.shape for t in edge_state.values()] == [t.shape for t in small_state.values()]
    edge.load_state_dict(dict(zip(edge_state, small_state.values(), strict=True)))
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(edge.eval()(x), small.eval()(x))


def test_stem_is_a_plain_conv_and_dwsep_blocks_are_depthwise():
    model = EdgeCNN(width=4, depth=2, block="dwsep")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].groups == 1
    assert convs[0].in_channels == 1
    assert convs[0].out_channels == 4
    depthwise = [c for c in convs[1:] if c.kernel_size == (3, 3)]
    pointwise = [c for c in convs[1:] if c.kernel_size == (1, 1)]
    assert len(depthwise) == len(pointwise) == 5
    assert all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    assert [c.out_channels for c in pointwise] == [4, 8, 8, 16, 16]


def test_inverted_residual_adds_its_input_when_shapes_match():
    model = EdgeCNN(width=4, depth=2, block="inverted").eval()
    same, changing = model.features[0][1], model.features[1][0]
    assert same.residual
    assert not changing.residual
    last_bn = same.block[-1]
    nn.init.zeros_(last_bn.weight)
    nn.init.zeros_(last_bn.bias)
    x = torch.randn(2, 4, 7, 7)
    torch.testing.assert_close(same(x), x)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width": 0}, "width"),
        ({"width": 2.0}, "width"),
        ({"depth": 0}, "depth"),
        ({"depth": True}, "depth"),
        ({"block": "mbconv"}, "block"),
        ({"num_classes": 0}, "num_classes"),
        ({"in_channels": -1}, "in_channels"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"head": "arc"}, "head"),
        ({"scale": 0.0}, "scale"),
        ({"scale": True}, "scale"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(InputError, match=f"`{name}`"):
        EdgeCNN(**kwargs)
