"""The explainable attention model: its results table, the explainer model, and clip explanations."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vidpop.errors import NoLabelledDataError, VidpopError
from vidpop.explain import COVER_DATA, HEADLINE_DATA

NAME = "attention"
app = typer.Typer(no_args_is_help=True)


def _load(name_or_dir: str):
    from vidpop.data.adapters import load_dataset

    return load_dataset(name_or_dir)


def _seeds(seeds: str) -> list[int]:
    try:
        return [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError as exc:
        raise VidpopError(f"--seeds must be comma-separated integers, got '{seeds}'") from exc


@app.command("table")
def table(
    data: Path | None = typer.Option(
        None, "--data", help="An imported labelled video collection (video_path + counts) for the frame rows."
    ),
    headline: str = typer.Option(HEADLINE_DATA, help="Headline dataset (adapter name or imported folder)."),
    covers: str = typer.Option(COVER_DATA, help="Cover + title dataset (adapter name or imported folder); '' to skip."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds (a new split and initialisation each)."),
    epochs: int = typer.Option(30, help="Max epochs per model (early stopping on validation loss)."),
    n_frames: int = typer.Option(18, help="Frames per clip (video collections)."),
    seconds: float = typer.Option(6.0, help="Frames are spread over the first this-many seconds."),
    out_json: Path | None = typer.Option(None, "--json", help="Also write the rows as JSON here."),
    threads: int = typer.Option(1, help="torch threads."),
) -> None:
    """Accuracy and Spearman of the six configurations of the paper's table."""
    import torch

    from vidpop.explain import attention_bench as bench
    from vidpop.training.loop import TrainConfig

    torch.set_num_threads(threads)
    seed_list = _seeds(seeds)
    head_task = bench.headline_task(_load(headline))
    cover_task = bench.cover_task(_load(covers)) if covers else None
    video_task, reason = None, "no labelled videos"
    if data is not None:
        try:
            video_task = bench.video_task(_load(str(data)), n_frames, seconds)
        except NoLabelledDataError as exc:
            reason = str(exc)
    train = TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, weight_decay=1e-4, patience=5, progress=False)
    rows = bench.attention_table(head_task, cover_task, video_task, seed_list, train, videos_reason=reason)
    typer.echo(bench.format_table(rows, seed_list))
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(rows, indent=1))


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write."),
    headline: str = typer.Option(HEADLINE_DATA, help="Headline dataset (adapter name or imported folder)."),
    covers: str = typer.Option(COVER_DATA, help="Cover + title dataset (adapter name or imported folder)."),
    seed: int = typer.Option(0),
    epochs: int = typer.Option(30),
    limit: int | None = typer.Option(None, help="A seeded sample of this many headlines."),
    covers_limit: int | None = typer.Option(None, help="A seeded sample of this many covers."),
    threads: int = typer.Option(1),
) -> None:
    """Train the multimodal attention model used for explanations (headlines + covers) through the same
    recipe as `vidpop train attention_explain`, save it and print its test scores."""
    import torch

    from vidpop.recipes import evaluate_model_dir
    from vidpop.recipes import train as train_recipe

    torch.set_num_threads(threads)
    recipe = {"seed": seed, "covers": covers, "limit": limit, "covers_limit": covers_limit}
    config = {"train": {"epochs": epochs, "progress": True}, "recipe": recipe}
    train_recipe("attention_explain", headline, out, config)
    typer.echo(f"saved -> {out}")
    for name, s in evaluate_model_dir(out)["metrics"].items():
        typer.echo(f"  {name:34s} accuracy {s['accuracy']:.3f}  Spearman {s['Spearman']:.3f}  (n_test={s['n_test']})")


@app.command("explain")
def explain(
    model_dir: Path = typer.Argument(..., help="A saved attention_explain model."),
    video: Path = typer.Option(..., "--video", help="Video file (mp4, …)."),
    title: str = typer.Option("", "--title", help="The video's title / headline."),
    out: Path = typer.Option(..., "--out", help="Output folder for PNGs + explanation.json."),
    n_frames: int | None = typer.Option(None, help="Frames to sample (default: the model's n_frames)."),
) -> None:
    """Grad-CAM heatmaps, frame attention and word attention for one clip."""
    from vidpop.explain.video import explain_video
    from vidpop.models.base import load_model

    if not video.exists():
        raise VidpopError(f"video not found: {video}")
    info = model_dir / "training_data.json"
    note = ""
    if info.exists():
        note = "model trained on: " + " + ".join(json.loads(info.read_text()).get("trained_on", []))
    data = explain_video(load_model(model_dir), video, title, out, n_frames=n_frames, note=note)
    typer.echo(f"P(popular) = {data['p_popular']:.3f}; wrote {out / 'explanation.png'} and {out / 'explanation.json'}")
    if data["frames"]:
        top = data["frames"][data["top_frame"]]
        typer.echo(f"top frame #{top['index']} at {top['timestamp']:.2f}s (α = {top['alpha']:.3f})")
        if (data.get("frame_attention") or {}).get("note"):
            typer.echo(data["frame_attention"]["note"])
    if data["words"]:
        best = sorted(data["words"], key=lambda w: -w["beta"])[:5]
        typer.echo("top words: " + ", ".join(f"{w['word']} ({w['beta']:.2f})" for w in best))
