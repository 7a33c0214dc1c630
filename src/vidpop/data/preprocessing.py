"""Fitted transforms (fit on the train part only, apply anywhere): standardiser, category
encoder, token vocabulary."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError

_TOKEN = re.compile(r"[\w']+", re.UNICODE)


def tokenize(text: str | None) -> list[str]:
    """Lower-cased word tokens (unicode letters/digits); a missing text (None/NaN/NA) has none.

    Without the missing check ``str(nan)`` would become the token "nan" and a missing title would
    look like a one-word title.
    """
    if text is None or text is pd.NA or (isinstance(text, float) and np.isnan(text)):
        return []
    return _TOKEN.findall(str(text).lower())


@dataclass
class Standardizer:
    """Zero-mean unit-variance columns; NaNs become 0 after scaling (= the train mean)."""

    eps: float = 1e-8

    def fit(self, x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype="float64")
        if x.ndim != 2 or len(x) == 0:
            raise VidpopError("Standardizer.fit needs a non-empty 2-d array")
        self.mean_ = np.nan_to_num(np.nanmean(x, axis=0))
        std = np.nan_to_num(np.nanstd(x, axis=0))
        self.std_ = np.where(std > self.eps, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype="float64") - self.mean_) / self.std_
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)


@dataclass
class MultiHotEncoder:
    """Multi-hot encoding of "|"-joined labels (tags, genres, cast); vocabulary from train rows,
    keeping labels seen at least ``min_count`` times, at most ``max_size`` of them."""

    min_count: int = 1
    max_size: int | None = None
    sep: str = "|"

    def fit(self, values: Iterable[str | None]) -> MultiHotEncoder:
        counts: Counter[str] = Counter()
        for v in values:
            counts.update(self._split(v))
        items = [k for k, c in counts.most_common(self.max_size) if c >= self.min_count]
        self.vocab_ = {k: i for i, k in enumerate(items)}
        return self

    def _split(self, v: str | None) -> list[str]:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return []
        return [p.strip() for p in str(v).split(self.sep) if p.strip()]

    def transform(self, values: Iterable[str | None]) -> np.ndarray:
        values = list(values)
        out = np.zeros((len(values), len(self.vocab_)), dtype=np.float32)
        for i, v in enumerate(values):
            for p in self._split(v):
                j = self.vocab_.get(p)
                if j is not None:
                    out[i, j] = 1.0
        return out


@dataclass
class Vocabulary:
    """Token -> index map fitted on training texts. 0 = padding, 1 = unknown."""

    min_count: int = 1
    max_size: int | None = None
    tokens_: list[str] = field(default_factory=list)

    PAD: int = 0
    UNK: int = 1

    def fit(self, texts: Iterable[str]) -> Vocabulary:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(tokenize(t))
        kept = [w for w, c in counts.most_common(self.max_size) if c >= self.min_count]
        self.tokens_ = ["<pad>", "<unk>", *kept]
        self.index_ = {w: i for i, w in enumerate(self.tokens_)}
        return self

    def __len__(self) -> int:
        return len(self.tokens_)

    def __contains__(self, token: str) -> bool:
        return token in self.index_

    def encode(self, text: str, max_len: int) -> np.ndarray:
        ids = [self.index_.get(w, self.UNK) for w in tokenize(text)][:max_len]
        return np.array(ids + [self.PAD] * (max_len - len(ids)), dtype=np.int64)

    def encode_many(self, texts: Iterable[str], max_len: int) -> np.ndarray:
        """(n, max_len) int64 ids; accepts any iterable (list, pandas Series, generator)."""
        rows = [self.encode(t, max_len) for t in texts]
        return np.stack(rows) if rows else np.zeros((0, max_len), np.int64)
