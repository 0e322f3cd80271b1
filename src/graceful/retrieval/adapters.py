r"""Query adapters: map a new model's queries into an old model's space, leave the gallery alone.

When the embedding model is replaced, the stored vectors still come from the old model.
Instead of re-embedding them, fit a small map :math:`a` with :math:`a(e^{new}(x)) \approx
e^{old}(x)` on a few items embedded by both models, and send each new-model query through
it (Drift-Adapter, Vejendla, EMNLP 2025; the reverse direction of FCT's gallery
transformation, :func:`graceful.training.fit_transformation`). Three kinds:

* ``"procrustes"``: :math:`a(x) = s (x - \mu_x) W + \mu_y` with :math:`W` (semi-)orthogonal,
  the orthogonal Procrustes solution (the SVD of the paired cross-covariance); it keeps
  the geometry of the new space, needs few pairs and allows ``dim_in != dim_out``
  (:math:`W W^\top = I` on the smaller side);
* ``"affine"``: ridge least squares, :math:`a(x) = (x - \mu_x) W + \mu_y`, the ridge weight
  chosen by generalised cross-validation on the pairs themselves (no tuning by the
  caller); ``rank=r`` makes it the reduced-rank (low-rank affine) solution;
* ``"residual_mlp"``: the affine map plus a one-hidden-layer ReLU network fitted to its
  residual (Adam, early stopping on a tenth of the pairs held out), for a drift that is
  not linear.

With ``normalize=True`` (for cosine retrieval, the default) both sides are L2-normalised
before fitting and each query before and after the map. Applying an adapter is NumPy
only: a matrix product (and a small MLP), microseconds per query.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> new = rng.normal(size=(200, 8))
    >>> rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    >>> old = new @ rotation  # the same items, the old model's space: a rotation away
    >>> adapter = fit_query_adapter(new, old, kind="procrustes", normalize=False)
    >>> bool(np.allclose(adapter(new), old, atol=1e-4))
    True
    >>> adapter.kind, adapter.dim_in, adapter.dim_out
    ('procrustes', 8, 8)
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from graceful._validation import check_bool, check_choice, check_int, check_vectors, fail
from graceful.errors import InputError

__all__ = [
    "ADAPTER_KINDS",
    "QueryAdapter",
    "compose_adapters",
    "fit_query_adapter",
    "select_query_adapter",
]

AdapterKind = Literal["procrustes", "affine", "residual_mlp"]
ADAPTER_KINDS = ("procrustes", "affine", "residual_mlp")
_FORMAT = "graceful.query_adapter/1"
_F32 = npt.NDArray[np.float32]


def _unit(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    out: npt.NDArray[Any] = x / np.maximum(norm, np.finfo(np.float32).tiny)
    return out


@dataclass(frozen=True, eq=False)
class QueryAdapter:
    """A fitted map from ``dim_in``-dimensional (new) vectors to ``dim_out`` (old) ones.

    Call it on an ``(n, dim_in)`` array; it returns float32 ``(n, dim_out)``. Build one with
    :func:`fit_query_adapter`; store it with :meth:`to_bytes` / :meth:`from_bytes`.

    Attributes:
        kind: ``"procrustes"``, ``"affine"`` or ``"residual_mlp"``.
        weight: ``(dim_in, dim_out)`` linear part (the Procrustes scale folded in).
        bias: ``(dim_out,)``, the old side's mean.
        in_mean: ``(dim_in,)``, subtracted from each (normalised) query first.
        normalize: whether queries are L2-normalised before and after the map.
        hidden: the residual MLP's ``w1, b1, w2, b2`` (``residual_mlp`` only), applied to
            the normalised query: ``relu(x w1 + b1) w2 + b2``.
        info: how it was fitted (pairs, ridge weight, rank, residuals), JSON-able.
        then: the next adapter of a chain (:func:`compose_adapters`), applied to this
            one's output; ``dim_out`` is then the last link's.
    """

    kind: str
    weight: _F32
    bias: _F32
    in_mean: _F32
    normalize: bool
    hidden: tuple[_F32, _F32, _F32, _F32] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    then: QueryAdapter | None = None

    @property
    def dim_in(self) -> int:
        """The dimension of the vectors it takes (the new model's)."""
        return int(self.weight.shape[0])

    @property
    def dim_out(self) -> int:
        """The dimension of the vectors it returns (the old model's; a chain's last link's)."""
        return int(self.weight.shape[1]) if self.then is None else self.then.dim_out

    @property
    def links(self) -> tuple[QueryAdapter, ...]:
        """The adapters of the chain it starts, in order (itself alone when not chained)."""
        own = replace(self, then=None)
        return (own,) if self.then is None else (own, *self.then.links)

    def __call__(self, x: npt.ArrayLike) -> _F32:
        """Map ``(n, dim_in)`` queries into the old space.

        Raises:
            InputError: ``x`` is not a finite ``(n, dim_in)`` array.
        """
        q = check_vectors("x", x, dim=self.dim_in, where=" (the adapter's input dimension)")
        if self.normalize:
            q = _unit(q).astype(np.float32)
        y = (q - self.in_mean) @ self.weight + self.bias
        if self.hidden is not None:
            w1, b1, w2, b2 = self.hidden
            y += np.maximum(q @ w1 + b1, 0.0) @ w2 + b2
        if self.normalize:
            y = _unit(y)
        out = np.ascontiguousarray(y, dtype=np.float32)
        return out if self.then is None else self.then(out)

    def to_bytes(self) -> bytes:
        """The adapter as ``.npz`` bytes (its arrays and a JSON header); see :meth:`from_bytes`.

        Example:
            >>> a = fit_query_adapter(np.eye(3), np.eye(3), kind="procrustes")
            >>> QueryAdapter.from_bytes(a.to_bytes()).kind
            'procrustes'
        """
        header = {
            "format": _FORMAT,
            "kind": self.kind,
            "normalize": self.normalize,
            "info": self.info,
        }
        arrays = {"weight": self.weight, "bias": self.bias, "in_mean": self.in_mean}
        if self.hidden is not None:
            arrays.update(zip(("w1", "b1", "w2", "b2"), self.hidden, strict=True))
        if self.then is not None:  # the rest of the chain, nested
            arrays["then"] = np.frombuffer(self.then.to_bytes(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, header=np.array(json.dumps(header)), **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> QueryAdapter:
        """Read :meth:`to_bytes`'s output.

        Raises:
            InputError: the bytes are not a saved query adapter, or its arrays disagree.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                header = json.loads(str(npz["header"]))
                arrays = {
                    key: np.asarray(npz[key], dtype=np.float32)
                    for key in npz.files
                    if key not in ("header", "then")
                }
                rest = npz["then"].tobytes() if "then" in npz.files else None
        except (OSError, ValueError, KeyError, json.JSONDecodeError, EOFError) as exc:
            raise InputError(
                f"Expected a saved query adapter, but could not read it ({exc})"
            ) from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise InputError(f"Expected a saved query adapter in format {_FORMAT!r}")
        try:
            hidden = None
            if header.get("kind") == "residual_mlp":
                hidden = (arrays["w1"], arrays["b1"], arrays["w2"], arrays["b2"])
            adapter = cls(
                kind=str(header["kind"]),
                weight=arrays["weight"],
                bias=arrays["bias"],
                in_mean=arrays["in_mean"],
                normalize=bool(header["normalize"]),
                hidden=hidden,
                info=dict(header.get("info") or {}),
                then=None if rest is None else cls.from_bytes(rest),
            )
        except KeyError as exc:
            raise InputError(f"Expected a saved query adapter, but {exc} is missing") from None
        adapter._check()
        return adapter

    def _check(self) -> None:
        check_choice("kind", self.kind, ADAPTER_KINDS)
        if self.weight.ndim != 2:
            raise InputError("Expected a saved query adapter whose arrays agree in shape")
        d_in, d_out = self.weight.shape
        shapes_ok = self.bias.shape == (d_out,) and self.in_mean.shape == (d_in,)
        if self.hidden is not None:
            w1, b1, w2, b2 = self.hidden
            h = w1.shape[1] if w1.ndim == 2 else -1
            shapes_ok &= w1.shape == (d_in, h) and b1.shape == (h,)
            shapes_ok &= w2.shape == (h, d_out) and b2.shape == (d_out,)
        if self.then is not None:
            shapes_ok &= self.then.dim_in == d_out
        if not shapes_ok or (self.kind == "residual_mlp") != (self.hidden is not None):
            raise InputError("Expected a saved query adapter whose arrays agree in shape")

    def __repr__(self) -> str:
        chain = "" if self.then is None else f", links={len(self.links)}"
        return (
            f"QueryAdapter(kind={self.kind!r}, dim_in={self.dim_in}, dim_out={self.dim_out}, "
            f"pairs={self.info.get('pairs')}{chain})"
        )


def compose_adapters(*adapters: QueryAdapter) -> QueryAdapter:
    """One adapter that applies ``adapters`` in order: a chain of versions v3 -> v2 -> v1.

    Each link keeps its own normalisation, so the chain maps exactly as calling the links
    one after the other does. A link that is itself a chain is flattened.

    Raises:
        InputError: no adapter, an argument that is not a :class:`QueryAdapter`, or a link
            whose input dimension is not the previous link's output dimension (naming
            both links).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> v3, v2, v1 = (rng.normal(size=(50, d)) for d in (6, 4, 3))
        >>> a32 = fit_query_adapter(v3, v2, kind="affine")
        >>> a21 = fit_query_adapter(v2, v1, kind="procrustes")
        >>> chain = compose_adapters(a32, a21)
        >>> chain.dim_in, chain.dim_out, len(chain.links)
        (6, 3, 2)
        >>> bool(np.allclose(chain(v3[:5]), a21(a32(v3[:5]))))
        True
    """
    if not adapters:
        raise InputError("Expected at least one adapter to compose, but got none")
    links: list[QueryAdapter] = []
    for i, adapter in enumerate(adapters):
        if not isinstance(adapter, QueryAdapter):
            raise fail(f"adapters[{i}]", "a QueryAdapter", adapter)
        if links and links[-1].dim_out != adapter.dim_in:
            raise InputError(
                f"Expected adapters[{i}] to take the dim {links[-1].dim_out} vectors "
                f"adapters[{i - 1}] returns, but it takes dim {adapter.dim_in}"
            )
        links.extend(adapter.links)
    chain = links[-1]
    for link in reversed(links[:-1]):
        chain = replace(link, then=chain)
    return chain


def _gcv_ridge(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], float, float, float]:
    """Ridge weights for centred ``x -> y`` with the weight chosen by generalised CV.

    GCV(lambda) = (RSS / n) / (1 - (df + 1) / n)^2 (the 1 is the intercept the centring
    fitted) over a log grid of lambda relative to the top squared singular value; all from
    one SVD of ``x``. Returns ``(W, lambda, lambda / top, df)``.
    """
    n = x.shape[0]
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    energy = np.sum(uty**2, axis=1)  # per singular direction
    outside = float(np.sum(y**2) - energy.sum())  # the part of y no ridge fit can reach
    s2 = s**2
    top = float(s2[0]) if s2.size and s2[0] > 0 else 1.0
    best: tuple[float, float, float] | None = None
    for lam in top * np.logspace(-8, 2, 61):
        f = s2 / (s2 + lam)
        rss = outside + float(np.sum((1.0 - f) ** 2 * energy))
        df = float(f.sum())
        if df + 1.0 >= n - 0.5:  # interpolation: GCV is undefined there
            continue
        gcv = (rss / n) / (1.0 - (df + 1.0) / n) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, float(lam), df)
    if best is None:  # every grid point interpolates (n <= 1): the most regularised one
        best = (math.nan, top * 100.0, float(np.sum(s2 / (s2 + top * 100.0))))
    _, lam, df = best
    w = vt.T @ ((s / (s2 + lam))[:, None] * uty)
    return w, lam, lam / top, df


def _procrustes(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], scale: bool
) -> tuple[npt.NDArray[np.float64], float]:
    """Semi-orthogonal ``W`` (``dim_in x dim_out``) minimising ``||x W s - y||`` and ``s``."""
    u, s, vt = np.linalg.svd(x.T @ y, full_matrices=False)
    w = u @ vt
    norm = float(np.sum(x**2))
    factor = float(s.sum() / norm) if scale and norm > 0 else 1.0
    return w, factor


def _fit_mlp(
    x: npt.NDArray[np.float32],
    residual: npt.NDArray[np.float32],
    hidden: int,
    seed: int,
    max_epochs: int,
) -> tuple[tuple[_F32, _F32, _F32, _F32], dict[str, Any]]:
    """A ReLU MLP fitted to ``residual`` by Adam, stopped early on a held-out tenth."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    n = len(x)
    order = torch.randperm(n, generator=generator)
    n_val = max(1, n // 10)
    val, fit = order[:n_val], order[n_val:]
    xs, rs = torch.from_numpy(x), torch.from_numpy(residual)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        first, last = nn.Linear(x.shape[1], hidden), nn.Linear(hidden, rs.shape[1])
    nn.init.zeros_(last.weight)  # starts as the affine map exactly
    nn.init.zeros_(last.bias)
    net = nn.Sequential(first, nn.ReLU(), last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    best_loss, best_state, best_epoch, waited = math.inf, None, 0, 0
    batch = max(16, min(256, len(fit)))
    for epoch in range(max_epochs):
        net.train()
        for part in torch.split(fit[torch.randperm(len(fit), generator=generator)], batch):
            loss = (net(xs[part]) - rs[part]).pow(2).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            held = float((net(xs[val]) - rs[val]).pow(2).sum(1).mean())
        if held < best_loss - 1e-7:
            best_loss, best_epoch, waited = held, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= 10:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    w1, b1, w2, b2 = (
        np.ascontiguousarray(array, dtype=np.float32)
        for array in (
            first.weight.detach().numpy().T,  # stored (in, out): applied as x @ w
            first.bias.detach().numpy(),
            last.weight.detach().numpy().T,
            last.bias.detach().numpy(),
        )
    )
    return (w1, b1, w2, b2), {"hidden": hidden, "epochs": best_epoch + 1, "held_out": n_val}


def fit_query_adapter(
    new: npt.ArrayLike,
    old: npt.ArrayLike,
    *,
    kind: AdapterKind = "procrustes",
    normalize: bool = True,
    rank: int | None = None,
    scale: bool = True,
    hidden: int = 256,
    max_epochs: int = 200,
    seed: int = 0,
    center: bool = False,
    remove_top: int = 0,
) -> QueryAdapter:
    """Fit a map from new-model vectors to old-model vectors of the same items.

    Args:
        new: ``(n, dim_in)`` the new model's embeddings of ``n`` items.
        old: ``(n, dim_out)`` the old model's embeddings of the same items, same order.
        kind: ``"procrustes"``, ``"affine"`` or ``"residual_mlp"`` (module docstring).
        normalize: L2-normalise both sides (cosine retrieval); ``False`` for L2.
        rank: ``affine`` / ``residual_mlp`` only: the rank of the linear part (reduced-rank
            regression); ``None``: full.
        scale: ``procrustes`` only: also fit a global scale (irrelevant under cosine).
        hidden: ``residual_mlp`` only: the hidden width.
        max_epochs: ``residual_mlp`` only: the most passes (early stopping ends sooner).
        seed: ``residual_mlp`` only: its initialisation and hold-out split.
        center: leave the old side's mean out of the output (the bias is zero). For
            cosine ranking only: the mean adds the same direction to every query, which
            favours the gallery items nearest to it whatever the query (hubs); without it
            the queries are ranked by their deviation alone. The output is then no longer
            an estimate of the old vector (do not use it with L2 distances).
        remove_top: project the ``remove_top`` leading principal directions of the old
            side (of the paired old vectors, centred) out of the output, so that they no
            longer weigh in the ranking ("all-but-the-top", Mu and Viswanath, ICLR 2018):
            for cosine ranking, ``<P a(q), g> = <a(q), P g>``, the gallery's dominant
            directions are ignored without touching the stored vectors. Folded into the
            weights (the map stays one product). For cosine ranking only, like ``center``;
            whether it helps depends on the data: :func:`select_query_adapter` chooses it
            on held-out pairs.

    Returns:
        The :class:`QueryAdapter`; ``info`` holds the pairs, the fit's relative residual
        and, for ``affine``, the ridge weight GCV chose.

    Raises:
        InputError: naming the argument: mismatched rows, fewer than 2 pairs, non-finite
        values, an all-zero row under ``normalize``, a bad ``kind`` or ``rank``.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> new = rng.normal(size=(300, 6))
        >>> old = new @ rng.normal(size=(6, 4)) + 0.5  # a linear drift, another dimension
        >>> a = fit_query_adapter(new, old, kind="affine", normalize=False)
        >>> a.dim_out, bool(np.abs(a(new) - old).max() < 1e-2)
        (4, True)
    """
    check_choice("kind", kind, ADAPTER_KINDS)
    normalize = check_bool("normalize", normalize)
    scale = check_bool("scale", scale)
    center = check_bool("center", center)
    x = check_vectors("new", new, nonzero=normalize).astype(np.float64)
    y = check_vectors("old", old, rows=len(x), nonzero=normalize).astype(np.float64)
    if len(x) < 2:
        raise fail("new", "at least 2 paired items", f"{len(x)} row(s)")
    if rank is not None:
        if kind == "procrustes":
            raise InputError("Expected argument `rank` to be None for kind='procrustes'")
        rank = check_int("rank", rank, low=1, high=min(x.shape[1], y.shape[1]))
    if normalize:
        x, y = _unit(x), _unit(y)
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    info: dict[str, Any] = {"pairs": len(x), "dim_in": x.shape[1], "dim_out": y.shape[1]}
    if kind == "procrustes":
        w, factor = _procrustes(xc, yc, scale)
        w = w * factor
        info["scale"] = factor
    else:
        w, lam, relative, df = _gcv_ridge(xc, yc)
        info.update(ridge=lam, ridge_relative=relative, effective_params=df)
        if rank is not None:
            _, _, vt = np.linalg.svd(xc @ w, full_matrices=False)
            keep = vt[:rank].T
            w = w @ keep @ keep.T
            info["rank"] = rank
    fitted = xc @ w + my
    total = float(np.sum(yc**2)) or 1.0
    info["relative_residual"] = float(np.sum((fitted - y) ** 2) / total)
    hidden_arrays = None
    if kind == "residual_mlp":
        hidden = check_int("hidden", hidden, low=1)
        max_epochs = check_int("max_epochs", max_epochs, low=1)
        hidden_arrays, mlp_info = _fit_mlp(
            x.astype(np.float32), (y - fitted).astype(np.float32), hidden, seed, max_epochs
        )
        info.update(mlp_info)
    if center:
        info["centered"] = True
    bias_out = np.zeros_like(my) if center else my
    remove_top = check_int("remove_top", remove_top, low=0, high=y.shape[1] - 1)
    if remove_top:
        _, _, vt = np.linalg.svd(yc, full_matrices=False)
        top = vt[:remove_top].T  # (dim_out, remove_top), orthonormal columns
        w, bias_out = w - (w @ top) @ top.T, bias_out - (bias_out @ top) @ top.T
        if hidden_arrays is not None:
            w1, b1, w2, b2 = hidden_arrays
            w2 = (w2 - (w2 @ top) @ top.T).astype(np.float32)
            b2 = (b2 - (b2 @ top) @ top.T).astype(np.float32)
            hidden_arrays = (w1, b1, w2, b2)
        info["remove_top"] = remove_top
    adapter = QueryAdapter(
        kind=kind,
        weight=np.ascontiguousarray(w, dtype=np.float32),
        bias=np.ascontiguousarray(bias_out, dtype=np.float32),
        in_mean=np.ascontiguousarray(mx, dtype=np.float32),
        normalize=normalize,
        hidden=hidden_arrays,
        info=info,
    )
    adapter._check()
    return adapter


def _cv_score(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    labels: npt.NDArray[Any] | None,
    folds: list[npt.NDArray[np.int64]],
    options: dict[str, Any],
) -> float:
    """Mean held-out score of one candidate: class mAP (with labels) or instance MRR."""
    from .evaluation import retrieval_metrics

    gallery = _unit(y.astype(np.float64))
    ids = np.arange(len(y))
    scores = []
    for held in folds:
        keep = np.setdiff1d(ids, held)
        adapter = fit_query_adapter(x[keep], y[keep], **options)
        q = adapter(x[held])
        if labels is None:  # the held-out item's own old vector, among all paired items'
            sims = _unit(q.astype(np.float64)) @ gallery.T
            own = sims[np.arange(len(held)), held]
            rank = (sims > own[:, None]).sum(axis=1) + 1
            scores.append(float(np.mean(1.0 / rank)))
        else:  # class retrieval among the other paired items' old vectors
            out = retrieval_metrics(
                q, labels[held], y, labels, query_ids=held, gallery_ids=ids, top_k=1
            )
            scores.append(float(out["map"]))
    return float(np.mean(scores))


def select_query_adapter(
    new: npt.ArrayLike,
    old: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    *,
    kind: AdapterKind = "procrustes",
    centers: tuple[bool, ...] = (False, True),
    remove_tops: tuple[int, ...] = (0, 1, 2),
    folds: int = 5,
    seed: int = 0,
) -> QueryAdapter:
    """The query adapter whose ``center`` / ``remove_top`` does best on held-out pairs.

    Whether leaving the old mean out of the queries or projecting out the old space's
    leading directions helps cosine ranking depends on the two models (it helps one pair
    of text encoders and hurts a pair of CNNs in our benchmarks), so it is chosen by
    ``folds``-fold cross-validation over the pairs themselves, then refitted on all of
    them. With ``labels`` (the paired items' classes) a candidate is scored by the class
    retrieval mAP of the held-out items' mapped new vectors among the other paired items'
    old vectors; without them, label-free, by the mean reciprocal rank of each held-out
    item's own old vector among all paired items' old vectors. Cosine ranking only
    (``normalize=True``).

    Args:
        new: ``(n, dim_in)`` the new model's embeddings of ``n`` paired items.
        old: ``(n, dim_out)`` the old model's embeddings of the same items.
        labels: ``(n,)`` their classes, or ``None`` (label-free selection).
        kind: the adapter kind (:func:`fit_query_adapter`).
        centers: the ``center`` values tried.
        remove_tops: the ``remove_top`` values tried.
        folds: cross-validation folds, ``2 <= folds <= n``.
        seed: the folds' shuffle (and the residual MLP's seed).

    Returns:
        The adapter refitted on all pairs; ``info["selection"]`` lists each candidate's
        held-out score and ``info["selected_by"]`` the criterion.

    Raises:
        InputError: naming the argument, as :func:`fit_query_adapter`, or for ``labels``
            of the wrong length, empty candidate lists or a bad ``folds``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> old = rng.normal(size=(120, 5))
        >>> new = np.tanh(old @ rng.normal(size=(5, 7)))
        >>> a = select_query_adapter(new, old, remove_tops=(0, 1))
        >>> len(a.info["selection"]), a.info["selected_by"]
        (4, 'mrr')
    """
    x = check_vectors("new", new, nonzero=True)
    y = check_vectors("old", old, rows=len(x), nonzero=True)
    folds = check_int("folds", folds, low=2, high=max(2, len(x)))
    if not centers or not remove_tops:
        raise InputError("Expected arguments `centers` and `remove_tops` to be non-empty")
    classes = None
    if labels is not None:
        classes = np.asarray(labels)
        if classes.shape != (len(x),):
            raise fail("labels", f"shape ({len(x)},)", f"shape {classes.shape}")
    order = np.random.default_rng(seed).permutation(len(x))
    parts = [np.sort(part) for part in np.array_split(order, folds)]
    table: list[dict[str, Any]] = []
    for center in centers:
        for top in remove_tops:
            options = {"kind": kind, "center": bool(center), "remove_top": int(top), "seed": seed}
            score = _cv_score(x, y, classes, parts, options)
            table.append({"center": bool(center), "remove_top": int(top), "score": score})
    best = max(table, key=lambda row: row["score"])  # the first of equals: the simplest
    adapter = fit_query_adapter(
        x, y, kind=kind, center=best["center"], remove_top=best["remove_top"], seed=seed
    )
    adapter.info["selection"] = table
    adapter.info["selected_by"] = "mrr" if classes is None else "map"
    return adapter
