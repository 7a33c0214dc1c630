"""Shared plumbing of the interest-RNN family: padded sequence tensors, item text documents and
resolution of the item feature matrices a :class:`~vidpop.models.recommender.RecData` carries.

Kept apart from the models so that ``interest_rnn`` and ``static_dnn`` read the data the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from vidpop.errors import VidpopError
from vidpop.models.recommender import RecData

#: columns of the videos table that describe an item in words (tags are "|"-joined)
TEXT_COLUMNS = ("title", "tags", "category", "description")


def item_documents(items: pd.DataFrame) -> list[str]:
    """One bag-of-words document per item: title, tags, category and description where present."""
    cols = [c for c in TEXT_COLUMNS if c in items.columns]
    if not cols:
        raise VidpopError(f"the items table has none of the text columns {TEXT_COLUMNS}; cannot build topics")
    parts = [items[c].fillna("").astype(str).str.replace("|", " ", regex=False) for c in cols]
    joined = parts[0]
    for p in parts[1:]:
        joined = joined + " " + p
    return joined.tolist()


def pad_sequences(
    sequences: Sequence[np.ndarray], times: Sequence[np.ndarray] | None, max_len: int, pad: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded ``(n, L)`` item and time matrices plus lengths; long histories keep their last
    ``max_len`` items (the most recent ones matter for the next item). ``L`` is the longest kept length."""
    kept = [np.asarray(s, np.int64)[-max_len:] for s in sequences]
    lengths = np.array([len(s) for s in kept], np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    items = np.full((len(kept), width), pad, np.int64)
    tim = np.zeros((len(kept), width), np.float32)
    for i, s in enumerate(kept):
        n = len(s)
        items[i, :n] = s
        if times is not None and times[i] is not None and len(times[i]) == len(sequences[i]):
            tim[i, :n] = np.asarray(times[i], np.float32)[len(times[i]) - n :]
        else:
            tim[i, :n] = np.arange(n, dtype=np.float32)
    return items, tim, lengths


def training_items(data: RecData) -> np.ndarray:
    """Item indices that occur in the training sequences (vocabularies are fitted on these only)."""
    seen = (
        np.unique(np.concatenate([np.asarray(s, np.int64) for s in data.sequences]))
        if data.sequences
        else np.zeros(0, np.int64)
    )
    return seen


def feature_matrix(data: RecData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, present)`` of item feature ``name``; a clear error lists what the data carries."""
    if name not in data.item_features:
        raise VidpopError(
            f"RecData has no item feature '{name}' (available: {sorted(data.item_features) or 'none'}); "
            "extract it first or set text_feature='lsa' to use TF-IDF+SVD of the item text"
        )
    values = np.asarray(data.item_features[name], np.float32)
    if values.shape[0] != data.n_items:
        raise VidpopError(f"item feature '{name}' has {values.shape[0]} rows for {data.n_items} items")
    present = np.asarray(data.item_feature_present.get(name, np.ones(len(values), bool)), bool)
    return values, present


def unit_rows(z: np.ndarray) -> np.ndarray:
    """``z`` with every row scaled to unit L2 norm (zero rows stay zero)."""
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-8)


def text_feature_parts(name: str) -> list[str]:
    """The parts of a ``"+"``-joined text feature name, e.g. ``"title_minilm+lsa"``."""
    parts = [p.strip() for p in name.split("+")]
    if not all(parts):
        raise VidpopError(f"text feature {name!r}: empty part in a '+'-joined name")
    return parts


def precomputed_text_features(name: str) -> tuple[str, ...]:
    """The item features of RecData that the text feature ``name`` reads (every part but ``lsa``)."""
    return tuple(p for p in text_feature_parts(name) if p != "lsa")


class TextFeatures:
    """Item text matrix: a precomputed embedding (e.g. MiniLM titles) or, with ``name='lsa'``,
    TF-IDF + truncated SVD fitted on the text of the items seen in training; a ``"+"``-joined name
    (``"title_minilm+lsa"``) puts the parts side by side, each unit-scaled per row so that neither
    dominates by its width."""

    def __init__(self, name: str, lsa_dim: int = 128, seed: int = 0) -> None:
        self.name, self.lsa_dim, self.seed = name, lsa_dim, seed
        self.parts = text_feature_parts(name)
        self.tfidf: TfidfVectorizer | None = None
        self.svd: TruncatedSVD | None = None

    def fit_transform(self, data: RecData) -> tuple[np.ndarray, str | None]:
        """The item text matrix and a note when some items have no text vector.

        Items without one (empty or undecodable title) keep a zero row: through the projection's bias
        that is one learned "no title" embedding, and the item's free vector still carries its identity.
        """
        blocks, notes = [], []
        for part in self.parts:
            values, note = self._part(data, part)
            blocks.append(values)
            notes += [note] if note else []
        if len(blocks) > 1:  # side by side: each part with unit row norm, as the lsa part already is
            blocks = [unit_rows(b) for b in blocks]
        return np.concatenate(blocks, axis=1).astype(np.float32), ("; ".join(notes) or None)

    def _part(self, data: RecData, name: str) -> tuple[np.ndarray, str | None]:
        if name != "lsa":
            values, present = feature_matrix(data, name)
            values = np.where(present[:, None], values, 0.0).astype(np.float32)
            missing = int((~present).sum())
            note = f"{missing} of {len(present)} items have no '{name}' (zero row = learned 'no text' embedding)"
            return values, (note if missing else None)
        docs = item_documents(data.items)
        train_docs = [docs[i] for i in training_items(data)]
        self.tfidf = TfidfVectorizer(min_df=2, max_features=20000, stop_words="english", sublinear_tf=True).fit(
            train_docs
        )
        dim = max(2, min(self.lsa_dim, len(self.tfidf.vocabulary_) - 1))
        self.svd = TruncatedSVD(dim, random_state=self.seed).fit(self.tfidf.transform(train_docs))
        return self._lsa(docs), None

    def _lsa(self, docs: list[str]) -> np.ndarray:
        assert self.tfidf is not None and self.svd is not None
        z = self.svd.transform(self.tfidf.transform(docs)).astype(np.float32)
        return unit_rows(z)
