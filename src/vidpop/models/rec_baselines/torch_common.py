"""The one training routine of the sequential torch baselines (FPMC, SASRec) and their tensors.

Item index ``i`` is stored as ``i + 1`` so that 0 is padding. :class:`SequentialTorchRecommender`
fits any subclass that supplies a module, its training arrays and a loss through the shared loop
(:func:`vidpop.training.loop.fit_module`): seeded, ``config.train: TrainConfig`` (so ``vidpop train
--nproc 2`` works as for the other torch models), and early stopping on the leave-one-out
*validation* item when the protocol gives one (``fit(data, validation=RecValidation)``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidpop.models.rec_baselines.common import FittedItems
from vidpop.models.recommender import RecData, UserQuery
from vidpop.training import metrics
from vidpop.training.loop import LossFn, TrainConfig, epoch_seconds, fit_module


@functools.cache
def _blas() -> Any:
    """numpy's BLAS thread pools (found once: listing the loaded libraries costs milliseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` (either may be a transposed view). On one CPU thread through numpy's BLAS: for these
    skinny shapes (an inner or outer size of 64) it ran 1.4-2.4x faster than torch's on the AMD host of
    earlier sessions and as fast on a Zen 1 one. With more threads torch's own: numpy's BLAS pool and torch's
    OpenMP pool then fight for the cores (an 800-row catalogue CE on 2 threads, Zen 1: 440 ms and 853
    CPU ms through numpy against 199 ms and 396 CPU ms through torch; 313 ms on one thread)."""
    if (
        torch.get_num_threads() == 1
        and a.device.type == "cpu"
        and a.dtype == torch.float32
        and b.dtype == torch.float32
    ):
        return torch.from_numpy(a.numpy() @ b.numpy())
    return a @ b


def uses_full_softmax(n_negatives: int, n_items: int) -> bool:
    """A loss configured with ``n_negatives`` scores the whole catalogue: 0 (full by choice), or as many
    negatives as there are items (sampling would only repeat them)."""
    return not 0 < n_negatives < n_items


def catalogue_softmax_threads(cfg: TrainConfig, full_softmax: bool) -> TrainConfig:
    """``cfg`` with all of torch's threads when the loss is a full softmax over the catalogue and the
    caller left ``num_threads`` unset. The loop would pick one thread for these modules (their dense
    weights are few: see :func:`vidpop.training.loop.intra_op_threads`), but every step multiplies the
    whole item table. Idle 2-core Zen 1 host, all 50,000 MicroLens users: a SASRec epoch 58.6 s on 2
    threads against 91.7 s on one, an interest RNN epoch 157 s against 215 s (``bench_training_speed``)."""
    if cfg.num_threads or not full_softmax:
        return cfg
    return dataclasses.replace(cfg, num_threads=torch.get_num_threads())


class _FullSoftmaxCE(torch.autograd.Function):
    """Mean cross-entropy of ``h @ weight.T + bias`` against ``target``, computed ``chunk`` rows at a
    time. The gradients are formed in the same pass (softmax minus one-hot, two products), so the
    (N, n_items) logit matrix never exists whole: it is the memory traffic, not the arithmetic, that
    makes torch's cross-entropy over a 20k catalogue slow on a CPU. A bias rides along as one more
    column of ``weight`` (against a column of ones in ``h``): the products then add it and sum its
    gradient, two passes over every (chunk, n_items) block fewer (~6 % of the loss, 2-core Zen 1)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor, chunk: int
    ) -> torch.Tensor:
        n, d = max(h.shape[0], 1), h.shape[1]
        h, weight = h.detach().contiguous(), weight.detach().contiguous()
        if bias is not None:
            h = torch.cat([h, h.new_ones(h.shape[0], 1)], 1)
            weight = torch.cat([weight, bias.detach()[:, None]], 1)
        g_h = h.new_empty(h.shape[0], d)
        g_w = torch.zeros_like(weight)  # (n_items, d [+ 1]): the bias column's gradient is the bias's
        total = torch.zeros((), dtype=torch.float64)
        # numpy's BLAS (used by _mm only when torch runs one thread) gets torch's thread count: its own
        # default of every core made an epoch 4x dearer in CPU (373 against 85 CPU s) on a loaded 2-core box
        with _blas().limit(limits=torch.get_num_threads(), user_api="blas"):
            total = _chunked_loss_and_grads(h, weight, target, chunk, total, g_h, g_w)
        g_w.div_(n)
        ctx.grads = (g_h.div_(n), g_w[:, :d], None if bias is None else g_w[:, d])
        return (total / n).float()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        g_h, g_w, g_b = ctx.grads
        return g_h * grad, g_w * grad, None if g_b is None else g_b * grad, None, None


def _chunked_loss_and_grads(
    h: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    chunk: int,
    total: torch.Tensor,
    g_h: torch.Tensor,
    g_w: torch.Tensor,
) -> torch.Tensor:
    """The summed loss; the gradients accumulate in place into ``g_h`` (``h``'s gradient without the
    bias column) and ``g_w`` (``weight``'s). Per 256-row chunk on a 2.8 GHz Xeon, one thread: 45 ms
    against 57 ms with ``max`` (it also finds the indices; ``amax`` does not). ``g_w.addmm_(p.T, hc)``:
    12.1 against 15.5 ms for ``g_w_t.addmm_(hc.T, p)`` into the transposed layout on 2 threads of a
    Zen 1 (the same on one), and no transpose at the end; ``g_w += p.T @ hc`` (into a fresh matrix,
    then an add) was the slowest on the Xeon."""
    w_out = weight[:, : g_h.shape[1]]
    for s in range(0, h.shape[0], chunk):
        hc, t = h[s : s + chunk], target[s : s + chunk]
        p = _mm(hc, weight.T)  # (c, n_items) logits, then turned into softmax - onehot in place
        rows = torch.arange(len(t))
        picked = p[rows, t]
        top = p.amax(1, keepdim=True)
        p.sub_(top).exp_()
        z = p.sum(1, keepdim=True)
        total += (z.log() + top).squeeze(1).sub(picked).sum().double()
        p.div_(z)
        p[rows, t] -= 1.0
        g_h[s : s + chunk] = p @ w_out
        g_w.addmm_(p.T, hc)
    return total


def full_softmax_ce(
    h: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, bias: torch.Tensor | None = None, chunk: int = 256
) -> torch.Tensor:
    """``F.cross_entropy(h @ weight.T + bias, target)`` (mean over rows), exact, chunked over rows."""
    return _FullSoftmaxCE.apply(h, weight, bias, target, chunk)


class _UnitRows(torch.autograd.Function):
    """``x / ||x||`` row-wise with the backward written out, ``(g - u (u . g)) / ||x||``: autograd's
    version through a broadcast division took 85 ms per forward and backward of the interest RNN's
    (19,738 x 300) item table against 62 ms, once per training batch."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_(min=eps)
        u = x / norm
        ctx.save_for_backward(u, norm)
        return u

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        u, norm = ctx.saved_tensors
        along = torch.linalg.vecdot(u, grad, dim=-1).unsqueeze(-1)  # one pass, no (n, d) temporary
        return torch.addcmul(grad, u, along, value=-1.0).div_(norm), None


def unit_rows(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``F.normalize(x, dim=-1)`` (the same value and gradient), cheaper on large tables."""
    return _UnitRows.apply(x, eps)


def sampled_softmax_ce(
    h: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    negatives: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of row ``target`` of ``weight`` against the rows ``negatives`` shared by every
    ``h`` row (Klenitskiy & Vasilev 2023); a negative equal to a row's own target is masked. Uniform
    draws need no logQ correction (the same constant for every candidate)."""
    pos = (h * weight[target]).sum(-1, keepdim=True)
    neg = h @ weight[negatives].T
    if bias is not None:
        pos, neg = pos + bias[target][:, None], neg + bias[negatives]
    logits = torch.cat([pos, neg.masked_fill(target[:, None] == negatives[None], float("-inf"))], 1)
    return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long))


def left_pad(histories: Sequence[np.ndarray], width: int) -> np.ndarray:
    """(n, width) int64: the last ``width`` items of each history, shifted by +1, left-padded with 0."""
    out = np.zeros((len(histories), width), np.int64)
    for r, h in enumerate(histories):
        h = np.asarray(h, np.int64)[-width:]
        if len(h):
            out[r, width - len(h) :] = h + 1
    return out


def next_item_samples(sequences: Sequence[np.ndarray], window: int) -> dict[str, np.ndarray]:
    """One sample per (user, position t >= 1): the ``window`` items before t, the item at t-1 and the
    target at t (all shifted by +1)."""
    hist, target = [], []
    for s in sequences:
        s = np.asarray(s, np.int64)
        for t in range(1, len(s)):
            hist.append(s[max(0, t - window) : t])
            target.append(s[t] + 1)
    h = left_pad(hist, window)
    return {"hist": h, "last": h[:, -1].copy(), "target": np.asarray(target, np.int64)}


def query_windows(queries: Sequence[UserQuery], window: int) -> np.ndarray:
    return left_pad([q.history for q in queries], window)


def rec_train_config(**overrides: Any) -> TrainConfig:
    """Defaults of the sequential baselines: Adam, early stopping after 3 epochs without a better
    validation NDCG@10 (when the protocol has a validation item), else the fixed epoch budget."""
    base = {"epochs": 30, "batch_size": 256, "lr": 1e-3, "optimizer": "adam", "patience": 3, "grad_clip": 5.0}
    return TrainConfig(**{**base, **overrides})


def validation_ndcg(model: Any, validation: Any, k: int = 10, batch_size: int = 1024) -> dict[str, float]:
    """HR@k / NDCG@k of a model's top-k on held-out validation items, scored as the protocol scores
    test users (its evaluator lives a layer up; the metrics are :mod:`vidpop.training.metrics`): the
    items of ``validation.exclude`` (cold start: the input period) are dropped from each ranked list
    before the cut at k, and relevant videos outside the vocabulary (``truth_oov``) count as misses."""
    exclude = getattr(validation, "exclude", None)
    oov = getattr(validation, "truth_oov", None)
    hr = ndcg = 0.0
    for s in range(0, len(validation.queries), batch_size):
        q = validation.queries[s : s + batch_size]
        drop = exclude[s : s + batch_size] if exclude else None
        extra = max((len(d) for d in drop), default=0) if drop else 0
        ranked_lists = np.asarray(model.recommend(q, k=k + extra)).tolist()
        for j, (ranked, truth) in enumerate(zip(ranked_lists, validation.truth[s : s + batch_size], strict=True)):
            if extra:
                gone = set(drop[j].tolist())
                ranked = [x for x in ranked if x not in gone]
            n_oov = int(oov[s + j]) if oov is not None else 0
            rel = set(truth.tolist()) | {-(m + 1) for m in range(n_oov)}  # ids no ranking contains
            hr += metrics.hit_rate_at_k(ranked[:k], rel, k)
            ndcg += metrics.ndcg_at_k(ranked[:k], rel, k)
    n = max(len(validation.queries), 1)
    return {"val_HR@10": hr / n, "val_NDCG@10": ndcg / n}


class SequentialTorchRecommender(FittedItems):
    """Shared ``fit``/``full_sort_scores`` of FPMC and SASRec. Subclasses give ``_build_module()``,
    ``_training_arrays(data)``, ``loss`` (a :data:`LossFn`), ``_query_tensor(queries)`` and a module
    with ``all_scores(tensor) -> (n, n_items)``. Configs hold ``train: TrainConfig`` and
    ``val_users`` (validation users sampled for early stopping; None = all)."""

    uses_validation = True
    loss: LossFn

    def _build_module(self) -> nn.Module:
        raise NotImplementedError

    def _training_arrays(self, data: RecData) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _query_tensor(self, queries: list[UserQuery]) -> torch.Tensor:
        raise NotImplementedError

    def _full_catalogue_loss(self) -> bool:
        """Whether every training step scores the whole catalogue (then it trains on all threads)."""
        return False

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> SequentialTorchRecommender:
        self._remember(X)
        tc: TrainConfig = self.config.train
        torch.manual_seed(tc.seed)  # the module is seeded before it is built
        self.module_ = self._build_module()
        tc = catalogue_softmax_threads(tc, self._full_catalogue_loss())
        arrays = self._training_arrays(X)
        validation = kwargs.get("validation")
        if validation is not None and len(validation.queries):
            validation = validation.subset(getattr(self.config, "val_users", None), tc.seed)
        else:
            validation = None
            tc = dataclasses.replace(tc, patience=0)  # no held-out signal: the fixed epoch budget

        def after(module: nn.Module, epoch: int) -> dict[str, float]:
            if validation is None:
                return {}
            m = validation_ndcg(self, validation)
            # the loop keeps the weights of the lowest ``val_loss``: here 1 - validation NDCG@10
            return {**m, "val_loss": 1.0 - m["val_NDCG@10"]}

        hist = fit_module(self.module_, type(self).loss, arrays, None, tc, epoch_callback=after)
        self.epochs_run_ = len(hist.epochs)
        self.best_epoch_ = hist.best_epoch
        self.seconds_per_epoch_, self.cpu_seconds_per_epoch_ = epoch_seconds(hist)
        self.train_log_ = hist.epochs
        return self

    @torch.no_grad()
    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        self._check_fitted()
        was_training = self.module_.training
        self.module_.eval()
        out = self.module_.all_scores(self._query_tensor(X)).numpy()
        self.module_.train(was_training)
        return out
