"""A registered model trained by torchrun with 2 CPU ranks follows single-process training with the
same global batch, and rank 0's checkpoint loads in a single process (real MicroLens rows)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidpop import recipes
from vidpop.config import dataset_dir
from vidpop.errors import VidpopError
from vidpop.models.base import load_model
from vidpop.training.ddp_entry import parse_overrides

ML = dataset_dir("microlens")
pytestmark = pytest.mark.skipif(not (ML / "tags_to_summary.csv").is_file(), reason="needs the real MicroLens tables")

# no dropout: with it each rank draws its own masks, and trajectories agree only statistically
OVERRIDES = [
    "hidden=[32,16]",
    "dropout=0",
    "train.epochs=2",
    "train.batch_size=32",
    "train.lr=0.01",
    "train.patience=0",
    "train.progress=false",
]


def _microlens_npz(path: Path, n: int = 320) -> Path:
    """Category one-hot + log1p(likes) -> log1p(views) for the first ``n`` MicroLens videos."""
    cats = pd.read_csv(ML / "tags_to_summary.csv", header=None, names=["item", "category"])
    lv = pd.read_csv(ML / "MicroLens-100k_likes_and_views.txt", sep="\t", header=None, names=["item", "likes", "views"])
    df = cats.merge(lv, on="item").head(n)
    X = np.hstack([pd.get_dummies(df["category"]).to_numpy(np.float32), np.log1p(df[["likes"]].to_numpy(np.float32))])
    y = np.log1p(df["views"].to_numpy(np.float32))
    cut = n - 64
    np.savez(path, X=X[:cut], y=y[:cut], X_val=X[cut:], y_val=y[cut:])
    return path


def test_two_ranks_match_single_process_and_checkpoint_loads(tmp_path: Path) -> None:
    data = str(_microlens_npz(tmp_path / "microlens.npz"))
    ddp = recipes.launch("mlp", data, tmp_path / "ddp", nproc=2, overrides=OVERRIDES)
    assert (ddp["world_size"], ddp["global_batch"], ddp["per_rank_batch"]) == (2, 32, 16)
    assert json.loads((tmp_path / "ddp" / "train_report.json").read_text()) == ddp  # written by rank 0 only

    single = recipes.train("mlp", data, tmp_path / "single", parse_overrides(OVERRIDES))
    assert single["world_size"] == 1 and single["rank"] == ddp["rank"] == 0
    for key in ("train_loss", "val_loss"):
        got = [e[key] for e in ddp["epochs"]]
        want = [e[key] for e in single["epochs"]]
        assert len(got) == 2
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    with np.load(data) as z:
        X_val = z["X_val"]
    a, b = load_model(tmp_path / "ddp"), load_model(tmp_path / "single")  # plain single-process loads
    np.testing.assert_allclose(a.predict(X_val), b.predict(X_val), rtol=1e-4, atol=1e-4)


def test_overrides_and_bad_inputs() -> None:
    assert parse_overrides(["train.epochs=3", "hidden=[8]", "name=x"]) == {
        "train": {"epochs": 3},
        "hidden": [8],
        "name": "x",
    }
    with pytest.raises(VidpopError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(VidpopError, match="no data recipe"):
        recipes.train("mlp", "not-a-file.csv", "unused")
    with pytest.raises(VidpopError, match="unknown model"):
        recipes.train("no_such_model", "x.npz", "unused")
    with pytest.raises(VidpopError, match="unknown recipe option"):
        recipes.train("mlp", "x.npz", "unused", {"recipe": {"limt": 3}})


def test_torchrun_entry_is_the_recipes_package() -> None:
    cmd = recipes.launch_command("mlp", "d.npz", "out", 2, ["train.epochs=1"])
    assert cmd[cmd.index("-m", 3) + 1] == "vidpop.recipes" and cmd[-2:] == ["--set", "train.epochs=1"]
