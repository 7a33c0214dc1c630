"""`vidpop leaderboard`: every popularity model on one dataset and split, retrieval features off and on."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(root: typer.Typer) -> None:
    root.command("leaderboard")(leaderboard)


def leaderboard(
    data: str = typer.Option(..., "--data", help="smp_video_2025 | microlens | an imported dataset folder."),
    split: str | None = typer.Option(
        None,
        "--split",
        help="time (latest 20% test, 10% before it validation) | random (seeded 70/10/20); "
        "default: time when every row has a publication time.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the leaderboard as JSON."),
    trials: int = typer.Option(30, "--trials", min=0, help="Optuna trials per LightGBM (scored on validation)."),
    poe_trials: int = typer.Option(8, "--poe-trials", min=0, help="Optuna trials for the variational PoE."),
    poe_epochs: int = typer.Option(150, "--poe-epochs", min=1, help="Max epochs of each PoE fit."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Save each model folder (with tuning.json) here."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    seeds: str = typer.Option(
        "0,1,2", "--seeds", help="Headline data only: comma-separated seeds, one random 70/10/20 split each."
    ),
    attention_trials: int = typer.Option(3, "--attention-trials", min=0, help="Headline data: attention trials."),
) -> None:
    """Fit every popularity model on the training part, tune on validation, report test metrics (MAPE, MAE,
    R2, Spearman, coverage95, width95), seconds to train and whether retrieval features were on.
    On the YouTube headlines (views ÷ subscribers, median split) the classifiers instead: accuracy and
    Spearman over seeded splits."""
    import torch

    from vidpop.errors import VidpopError
    from vidpop.experiments import leaderboard_headlines as lh
    from vidpop.experiments.leaderboard import format_table, run_leaderboard

    torch.set_num_threads(1)
    if data == lh.DATA:
        try:
            seed_list = tuple(int(s) for s in seeds.split(","))
        except ValueError:
            raise VidpopError(f"--seeds must be comma-separated integers, got '{seeds}'") from None
        res = lh.run_headline_leaderboard(data, seed_list, trials, attention_trials, progress=progress)
        typer.echo(json.dumps(res, indent=2, default=float) if as_json else lh.format_headline_table(res))
        return
    res = run_leaderboard(data, split, trials, poe_trials, seed, out, progress, poe_epochs)
    typer.echo(json.dumps(res, indent=2, default=float) if as_json else format_table(res))
