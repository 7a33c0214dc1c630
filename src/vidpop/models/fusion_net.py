"""Networks of the cover + title late-fusion model (the estimator is in ``cover_title_fusion.py``).

``FusionNet`` = visual branch (optional image backbone + FC) and text branch (pre-computed sentence
embedding + FC, a fine-tuned MiniLM + FC, or a GRU over GloVe vectors + FC), fused as
``w·visual + (1−w)·text`` and mapped to the ordinal classes by one linear layer.

A missing modality is *masked*, never imputed: its branch output is replaced by zeros with
``torch.where`` (so even NaNs in an empty slot cannot leak) and the fusion weights are
renormalised over the branches that are present. With a cover missing the prediction is the text
branch alone, whatever is in the image slot.

The forward pass is written as two sequential stages (:class:`VisualStage` then :class:`HeadStage`)
so that pipeline parallelism can put each on its own rank; ``FusionNet.forward`` is exactly
``head(*visual(...))``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

#: how the text branch reads a title
TEXT_KINDS = ("embedding", "gru", "minilm_finetune")


def fuse(v: torch.Tensor, t: torch.Tensor, mv: torch.Tensor, mt: torch.Tensor, w: float) -> torch.Tensor:
    """Late fusion ``w·v + (1−w)·t`` with the weights renormalised over the present branches.

    ``mv``/``mt`` are (B,) presence masks. A row whose weighted branches are all absent (e.g. w = 1
    and no cover) falls back to equal weights over what is present; a row with nothing gives zeros.
    """
    mv = mv.to(v.dtype).reshape(-1, 1)
    mt = mt.to(t.dtype).reshape(-1, 1)
    av, at = w * mv, (1.0 - w) * mt
    s = av + at
    fallback = s <= 0
    av = torch.where(fallback, mv, av)
    at = torch.where(fallback, mt, at)
    s = (av + at).clamp_min(1e-12)
    zero = torch.zeros((), dtype=v.dtype)
    return (av / s) * torch.where(mv > 0, v, zero) + (at / s) * torch.where(mt > 0, t, zero)


def _fc(d_in: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(dropout))


class VisualBranch(nn.Module):
    """Pooled cover features (or pixels, when a backbone is fine-tuned) -> FC -> (B, hidden)."""

    def __init__(self, img_dim: int, hidden: int, dropout: float, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = _fc(img_dim, hidden, dropout)
        self.hidden = hidden

    def train(self, mode: bool = True) -> VisualBranch:
        super().train(mode)
        if self.backbone is not None:
            # Batch norm statistics of the pretrained CNN stay frozen: micro-batches of covers are tiny.
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        present = mask > 0
        out = torch.zeros(img.shape[0], self.hidden, dtype=torch.float32, device=img.device)
        if present.any():
            # Only rows with a cover go through the network: the empty slots never influence anything.
            x = img[present]
            feats = self.backbone(x) if self.backbone is not None else x
            out = out.index_put((present.nonzero(as_tuple=True)[0],), self.fc(feats))
        return out


class TextBranch(nn.Module):
    """Title -> (B, hidden): FC over a sentence embedding, a fine-tuned MiniLM, or a GRU over GloVe."""

    def __init__(
        self,
        kind: str,
        hidden: int,
        dropout: float,
        text_dim: int = 384,
        embedding: torch.Tensor | None = None,
        gru_hidden: int = 128,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if kind not in TEXT_KINDS:
            raise ValueError(f"unknown text branch {kind!r}; use one of {TEXT_KINDS}")
        self.kind = kind
        if kind == "gru":
            if embedding is None:
                raise ValueError("the GRU text branch needs an embedding matrix (vocabulary x dim)")
            self.embed = nn.Embedding.from_pretrained(embedding, freeze=False, padding_idx=0)
            self.rnn = nn.GRU(embedding.shape[1], gru_hidden, batch_first=True)
            text_dim = gru_hidden
        elif kind == "minilm_finetune":
            if encoder is None:
                raise ValueError("the fine-tuned MiniLM branch needs the transformer encoder")
            self.encoder = encoder
            text_dim = int(encoder.config.hidden_size)
        self.fc = _fc(text_dim, hidden, dropout)

    def encode(self, txt: torch.Tensor) -> torch.Tensor:
        if self.kind == "embedding":
            return txt
        ids = txt.long()
        attn = ids != 0
        if self.kind == "gru":
            lengths = attn.sum(1).clamp_min(1).cpu()
            packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
            _, h = self.rnn(packed)
            return h[-1]
        # MiniLM as sentence-transformers uses it: mean of token states over the mask, L2-normalised.
        states = self.encoder(input_ids=ids, attention_mask=attn.long()).last_hidden_state
        m = attn.unsqueeze(-1).to(states.dtype)
        pooled = (states * m).sum(1) / m.sum(1).clamp_min(1.0)
        return nn.functional.normalize(pooled, dim=-1)

    def forward(self, txt: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encode(txt))


class VisualStage(nn.Module):
    """Pipeline stage 0: runs the visual branch and forwards the text inputs untouched."""

    def __init__(self, visual: VisualBranch) -> None:
        super().__init__()
        self.visual = visual

    def forward(
        self, img: torch.Tensor, img_mask: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.visual(img, img_mask), img_mask, txt, txt_mask


class HeadStage(nn.Module):
    """Pipeline stage 1: text branch, renormalised late fusion and the linear classifier."""

    def __init__(self, text: TextBranch, head: nn.Linear, fusion_weight: float) -> None:
        super().__init__()
        self.text = text
        self.head = head
        self.fusion_weight = fusion_weight

    def forward(
        self, v: torch.Tensor, img_mask: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor
    ) -> torch.Tensor:
        t = self.text(txt)
        return self.head(fuse(v, t, img_mask, txt_mask, self.fusion_weight))


class FusionNet(nn.Module):
    """Cover + title late fusion -> class logits (B, n_classes)."""

    def __init__(self, visual: VisualBranch, text: TextBranch, n_classes: int, fusion_weight: float) -> None:
        super().__init__()
        if not 0.0 <= fusion_weight <= 1.0:
            raise ValueError(f"fusion weight must be in [0, 1], got {fusion_weight}")
        self.stage0 = VisualStage(visual)
        self.stage1 = HeadStage(text, nn.Linear(visual.hidden, n_classes), fusion_weight)

    def forward(
        self, img: torch.Tensor, img_mask: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor
    ) -> torch.Tensor:
        return self.stage1(*self.stage0(img, img_mask, txt, txt_mask))

    def stages(self) -> list[nn.Module]:
        """The sequential pipeline stages (they share parameters with this network)."""
        return [self.stage0, self.stage1]
