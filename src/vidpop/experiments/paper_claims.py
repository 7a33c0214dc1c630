"""What each method's paper reports and claims, and whether the claim held on vidpop's own tables.

No paper PDF is available offline. A ``reported`` number appears here ONLY where a public page stored
offline states it (its URL is ``reported_source``); every other cell reads :data:`NOT_AVAILABLE`. The
papers used their own crawls, so even a reported number is not comparable one-to-one with vidpop's.

Each claim is an *ordering* (e.g. "DNN < DNN+MTL < DNN+RN+MTL in R² at every horizon"). Whether it held
is computed from the measured table rows by :func:`check`, never hard-coded, so the report says "held",
"did not hold" or "not measurable" (a row is missing) for what was actually run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NOT_AVAILABLE = "not available offline"
DISCLAIMER = (
    "The papers used different data (their own crawls); these numbers are on vidpop's data and are not "
    "comparable one-to-one."
)

#: one measured row of a report table: {"model": ..., "group": ..., <metric>: float, ...}
Row = dict[str, Any]


@dataclass
class Check:
    """One ordering statement evaluated on one group of rows (e.g. one horizon)."""

    statement: str
    held: bool | None  # None: a row it needs was not measured
    detail: str


@dataclass
class PaperClaim:
    method: str
    paper: str
    source: str  # where the paper itself is described (an abstract page), "" if not identified offline
    metrics: list[str]
    claim: str
    #: table row (model label) -> (value as the paper states it, URL of the page that states it)
    reported: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: rows -> checks; rows are the measured rows of the table(s) the method produced
    checker: Callable[[list[Row], str], list[Check]] | None = None

    def reported_cell(self, model: str) -> str:
        """The paper's own figure for a row of vidpop's table, as the source states it."""
        if model in self.reported:
            value, url = self.reported[model]
            return f"{value} [source: {url}]"
        return NOT_AVAILABLE


def _value(rows: list[Row], model: str, metric: str, group: str | None = None) -> float | None:
    for r in rows:
        if r.get("model") == model and (group is None or r.get("group") == group):
            v = r.get(metric)
            return float(v) if isinstance(v, int | float) else None
    return None


def _groups(rows: list[Row]) -> list[str | None]:
    seen: list[str | None] = []
    for r in rows:
        if r.get("group") not in seen:
            seen.append(r.get("group"))
    return seen or [None]


def _chain(rows: list[Row], models: list[str], metric: str, higher: bool = True) -> list[Check]:
    """models[0] < models[1] < ... (or > when ``higher`` is False) in ``metric``, per group."""
    out = []
    op = " < " if higher else " > "
    for g in _groups(rows):
        vals = [_value(rows, m, metric, g) for m in models]
        where = f" ({g})" if g else ""
        statement = op.join(models) + f" in {metric}{where}"
        if any(v is None for v in vals):
            missing = [m for m, v in zip(models, vals, strict=True) if v is None]
            out.append(Check(statement, None, f"not measured: {', '.join(missing)}"))
            continue
        ok = all((a < b) if higher else (a > b) for a, b in itertools.pairwise(vals))
        out.append(Check(statement, ok, ", ".join(f"{m} {v:.3f}" for m, v in zip(models, vals, strict=True))))
    return out


def _beats(rows: list[Row], winner: str, others: list[str], metric: str) -> list[Check]:
    """``winner`` has the highest ``metric`` among itself and each measured row of ``others``, per group."""
    out = []
    for g in _groups(rows):
        w = _value(rows, winner, metric, g)
        where = f" ({g})" if g else ""
        measured = {o: _value(rows, o, metric, g) for o in others}
        measured = {o: v for o, v in measured.items() if v is not None}
        statement = f"{winner} beats {', '.join(others)} in {metric}{where}"
        if w is None or not measured:
            out.append(Check(statement, None, f"not measured: {winner if w is None else 'baselines'}"))
            continue
        lost = [o for o, v in measured.items() if v >= w]
        detail = f"{winner} {w:.4f}; " + ", ".join(f"{o} {v:.4f}" for o, v in measured.items())
        out.append(Check(statement, not lost, detail + (f"; not beaten: {', '.join(lost)}" if lost else "")))
    return out


# ------------------------------------------------------------------------------------------ checkers
def _relation(rows: list[Row], table: str) -> list[Check]:
    return _chain(rows, ["DNN", "DNN+MTL", "DNN+RN+MTL"], "r2")


def _fusion(rows: list[Row], table: str) -> list[Check]:
    if table != "fusion_sweep":
        return []
    # w = 0: the title branch alone; w = 1: the cover branch alone; w = 0.75: the paper's fusion weight
    return [
        *_beats(rows, "w=0.75", ["w=0"], "accuracy"),
        *_beats(rows, "w=0.75", ["w=1"], "accuracy"),
    ]


def _poe(rows: list[Row], table: str) -> list[Check]:
    out = []
    for r in rows:
        if r.get("model") != "variational_poe" or "coverage95" not in r:
            continue
        cov = float(r["coverage95"])
        out.append(
            Check(
                f"95% intervals calibrated, coverage within 0.95 ± 0.05 ({r.get('group')})",
                abs(cov - 0.95) <= 0.05,
                f"empirical coverage {cov:.3f}, mean width {float(r.get('width95', float('nan'))):.3f}",
            )
        )
    return out


def _attention(rows: list[Row], table: str) -> list[Check]:
    pairs = [
        ("frames, mean pooling", "frames, attention"),
        ("headline biLSTM", "headline biLSTM + attention"),
        ("multimodal", "multimodal + attention"),
    ]
    out = []
    for base, att in pairs:
        out += _chain([r for r in rows if r.get("model") in (base, att)], [base, att], "accuracy")
    return out


def _rec(rows: list[Row], table: str) -> list[Check]:
    # the paper's F-score (from averaged P and R), not the per-user mean F1 column
    metric = next((k for r in rows for k in r if k.startswith("F@")), "F@5")
    if table.startswith("rec_cold"):
        return _beats(rows, "Interest RNN (paper)", ["Popularity", "MKNN", "CB", "SCA"], metric)
    if table.startswith("rec_"):
        base = ["Random", "Popularity", "LFM", "Item-KNN", "FPMC"]
        return _beats(rows, "Interest RNN (paper)", base, metric)
    return []


CLAIMS: dict[str, PaperClaim] = {
    "relation": PaperClaim(
        "relation",
        "Mao, Shen, Qin, Cai (2017): Predicting the Popularity of Online Videos via Deep Neural Networks",
        "https://ar5iv.labs.arxiv.org/html/1711.10718",
        ["R²"],
        "DNN < DNN+MTL < DNN+RN+MTL in R² of log total views at every horizon (TV series, Youku)",
        checker=_relation,
    ),
    "fusion": PaperClaim(
        "fusion",
        "Qin, Wang, Zhu (2024): Predicting video popularity based on video covers and titles using a multimodal "
        "large-scale model and pipeline parallelism",
        "https://www.ewadirect.com/proceedings/ace/article/view/10296",
        ["accuracy (5 classes)"],
        "weighted late fusion of cover (ViT) and title (BERT) beats either modality alone (Bilibili)",
        reported={
            "w=0.75": (
                "accuracy up to 0.62 at its best fusion weight (Bilibili covers + titles; stated in the abstract)",
                "https://www.ewadirect.com/proceedings/ace/article/view/10296",
            )
        },
        checker=_fusion,
    ),
    "poe": PaperClaim(
        "poe",
        "multimodal variational encoder with Bayesian product of experts (closest published match found offline: "
        "Zhu, Xie, Chen 2020, MMVED)",
        "https://ar5iv.labs.arxiv.org/html/2003.12724",
        ["MAE", "Spearman", "95% coverage", "95% width"],
        "the predictive distribution keeps the uncertainty: calibrated 95% intervals from any subset of modalities",
        checker=_poe,
    ),
    "attention": PaperClaim(
        "attention",
        "Bielski, Trzciński (2018): Pay Attention to Virality / Understanding Multimodal Popularity Prediction of "
        "Social Media Videos With Self-Attention (IEEE Access 6)",
        "https://ar5iv.labs.arxiv.org/html/1804.09949",
        ["accuracy (popular/unpopular)", "Spearman"],
        "attention pooling beats plain pooling for frames, headlines and the multimodal model, at competitive accuracy",
        checker=_attention,
    ),
    "rec": PaperClaim(
        "rec",
        "dynamic interest RNN recommender (the paper behind vidpop's issue 6; not identified in the offline pages)",
        "",
        ["precision@k", "recall@k", "F@k"],
        "the interest RNN beats Random, Popularity, LFM, Item-KNN and FPMC (and Pop/MKNN/CB/SCA in cold start)",
        checker=_rec,
    ),
}


def check(method: str, table_key: str, rows: list[Row]) -> list[Check]:
    """The claim's checks on one measured table (empty when the claim says nothing about that table)."""
    claim = CLAIMS.get(method)
    if claim is None or claim.checker is None:
        return []
    return claim.checker([r for r in rows if r.get("model")], table_key)


def verdict(checks: list[Check]) -> str:
    """One word for a list of checks: held / did not hold / partly / not measurable."""
    if not checks:
        return "not checked on this table"
    known = [c.held for c in checks if c.held is not None]
    if not known:
        return "not measurable"
    if all(known):
        return "held"
    if not any(known):
        return "did not hold"
    return f"partly ({sum(known)} of {len(known)})"
