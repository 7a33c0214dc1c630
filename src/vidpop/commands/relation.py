"""Relation network + multi-task regressor: the horizon ablation table and training a saved model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from vidpop.errors import VidpopError
from vidpop.experiments import relation as exp

NAME = "relation"
app = typer.Typer(no_args_is_help=True)

DATASETS = ("bilibili_bangumi_series", "netflix_engagement_reports")


def _setup(
    dataset: str,
    horizons: str,
    cutoff: str | None,
    n_related: int,
    same_category: bool,
    title: str | None,
    epochs: int | None,
) -> exp.RelationSetup:
    if dataset not in DATASETS:
        raise VidpopError(f"--dataset must be one of {DATASETS}")
    try:
        hs = tuple(int(h) for h in horizons.split(",") if h.strip())
    except ValueError as exc:
        raise VidpopError(f"--horizons takes comma-separated days, got '{horizons}'") from exc
    if not hs or min(hs) < 0:
        raise VidpopError("--horizons needs at least one non-negative number of days")
    setup = exp.setup_for(dataset, horizons=hs, cutoff=cutoff, n_related=n_related, same_category=same_category)
    if title:
        setup = dataclasses.replace(setup, features=dataclasses.replace(setup.features, title=title))
    if epochs:
        m = setup.model
        setup = dataclasses.replace(
            setup, model=dataclasses.replace(m, train=dataclasses.replace(m.train, epochs=epochs))
        )
    return setup


@app.command("ablation")
def ablation(
    dataset: str = typer.Option("bilibili_bangumi_series", "--dataset", help=f"one of {', '.join(DATASETS)}"),
    horizons: str = typer.Option("7,180,360", "--horizons", help="comma-separated horizons in days"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="training seeds averaged per cell"),
    variants: str = typer.Option(
        ",".join(exp.DEFAULT_VARIANTS), "--variants", help=f"from {[*exp.VARIANTS, 'LightGBM']}"
    ),
    cutoff: str | None = typer.Option(
        None, "--cutoff", help="test = released at/after this date (default: 90% quantile of release dates)"
    ),
    n_related: int = typer.Option(3, "--n-related", min=1, help="competitors per title"),
    same_category: bool = typer.Option(False, "--same-category", help="competitors only from the same category"),
    title: str | None = typer.Option(
        None, "--title", help="title features: tfidf_svd | minilm | none (default: dataset preset)"
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="max epochs of the neural variants"),
    out: Path | None = typer.Option(None, "--out", help="write ablation.json and ablation.md here"),
) -> None:
    """DNN, DNN+MTL, DNN+RN+MTL and LightGBM at each horizon on one temporal split (R², MAE, Spearman)."""
    setup = _setup(dataset, horizons, cutoff, n_related, same_category, title, epochs)
    names = tuple(v.strip() for v in variants.split(",") if v.strip())
    bad = [v for v in names if v not in (*exp.VARIANTS, "LightGBM")]
    if bad:
        raise VidpopError(f"unknown variant(s) {bad}; known: {[*exp.VARIANTS, 'LightGBM']}")

    def write(result: dict) -> None:
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "ablation.json").write_text(json.dumps(result, indent=2, default=str))
            (out / "ablation.md").write_text(exp.markdown_table(result) + "\n")

    result = exp.ablation(setup, names, seeds=seeds, on_horizon=write)
    table = exp.markdown_table(result)
    typer.echo(
        f"dataset {dataset}: {result['n_titles_dated']} dated titles, "
        f"{result['time_span'][0]} .. {result['time_span'][1]}"
    )
    for h, info in result["horizons"].items():
        typer.echo(
            f"  horizon {h} d: train before {info['train_end'][:10]}, test from {info['cutoff'][:10]}; "
            f"{info['n_features']} features; "
            f"test titles have {info['test_mean_competitors']:.2f} competitors on average"
        )
    typer.echo(table)
    if out:
        typer.echo(f"wrote {out / 'ablation.json'} and {out / 'ablation.md'}")


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", help="model directory to write"),
    dataset: str = typer.Option("bilibili_bangumi_series", "--dataset", help=f"one of {', '.join(DATASETS)}"),
    horizon: int = typer.Option(180, "--horizon", min=0, help="horizon in days"),
    variant: str = typer.Option("DNN+RN+MTL", "--variant", help=f"one of {list(exp.VARIANTS)}"),
    cutoff: str | None = typer.Option(None, "--cutoff", help="test = released at/after this date"),
    n_related: int = typer.Option(3, "--n-related", min=1),
    same_category: bool = typer.Option(False, "--same-category"),
    title: str | None = typer.Option(None, "--title", help="tfidf_svd | minilm | none"),
    epochs: int | None = typer.Option(None, "--epochs"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train one variant through the same recipe as `vidpop train relation_mtl` (temporal split at the
    horizon), save the model folder and print its test metrics."""
    from vidpop.recipes import evaluate_model_dir
    from vidpop.recipes import train as train_recipe

    if dataset not in DATASETS:
        raise VidpopError(f"--dataset must be one of {DATASETS}")
    if variant not in exp.VARIANTS:
        raise VidpopError(
            f"--variant must be one of {list(exp.VARIANTS)} "
            "(the LightGBM baseline is a row of `vidpop relation ablation`)"
        )
    use_rel, mtl = exp.VARIANTS[variant]
    config: dict = {"use_relation": use_rel}
    if not mtl:
        config["aux_weight"] = 0.0  # an MTL variant keeps the preset's λ
    if epochs:
        config["train"] = {"epochs": epochs}
    recipe = {"seed": seed, "horizon": horizon, "n_related": n_related, "same_category": same_category}
    recipe.update({k: v for k, v in (("cutoff", cutoff), ("title", title)) if v})
    report = train_recipe("relation_mtl", dataset, out, {**config, "recipe": recipe})
    typer.echo(f"{variant} on {report['data']}; {len(report['epochs'])} epoch(s) in {report['seconds']:.1f} s")
    res = evaluate_model_dir(out)
    for name, row in res["metrics"].items():
        typer.echo(f"test {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    typer.echo(f"saved -> {out} (vidpop evaluate {out} rebuilds the same test split)")
