"""Relation network + multi-task regressor: horizon ablation, each title's competitors, tuning and training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import typer

from vidpop.errors import VidpopError
from vidpop.experiments import relation as exp
from vidpop.experiments import relation_tuning as tuning
from vidpop.models.config import merge_config

NAME = "relation"
app = typer.Typer(no_args_is_help=True)

DATASETS = ("bilibili_bangumi_series", "netflix_engagement_reports")


def _params(path: Path, option: str) -> dict:
    """A tuning.json's best parameters, or a flat {name: value} JSON."""
    if not path.exists():
        raise VidpopError(f"{option}: {path} does not exist")
    params = json.loads(path.read_text())
    return params.get("best_params", params)


def _setup(
    dataset: str,
    horizons: str,
    cutoff: str | None,
    n_related: int,
    same_category: bool,
    title: str | None,
    epochs: int | None,
    model_params: Path | None = None,
    lightgbm_params: Path | None = None,
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
    if model_params:
        setup = dataclasses.replace(
            setup, model=tuning.apply_params(setup.model, _params(model_params, "--model-params"))
        )
    if lightgbm_params:
        lgb = _params(lightgbm_params, "--lightgbm-params")
        setup = dataclasses.replace(setup, lightgbm=merge_config(setup.lightgbm, lgb, strict=True))
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
    model_params: Path | None = typer.Option(
        None, "--model-params", help="JSON of relation_mtl parameters (e.g. the tuning.json of `relation tune`)"
    ),
    lightgbm_params: Path | None = typer.Option(
        None, "--lightgbm-params", help="JSON of LightGBM parameters (e.g. the tuning.json of `relation tune-lightgbm`)"
    ),
    out: Path | None = typer.Option(None, "--out", help="write ablation.json and ablation.md here"),
) -> None:
    """DNN, DNN+MTL, DNN+RN+MTL and LightGBM at each horizon on one temporal split (R², MAE, Spearman);
    with LightGBM and DNN+RN+MTL also their per-seed mean ("Ensemble"), and per horizon the model with the
    best validation R² ("best")."""
    setup = _setup(dataset, horizons, cutoff, n_related, same_category, title, epochs, model_params, lightgbm_params)
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
    write(result)  # the complete result (with CPU seconds and load) after the last partial one
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


@app.command("table")
def table(
    path: Path = typer.Argument(..., help="an ablation.json written by `relation ablation --out`"),
) -> None:
    """Print a saved ablation's tables (per horizon and model: validation and test R², MAE, Spearman;
    the test-R² leaderboard with the model chosen by validation R²) without training anything."""
    if not path.exists():
        raise VidpopError(f"{path} does not exist (write it with `vidpop relation ablation --out DIR`)")
    typer.echo(exp.markdown_table(json.loads(path.read_text())))


@app.command("competitors")
def competitors(
    dataset: str = typer.Option("bilibili_bangumi_series", "--dataset", help=f"one of {', '.join(DATASETS)}"),
    split: str = typer.Option("test", "--split", help=f"which titles to list: {' | '.join(exp.SPLIT_PARTS)}"),
    horizon: int = typer.Option(7, "--horizon", min=0, help="horizon in days (decides the train/val/test parts)"),
    cutoff: str | None = typer.Option(None, "--cutoff", help="test = released at/after this date"),
    n_related: int = typer.Option(3, "--n-related", min=1, help="competitors per title"),
    same_category: bool = typer.Option(False, "--same-category", help="competitors only from the same category"),
    limit: int = typer.Option(0, "--limit", min=0, help="print at most this many titles (0 = all)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of text"),
) -> None:
    """Each title's competitors: the titles released closest before it, with their release dates."""
    setup = _setup(dataset, str(horizon), cutoff, n_related, same_category, None, None)
    ds = exp.load_dated(dataset)
    prep = exp.prepare(ds, setup, horizon, exp.title_embeddings(ds, setup.features.title, progress=False))
    table = exp.competitor_table(ds, prep, split)
    shown = table[:limit] if limit else table
    if as_json:
        typer.echo(
            json.dumps(
                {"dataset": dataset, "split": split, "horizon_days": horizon, "titles": shown},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    distinct = len({tuple(c["video_id"] for c in row["competitors"]) for row in table})
    typer.echo(
        f"{dataset}, {split} part at horizon {horizon} d: {len(table)} titles, {distinct} distinct competitor sets"
    )
    for row in shown:
        typer.echo(f"{row['released']}  {row['title']}")
        for c in row["competitors"]:
            typer.echo(f"    {c['released']} ({c['days_before']:>4} d before)  {c['title']}")
        if not row["competitors"]:
            typer.echo("    (no earlier title)")


@app.command("tune")
def tune(
    out: Path = typer.Option(..., "--out", help="model directory to write (config.json + tuning.json)"),
    dataset: str = typer.Option("bilibili_bangumi_series", "--dataset", help=f"one of {', '.join(DATASETS)}"),
    horizon: int = typer.Option(7, "--horizon", min=0, help="horizon in days"),
    trials: int = typer.Option(20, "--trials", min=1, help="Optuna trials (fixed budget)"),
    seed: int = typer.Option(0, "--seed", help="seed of the sampler and of every trial's training"),
    cutoff: str | None = typer.Option(None, "--cutoff", help="test = released at/after this date"),
    n_related: int = typer.Option(3, "--n-related", min=1),
    epochs: int | None = typer.Option(None, "--epochs", help="max epochs per trial"),
) -> None:
    """Tune DNN+RN+MTL on the validation titles only, then train the chosen configuration and save it.

    The test titles are scored once, after the choice, for the final number."""
    setup = _setup(dataset, str(horizon), cutoff, n_related, False, None, epochs)
    ds = exp.load_dated(dataset)
    prep = exp.prepare(ds, setup, horizon, exp.title_embeddings(ds, setup.features.title))
    s = prep.split
    out.mkdir(parents=True, exist_ok=True)
    result = tuning.tune(
        prep.inputs(s.train), prep.y[s.train], prep.inputs(s.val), prep.y[s.val], setup.model, trials, seed
    )
    chosen = dataclasses.replace(setup, model=tuning.apply_params(setup.model, result["best_params"]))
    report, model = exp.run_variant(prep, "DNN+RN+MTL", chosen, seed=seed)
    model.save(out)  # its config.json records the chosen hyper-parameters
    result.update(dataset=dataset, horizon_days=horizon, split=s.sizes(), final={"seed": seed, **report})
    (out / "tuning.json").write_text(json.dumps(result, indent=2, default=str))
    typer.echo(f"{dataset}, horizon {horizon} d: {s.sizes()}; {trials} trials scored on validation only")
    typer.echo("chosen: " + ", ".join(f"{k}={v}" for k, v in result["best_params"].items()))
    typer.echo(f"validation R² of the chosen trial {result['best_val_r2']:.3f}")
    typer.echo(f"final model: validation R² {report['val_r2']:.3f}, test R² {report['r2']:.3f} (test read once)")
    typer.echo(f"saved -> {out} (config.json, tuning.json)")


@app.command("tune-lightgbm")
def tune_lightgbm(
    out: Path = typer.Option(..., "--out", help="folder to write tuning.json"),
    dataset: str = typer.Option("bilibili_bangumi_series", "--dataset", help=f"one of {', '.join(DATASETS)}"),
    horizon: int = typer.Option(7, "--horizon", min=0, help="horizon in days"),
    trials: int = typer.Option(40, "--trials", min=1, help="Optuna trials (fixed budget)"),
    seed: int = typer.Option(0, "--seed", help="seed of the sampler and of every trial's training"),
    cutoff: str | None = typer.Option(None, "--cutoff", help="test = released at/after this date"),
) -> None:
    """Tune the LightGBM baseline on the validation titles only (same features as the relation model);
    pass the tuning.json to `relation ablation --lightgbm-params`. The test part is not read."""
    setup = _setup(dataset, str(horizon), cutoff, 3, False, None, None)
    ds = exp.load_dated(dataset)
    prep = exp.prepare(ds, setup, horizon, exp.title_embeddings(ds, setup.features.title))
    s = prep.split
    x, y = prep.features, exp._target(prep, np.arange(len(prep.y)))[:, 0]
    result = tuning.tune_lightgbm(x[s.train], y[s.train], x[s.val], y[s.val], setup.lightgbm, trials, seed)
    result.update(dataset=dataset, horizon_days=horizon, split=s.sizes())
    out.mkdir(parents=True, exist_ok=True)
    (out / "tuning.json").write_text(json.dumps(result, indent=2, default=str))
    typer.echo(f"{dataset}, horizon {horizon} d: {s.sizes()}; {trials} trials scored on validation only")
    typer.echo("chosen: " + ", ".join(f"{k}={v}" for k, v in result["best_params"].items()))
    typer.echo(f"validation R² {result['best_val_r2']:.3f} ({result['seconds']:.0f} s); saved -> {out / 'tuning.json'}")


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
