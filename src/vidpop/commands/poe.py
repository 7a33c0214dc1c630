"""The variational product-of-experts regressor: evaluate, train, predict, and run real clips end to end.

Train on your own videos: import them with the generic adapter (a CSV with video_id, title, video_path,
views/likes/comments/shares counts, optionally author statistics and published_at), e.g.

    vidpop data import generic my_videos.csv --out data/mine --option video=file --option published=date
    vidpop poe evaluate --dataset data/mine --out reports/poe_mine
    vidpop poe train --dataset data/mine --out models/poe_mine

Frames (10 per clip, EfficientNet-Lite0) and MFCCs are extracted and cached on first use, so the visual
and acoustic experts are trained and measured there (targets: log(1 + views/likes/comments/shares)).

MicroLens with the network: download the authors' MicroLens-100k videos from their server (see the
westlake-repl/MicroLens README; `vidpop data download microlens --dest DIR` fetches the covers), then

    vidpop data import microlens --option videos_dir=DIR/videos --option covers_dir=DIR/covers --out data/ml
    vidpop poe evaluate --dataset data/ml --out reports/poe_ml

Offline only 3 MicroLens clips exist: `vidpop poe demo-clips` runs them end to end through prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from vidpop.errors import VidpopError

NAME = "poe"
app = typer.Typer(no_args_is_help=True, help=__doc__)

DATASETS = ("smp_video_2025", "spotify_fresh_finds_covers_2022")


def _config(epochs: int | None, samples: int, kl_weight: float | None) -> dict:
    cfg: dict = {"n_samples": samples}
    if kl_weight is not None:
        cfg["kl_weight"] = kl_weight
    if epochs is not None:
        cfg["train"] = {"epochs": epochs}  # merged onto the model's own TrainConfig
    return cfg


@app.command("evaluate")
def evaluate(
    dataset: str = typer.Option(..., "--dataset", help=f"{' | '.join(DATASETS)} or an imported dataset folder."),
    out: Path = typer.Option(Path("reports/poe"), "--out", help="Folder for the PNGs and results.json."),
    split: str = typer.Option(
        "random", help="random (seeded, grouped if the data has groups) | time (latest 20% = test)."
    ),
    seed: int = typer.Option(0),
    samples: int = typer.Option(1000, help="S, samples of z and y per prediction."),
    epochs: int | None = typer.Option(None, help="Max epochs (default: the model's)."),
    kl_weight: float | None = typer.Option(None, help="λ, the KL weight (default: the model's)."),
    threads: int = typer.Option(1, help="torch threads."),
) -> None:
    """Per target: MAE and Spearman, 95% coverage and width on the test part, calibration table, and the
    split-conformal LightGBM comparison; writes a residual plot with error bars and a calibration curve."""
    import torch

    from vidpop.experiments import poe as ex

    torch.set_num_threads(threads)
    task = ex.prepare(ex.load_dataset(dataset), split, seed)
    res = ex.evaluate(task, _config(epochs, samples, kl_weight), seed)
    label = Path(dataset).name
    typer.echo(ex.format_report(res, label))
    out.mkdir(parents=True, exist_ok=True)
    for name, r in res["targets"].items():
        tag = f"{label}_{name}_{split}"
        p1 = ex.plot_residuals(
            r["plot"], f"{label}: {name}, residuals with 95% intervals ({split} split)", out / f"residuals_{tag}.png"
        )
        p2 = ex.plot_calibration(
            r["calibration"],
            r["conformal_lightgbm"]["calibration"],
            f"{label}: {name} ({split} split)",
            out / f"calibration_{tag}.png",
        )
        typer.echo(f"wrote {p1}\nwrote {p2}")
    summary = {k: {kk: vv for kk, vv in v.items() if kk != "plot"} for k, v in res["targets"].items()}
    (out / f"results_{label}_{split}.json").write_text(
        json.dumps({"notes": res["notes"], "targets": summary, "single_expert": res["single_expert"]}, indent=1)
    )


@app.command("train")
def train(
    dataset: list[str] = typer.Option(
        ..., "--dataset", help="Repeatable: several collections train one model (one target column each)."
    ),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    seed: int = typer.Option(0),
    samples: int = typer.Option(1000),
    epochs: int | None = typer.Option(None),
    kl_weight: float | None = typer.Option(None),
    split: str = typer.Option("random", "--split", help="random | time | user"),
    limit: int | None = typer.Option(None, help="Train on a seeded sample of this many videos per dataset."),
    threads: int = typer.Option(1),
) -> None:
    """Train through the same recipe as `vidpop train variational_poe` (70/10/20 split) and save the model
    folder (serving-ready: recipe.json records the social inputs and class edges).

    With several ``--dataset`` options one model learns from all of them: each collection brings the
    experts it has inputs for (SMP: social + textual; Spotify: visual + textual) and its own target column.
    """
    import torch

    from vidpop.recipes import train as train_recipe

    torch.set_num_threads(threads)
    recipe = {"seed": seed, "split": split, **({"limit": limit} if limit is not None else {})}
    config = {**_config(epochs, samples, kl_weight), "recipe": recipe}
    report = train_recipe("variational_poe", ",".join(dataset), out, config)
    typer.echo(f"trained on {report['data']}; {len(report['epochs'])} epoch(s) in {report['seconds']:.1f} s")
    typer.echo(f"saved -> {out} (next: vidpop evaluate {out})")


@app.command("predict")
def predict(
    model_dir: Path = typer.Argument(..., help="A saved variational_poe model."),
    dataset: str = typer.Option(..., "--dataset", help="Adapter name or imported dataset folder."),
    limit: int = typer.Option(10, help="Predict the first this-many videos."),
    level: float = typer.Option(0.95),
) -> None:
    """Mean and central interval per target for the first ``limit`` videos."""
    from vidpop.experiments import poe as ex
    from vidpop.models.base import load_model
    from vidpop.models.poe_inputs import build_poe_inputs

    model = load_model(model_dir)
    ds = ex.load_dataset(dataset)
    ds = ds.subset(n=limit)
    r = model.predict_interval(build_poe_inputs(ds, text_views=False), level)
    for i, vid in enumerate(ds.videos["video_id"]):
        cells = [
            f"{t} {r['mean'][i, j]:.2f} [{r['lower'][i, j]:.2f}, {r['upper'][i, j]:.2f}]"
            for j, t in enumerate(model.target_names_)
        ]
        typer.echo(f"{vid}: " + "; ".join(cells))


@app.command("demo-clips")
def demo_clips(
    model_dir: Path = typer.Option(
        ..., "--model", help="A saved variational_poe model (e.g. from `vidpop poe train`)."
    ),
    n_frames: int = typer.Option(
        10, help="Frames sampled per clip for the visual expert (mean of their CNN features)."
    ),
) -> None:
    """Run the three real MicroLens clips through every expert to a prediction with intervals.

    Frames -> EfficientNet-Lite0 -> visual input; soundtrack -> 48-d MFCC -> acoustic input; title ->
    MiniLM -> contrastive projection -> textual input; author stats / release time -> social input. An
    expert fuses only if the saved model has one for that modality (trained on labelled data).

    No labelled video collection is reachable offline, so there is no trained multi-frame + audio figure:
    the model used here was trained on what has labels (e.g. `vidpop poe train --dataset smp_video_2025
    --dataset spotify_fresh_finds_covers_2022`: social + text from SMP, visual from one Spotify cover per
    item), and the acoustic expert exists only in models trained on a collection with audio.

    Train on your own videos: `vidpop data import generic videos.csv --out data/mine --option video=<path
    column>` (columns video_id, title, video_path, views/likes/comments/shares; optional published_at and
    an authors table), then `vidpop poe evaluate --dataset data/mine` and `vidpop poe train --dataset
    data/mine --out models/mine`. MicroLens videos downloaded with the network: `vidpop data import
    microlens --option videos_dir=DIR --out data/ml`, then the same commands with `--dataset data/ml`.
    """
    from vidpop.data.adapters import get_adapter
    from vidpop.models.base import load_model
    from vidpop.models.poe_inputs import MODALITIES, build_poe_inputs

    model = load_model(model_dir)
    ds = get_adapter("microlens").load()
    ds = ds.subset(ds.videos.loc[ds.videos["video_path"].notna(), "video_id"].tolist())
    if ds.videos.empty:
        raise VidpopError("no MicroLens videos found under the data root (microlens/videos/*.mp4)")
    X = build_poe_inputs(ds, n_frames=n_frames, text_views=False)
    r = model.predict_interval(X, 0.95)
    shares = model.expert_report(X)
    typer.echo(
        f"model: {model_dir} (experts trained: {', '.join(model.trained_modalities_)}; targets {model.target_names_})"
    )
    for i, row in ds.videos.reset_index(drop=True).iterrows():
        typer.echo(f"\nclip {row['video_id']} ({Path(str(row['video_path'])).name}): {str(row['title'])[:70]!r}")
        for m in MODALITIES:
            has_input = m in X.values and bool(X.masks[m][i])
            if not has_input:
                state = "no input (absent -> no expert)"
            elif m in model.trained_modalities_:
                state = f"input present, fused (precision share {shares[i]['precision_share'].get(m, 0.0):.2f})"
            else:
                state = "input present, but this model has no trained expert for it (no labelled data) -> not fused"
            typer.echo(f"  {m:9s} {state}")
        for j, t in enumerate(model.target_names_):
            typer.echo(
                f"  prediction {t}: {r['mean'][i, j]:.2f}  "
                f"95% interval [{r['lower'][i, j]:.2f}, {r['upper'][i, j]:.2f}]"
            )
        truth = {c: row[c] for c in ("views", "likes") if c in row and np.isfinite(row[c])}
        if truth:
            typer.echo(f"  (MicroLens counts for reference, a different label: {truth})")
    typer.echo("\ntrained multi-frame + audio model on labelled videos: no labelled videos (none reachable offline)")
