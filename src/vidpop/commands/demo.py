"""`vidpop demo`: the README's main job on the real MicroLens sample."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from vidpop.errors import VidpopError


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where the dataset, features and model are written."),
    src: Path | None = typer.Option(None, "--src", help="MicroLens folder (default: $VIDPOP_DATA/microlens)."),
    seed: int = typer.Option(0, help="Random seed of the split and the model."),
    store: Path | None = typer.Option(None, "--store", help="Feature store folder (default: under $VIDPOP_CACHE)."),
    bundle: Path | None = typer.Option(
        None, "--bundle", help="Folder of the quick model bundle (default: OUT/bundle; reused when complete)."
    ),
    product: bool = typer.Option(True, "--product/--no-product", help="Then predict, explain and recommend."),
) -> None:
    """Import MicroLens, extract features, train an MLP on titles + category and print its metrics; then train
    the quick bundle (or reuse it) and show the product: a prediction for a real MicroLens clip and title, an
    explanation PNG, and recommendations for a known user and for a text."""
    from vidpop.experiments.demo import run_demo, train_quick_bundle

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
    if not product:
        return
    root = bundle or out / "bundle"
    t0 = time.perf_counter()
    train_quick_bundle(root)
    con.print(f"quick bundle in {root} ({time.perf_counter() - t0:.0f}s)")
    show_product(root, out / "explanation", con)


def demo_clip() -> tuple[Path, str]:
    """The smallest real MicroLens clip and its own title."""
    import pandas as pd

    from vidpop.config import data_root

    base = data_root() / "microlens"
    clips = sorted((base / "videos").glob("*.mp4"), key=lambda p: p.stat().st_size)
    if not clips:
        raise VidpopError(f"no MicroLens clips under {base / 'videos'}")
    titles = pd.read_csv(base / "MicroLens-50k_titles.csv", dtype=str)
    hit = titles.loc[titles.iloc[:, 0] == clips[0].stem]
    return clips[0], str(hit.iloc[0, 1]) if len(hit) else ""


def show_product(root: Path, explain_dir: Path, con: Console) -> dict[str, Any]:
    """Predict, explain and recommend with the bundle in ``root``, as `vidpop predict/explain/recommend` do."""
    import tempfile

    import pandas as pd

    from vidpop.commands.product import _print_prediction
    from vidpop.serve.inputs import NewVideo
    from vidpop.serve.predictors import ModelBundle

    models = ModelBundle(root)
    clip, title = demo_clip()
    video = NewVideo(video=clip, title=title or "a new MicroLens video").check()
    con.rule(f"predict: MicroLens clip {clip.name}, title “{video.title[:60]}”")
    with tempfile.TemporaryDirectory(prefix="vidpop-demo-") as work:
        pred = models.predict(video, work)
    _print_prediction(pred)
    con.rule("explain")
    expl = models.explain(video, explain_dir)
    png = explain_dir / "explanation.png"
    # soft_wrap: a path broken over two lines cannot be copied
    con.print(f"explanation written to {png} (frames with Grad-CAM, attention α, title words β)", soft_wrap=True)
    recs = [m for m in models.models if m.served is not None and not getattr(m.model, "uses_text", False)]
    user = str(pd.read_parquet(recs[0].path / "users.parquet")["user_id"].iloc[0]) if recs else None
    out: dict[str, Any] = {"prediction": pred, "explanation": expl, "explanation_png": png}
    for label, kwargs in (("a known user " + str(user), {"user": user}), ("the text “cooking at home”",
                                                                          {"text": "cooking at home"})):  # fmt: skip
        if kwargs.get("user", "") is None:
            continue
        res = models.recommend(k=5, **kwargs)
        con.rule(f"recommend for {label} ({res['model']})")
        for it in res["items"]:
            con.print(f"{it['rank']:2d}. {it['title'][:90]}", markup=False, highlight=False, soft_wrap=True)
            if it.get("because"):
                con.print(f"    {it['because']}", markup=False, highlight=False, soft_wrap=True)
        out["user" if "user" in kwargs else "text"] = res
    return out
