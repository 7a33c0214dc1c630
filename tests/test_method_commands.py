"""`vidpop <method> train` goes through the same recipe as `vidpop train` and writes the same model folder,
which loads in `vidpop predict / recommend / explain / evaluate` and in the serving bundle (issue 12 §2).
One small model per family on the real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_product_cli import CLIPS, COVERS, run
from vidpop.config import data_root
from vidpop.serve.predictors import ModelBundle

pytestmark = pytest.mark.skipif(not CLIPS or not COVERS, reason="MicroLens clips/covers not under the data root")


def _folder_files(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


def test_rec_train_folder_serves_known_users(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    code, text = run("rec", "train", "rec_pop", "--dataset", "microlens", "--out", out)
    assert code == 0, text
    # old `rec train` wrote items.parquet only: `recommend --user` and the API's /recommend then failed
    assert {"items.parquet", "users.parquet", "recipe.json", "complete.json"} <= _folder_files(out)
    user = str(pd.read_parquet(out / "users.parquet")["user_id"].iloc[0])
    code, text = run("recommend", out, "--user", user, "-k", "3", "--json")
    assert code == 0, text
    assert len(json.loads(text[text.index("{") :])["items"]) == 3
    assert ModelBundle(out).describe()[0]["roles"] == ["recommend"]
    # the same recipe as `vidpop train rec_pop`: `vidpop evaluate` can rebuild its user split
    assert json.loads((out / "recipe.json").read_text())["split_kind"] == "user"


def test_poe_train_folder_keeps_its_social_input_and_predicts(tmp_path: Path) -> None:
    out = tmp_path / "poe"
    code, text = run("poe", "train", "--dataset", "microlens", "--limit", "300", "--epochs", "2", "--samples", "50",
                     "--out", out)  # fmt: skip
    assert code == 0, text
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["model"] == "variational_poe" and "social_names" in recipe and len(recipe["class_edges"]) == 4
    code, text = run("predict", out, "--title", "a cat plays the piano", "--json")
    assert code == 0, text
    assert [t["name"] for t in json.loads(text[text.index("{") :])["targets"]] == ["views", "likes", "comments"]


def test_attention_train_folder_explains(tmp_path: Path) -> None:
    out = tmp_path / "att"
    code, text = run("attention", "train", "--out", out, "--epochs", "1", "--limit", "300", "--covers-limit", "200")
    assert code == 0, text
    assert "Spearman" in text and "recipe.json" in _folder_files(out)
    code, text = run("explain", out, "--cover", COVERS[0], "--title", "funny cat", "--out", tmp_path / "expl")
    assert code == 0, text
    # its own input from a dataset: the cover is one real frame, a title-only video has every frame masked
    from vidpop.data.schema import VideoDataset
    from vidpop.models.base import load_model

    model = load_model(out)
    videos = pd.DataFrame(
        {"video_id": ["c", "t"], "title": ["funny cat", "a title only"], "cover_path": [COVERS[0], None]}
    )
    X = model.prepare_inputs(VideoDataset("new", videos), store=tmp_path / "features")
    assert X.frames.shape == (2, model.config.n_frames, model.feat_dim_) and X.titles == ["funny cat", "a title only"]
    assert X.frame_mask.sum(axis=1).tolist() == [1, 0]
    p = model.predict_proba(X)
    assert p.shape == (2, 2) and np.isfinite(p).all()


def test_fusion_train_folder_predicts(tmp_path: Path) -> None:
    out = tmp_path / "fusion"
    code, text = run("fusion", "train", "--out", out, "--epochs", "1", "--limit", "200")
    assert code == 0, text
    assert {"recipe.json", "metrics.json", "complete.json"} <= _folder_files(out)
    code, text = run("evaluate", out, "--json")
    assert code == 0, text
    assert set(json.loads(text[text.index("{") :])["metrics"]["test"]) == {"accuracy", "ordinal_accuracy", "n_test"}
    assert ModelBundle(out).describe()[0]["model"] == "cover_title_fusion"


@pytest.mark.skipif(not (data_root() / "bilibili_bangumi_series").is_dir(), reason="needs the Bangumi data")
def test_relation_train_folder_evaluates(tmp_path: Path) -> None:
    out = tmp_path / "rel"
    code, text = run("relation", "train", "--out", out, "--epochs", "2", "--title", "none")
    assert code == 0, text
    code, text = run("evaluate", out, "--json")
    assert code == 0, text
    res = json.loads(text[text.index("{") :])
    assert set(next(iter(res["metrics"].values()))) >= {"MAPE", "MAE", "R2", "Spearman"}
    assert ModelBundle(out).describe()[0]["model"] == "relation_mtl"
    code, text = run("train", "relation_mtl", "--data", "bilibili_bangumi_series", "--split", "random", "--out",
                     tmp_path / "x")  # fmt: skip
    assert code == 2 and "--split random is not available" in text


def test_relation_table_prints_a_saved_ablation_and_params_files_must_exist(tmp_path: Path) -> None:
    row = {"r2": 0.4, "r2_std": 0.01, "r2_ensemble": 0.41, "val_r2": 0.6, "mae": 1.0, "mae_std": 0.0}
    row |= {"spearman": 0.6, "spearman_std": 0.0}
    result = {  # the shape `relation ablation --out` writes (synthetic numbers)
        "dataset": "bilibili_bangumi_series",
        "seeds": 1,
        "cpu_seconds": 12.0,
        "loadavg_1_5_15": [1.0, 1.0, 1.0],
        "horizons": {
            "7": {"train": 10, "val": 2, "test": 3, "best": "LightGBM",
                  "rows": {"LightGBM": row, "DNN+RN+MTL": {**row, "val_r2": 0.5, "r2": 0.45}}},
        },
    }  # fmt: skip
    (tmp_path / "ablation.json").write_text(json.dumps(result))
    code, text = run("relation", "table", tmp_path / "ablation.json")
    assert code == 0, text
    assert "| 7 | 0.400 | 0.450 | LightGBM: 0.400 |" in text and "CPU 12 s" in text
    code, text = run("relation", "ablation", "--lightgbm-params", tmp_path / "missing.json", "--horizons", "7")
    assert code != 0 and "--lightgbm-params" in text
