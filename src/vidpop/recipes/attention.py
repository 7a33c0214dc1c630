"""Frame + headline attention model for the explanations: headlines of ``data`` and covers of ``recipe.covers``."""

from __future__ import annotations

from typing import Any

from vidpop.models.registry import build_model
from vidpop.recipes.common import load_data, split_kind, split_options, with_seed
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob

COVERS = "spotify_fresh_finds_covers_2022"


def _tasks(data: str, opts: dict[str, Any]) -> tuple[Any, Any]:
    from vidpop.explain import attention_bench as bench

    split_kind(opts, ("random",))  # each collection keeps its own grouped random split
    seed = int(opts.get("seed", 0))
    head = bench.headline_task(load_data(data, opts.get("limit"), seed))
    covers = bench.cover_task(load_data(opts.get("covers", COVERS), opts.get("covers_limit"), seed))
    return head, covers


@register_recipe("attention_explain")
def attention_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Headlines of ``data`` (median split of its popularity) and the covers of ``recipe.covers`` (one frame
    + title each), each collection split 70/10/20 at random."""
    from vidpop.explain import attention_bench as bench

    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    head, covers = _tasks(data, opts)
    Xtr, ytr, Xva, yva, _ = bench.explainer_training_data(head, covers, seed)
    config = {"modalities": "both", **with_seed(config, seed)}
    cover_name = opts.get("covers", COVERS)
    recipe = {
        "data": data,
        "covers": cover_name,
        "covers_limit": opts.get("covers_limit"),
        "seed": seed,
        "limit": opts.get("limit"),
        "split": "random 70/10/20 per collection, median split fitted on each training part",
        "trained_on": [f"{data} (headlines, no frames)", f"{cover_name} (cover = one frame, + title)"],
    }
    m = build_model(model, config)
    return TrainJob(m, (Xtr, ytr, Xva, yva), data=f"{data} headlines + covers: {len(ytr)} train rows", recipe=recipe)


def explainer_scores(model: Any, report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The classification set on each collection's test part: accuracy of P(popular) > 0.5 and Spearman of
    P(popular) against the normalised popularity the median split was cut from."""
    out = {}
    for name, r in report.items():
        test = r["split"].test
        proba = model.predict_proba(r["inputs"].take(test))[:, 1]
        target = r["labeler"].normalised(r["table"])[test]
        out[name] = evaluation.classification(r["y"][test], (proba > 0.5).astype(int), proba, target)
    return out


@register_evaluator("attention_explain")
def attention_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    from vidpop.explain import attention_bench as bench

    head, covers = _tasks(recipe["data"], {**recipe, "split": "random"})
    *_, report = bench.explainer_training_data(head, covers, int(recipe.get("seed", 0)))
    return {"metrics": explainer_scores(model, report), "split": recipe.get("split")}
