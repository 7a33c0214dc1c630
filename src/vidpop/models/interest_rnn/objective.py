"""The training objective of ``interest_rnn``: one callable ``loss_fn(net, batch)`` for
:func:`vidpop.training.loop.fit_module`, plus the per-epoch resampling of negatives.

``L = L_rec + l_cold L_cold + l1 L_sem + l2 L_int + l3 L_rel + l4 ||theta||^2``:

* ``L_rec``: mean negative log-likelihood of every next video ``v_{t+1}`` from the GRU output at step
  ``t``: in training against ``n_negatives`` uniform negatives shared by the batch (sampled softmax,
  own target masked; only the batch's items are embedded), with ``n_negatives=0`` and in evaluation
  under the full softmax over the corpus. Every prefix of every user is a training example (the
  paper's "sessions"), all in one packed GRU pass: the input at step ``t`` (video ``v_t`` and the
  decayed interest ``u_t`` of ``v_1..v_t``) never contains the video it predicts.
* ``L_cold``: the cold-start path (text only) trained the way it is used: one GRU step on the "no
  video" slot and the interest ``u_t`` of a random prefix predicts ``v_{t+1}``, for a random
  ``cold_fraction`` of the batch's users (in evaluation mode every 4th user and the last prefix, so
  validation losses are deterministic).
* ``L_sem``: bidirectional hinge contrastive loss between text and visual embeddings of the videos
  that have a visual feature; negatives resampled every epoch.
* ``L_int``: at every step, distance between ``T_u u_t`` and the decayed average of the watched
  videos' interest embeddings ``T_x u~_t`` (Eq. 3, same prefix weights).
* ``L_rel``: triplet hinge on the last GRU states of (user, Jaccard neighbour, non-overlapping user),
  for a random ``rel_fraction`` of the batch's users (an unbiased estimate of the batch mean).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vidpop.models.interest_rnn import relevance
from vidpop.models.interest_rnn.network import InterestRNNNet, interest_distance, masked_rows, take_rows
from vidpop.models.interest_rnn.semantic import contrastive_hinge, sample_negatives
from vidpop.models.interest_rnn.topics import causal_decay_weights
from vidpop.models.rec_baselines.torch_common import uses_full_softmax


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
        n_train: int = 0,
    ) -> None:
        self.c, self.seq, self.tim, self.lens = config, seq, tim, lens
        self.n_visual, self.rel, self.rng = n_visual, rel, rng
        self.n_batches = -(-n_train // config.train.batch_size)
        self.bar: tqdm | None = None
        self.sem_neg = torch.zeros(0, dtype=torch.long)
        self.triplets: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def on_epoch_start(self, epoch: int) -> None:
        """Fresh contrastive negatives and relevance triplets every epoch (and a batch progress bar)."""
        if self.bar is not None:
            self.bar.close()
        show = self.c.train.progress and self.n_batches > 1
        self.bar = tqdm(total=self.n_batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not show)
        self.sem_neg = torch.from_numpy(sample_negatives(self.n_visual, self.rng))
        if self.rel is not None:
            pos, neg, valid = relevance.sample_triplets(self.rel["nb"], self.rel["watch"], self.rng)
            self.triplets = (torch.from_numpy(pos), torch.from_numpy(neg), torch.from_numpy(valid))

    # ------------------------------------------------------------------ pieces
    def _users(self, who: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(int(self.lens[who].max()), 1)
        return self.seq[who, :width], self.tim[who, :width], self.lens[who].clamp(min=1)

    def _sem_loss(self, m: InterestRNNNet) -> torch.Tensor:
        assert m.sem is not None
        sub = torch.from_numpy(self.rng.choice(self.n_visual, min(self.n_visual, self.c.sem_batch), replace=False))
        both = torch.cat([sub, self.sem_neg[sub]])
        e_t = m.sem.embed_text(m.text[m.visual_idx[both]])
        e_v = m.sem.embed_visual(m.visual_rows[both])
        k = len(sub)
        return contrastive_hinge(e_t[:k], e_v[:k], e_t[k:], e_v[k:], self.c.margin_sem)

    def _cold_loss(
        self,
        m: InterestRNNNet,
        s: torch.Tensor,
        t: torch.Tensor,
        n: torch.Tensor,
        targets: torch.Tensor,
        neg: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        # a quarter of the users (by default) is enough for the one-step path; the full softmax is the cost
        keep = torch.rand(len(n)) < self.c.cold_fraction if m.training else torch.arange(len(n)) % 4 == 0
        ok = (n >= 2) & keep
        if m.T_u is None or not ok.any():
            return None
        s, t, n = s[ok], t[ok], n[ok]
        last = n - 2  # the prefix ending at step n-2 predicts the last video
        pick = (torch.rand(len(n)) * (n - 1)).long().clamp(max=last) if m.training else last
        interests = m.prefix_interests(s, t, n)
        assert interests is not None
        rows = torch.arange(len(n))
        h = m.step(m.cold_inputs(interests[rows, pick], len(n)))
        return m.next_item_loss(h, targets, s[rows, pick + 1], neg)

    # ------------------------------------------------------------------ the loss
    def _partners(self, u: torch.Tensor, training: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Anchors of the relevance triplet in this batch (mask) and their partners (positives, then
        negatives): a random ``rel_fraction`` of the batch's anchors per step (every 4th in evaluation);
        the partners' GRU passes were ~40 % of a batch when every anchor had its pair recomputed."""
        if self.triplets is None or not self.c.lambda_rel:
            return None
        ok = self.triplets[2][u]
        ok &= torch.rand(len(u)) < self.c.rel_fraction if training else torch.arange(len(u)) % 4 == 0
        if not ok.any():
            return None
        return ok, torch.cat([self.triplets[0][u[ok]], self.triplets[1][u[ok]]])

    def _item_table(self, m: InterestRNNNet, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The content table ``T_x s_i`` and the shared negatives of the sampled loss. In training with
        ``n_negatives`` only the items of the histories ``s`` (the batch's and its relevance partners')
        and the negatives are embedded; otherwise (full softmax, evaluation) every item is."""
        n_items, n_neg = m.dims.n_items, self.c.n_negatives
        if not m.training or uses_full_softmax(n_neg, n_items):
            return m.item_interest(m.item_semantic()), None
        neg = torch.randint(0, n_items, (n_neg,))
        items = torch.unique(torch.cat([s.flatten(), neg]))  # sorted
        return m.batch_item_interest(items[items < n_items]), neg

    def __call__(self, m: InterestRNNNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.c
        u = batch["user"]
        rel = self._partners(u, m.training)
        # the relevance partners ride in the batch's GRU pass: each pass pays every step of its longest
        # history (~0.5 ms per step, forward and backward, whatever the rows), so a second pass for
        # them cost nearly as much as the batch's own
        s, t, n = self._users(u if rel is None else torch.cat([u, rel[1]]))
        emb, neg = self._item_table(m, s)
        targets = m.item_targets(emb)
        out, last = m.histories(s, t, n, emb)
        b = len(u)
        r_last = last[b:]
        s, t, n, out, last = s[:b], t[:b], n[:b], out[:b], last[:b]
        steps = torch.arange(s.shape[1])
        predicts = steps[None, : s.shape[1] - 1] < (n - 1)[:, None]  # output t (< n-1) predicts seq[t+1]
        total = out.new_zeros(())
        logs: dict[str, float] = {}
        if predicts.any():
            l_rec = m.next_item_loss(masked_rows(out[:, :-1], predicts), targets, s[:, 1:][predicts], neg)
            total, logs["rec"] = total + l_rec, float(l_rec.detach())
        if c.lambda_cold:
            l_cold = self._cold_loss(m, s, t, n, targets, neg)
            if l_cold is not None:
                total, logs["cold"] = total + c.lambda_cold * l_cold, float(l_cold.detach())
        if c.use_semantic and self.n_visual >= 2 and c.lambda_sem:
            l_sem = self._sem_loss(m)
            total, logs["sem"] = total + c.lambda_sem * l_sem, float(l_sem.detach())
        if m.T_u is not None and c.lambda_int:
            valid = steps[None, :] < n[:, None]
            w = causal_decay_weights(t, n, c.decay)
            user_side = m.T_u(w @ m.item_topics[s.clamp(max=m.dims.n_items - 1)])
            video_side = w @ take_rows(torch.cat([emb, emb.new_zeros(1, emb.shape[1])]), s)  # T_x of the decayed mean
            l_int = interest_distance(masked_rows(user_side, valid), masked_rows(video_side, valid))
            total, logs["int"] = total + c.lambda_int * l_int, float(l_int.detach())
        if rel is not None:
            ok = rel[0]
            k = int(ok.sum())
            l_rel = relevance.triplet_hinge(last[ok], r_last[:k], r_last[k:], c.margin_rel)
            total, logs["rel"] = total + c.lambda_rel * l_rel, float(l_rel.detach())
        if c.lambda_l2:
            total = total + c.lambda_l2 * m.l2()
        if m.training and self.bar is not None:
            self.bar.update()
        return total, logs
