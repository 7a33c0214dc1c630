"""The torch network of ``interest_rnn``: item embeddings, the GRU and the softmax over the corpus.

The GRU input at step ``t`` is ``(T_x s_{v_t} + e_{v_t}) (+) T_u u_t``: the interest embedding of the
``t``-th watched video plus its learnt item vector ``e_v`` (the same vector as on the output side; the
paper's input ``T_x s_v`` alone with ``id_input=False``: content alone cannot tell apart two videos
with similar titles and covers), concatenated with the user's topic interest ``u_t``, the
time-decayed mean (Eq. 2) of the topics of ``v_1 .. v_t`` seen from the time of ``v_t``. Both parts
read only interactions up to step ``t``, so the output at step ``t``, which predicts ``v_{t+1}``, never
sees ``v_{t+1}`` or later; and it is computed by the same :meth:`InterestRNNNet.histories` at training
and at prediction time.

A cold-start user (text only) is one GRU step on ``e_none (+) T_u u_text``: a learned "no video" slot
beside the interest of the user's text stream. Scores of the next video against every item:
``(W_o h_t) . (T_x s_i + e_i) + b_i`` with an optional free item vector ``e_i`` (collaborative signal).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from vidpop.models.interest_rnn.semantic import SemanticEmbedding
from vidpop.models.interest_rnn.topics import causal_decay_weights
from vidpop.models.rec_baselines.torch_common import full_softmax_ce, sampled_softmax_ce


@dataclass
class NetDims:
    n_items: int
    d_text: int
    d_visual: int  # 0 when no item has a visual feature
    n_visual: int  # items that have one
    n_topics: int  # 0 when the interest part is off


class InterestRNNNet(nn.Module):
    def __init__(
        self,
        dims: NetDims,
        d_e: int,
        d_interest: int,
        hidden: int,
        use_semantic: bool,
        item_id_embedding: bool,
        decay: float = 0.1,
        dropout: float = 0.0,
        id_input: bool = True,
    ) -> None:
        super().__init__()
        self.dims, self.decay = dims, decay
        self.id_input = id_input and item_id_embedding
        self.sem = SemanticEmbedding(dims.d_text, dims.d_visual, d_e) if use_semantic else None
        self.T_x = nn.Linear(d_e if use_semantic else dims.d_text, d_interest)
        self.T_u = nn.Linear(dims.n_topics, d_interest) if dims.n_topics else None
        self.no_item = nn.Parameter(torch.zeros(d_interest))  # the video slot of a cold-start step
        self.gru = nn.GRU(d_interest * (2 if self.T_u is not None else 1), hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.W_o = nn.Linear(hidden, d_interest)
        self.item_id = nn.Embedding(dims.n_items, d_interest) if item_id_embedding else None
        if self.item_id is not None:
            nn.init.normal_(self.item_id.weight, std=0.01)
        self.item_bias = nn.Parameter(torch.zeros(dims.n_items))
        # item side information travels with the weights (saved in the state dict)
        self.register_buffer("text", torch.zeros(dims.n_items, dims.d_text))
        self.register_buffer("visual_rows", torch.zeros(dims.n_visual, max(dims.d_visual, 1)))
        self.register_buffer("visual_idx", torch.zeros(dims.n_visual, dtype=torch.long))
        self.register_buffer("visual_pos", torch.full((dims.n_items,), -1, dtype=torch.long))  # row in visual_rows
        self.register_buffer("item_topics", torch.zeros(dims.n_items, max(dims.n_topics, 1)))

    # ------------------------------------------------------------------ item side
    def item_semantic(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``s_i`` for every item (or the sorted subset ``items``): the semantic embedding, or the raw
        text feature when the semantic part is off."""
        text = self.text if items is None else self.text[items]
        if self.sem is None:
            return text
        if not (self.dims.n_visual and self.dims.d_visual):
            return self.sem(text)
        pos = self.visual_pos if items is None else self.visual_pos[items]
        rows = (pos >= 0).nonzero(as_tuple=True)[0]
        return self.sem(text, self.visual_rows[pos[rows]], rows)

    def item_interest(self, semantic: torch.Tensor) -> torch.Tensor:
        return self.T_x(semantic)

    def batch_item_interest(self, items: torch.Tensor) -> torch.Tensor:
        """``T_x s_i`` of the sorted unique ``items`` only, scattered into an ``(n_items, d)`` table
        (zero rows elsewhere): a training batch touches a few thousand of the ~20k items, and the
        semantic projections of all of them were most of a small batch's cost."""
        rows = self.item_interest(self.item_semantic(items))
        return rows.new_zeros(self.dims.n_items, rows.shape[1]).index_copy(0, items, rows)

    def item_inputs(self, item_emb: torch.Tensor) -> torch.Tensor:
        """Input-side item vectors: ``T_x s_i + e_i`` (tied with the output side) with ``id_input``,
        else the content part ``T_x s_i`` alone (the paper's input)."""
        return self.item_targets(item_emb) if self.id_input else item_emb

    def item_targets(self, item_emb: torch.Tensor) -> torch.Tensor:
        """Output-side item vectors ``T_x s_i + e_i`` (computed once per batch, shared by all steps)."""
        return item_emb if self.item_id is None else item_emb + self.item_id.weight

    # ------------------------------------------------------------------ user side
    def prefix_interests(self, seq: torch.Tensor, times: torch.Tensor, lens: torch.Tensor) -> torch.Tensor | None:
        """``u_t`` for every step ``(B, L, K)``: decayed topic means of each prefix (None without topics)."""
        if self.T_u is None:
            return None
        topics = self.item_topics[seq.clamp(max=self.dims.n_items - 1)]
        return causal_decay_weights(times, lens, self.decay) @ topics

    def step_inputs(self, item_rows: torch.Tensor, interests: torch.Tensor | None) -> torch.Tensor:
        """GRU inputs ``T_x s_v (+) T_u u`` from item interest rows and topic interests (same leading shape)."""
        if self.T_u is None or interests is None:
            return item_rows
        return torch.cat([item_rows, self.T_u(interests)], dim=-1)

    def history_inputs(
        self, seq: torch.Tensor, times: torch.Tensor, lens: torch.Tensor, item_emb: torch.Tensor
    ) -> torch.Tensor:
        """GRU inputs ``(B, L, d_in)`` of right-padded histories (``seq`` padded with ``n_items``); the
        input at step ``t`` depends on ``seq[:, :t+1]`` and ``times[:, :t+1]`` only."""
        padded = torch.cat([item_emb, item_emb.new_zeros(1, item_emb.shape[1])])
        return self.step_inputs(take_rows(padded, seq), self.prefix_interests(seq, times, lens))

    def cold_inputs(self, interests: torch.Tensor | None, batch: int) -> torch.Tensor:
        """One-step inputs ``(B, d_in)`` of users known only by the topics of their text."""
        slot = self.no_item.expand(batch, -1)
        return self.step_inputs(slot, interests)

    def histories(
        self, seq: torch.Tensor, times: torch.Tensor, lens: torch.Tensor, item_emb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """GRU outputs ``(B, L, hidden)`` (output ``t`` has read ``v_1..v_t`` and predicts ``v_{t+1}``)
        and the last state ``(B, hidden)`` of each history (lengths >= 1). Packed: no work on padding.
        ``item_emb`` is the content table ``T_x s_i``; the inputs add ``e_i`` (:meth:`item_inputs`)."""
        x = self.history_inputs(seq, times, lens, self.item_inputs(item_emb))
        return packed_gru_by_length(self.gru, x, lens, input_dropout=self.drop)

    def step(self, inputs: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """One GRU step ``(B, d_in) -> (B, hidden)`` from state ``h`` (zeros when None)."""
        out, _ = self.gru(self.drop(inputs)[:, None, :], None if h is None else h[None].contiguous())
        return out[:, 0]

    def logits(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Next-video scores ``(N, n_items)`` of GRU states ``h (N, hidden)`` (``targets``: :meth:`item_targets`)."""
        return self.W_o(self.drop(h)) @ targets.T + self.item_bias

    def next_item_loss(
        self, h: torch.Tensor, targets: torch.Tensor, nxt: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean cross-entropy of the next videos ``nxt``: under the full softmax of :meth:`logits`, exact
        but chunked (the (N, n_items) logit matrix is never built whole), or with ``negatives`` (item
        indices shared by every row) against those only (sampled softmax, own target masked)."""
        q = self.W_o(self.drop(h))
        if negatives is None:
            return full_softmax_ce(q, targets, nxt, self.item_bias)
        return sampled_softmax_ce(q, targets, nxt, negatives, self.item_bias)

    def l2(self) -> torch.Tensor:
        """``||theta||^2`` over every trainable parameter (the paper's lambda_4 term)."""
        return sum((p.pow(2).sum() for p in self.parameters() if p.requires_grad), torch.zeros(()))


def packed_gru_by_length(
    gru: nn.GRU, x: torch.Tensor, lens: torch.Tensor, input_dropout: nn.Module | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``gru`` over right-padded ``x (B, L, d)`` with lengths ``lens`` (>= 1): outputs ``(B, L, hidden)``
    (zeros past each length) and last states ``(B, hidden)``. Users run in length buckets (1, 2-4,
    5-16, 17-64, ...), one packed pass each: the packed GRU's backward on a CPU costs about (steps x
    rows of its batch), so a few 50-item users no longer make the 1,000 short ones pay for 50 steps,
    and each step has a fixed cost too (powers of 2, seven buckets, were 76 against 65 ms forward and
    backward for a 256-user MicroLens batch, 2-core Zen 1). Every user's result is the same as in one
    packed pass (users do not interact).

    ``input_dropout`` acts on the packed steps only: on the padded batch ~90 % of its Bernoulli draws
    fell on padding that the GRU never reads (~20 ms of a 256-user MicroLens batch, 2-core Zen 1)."""
    L = x.shape[1]
    bucket = torch.ceil(torch.log2(lens.clamp(min=1).double()) / 2 - 1e-9).long()  # ceil(log4(len))
    order = torch.argsort(bucket, stable=True)
    counts = torch.bincount(bucket[order]).tolist()
    outs, lasts = [], []
    start = 0
    # index_select, not x[order]: its backward is an index_add_, advanced indexing's an index_put_
    for part in torch.split(x.index_select(0, order), [c for c in counts if c], dim=0):
        n = lens[order[start : start + len(part)]]
        start += len(part)
        width = int(n.max())
        packed = pack_padded_sequence(part[:, :width], n.cpu(), batch_first=True, enforce_sorted=False)
        if input_dropout is not None:
            packed = PackedSequence(
                input_dropout(packed.data), packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
            )
        out, last = gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=width)
        outs.append(F.pad(out, (0, 0, 0, L - width)))
        lasts.append(last[0])
    back = torch.argsort(order)
    return torch.cat(outs).index_select(0, back), torch.cat(lasts).index_select(0, back)


def take_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a 2-D ``table`` and an integer ``index`` of any shape, through
    ``index_select``: the same values and gradient, but its backward is an ``index_add_``, where
    advanced indexing's is an accumulating ``index_put_`` (20 against ~2 ms per 256 x 50 lookup of the
    19,739 x 64 item table on a 2-core Zen 1, several per training batch)."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[-1])


def masked_rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x[mask]`` for ``x (..., d)`` and a boolean ``mask`` of ``x``'s leading shape, through
    ``index_select`` (the same rows in the same order; 1.9 against 8.7 ms forward + backward for a
    256 x 49 x 128 batch of GRU outputs)."""
    return x.reshape(-1, x.shape[-1]).index_select(0, mask.reshape(-1).nonzero().squeeze(1))


def interest_distance(user_interest: torch.Tensor, video_interest: torch.Tensor) -> torch.Tensor:
    """``mean ||T_u u - T_x u~||^2`` with both sides unit-normalised (without it the trivial
    solution T_u = T_x = 0 would make the loss vanish)."""
    return (F.normalize(user_interest, dim=-1) - F.normalize(video_interest, dim=-1)).pow(2).sum(-1).mean()
