"""Rendering of ``vidpop report``: one bar chart per table, the training-speed figure, the markdown summary
and the self-contained HTML page (PNGs inlined as base64 and also written next to it).

Kept apart from the runners: rendering only reads :class:`~vidpop.experiments.report.ReportTable` rows, so
the look of the report can change without touching how any number is measured.
"""

from __future__ import annotations

import ast
import base64
import html
import re
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.experiments import paper_claims
from vidpop.experiments.report import Report, ReportTable, is_finite

SPEED_METHOD = "speed"
#: internal references ("(issue 8)") are for the developers, not the report's readers
_INTERNAL_REF = re.compile(r"\s*\(issues? [0-9][^)]*\)")


_DICT_REPR = re.compile(r"\{'[^{}]*\}")


def _dict_words(d: dict[Any, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())


def _unrepr(match: re.Match[str]) -> str:
    try:
        value = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):
        return match.group(0)
    return f"({_dict_words(value)})" if isinstance(value, dict) else match.group(0)


def plain(text: object) -> str:
    """Report text without internal references; a dict (or a dict's repr inside a note that a method wrote)
    reads "key value, ..." rather than Python syntax."""
    if isinstance(text, dict):
        text = _dict_words(text)
    return _DICT_REPR.sub(_unrepr, _INTERNAL_REF.sub("", str(text)))


def _legend_outside(ax: object, n: int) -> None:
    """The legend right of the axes, never over the bars."""
    ax.legend(fontsize=7, ncol=2 if n > 12 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


# ------------------------------------------------------------------------------------------ plots
def bar_chart(table: ReportTable, path: Path) -> Path | None:
    """The table's primary metric per model (grouped by horizon/target when the table has groups), with
    error bars = std over seeds when more than one seed ran. None when nothing was measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = table.primary
    rows = [r for r in table.rows if is_finite(r.get(metric))]
    if not rows:
        return None
    groups = list(dict.fromkeys(r.get("group") for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * len(models) ** 0.6 + 3), 4.2))
    for i, m in enumerate(models):
        vals, errs = [], []
        for g in groups:
            r = next((r for r in rows if r["model"] == m and r.get("group") == g), None)
            vals.append(float(r[metric]) if r else np.nan)
            errs.append(float(r.get(f"{metric}_std", 0.0)) if r and table.seeds > 1 else 0.0)
        x = np.arange(len(groups)) + (i - (len(models) - 1) / 2) * width
        ax.bar(x, vals, width, yerr=errs if table.seeds > 1 else None, capsize=3, label=m)
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels([str(g) if g is not None else "" for g in groups], fontsize=8)
    ax.set_ylabel(metric)
    if metric == "coverage95":
        ax.axhline(0.95, color="k", ls="--", lw=0.8, label="nominal 0.95")
    if table.method == SPEED_METHOD and all(float(r[metric]) > 0 for r in rows):
        ax.set_yscale("log")
    err_note = f"; error bars: std over {table.seeds} seeds" if table.seeds > 1 else ""
    ax.set_title(f"{plain(table.title)}\n{table.data[:90]}{err_note}", fontsize=8)
    _legend_outside(ax, len(models) + (metric == "coverage95"))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


#: the speed table's columns by unit: one chart each (seconds per epoch and whole fits do not share an axis)
SPEED_UNITS = {"speed_epoch": ("s/epoch", "seconds per epoch"), "speed_fit": ("whole fit", "seconds per whole fit")}


def speed_figure(
    table: ReportTable, path: Path, unit: str = "s/epoch", ylabel: str = "seconds per epoch"
) -> Path | None:
    """Seconds of the columns whose name contains ``unit`` per model, one bar per source (this run,
    benchmark samples, extrapolation), log scale. None when no such column was measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [m for m in table.metrics if unit in m and any(is_finite(r.get(m)) and float(r[m]) > 0 for r in table.rows)]
    rows = [r for r in table.rows if any(is_finite(r.get(c)) and float(r[c]) > 0 for c in cols)]
    if not rows:
        return None
    width = 0.8 / len(cols)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows) + 2), 4.2))
    for i, c in enumerate(cols):
        vals = [float(r[c]) if is_finite(r.get(c)) and float(r[c]) > 0 else np.nan for r in rows]
        ax.bar(np.arange(len(rows)) + (i - (len(cols) - 1) / 2) * width, vals, width, label=c)
    ax.set_xticks(np.arange(len(rows)))
    ax.set_xticklabels([r["model"].replace(" (", "\n(") for r in rows], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel(f"{ylabel} (log scale)")
    ax.set_title(f"Training speed on MicroLens: {ylabel}", fontsize=9)
    _legend_outside(ax, len(cols))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def draw_plots(report: Report, out: Path) -> None:
    for t in report.tables:
        if t.method == SPEED_METHOD:
            drawn = [speed_figure(t, out / f"{name}.png", *unit) for name, unit in SPEED_UNITS.items()]
            paths = [p for p in drawn if p is not None]
        else:
            paths = [p for p in [bar_chart(t, out / f"{t.key}.png")] if p is not None]
        t.plots = [p.name for p in paths] + [p for p in t.plots if p not in {q.name for q in paths}]


# ------------------------------------------------------------------------------------------ tables
def _cell(row: dict[str, Any], metric: str, seeds: int) -> str:
    v = row.get(metric)
    if not is_finite(v):
        return "–"
    if metric.endswith("_s") or "s/epoch" in metric or "fit s" in metric:  # seconds: 3 significant digits
        x = float(v)
        return "<0.001" if 0 <= x < 0.001 else (f"{x:.3g}" if x < 100 else f"{x:.0f}")
    digits = 4 if "@" in metric else 3
    s = f"{float(v):.{digits}f}"
    if seeds > 1 and is_finite(row.get(f"{metric}_std")):
        s += f" ± {float(row[f'{metric}_std']):.{digits}f}"
    return s


def _columns(table: ReportTable) -> list[str]:
    cols = ["model"]
    if any(r.get("group") for r in table.rows):
        cols.append("group")
    if any(r.get("data") for r in table.rows):
        cols.append("data")
    return cols


def table_cells(table: ReportTable) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a table: identity columns, metrics, the paper column, the note."""
    claim = paper_claims.CLAIMS.get(table.method)
    ids = _columns(table)
    head = ids + table.metrics + (["paper (its own data)"] if claim else []) + ["note"]
    body = []
    for r in table.rows:
        cells = [plain(r.get(c) or "") for c in ids] + [_cell(r, m, table.seeds) for m in table.metrics]
        if claim:
            cells.append(claim.reported_cell(r["model"], r.get("group"), table.key))
        cells.append(plain(r.get("note", "")))
        body.append(cells)
    return head, body


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: ReportTable) -> str:
    head, body = table_cells(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def claim_lines(table: ReportTable) -> tuple[str, list[paper_claims.Check]]:
    checks = paper_claims.check(table.method, table.key, table.rows)
    return paper_claims.verdict(checks), checks


def _meta(table: ReportTable) -> list[tuple[str, str]]:
    return [
        ("command", table.command),
        ("data", plain(table.data)),
        ("rows", plain(table.n_rows)),
        ("split", plain(table.split)),
        ("seeds", str(table.seeds)),
        ("seconds", f"{table.seconds:.0f}"),
    ]


# ------------------------------------------------------------------------------------------ scoreboard
def _key_number(claim: paper_claims.PaperClaim, tables: list[ReportTable]) -> str:
    """The method's own row(s) in its key metric, e.g. "r2 0.41 (7 d), 0.38 (180 d)"."""
    parts = []
    for t in tables:
        metric = claim.key_metric if any(claim.key_metric in r for r in t.rows) else t.primary
        for name in claim.key_rows:
            got = [r for r in t.rows if r.get("model") == name and is_finite(r.get(metric))]
            if got:
                vals = ", ".join(
                    f"{float(r[metric]):.3f}" + (f" ({r['group']})" if r.get("group") else "") for r in got
                )
                parts.append(f"{name}: {metric} {vals}")
                break
    return "; ".join(parts[:2]) or "not measured"


def scoreboard(report: Report) -> list[dict[str, str]]:
    """One line per method: the paper's claim, whether it held here (over all of its tables), the key number."""
    lines = []
    for method, claim in paper_claims.CLAIMS.items():
        tables = [t for t in report.tables if t.method == method]
        if not tables:
            held = "not run" + (" yet" if not report.complete else "")
        else:
            checks = [c for t in tables for c in paper_claims.check(method, t.key, t.rows)]
            held = paper_claims.verdict(checks) if checks else "not measurable"
        lines.append(
            {
                "method": method,
                "claim": claim.claim,
                "held": held,
                "here": _key_number(claim, tables) if tables else "–",
                "paper": claim.headline,
                "anchor": tables[0].key if tables else "",
            }
        )
    return lines


def _partial(report: Report) -> str:
    if report.complete:
        return ""
    done = ", ".join(dict.fromkeys(t.method for t in report.tables)) or "none"
    return f"Partial report: sections finished so far: {done}; the rest is still running (or the run was stopped)."


# ------------------------------------------------------------------------------------------ markdown
def summary_markdown(report: Report) -> str:
    b = report.budget
    lines = [
        f"# vidpop report — data: {report.data}, budget: {b.name}, seed {report.seed}",
        "",
        f"**{paper_claims.DISCLAIMER}**",
        "",
        f"Total {report.seconds:.0f} s on this machine. Budget: {b.seeds} seed(s); details per table below.",
        "",
    ]
    if _partial(report):
        lines += [f"**{_partial(report)}**", ""]
    lines += [
        "## Scoreboard",
        "",
        "| method | the paper's claim | held here? | key number here | the paper's own numbers |",
        "|---|---|---|---|---|",
    ]
    lines += [
        "| " + " | ".join(_md_escape(x[k]) for k in ("method", "claim", "held", "here", "paper")) + " |"
        for x in scoreboard(report)
    ]
    lines.append("")
    for t in report.tables:
        lines += [f"## {plain(t.title)}", ""]
        for k, v in _meta(t):
            if v:
                lines.append(f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}")
        lines += [f"- note: {plain(n)}" for n in t.notes if n]
        lines.append("")
        if t.missing:
            lines += [f"Not measured: {plain(t.missing)}", ""]
            continue
        lines += [markdown_table(t), ""]
        claim = paper_claims.CLAIMS.get(t.method)
        if claim:
            verdict, checks = claim_lines(t)
            lines.append(f"Paper: {claim.paper}" + (f" ({claim.source})" if claim.source else ""))
            lines.append(f"Paper's claim: {claim.claim}. Here: **{verdict}**.")
            for c in checks:
                state = {True: "held", False: "did not hold", None: "not measurable"}[c.held]
                lines.append(f"- {c.statement}: {state} ({plain(c.detail)})")
            lines.append("")
        lines += [f"![{p}]({p})" for p in t.plots] + [""]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ HTML
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #bbb;padding:.25em .5em}
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}code{background:#f4f4f4;padding:0 .2em}
.disclaimer{border-left:4px solid #c60;padding:.5em 1em;background:#fff6ee}.held{color:#060}.nothold{color:#a00}
img{max-width:100%;border:1px solid #ddd}dt{font-weight:600}
dl{display:grid;grid-template-columns:8em 1fr;gap:.1em .8em}"""


def _img(out: Path, name: str) -> str:
    data = base64.b64encode((out / name).read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(name)}">'
        f'<figcaption><a href="{html.escape(name)}">{html.escape(name)}</a></figcaption></figure>'
    )


def report_html(report: Report, out: Path) -> str:
    e = html.escape
    b = report.budget
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>vidpop report — {e(report.data)}</title><style>{CSS}</style></head><body>",
        f"<h1>vidpop report — data: {e(report.data)}, budget: {e(b.name)}</h1>",
        f"<p class='disclaimer'><strong>{e(paper_claims.DISCLAIMER)}</strong></p>",
        f"<p>Total {report.seconds:.0f} s; {b.seeds} seed(s); seed {report.seed}. "
        "The markdown summary is <a href='summary.md'>summary.md</a>; "
        "raw numbers in <a href='report.json'>report.json</a>.</p>",
    ]
    if _partial(report):
        parts.append(f"<p class='disclaimer'><strong>{e(_partial(report))}</strong></p>")
    parts.append(
        "<h2 id='scoreboard'>Scoreboard</h2><table class='scoreboard'><thead><tr><th>method</th>"
        "<th>the paper's claim</th><th>held here?</th><th>key number here</th><th>the paper's own numbers</th>"
        "</tr></thead><tbody>"
    )
    for x in scoreboard(report):
        cls = {"held": "held", "did not hold": "nothold"}.get(x["held"], "")
        name = f"<a href='#{e(x['anchor'])}'>{e(x['method'])}</a>" if x["anchor"] else e(x["method"])
        parts.append(
            f"<tr><td>{name}</td><td>{e(x['claim'])}</td><td class='{cls}'><strong>{e(x['held'])}</strong></td>"
            f"<td>{e(x['here'])}</td><td>{e(x['paper'])}</td></tr>"
        )
    parts += [
        "</tbody></table>",
        "<h2>Contents</h2><ol>",
        *(f"<li><a href='#{e(t.key)}'>{e(plain(t.title))}</a></li>" for t in report.tables),
        "</ol>",
    ]
    for t in report.tables:
        parts.append(f"<h2 id='{e(t.key)}'>{e(plain(t.title))}</h2><dl>")
        for k, v in _meta(t):
            if v:
                parts.append(f"<dt>{k}</dt><dd>{f'<code>{e(v)}</code>' if k == 'command' else e(v)}</dd>")
        parts.append("</dl>")
        parts += [f"<p>Note: {e(plain(n))}</p>" for n in t.notes if n]
        if t.missing:
            parts.append(f"<p><strong>Not measured:</strong> {e(plain(t.missing))}</p>")
            continue
        head, body = table_cells(t)
        n_id = len(_columns(t))
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
        for row in body:
            cls = ["" if i < n_id or i >= n_id + len(t.metrics) else " class='num'" for i in range(len(row))]
            parts.append("<tr>" + "".join(f"<td{c}>{e(v)}</td>" for c, v in zip(cls, row, strict=True)) + "</tr>")
        parts.append("</tbody></table>")
        claim = paper_claims.CLAIMS.get(t.method)
        if claim:
            verdict, checks = claim_lines(t)
            src = f" (<a href='{e(claim.source)}'>{e(claim.source)}</a>)" if claim.source else ""
            parts.append(
                f"<p>Paper: {e(claim.paper)}{src}<br>Claim: {e(claim.claim)}. "
                f"Here: <strong>{e(verdict)}</strong>.</p><ul>"
            )
            for c in checks:
                state, cls = {True: ("held", "held"), False: ("did not hold", "nothold"), None: ("not measurable", "")}[
                    c.held
                ]
                parts.append(f"<li>{e(c.statement)}: <span class='{cls}'>{state}</span> ({e(plain(c.detail))})</li>")
            parts.append("</ul>")
        parts += [_img(out, p) for p in t.plots if (out / p).exists()]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_all(report: Report, out: Path) -> None:
    draw_plots(report, out)
    (out / "summary.md").write_text(summary_markdown(report))
    (out / "report.html").write_text(report_html(report, out))
