"""The recommender section of ``vidpop report`` and the training-speed table (issue 8).

The rec tables run under the shared protocol of :mod:`vidpop.training.rec_protocol` through
:func:`vidpop.experiments.rec_tables.run_rows`; the quick budget trains and tests on a seeded sample of users
because one interest-RNN epoch over all 50,000 MicroLens users takes close to an hour on 2 cores (see
``benchmarks/results/training_speed.json``). The speed table puts the seconds per epoch measured in this
run beside the benchmark's figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset
from vidpop.experiments.report import ReportTable, is_finite, load_data
from vidpop.experiments.report_sections import Context, _budget_note

# ------------------------------------------------------------------------------------------ 5. recommenders
REC_PLAN = {
    "long": ("Single network, long mode (input = first 9/12 of each user's span)", "long", False),
    "short": ("Single network, short mode (input = first 3/12)", "short", False),
    "cold": ("Cold start (long mode; text of the input period only, no video ids)", "long", True),
    "ablation": ("Interest RNN ablation (long mode)", "long", False),
}


def _user_sample(ds: VideoDataset, n_users: int | None, seed: int) -> VideoDataset:
    """A seeded sample of users with all their interactions; same name, so item features come from the
    same feature store as the full dataset."""
    if n_users is None:
        return ds
    users = ds.interactions["user_id"].unique()
    if n_users >= len(users):
        return ds
    keep = set(np.random.default_rng(seed).choice(users, n_users, replace=False))
    inter = ds.interactions[ds.interactions["user_id"].isin(keep)].reset_index(drop=True)
    return VideoDataset(ds.name, videos=ds.videos, authors=ds.authors, interactions=inter, meta=ds.meta)


def rec(ctx: Context) -> list[ReportTable]:
    from vidpop.experiments import rec_tables as rt
    from vidpop.training.rec_protocol import ProtocolConfig, make_user_split, metric_names

    b = ctx.budget
    ds, dataset, notes = ctx.ds, ctx.label, [_budget_note(b) + f", epoch cap {b.rec_epochs or 'model defaults'}"]
    if ds.interactions.empty:
        dataset = "microlens"
        notes.append(f"--data {ctx.label} has no interactions: the recommenders run on {dataset}")
        ds = load_data(dataset)
    elif not ctx.is_adapter:
        notes.append(f"`vidpop rec tables` reads adapter names only; this table ran on the folder {ctx.data}")
    sub = _user_sample(ds, b.rec_users, ctx.seed)
    ctx.facts["rec_sample"] = f"{sub.interactions['user_id'].nunique():,} users, {len(sub.interactions):,} interactions"
    if b.rec_users:
        notes.append(
            f"a seeded sample of {b.rec_users} users ({len(sub.interactions):,} interactions) for training "
            "and test (`vidpop rec tables` always uses every user)"
        )
    rows_fn = {"long": rt.single_rows, "short": rt.single_rows, "cold": rt.cold_rows, "ablation": rt.ablation_rows}
    cache: dict[str, Any] = {}
    tables = []
    for key in b.rec_tables:
        t0 = time.perf_counter()
        title, mode, cold = REC_PLAN[key]
        cfg = ProtocolConfig(mode=mode, cold_start=cold, seed=ctx.seed, progress=ctx.progress)
        split = make_user_split(sub, cfg)
        plan = rows_fn[key](b.rec_interest)
        for r in plan:
            if r.model in b.rec_skip or (r.model is None and not b.rec_interest):
                r.model, r.note = None, f"skipped in the '{b.name}' budget"
        res = rt.run_rows(plan, split, cfg, sub, b.rec_epochs, cache, log=ctx.log)
        metrics = metric_names(cfg)
        rows = []
        for p, r in zip(plan, res, strict=True):
            row: dict[str, Any] = {"model": r["label"], "registered": p.model or ""}
            if r.get("status") == "ok":
                row.update({m: r["metrics"][m] for m in metrics if m in r["metrics"]}, fit_s=r["fit_seconds"])
                if r.get("seconds_per_epoch") is not None:
                    row["s/epoch"] = float(r["seconds_per_epoch"])
            else:
                row["note"] = r.get("status", "")
            rows.append(row)
        cmd = f"vidpop rec tables --dataset {dataset} --tables {key} --seed {ctx.seed}"
        cmd += (f" --epochs {b.rec_epochs}" if b.rec_epochs else "") + ("" if b.rec_interest else " --no-interest-rnn")
        tables.append(
            ReportTable(
                f"rec_{key}",
                f"Recommenders: {title}",
                "rec",
                cmd,
                dataset,
                split="80/20 by user (seeded); test users' input = the first part of their own span, the rest = truth; "
                "seen videos excluded",
                n_rows=rt.describe_split(split),
                metrics=[*metrics, "fit_s", "s/epoch"],
                rows=rows,
                primary=f"F@{cfg.k}",
                seeds=1,
                notes=[*notes, "one split seed (the protocol's)"],
                seconds=time.perf_counter() - t0,
            )
        )
    return tables


# ------------------------------------------------------------------------------------------ speed (issue 8)
BENCH_FILE = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "training_speed.json"
BENCH_LABELS = {
    "interest_rnn": "Interest RNN (paper)",
    "rec_sasrec": "SASRec (modern ref.)",
    "rec_itemknn": "Item-KNN",
    "rec_fpmc": "FPMC",
    "rec_lfm": "LFM",
}


def _strongest_baseline(tables: list[ReportTable]) -> str | None:
    """The best measured baseline of the first single-network rec table by its primary metric."""
    for t in tables:
        if t.key.startswith("rec_") and t.key != "rec_cold" and t.rows:
            cands = [
                r
                for r in t.rows
                if r["model"] not in ("Interest RNN (paper)", "Random") and is_finite(r.get(t.primary))
            ]
            if cands:
                return max(cands, key=lambda r: r[t.primary])["model"]
    return None


def speed_table(tables: list[ReportTable], ctx: Context) -> ReportTable:
    """Seconds per epoch of the interest RNN and the strongest baseline: measured in this run (the rec
    tables' rows; the first table a model ran in) and, when ``make bench`` has run, the benchmark's figures
    (its two user samples and its extrapolation to all users)."""
    measured: dict[str, dict[str, Any]] = {}
    for t in tables:
        if t.key.startswith("rec_"):
            for r in t.rows:
                if is_finite(r.get("fit_s")):
                    measured.setdefault(r["model"], r)
    strongest = _strongest_baseline(tables)
    bench: dict[str, Any] = json.loads(BENCH_FILE.read_text()).get("models", {}) if BENCH_FILE.exists() else {}
    labels = ["Interest RNN (paper)", *([strongest] if strongest else []), *(BENCH_LABELS.get(k, k) for k in bench)]
    labels += [m for m, r in measured.items() if is_finite(r.get("s/epoch"))]
    rows = []
    for label in dict.fromkeys(labels):
        row: dict[str, Any] = {"model": label + (" (strongest baseline here)" if label == strongest else "")}
        m = measured.get(label, {})
        if is_finite(m.get("s/epoch")):
            row["s/epoch (this run)"] = m["s/epoch"]
        if is_finite(m.get("fit_s")):
            row["fit s, whole fit (this run)"] = m["fit_s"]
        for name, b in bench.items():
            if BENCH_LABELS.get(name, name) == label and "error" not in b:
                row["bench s/epoch all users"] = b.get("seconds_per_epoch")
                row["bench peak RSS MB"] = b.get("peak_rss_mb")
        if label in measured and "s/epoch (this run)" not in row:
            row["note"] = "no epochs: the whole fit"
        elif label not in measured:
            row["note"] = "not run in this report (skipped in this budget)"
        rows.append(row)
    metrics = ["s/epoch (this run)", "fit s, whole fit (this run)"]
    metrics += list(dict.fromkeys(k for r in rows for k in r if k.startswith("bench")))
    sample = ctx.facts.get("rec_sample", f"{ctx.budget.rec_users or 'all'} users")
    notes = [
        f"this run: MicroLens sample of {sample}, torch threads {ctx.facts.get('torch_threads', '?')} (seconds "
        f"per epoch as each model reports it; epoch cap {ctx.budget.rec_epochs or 'model default'})"
    ]
    notes.append(
        f"benchmark: {BENCH_FILE.relative_to(BENCH_FILE.parents[2])} (`make bench`; one epoch on all users of "
        "the leave-one-out training view, each model in its own process)"
        if bench
        else "benchmark results not found (run `make bench` to add the benchmark's figures)"
    )
    return ReportTable(
        "speed",
        "Training speed: seconds per epoch (issue 8)",
        "speed",
        "python -m benchmarks.bench_training_speed",
        "microlens (this run's rec sample and the benchmark's user samples)",
        metrics=metrics,
        rows=rows,
        primary="s/epoch (this run)",
        notes=notes,
    )
