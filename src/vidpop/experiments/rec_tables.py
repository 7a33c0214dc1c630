"""The recommendation tables of ``vidpop rec tables`` / ``vidpop rec loo``: which models form each
table and how a row is run under the shared protocol (:mod:`vidpop.training.rec_protocol`);
a row's model is built by :func:`vidpop.recipes.rec.build_row_model`.

The interest-RNN rows are read from :mod:`vidpop.models.interest_rnn` (``SINGLE``, ``COLD_START``,
``ABLATIONS``) and imported lazily: when that package is missing, its rows say "not available".
A row that fails is reported as failed with its reason, so one broken model does not hide the rest.
"""

from __future__ import annotations

import importlib
import json
import time
from typing import Any

from vidpop.data.schema import VideoDataset
from vidpop.recipes.rec import Row, build_row_model
from vidpop.training.rec_protocol import ProtocolConfig, RecSplit, fit_and_evaluate, metric_names

#: single-network baselines (label, registered model)
SINGLE_BASELINES: list[tuple[str, str]] = [
    ("Random", "rec_random"),
    ("Popularity", "rec_pop"),
    ("LFM", "rec_lfm"),
    ("Item-KNN", "rec_itemknn"),
    ("FPMC", "rec_fpmc"),
    ("SASRec (modern ref.)", "rec_sasrec"),
]
#: cold-start baselines: text only
COLD_BASELINES: list[tuple[str, str]] = [
    ("Popularity", "rec_pop"),
    ("MKNN", "rec_mknn"),
    ("CB", "rec_cb"),
    ("SCA", "rec_sca"),
]


def _interest_module() -> Any | None:
    try:
        return importlib.import_module("vidpop.models.interest_rnn")
    except ImportError:
        return None


def single_rows(interest: bool = True) -> list[Row]:
    rows = [Row(label, name) for label, name in SINGLE_BASELINES]
    mod = _interest_module() if interest else None
    spec = getattr(mod, "SINGLE", None) or (getattr(mod, "ABLATIONS", {}) or {}).get("full")
    rows.append(Row("Interest RNN (paper)", spec[0], dict(spec[1])) if spec else Row("Interest RNN (paper)", None))
    return rows


def cold_rows(interest: bool = True) -> list[Row]:
    rows = [Row(label, name) for label, name in COLD_BASELINES]
    spec = getattr(_interest_module() if interest else None, "COLD_START", None)
    rows.append(Row("Interest RNN (paper)", spec[0], dict(spec[1])) if spec else Row("Interest RNN (paper)", None))
    return rows


def ablation_rows(interest: bool = True) -> list[Row]:
    abl = getattr(_interest_module() if interest else None, "ABLATIONS", None)
    labels = ["RNN", "RNN-Sem", "RNN-noRel", "full", "Static-DNN"]
    if not abl:
        return [Row(label, None) for label in labels]
    return [Row(label, abl[label][0], dict(abl[label][1])) if label in abl else Row(label, None) for label in labels]


def _key(row: Row, split_key: str, epochs: int | None) -> str:
    return json.dumps([row.model, row.overrides, split_key, epochs], sort_keys=True, default=str)


def run_rows(
    rows: list[Row],
    split: RecSplit,
    cfg: ProtocolConfig,
    ds: VideoDataset,
    epochs: int | None = None,
    cache: dict[str, dict[str, Any]] | None = None,
    log: Any = print,
) -> list[dict[str, Any]]:
    """Fit and evaluate every row on ``split``; a result per row (metrics, seconds, or the failure)."""
    out = []
    split_key = json.dumps(split.info, sort_keys=True, default=str)
    for row in rows:
        res: dict[str, Any] = {"label": row.label, "model": row.model}
        if row.model is None:
            res["status"] = row.note or "not available"
        elif cache is not None and _key(row, split_key, epochs) in cache:
            res = {**cache[_key(row, split_key, epochs)], "label": row.label}
        else:
            t0 = time.perf_counter()
            try:
                model = build_row_model(row, epochs, progress=cfg.progress)
                r = fit_and_evaluate(model, split, cfg, ds)
            except Exception as exc:  # report the failure in the table, keep the other rows
                res.update(status=f"failed: {type(exc).__name__}: {exc}"[:160], seconds=time.perf_counter() - t0)
            else:
                res.update(
                    status="ok",
                    metrics=r.metrics,
                    fit_seconds=r.fit_seconds,
                    eval_seconds=r.eval_seconds,
                    seconds_per_epoch=r.info.get("seconds_per_epoch"),
                    epochs=r.info.get("epochs"),
                )
            if cache is not None:
                cache[_key(row, split_key, epochs)] = res
        log(f"  {row.label:22s} {format_result(res, cfg)}")
        out.append(res)
    return out


def format_result(res: dict[str, Any], cfg: ProtocolConfig) -> str:
    if res.get("status") != "ok":
        return str(res.get("status"))
    return " ".join(f"{m}={res['metrics'][m]:.4f}" for m in metric_names(cfg) if m in res["metrics"])


def markdown_table(title: str, results: list[dict[str, Any]], metrics: list[str]) -> str:
    """A Markdown table: one row per model, the metric columns, fit seconds, epochs, s/epoch (and the
    configuration chosen on validation when the rows were tuned)."""
    tuned = any("chosen" in r for r in results)
    extra = ["fit s", "epochs", "s/epoch", *(["chosen on validation"] if tuned else [])]
    head = f"### {title}\n\n| Model | " + " | ".join([*metrics, *extra]) + " |\n"
    head += "|---" * (len(metrics) + len(extra) + 1) + "|\n"
    lines = []
    for r in results:
        if r.get("status") != "ok":
            blanks = " | ".join("–" for _ in metrics)
            lines.append(f"| {r['label']} | {blanks} | {r.get('status')} |" + " |" * (len(extra) - 1))
            continue
        vals = " | ".join(f"{r['metrics'][m]:.4f}" for m in metrics)
        spe, ep = r.get("seconds_per_epoch"), r.get("epochs")
        cells = [f"{r['fit_seconds']:.1f}", "" if ep is None else str(ep), "" if spe is None else f"{spe:.1f}"]
        if tuned:
            cells.append(json.dumps(r.get("chosen") or "defaults"))
        lines.append(f"| {r['label']} | {vals} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def describe_split(split: RecSplit) -> str:
    i = split.info
    parts = [
        f"{k}={i[k]}"
        for k in ("users", "interactions", "items", "train_users", "test_users", "evaluated_users")
        if k in i
    ]
    if "truth_oov_share" in i:
        parts.append(f"truth outside vocabulary={i['truth_oov_share']:.3%}")
    return ", ".join(parts)
