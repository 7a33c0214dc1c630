"""Recommend videos: protocol tables, leave-one-out, training and top-k for a (new) user."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import typer

from vidpop.errors import VidpopError

if TYPE_CHECKING:  # keep `vidpop --help` fast: torch is imported only by the commands that need it
    from vidpop.models.recommender import RecData, Recommender

NAME = "rec"
app = typer.Typer(no_args_is_help=True)

PAPER_NOTE = "paper's filter: users with > 10 interactions (--min-user-interactions 11)"


def _load(dataset: str):  # -> VideoDataset
    from vidpop.data.adapters import load_dataset

    return load_dataset(dataset)


def command_line() -> str:
    """The command that is running, as typed (``vidpop rec loo ...``), recorded beside its results."""
    return " ".join(["vidpop", *sys.argv[1:]])


def _emit(text: str, lines: list[str]) -> None:
    typer.echo(text)
    lines.append(text)


@app.command("tables")
def tables(
    dataset: str = typer.Option("microlens", help="adapter name of a dataset with interactions"),
    min_user_interactions: int = typer.Option(
        5, help="users with at least N interactions (5 = all of MicroLens-50k; 11 = the paper's >10)"
    ),
    min_item_users: int = typer.Option(1, help="videos seen by at least M training users"),
    k: int = typer.Option(5, help="k of P@k, R@k, F@k (HR and NDCG are @10)"),
    max_users: int | None = typer.Option(None, help="evaluate a seeded sample of N test users (training unchanged)"),
    epochs: int | None = typer.Option(None, help="cap epochs of the torch models (speed); ALS keeps its sweeps"),
    tables_: str = typer.Option(
        "long,short,cold,ablation", "--tables", help="which tables to run (also ablation_short: in short mode)"
    ),
    include_seen: bool = typer.Option(False, help="keep already-seen videos among the candidates"),
    seed: int = typer.Option(0),
    progress: bool = typer.Option(False, help="progress bars of training and evaluation"),
    interest_rnn: bool = typer.Option(True, help="include the interest-RNN rows (--no-interest-rnn: baselines only)"),
    val_frac: float = typer.Option(
        0.0, help="hold out this share of the training users as validation users (early stopping, tuning)"
    ),
    tune_budget: int = typer.Option(
        0, help="trials per model tuned on the validation users (needs --val-frac; 0 = no tuning)"
    ),
    chosen_from: Path | None = typer.Option(
        None, help="tables.json of an earlier tuned run: its chosen configurations, without tuning again"
    ),
    out: Path | None = typer.Option(None, help="write tables.md and tables.json here"),
) -> None:
    """Single-network (long, short), cold-start and ablation tables under the shared protocol. With
    --val-frac and --tune-budget the long table's models are tuned on the validation users (F@5), the
    other tables reuse the chosen configurations."""
    from vidpop.experiments.rec_paper_tuning import PaperTuner
    from vidpop.experiments.rec_tables import (
        ablation_rows,
        cold_rows,
        describe_split,
        markdown_table,
        run_rows,
        single_rows,
    )
    from vidpop.training.rec_protocol import ProtocolConfig, make_user_split, metric_names

    if (tune_budget or chosen_from) and not val_frac:
        raise VidpopError("--tune-budget and --chosen-from need validation users: give --val-frac (e.g. 0.1)")
    wanted = [t.strip() for t in tables_.split(",") if t.strip()]
    plan = [
        ("long", "Single network, long mode (input = first 9/12 of each user's span)", "long", False, single_rows),
        ("short", "Single network, short mode (input = first 3/12)", "short", False, single_rows),
        ("cold", "Cold start (long mode; text stream of the input period only, no video ids)", "long", True, cold_rows),
        ("ablation", "Ablation (long mode)", "long", False, ablation_rows),
        ("ablation_short", "Ablation (short mode)", "short", False, ablation_rows),
    ]
    unknown = set(wanted) - {p[0] for p in plan}
    if unknown:
        raise VidpopError(f"unknown table(s) {sorted(unknown)}; choose from {', '.join(p[0] for p in plan)}")
    t_start = time.perf_counter()
    ds = _load(dataset)
    lines: list[str] = []
    _emit(f"# Recommendation tables on {dataset} (min {min_user_interactions} interactions/user; {PAPER_NOTE})", lines)
    _emit(
        f"protocol: 80/20 user split (seed {seed}); input = first 9/12 (long) or 3/12 (short) of each user's "
        f"own span; seen items {'kept' if include_seen else 'excluded'}; max test users evaluated: "
        f"{max_users or 'all'}; epochs cap: {epochs or 'model defaults'}; validation users: {val_frac:.0%} of the "
        f"training users; tuning budget: {tune_budget or 'none'} trial(s) per model",
        lines,
    )
    tuner = None
    if tune_budget or chosen_from:
        tuner = PaperTuner(ProtocolConfig(progress=progress), ds, max(tune_budget, 1), epochs, typer.echo)
    if tuner is not None and chosen_from is not None:
        if not chosen_from.is_file():
            raise VidpopError(f"--chosen-from {chosen_from}: no such tables.json")
        tuner.load_chosen(json.loads(chosen_from.read_text()))
        _emit(f"configurations chosen on validation by an earlier run: {chosen_from} {tuner.chosen}", lines)
    results: dict[str, list] = {}
    cache: dict = {}
    for key, title, mode, cold, rows_fn in plan:
        if key not in wanted:
            continue
        cfg = ProtocolConfig(
            mode=mode,
            cold_start=cold,
            min_user_interactions=min_user_interactions,
            min_item_users=min_item_users,
            k=k,
            seed=seed,
            max_test_users=max_users,
            exclude_seen=not include_seen,
            progress=progress,
            val_frac=val_frac,
        )
        split = make_user_split(ds, cfg)
        _emit(f"\n{title}: {describe_split(split)}", lines)
        rows = rows_fn(interest_rnn)
        for r in rows:
            if r.model is None and not interest_rnn:
                r.note = "skipped (--no-interest-rnn)"
        if tuner is None:
            res = run_rows(rows, split, cfg, ds, epochs, cache, log=typer.echo)
        else:
            tuner.cfg = cfg
            res = tuner.tune_rows(rows, split) if key == "long" or not tuner.chosen else tuner.run_chosen(rows, split)
        results[key] = res
        _emit("\n" + markdown_table(title, res, metric_names(cfg)), lines)
        if out:  # after every table: a long run interrupted keeps what it finished
            _write(out, lines, results, time.perf_counter() - t_start)
    _emit(f"total {time.perf_counter() - t_start:.0f} s", lines)
    if out:
        _write(out, lines, results, time.perf_counter() - t_start)
        typer.echo(f"wrote {out / 'tables.md'} and tables.json")


def _write(out: Path, lines: list[str], results: dict, seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text("\n".join(lines) + "\n")
    (out / "tables.json").write_text(json.dumps({"seconds": seconds, **results}, indent=2, default=str))


@app.command("loo")
def loo(
    dataset: str = typer.Option("microlens"),
    min_user_interactions: int = typer.Option(5),
    max_users: int | None = typer.Option(None, help="evaluate a seeded sample of N users"),
    epochs: int | None = typer.Option(None, help="cap epochs (untuned runs only)"),
    models: str | None = typer.Option(
        None, help="comma-separated registered models (default: the single-network rows)"
    ),
    tune_budget: int = typer.Option(
        1, help="trials per model tuned on the validation item (1 = defaults only; same budget for every model)"
    ),
    val_users: int = typer.Option(10000, help="validation users sampled to score tuning trials"),
    candidates: str = typer.Option("catalogue", help="catalogue (every video) or train (videos seen in training)"),
    seed: int = typer.Option(0),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="config override key=value (JSON value) for every model, e.g. use_interest=false or train.seed=1; "
        "tuning trials apply on top",
    ),
    progress: bool = typer.Option(False),
    out: Path | None = typer.Option(None),
) -> None:
    """Leave-one-out by time (last item test, previous validation), full ranking over the whole
    catalogue, seen items excluded, HR@10 / NDCG@10; models tuned on the validation item only.
    Without ``--epochs`` every model is scored on the validation item before its test item is read
    (budget 1: its configuration alone), so the printed validation figures are the ones a choice uses."""
    from vidpop.config import parse_key_values
    from vidpop.experiments.rec_tables import describe_split, markdown_table, run_rows, single_rows
    from vidpop.experiments.rec_tuning import tune_and_test
    from vidpop.recipes.rec import Row
    from vidpop.training.rec_protocol import ProtocolConfig, loo_split

    overrides = parse_key_values(set_)
    ds = _load(dataset)
    cfg = ProtocolConfig(
        min_user_interactions=min_user_interactions,
        max_test_users=max_users,
        seed=seed,
        progress=progress,
        loo_candidates=candidates,
    )
    split = loo_split(ds, cfg)
    rows = [Row(m.strip(), m.strip()) for m in models.split(",")] if models else single_rows()
    rows = [dataclasses.replace(r, overrides={**r.overrides, **overrides}) for r in rows]
    typer.echo(f"leave-one-out on {dataset}: {describe_split(split)}")
    if tune_budget > 1 or epochs is None:
        res = tune_and_test(rows, split, cfg, ds, tune_budget, val_users, log=typer.echo)
    else:
        res = run_rows(rows, split, cfg, ds, epochs, log=typer.echo)
    title = f"Leave-one-out ({split.info['candidates']}, full ranking, seen excluded; tuning budget {tune_budget})"
    table = markdown_table(title, res, ["HR@10", "NDCG@10"])
    typer.echo("\n" + table)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "loo.md").write_text(table)
        run = {
            "command": command_line(),
            "tune_budget": tune_budget,
            "val_users": val_users,
            "epochs": epochs,
            "overrides": overrides,
        }
        (out / "loo.json").write_text(json.dumps({**run, "split": split.info, "rows": res}, indent=2, default=str))


def save_recommender(model: Recommender, data: RecData, out: Path) -> Path:
    """Compatibility shim: a fitted recommender's own :meth:`save` writes its side tables."""
    model.remember_catalogue(data)
    return model.save(out)


@app.command("train")
def train(
    model: str = typer.Argument(..., help="registered recommender, e.g. rec_lfm, rec_cb, interest_rnn"),
    out: Path = typer.Option(..., help="directory of the saved model"),
    dataset: str = typer.Option("microlens"),
    min_user_interactions: int = typer.Option(5),
    epochs: int | None = typer.Option(None),
    option: list[str] = typer.Option([], help="config override key=value (JSON values), repeatable"),
) -> None:
    """Train a recommender through the same recipe as `vidpop train MODEL` (the long user split) and save the
    serving-ready folder (items.parquet, users.parquet)."""
    from vidpop.models.recommender import Recommender
    from vidpop.models.registry import get_model_class
    from vidpop.recipes import train as train_recipe
    from vidpop.training.ddp_entry import parse_overrides

    if not issubclass(get_model_class(model), Recommender):
        raise VidpopError(f"'{model}' is not a recommender")
    config = parse_overrides(option)
    config["recipe"] = {"min_user_interactions": min_user_interactions, **({"epochs": epochs} if epochs else {})}
    report = train_recipe(model, dataset, out, config)
    typer.echo(f"trained {model} on {report['data']} in {report['seconds']:.1f} s -> {out}")


@app.command("recommend")
def recommend(
    model_dir: Path = typer.Argument(..., help="a directory written by `vidpop rec train`"),
    history: str | None = typer.Option(None, help="comma-separated video ids watched, oldest first"),
    text: str | None = typer.Option(None, help="what the user says they like (cold-start models)"),
    k: int = typer.Option(10),
    include_seen: bool = typer.Option(False),
) -> None:
    """Top-k videos for a (brand-new) user given a few watched ids and/or some text."""
    from vidpop.models.base import load_model
    from vidpop.models.recommender import UserQuery

    if not history and not text:
        raise VidpopError("give --history id1,id2,... and/or --text '...'")
    items_path = model_dir / "items.parquet"
    if not items_path.exists():
        raise VidpopError(f"{model_dir} has no items.parquet; train it with `vidpop rec train`")
    items = pd.read_parquet(items_path)
    model = load_model(model_dir)
    index = pd.Index(items["video_id"].astype(str))
    ids = [h.strip() for h in (history or "").split(",") if h.strip()]
    codes = index.get_indexer(ids) if ids else np.zeros(0, np.int64)
    unknown = [i for i, c in zip(ids, codes, strict=True) if c < 0]
    if unknown:
        typer.secho(f"ignoring {len(unknown)} video id(s) outside the model's vocabulary: {unknown[:5]}", err=True)
    hist = np.asarray(codes[codes >= 0], np.int64)
    if getattr(model, "uses_text", False):
        # a text model hears words only: the user's text, else the titles/tags of the videos they named
        query_text = text or " . ".join(items["text"].iloc[hist].tolist())
        query = UserQuery(history=np.zeros(0, np.int64), text=query_text)
        if not query_text.strip():
            raise VidpopError("this cold-start model needs --text (or known video ids to describe the user)")
    else:
        if not len(hist):
            raise VidpopError(f"{model.model_name} ranks from watched videos: give known ids with --history")
        query = UserQuery(history=hist, times=np.arange(len(hist), dtype="float64"), text=text)
    top = model.recommend([query], k=k, exclude_seen=not include_seen)[0]
    for rank, j in enumerate(top, 1):
        typer.echo(f"{rank:3d}  {items['video_id'].iloc[j]:>8s}  {items['title'].iloc[j]}")
