"""`vidpop report` on the real data (../shared/data) with the hidden ``smoke`` budget: one seed, one or two
epochs, a few hundred rows/users, only the cheap models. Checks the files, the model names, finite
numbers, that the HTML shows every PNG, the disclaimer, and the one-line error on bad input."""

from __future__ import annotations

import json
import math
import sys
from html import escape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidpop.cli import app, main
from vidpop.config import dataset_dir
from vidpop.errors import VidpopError
from vidpop.experiments import paper_claims
from vidpop.experiments.report import load_data, run_report

NEEDED = ("microlens", "bilibili_bangumi_series", "youtube_views_subscribers_2025")
pytestmark = pytest.mark.skipif(
    not all(dataset_dir(d).exists() for d in NEEDED), reason="real datasets not staged under ../shared/data"
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(
        app, ["report", "--data", "microlens", "--out", str(out), "--budget", "smoke", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text())


def _tables(report: dict) -> dict[str, dict]:
    return {t["key"]: t for t in report["tables"]}


def test_smoke_report_writes_html_summary_and_pngs(smoke: tuple[Path, dict]) -> None:
    out, _ = smoke
    html = (out / "report.html").read_text()
    summary = (out / "summary.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    # one chart per unit: seconds per epoch and whole fits are separate figures
    assert {"relation.png", "rec_long.png", "speed_fit.png", "attention.png", "poe.png"} <= set(pngs)
    assert "speed.png" not in pngs
    for name in pngs:  # every PNG that exists is shown (inlined) and linked from the HTML
        assert f'href="{name}"' in html, name
        assert f"![{name}]({name})" in summary, name
    assert html.count("data:image/png;base64,") == len(pngs)
    for text, disclaimer in ((html, escape(paper_claims.DISCLAIMER)), (summary, paper_claims.DISCLAIMER)):
        assert disclaimer in text
        assert "not available offline" not in text
        # the paper column holds the papers' own numbers (relation Table 1 at 180 days, attention Table 1)
        for figure in ("0.75 (Table 1)", "0.85 (Table 1)", "69.47%", "F@5 0.0212 (Table 1, long mode)"):
            assert figure in text, figure
        # no Python reprs, no internal references
        assert "{'" not in text and "(issue" not in text
        # the scoreboard comes first, one row per method
        board = text.index("Scoreboard")
        assert board < text.index("Relation network")
        for method in paper_claims.CLAIMS:
            assert method in text[board : text.index("Relation network")], method


def test_smoke_tables_have_the_models_and_finite_numbers(smoke: tuple[Path, dict]) -> None:
    _, report = smoke
    tables = _tables(report)
    expected = {
        "relation": {"DNN", "DNN+MTL", "DNN+RN+MTL", "LightGBM"},
        "fusion_titles": {"title only: MiniLM", "title only: GloVe-GRU", "majority class (baseline)"},
        "poe": {"variational_poe", "LightGBM + split conformal"},
        "attention": {"headline biLSTM", "headline biLSTM + attention"},
        "rec_long": {"Random", "Popularity", "LFM", "Item-KNN"},
    }
    for key, models in expected.items():
        t = tables[key]
        assert not t["missing"], (key, t["missing"])
        assert t["command"].startswith("vidpop "), key
        measured = {r["model"] for r in t["rows"] if math.isfinite(r.get(t["primary"], math.nan))}
        assert models <= measured, (key, measured)
        for r in t["rows"]:
            if r["model"] in models:
                assert all(math.isfinite(r[m]) for m in t["metrics"] if m in r), (key, r)
    # rows that could not run say why instead of carrying a number
    frames = next(r for r in tables["attention"]["rows"] if r["model"] == "frames, attention")
    assert "accuracy" not in frames and "no labelled videos" in frames["note"]
    assert tables["relation"]["notes"] and "bilibili_bangumi_series" in tables["relation"]["data"]
    assert "skipped" in tables["fusion_sweep"]["missing"]
    speed = tables["speed"]
    assert any(r["model"].startswith("Interest RNN") for r in speed["rows"])


def test_scoreboard_verdict_matches_the_measured_rows(smoke: tuple[Path, dict]) -> None:
    out, report = smoke
    assert report["complete"] is True
    rel = _tables(report)["relation"]
    verdict = paper_claims.verdict(paper_claims.check("relation", "relation", rel["rows"]))
    summary = (out / "summary.md").read_text()
    row = next(ln for ln in summary.splitlines() if ln.startswith("| relation |"))
    assert f"| {verdict} |" in row, row
    dnn = next(r for r in rel["rows"] if r["model"] == "DNN+RN+MTL")
    assert f"{dnn['r2']:.3f}" in row  # the key number is the measured one


def test_a_killed_run_keeps_the_finished_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report is rewritten after each section: a run stopped in the second section leaves the first."""
    import dataclasses

    from vidpop.experiments import report, report_sections
    from vidpop.experiments.report import ReportTable

    def finished(ctx: object) -> list[ReportTable]:
        rows = [{"model": "DNN", "group": "7 d", "r2": 0.5}]
        return [ReportTable("relation", "Relation stand-in", "relation", "vidpop relation ablation", "x", rows=rows)]

    def killed(ctx: object) -> list[ReportTable]:
        raise KeyboardInterrupt

    monkeypatch.setitem(report_sections.SECTIONS, "relation", finished)
    monkeypatch.setitem(report_sections.SECTIONS, "fusion", killed)
    budget = dataclasses.replace(report.BUDGETS["smoke"], sections=("relation", "fusion"))
    with pytest.raises(KeyboardInterrupt):
        run_report("microlens", tmp_path, budget=budget, progress=False, log=lambda _m: None)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["complete"] is False and [t["key"] for t in saved["tables"]] == ["relation"]
    summary = (tmp_path / "summary.md").read_text()
    assert "Partial report" in summary and "Relation stand-in" in summary


def test_fusion_claim_is_checked_on_ordinal_accuracy() -> None:
    # the paper's 62% is ordinal accuracy: exact accuracy may order the rows the other way
    rows = [
        {"model": "w=0.75", "accuracy": 0.30, "ordinal_accuracy": 0.60},
        {"model": "w=0", "accuracy": 0.35, "ordinal_accuracy": 0.50},
        {"model": "w=1", "accuracy": 0.40, "ordinal_accuracy": 0.55},
    ]
    assert paper_claims.verdict(paper_claims.check("fusion", "fusion_sweep", rows)) == "held"
    rows[0]["ordinal_accuracy"] = 0.52
    assert paper_claims.verdict(paper_claims.check("fusion", "fusion_sweep", rows)) == "partly (1 of 2)"


def test_claim_checks_are_computed_from_the_rows() -> None:
    rows = [{"model": m, "group": "7 d", "r2": v} for m, v in (("DNN", 0.1), ("DNN+MTL", 0.2), ("DNN+RN+MTL", 0.3))]
    assert paper_claims.verdict(paper_claims.check("relation", "relation", rows)) == "held"
    rows[2]["r2"] = 0.15
    assert paper_claims.verdict(paper_claims.check("relation", "relation", rows)) == "did not hold"
    assert paper_claims.verdict(paper_claims.check("relation", "relation", rows[:2])) == "not measurable"


@pytest.mark.parametrize("bad", ["no_such_dataset", "/nonexistent/folder"])
def test_bad_data_exits_2_with_one_line(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["vidpop", "report", "--data", bad, "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: --data"), err
    assert not (tmp_path / "r").exists()  # nothing is written on bad input


def test_bad_budget_and_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(VidpopError, match=r"manifest\.json"):
        load_data(str(tmp_path))
    with pytest.raises(VidpopError, match="budget"):
        run_report("microlens", tmp_path / "r", budget="huge")
