"""`vidpop demo`: the README's main job on the real MicroLens sample."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where the dataset, features and model are written."),
    src: Path | None = typer.Option(None, "--src", help="MicroLens folder (default: $VIDPOP_DATA/microlens)."),
    seed: int = typer.Option(0, help="Random seed of the split and the model."),
    store: Path | None = typer.Option(None, "--store", help="Feature store folder (default: under $VIDPOP_CACHE)."),
) -> None:
    """Import MicroLens, extract features, train an MLP on titles + category, print metrics."""
    from vidpop.experiments.demo import run_demo

    r = run_demo(out, src, seed, store_dir=store)
    con = Console()
    t = Table(title="Imported (microlens)")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for k, v in r.rows_imported.items():
        t.add_row(k, f"{v:,}")
    con.print(t)
    t = Table(title="Features extracted")
    for c in ("extractor", "total", "skipped", "extracted", "errors", "items/s"):
        t.add_column(c, justify="right")
    for e in r.extraction:
        t.add_row(
            e["extractor"],
            *(str(e[k]) for k in ("total", "skipped", "extracted", "errors")),
            f"{e['items_per_second']:.1f}",
        )
    con.print(t)
    t = Table(title="MLP on title (MiniLM) + category -> log(1+count), held-out 20% (seeded random split)")
    for c in ("target", "R²", "MAE", "Spearman", "train-mean R²", "train-mean MAE"):
        t.add_column(c, justify="right")
    for target, m in r.metrics.items():
        b = r.baseline[target]
        t.add_row(
            target, f"{m['r2']:.3f}", f"{m['mae']:.3f}", f"{m['spearman']:.3f}", f"{b['r2']:.3f}", f"{b['mae']:.3f}"
        )
    con.print(t)
    con.print(f"model saved to {r.model_dir}; took {r.seconds['total']:.0f}s")
