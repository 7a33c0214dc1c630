"""The leaderboard's winning popularity pipeline as one saveable model (issue 13 §7, "the product serves
the winner"): tabular features + retrieval-augmented features -> LightGBM, with split-conformal intervals.

What the model folder holds, all fitted on the TRAINING part only (the validation part only calibrates
the intervals and records the validation metrics):

* ``state.pt`` — the tabular transforms (:class:`~vidpop.features.tabular.TabularFeaturizer`: category
  vocabularies, caption TF-IDF + SVD, title-embedding PCA, reference time), the tags' smoothed target
  encoding, the retrieval side tables (training videos' log-popularity, ids, times, authors, author
  statistics), the booster (LightGBM's text model) and the signed validation residuals (the conformal
  offsets);
* ``retrieval.faiss`` — the exact inner-product faiss index over the training videos' L2-normalised
  title embeddings (written only when the retrieval block is on);
* ``config.json`` — every chosen hyper-parameter (LightGBM's, k, the feature sizes).

:meth:`GBDTRetrievalRegressor.prepare_inputs` builds the input of any video — a dataset row or a brand-new
video with only a title (and whatever else is given: tags, duration, posting time, follower count).
Columns the training data had and the video lacks are missing values, never made up. A video retrieves
its neighbours among the training videos and never itself (same id), so a training row gets
leave-one-out features and a new video (a new id) sees every training video.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError
from vidpop.features.popularity_features import PopularityFeatures, PopularityFeaturesConfig
from vidpop.features.retrieval_features import RetrievalFeaturizer
from vidpop.features.tabular import TabularConfig
from vidpop.models.base import dataset_rows
from vidpop.models.lightgbm_baseline import LightGBMConfig, _LightGBMBase
from vidpop.models.registry import register_model
from vidpop.training import metrics
from vidpop.training.conformal import conformal_quantile


@dataclass
class GBDTRetrievalConfig(LightGBMConfig):
    #: the retrieval block (k-NN over training videos' title embeddings, author prior, tag encoding) on/off
    retrieval: bool = True
    #: neighbours per video
    k: int = 20
    #: TF-IDF -> SVD components of the caption and PCA components of the title embedding
    svd_dim: int = 32
    embedding_pca: int = 32
    tfidf_analyzer: str = "word"
    #: the name of the target (log scale) the answer shows: ``log1p_views`` is shown as a view count
    target_name: str = "log1p_views"
    #: the cross-fitted ridge reads of the title text among the retrieval features
    text_ridge: bool = True


@dataclass
class VideoTable:
    """Per video, what the pipeline reads: the ``videos_with_authors`` frame and the title embedding."""

    frame: pd.DataFrame
    emb: np.ndarray
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, rows: Any) -> VideoTable:
        rows = np.asarray(rows, np.int64)
        return VideoTable(self.frame.iloc[rows].reset_index(drop=True), self.emb[rows], self.notes)


def video_table(dataset: Any, store: Any = None, progress: bool = False) -> VideoTable:
    """The pipeline's input for every row of a VideoDataset (MiniLM title embeddings from the feature store)."""
    from vidpop.features.extract import dataset_features

    emb, _ = dataset_features(dataset, "title_minilm", store=store, progress=progress)
    return VideoTable(dataset.videos_with_authors().reset_index(drop=True), np.asarray(emb, np.float32))


@register_model("gbdt_retrieval")
class GBDTRetrievalRegressor(_LightGBMBase):
    """Tabular + retrieval-augmented features -> LightGBM, split-conformal 95% intervals (val residuals)."""

    task = "regression"
    description = "LightGBM on tabular + retrieval (k-NN of training videos) features, split-conformal intervals"
    Config = GBDTRetrievalConfig
    capabilities = frozenset({"predict", "intervals", "from_text"})
    consumes = "dataset"
    #: its draws (ŷ + validation residuals) are not a joint distribution over two videos (see ``sample``)
    joint_samples: ClassVar[bool] = False
    #: the faiss index file is listed in complete.json when written; state.pt always
    required_files: ClassVar[tuple[str, ...]] = ("state.pt",)

    # ------------------------------------------------------------ features
    def fit_features(self, X: VideoTable, y: np.ndarray) -> GBDTRetrievalRegressor:
        """Fit every transform on the training rows ``X`` (labels ``y``, log scale): the leaderboard's
        feature pipeline (:class:`~vidpop.features.popularity_features.PopularityFeatures`)."""
        c = self.config
        y = np.asarray(y, np.float64).ravel()
        if len(X) != len(y) or not len(y):
            raise VidpopError(f"gbdt_retrieval: {len(X)} training videos and {len(y)} targets")
        self.columns_ = {col: str(X.frame[col].dtype) for col in X.frame.columns}
        tabular = TabularConfig(
            svd_dim=c.svd_dim, embedding_pca=c.embedding_pca, tfidf_analyzer=c.tfidf_analyzer, seed=c.seed
        )
        cfg = PopularityFeaturesConfig(k=c.k, tabular=tabular, retrieval=c.retrieval, text_ridge=c.text_ridge)
        self.pipeline_ = PopularityFeatures(cfg).fit(X.frame, X.emb, y)
        self.feature_names_ = self.pipeline_.feature_names()
        return self

    @property
    def retrieval_(self) -> RetrievalFeaturizer | None:
        """The k-NN featurizer over the training videos' title embeddings (None with retrieval off)."""
        return self.pipeline_.retrieval_

    def _conform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The training frame's columns, a missing one as missing values (a new video has only some)."""
        missing = {c: pd.Series([None] * len(frame), dtype="object") for c in self.columns_ if c not in frame}
        if "published_at" in missing:
            missing["published_at"] = pd.Series(pd.NaT, index=range(len(frame)), dtype="datetime64[ns, UTC]")
        for c in list(missing):
            if c != "published_at" and self.columns_[c] not in ("object", "string", "str", "category"):
                missing[c] = pd.Series(np.nan, index=range(len(frame)), dtype="float64")
        if not missing:
            return frame
        return pd.concat([frame.reset_index(drop=True), pd.DataFrame(missing)], axis=1)

    def features(self, X: VideoTable) -> np.ndarray:
        """The feature matrix (n, len(feature_names_)) of any videos, read-only on the fitted state."""
        if not hasattr(self, "pipeline_"):
            raise VidpopError("gbdt_retrieval is not fitted; call fit() first")
        feats = self.pipeline_.transform(self._conform(X.frame), X.emb)
        return feats.matrix().astype(np.float32)

    # ------------------------------------------------------------ estimator API
    def fit_booster(self, F: np.ndarray, y: np.ndarray) -> GBDTRetrievalRegressor:
        """The LightGBM on a feature matrix of the training rows (early stopping on a seeded ``val_frac``
        of them, as the leaderboard's LightGBM)."""
        self._train(F, np.asarray(y, np.float64).ravel(), None, None)
        self.target_names_ = [self.config.target_name]
        return self

    def calibrate(self, X_val: VideoTable, y_val: np.ndarray) -> dict[str, float]:
        """Signed validation residuals (the split-conformal offsets) and the validation metrics."""
        y_val = np.asarray(y_val, np.float64).ravel()
        pred = self.predict(X_val)
        self.residuals_ = (y_val - pred).astype(np.float64)
        self.val_metrics_ = {
            "MAE": metrics.mae(y_val, pred),
            "MAPE": metrics.mape(y_val, pred),
            "R2": metrics.r2(y_val, pred),
            "Spearman": metrics.spearman(y_val, pred),
            "n": float(len(y_val)),
        }
        return self.val_metrics_

    def fit(
        self, X: VideoTable, y: np.ndarray, X_val: VideoTable | None = None, y_val: np.ndarray | None = None
    ) -> GBDTRetrievalRegressor:
        """Transforms and booster on the training rows; with a validation part, the conformal offsets."""
        self.fit_features(X, y)
        self.fit_booster(self.features(X), y)
        if X_val is not None and y_val is not None and len(X_val):
            self.calibrate(X_val, y_val)
        return self

    def prepare_inputs(self, dataset: Any, rows: Any = None, *, store: Any = None) -> VideoTable:
        self._check_fitted()
        return video_table(dataset_rows(dataset, rows), store=store)

    def predict(self, X: VideoTable) -> np.ndarray:
        return self._raw_predict(self.features(X))

    def _check_calibrated(self) -> np.ndarray:
        res = getattr(self, "residuals_", None)
        if res is None or not len(res):
            raise VidpopError("gbdt_retrieval has no validation residuals: fit it with a validation part")
        return res

    def predict_interval(self, X: VideoTable, level: float = 0.95) -> dict[str, Any]:
        """Mean and the split-conformal interval ŷ ± q (q from |validation residuals|), as (n, 1) arrays."""
        q = conformal_quantile(self._check_calibrated(), level)
        mean = self.predict(X)[:, None]
        return {"mean": mean, "lower": mean - q, "upper": mean + q, "calibrated": math.isfinite(q)}

    def sample(self, X: VideoTable) -> np.ndarray:
        """(S, n, 1) draws of the conformal predictive distribution: ŷ + each signed validation residual.
        Used for P(y above a threshold); the draws of two videos share residuals, so they do not give an
        interval for a difference between videos."""
        res = self._check_calibrated()
        return (self.predict(X)[None, :] + res[:, None])[:, :, None]

    # ------------------------------------------------------------ persistence
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        pipeline = state.get("pipeline_")
        if pipeline is not None:  # the faiss indexes go to files of their own
            copy = PopularityFeatures(pipeline.config)
            copy.__dict__.update(pipeline.__dict__)
            for name, rf in pipeline.faiss_indexes().items():
                bare = RetrievalFeaturizer(rf.config)
                bare.__dict__.update({k: v for k, v in rf.__dict__.items() if k != "index_"})
                setattr(copy, f"{name}_", bare)
            state["pipeline_"] = copy
        return state

    def write_files(self, out: Path) -> None:
        import faiss

        for name, rf in self.pipeline_.faiss_indexes().items():
            faiss.write_index(rf.index_, str(out / f"{name}.faiss"))

    def read_files(self, src: Path) -> None:
        import faiss

        for name, rf in self.pipeline_.faiss_indexes().items():
            path = src / f"{name}.faiss"
            if not path.is_file():
                raise VidpopError(f"model folder {src} is incomplete: missing {path.name} — retrain it")
            rf.index_ = faiss.read_index(str(path))
