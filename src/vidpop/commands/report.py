"""`vidpop report`: every model and baseline on the same splits -> report.html + summary.md."""

from __future__ import annotations

from pathlib import Path

import typer

from vidpop.errors import VidpopError


def register(root: typer.Typer) -> None:
    root.command("report")(report)


def report(
    data: str = typer.Option("microlens", "--data", help="Adapter name or an imported dataset folder."),
    out: Path = typer.Option(Path("report"), "--out", help="Folder for report.html, summary.md and the PNGs."),
    budget: str = typer.Option(
        "quick", "--budget", help="quick (~10 min on 2 cores, warm feature cache) | full (the issues' settings)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the splits and the models."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    threads: int = typer.Option(1, "--threads", min=0, help="torch threads (0 = torch's default)."),
) -> None:
    """Run the five methods and their baselines; write one HTML report and a markdown summary beside the
    papers' claims (the data differ from the papers': the report says so)."""
    from vidpop.experiments.report import BUDGETS, run_report

    if budget not in BUDGETS:  # "smoke" is accepted but not advertised: it exists for the tests
        raise VidpopError(f"--budget must be quick or full, got {budget!r}")
    r = run_report(data, out, budget, seed, progress=progress, log=typer.echo, threads=threads or None)
    missing = [t.title for t in r.tables if t.missing]
    typer.echo(f"report: {out / 'report.html'}; summary: {out / 'summary.md'} ({r.seconds:.0f} s)")
    if missing:
        typer.echo(f"not measured: {', '.join(missing)} (reasons in the report)")
