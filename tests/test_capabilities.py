"""Every registered model declares what it can be asked and what it consumes (issue 16 §3), and the
declaration matches its methods, so that callers (serving) can dispatch on it instead of ``hasattr``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.base import CAPABILITIES, INPUT_KINDS, VidpopModel, dataset_rows
from vidpop.models.recommender import Recommender
from vidpop.models.registry import build_model, get_model_class, model_names


@pytest.mark.parametrize("name", model_names())
def test_declared_capabilities_match_the_methods(name: str) -> None:
    cls = get_model_class(name)
    caps = cls.capabilities
    assert isinstance(caps, frozenset) and caps and caps <= CAPABILITIES, (name, caps)
    assert cls.consumes in INPUT_KINDS
    recommender = issubclass(cls, Recommender)
    assert ("recommend" in caps) == recommender == (cls.consumes == "queries"), name
    assert ("predict" in caps) == (not recommender), name  # every popularity model predicts
    assert ("intervals" in caps) == callable(getattr(cls, "predict_interval", None)), name
    assert ("explain" in caps) == callable(getattr(cls, "attention", None)), name
    # a model that reads a VideoDataset assembles its own input; the others leave it to their recipe
    assert (cls.consumes == "dataset") == (cls.prepare_inputs is not VidpopModel.prepare_inputs), name
    if recommender and cls.uses_text:
        assert "from_text" in caps, name  # a text-reading recommender serves cold-start users
    if "from_text" in caps and not recommender:
        assert cls.consumes == "dataset", name  # a title alone must be turned into its input


def test_a_typo_in_a_declaration_fails_at_class_definition() -> None:
    with pytest.raises(TypeError, match="unknown capabilities"):
        type("Typo", (VidpopModel,), {"capabilities": frozenset({"predcit"})})
    with pytest.raises(TypeError, match="consumes"):
        type("Typo", (VidpopModel,), {"consumes": "pixels"})


def test_can_and_the_default_prepare_inputs() -> None:
    poe, mlp = build_model("variational_poe"), build_model("mlp")
    assert poe.can("intervals") and not mlp.can("intervals") and build_model("rec_cb").can("from_text")
    with pytest.raises(VidpopError, match="unknown capability"):
        mlp.can("fly")
    ds = VideoDataset("synthetic", pd.DataFrame({"video_id": ["a"], "title": ["t"]}))  # labelled synthetic
    with pytest.raises(VidpopError, match="consumes matrix"):
        mlp.prepare_inputs(ds)
    with pytest.raises(VidpopError, match="not fitted"):
        poe.prepare_inputs(ds)


def test_dataset_rows_keeps_the_order_asked_for() -> None:
    ds = VideoDataset("synthetic", pd.DataFrame({"video_id": list("abcd"), "title": list("wxyz")}))
    sub = dataset_rows(ds, np.array([2, 0]))
    assert sub.videos["video_id"].tolist() == ["c", "a"] and sub.name == "synthetic"
    assert dataset_rows(ds) is ds


def test_poe_inputs_follow_the_trained_social_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PoE's prepare_inputs puts the social values in the recipe's training order (NaN = the training
    mean where the video lacks one), and leaves the block out when its width cannot match the expert's."""
    from types import SimpleNamespace

    from vidpop.models import video_inputs
    from vidpop.models.poe_inputs import PoEInputs

    # synthetic: 2 videos, released 1 and 3 days before the reference time; titles stand in as fixed vectors
    t = pd.to_datetime(["2024-01-09", "2024-01-07"], utc=True)
    videos = pd.DataFrame({"video_id": ["a", "b"], "title": ["x", "y"], "published_at": t})
    ds = VideoDataset("synthetic", videos, meta={"reference_time": "2024-01-10T00:00:00Z"})
    text = PoEInputs({"textual": np.ones((2, 3))}, {"textual": np.ones(2, bool)})
    monkeypatch.setattr(video_inputs, "build_poe_inputs", lambda *a, **k: text)
    model = SimpleNamespace(trained_modalities_=["textual", "social"], in_dims_={"social": 2})
    X = video_inputs.poe_inputs_for(model, ds, social_names=["log1p_followers", "log1p_days_since_release"])
    social = X.values["social"]
    assert np.isnan(social[:, 0]).all() and np.allclose(social[:, 1], np.log1p([1.0, 3.0]))
    assert X.masks["social"].all() and X.values["textual"].shape == (2, 3)
    assert "social" not in video_inputs.poe_inputs_for(model, ds).values  # 1 column here, 2 trained
    model.trained_modalities_ = ["textual"]
    assert "social" not in video_inputs.poe_inputs_for(model, ds, social_names=["log1p_days_since_release"]).values


def test_evaluate_model_feeds_prepare_inputs_and_picks_the_task_set() -> None:
    """``evaluate_model(model, dataset, rows, y)``: the model's own input for those rows, the standard set of
    its task (synthetic stand-in models that echo a column)."""
    from types import SimpleNamespace

    from vidpop.training.evaluation import evaluate_model

    videos = pd.DataFrame({"video_id": list("abcd"), "title": list("wxyz"), "views": [1.0, 2.0, 3.0, 5.0]})
    ds = VideoDataset("synthetic", videos)
    seen = []

    def prep(dataset: VideoDataset, rows: np.ndarray) -> np.ndarray:
        seen.append(list(rows))
        return dataset.videos["views"].to_numpy()[rows]

    reg = SimpleNamespace(task="regression", capabilities=frozenset({"predict"}), prepare_inputs=prep,
                          predict=lambda X: X + 1.0)  # fmt: skip
    out = evaluate_model(reg, ds, [3, 1], "views")
    assert seen == [[3, 1]] and out["views"]["MAE"] == 1.0 and out["views"]["n_test"] == 2
    clf = SimpleNamespace(task="classification", capabilities=frozenset({"predict"}), prepare_inputs=prep,
                          predict=lambda X: (X > 2).astype(int),
                          predict_proba=lambda X: np.column_stack([1 - X / 10, X / 10]))  # fmt: skip
    res = evaluate_model(clf, ds, [0, 1, 2, 3], np.array([0, 0, 1, 1]))
    assert res["accuracy"] == 1.0 and res["Spearman"] > 0.8 and res["n_test"] == 4
    with pytest.raises(VidpopError, match="recommendation"):
        evaluate_model(SimpleNamespace(task="recommendation", prepare_inputs=prep), ds, [0], [1.0])
