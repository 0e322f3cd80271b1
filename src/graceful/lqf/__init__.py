"""Linearized fine-tuning (LQF; Achille et al., CVPR 2021): the network as a linear model.

:class:`LinearizedModel` is the first-order Taylor expansion of a pre-trained network
around its weights, ``f(x; w0) + J_w f(x; w0) (w - w0)``, computed with forward-mode
Jacobian-vector products; :func:`to_leaky_relu` swaps ReLU/ReLU6 for leaky-ReLU first;
:func:`kfac_factors`, :func:`precondition` and the :class:`KFAC` optimizer give the
Kronecker-factored curvature step; :func:`finetune` trains with the squared loss
(:func:`squared_loss`) or cross-entropy and SGD, Adam or K-FAC; :func:`finetune_exact`
trains to convergence with K-FAC and the exact step of the quadratic objective, no learning
rate (:class:`ExactConfig`, :class:`ExactHistory`, :func:`curvature`,
:func:`adapt_damping`); :func:`predict` is
:func:`graceful.training.predict`.

Example:
    >>> import torch
    >>> from graceful.lqf import LinearizedModel, to_leaky_relu
    >>> net = to_leaky_relu(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
    ...                                         torch.nn.Linear(4, 2)))
    >>> lin = LinearizedModel(net)
    >>> x = torch.randn(5, 3)
    >>> torch.allclose(lin(x), net(x))  # at w = w0 the expansion is the network
    True
"""

from graceful.training import predict

from .exact import ExactConfig, ExactHistory, adapt_damping, curvature, finetune_exact
from .finetune import FinetuneConfig, SquaredLoss, finetune, squared_loss
from .kfac import KFAC, KFACFactors, kfac_factors, precondition
from .linearize import LinearizedModel, to_leaky_relu

__all__ = [
    "KFAC",
    "ExactConfig",
    "ExactHistory",
    "FinetuneConfig",
    "KFACFactors",
    "LinearizedModel",
    "SquaredLoss",
    "adapt_damping",
    "curvature",
    "finetune",
    "finetune_exact",
    "kfac_factors",
    "precondition",
    "predict",
    "squared_loss",
    "to_leaky_relu",
]
