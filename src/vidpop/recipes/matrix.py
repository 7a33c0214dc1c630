"""The fallback recipe: any model whose ``fit(X, y, X_val, y_val)`` takes matrices, from an ``.npz``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidpop.errors import VidpopError
from vidpop.models.registry import build_model
from vidpop.recipes.common import split_options
from vidpop.recipes.registry import register_recipe
from vidpop.training.ddp_entry import TrainJob


@register_recipe("*")
def matrix_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """``--data file.npz`` with ``X``, ``y`` (+ ``X_val``, ``y_val``); the file's own parts are the split."""
    config, opts = split_options(config)
    if opts.get("split"):
        raise VidpopError(f"--split does not apply to {Path(data).name}: an .npz brings its own X/X_val parts")
    path = Path(data)
    if path.suffix != ".npz" or not path.is_file():
        raise VidpopError(
            f"model {model!r} has no data recipe for {data!r}; give an .npz with X and y (and optionally "
            f"X_val, y_val), or register one with vidpop.recipes.register_recipe"
        )
    with np.load(path) as z:
        if "X" not in z or "y" not in z:
            raise VidpopError(f"{path.name} must hold arrays 'X' and 'y' (has {sorted(z.files)})")
        arrays = {k: z[k] for k in z.files}
    val = (arrays["X_val"], arrays["y_val"]) if "X_val" in arrays and "y_val" in arrays else (None, None)
    desc = f"{path.name}: {len(arrays['X'])} training rows x {arrays['X'].shape[1]} features"
    recipe = {"data": str(path), "split": "the file's own X / X_val"}
    return TrainJob(build_model(model, config), (arrays["X"], arrays["y"], *val), data=desc, recipe=recipe)
