"""The product serves the winner (issue 13 §7): ``vidpop train best`` picks the best popularity model on
validation, saves the whole fitted pipeline as one folder, and every answer names the model behind each number.

The first tests run on a SYNTHETIC dataset (seeded, labelled as such: titles from a few topic words whose
log-views differ by topic, tags, a category, posting times). The bundle test at the end runs on the real
MicroLens sample beside the shared fixture PoE and skips when the data is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli
from serve_fixtures import models_dir  # noqa: F401  (session fixture: the shared small bundle)
from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.experiments.winner import format_selection, train_best
from vidpop.models.base import load_model
from vidpop.models.gbdt_retrieval import GBDTRetrievalRegressor, VideoTable
from vidpop.serve.inputs import NewVideo
from vidpop.serve.predictors import ModelBundle

TOPICS = {"cat": 13.0, "cooking": 11.0, "football": 9.0, "guitar": 12.0}
WORDS = ["funny", "best", "new", "daily", "easy", "live", "today", "quick"]


def synthetic_dataset(n: int = 240, seed: int = 0) -> VideoDataset:
    """SYNTHETIC videos: log1p(views) = the title topic's level + noise; tags name the topic."""
    rng = np.random.default_rng(seed)
    topics = rng.choice(list(TOPICS), n)
    titles = [f"{t} {' '.join(rng.choice(WORDS, 2, replace=False))} video {i % 7}" for i, t in enumerate(topics)]
    views = np.expm1(np.array([TOPICS[t] for t in topics]) + rng.normal(0, 0.4, n)).round()
    videos = pd.DataFrame({
        "video_id": [f"v{i}" for i in range(n)],
        "title": titles,
        "tags": [f"{t}|clip" for t in topics],
        "category": rng.choice(["pets", "food", "sport"], n),
        "duration": rng.uniform(5, 60, n),
        "views": views,
    })  # fmt: skip
    return VideoDataset("synthetic_pop", videos)


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_dataset().save(tmp_path_factory.mktemp("data") / "synthetic_pop")


@pytest.fixture(scope="module")
def winner(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bundle") / "popularity"
    sel = train_best(str(synthetic_dir), out, trials=2, progress=False)
    return out, sel


def test_train_best_records_the_choice_on_validation(winner: tuple[Path, dict]) -> None:
    out, sel = winner
    names = {(c["model"], c["retrieval"]) for c in sel["candidates"]}
    assert names == {("train_mean", False), *((m, r) for m in ("lightgbm", "lightgbm_tuned") for r in (False, True))}
    fitted = [c for c in sel["candidates"] if c["model"] != "train_mean"]
    best = min(fitted, key=lambda c: c["val"]["MAE"])
    w = sel["winner"]
    assert (w["candidate"], w["retrieval"]) == (best["model"], best["retrieval"]) and w["val"] == best["val"]
    mean = next(c for c in sel["candidates"] if c["model"] == "train_mean")
    assert w["val"]["MAE"] < 0.5 * mean["val"]["MAE"]  # the topic signal is learned (noise sd 0.4, topics 1-4 apart)
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["model"] == "gbdt_retrieval" and recipe["best_on_validation"] == w
    assert json.loads((out / "selection.json").read_text())["winner"] == w
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "gbdt_retrieval" and cfg["config"]["retrieval"] == w["retrieval"]
    for k, v in best["params"].items():  # the tuned hyper-parameters are the folder's config
        assert cfg["config"][k] == pytest.approx(v)
    assert "winner" in format_selection(sel) and "test (once, after the choice)" in format_selection(sel)


def test_saved_pipeline_reloads_and_predicts_a_new_video_with_an_interval(winner: tuple[Path, dict]) -> None:
    out, _ = winner
    model = load_model(out)
    assert isinstance(model, GBDTRetrievalRegressor) and model.can("intervals") and model.consumes == "dataset"
    ds = NewVideo(title="cat funny video").dataset()
    r = model.predict_interval(model.prepare_inputs(ds), 0.95)
    assert r["lower"][0, 0] < r["mean"][0, 0] < r["upper"][0, 0]
    cat = r["mean"][0, 0]
    foot = model.predict(model.prepare_inputs(NewVideo(title="football live video").dataset()))[0]
    assert cat > foot + 1.0  # the cat topic is ~4 log-units above football in the synthetic data

    # the optional facts a user may give (hashtags, duration, posting time) enter the features
    def pred(**kw: object) -> float:
        return float(model.predict(model.prepare_inputs(NewVideo(title="funny video", **kw).check().dataset()))[0])

    assert pred(tags="#cat #clip", duration=20.0) > pred(tags="#football #clip", duration=20.0)
    assert np.isfinite(pred(posted_at="2026-01-05T10:00", duration=12.5))
    with pytest.raises(VidpopError, match="ISO date"):
        NewVideo(title="x", posted_at="next tuesday-ish").check()
    with pytest.raises(VidpopError, match="non-negative number of seconds"):
        NewVideo(title="x", duration=-3).check()


def test_a_new_video_never_retrieves_itself_and_training_rows_leave_themselves_out(synthetic_dir: Path) -> None:
    from vidpop.models.gbdt_retrieval import video_table

    ds = VideoDataset.load(synthetic_dir)
    train, held = ds.subset(ds.videos["video_id"].iloc[:200].tolist()), ds.subset(ds.videos["video_id"].iloc[200:])
    model = GBDTRetrievalRegressor(GBDTRetrievalRegressor.Config(retrieval=True, n_estimators=20, k=5))
    model.fit(video_table(train), np.log1p(train.videos["views"].to_numpy()))
    pos = {v: i for i, v in enumerate(model.retrieval_.ids_)}
    # training rows, re-read through prepare_inputs (after a save/load round trip too), never find themselves
    loaded = load_model(model.save(synthetic_dir.parent / "leak_model"))
    for m in (model, loaded):
        X = m.prepare_inputs(train)
        idx, _ = m.retrieval_.neighbour_matrix(X.emb, X.frame["video_id"].to_numpy())
        own = np.array([pos[v] for v in X.frame["video_id"]])
        assert (idx >= 0).all() and not (idx == own[:, None]).any()
    # a training row's title under a new id (a new video): that training video is among its best neighbours
    j = model.feature_names_.index("nn_top1_sim")
    unique = train.videos["title"].drop_duplicates(keep=False)
    r = int(unique.index[0])
    new = model.prepare_inputs(NewVideo(title=str(unique.iloc[0])).dataset())
    nidx, nsim = model.retrieval_.neighbour_matrix(new.emb, new.frame["video_id"].to_numpy())
    assert nidx[0, 0] == pos[str(train.videos["video_id"].iloc[r])] and nsim[0, 0] == pytest.approx(1.0, abs=1e-5)
    # under its own id the same row is left out: its best neighbour is another video, less similar
    row = model.prepare_inputs(train, [r])
    as_new = VideoTable(row.frame.assign(video_id="brand-new"), row.emb)
    assert model.features(as_new)[0, j] == pytest.approx(1.0, abs=1e-5) and model.features(row)[0, j] < 0.9999
    # held-out rows are never in the index at all
    assert not set(held.videos["video_id"]) & set(model.retrieval_.ids_)


def test_the_bundle_answer_names_the_winner(winner: tuple[Path, dict], tmp_path: Path) -> None:
    out, sel = winner
    bundle = ModelBundle(out.parent)
    res = bundle.predict(NewVideo(title="guitar easy video"), tmp_path)
    assert res["served_by"]["model"] == "popularity" and res["served_by"]["kind"] == "gbdt_retrieval"
    assert res["served_by"]["best_on_validation"]["candidate"] == sel["winner"]["candidate"]
    (views,) = res["targets"]
    assert views["name"] == "views" and views["model"] == "popularity" and views["lower"] <= views["upper"]
    assert res["popularity_class"]["model"] == res["p_popular"]["model"] == "popularity"
    assert res["verdict"].endswith("(both from popularity)")
    assert any("best candidate on validation" in n for n in res["notes"])


# ------------------------------------------------------------------------------------------ real bundle
@pytest.fixture(scope="module")
def real_bundle(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The fixture PoE and explainer beside a `vidpop train best` model on the same 600 MicroLens videos."""
    root = tmp_path_factory.mktemp("winner_bundle")
    for name in ("poe", "explain"):
        (root / name).symlink_to(models_dir / name, target_is_directory=True)
    code, out = run_cli("train", "best", "--data", "microlens", "--limit", "600", "--trials", "1",
                        "--out", root / "popularity", stderr_on_success=False)  # fmt: skip
    assert code == 0, out
    assert "winner" in out and "val MAE" in out
    return root


def test_views_from_the_winner_likes_and_comments_from_the_poe_each_named(real_bundle: Path) -> None:
    code, out = run_cli("predict", real_bundle, "--json", "--title", "my cat learns to skateboard",
                        stderr_on_success=False)  # fmt: skip
    assert code == 0, out
    res = json.loads(out[out.index("{") :])
    by = {t["name"]: t for t in res["targets"]}
    assert list(by) == ["views", "likes", "comments"]
    assert by["views"]["model"] == "popularity" and by["likes"]["model"] == by["comments"]["model"] == "poe"
    assert res["served_by"]["model"] == "popularity" and res["models"][0] == "popularity"
    assert set(res["models"]) == {"popularity", "poe", "explain"}
    assert res["popularity_class"]["model"] == res["p_popular"]["model"] == "popularity"
    notes = " | ".join(res["notes"])
    assert "likes, comments from poe" in notes and "views from popularity" in notes
    # likes and comments stay within the training ratios to the SERVED views
    bundle = ModelBundle(real_bundle)
    ctx = next(m for m in bundle.models if m.name == "poe").context
    assert ctx is not None
    for j, name in ((1, "likes"), (2, "comments")):
        lo, hi = ctx.ratio_bounds(j)
        d = by[name]["log1p"]["mean"] - by["views"]["log1p"]["mean"]
        assert lo - 1e-9 <= d <= hi + 1e-9
    # the what-if needs paired samples: the PoE's, and it says so by name
    wi = bundle.predict(NewVideo(title="how to cook rice"), real_bundle.parent / "w", compare_title="a dog")
    assert wi["what_if"]["model"] == "poe" and "needs paired predictive samples" in wi["what_if"]["note"]
    code, text = run_cli("predict", real_bundle, "--title", "my cat learns to skateboard", stderr_on_success=False)
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].endswith("(both from popularity)") and lines[1].startswith("model: popularity (gbdt_retrieval")
    assert any(ln.strip().startswith("views:") and ln.endswith("(popularity)") for ln in lines)
    assert any(ln.strip().startswith("likes:") and ln.endswith("(poe)") for ln in lines)


def test_the_rest_answer_names_the_model_of_each_number(real_bundle: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from vidpop.serve.app import ServeSettings, create_app

    app = create_app(real_bundle, ServeSettings(work_dir=tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        form = {"title": "my cat learns to skateboard", "tags": "#cat #pets", "duration": "30"}
        r = client.post("/predict", data=form)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["served_by"]["model"] == "popularity" and out["served_by"]["best_on_validation"]["candidate"]
        assert [t["model"] for t in out["targets"]] == ["popularity", "poe", "poe"]
        assert out["inputs"]["tags"] == "#cat #pets" and out["inputs"]["duration"] == 30.0
        bad = client.post("/predict", data={"title": "x", "duration": "long"})
        assert bad.status_code == 422 and "duration must be a number" in bad.json()["detail"]
