"""Explainable attention model: frames + headline -> popular / unpopular.

Frames: each of N frames (sampled over the first T seconds) is embedded by the image CNN, then a learnable
linear layer + ReLU gives q_i; a two-layer additive attention (u_i = tanh(W_u q_i + b_u), a_i = W_a u_i + b_a,
α = softmax(a)) pools them into v = Σ α_i q_i. Headline: GloVe word vectors -> biLSTM -> the same attention
over the hidden states (β_t) -> d = Σ β_t h_t. Fusion: [v; d] -> two-layer classifier whose hidden layer is
the multimodal embedding; cross-entropy on the median split. The attention weights are the explanation:
α says which frames mattered, β which words; Grad-CAM (``vidpop.explain.gradcam``) says where in a frame.

Training runs on cached pooled CNN features (the backbone is frozen), which is what makes it fast. The same
network also runs from raw frames through the backbone (:meth:`AttentionExplainModel.forward_from_frames`) so
that gradients reach the conv map for Grad-CAM.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from vidpop.data.preprocessing import Vocabulary
from vidpop.errors import VidpopError
from vidpop.models.base import VidpopModel, dataset_rows
from vidpop.models.config import ModelConfig
from vidpop.models.registry import register_model
from vidpop.training.loop import TrainConfig, fit_module, predict_batched, seed_everything

MODALITIES = ("frames", "headline", "both")
#: what every view of α (page, CLI, PNG, JSON) says when the frame attention never learned: trained on
#: headlines and one-frame covers only, softmax over one item has no gradient, so α stays uniform
ALPHA_NOT_LEARNED = "frame attention not learned (no labelled clips): frames ranked by Grad-CAM evidence"
ALPHA_UNIFORM = "frame attention uniform on this clip: frames ranked by Grad-CAM evidence"
ALPHA_MEAN_POOLING = "mean pooling (no frame attention): frames ranked by Grad-CAM evidence"
POOLINGS = ("attention", "mean")
HEADLINE_POOLINGS = ("attention", "last")


@functools.cache
def _glove() -> Any:
    """GloVe vectors, loaded once per process (building the 400k-word index takes seconds)."""
    from vidpop.features.text import GloveVectors

    return GloveVectors()


# ---------------------------------------------------------------------------------------------- layers
def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 restricted to ``mask`` (True = real item); masked positions get exactly 0 and a
    fully masked row gets all zeros (rather than NaN)."""
    scores = scores.masked_fill(~mask, float("-inf"))
    scores = torch.where(mask.any(dim=1, keepdim=True), scores, torch.zeros_like(scores))
    return torch.softmax(scores, dim=1) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over the unmasked items of ``x`` (B, L, D); also returns the (uniform) weights."""
    w = mask.float() / mask.sum(dim=1, keepdim=True).clamp(min=1)
    return (w.unsqueeze(-1) * x).sum(dim=1), w


class AdditiveAttention(nn.Module):
    """u_i = tanh(W_u x_i + b_u), a_i = W_a u_i + b_a, α = masked softmax(a); returns (Σ α_i x_i, α)."""

    def __init__(self, dim: int, attn_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1)
        # W_a starts at zero: an untrained attention is exactly mean pooling (uniform α), which is also what
        # frame attention stays at when it only ever sees one-frame clips (softmax over one item has no gradient).
        nn.init.zeros_(self.score.weight)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.score(torch.tanh(self.proj(x))).squeeze(-1)
        alpha = masked_softmax(a, mask)
        return (alpha.unsqueeze(-1) * x).sum(dim=1), alpha


@dataclass
class AttentionExplainConfig(ModelConfig):
    #: which inputs the model uses: "frames", "headline" or "both"
    modalities: str = "both"
    #: frame pooling: "attention" (α) or "mean" (the mean-pooling baseline row)
    frame_pooling: str = "attention"
    #: headline pooling: "attention" (β over biLSTM states) or "last" (final forward/backward states)
    headline_pooling: str = "attention"
    n_frames: int = 18
    seconds: float = 6.0
    frame_dim: int = 256
    attn_dim: int = 128
    lstm_hidden: int = 64
    max_words: int = 32
    #: words seen fewer times in training map to <unk> (2 beat 1 clearly on the YouTube headlines)
    min_word_count: int = 2
    #: keep the GloVe-initialised word embedding fixed (True) or fine-tune it
    freeze_embeddings: bool = False
    hidden: int = 128
    dropout: float = 0.3
    backbone: str = "efficientnet_lite0"
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-4, patience=5)
    )

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("modalities", self.modalities, MODALITIES),
            ("frame_pooling", self.frame_pooling, POOLINGS),
            ("headline_pooling", self.headline_pooling, HEADLINE_POOLINGS),
        ):
            if value not in allowed:
                raise VidpopError(f"attention_explain: {name} must be one of {allowed}, got '{value}'")

    @property
    def uses_frames(self) -> bool:
        return self.modalities in ("frames", "both")

    @property
    def uses_headline(self) -> bool:
        return self.modalities in ("headline", "both")


class AttentionNet(nn.Module):
    """The network; inputs are pooled per-frame CNN features (B, N, F) + frame mask and token ids (B, L)."""

    def __init__(self, cfg: AttentionExplainConfig, feat_dim: int, vocab_size: int, emb_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        in_dim = 0
        if cfg.uses_frames:
            # Standardisation of the backbone's pooled features lives in the net so that the raw-frame path
            # (Grad-CAM) and the cached-feature path compute exactly the same function.
            self.register_buffer("feat_mean", torch.zeros(feat_dim))
            self.register_buffer("feat_std", torch.ones(feat_dim))
            self.frame_proj = nn.Sequential(nn.Linear(feat_dim, cfg.frame_dim), nn.ReLU())
            self.frame_attn = (
                AdditiveAttention(cfg.frame_dim, cfg.attn_dim) if cfg.frame_pooling == "attention" else None
            )
            in_dim += cfg.frame_dim
        if cfg.uses_headline:
            self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
            self.lstm = nn.LSTM(emb_dim, cfg.lstm_hidden, batch_first=True, bidirectional=True)
            self.word_attn = (
                AdditiveAttention(2 * cfg.lstm_hidden, cfg.attn_dim) if cfg.headline_pooling == "attention" else None
            )
            in_dim += 2 * cfg.lstm_hidden
        self.drop = nn.Dropout(cfg.dropout)
        self.fuse = nn.Sequential(nn.Linear(in_dim, cfg.hidden), nn.ReLU())  # the multimodal embedding
        self.out = nn.Linear(cfg.hidden, 2)

    def encode_frames(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.frame_proj((feats - self.feat_mean) / self.feat_std)
        if self.frame_attn is None:
            return masked_mean(q, mask)
        return self.frame_attn(q, mask)

    def encode_title(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = tokens != 0
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        emb = self.drop(self.embedding(tokens))
        packed = nn.utils.rnn.pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        if self.word_attn is None:
            # final forward state and final backward state (the plain biLSTM row); β unused -> uniform
            return torch.cat([h_n[0], h_n[1]], dim=1), masked_mean(h, mask)[1]
        return self.word_attn(h, mask)

    def forward(
        self,
        frames: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        parts: list[torch.Tensor] = []
        out: dict[str, torch.Tensor] = {}
        if self.cfg.uses_frames:
            if frames is None or frame_mask is None:
                raise VidpopError("this attention model needs frame features")
            v, out["alpha"] = self.encode_frames(frames, frame_mask)
            parts.append(v)
        if self.cfg.uses_headline:
            if tokens is None:
                raise VidpopError("this attention model needs headline tokens")
            d, out["beta"] = self.encode_title(tokens)
            parts.append(d)
        out["embedding"] = self.fuse(self.drop(torch.cat(parts, dim=1)))
        out["logits"] = self.out(self.drop(out["embedding"]))
        return out


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class AttentionInputs:
    """What the estimator reads: headlines and/or per-frame pooled CNN features with a frame mask.

    ``frames`` is (n, N, F) float (a cover image is a one-frame clip: N = 1); ``frame_mask`` (n, N) bool
    marks real frames (clips shorter than T seconds have fewer). Either part may be None when unused.
    """

    titles: list[str] | None = None
    frames: np.ndarray | None = None
    frame_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.frames is not None:
            self.frames = np.asarray(self.frames, np.float32)
            if self.frames.ndim != 3:
                raise VidpopError(f"frames must be (n, n_frames, feat_dim), got shape {self.frames.shape}")
            if self.frame_mask is None:
                self.frame_mask = np.ones(self.frames.shape[:2], bool)
            self.frame_mask = np.asarray(self.frame_mask, bool)
            if self.frame_mask.shape != self.frames.shape[:2]:
                raise VidpopError("frame_mask must have the shape of frames[..., 0]")
        if self.titles is not None and self.frames is not None and len(self.titles) != len(self.frames):
            raise VidpopError("titles and frames must have the same number of rows")

    def __len__(self) -> int:
        return len(self.titles) if self.titles is not None else len(self.frames) if self.frames is not None else 0

    def take(self, idx: np.ndarray) -> AttentionInputs:
        """The rows ``idx`` (positional)."""
        return AttentionInputs(
            titles=[self.titles[i] for i in idx] if self.titles is not None else None,
            frames=self.frames[idx] if self.frames is not None else None,
            frame_mask=self.frame_mask[idx] if self.frame_mask is not None else None,
        )


# ---------------------------------------------------------------------------------------------- estimator
@register_model("attention_explain")
class AttentionExplainModel(VidpopModel):
    """Popular/unpopular classifier with frame attention (α) and word attention (β), explainable by Grad-CAM."""

    task = "classification"
    description = "frames (CNN + attention) + headline (GloVe biLSTM + attention) -> popular/unpopular; Grad-CAM"
    Config = AttentionExplainConfig
    capabilities = frozenset({"predict", "explain", "from_text"})
    consumes = "dataset"

    # ------------------------------------------------------------ building
    def _build_module(self) -> nn.Module:
        return AttentionNet(self.config, self.feat_dim_, len(self.vocab_.tokens_) if self.vocab_ else 1, self.emb_dim_)

    def _fit_text(self, titles: list[str]) -> np.ndarray | None:
        """Vocabulary on the training titles and its GloVe-initialised embedding matrix (tokens GloVe
        lacks start as small random vectors and are learned; ``glove_coverage_`` says how many hit)."""
        self.vocab_ = Vocabulary(min_count=self.config.min_word_count).fit(titles)
        glove = _glove()
        emb = glove.embedding_matrix(self.vocab_, seed=self.config.train.seed)
        self.emb_dim_ = int(emb.shape[1])
        self.glove_coverage_ = float(glove.coverage_.get("fraction", 0.0))
        return emb

    def encode_titles(self, titles: list[str]) -> np.ndarray:
        """Token ids (n, max_words); an empty title gets one <unk> so that attention has an item."""
        ids = self.vocab_.encode_many(list(titles), self.config.max_words)
        ids[ids.sum(axis=1) == 0, 0] = Vocabulary.UNK
        return ids

    def _arrays(self, X: AttentionInputs) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.config.uses_frames:
            if X.frames is None:
                raise VidpopError("this attention model uses frames: pass AttentionInputs(frames=...)")
            if X.frames.shape[2] != self.feat_dim_:
                raise VidpopError(
                    f"frame features have {X.frames.shape[2]} dims, the model was trained on {self.feat_dim_}"
                )
            out["frames"], out["frame_mask"] = X.frames, X.frame_mask
        if self.config.uses_headline:
            if X.titles is None:
                raise VidpopError("this attention model uses headlines: pass AttentionInputs(titles=...)")
            out["tokens"] = self.encode_titles(X.titles)
        return out

    # ------------------------------------------------------------ estimator API
    def fit(
        self, X: AttentionInputs, y: np.ndarray, X_val: AttentionInputs | None = None, y_val: np.ndarray | None = None
    ) -> AttentionExplainModel:
        """Train on labels ``y`` (1 = popular); ``X_val``/``y_val`` drive early stopping."""
        y = np.asarray(y, np.int64)
        if len(y) != len(X):
            raise VidpopError(f"{len(X)} inputs but {len(y)} labels")
        if len(np.unique(y)) < 2:
            raise VidpopError("attention_explain needs both classes (popular and unpopular) in the training labels")
        cfg = self.config
        self.feat_dim_ = int(X.frames.shape[2]) if cfg.uses_frames and X.frames is not None else 0
        self.vocab_: Vocabulary | None = None
        self.emb_dim_ = 1
        emb = self._fit_text(list(X.titles)) if cfg.uses_headline and X.titles is not None else None
        seed_everything(cfg.train.seed)  # the initial weights, not only the batches, follow the seed
        self.module_ = self._build_module()
        if emb is not None:
            self.module_.embedding.weight.data.copy_(torch.from_numpy(emb))
            self.module_.embedding.weight.requires_grad_(not cfg.freeze_embeddings)
        train = self._arrays(X)
        # α gets a gradient only from rows with two or more real frames; record whether any existed
        self.frame_attention_trained_ = bool(
            cfg.uses_frames
            and cfg.frame_pooling == "attention"
            and X.frame_mask is not None
            and (X.frame_mask.sum(axis=1) > 1).any()
        )
        if cfg.uses_frames:
            real = X.frames[X.frame_mask]
            self.module_.feat_mean.copy_(torch.from_numpy(real.mean(axis=0)))
            self.module_.feat_std.copy_(torch.from_numpy(np.maximum(real.std(axis=0), 1e-3)))
        train["y"] = y
        val = None
        if X_val is not None and y_val is not None and len(X_val):
            val = {**self._arrays(X_val), "y": np.asarray(y_val, np.int64)}

        def loss_fn(m: nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            logits = m(b.get("frames"), b.get("frame_mask"), b.get("tokens"))["logits"]
            acc = float((logits.argmax(1) == b["y"]).float().mean())
            return nn.functional.cross_entropy(logits, b["y"]), {"acc": acc}

        self.history_ = fit_module(self.module_, loss_fn, train, val, cfg.train).as_dict()
        return self

    def _run(self, X: AttentionInputs, key: str) -> np.ndarray:
        self._check_fitted()

        def fn(m: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
            out = m(b.get("frames"), b.get("frame_mask"), b.get("tokens"))
            return torch.softmax(out["logits"], dim=1) if key == "proba" else out[key]

        return predict_batched(self.module_, fn, self._arrays(X))

    def predict_proba(self, X: AttentionInputs) -> np.ndarray:
        """(n, 2) class probabilities; column 1 is P(popular)."""
        return self._run(X, "proba")

    def predict(self, X: AttentionInputs) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def prepare_inputs(self, dataset: Any, rows: Any = None, *, store: Any = None) -> AttentionInputs:
        """Frames (else the cover as one frame) and titles of ``rows`` of a VideoDataset, see
        :func:`vidpop.models.video_inputs.attention_inputs_for`."""
        from vidpop.models.video_inputs import attention_inputs_for

        self._check_fitted()
        return attention_inputs_for(self, dataset_rows(dataset, rows), store)

    def attention(self, X: AttentionInputs) -> dict[str, np.ndarray]:
        """Frame weights α (n, N) and/or word weights β (n, max_words) for each row."""
        out = {}
        if self.config.uses_frames:
            out["alpha"] = self._run(X, "alpha")
        if self.config.uses_headline:
            out["beta"] = self._run(X, "beta")
        return out

    def frame_attention_status(self, alpha: np.ndarray | None) -> dict[str, Any] | None:
        """Whether α of one clip means anything: ``learned`` (the attention trained on multi-frame
        clips), ``uniform`` (this clip's α), and the ``note`` to show beside α (None when α is learned and
        not uniform). A model saved before this was recorded counts as untrained when its α is uniform."""
        if not self.config.uses_frames:
            return None
        a = np.asarray(alpha if alpha is not None else [], dtype=np.float64)
        uniform = len(a) < 2 or float(np.ptp(a)) <= 1e-4 * max(float(a.max()), 1e-12)
        trained = getattr(self, "frame_attention_trained_", None)
        if self.config.frame_pooling != "attention":
            note: str | None = ALPHA_MEAN_POOLING
        elif trained is False or (trained is None and uniform):
            note = ALPHA_NOT_LEARNED
        else:
            note = ALPHA_UNIFORM if uniform else None
        return {"learned": bool(trained) and self.config.frame_pooling == "attention", "uniform": uniform, "note": note}

    def embed(self, X: AttentionInputs) -> np.ndarray:
        """The multimodal embedding (the classifier's hidden layer), (n, hidden)."""
        return self._run(X, "embedding")

    # ------------------------------------------------------------ end-to-end path (Grad-CAM)
    def forward_from_frames(
        self, images: torch.Tensor | None, title: str | None, backbone: Any | None = None
    ) -> dict[str, torch.Tensor]:
        """Run one clip from raw frames through the image CNN and the network, keeping the graph.

        ``images`` is (N, 3, H, W), already preprocessed for the backbone. The backbone's last conv map
        (N, C, h, w) is returned as ``feature_map``, inside the autograd graph, so that gradients of any
        output (e.g. the popular-class logit) with respect to it can be taken. The pooled
        features (spatial mean) feed the same network as training, so predictions match the cached path.
        """
        self._check_fitted()
        module = self.module_
        module.eval()
        out: dict[str, torch.Tensor] = {}
        frames = mask = tokens = None
        if self.config.uses_frames:
            if images is None or len(images) == 0:
                raise VidpopError("this model uses frames but no frames were given")
            backbone = backbone if backbone is not None else self.backbone()
            fmap = backbone.feature_map(images)
            if not fmap.requires_grad:
                # A frozen backbone yields a graph leaf: make it one that records the gradients of the
                # classifier score (Grad-CAM needs ∂s/∂A only, not gradients further down the CNN).
                fmap.requires_grad_(True)
            out["feature_map"] = fmap
            frames = fmap.mean(dim=(2, 3)).unsqueeze(0)
            mask = torch.ones(frames.shape[:2], dtype=torch.bool)
        if self.config.uses_headline:
            tokens = torch.from_numpy(self.encode_titles([title or ""]))
            out["tokens"] = tokens
        out.update(module(frames, mask, tokens))
        return out

    def backbone(self) -> Any:
        """The frozen image CNN named in the config (loaded once per process, not part of the saved state)."""
        from vidpop.features.image import load_backbone

        return load_backbone(self.config.backbone)
