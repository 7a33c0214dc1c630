"""The torch network of ``interest_rnn``: item embeddings, the GRU and the softmax over the corpus.

Step 0 of every sequence is the user's interest token ``T_u u`` (topic vector mapped into the
interest space; a learned start vector when the interest part is switched off); step ``t >= 1`` is
the interest embedding ``T_x s_{v_t}`` of the ``t``-th watched video. The output at step ``t``
scores the next video against every item: ``(W_o h_t) . (T_x s_i + e_i) + b_i`` with an optional
free item vector ``e_i`` (collaborative signal) on top of the content embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidpop.models.interest_rnn.semantic import SemanticEmbedding


@dataclass
class NetDims:
    n_items: int
    d_text: int
    d_visual: int  # 0 when no item has a visual feature
    n_visual: int  # items that have one
    n_topics: int  # 0 when the interest part is off


class InterestRNNNet(nn.Module):
    def __init__(
        self, dims: NetDims, d_e: int, d_interest: int, hidden: int, use_semantic: bool, item_id_embedding: bool
    ) -> None:
        super().__init__()
        self.dims = dims
        self.sem = SemanticEmbedding(dims.d_text, dims.d_visual, d_e) if use_semantic else None
        self.T_x = nn.Linear(d_e if use_semantic else dims.d_text, d_interest)
        self.T_u = nn.Linear(dims.n_topics, d_interest) if dims.n_topics else None
        self.start = nn.Parameter(torch.zeros(d_interest))
        self.gru = nn.GRU(d_interest, hidden, batch_first=True)
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

    # ------------------------------------------------------------------ user side
    def interest_token(self, topics: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``T_u u`` per user (``topics (B, K)``), or the learned start vector."""
        if self.T_u is None or topics is None:
            return self.start.expand(batch, -1)
        return self.T_u(topics)

    def run(self, seq: torch.Tensor, start: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
        """GRU outputs ``(B, L+1, hidden)`` over ``[start, emb(v_1) .. emb(v_L)]``; ``seq`` is padded
        with ``n_items`` (a zero row). Output ``t`` has read ``v_1..v_t`` and predicts ``v_{t+1}``."""
        padded = torch.cat([item_emb, item_emb.new_zeros(1, item_emb.shape[1])])
        inputs = torch.cat([start[:, None, :], padded[seq]], dim=1)
        out, _ = self.gru(inputs)
        return out

    def step(self, item_emb_rows: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One GRU step from state ``h (B, hidden)`` on the chosen items' embeddings."""
        out, _ = self.gru(item_emb_rows[:, None, :], h[None].contiguous())
        return out[:, 0]

    def logits(self, h: torch.Tensor, item_emb: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Next-video scores ``(N, n)`` from GRU states ``h (N, hidden)`` against the rows of
        ``item_emb`` (all items, or the items ``items`` when given)."""
        ids = self.item_id.weight if items is None or self.item_id is None else self.item_id(items)
        bias = self.item_bias if items is None else self.item_bias[items]
        targets = item_emb if self.item_id is None else item_emb + ids
        return self.W_o(h) @ targets.T + bias

    def pair_logits(self, h: torch.Tensor, item_emb_rows: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Score of one item per state: row ``j`` of ``h`` against ``item_emb_rows[j]`` (item ``items[j]``)."""
        targets = item_emb_rows if self.item_id is None else item_emb_rows + self.item_id(items)
        return (self.W_o(h) * targets).sum(-1) + self.item_bias[items]

    def l2(self) -> torch.Tensor:
        """``||theta||^2`` over every trainable parameter (the paper's lambda_4 term)."""
        return sum((p.pow(2).sum() for p in self.parameters() if p.requires_grad), torch.zeros(()))


def interest_distance(user_interest: torch.Tensor, video_interest: torch.Tensor) -> torch.Tensor:
    """``mean ||T_u u - T_x u~||^2`` with both sides unit-normalised (without it the trivial
    solution T_u = T_x = 0 would make the loss vanish)."""
    return (F.normalize(user_interest, dim=-1) - F.normalize(video_interest, dim=-1)).pow(2).sum(-1).mean()
