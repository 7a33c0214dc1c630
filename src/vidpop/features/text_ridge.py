"""Cross-fitted ridge predictions from the title text as features (issue 13, MicroLens target).

Three ridge regressions of the training popularity, on word 1-2-gram TF-IDF, on character 2-4-gram
TF-IDF of the title + tags, and on the sentence embedding. They are label-derived (like the neighbours'
popularity and the tag target encoding), so they sit in the leaderboard's retrieval block and are fitted
on the training part only: a training row gets the prediction of the ridge fitted on the other
``folds`` − 1 folds (out-of-fold, so its own label never reaches its feature), every other row the
prediction of the ridge fitted on the whole training part. A tree model on raw TF-IDF would need
thousands of sparse splits; one linear read of the vocabulary compresses it into a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError


@dataclass
class TextRidgeConfig:
    folds: int = 5
    #: ridge penalties of the word TF-IDF, character TF-IDF and embedding regressions (chosen on the
    #: MicroLens VALIDATION part, alone: val Spearman .388 / .368 / .308)
    alpha_word: float = 3.0
    alpha_char: float = 10.0
    alpha_emb: float = 100.0
    min_df: int = 2
    seed: int = 0


def video_text(frame: pd.DataFrame) -> np.ndarray:
    """Title + tags of every row ("" where missing)."""
    parts = [
        frame[c].fillna("").astype(str).str.replace("|", " ", regex=False) for c in ("title", "tags") if c in frame
    ]
    if not parts:
        return np.full(len(frame), "", dtype=object)
    out = parts[0]
    for p in parts[1:]:
        out = out + " " + p
    return out.to_numpy(dtype=object)


class TextRidgeEncoder:
    """``fit(ids, texts, emb, y)`` on the training rows; ``transform(ids, texts, emb)`` -> (n, 3) float32,
    out-of-fold for the training ids."""

    names_: tuple[str, ...] = ("text_ridge_word", "text_ridge_char", "text_ridge_emb")

    def __init__(self, config: TextRidgeConfig | None = None) -> None:
        self.config = config or TextRidgeConfig()

    def _blocks(self, texts: np.ndarray, emb: np.ndarray | None) -> list:
        """(column, design matrix) of every regression this encoder fitted."""
        out: list = [(j, v.transform(texts)) for j, v, _ in self.parts_]
        return [*out, (2, np.asarray(emb, np.float32))] if emb is not None and self.emb_ else out

    def fit(self, ids: np.ndarray, texts: np.ndarray, emb: np.ndarray | None, y: np.ndarray) -> TextRidgeEncoder:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge

        cfg = self.config
        y = np.asarray(y, np.float64)
        if len(y) < 2 * cfg.folds:
            raise VidpopError(f"text ridge: need at least {2 * cfg.folds} training rows, got {len(y)}")
        specs = [
            (0, TfidfVectorizer(min_df=cfg.min_df, ngram_range=(1, 2), sublinear_tf=True), cfg.alpha_word),
            (
                1,
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=cfg.min_df + 1, sublinear_tf=True),
                cfg.alpha_char,
            ),
        ]
        self.parts_: list = []
        for j, v, a in specs:
            try:
                self.parts_.append((j, v.fit(texts), a))
            except ValueError:  # empty vocabulary (no text at all): that column stays at the mean
                continue
        self.emb_ = emb is not None
        alpha = {j: a for j, _, a in self.parts_} | {2: cfg.alpha_emb}
        fold = np.random.default_rng(cfg.seed).permutation(len(y)) % cfg.folds
        self.mean_ = float(y.mean())
        self.models_: dict[int, Any] = {}
        oof = np.full((len(y), 3), self.mean_)
        for j, Z in self._blocks(texts, emb):
            for f in range(cfg.folds):
                m = Ridge(alpha=alpha[j]).fit(Z[fold != f], y[fold != f])
                oof[fold == f, j] = m.predict(Z[fold == f])
            self.models_[j] = Ridge(alpha=alpha[j]).fit(Z, y)
        frame = pd.DataFrame(oof, index=pd.Index(np.asarray(ids).astype(str)))
        self.oof_ = frame[~frame.index.duplicated()]
        return self

    def transform(self, ids: np.ndarray, texts: np.ndarray, emb: np.ndarray | None) -> np.ndarray:
        out = np.full((len(texts), 3), self.mean_)
        for j, Z in self._blocks(texts, emb):
            out[:, j] = self.models_[j].predict(Z)
        own = self.oof_.reindex(np.asarray(ids).astype(str))
        seen = own.notna().all(axis=1).to_numpy()
        out[seen] = own.to_numpy()[seen]
        return out.astype(np.float32)
