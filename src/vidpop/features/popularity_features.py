"""The one feature pipeline of the popularity models (issue 13, ask 1): the leaderboard and the served
``gbdt_retrieval`` model both build their inputs here, so the model that is served is the one measured.

Two blocks, every transform fitted on the TRAINING rows only:

* **tabular** — :class:`~vidpop.features.tabular.TabularFeaturizer` (every field of the posts, videos and
  authors tables, caption TF-IDF → SVD, title-embedding PCA) and, where the data has covers or frames,
  ``media_pca`` PCA components of the visual embedding (NaN where a row has no image);
* **retrieval** (label-derived) — the k nearest training videos by title embedding (their
  log-popularity, the neighbours' authors' statistics; :class:`RetrievalFeaturizer`), the same over the
  visual embedding (``img_nn_*``), the tags' smoothed training popularity and the cross-fitted ridge reads
  of the title text (:class:`~vidpop.features.text_ridge.TextRidgeEncoder`).

A row never retrieves itself (same ``video_id``): a training row gets leave-one-out values, a new video
(a new id) sees every training video. On a time split only videos published before a row count; a row
without a posting time (a video not yet posted) comes after every training video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError
from vidpop.features.retrieval_features import RetrievalConfig, RetrievalFeaturizer
from vidpop.features.tabular import TabularConfig, TabularFeaturizer, TagTargetEncoder
from vidpop.features.text_ridge import TextRidgeEncoder, video_text

#: the author key of a row without one: it matches no training author
NO_AUTHOR = "\0none"
#: a posting time after every real one (a new video that is not posted yet)
NOT_POSTED = np.datetime64("2262-01-01", "ns")


@dataclass
class PopularityFeaturesConfig:
    #: neighbours per video
    k: int = 20
    tabular: TabularConfig = field(default_factory=TabularConfig)
    #: PCA components of the visual embedding in the tabular block (where the data has images)
    media_pca: int = 16
    #: the retrieval block (label-derived: neighbours, tags' and text's training popularity) on/off
    retrieval: bool = True
    #: the cross-fitted ridge reads of the title text in the retrieval block
    text_ridge: bool = True


@dataclass
class Features:
    tab: np.ndarray
    tab_names: list[str]
    ret: np.ndarray
    ret_names: list[str]

    def matrix(self, retrieval: bool = True) -> np.ndarray:
        """The model input: the tabular block, and the retrieval block beside it when ``retrieval``."""
        return np.concatenate([self.tab, self.ret], axis=1) if retrieval else self.tab

    def names(self, retrieval: bool = True) -> list[str]:
        return self.tab_names + self.ret_names if retrieval else list(self.tab_names)


def posting_times(frame: pd.DataFrame) -> np.ndarray | None:
    """``published_at`` as naive UTC datetime64 (NaT where missing); None when no row has one."""
    if "published_at" not in frame:
        return None
    t = pd.to_datetime(frame["published_at"], utc=True, errors="coerce")
    return None if t.isna().all() else t.dt.tz_convert(None).to_numpy("datetime64[ns]")


def _authors(frame: pd.DataFrame) -> np.ndarray | None:
    if "author_id" not in frame:
        return None
    return np.where(frame["author_id"].isna().to_numpy(), NO_AUTHOR, frame["author_id"].astype(str).to_numpy())


def _has_tags(frame: pd.DataFrame) -> bool:
    return "tags" in frame and bool(frame["tags"].fillna("").astype(str).str.strip().ne("").any())


class PopularityFeatures:
    """``fit(frame, emb, y, visual)`` on the training rows; ``transform(frame, emb, visual)`` of any rows.

    ``frame``: the ``videos_with_authors`` rows; ``emb``: their title sentence embeddings; ``visual``:
    optional ``(values, present mask)`` of a cover/frame embedding."""

    def __init__(self, config: PopularityFeaturesConfig | None = None) -> None:
        self.config = config or PopularityFeaturesConfig()

    def fit(
        self,
        frame: pd.DataFrame,
        emb: np.ndarray,
        y: np.ndarray,
        visual: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PopularityFeatures:
        c = self.config
        y = np.asarray(y, np.float64).ravel()
        if len(frame) != len(y) or len(emb) != len(y) or not len(y):
            raise VidpopError(f"popularity features: {len(frame)} rows, {len(emb)} embeddings and {len(y)} targets")
        frame = frame.reset_index(drop=True)
        self.tabular_ = TabularFeaturizer(c.tabular).fit(frame, emb)
        tab = self.tabular_.transform(frame, emb)
        ids = frame["video_id"].astype(str).to_numpy()
        times = posting_times(frame)
        self.time_aware_ = times is not None
        self.retrieval_: RetrievalFeaturizer | None = None
        self.tags_: TagTargetEncoder | None = None
        self.text_ridge_: TextRidgeEncoder | None = None
        self.visual_retrieval_: RetrievalFeaturizer | None = None
        self.visual_pca_ = None
        if c.retrieval:
            stat_cols = [j for j, n in enumerate(self.tabular_.names_) if n.startswith("log1p_author_")]
            authors = _authors(frame)
            stats = tab[:, stat_cols] if stat_cols and authors is not None else None
            self.retrieval_ = RetrievalFeaturizer(RetrievalConfig(k=c.k, time_aware=self.time_aware_))
            self.retrieval_.fit(emb, y, ids, times, authors, stats)
            self.tags_ = TagTargetEncoder().fit(frame, y) if _has_tags(frame) else None
            self.text_ridge_ = TextRidgeEncoder().fit(ids, video_text(frame), emb, y) if c.text_ridge else None
        if visual is not None:
            values, mask = visual
            rows = np.flatnonzero(np.asarray(mask, bool))
            if len(rows) > max(c.media_pca, 2 * c.k):
                from sklearn.decomposition import PCA

                if c.retrieval:
                    self.visual_retrieval_ = RetrievalFeaturizer(RetrievalConfig(k=c.k, time_aware=self.time_aware_))
                    self.visual_retrieval_.fit(
                        values[rows], y[rows], ids[rows], None if times is None else times[rows], None, None
                    )
                self.visual_pca_ = PCA(c.media_pca, random_state=0).fit(values[rows])
        return self

    def transform(
        self, frame: pd.DataFrame, emb: np.ndarray, visual: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Features:
        if not hasattr(self, "tabular_"):
            raise VidpopError("popularity features are not fitted; call fit() first")
        frame = frame.reset_index(drop=True)
        tab, tab_names = self.tabular_.transform(frame, emb), list(self.tabular_.names_)
        ids = frame["video_id"].astype(str).to_numpy()
        times = self._query_times(frame)
        ret: list[np.ndarray] = [np.zeros((len(frame), 0), np.float32)]
        ret_names: list[str] = []
        if self.retrieval_ is not None:
            ret.append(self.retrieval_.transform(emb, ids, times, _authors(frame)))
            ret_names += self.retrieval_.feature_names()
        if self.tags_ is not None:
            ret.append(self.tags_.transform(frame))
            ret_names += list(self.tags_.names_)
        if self.text_ridge_ is not None:
            ret.append(self.text_ridge_.transform(ids, video_text(frame), emb))
            ret_names += list(self.text_ridge_.names_)
        if self.visual_pca_ is not None:
            img, z = self._visual(ids, times, visual)
            if self.visual_retrieval_ is not None:
                names = self.visual_retrieval_.feature_names()
                keep = [j for j, n in enumerate(names) if n.startswith("nn_")]
                ret.append(img[:, keep])
                ret_names += [f"img_{names[j]}" for j in keep]
            tab = np.concatenate([tab, z], axis=1)
            tab_names += [f"visual_pca{j}" for j in range(z.shape[1])]
        return Features(tab, tab_names, np.concatenate(ret, axis=1).astype(np.float32), ret_names)

    def feature_names(self) -> list[str]:
        """Names of the columns of ``transform(...).matrix()``, in order."""
        tab = list(self.tabular_.names_)
        ret = self.retrieval_.feature_names() if self.retrieval_ is not None else []
        ret += list(self.tags_.names_) if self.tags_ is not None else []
        ret += list(self.text_ridge_.names_) if self.text_ridge_ is not None else []
        if self.visual_pca_ is not None:
            vr = self.visual_retrieval_
            ret += [f"img_{n}" for n in vr.feature_names() if n.startswith("nn_")] if vr is not None else []
            tab += [f"visual_pca{j}" for j in range(self.visual_pca_.n_components_)]
        return tab + ret

    def _query_times(self, frame: pd.DataFrame) -> np.ndarray | None:
        if not self.time_aware_:
            return None
        t = posting_times(frame)
        out = np.full(len(frame), NOT_POSTED) if t is None else t.copy()
        out[np.isnat(out)] = NOT_POSTED
        return out

    def _visual(
        self, ids: np.ndarray, times: np.ndarray | None, visual: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Visual neighbours and PCA of the rows that have an image; NaN for the others."""
        assert self.visual_pca_ is not None
        vr = self.visual_retrieval_
        img = np.full((len(ids), len(vr.feature_names()) if vr is not None else 0), np.nan, np.float32)
        z = np.full((len(ids), self.visual_pca_.n_components_), np.nan, np.float32)
        rows = np.zeros(0, np.int64) if visual is None else np.flatnonzero(np.asarray(visual[1], bool))
        if len(rows) and visual is not None:
            if vr is not None:
                img[rows] = vr.transform(visual[0][rows], ids[rows], None if times is None else times[rows], None)
            z[rows] = self.visual_pca_.transform(visual[0][rows])
        return img, z

    def faiss_indexes(self) -> dict[str, RetrievalFeaturizer]:
        """The featurizers whose faiss index a model folder stores in a file of its own, by attribute stem."""
        both = {"retrieval": self.retrieval_, "visual_retrieval": self.visual_retrieval_}
        return {name: rf for name, rf in both.items() if rf is not None}
