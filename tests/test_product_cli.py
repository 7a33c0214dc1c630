"""The product CLI end to end on the real data: train -> evaluate -> predict / explain on a new clip ->
recommend, plus the one-line errors (exit code 2) on bad input. Models are small (a few hundred rows,
a few epochs) so the module runs in about a minute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli
from serve_fixtures import models_dir  # noqa: F401  (session fixture: the shared small bundle)
from vidpop.config import data_root

CLIPS = sorted((data_root() / "microlens" / "videos").glob("*.mp4"))
COVERS = sorted((data_root() / "microlens" / "covers").glob("*.jpg"))
pytestmark = pytest.mark.skipif(not CLIPS or not COVERS, reason="MicroLens clips/covers not under the data root")


def run(*args: object) -> tuple[int, str]:
    """``vidpop ARGS`` through the real entry point; stdout (what users pipe), plus stderr on failure."""
    return run_cli(*args, stderr_on_success=False)


@pytest.fixture(scope="module")
def models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The shared small bundle (tests/serve_fixtures.py) plus a PoE trained here through `vidpop train`
    with a TOML config, replacing the bundle's own PoE."""
    root = tmp_path_factory.mktemp("models")
    for name in ("explain", "rec_pop", "rec_text"):
        (root / name).symlink_to(models_dir / name, target_is_directory=True)
    cfg = root.parent / "poe.toml"
    cfg.write_text("n_samples = 200\n[train]\nepochs = 4\n")
    code, out = run("train", "variational_poe", "--data", "microlens", "--out", root / "poe", "--limit", "400",
                    "--config", cfg)  # fmt: skip
    assert code == 0, out
    return root


def test_train_writes_a_reloadable_folder_with_its_recipe(models: Path) -> None:
    poe = models / "poe"
    assert {"config.json", "state.pt", "recipe.json", "train_report.json"} <= {p.name for p in poe.iterdir()}
    cfg = json.loads((poe / "config.json").read_text())["config"]
    assert cfg["n_samples"] == 200 and cfg["train"]["epochs"] == 4  # from the TOML file
    recipe = json.loads((poe / "recipe.json").read_text())
    assert recipe["data"] == "microlens" and recipe["limit"] == 400
    assert len(recipe["class_edges"]) == 4 and recipe["class_edges"] == sorted(recipe["class_edges"])


def test_evaluate_scores_the_recipes_test_split(models: Path) -> None:
    code, out = run("evaluate", models / "poe", "--json")
    assert code == 0, out
    res = json.loads(out[out.index("{") :])
    assert res["task"] == "regression"
    for name, row in res["metrics"].items():
        assert list(row) == ["MAPE", "MAE", "R2", "Spearman", "coverage95", "width95", "n_test"]
        assert row["n_test"] == 80  # 20 % of the 400-video sample
        # 95% intervals that hold about 95% of the test rows (n = 80: ±4 binomial sd); fails for intervals
        # that are too narrow, e.g. a collapsed sampler
        assert 0.85 <= row["coverage95"] <= 1.0, (name, row)
        # a title-only PoE on 400 rows has little signal: it must stay within 10% of the train mean's error
        base = res["baseline (train mean)"][name]
        assert row["MAE"] <= 1.1 * base["MAE"], (name, row, base)
    code, out = run("evaluate", models / "rec_pop")
    assert code == 0 and all(m in out for m in ("P@5", "R@5", "F@5", "HR@10", "NDCG@10"))
    code, out = run("train", "attention_explain", "--split", "time", "--out", models.parent / "x")
    assert code == 2 and "--split time is not available" in out


def _predict(models: Path, *args: str) -> dict:
    code, out = run("predict", models, "--json", *args)
    assert code == 0, out
    return json.loads(out[out.index("{") :])


def test_predict_new_clip_gives_intervals_class_and_p_popular(models: Path) -> None:
    args = ("--video", str(CLIPS[0]), "--title", "my cat plays the piano", "--author-followers", "1200")
    res = _predict(models, *args)
    names = [t["name"] for t in res["targets"]]
    assert names == ["views", "likes", "comments"]
    for t in res["targets"]:
        assert t["scale"] == "count" and 0 <= t["lower"] <= t["value"] <= t["upper"]
    assert res["popularity_class"]["n_classes"] == 5 and 0 <= res["popularity_class"]["label"] < 5
    assert 0.0 < res["p_popular"]["value"] < 1.0
    # the PoE model was trained on titles only: the clip's frames and audio have no expert, and it says so
    assert any("visual" in n and "acoustic" in n for n in res["notes"])
    again = _predict(models, *args)
    assert again["targets"] == res["targets"]  # seeded sampler: a reloaded model predicts identically
    other = _predict(models, "--cover", str(COVERS[0]), "--title", "a completely different title about cars")
    assert other["targets"][0]["value"] != res["targets"][0]["value"]


def test_predict_human_readable(models: Path) -> None:
    code, out = run("predict", models / "poe", "--title", "how to cook rice")
    assert code == 0, out
    assert "views:" in out and "95% interval" in out and "popularity class:" in out
    lines = out.splitlines()
    assert lines[0].startswith("verdict: ") and lines[0].endswith("(both from poe)")  # the headline comes first
    assert any(ln.startswith("context: predicted views ") for ln in lines)
    counts = [ln for ln in lines if ln.strip().startswith(("views:", "likes:", "comments:"))]
    assert counts and all("." not in ln.split("(")[0] for ln in counts)  # whole numbers only


def test_predict_two_titles_compares_them(models: Path) -> None:
    a, b = "how to cook rice", "the best street food in town"
    res = _predict(models, "--title", a, "--title", b)
    wi = res["what_if"]
    assert wi["titles"] == [a, b] and wi["ratio"]["lower"] <= wi["ratio"]["value"] <= wi["ratio"]["upper"]
    assert {w["word"] for w in wi["words"]} == set(a.split()) ^ set(b.split())
    code, out = run("predict", models, "--title", a, "--title", b)
    assert code == 0 and "what-if: “how to cook rice” vs “the best street food in town”: views ×" in out
    assert "words that differ, by attention β (explain)" in out
    code, out = run("predict", models, "--title", a, "--title", b, "--title", "c")
    assert code == 2 and "twice to compare" in out


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give a video, a cover or a title"),
        (["--video", "/no/such/clip.mp4"], "not found"),
        (["--cover", __file__], "cover must be one of"),
        (["--title", "x", "--author-followers", "-5"], "non-negative"),
    ],
)
def test_predict_bad_input_exits_2_with_one_line(models: Path, args: list[str], message: str) -> None:
    code, out = run("predict", models, *args)
    assert code == 2
    assert message in out and len([ln for ln in out.splitlines() if ln.startswith("error:")]) == 1


def test_predict_without_models_exits_2(tmp_path: Path) -> None:
    code, out = run("predict", tmp_path, "--title", "x")
    assert code == 2 and "no saved vidpop models" in out


def test_explain_writes_heatmaps_and_word_importances(models: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "expl"
    code, out = run("explain", models, "--video", str(CLIPS[0]), "--title", "funny cat video", "--out", out_dir)
    assert code == 0, out
    data = json.loads((out_dir / "explanation.json").read_text())
    assert len(data["frames"]) > 1 and abs(sum(f["alpha"] for f in data["frames"]) - 1.0) < 1e-3
    assert all((out_dir / f["overlay_png"]).is_file() for f in data["frames"])
    assert [w["word"] for w in data["words"]] == ["funny", "cat", "video"]
    assert str(out_dir / "explanation.png") in out.replace("\n", "")


def test_recommend_by_history_user_and_text(models: Path) -> None:
    code, out = run("recommend", models / "rec_pop", "--history", "1,2,3", "-k", "5", "--json")
    assert code == 0, out
    res = json.loads(out[out.index("{") :])
    assert [it["rank"] for it in res["items"]] == [1, 2, 3, 4, 5]
    assert not {"1", "2", "3"} & {it["video_id"] for it in res["items"]}  # seen items are excluded
    assert all(it["title"] for it in res["items"])
    code, out = run("recommend", models / "rec_pop", "--user", "1", "-k", "3")
    assert code == 0 and len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 3
    code, out = run("recommend", models / "rec_pop", "--user", "1", "--text", "cooking")
    assert code == 2 and "give one of --user" in out  # the user id used to win silently
    code, out = run("recommend", models / "rec_pop", "--user", "no-such-user")
    assert code == 2 and "unknown user" in out
    code, out = run("recommend", models / "rec_pop", "--text", "hero game")
    assert code == 2 and "cold-start" in out
    code, out = run("recommend", models / "rec_text", "--text", "king of glory hero highlights", "-k", "4", "--json")
    assert code == 0, out
    assert len(json.loads(out[out.index("{") :])["items"]) == 4
    # a text model given a known user ranks from the user's titles but never returns what the user watched
    code, out = run("recommend", models / "rec_text", "--user", "1", "-k", "5", "--json")
    assert code == 0, out
    res = json.loads(out[out.index("{") :])
    assert res["query"]["history"] and not set(res["query"]["history"]) & {it["video_id"] for it in res["items"]}


def test_train_unknown_model_and_bad_data_exit_2(tmp_path: Path) -> None:
    code, out = run("train", "no_such_model", "--data", "microlens", "--out", tmp_path / "m")
    assert code == 2 and "unknown model" in out
    code, out = run("train", "variational_poe", "--data", "no_such_dataset", "--out", tmp_path / "m")
    assert code == 2


def test_train_with_two_ddp_ranks_writes_a_single_process_checkpoint(tmp_path: Path) -> None:
    out_dir = tmp_path / "poe_ddp"
    code, out = run(
        "train", "variational_poe", "--data", "microlens", "--limit", "300", "--epochs", "2",
        "--set", "n_samples=50", "--nproc", "2", "--out", out_dir,
    )  # fmt: skip
    assert code == 0, out
    report = json.loads((out_dir / "train_report.json").read_text())
    assert report["world_size"] == 2 and report["backend"] == "gloo" and len(report["epochs"]) == 2
    code, out = run("predict", out_dir, "--title", "loads in one process", "--json")
    assert code == 0, out
