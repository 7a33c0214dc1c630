"""One tabular feature pipeline shared by every popularity model and the GBDT (issue 13, ask 1).

``TabularFeaturizer().fit(train_frame).transform(frame)`` turns a ``VideoDataset.videos_with_authors()``
frame into a float matrix with named columns. Every learned part (category vocabularies, TF-IDF + SVD of
the caption, PCA of the sentence embedding, the release reference time) is fitted on the frame given to
``fit`` only, which must be the training part: validation and test rows are only transformed.

What goes in, where the dataset has it (a missing column is skipped, never filled with made-up values):

* media: ``duration``, ``video_width``, ``video_height``, aspect ratio, ``music_duration`` and its ratio to
  the duration, original sound or not (``music_title`` == "original sound");
* other numeric inputs where present (``EXTRA_NUMERIC``: tag count, description length, thumbnail stats);
* time: hour and weekday of posting, log(1 + days before the training reference time);
* categories (one-hot of the training part's most frequent values, the rest "other"): ``language``,
  ``location``, ``category``, ``video_ratio``;
* text: caption length (characters, words), number of hashtag tokens, number of search suggestions,
  caption TF-IDF -> truncated SVD;
* author: log(1 + every numeric ``author_*`` statistic) and the ratios likes/follower, likes/video;
* the sentence embedding of the title (MiniLM) when passed in, reduced by PCA fitted on the train rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError

MEDIA_COLUMNS: tuple[str, ...] = ("duration", "video_width", "video_height", "music_duration")
CATEGORY_COLUMNS: tuple[str, ...] = ("language", "location", "category", "video_ratio", "search_keyword")
#: other numeric inputs some sources carry (YouTube: tag count, description length, thumbnail statistics);
#: never an outcome (views, likes, comments are targets, not inputs)
EXTRA_NUMERIC: tuple[str, ...] = (
    "tags_count",
    "description_length",
    "object_complexity",
    "element_complexity",
    "brightness",
    "colorfulness",
)


@dataclass
class TabularConfig:
    #: components of the caption TF-IDF -> SVD (0 = no TF-IDF block)
    svd_dim: int = 32
    tfidf_max_features: int = 20000
    #: "word" tokens, or "char_wb" 2-4-grams (titles without spaces: Japanese, Chinese)
    tfidf_analyzer: str = "word"
    #: PCA components of the sentence embedding (0 = leave it out)
    embedding_pca: int = 32
    #: one-hot columns per categorical field (the most frequent training values)
    top_categories: int = 12
    seed: int = 0


def _text(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str).str.replace("|", " ", regex=False)


def _count_tokens(s: pd.Series) -> np.ndarray:
    return s.fillna("").astype(str).map(lambda v: len([t for t in v.split("|") if t.strip()])).to_numpy(np.float64)


def _log1p(x: pd.Series) -> np.ndarray:
    return np.log1p(pd.to_numeric(x, errors="coerce").clip(lower=0).to_numpy(np.float64))


class TabularFeaturizer:
    """fit(train frame[, train embedding]) / transform(frame[, embedding]) -> float32 matrix; ``names_``."""

    def __init__(self, config: TabularConfig | None = None) -> None:
        self.config = config or TabularConfig()

    # ------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame, embedding: np.ndarray | None = None) -> TabularFeaturizer:
        if not len(frame):
            raise VidpopError("tabular features: fit needs at least one training row")
        cfg = self.config
        self.media_ = [c for c in MEDIA_COLUMNS if c in frame and frame[c].notna().any()]
        self.extra_ = [
            c for c in EXTRA_NUMERIC if c in frame and pd.to_numeric(frame[c], errors="coerce").notna().any()
        ]
        self.author_ = [
            c
            for c in frame.columns
            if c.startswith("author_") and c != "author_id" and pd.api.types.is_numeric_dtype(frame[c])
        ]
        self.categories_: dict[str, list[str]] = {}
        for c in CATEGORY_COLUMNS:
            if c in frame and frame[c].notna().any():
                top = frame[c].astype(str).value_counts().head(cfg.top_categories).index.tolist()
                self.categories_[c] = [str(v) for v in top]
        self.has_time_ = "published_at" in frame and frame["published_at"].notna().any()
        if self.has_time_:
            # the reference is the latest TRAINING post: later rows get negative ages (clipped at 0 days)
            self.reference_ = pd.Timestamp(frame["published_at"].max())
        self.svd_ = self.tfidf_ = None
        if cfg.svd_dim and "title" in frame:
            from sklearn.decomposition import TruncatedSVD
            from sklearn.feature_extraction.text import TfidfVectorizer

            docs = self._docs(frame)
            grams = {"ngram_range": (2, 4)} if cfg.tfidf_analyzer == "char_wb" else {}
            self.tfidf_ = TfidfVectorizer(
                max_features=cfg.tfidf_max_features, sublinear_tf=True, min_df=2, analyzer=cfg.tfidf_analyzer, **grams
            )
            tf = self.tfidf_.fit_transform(docs)
            k = min(cfg.svd_dim, tf.shape[1] - 1, len(frame) - 1)
            self.svd_ = TruncatedSVD(k, random_state=cfg.seed).fit(tf) if k >= 1 else None
        self.pca_ = None
        if embedding is not None and cfg.embedding_pca:
            from sklearn.decomposition import PCA

            k = min(cfg.embedding_pca, embedding.shape[1], len(frame) - 1)
            self.pca_ = PCA(k, random_state=cfg.seed).fit(np.asarray(embedding, np.float64))
        self.names_ = self._build(frame.head(1), None if embedding is None else embedding[:1])[1]
        return self

    def _docs(self, frame: pd.DataFrame) -> list[str]:
        text = _text(frame["title"])
        if "tags" in frame:
            text = text + " " + _text(frame["tags"])
        return text.tolist()

    # ------------------------------------------------------------ transform
    def transform(self, frame: pd.DataFrame, embedding: np.ndarray | None = None) -> np.ndarray:
        if not hasattr(self, "names_"):
            raise VidpopError("tabular features: call fit on the training part first")
        if (embedding is None) != (self.pca_ is None):
            raise VidpopError("tabular features: pass the embedding to transform iff it was passed to fit")
        return self._build(frame, embedding)[0]

    def fit_transform(self, frame: pd.DataFrame, embedding: np.ndarray | None = None) -> np.ndarray:
        return self.fit(frame, embedding).transform(frame, embedding)

    def _build(self, frame: pd.DataFrame, embedding: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
        cols: list[np.ndarray] = []
        names: list[str] = []

        def add(name: str, v: np.ndarray) -> None:
            cols.append(np.asarray(v, np.float64).reshape(len(frame)))
            names.append(name)

        for c in self.media_:
            add(c, pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64))
        for c in self.extra_:
            add(c, pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64))
        if {"video_width", "video_height"} <= set(self.media_):
            add("aspect", frame["video_width"].to_numpy(np.float64) / frame["video_height"].replace(0, np.nan))
        if {"music_duration", "duration"} <= set(self.media_):
            add("music_over_duration", frame["music_duration"] / frame["duration"].replace(0, np.nan))
        if "music_title" in frame:
            add("original_sound", frame["music_title"].fillna("").str.lower().str.startswith("original sound"))
        if self.has_time_:
            t = pd.to_datetime(frame["published_at"], utc=True)
            add("hour", t.dt.hour.to_numpy(np.float64))
            add("weekday", t.dt.weekday.to_numpy(np.float64))
            days = ((self.reference_ - t).dt.total_seconds() / 86400.0).clip(lower=0)
            add("log1p_days_before_reference", np.log1p(days.to_numpy(np.float64)))
        for c, top in self.categories_.items():
            v = frame[c].astype(str).to_numpy()
            for cat in top:
                add(f"{c}={cat}", v == cat)
            add(f"{c}=other", ~np.isin(v, top))
        if "title" in frame:
            text = frame["title"].fillna("").astype(str)
            add("caption_chars", text.str.len().to_numpy(np.float64))
            add("caption_words", text.str.split().str.len().fillna(0).to_numpy(np.float64))
        if "tags" in frame:
            add("n_hashtags", _count_tokens(frame["tags"]))
        if "suggested_words" in frame:
            add("n_suggested_words", _count_tokens(frame["suggested_words"]))
        for c in self.author_:
            add(f"log1p_{c}", _log1p(frame[c]))
        if "author_total_likes" in self.author_ and "author_followers" in self.author_:
            add("log_likes_per_follower", _log1p(frame["author_total_likes"]) - _log1p(frame["author_followers"]))
        if "author_total_likes" in self.author_ and "author_n_videos" in self.author_:
            add("log_likes_per_video", _log1p(frame["author_total_likes"]) - _log1p(frame["author_n_videos"]))
        if self.svd_ is not None:
            z = self.svd_.transform(self.tfidf_.transform(self._docs(frame)))
            for j in range(z.shape[1]):
                add(f"caption_svd{j}", z[:, j])
        if self.pca_ is not None and embedding is not None:
            z = self.pca_.transform(np.asarray(embedding, np.float64))
            for j in range(z.shape[1]):
                add(f"title_emb_pca{j}", z[:, j])
        x = np.stack(cols, axis=1) if cols else np.zeros((len(frame), 0))
        x[~np.isfinite(x)] = np.nan  # LightGBM routes NaN itself; the neural models standardise NaN to 0
        return x.astype(np.float32), names


class TagTargetEncoder:
    """Smoothed mean training popularity of each hashtag/tag, aggregated per video (mean, max over its
    tags, log1p of the tags' training counts). Label-derived, so fitted on the training part only; a
    training video's own label is left out of its tags' means (as the retrieval features leave it out).

    ``(sum_t + a·ȳ) / (count_t + a)`` with ``a = smoothing`` pulls rare tags to the training mean ȳ."""

    names_: tuple[str, ...] = ("tag_te_mean", "tag_te_max", "tag_te_log1p_count")

    def __init__(self, smoothing: float = 5.0, column: str = "tags") -> None:
        self.smoothing, self.column = smoothing, column

    def _pairs(self, frame: pd.DataFrame) -> pd.DataFrame:
        tags = frame[self.column].fillna("").astype(str).str.split("|")
        p = pd.DataFrame({"row": np.arange(len(frame)), "tag": tags}).explode("tag")
        p["tag"] = p["tag"].astype(str).str.strip().str.lower()
        return p[p["tag"].ne("") & p["tag"].ne("nan")].drop_duplicates()

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> TagTargetEncoder:
        y = np.asarray(y, np.float64)
        self.mean_ = float(np.mean(y))
        p = self._pairs(frame)
        p["y"] = y[p["row"].to_numpy()]
        self.stats_ = p.groupby("tag")["y"].agg(["sum", "count"])
        self.ids_ = frame["video_id"].astype(str).to_numpy()
        self.y_ = y
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full((len(frame), 3), np.nan)
        if self.column not in frame:
            return out.astype(np.float32)
        p = self._pairs(frame).join(self.stats_, on="tag")
        p[["sum", "count"]] = p[["sum", "count"]].fillna(0.0)
        # leave itself out: a training video's own label is in its tags' sums
        pos = pd.Series(np.arange(len(self.ids_)), index=self.ids_)
        own = pos[~pos.index.duplicated()].reindex(frame["video_id"].astype(str).to_numpy()).to_numpy()
        own_row = own[p["row"].to_numpy()]
        mine = np.isfinite(own_row)
        own_y = np.where(mine, self.y_[np.nan_to_num(own_row).astype(np.int64)], 0.0)
        p["sum"] -= own_y
        p["count"] -= mine & (p["count"].to_numpy() > 0)
        a = self.smoothing
        p["te"] = (p["sum"] + a * self.mean_) / (p["count"] + a)
        g = p.groupby("row").agg(te_mean=("te", "mean"), te_max=("te", "max"), n=("count", "sum"))
        rows = g.index.to_numpy()
        out[rows, 0], out[rows, 1], out[rows, 2] = g["te_mean"], g["te_max"], np.log1p(g["n"].clip(lower=0))
        return out.astype(np.float32)
