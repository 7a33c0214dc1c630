"""docs/adding_a_model.md runs as written (issue 16 §6): its model module registers a new popularity
model, and its usage block trains it on labelled synthetic data through the registry and the shared
evaluator. The page and the code cannot drift apart."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vidpop.models import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding_a_model.md"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture
def doc_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A fresh module to run the page in (dataclasses and the config merge look classes up by module);
    the example's registration is undone afterwards so no other test sees ``title_ridge``."""
    monkeypatch.chdir(tmp_path)  # the example saves its model folder in the working directory
    mod = types.ModuleType("vidpop_doc_example")
    sys.modules[mod.__name__] = mod
    yield mod
    sys.modules.pop(mod.__name__, None)
    registry._MODELS.pop("title_ridge", None)


def test_the_page_has_one_module_and_its_usage() -> None:
    blocks = code_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 3  # the module, its library use, its recipe (the CLI's path)
    assert blocks[0].count("@register_model(") == 1  # one registration
    assert "title_ridge" not in registry.MODULES  # the example lives outside the package


def test_the_example_runs_and_scores_through_the_registry_and_evaluator(doc_module: types.ModuleType) -> None:
    module_code, usage_code, cli_code = code_blocks(DOC.read_text(encoding="utf-8"))
    exec(compile(module_code, str(DOC), "exec"), doc_module.__dict__)
    assert "title_ridge" in registry.model_names()
    cls = registry.get_model_class("title_ridge")
    assert cls.capabilities == {"predict", "from_text"} and cls.consumes == "dataset"
    from vidpop.recipes import dataset
    from vidpop.recipes.registry import recipe_for

    assert recipe_for("title_ridge") is dataset.dataset_recipe  # no recipe registered: the fallback
    exec(compile(usage_code, str(DOC), "exec"), doc_module.__dict__)
    ns = doc_module.__dict__
    row = ns["scores"]["log1p_views"]
    assert set(row) == {"MAPE", "MAE", "R2", "Spearman", "n_test"} and row["n_test"] == 80
    # words and '!' explain the synthetic target up to noise of sd 0.3: the fit must find them
    assert row["R2"] > 0.9 and row["Spearman"] > 0.9
    assert row["R2"] == pytest.approx(ns["r2"])  # evaluator and estimator agree
    assert ns["same"] and (Path("title_ridge_model") / "complete.json").exists()
    # a title alone is enough (from_text): one new video, no views, no other column
    new = ns["VideoDataset"]("new", ns["pd"].DataFrame({"video_id": ["n1"], "title": ["Word Word Word!!"]}))
    pred = ns["model"].predict(ns["model"].prepare_inputs(new))
    assert pred.shape == (1,) and np.isfinite(pred).all()
    # the fallback recipe trains and evaluates it as `vidpop train` / `vidpop evaluate` would
    exec(compile(cli_code, str(DOC), "exec"), doc_module.__dict__)
    res = ns["result"]
    assert res["model"] == "title_ridge" and ns["report"]["data"].startswith("synthetic_titles")
    test_r2 = res["metrics"]["log1p_views"]["R2"]
    assert test_r2 > 0.9 and res["baseline (train mean)"]["log1p_views"]["R2"] < 0.1 < test_r2
    assert res["metrics"]["log1p_views"]["n_test"] == 80  # the same 70/10/20 split of the 400 labelled rows


def test_the_fallback_recipe_takes_only_dataset_regressors_without_their_own() -> None:
    from vidpop.recipes import dataset, matrix, poe, rec
    from vidpop.recipes.registry import evaluator_for, recipe_for

    assert recipe_for("mlp") is matrix.matrix_recipe  # a feature-matrix model keeps the .npz recipe
    assert recipe_for("variational_poe") is poe.poe_recipe  # a dataset regressor with its own recipe keeps it
    assert recipe_for("rec_pop") is rec.rec_recipe and evaluator_for("rec_pop") is rec.rec_evaluate
    assert dataset._reads_a_dataset(registry.get_model_class("variational_poe"))
    assert not dataset._reads_a_dataset(registry.get_model_class("cover_title_fusion"))  # ordinal: labels of its own
