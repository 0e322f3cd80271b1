r"""FastFill: a gallery transformation that also says which items to backfill first.

Jaeckle et al., "FastFill: Efficient compatible model update" (ICLR 2023). Like
:func:`~graceful.training.fit_transformation` it learns :math:`h` with
:math:`h(e^{old}(x)) \approx e^{new}(x)`, applied to the stored old vectors so that the
gallery serves new-model queries at once; a second output :math:`\sigma(e^{old})`, a
log-variance, is trained with it under the heteroscedastic loss

.. math:: \ell_i = \tfrac12 e^{-\sigma_i} L_i + \tfrac12 \sigma_i,
   \qquad L_i = \lVert h(e^{old}_i) - e^{new}_i \rVert^2
   + \mathrm{CE}_{\epsilon}\big(W^{new} h(e^{old}_i), y_i\big)

(label-smoothed cross-entropy through the new model's frozen classifier). At its optimum
:math:`\sigma_i = \log L_i`: the items whose transformed vector is worst get the largest
:math:`\sigma`, so backfilling them first (a ``ScoreOrder`` on
:meth:`FastFillTransformation.uncertainty`, highest first) repairs the gallery fastest.
:math:`\sigma` needs only the stored old vector: no model runs on the gallery to order it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from graceful._validation import check_choice, check_int, check_real
from graceful.errors import InputError

from .transformation import _paired

__all__ = ["FastFillTransformation", "fit_fastfill"]


class FastFillTransformation(nn.Module):
    r"""An MLP ``old -> new`` with a log-variance head.

    ``forward(x)`` returns :math:`h(x)`; :meth:`uncertainty` returns :math:`\sigma(x)`.

    Args:
        old_dim: input (old embedding) dimension.
        new_dim: output (new embedding) dimension.
        hidden: hidden units.
        normalize: L2-normalise the inputs (and, in :meth:`both` and :meth:`forward`,
            the transformed vectors), as the model was trained.
        sigma_from: what the log-variance head reads: ``"hidden"`` (the MLP's hidden
            layer, the default here: it can tell regions of the old space apart that the
            output cannot) or ``"output"`` (a ``Linear(new_dim -> 1)`` on the transformed
            vector, as in the paper's code).

    Example:
        >>> t = FastFillTransformation(4, 3, hidden=8)
        >>> t(torch.zeros(2, 4)).shape, t.uncertainty(torch.zeros(2, 4)).shape
        (torch.Size([2, 3]), torch.Size([2]))
    """

    def __init__(
        self,
        old_dim: int,
        new_dim: int,
        hidden: int = 512,
        normalize: bool = False,
        sigma_from: str = "hidden",
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.sigma_from = check_choice("sigma_from", sigma_from, ("hidden", "output"))
        self.trunk = nn.Sequential(nn.Linear(old_dim, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, new_dim)
        self.log_variance = nn.Linear(hidden if self.sigma_from == "hidden" else new_dim, 1)

    def both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(h(x), sigma(x))`` in one pass."""
        if self.normalize:
            x = F.normalize(x, dim=1)
        z = self.trunk(x)
        h = self.out(z)
        sigma = self.log_variance(z if self.sigma_from == "hidden" else h).squeeze(-1)
        if self.normalize:
            h = F.normalize(h, dim=1)
        return h, sigma

    def forward(self, x: Tensor) -> Tensor:
        """The transformed vectors :math:`h(x)`."""
        return self.both(x)[0]

    @torch.no_grad()
    def uncertainty(self, x: Tensor) -> Tensor:
        r""":math:`\sigma(x)`, the predicted log of the transformation's loss (higher: worse)."""
        return self.both(x)[1]


def fit_fastfill(
    old_embeddings: np.ndarray | Tensor,
    new_embeddings: np.ndarray | Tensor,
    labels: np.ndarray | Tensor,
    *,
    new_head: nn.Module | None = None,
    hidden: int = 512,
    label_smoothing: float = 0.1,
    normalize: bool = True,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    sigma_from: str = "hidden",
) -> FastFillTransformation:
    r"""Train the FastFill transformation and its uncertainty on paired training embeddings.

    Args:
        old_embeddings: ``(N, D_old)`` the old model's embeddings of training inputs.
        new_embeddings: ``(N, D_new)`` the new model's embeddings of the same inputs.
        labels: ``(N,)`` integer classes (for the head's cross-entropy).
        new_head: the new model's classifier over its embeddings (copied and frozen);
            ``None``: the squared distance alone.
        hidden: hidden units of the MLP.
        label_smoothing: of the head's cross-entropy (the paper's 0.1).
        normalize: compare unit vectors (cosine retrieval); the inputs are normalised too.
        epochs: passes over the pairs (Adam, cosine schedule to 0).
        batch_size: pairs per step.
        lr: Adam's initial learning rate.
        seed: initialisation and data order.
        sigma_from: ``"hidden"`` or ``"output"`` (the paper's); see
            :class:`FastFillTransformation`.

    Returns:
        The trained :class:`FastFillTransformation`, in eval mode; with ``normalize`` it
        normalises its inputs and outputs itself.

    Raises:
        InputError: naming the argument: shapes that disagree, too few pairs, non-finite
        values, labels out of the head's range.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> old = torch.randn(512, 4, generator=g)
        >>> new = old @ torch.randn(4, 3, generator=g)
        >>> hard = old[:, 0] > 1  # where the new model disagrees in a way no map predicts
        >>> new[hard] += torch.randn(int(hard.sum()), 3, generator=g)
        >>> t = fit_fastfill(old, new, torch.zeros(512, dtype=torch.long), normalize=False,
        ...                  hidden=64, epochs=100, batch_size=64, lr=3e-3)
        >>> sigma = t.uncertainty(old)
        >>> bool(sigma[hard].mean() > sigma[~hard].mean() + 1)  # those rank first
        True
    """
    old, new, y = _paired(old_embeddings, new_embeddings, labels, min_rows=2)
    hidden = check_int("hidden", hidden, low=1)
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    label_smoothing = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    head = None
    if new_head is not None:
        import copy

        head = copy.deepcopy(new_head).eval()
        for p in head.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            classes = head(new[:1]).shape[-1]
        if int(y.min()) < 0 or int(y.max()) >= classes:
            raise InputError(
                f"Expected argument `labels` in [0, {classes}) (the head's classes), but got "
                f"values in [{int(y.min())}, {int(y.max())}]"
            )
    if normalize:
        new = F.normalize(new, dim=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FastFillTransformation(old.shape[1], new.shape[1], hidden, normalize, sigma_from)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(old) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.split(torch.randperm(len(old), generator=order), batch_size):
            out, sigma = model.both(old[batch])
            loss_i = (out - new[batch]).pow(2).sum(1)
            if head is not None:
                loss_i = loss_i + F.cross_entropy(
                    head(out), y[batch], label_smoothing=label_smoothing, reduction="none"
                )
            loss: Tensor = (0.5 * torch.exp(-sigma) * loss_i + 0.5 * sigma).mean()
            if not torch.isfinite(loss):
                raise InputError("FastFill training diverged (a non-finite loss): lower `lr`")
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
    return model.eval()
