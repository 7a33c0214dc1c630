"""The sections of ``vidpop report``: each runs one method's existing table function on the report's
budget and turns its result into :class:`~vidpop.experiments.report.ReportTable` rows.

Why a thin adapter per method: the methods' table functions already own the protocol (splits, seeds,
baselines); the report only chooses the data (``--data`` when it has what the method needs, else the
method's default real dataset, said in the table), caps the cost, and records the exact command.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset
from vidpop.errors import NoLabelledDataError
from vidpop.experiments.report import Budget, ReportTable, data_label, is_finite, load_data


@dataclass
class Context:
    data: str
    ds: VideoDataset
    budget: Budget
    seed: int
    progress: bool
    log: Callable[[str], None]
    out: Path = Path("report")
    #: facts one section leaves for a later table (e.g. the rec sample's size for the speed table)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return data_label(self.data)

    @property
    def is_adapter(self) -> bool:
        return not Path(self.data).exists()


def _sample(ds: VideoDataset, limit: int | None, seed: int) -> VideoDataset:
    """A seeded random sample of ``limit`` videos (the whole dataset when ``limit`` is None or larger)."""
    if limit is None or limit >= len(ds.videos):
        return ds
    rng = np.random.default_rng(seed)
    ids = ds.videos["video_id"].to_numpy()
    return ds.subset(ids[np.sort(rng.choice(len(ids), limit, replace=False))].tolist())


def _mean_rows(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean and std over seeds of {row key: {metric: value}}."""
    out: dict[str, dict[str, float]] = {}
    for key in runs[0]:
        vals = [r[key] for r in runs if key in r]
        out[key] = {}
        for m in vals[0]:
            xs = [float(v[m]) for v in vals if is_finite(v.get(m))]
            if xs:
                out[key][m], out[key][f"{m}_std"] = float(np.mean(xs)), float(np.std(xs))
    return out


def _budget_note(b: Budget) -> str:
    return f"budget '{b.name}': {b.seeds} seed(s)"


# ------------------------------------------------------------------------------------------ 1. relation
def relation(ctx: Context) -> list[ReportTable]:
    from vidpop.experiments import relation as rel

    datasets = list(rel.DATASET_PRESETS)  # the datasets with a relation-network preset

    b = ctx.budget
    dataset = ctx.data if ctx.data in datasets else datasets[0]
    notes = [_budget_note(b) + f" (seeds 0..{b.seeds - 1}), epoch cap {b.relation_epochs or 'model default (80)'}"]
    if dataset != ctx.data:
        dated = "published_at" in ctx.ds.videos and ctx.ds.videos["published_at"].notna().any()
        why = "has no release dates" if not dated else "has no relation-network preset (competitor features)"
        notes.append(f"--data {ctx.label} {why}: the ablation runs on the method's default dataset {dataset}")
    setup = rel.setup_for(dataset, horizons=b.relation_horizons)
    if b.relation_epochs:
        m = setup.model
        setup = dataclasses.replace(
            setup, model=dataclasses.replace(m, train=dataclasses.replace(m.train, epochs=b.relation_epochs))
        )
    result = rel.ablation(setup, seeds=b.seeds, progress=ctx.progress)
    rows, sizes = [], []
    for h, info in result["horizons"].items():
        sizes.append(f"{h} d: {info['train']}/{info['val']}/{info['test']}")
        for v, r in info["rows"].items():
            rows.append({"model": v, "group": f"{h} d", **r})
    cutoff = next(iter(result["horizons"].values()))["cutoff"][:10] if result["horizons"] else "?"
    horizons = ",".join(map(str, b.relation_horizons))
    cmd = f"vidpop relation ablation --dataset {dataset} --horizons {horizons} --seeds {b.seeds}"
    if b.relation_epochs:
        cmd += f" --epochs {b.relation_epochs}"
    return [
        ReportTable(
            "relation",
            "Relation network + multi-task regressor: ablation at each horizon",
            "relation",
            cmd,
            f"{dataset} (log1p {setup.target}; auxiliary task log1p {setup.aux})",
            split=f"temporal: train on titles released before cutoff − H (latest 10 % of them = validation), "
            f"test on titles released at/after the cutoff {cutoff}",
            n_rows=f"{result['n_titles_dated']} dated titles ({result['time_span'][0]} .. {result['time_span'][1]}); "
            "train/val/test per horizon: " + "; ".join(sizes),
            metrics=["r2", "mae", "spearman"],
            rows=rows,
            primary="r2",
            seeds=b.seeds,
            notes=notes,
        )
    ]


# ------------------------------------------------------------------------------------------ 2. fusion
def _fusion_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in res["rows"]:
        row: dict[str, Any] = {"model": r["row"], "note": r.get("note", "")}
        if "labels" in r:  # the label recipe: quantile classes or the paper's fixed thresholds
            row["group"] = f"{r['labels']} labels"
        for m in ("accuracy", "ordinal_accuracy"):
            if m in r:
                row[m] = r[m]
                if f"{m}_sd" in r:
                    row[f"{m}_std"] = r[f"{m}_sd"]
        if "n_test" in r:
            row["n_test"] = r["n_test"]
        rows.append(row)
    return rows


def fusion(ctx: Context) -> list[ReportTable]:
    from vidpop.experiments import fusion as fx
    from vidpop.models.cover_title_fusion import CoverTitleFusionConfig

    b = ctx.budget
    tables = []
    t0 = time.perf_counter()
    if b.fusion_weights:
        weights = ",".join(f"{w:g}" for w in b.fusion_weights)
        covers = ctx.ds.videos["cover_path"].notna().sum() if "cover_path" in ctx.ds.videos else 0
        res = fx.weight_sweep(b.fusion_weights, b.seeds, None, CoverTitleFusionConfig(progress=False), log=ctx.log)
        tables.append(
            ReportTable(
                "fusion_sweep",
                "Cover + title fusion: fusion-weight sweep (w = 0 title alone, w = 1 cover alone)",
                "fusion",
                f"vidpop fusion sweep --seeds {b.seeds} --weights {weights}",
                f"{fx.SPOTIFY}: {fx.SPOTIFY_CAVEAT}",
                split=res.get("info", {}).get("split", "") + " (70/10/20, grouped by track)",
                n_rows=f"{res['rows'][0].get('n_test', '?')} test items per split",
                metrics=["accuracy", "ordinal_accuracy"],
                rows=_fusion_rows(res),
                primary="accuracy",
                seeds=b.seeds,
                notes=[
                    _budget_note(b),
                    f"--data {ctx.label} has {covers} cover paths; the cover branch needs a labelled "
                    f"collection with covers, so the sweep runs on the method's default covers dataset {fx.SPOTIFY}",
                    f"label: {res.get('info', {}).get('label', {}).get('recipe', '')}",
                ],
            )
        )
    else:
        tables.append(
            ReportTable(
                "fusion_sweep",
                "Cover + title fusion: fusion-weight sweep",
                "fusion",
                "vidpop fusion sweep",
                fx.SPOTIFY,
                missing=f"skipped in the '{b.name}' budget (cover features)",
            )
        )
    tables[0].seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    dataset = ctx.data if ctx.is_adapter and "title" in ctx.ds.videos else fx.BILIBILI
    res = fx.title_only_table(dataset, b.seeds, b.fusion_limit, log=ctx.log)
    notes = [_budget_note(b) + (f"; a seeded sample of {b.fusion_limit} videos" if b.fusion_limit else "")]
    if dataset != ctx.data:
        notes.append(f"--data {ctx.label} is a folder or has no titles: the title table runs on {dataset}")
    notes += [f"label: {res.get('info', {}).get('label', {}).get('recipe', '')}", *res.get("notes", [])[:2]]
    cmd = f"vidpop fusion titles --dataset {dataset} --seeds {b.seeds}" + (
        f" --limit {b.fusion_limit}" if b.fusion_limit else ""
    )
    tables.append(
        ReportTable(
            "fusion_titles",
            "Cover + title fusion: title branch (5 ordinal classes)",
            "fusion",
            cmd,
            dataset,
            split=res.get("info", {}).get("split", "") + " (70/10/20)",
            n_rows=f"{b.fusion_limit or 'all'} videos; {res['rows'][0].get('n_test', '?')} test",
            metrics=["accuracy", "ordinal_accuracy"],
            rows=_fusion_rows(res),
            primary="accuracy",
            seeds=b.seeds,
            notes=notes,
            seconds=time.perf_counter() - t0,
        )
    )
    return tables


# ------------------------------------------------------------------------------------------ 3. PoE
def poe(ctx: Context) -> list[ReportTable]:
    from vidpop.experiments import poe as px
    from vidpop.models.variational_poe import VariationalPoEConfig

    b = ctx.budget
    ds, dataset, notes = ctx.ds, ctx.data, [_budget_note(b)]  # `vidpop poe evaluate` takes folders too
    try:
        px.labelled(ds)
    except NoLabelledDataError as exc:
        dataset = "smp_video_2025"
        notes.append(f"--data {ctx.label}: {exc}; the PoE runs on the method's default dataset {dataset}")
        ds = load_data(dataset)
    ds = _sample(ds, b.poe_limit, ctx.seed)
    if b.poe_limit:
        notes.append(f"a seeded sample of {b.poe_limit} videos (`vidpop poe evaluate` has no --limit)")
    cfg: dict[str, Any] = {"n_samples": b.poe_samples}
    if b.poe_epochs:
        train = VariationalPoEConfig().train
        train.epochs = b.poe_epochs
        cfg["train"] = train
    runs, plots, task_notes = [], [], []
    for s in range(b.seeds):
        task = px.prepare(ds, "random", ctx.seed + s, progress=ctx.progress)
        res = px.evaluate(task, cfg, ctx.seed + s)
        task_notes = task.notes
        run: dict[str, dict[str, float]] = {}
        for name, r in res["targets"].items():
            c = r["conformal_lightgbm"]
            run[f"variational_poe|{name}"] = {k: r[k] for k in ("mae", "spearman", "coverage95", "width95", "n_test")}
            run[f"LightGBM + split conformal|{name}"] = {
                "mae": c["mae"],
                "spearman": c["spearman"],
                "coverage95": c["calibration"][-1]["empirical"],
                "width95": c["calibration"][-1]["width"],
                "n_test": r["n_test"],
            }
            if s == 0:  # the calibration curve of the first seed, drawn by the method's own plot function
                png = ctx.out / f"poe_calibration_{len(plots)}.png"
                px.plot_calibration(r["calibration"], c["calibration"], f"{dataset}: {name}", png)
                plots.append(png.name)
        runs.append(run)
    rows = [{"model": k.split("|")[0], "group": k.split("|")[1], **v} for k, v in _mean_rows(runs).items()]
    cmd = f"vidpop poe evaluate --dataset {dataset} --samples {b.poe_samples} --seed {ctx.seed}"
    cmd += f" --epochs {b.poe_epochs}" if b.poe_epochs else ""
    table = ReportTable(
        "poe",
        "Variational product of experts: accuracy and 95% intervals vs conformal LightGBM",
        "poe",
        cmd,
        dataset,
        split="seeded random 70/10/20 (val = early stopping and conformal calibration set)",
        n_rows="; ".join(task_notes[:1]),
        metrics=["mae", "spearman", "coverage95", "width95"],
        rows=rows,
        primary="coverage95",
        seeds=b.seeds,
        notes=notes + task_notes[1:3],
        plots=plots,
    )
    return [table]


# ------------------------------------------------------------------------------------------ 4. attention
def attention(ctx: Context) -> list[ReportTable]:
    from vidpop.explain import COVER_DATA, HEADLINE_DATA
    from vidpop.explain import attention_bench as bench
    from vidpop.training.loop import TrainConfig

    b = ctx.budget
    notes = [_budget_note(b) + f", max {b.attention_epochs} epochs (early stopping, patience 5)"]
    head = bench.headline_task(_sample(load_data(HEADLINE_DATA), b.attention_limit, ctx.seed))
    if b.attention_limit:
        notes.append(
            f"headlines: a seeded sample of {b.attention_limit} videos (`vidpop attention table` has no --limit)"
        )
    covers = bench.cover_task(load_data(COVER_DATA), progress=ctx.progress) if b.attention_covers else None
    video, reason = None, "no labelled videos"
    try:
        video = bench.video_task(ctx.ds, 18, 6.0, progress=ctx.progress)
    except NoLabelledDataError as exc:
        reason = f"--data {ctx.label}: {exc}"
    seeds = [ctx.seed + i for i in range(b.seeds)]
    train = TrainConfig(
        epochs=b.attention_epochs, batch_size=64, lr=1e-3, weight_decay=1e-4, patience=5, progress=False
    )
    res = bench.attention_table(head, covers, video, seeds, train, videos_reason=reason)
    rows = []
    for r in res:
        note = r.get("note", "")
        if covers is None and note == "no image + title data":
            note = f"skipped in the '{b.name}' budget (cover features)"
        rows.append(
            {
                "model": r["row"],
                "group": r.get("data", "-"),  # the dataset: the chart groups bars by it
                "note": note,
                **{k: r[k] for k in ("accuracy", "accuracy_std", "spearman", "spearman_std", "n_test") if k in r},
            }
        )
    cmd = f"vidpop attention table --seeds {','.join(map(str, seeds))} --epochs {b.attention_epochs}"
    cmd += (f" --data {ctx.data}" if not ctx.is_adapter else "") + ("" if covers is not None else " --covers ''")
    return [
        ReportTable(
            "attention",
            "Attention model: popular/unpopular accuracy and Spearman",
            "attention",
            cmd,
            f"headlines: {HEADLINE_DATA} (views ÷ subscribers); covers: {COVER_DATA if covers else '-'}; "
            f"clips: {ctx.label}",
            split="seeded random 70/10/20 per seed (grouped by track for covers); median split fitted on train",
            n_rows=f"{len(head)} headlines" + (f", {len(covers)} covers" if covers else ""),
            metrics=["accuracy", "spearman"],
            rows=rows,
            primary="accuracy",
            seeds=b.seeds,
            notes=notes,
        )
    ]


def _rec(ctx: Context) -> list[ReportTable]:
    from vidpop.experiments.report_rec import rec

    return rec(ctx)


SECTIONS: dict[str, Callable[[Context], list[ReportTable]]] = {
    "relation": relation,
    "fusion": fusion,
    "poe": poe,
    "attention": attention,
    "rec": _rec,
}
