"""What each method's paper claims and reports, and whether the claim held on vidpop's own tables.

The five papers are stored as plain text in ``../shared/papers/`` (``PAPERS_DIR``); each claim names its
file, and every ``reported`` figure is copied from that paper's own text (its table or sentence is named
with the figure). A claim records only what its paper states; where vidpop checks a claim through a
stand-in test (e.g. the PoE paper's "uncertainty quantification" through 95% coverage) the check says so.
The papers used their own data, so even a reported number is not comparable one-to-one with vidpop's.

Each check is computed from the measured table rows by :func:`check`, never hard-coded, so the report says
"held", "did not hold" or "not measurable" (a row is missing) for what was actually run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PAPERS_DIR = "../shared/papers"
NOT_REPORTED = "–"  # the paper has no figure for this row
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
    paper: str  # title (and authors) as the paper's own text gives them
    source: str  # the paper's text file under PAPERS_DIR
    metrics: list[str]
    claim: str  # what the paper claims, in its terms
    #: the paper's headline figure(s), for the report's scoreboard
    headline: str = ""
    #: the metric of vidpop's tables that the scoreboard quotes, and the rows (the method's own, best first)
    key_metric: str = ""
    key_rows: list[str] = field(default_factory=list)
    #: "<table key>|<model>|<group>" (any part may be "*") -> the paper's own figure for that row
    reported: dict[str, str] = field(default_factory=dict)
    #: rows -> checks; rows are the measured rows of the table(s) the method produced
    checker: Callable[[list[Row], str], list[Check]] | None = None

    def reported_cell(self, model: str, group: str | None = None, table: str = "*") -> str:
        """The paper's own figure for a row of vidpop's table ("–" where the paper has none)."""
        for key in (f"{table}|{model}|{group}", f"{table}|{model}|*", f"*|{model}|{group}", f"*|{model}|*"):
            if key in self.reported:
                return self.reported[key]
        return NOT_REPORTED


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


def _beats(rows: list[Row], winner: str, others: list[str], metric: str, higher: bool = True) -> list[Check]:
    """``winner`` has the best ``metric`` (highest, or lowest when ``higher`` is False) among itself and
    each measured row of ``others``, per group."""
    out = []
    for g in _groups(rows):
        w = _value(rows, winner, metric, g)
        where = f" ({g})" if g else ""
        measured = {o: _value(rows, o, metric, g) for o in others}
        measured = {o: v for o, v in measured.items() if v is not None}
        statement = f"{winner} beats {', '.join(others)} in {metric}{where}" + ("" if higher else " (lower is better)")
        if w is None or not measured:
            out.append(Check(statement, None, f"not measured: {winner if w is None else 'baselines'}"))
            continue
        lost = [o for o, v in measured.items() if (v >= w if higher else v <= w)]
        detail = f"{winner} {w:.4f}; " + ", ".join(f"{o} {v:.4f}" for o, v in measured.items())
        out.append(Check(statement, not lost, detail + (f"; not beaten: {', '.join(lost)}" if lost else "")))
    return out


# ------------------------------------------------------------------------------------------ checkers
def _relation(rows: list[Row], table: str) -> list[Check]:
    return _chain(rows, ["DNN", "DNN+MTL", "DNN+RN+MTL"], "r2")


def _fusion(rows: list[Row], table: str) -> list[Check]:
    if table != "fusion_sweep":
        return []
    # w = 0: the title branch alone; w = 1: the cover branch alone; w = 0.75: the paper's fusion weight.
    # The paper's accuracy is ordinal accuracy (exact class 1, adjacent class 0.5; its Sec. 3).
    return [
        *_beats(rows, "w=0.75", ["w=0"], "ordinal_accuracy"),
        *_beats(rows, "w=0.75", ["w=1"], "ordinal_accuracy"),
    ]


def _poe(rows: list[Row], table: str) -> list[Check]:
    out = []
    for r in rows:
        if r.get("model") != "variational_poe" or "coverage95" not in r:
            continue
        cov = float(r["coverage95"])
        out.append(
            Check(
                f"vidpop's test of the uncertainty claim: 95% intervals cover 0.95 ± 0.05 ({r.get('group')})",
                abs(cov - 0.95) <= 0.05,
                f"empirical coverage {cov:.3f}, mean width {float(r.get('width95', float('nan'))):.3f}",
            )
        )
    # "superior performance": vidpop's strongest regression baseline on the same split
    out += _beats(rows, "variational_poe", ["LightGBM + split conformal"], "mae", higher=False)
    return out


def _attention(rows: list[Row], table: str) -> list[Check]:
    # The paper: attention helps the visual and the multimodal model; for headlines it "deteriorates
    # slightly" (Table 1), so no headline check.
    pairs = [("frames, mean pooling", "frames, attention"), ("multimodal", "multimodal + attention")]
    out = []
    for base, att in pairs:
        out += _chain([r for r in rows if r.get("model") in (base, att)], [base, att], "accuracy")
    return out


def _f_metric(rows: list[Row]) -> str:
    """Top-k F as the paper computes it (F@k from mean P and R) when the table has it, else per-user F1@k."""
    keys = [k for r in rows for k in r]
    return next((k for k in keys if k.startswith("F@")), next((k for k in keys if k.startswith("F1@")), "F1@5"))


def _rec(rows: list[Row], table: str) -> list[Check]:
    metric = _f_metric(rows)
    if table.startswith("rec_cold"):
        return _beats(rows, "Interest RNN (paper)", ["Popularity", "MKNN", "CB", "SCA"], metric)
    if table in ("rec_long", "rec_short"):
        return _beats(rows, "Interest RNN (paper)", ["Random", "Popularity", "LFM", "Item-KNN", "FPMC"], metric)
    return []


def _rec_reported() -> dict[str, str]:
    """Tables 1 and 2 of the recommendation paper: Top-5 precision, recall, F-score."""
    t1 = {  # model: (long P, R, F), (short P, R, F)
        "Random": ((0.0007, 0.0005, 0.0006), (0.0019, 0.0009, 0.0012)),
        "Popularity": ((0.0015, 0.0035, 0.0021), (0.0046, 0.0019, 0.0027)),
        "LFM": ((0.0039, 0.0053, 0.0045), (0.0028, 0.0023, 0.0025)),
        "Item-KNN": ((0.0174, 0.0271, 0.0212), (0.0169, 0.0133, 0.0149)),
        "FPMC": ((0.0216, 0.0357, 0.0269), (0.0235, 0.0134, 0.0170)),
        "Interest RNN (paper)": ((0.0296, 0.0399, 0.0340), (0.0350, 0.0259, 0.0298)),
    }
    t2 = {
        "Popularity": (0.0015, 0.0021, 0.0018),
        "MKNN": (0.0050, 0.0039, 0.0043),
        "CB": (0.0132, 0.0111, 0.0120),
        "SCA": (0.0174, 0.0128, 0.0147),
        "Interest RNN (paper)": (0.0261, 0.0189, 0.0219),
    }

    def cell(v: tuple[float, float, float], where: str) -> str:
        return f"P@5 {v[0]:.4f}, R@5 {v[1]:.4f}, F@5 {v[2]:.4f} ({where})"

    out = {}
    for model, (long, short) in t1.items():
        out[f"rec_long|{model}|*"] = cell(long, "Table 1, long mode")
        out[f"rec_short|{model}|*"] = cell(short, "Table 1, short mode")
    for model, v in t2.items():
        out[f"rec_cold|{model}|*"] = cell(v, "Table 2, cold start")
    return out


def _fusion_reported() -> dict[str, str]:
    """Table 1 of the fusion paper: validation ("testing") ordinal accuracy, best epoch of 5, per ViT weight."""
    best = {"0.3": 0.6282, "0.45": 0.6169, "0.6": 0.6161, "0.75": 0.6242, "0.9": 0.6180, "1": 0.6031, "0": 0.4659}
    out = {
        f"fusion_sweep|w={w}|*": f"ordinal accuracy {v:.4f} (Table 1, best of 5 epochs; ViT/BERT {w})"
        for w, v in best.items()
    }
    out["fusion_sweep|w=0|*"] = "ordinal accuracy 0.4659 (Table 1, BERT alone)"
    out["fusion_sweep|w=1|*"] = "ordinal accuracy 0.6031 (Table 1, ViT alone, best of 5 epochs)"
    for row in ("title only: e5 (multilingual)", "title only: MiniLM"):
        out[f"fusion_titles|{row}|*"] = "ordinal accuracy 0.4659 (Table 1, BERT alone, Bilibili)"
    out["fusion_titles|title only: GloVe-GRU|*"] = "VGG/RNN fusion 0.5471, VGG/BERT 0.5345 (Table 2; no RNN-alone row)"
    return out


def _paper(name: str) -> str:
    return f"{PAPERS_DIR}/{name}"


CLAIMS: dict[str, PaperClaim] = {
    "relation": PaperClaim(
        "relation",
        "Predicting the popularity of online videos with a multi-task learning (MTL) module and a relation "
        "network (RN) module (Youku TV series)",
        _paper("000_c8dfa6d527e2ba65.txt"),
        ["R²"],
        "DNN < DNN+MTL < DNN+RN+MTL in R² of the total view counts, predicted 7, 180 and 360 days before "
        "release (TV series on Youku, trained before and tested from 1 Jan 2017)",
        headline="R² 0.80 / 0.83 / 0.87 (DNN / +MTL / +RN+MTL) at 7 days; 0.74 / 0.79 / 0.85 at 360 days (Table 1)",
        key_metric="r2",
        key_rows=["DNN+RN+MTL"],
        reported={
            f"*|{m}|{h} d": f"{v:.2f} (Table 1)"
            for h, vals in {7: (0.80, 0.83, 0.87), 180: (0.75, 0.80, 0.85), 360: (0.74, 0.79, 0.85)}.items()
            for m, v in zip(("DNN", "DNN+MTL", "DNN+RN+MTL"), vals, strict=True)
        },
        checker=_relation,
    ),
    "fusion": PaperClaim(
        "fusion",
        "Qin, Wang, Zhu: Predicting video popularity based on video covers and titles using a multimodal "
        "large-scale model and pipeline parallelism",
        _paper("001_4d3cdccc2d828de4.txt"),
        ["ordinal accuracy (5 classes; exact 1, adjacent 0.5)"],
        "weighted late fusion of a cover model (ViT) and a title model (BERT) beats either alone, with the best "
        "ordinal accuracy at ViT weight 0.75 (Bilibili covers and titles)",
        headline="ordinal accuracy up to 62% (0.6242 at ViT weight 0.75; ViT alone 0.6031, BERT alone 0.4659; "
        "Table 1). Its Table 1 also shows 0.6282 at weight 0.3",
        key_metric="ordinal_accuracy",
        key_rows=["w=0.75", "title only: e5 (multilingual)", "title only: MiniLM"],
        reported=_fusion_reported(),
        checker=_fusion,
    ),
    "poe": PaperClaim(
        "poe",
        "Wang, Li: Deep Learning for TikTok Video Popularity Prediction: An Variational Inference Perspective",
        _paper("002_1ed4e6cf745f533b.txt"),
        ["MAE", "Spearman", "95% coverage", "95% width"],
        "a variational encoder whose four modality experts are pooled as a product of Gaussians yields superior "
        "performance and uncertainty quantification (95% intervals from 1,000 samples) that estimates the "
        "prediction error",
        headline="no metric values stated: ranked first in the first three weeks of the challenge's test phase "
        "and second in the final week",
        key_metric="coverage95",
        key_rows=["variational_poe"],
        reported={"*|variational_poe|*": "no figure (only a ranking: 1st for three weeks, 2nd in the final week)"},
        checker=_poe,
    ),
    "attention": PaperClaim(
        "attention",
        "Explaining the popularity of social media videos with self-attention and Grad-CAM (37k Facebook videos)",
        _paper("003_26f321c412a14f86.txt"),
        ["accuracy (popular/unpopular)", "Spearman"],
        "adding attention improves the visual and the multimodal model (for headlines it deteriorates "
        "slightly), at competitive accuracy, and makes the model interpretable",
        headline="accuracy 68.87% frames + attention, 68.70% headline + attention, 72.72% multimodal + attention "
        "(Table 1)",
        key_metric="accuracy",
        key_rows=["multimodal + attention", "frames, attention", "headline biLSTM + attention"],
        reported={
            "*|frames, mean pooling|*": "68.17%, Spearman 0.524 (Table 1)",
            "*|frames, attention|*": "68.87%, Spearman 0.526 (Table 1)",
            "*|headline biLSTM|*": "69.47%, Spearman 0.542 (Table 1)",
            "*|headline biLSTM + attention|*": "68.70%, Spearman 0.525 (Table 1)",
            "*|multimodal|*": "71.94%, Spearman 0.612 (Table 1)",
            "*|multimodal + attention|*": "72.72%, Spearman 0.607 (Table 1)",
        },
        checker=_attention,
    ),
    "rec": PaperClaim(
        "rec",
        "Personalized video recommendation through a dynamic recurrent neural network of users' interests "
        "(cross-network, Twitter and YouTube)",
        _paper("004_8df32a95bd6432d0.txt"),
        ["precision@5", "recall@5", "F@5"],
        "the dynamic interest RNN beats Random, Popularity, LFM, KNN and FPMC in Top-5 F-score in both the long "
        "and the short mode, and Popularity, MKNN, CB and SCA in cold start",
        headline="Top-5 F-score 0.0340 (long), 0.0298 (short), 0.0219 (cold start); best baseline FPMC 0.0269 / "
        "0.0170, SCA 0.0147 (Tables 1, 2)",
        key_metric="F@5",
        key_rows=["Interest RNN (paper)"],
        reported=_rec_reported(),
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
