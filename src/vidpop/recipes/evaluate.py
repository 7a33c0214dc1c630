"""``vidpop evaluate DIR``: rebuild the test split a model folder's recipe names and score the model on it
with the standard metric set of its task (:mod:`vidpop.training.evaluation`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidpop.errors import VidpopError
from vidpop.models.base import load_model
from vidpop.models.folder import read_folder_json
from vidpop.recipes.registry import evaluator_for


def evaluate_model_dir(model_dir: str | Path, data: str | None = None) -> dict[str, Any]:
    """Load a model folder written by ``vidpop train`` (or a method's ``train`` command) and score it on
    its recipe's test split (``data`` overrides the dataset it was trained on)."""
    path = Path(model_dir)
    recipe_path = path / "recipe.json"
    if not recipe_path.exists():
        raise VidpopError(f"{path} has no recipe.json: evaluate models written by `vidpop train`")
    recipe = read_folder_json(path, "recipe.json")
    if data:
        recipe["data"] = data
    model = load_model(path)
    res = evaluator_for(model.model_name)(model, recipe)
    return {"model": model.model_name, "task": model.task, "data": recipe["data"], **res}
