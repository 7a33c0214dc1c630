"""The training objective of ``interest_rnn``: one callable ``loss_fn(net, batch)`` for
:func:`vidpop.training.loop.fit_module`, plus the per-epoch resampling of negatives.

``L = L_rec + l1 L_sem + l2 L_int + l3 L_rel + l4 ||theta||^2``:

* ``L_rec``: mean negative log-likelihood of each next video. ``softmax="full"`` normalises over the
  whole corpus; ``softmax="sampled"`` over the true video plus ``n_sampled`` uniformly drawn videos
  shared by the batch, their logits shifted by ``log((n_items - 1) / n_sampled)`` so the loss estimates
  the full one (same scale). Sampled mode embeds only the batch's videos, which is what makes it fast.
* ``L_sem``: bidirectional hinge contrastive loss between text and visual embeddings of the videos
  that have a visual feature; negatives resampled every epoch.
* ``L_int``: distance between the user's topic interest ``T_u u`` and the decayed average of the
  watched videos' interest embeddings ``T_x u~`` (same time-decay weights).
* ``L_rel``: triplet hinge on the last GRU states of (user, Jaccard neighbour, non-overlapping user).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidpop.models.interest_rnn import relevance
from vidpop.models.interest_rnn.network import InterestRNNNet, interest_distance
from vidpop.models.interest_rnn.semantic import contrastive_hinge, sample_negatives
from vidpop.models.interest_rnn.topics import decayed_mean_torch


class InterestObjective:
    """Holds the padded training sequences and samplers; ``__call__`` is the batch loss."""

    def __init__(
        self,
        config: Any,
        seq: torch.Tensor,
        tim: torch.Tensor,
        lens: torch.Tensor,
        n_visual: int,
        rel: dict[str, Any] | None,
        rng: np.random.Generator,
    ) -> None:
        self.c, self.seq, self.tim, self.lens, self.n_visual, self.rel, self.rng = (
            config,
            seq,
            tim,
            lens,
            n_visual,
            rel,
            rng,
        )
        self.sem_neg = torch.zeros(0, dtype=torch.long)
        self.triplets: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def on_epoch_start(self, epoch: int) -> None:
        """Fresh contrastive negatives and relevance triplets every epoch."""
        self.sem_neg = torch.from_numpy(sample_negatives(self.n_visual, self.rng))
        if self.rel is not None:
            pos, neg, valid = relevance.sample_triplets(self.rel["nb"], self.rel["watch"], self.rng)
            self.triplets = (torch.from_numpy(pos), torch.from_numpy(neg), torch.from_numpy(valid))

    # ------------------------------------------------------------------ pieces
    def _users(self, who: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = int(self.lens[who].max())
        return self.seq[who, :width], self.tim[who, :width], self.lens[who]

    def _topics(self, m: InterestRNNNet, s: torch.Tensor, t: torch.Tensor, n: torch.Tensor) -> torch.Tensor | None:
        if not self.c.use_interest:
            return None
        return decayed_mean_torch(m.item_topics[s.clamp(max=m.dims.n_items - 1)], t, n, self.c.decay)

    def _local(self, s: torch.Tensor, n: torch.Tensor, cand: torch.Tensor | None) -> torch.Tensor:
        """Item indices of ``s`` as rows of the embedded candidate set (padding -> the zero row)."""
        if cand is None:
            return s
        mask = torch.arange(s.shape[1])[None, :] < n[:, None]
        local = torch.searchsorted(cand, s.clamp(max=int(cand.max())))
        return torch.where(mask, local, torch.full_like(local, len(cand)))

    def _rec_loss(
        self, m: InterestRNNNet, h: torch.Tensor, target: torch.Tensor, emb: torch.Tensor, cand, neg
    ) -> torch.Tensor:
        if cand is None:
            return F.cross_entropy(m.logits(h, emb), target)
        pos_logit = m.pair_logits(h, emb[target], cand[target])[:, None]
        neg_logits = m.logits(h, emb[neg], cand[neg]) + math.log((m.dims.n_items - 1) / len(neg))
        neg_logits = neg_logits.masked_fill(cand[neg][None, :] == cand[target][:, None], float("-inf"))
        return -F.log_softmax(torch.cat([pos_logit, neg_logits], 1), dim=1)[:, 0].mean()

    def _sem_loss(self, m: InterestRNNNet) -> torch.Tensor:
        assert m.sem is not None
        sub = torch.from_numpy(self.rng.choice(self.n_visual, min(self.n_visual, self.c.sem_batch), replace=False))
        both = torch.cat([sub, self.sem_neg[sub]])
        e_t = m.sem.embed_text(m.text[m.visual_idx[both]])
        e_v = m.sem.embed_visual(m.visual_rows[both])
        k = len(sub)
        return contrastive_hinge(e_t[:k], e_v[:k], e_t[k:], e_v[k:], self.c.margin_sem)

    # ------------------------------------------------------------------ the loss
    def __call__(self, m: InterestRNNNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.c
        u = batch["user"]
        s, t, n = self._users(u)
        rel_users = None
        if self.triplets is not None and c.lambda_rel:
            ok = self.triplets[2][u]
            if ok.any():
                rel_users = (ok, torch.cat([self.triplets[0][u[ok]], self.triplets[1][u[ok]]]))
        cand, neg = None, None
        if c.softmax == "sampled":
            pool = [s[torch.arange(s.shape[1])[None, :] < n[:, None]], torch.randint(0, m.dims.n_items, (c.n_sampled,))]
            if rel_users is not None:
                rs, _, rn = self._users(rel_users[1])
                pool.append(rs[torch.arange(rs.shape[1])[None, :] < rn[:, None]])
            cand = torch.unique(torch.cat(pool))
            neg = torch.searchsorted(cand, pool[1])
        sem = m.item_semantic(cand)
        emb = m.item_interest(sem)
        local = self._local(s, n, cand)
        topics = self._topics(m, s, t, n)
        start = m.interest_token(topics, len(u))
        out = m.run(local, start, emb)
        mask = torch.arange(s.shape[1])[None, :] < n[:, None]
        l_rec = self._rec_loss(m, out[:, : s.shape[1]][mask], local[mask], emb, cand, neg)
        total, logs = l_rec, {"rec": float(l_rec.detach())}
        if c.use_semantic and self.n_visual >= 2 and c.lambda_sem:
            l_sem = self._sem_loss(m)
            total, logs["sem"] = total + c.lambda_sem * l_sem, float(l_sem.detach())
        if topics is not None and c.lambda_int:
            padded = torch.cat([sem, sem.new_zeros(1, sem.shape[1])])
            video_side = m.item_interest(decayed_mean_torch(padded[local], t, n, c.decay))
            l_int = interest_distance(start, video_side)
            total, logs["int"] = total + c.lambda_int * l_int, float(l_int.detach())
        if rel_users is not None:
            ok, who = rel_users
            rs, rt, rn = self._users(who)
            r_out = m.run(self._local(rs, rn, cand), m.interest_token(self._topics(m, rs, rt, rn), len(who)), emb)
            r_last = r_out[torch.arange(len(who)), rn]
            last = out[torch.arange(len(u)), n][ok]
            l_rel = relevance.triplet_hinge(last, r_last[: len(last)], r_last[len(last) :], c.margin_rel)
            total, logs["rel"] = total + c.lambda_rel * l_rel, float(l_rel.detach())
        if c.lambda_l2:
            total = total + c.lambda_l2 * m.l2()
        return total, logs
