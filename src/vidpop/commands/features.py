"""Extract and inspect features (title, cover, frame and audio embeddings) of an imported dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.features.store import FeatureStore

NAME = "features"
app = typer.Typer(no_args_is_help=True)

STORE_HELP = "Feature store folder (default: the shared content-keyed store <cache>/features/by-content)."
KINDS_HELP = "Comma-separated kinds: title, cover, frames, audio (or full names, see `vidpop features info`)."


def _store(ds: VideoDataset, store: Path | None) -> FeatureStore:
    from vidpop.features.extract import default_store

    return FeatureStore(store) if store else default_store(ds)


def _kinds(kinds: str) -> list[str]:
    from vidpop.features.extract import resolve_kind

    out = [resolve_kind(k.strip()) for k in kinds.split(",") if k.strip()]
    if not out:
        raise VidpopError("--kinds is empty")
    return out


@app.command("extract")
def extract(
    dataset_dir: Path = typer.Argument(..., help="A folder written by `vidpop data import`."),
    kinds: str = typer.Option("title,cover,frames,audio", "--kinds", "-k", help=KINDS_HELP),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N items of each kind."),
    store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Items per batch/part (default per kind)."),
    n_frames: int = typer.Option(10, "--n-frames", help="Frames per video (frames kind)."),
    first_seconds: float | None = typer.Option(None, "--first-seconds", help="Sample frames within the first T s."),
    mode: str = typer.Option("sequential", "--mode", help="Frame decoding: sequential, seek or keyframes."),
    skip_nonref: bool = typer.Option(False, "--skip-nonref", help="Sequential decoding skips non-reference frames."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Extract the missing features of a dataset into the store (resumable: rerun after a kill)."""
    from vidpop.features.extract import extract_kind

    wanted = _kinds(kinds)  # validate before touching anything
    ds = VideoDataset.load(dataset_dir)
    fs = _store(ds, store)
    typer.echo(f"store: {fs.root}")
    typer.echo(f"{'kind':15s} {'items':>7s} {'extracted':>9s} {'skipped':>8s} {'errors':>7s} {'items/s':>8s}")
    for kind in wanted:
        opts: dict[str, object] = {}
        if kind == "frames_effnet":
            opts = {"n_frames": n_frames, "first_seconds": first_seconds, "mode": mode, "skip_nonref": skip_nonref}
        r = extract_kind(ds, kind, fs, limit=limit, batch_size=batch_size, progress=progress, **opts)
        rate = f"{r.items_per_second:8.2f}" if r.extracted + r.errors else f"{'-':>8s}"
        typer.echo(f"{kind:15s} {r.total:7d} {r.extracted:9d} {r.skipped:8d} {r.errors:7d} {rate}")


@app.command("errors")
def errors(
    dataset_dir: Path = typer.Argument(..., help="A folder written by `vidpop data import`."),
    kinds: str = typer.Option("title,cover,frames,audio", "--kinds", "-k", help=KINDS_HELP),
    store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    max_rows: int = typer.Option(50, "--max-rows", help="Print at most this many rows per kind."),
) -> None:
    """List the items that could not be processed (kind, video id, stage, reason)."""
    from vidpop.features.extract import store_errors

    ds = VideoDataset.load(dataset_dir)
    fs = _store(ds, store)
    wanted = set(_kinds(kinds))
    total = 0
    for fset in fs.feature_sets():
        name, version = fset.split("@", 1)
        if name not in wanted:
            continue
        rows = store_errors(ds, fs, name, version)  # rows are keyed by content: map back to video ids
        total += len(rows)
        typer.echo(f"{fset}: {len(rows)} error rows")
        for e in rows[:max_rows]:
            typer.echo(f"  {e.video_id}\t{e.stage}\t{e.reason}")
        if len(rows) > max_rows:
            typer.echo(f"  ... {len(rows) - max_rows} more")
    if total == 0:
        typer.echo("no error rows")


@app.command("info")
def info(
    dataset_dir: Path | None = typer.Argument(None, help="Optional dataset: also show what its store holds."),
    store: Path | None = typer.Option(None, "--store", help="Feature store folder."),
) -> None:
    """The feature kinds, image backbones and text encoders (and a store's contents)."""
    from vidpop.features.extract import ALIASES, KINDS, build_extractor
    from vidpop.features.image import backbone_names
    from vidpop.features.text import text_encoder_names

    typer.echo("feature kinds:")
    for kind in KINDS:
        try:
            ext = build_extractor(kind)
            typer.echo(f"  {kind:15s} shape {ext.shape!s:12s} version {ext.version}  (input: {ext.column})")
        except VidpopError as exc:
            typer.echo(f"  {kind:15s} unavailable: {exc}")
    typer.echo(f"aliases: {', '.join(f'{a}={k}' for a, k in ALIASES.items())}")
    typer.echo(f"image backbones: {', '.join(backbone_names())} (default efficientnet_lite0)")
    typer.echo(f"text encoders: {', '.join(text_encoder_names())} (default title_minilm)")
    if dataset_dir is None and store is None:
        return
    fs = FeatureStore(store) if store else _store(VideoDataset.load(dataset_dir), None)
    typer.echo(f"store {fs.root}:")
    for fset in fs.feature_sets():
        name, version = fset.split("@", 1)
        ids, values, mask = fs.read(name, version)
        n_err = len(fs.errors(name, version))
        present = "" if mask is None else f", {int(mask.sum())} with data"
        typer.echo(f"  {fset}: {len(ids)} items {tuple(values.shape[1:])}{present}, {n_err} errors")
