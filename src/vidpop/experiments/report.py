"""``vidpop report``: every model and baseline on the same splits, as one HTML report and a markdown summary.

The report reuses the table functions of each method (``vidpop.experiments.relation``/``fusion``/``poe``,
``vidpop.explain.attention_bench``, ``vidpop.experiments.rec_tables``) — it never re-implements a model or a
metric — and adds what an analyst needs next to each table: the exact command that reproduces it, the
data used, the number of rows, the split, the seconds it took, a bar chart, and the paper's claim with
whether it held here (:mod:`vidpop.experiments.paper_claims`).

Where ``--data`` lacks what a method needs (release dates, covers, labelled clips, interactions) the
method runs on its default real dataset and the table says so, or the row carries the reason it is
missing. Nothing is ever synthetic. Budgets trade seeds/epochs/rows for time and are written into the
report: ``smoke`` (tests, < 1 min), ``quick`` (default, ~10 min on 2 cores with a warm feature cache),
``full`` (the issues' settings: 3 seeds, every row, all users).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidpop.data.adapters.base import load_dataset as load_data
from vidpop.errors import VidpopError


@dataclass(frozen=True)
class Budget:
    """How much of each method a report run does (all of it is printed in the report)."""

    name: str
    seeds: int = 1
    relation_horizons: tuple[int, ...] = (7, 180, 360)
    relation_epochs: int | None = None  # None: the model's default (80, early stopping)
    #: fusion-weight sweep on Spotify covers; () skips the sweep
    fusion_weights: tuple[float, ...] = (0.0, 0.75, 1.0)
    fusion_limit: int | None = None  # rows of the title-only table (seeded sample)
    poe_limit: int | None = None
    poe_epochs: int | None = None
    poe_samples: int = 300
    attention_epochs: int = 30
    attention_limit: int | None = None  # headline rows (seeded sample)
    attention_covers: bool = True
    rec_users: int | None = None  # seeded sample of users (training and test); None = all
    rec_epochs: int | None = None
    rec_tables: tuple[str, ...] = ("long", "short", "cold", "ablation")
    rec_interest: bool = True
    #: registered models left out of the rec tables (their rows say why)
    rec_skip: tuple[str, ...] = ()
    sections: tuple[str, ...] = ("relation", "fusion", "poe", "attention", "rec")


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        "smoke",
        relation_horizons=(180,),
        relation_epochs=2,
        fusion_weights=(),
        fusion_limit=300,
        poe_limit=300,
        poe_epochs=2,
        poe_samples=50,
        attention_epochs=1,
        attention_limit=400,
        attention_covers=False,
        rec_users=1000,
        rec_epochs=1,
        rec_tables=("long",),
        rec_interest=False,
        rec_skip=("rec_fpmc", "rec_sasrec"),
    ),
    "quick": Budget(
        "quick",
        relation_epochs=30,
        fusion_limit=4000,
        poe_epochs=20,
        attention_epochs=10,
        rec_users=2500,  # the benchmark's larger user sample: its s/epoch compares directly
        rec_epochs=3,
        rec_tables=("long", "short", "cold"),
    ),
    "full": Budget("full", seeds=3, fusion_weights=(0.0, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0), poe_samples=1000),
}


@dataclass
class ReportTable:
    """One table of the report: measured rows plus everything needed to reproduce and read them."""

    key: str
    title: str
    method: str  # key of paper_claims.CLAIMS
    command: str
    data: str
    split: str = ""
    n_rows: str = ""
    metrics: list[str] = field(default_factory=list)
    #: {"model": str, "group": str | None, <metric>: float, <metric>_std: float, "note": str}
    rows: list[dict[str, Any]] = field(default_factory=list)
    primary: str = ""
    seeds: int = 1
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    missing: str = ""  # the whole table could not be measured: why
    plots: list[str] = field(default_factory=list)  # PNG file names in the report folder


@dataclass
class Report:
    data: str
    budget: Budget
    seed: int
    tables: list[ReportTable] = field(default_factory=list)
    seconds: float = 0.0
    out: Path | None = None
    threads: int | None = None
    #: False while sections are still running: the partial report written after each section says so
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "data": self.data,
            "budget": asdict(self.budget),
            "seed": self.seed,
            "threads": self.threads,
            "seconds": self.seconds,
            "tables": [asdict(t) for t in self.tables],
        }


def is_finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(float(v))


# ------------------------------------------------------------------------------------------ data
def data_label(name_or_dir: str) -> str:
    return Path(name_or_dir).name if Path(name_or_dir).exists() else name_or_dir


# ------------------------------------------------------------------------------------------ running
def run_report(
    data: str = "microlens",
    out: Path | str = Path("report"),
    budget: str | Budget = "quick",
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    threads: int | None = 1,
) -> Report:
    """Run every section of ``budget`` and write ``report.html``, ``summary.md``, ``report.json`` and the
    PNGs into ``out``. A section that fails keeps its place in the report with the reason. The files are
    rewritten after every section (marked partial), so a run that is killed keeps what it finished.

    ``threads``: torch intra-op threads. 1 by default, like ``vidpop poe``/``attention``: these models are
    small, and on a shared 2-core box more threads mostly spin against each other (measured: the smoke
    relation table took 14 s on an idle box and 128 s with 2 threads at load average 4)."""
    import torch
    from tqdm.auto import tqdm

    from vidpop.experiments import report_rec, report_sections

    if isinstance(budget, str):
        if budget not in BUDGETS:
            raise VidpopError(f"--budget must be one of {', '.join(b for b in BUDGETS if b != 'smoke')}")
        budget = BUDGETS[budget]
    ds = load_data(data)  # bad input fails here, before anything slow
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(data_label(data), budget, seed, out=out, threads=threads)
    ctx = report_sections.Context(data, ds, budget, seed, progress, log, out)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    ctx.facts["torch_threads"] = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        bar = tqdm(budget.sections, desc="report", disable=not progress, unit="section")
        for name in bar:
            bar.set_postfix_str(name)
            report.tables += _run_section(name, ctx)
            report.seconds = time.perf_counter() - t0
            _write(report, out)  # partial: a killed run keeps the finished sections
        bar.close()
    finally:
        torch.set_num_threads(before)  # the caller's setting (tests share one process)
    report.tables.append(report_rec.speed_table(report.tables, ctx))
    report.seconds = time.perf_counter() - t0
    report.complete = True
    _write(report, out)
    log(f"[report] wrote {out / 'report.html'} and {out / 'summary.md'} in {report.seconds:.0f} s")
    return report


def _write(report: Report, out: Path) -> None:
    from vidpop.experiments import report_render

    report_render.write_all(report, out)
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=1, default=str))


def _run_section(name: str, ctx: Any) -> list[ReportTable]:
    """One section's tables; a failure becomes a table that says why, so the other methods still report."""
    from vidpop.experiments import report_sections

    ctx.log(f"[report] {name} ...")
    start = time.perf_counter()
    try:
        tables = report_sections.SECTIONS[name](ctx)
    except VidpopError as exc:
        tables = [ReportTable(name, name, name, "", ctx.label, missing=str(exc))]
    except Exception as exc:  # one failing method must not hide the others
        tables = [ReportTable(name, name, name, "", ctx.label, missing=f"failed: {type(exc).__name__}: {exc}")]
    if len(tables) == 1 and not tables[0].seconds:
        tables[0].seconds = time.perf_counter() - start
    for t in tables:
        ctx.log(f"[report]   {t.title}: {len(t.rows)} rows, {t.seconds:.0f} s{' — ' + t.missing if t.missing else ''}")
    return tables
