"""Cover + title late fusion: train (optionally GPipe over 2 ranks), weight sweep, backbone and title-only tables."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import typer

from vidpop.errors import VidpopError
from vidpop.experiments import fusion as exp
from vidpop.models.cover_title_fusion import TEXT_ENCODERS, CoverTitleFusionConfig

NAME = "fusion"
app = typer.Typer(no_args_is_help=True)

DatasetOpt = typer.Option(
    exp.SPOTIFY, "--dataset", help="adapter name (spotify_fresh_finds_covers_2022, microlens, ...)"
)


def _config(
    weight: float,
    image_backbone: str,
    image_weights: str | None,
    text: str,
    finetune: bool,
    epochs: int,
    seed: int,
    progress: bool = True,
) -> CoverTitleFusionConfig:
    if text not in TEXT_ENCODERS:
        raise VidpopError(f"--text must be one of {TEXT_ENCODERS}")
    cfg = CoverTitleFusionConfig(
        fusion_weight=weight,
        image_backbone=image_backbone,
        image_weights=image_weights,
        text_encoder=text,
        finetune=finetune,
        progress=progress,
    )
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs, seed=seed))


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _label_line(label: dict[str, Any]) -> str:
    props = label.get("train_proportions")
    share = f"; class shares on train {', '.join(f'{p:.0%}' for p in props)}" if props else ""
    weights = ", ".join(f"{k} {v:.2f}" for k, v in (label.get("weights_used") or {}).items())
    return f"{label.get('recipe')}; weights used: {weights}{share}"


def _print_table(result: dict[str, Any], title: str) -> None:
    typer.echo(f"## {title} — {result['dataset']}")
    if result.get("caveat"):
        typer.echo(f"({result['caveat']})")
    info = result.get("info", {})
    labels = info.get("labels") or ({"quantile": info["label"]} if info.get("label") else {})
    for recipe, label in labels.items():
        typer.echo(f"labels '{recipe}': {_label_line(label)}")
    typer.echo(f"test metrics, mean ± sd over {result['seeds']} split seed(s); {info.get('split', '')}")
    typer.echo("| labels | row | accuracy | ordinal accuracy | n test | covers present |")
    typer.echo("|---|---|---|---|---|---|")
    for r in result["rows"]:
        lab = r.get("labels", "quantile")
        if "note" in r:
            typer.echo(f"| {lab} | {r['row']} | {r['note']} | | | |")
            continue
        acc = f"{r['accuracy']:.3f}" + (f" ± {r['accuracy_sd']:.3f}" if "accuracy_sd" in r else "")
        oacc = f"{r['ordinal_accuracy']:.3f}" + (
            f" ± {r['ordinal_accuracy_sd']:.3f}" if "ordinal_accuracy_sd" in r else ""
        )
        cov = f"{r['covers_present']:.1%}" if "covers_present" in r else ""
        typer.echo(f"| {lab} | {r['row']} | {acc} | {oacc} | {r.get('n_test', '')} | {cov} |")


def _save_json(result: dict[str, Any], out: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))
        typer.echo(f"saved {out}")


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", help="folder for the trained model and metrics.json"),
    dataset: str = DatasetOpt,
    weight: float = typer.Option(0.75, help="fusion weight w of the visual branch"),
    image_backbone: str = typer.Option(
        "efficientnet_lite0", help="efficientnet_lite0 | vit_b16 (needs --image-weights)"
    ),
    image_weights: str = typer.Option(None, help="weights for backbones without offline weights"),
    text: str = typer.Option("minilm", help="minilm | glove_gru"),
    finetune: bool = typer.Option(False, help="train the backbones end to end (lr 5e-5; slow on CPU)"),
    epochs: int = typer.Option(40),
    seed: int = typer.Option(0),
    limit: int = typer.Option(None, help="train on a seeded sample of this many videos"),
    split: str = typer.Option("random", "--split", help="random | time | user (pipeline mode: random)"),
    pipeline: int = typer.Option(0, help="2 = GPipe over 2 CPU ranks started with torchrun; 0 = one process"),
    microbatches: int = typer.Option(4, help="micro-batches per batch (pipeline mode)"),
) -> None:
    """Train through the same recipe as `vidpop train cover_title_fusion` (70/10/20 split, grouped where the
    data has groups) and print the test metrics; ``--pipeline 2`` trains the same split with GPipe."""
    cfg = _config(weight, image_backbone, image_weights, text, finetune, epochs, seed)
    if pipeline not in (0, 2):
        raise VidpopError("--pipeline takes 0 (single process) or 2 (two stages)")
    if pipeline == 2:
        _launch_pipeline(out, dataset, cfg, limit, seed, microbatches)
        return
    from vidpop.models.config import config_to_dict
    from vidpop.recipes import evaluate_model_dir
    from vidpop.recipes import train as train_recipe

    # the same recipe (and model folder) as `vidpop train cover_title_fusion`
    recipe = {"seed": seed, "split": split, **({"limit": limit} if limit is not None else {})}
    report = train_recipe("cover_title_fusion", dataset, out, {**config_to_dict(cfg), "recipe": recipe})
    if exp.caveat(dataset):
        typer.echo(f"({exp.caveat(dataset)})")
    typer.echo(f"trained on {report['data']}; {len(report['epochs'])} epoch(s) in {report['seconds']:.1f} s")
    res = evaluate_model_dir(out)
    typer.echo("test: " + ", ".join(f"{k} {_fmt(v)}" for k, v in res["metrics"]["test"].items()))
    _save_json(res, out / "metrics.json")


def _report_and_save(model: Any, parts: exp.Parts, out: Path, dataset: str, limit: int | None = None) -> None:
    if exp.caveat(dataset):
        typer.echo(f"({exp.caveat(dataset)})")
    typer.echo(f"label: {model.label_info_['recipe']}; weights used {model.label_info_.get('weights_used')}")
    typer.echo(f"{parts.notes[0]}; coverage {model.coverage_}")
    keys = [
        "epoch",
        "train_loss",
        "val_loss",
        "train_accuracy",
        "train_ordinal_accuracy",
        "val_accuracy",
        "val_ordinal_accuracy",
    ]
    typer.echo(" ".join(f"{k:>22s}" for k in keys))
    for row in model.history_["epochs"]:
        typer.echo(" ".join(f"{_fmt(row.get(k, '')):>22s}" for k in keys))
    res = {
        "dataset": dataset,
        "caveat": exp.caveat(dataset),
        "split": parts.notes[0],
        "label": model.label_info_,
        "best_epoch": model.history_["best_epoch"],
        "val": model.evaluate(parts.val),
        "test": model.evaluate(parts.test),
        "pipeline": model.history_.get("pipeline"),
    }
    typer.echo(f"best epoch {res['best_epoch']}; val {res['val']}; test {res['test']}")
    recipe = {"model": "cover_title_fusion", "data": dataset, "seed": model.config.train.seed,
              "limit": limit, "split_kind": "random", "split": parts.notes[0]}  # fmt: skip
    model.save(out, extra_json={"recipe.json": recipe})  # the same folder as the recipe's (same split)
    _save_json(res, out / "metrics.json")


def _launch_pipeline(
    out: Path, dataset: str, cfg: CoverTitleFusionConfig, limit: int | None, seed: int, micro: int
) -> None:
    """Warm the feature cache here (the ranks only read it), then start 2 ranks with torchrun."""
    from vidpop.models.cover_title_fusion import CoverTitleFusion
    from vidpop.training.distributed import free_port

    if cfg.finetune or cfg.text_encoder != "minilm":
        raise VidpopError(
            "--pipeline 2 runs the frozen-feature model with MiniLM titles (float activations between stages)"
        )
    CoverTitleFusion(cfg).inputs(exp.load_dataset(dataset, limit, seed))
    args = [
        "--out",
        str(out),
        "--dataset",
        dataset,
        "--weight",
        str(cfg.fusion_weight),
        "--image-backbone",
        cfg.image_backbone,
        "--epochs",
        str(cfg.train.epochs),
        "--seed",
        str(seed),
        "--microbatches",
        str(micro),
    ]
    if cfg.image_weights:
        args += ["--image-weights", cfg.image_weights]
    if limit:
        args += ["--limit", str(limit)]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "-m",
        "vidpop.cli",
        "fusion",
        "pipeline-worker",
        *args,
    ]
    typer.echo("launching: torchrun " + " ".join(cmd[3:]))
    rc = subprocess.call(cmd)
    if rc != 0:
        raise VidpopError(f"the pipeline ranks failed (exit code {rc})")


@app.command("pipeline-worker", hidden=True)
def pipeline_worker(
    out: Path = typer.Option(...),
    dataset: str = DatasetOpt,
    weight: float = typer.Option(0.75),
    image_backbone: str = typer.Option("efficientnet_lite0"),
    image_weights: str = typer.Option(None),
    epochs: int = typer.Option(40),
    seed: int = typer.Option(0),
    limit: int = typer.Option(None),
    microbatches: int = typer.Option(4),
) -> None:
    """One rank of `fusion train --pipeline 2` (run by torchrun: visual stage on rank 0, text + head on rank 1)."""
    import torch
    from torch import nn

    from vidpop.models.cover_title_fusion import INPUT_KEYS, CoverTitleFusion
    from vidpop.training import distributed
    from vidpop.training.pipeline_parallel import train_pipeline

    torch.set_num_threads(1)
    if not distributed.init_from_env("gloo"):
        raise VidpopError("pipeline-worker must run under torchrun with WORLD_SIZE=2")
    try:
        cfg = _config(weight, image_backbone, image_weights, "minilm", False, epochs, seed, progress=False)
        parts = exp.split_dataset(exp.load_dataset(dataset, limit, seed), seed)
        model = CoverTitleFusion(cfg)
        arrays = model.setup(parts.train)
        val = {**model.inputs(parts.val), "y": model.labels(parts.val)} if len(parts.val.videos) else None
        hist = train_pipeline(
            model.module_.stages(),
            nn.functional.cross_entropy,
            arrays,
            INPUT_KEYS,
            "y",
            dataclasses.replace(cfg.train, progress=True),
            microbatches,
            epoch_callback=lambda _e: model.epoch_metrics(model.module_, arrays, val),
        )
        if distributed.is_main_process():
            model.history_ = hist
            _report_and_save(model, parts, out, dataset, limit)
    finally:
        distributed.cleanup()


@app.command("sweep")
def sweep(
    seeds: int = typer.Option(3, help="number of split seeds to average"),
    weights: str = typer.Option(",".join(f"{w:g}" for w in exp.SWEEP_WEIGHTS), help="comma-separated fusion weights"),
    limit: int = typer.Option(None),
    out: Path = typer.Option(None, help="write the table as JSON"),
) -> None:
    """Fusion-weight sweep (w = 0 title alone ... w = 1 cover alone) on Spotify covers + titles."""
    ws = tuple(float(w) for w in weights.split(","))
    res = exp.weight_sweep(ws, seeds, limit, log=typer.echo)
    _print_table(res, "fusion-weight sweep (EfficientNet-Lite0 + text encoder by language, frozen)")
    _save_json(res, out)


@app.command("backbones")
def backbones(
    seeds: int = typer.Option(3),
    limit: int = typer.Option(None),
    vit_weights: str = typer.Option(None, help="ViT-B/16 weights (HF folder or state dict) to measure the ViT row"),
    out: Path = typer.Option(None),
) -> None:
    """Backbone swap table at w = 0.75 on Spotify covers + titles."""
    res = exp.backbone_table(seeds, limit, vit_weights, log=typer.echo)
    _print_table(res, "backbone swap (w = 0.75, frozen backbones)")
    _save_json(res, out)


@app.command("titles")
def titles(
    dataset: str = typer.Option(exp.BILIBILI, help="bilibili_popular_videos_2021 or microlens"),
    seeds: int = typer.Option(3),
    limit: int = typer.Option(None),
    labels: str = typer.Option(
        "quantile,paper", help="label recipes: quantile (equal classes), paper (its thresholds)"
    ),
    out: Path = typer.Option(None),
) -> None:
    """Title-only results on a dataset without covers, or with only a few: the encoder the titles'
    language calls for (e5 for Chinese) beside MiniLM and GloVe-GRU, under each label recipe."""
    from vidpop.data.labels import LABEL_RECIPES

    recipes = tuple(r.strip() for r in labels.split(",") if r.strip())
    if not recipes or any(r not in LABEL_RECIPES for r in recipes):
        raise VidpopError(f"--labels takes a comma-separated list of {', '.join(LABEL_RECIPES)}")
    res = exp.title_only_table(dataset, seeds, limit, log=typer.echo, recipes=recipes)
    _print_table(res, "title branch")
    for n in res["notes"]:
        typer.echo(f"- {n}")
    _save_json(res, out)


@app.command("predict")
def predict(
    model_dir: Path = typer.Option(..., "--model"),
    dataset: str = DatasetOpt,
    limit: int = typer.Option(None),
    out: Path = typer.Option(None, help="CSV of video_id, class, class probabilities"),
) -> None:
    """Predict ordinal classes with a saved model (labels are scored when the data has the counts)."""
    import pandas as pd

    from vidpop.models.base import load_model

    model = load_model(model_dir)
    ds = exp.load_dataset(dataset, limit)
    proba = model.predict_proba(ds)
    df = pd.DataFrame({"video_id": ds.videos["video_id"], "class": proba.argmax(1)})
    for k in range(proba.shape[1]):
        df[f"p{k}"] = np.round(proba[:, k], 4)
    typer.echo(df.head(10).to_string(index=False))
    typer.echo(f"classes: {np.bincount(df['class'], minlength=proba.shape[1]).tolist()}")
    if out is not None:
        df.to_csv(out, index=False)
        typer.echo(f"saved {out}")
