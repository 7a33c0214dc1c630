"""The feature cache is keyed by content (extractor, version, input hash), not by dataset folder or
caller (issue 15 §2): datasets that share titles or files share their rows. The extractor here is
synthetic (a deterministic vector per title, labelled as such) so the test runs without encoders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from vidpop.data.schema import VideoDataset
from vidpop.features import extract as ex
from vidpop.features.store import ErrorRow, ExtractResult, FeatureStore


class FakeTitles:
    """Synthetic title encoder: value = (len, first char code, last char code); counts what it encodes."""

    column, name, version, shape = "title", "title_minilm", "test-1", (3,)
    calls: ClassVar[list[str]] = []

    def __init__(self, **_: object) -> None:
        pass

    def extract(self, items: Sequence[tuple[str, object]]) -> ExtractResult:
        ids, rows, errs = [], [], []
        for key, title in items:
            if not title:
                errs.append(ErrorRow(key, "text", "empty title"))
                continue
            FakeTitles.calls.append(str(title))
            ids.append(key)
            rows.append([len(title), ord(title[0]), ord(title[-1])])
        return ExtractResult(ids, np.asarray(rows, np.float32).reshape(-1, 3), errs)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> type[FakeTitles]:
    monkeypatch.setitem(ex.KINDS, "title_minilm", FakeTitles)
    monkeypatch.setenv("VIDPOP_CACHE", str(tmp_path / "cache"))
    FakeTitles.calls = []
    return FakeTitles


def _ds(name: str, ids: list[str], titles: list[str | None]) -> VideoDataset:
    return VideoDataset(name, pd.DataFrame({"video_id": ids, "title": titles}))


def _expected(titles: list[str | None]) -> np.ndarray:
    return np.asarray([[len(t), ord(t[0]), ord(t[-1])] if t else [0, 0, 0] for t in titles], np.float32)


def test_datasets_and_callers_share_rows_by_content(fake: type[FakeTitles]) -> None:
    full = _ds("microlens", ["1", "2", "3", "4"], ["cat piano", "dog", "cat piano", None])
    v, present = ex.dataset_features(full, "title_minilm", progress=False)
    assert fake.calls == ["cat piano", "dog"]  # a repeated title is encoded once
    np.testing.assert_array_equal(v, _expected(["cat piano", "dog", "cat piano", None]))
    assert present.tolist() == [True, True, True, False]
    # another folder/caller (a demo slice, the PoE's second view) with other ids: only new text is encoded
    other = _ds("microlens__textview", ["a", "b", "c"], ["dog", "new title", "cat piano"])
    v2, p2 = ex.dataset_features(other, "title_minilm", progress=False)
    assert fake.calls == ["cat piano", "dog", "new title"]
    np.testing.assert_array_equal(v2, _expected(["dog", "new title", "cat piano"]))
    assert p2.all()
    assert ex.default_store(full).root == ex.default_store(other).root == ex.shared_store_root()
    # error rows come back under each dataset's own video ids
    assert [(e.video_id, e.reason) for e in ex.dataset_errors(full, "title_minilm")] == [("4", "empty title")]


def test_a_changed_input_is_a_new_row(fake: type[FakeTitles], tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store")
    ex.dataset_features(_ds("d", ["1"], ["first"]), "title_minilm", store, progress=False)
    v, _ = ex.dataset_features(_ds("d", ["1"], ["first, edited"]), "title_minilm", store, progress=False)
    assert fake.calls == ["first", "first, edited"]  # same video id, new text: not the stale vector
    np.testing.assert_array_equal(v, _expected(["first, edited"]))


def test_file_keys_follow_the_bytes_not_the_path(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jpg", tmp_path / "copy" / "a.jpg", tmp_path / "c.jpg"
    b.parent.mkdir()
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    c.write_bytes(b"other bytes")
    keys = [ex.content_key("cover_path", p) for p in (a, b, c, tmp_path / "missing.jpg")]
    assert keys[0] == keys[1] != keys[2]
    assert keys[0].startswith("f-") and keys[3].startswith("p-")


def test_a_cache_warmed_by_dataset_name_is_reused(fake: type[FakeTitles], tmp_path: Path) -> None:
    """Rows of the old per-dataset store (keyed by video id) move into the shared store, once."""
    legacy = FeatureStore(tmp_path / "cache" / "features" / "microlens")
    titles = ["cat piano", "dog"]
    legacy.write_part("title_minilm", "test-1", ExtractResult(["1", "2"], _expected(titles), []))
    ex.dataset_features(_ds("microlens", ["1"], titles[:1]), "title_minilm", progress=False)  # a slice first
    ds = _ds("microlens", ["1", "2", "3"], [*titles, "fresh"])
    v, present = ex.dataset_features(ds, "title_minilm", progress=False)
    assert fake.calls == ["fresh"]  # the slice's adoption did not hide the other legacy rows
    np.testing.assert_array_equal(v, _expected([*titles, "fresh"]))
    assert present.all()
    ex.dataset_features(ds, "title_minilm", progress=False)
    ids, _, _ = ex.default_store().read("title_minilm", "test-1")
    assert len(ids) == len(set(ids)) == 3  # adopted once, nothing duplicated
