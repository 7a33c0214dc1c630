"""One answer in context: the count model's numbers shaped for a reader.

* counts are whole numbers with at most :data:`SIG_DIGITS` significant digits (the raw log-scale values stay
  under ``log1p``);
* likes and comments are kept within the training videos' ratios to views (:mod:`vidpop.serve.context`);
* one verdict: the class and P(popular) from the same model, the model named, other models as second opinions;
* a context line: the percentile among the training videos and the typical range for authors of a similar size;
* one line for each input (clip, cover, followers) that moves the estimate by more than :data:`MOVE_FACTOR`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vidpop.data.labels import CLASS_NAMES
from vidpop.serve.context import RATIO_QUANTILES, TrainingContext

SIG_DIGITS = 3
#: an input that changes the first target by more than this factor (either way) gets a line of its own
MOVE_FACTOR = 2.0


def round_count(x: float) -> int:
    """A whole number with at most 3 significant digits: 61.7 -> 62, 1,093,456 -> 1,090,000."""
    n = max(0.0, float(x))
    if not math.isfinite(n) or n < 10**SIG_DIGITS:
        return round(n) if math.isfinite(n) else 0
    step = 10 ** (math.floor(math.log10(n)) - SIG_DIGITS + 1)
    return int(round(n / step) * step)


def fmt_count(x: float) -> str:
    return f"{round_count(x):,}"


def short_name(name: str) -> str:
    """``microlens:log1p_views`` -> ``views``."""
    tail = name.split(":")[-1]
    return tail[len("log1p_") :] if tail.startswith("log1p_") else tail


def is_count(name: str) -> bool:
    return name.split(":")[-1].startswith("log1p_")


def bound_ratios(
    names: list[str], mean: np.ndarray, lower: np.ndarray, upper: np.ndarray, ctx: TrainingContext | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], str | None]:
    """Keep log1p(count j) - log1p(first count) inside the training videos' quantiles (the ratio likes/views
    of a prediction stays one that real videos had). Returns the bounded arrays, the names that moved, and
    the sentence for the notes (None when there is nothing to bound against)."""
    mean, lower, upper = (np.asarray(a, np.float64).copy() for a in (mean, lower, upper))
    if (
        ctx is None
        or len(names) < 2
        or not is_count(names[0])
        or list(ctx.target_names) != [n.split(":")[-1] for n in names]
    ):
        return mean, lower, upper, [], None
    moved, spans = [], []
    for j in range(1, len(names)):
        b = ctx.ratio_bounds(j) if is_count(names[j]) else None
        if b is None:
            continue
        lo, hi = b
        spans.append(f"{short_name(names[j])}/{short_name(names[0])} {math.exp(lo):.2g}–{math.exp(hi):.2g}")
        value = float(np.clip(mean[j], mean[0] + lo, mean[0] + hi))
        if abs(value - mean[j]) > 1e-9:
            moved.append(short_name(names[j]))
        mean[j] = value
        lower[j] = min(max(lower[j], lower[0] + lo), value)
        upper[j] = max(min(upper[j], upper[0] + hi), value)
    if not spans:
        return mean, lower, upper, [], None
    q = f"{RATIO_QUANTILES[0]:.0%}–{RATIO_QUANTILES[1]:.0%}"
    note = (
        f"ratios to {short_name(names[0])} are kept within the {q} range of the {ctx.n_train} training videos "
        f"({', '.join(spans)})" + (f"; bounded here: {', '.join(moved)}" if moved else "")
    )
    return mean, lower, upper, moved, note


def target_entries(
    names: list[str], mean: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float, model: str, scale: str
) -> list[dict[str, Any]]:
    out = []
    for j, name in enumerate(names):
        entry: dict[str, Any] = {"name": name, "model": model, "level": level}
        m, lo, hi = float(mean[j]), float(lower[j]), float(upper[j])
        if is_count(name):
            entry.update(
                name=short_name(name),
                scale="count",
                value=round_count(math.expm1(m)),
                lower=round_count(math.expm1(lo)),
                upper=round_count(math.expm1(hi)),
                log1p={"mean": m, "lower": lo, "upper": hi},
            )
        else:
            entry.update(scale=scale, value=m, lower=lo, upper=hi)
        out.append(entry)
    return out


def _show(value: float, name: str) -> str:
    return fmt_count(math.expm1(value)) if is_count(name) else f"{value:.3g}"


def context_line(
    ctx: TrainingContext | None, name: str, value: float, followers: float | None, model: str
) -> tuple[str | None, list[str]]:
    """'Predicted views 12,300: more than 57% of the 420 training videos ...' and the notes it needs."""
    notes: list[str] = []
    if ctx is None:
        return None, [f"{model}: its training data is not readable here, so the answer has no context line"]
    pct = ctx.percentile(value)
    short = short_name(name)
    parts = [f"predicted {short} {_show(value, name)}: more than {pct:.0f}% of the {ctx.n_train:,} training videos "
             f"({ctx.data})"]  # fmt: skip
    if followers is not None:
        sim = ctx.similar_authors(followers)
        if sim is None:
            notes.append(
                f"{model}: the training data ({ctx.data}) has no follower counts, so there is no typical range for "
                "authors of this size"
            )
        else:
            parts.append(
                f"{sim['who']} ({sim['n_videos']} videos) typically get {_show(sim['lower'], name)}–"
                f"{_show(sim['upper'], name)} {short} (middle half)"
            )
    return "; ".join(parts), notes


def verdict(
    model: str,
    edges: list[float],
    ctx: TrainingContext | None,
    mean0: float,
    samples0: np.ndarray,
    name: str,
    draws: str = "the predictive samples",
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The class (quintile of the training videos the prediction falls in) and P(popular) (share of the
    predictive samples above the training median), both from the count model."""
    short = short_name(name)
    cls = None
    if edges:
        k = int(np.searchsorted(np.asarray(edges), mean0))
        cls = {
            "label": k,
            "name": CLASS_NAMES[k] if len(edges) + 1 == len(CLASS_NAMES) else str(k + 1),
            "n_classes": len(edges) + 1,
            "model": model,
            "method": f"quintile of the training videos' {short} that the prediction falls in",
        }
    med = ctx.median() if ctx is not None else None
    pp = None
    if med is not None and len(samples0):
        k, n = int(np.sum(samples0 > med)), len(samples0)
        pp = {
            # a whole percent (half up, in integers), so every place that shows it shows the same number
            "value": ((200 * k + n) // (2 * n)) / 100,
            "model": model,
            "definition": f"share of {draws} above the training videos' median {short} ({_show(med, name)})",
        }
    return cls, pp


def verdict_text(cls: dict[str, Any] | None, pp: dict[str, Any] | None) -> str | None:
    if cls is None and pp is None:
        return None
    head = f"{cls['name'].capitalize()} (class {cls['label'] + 1} of {cls['n_classes']})" if cls else ""
    prob = f"P(popular) {pp['value']:.0%}" if pp else ""
    models = sorted({d["model"] for d in (cls, pp) if d})
    who = f"both from {models[0]}" if cls and pp and len(models) == 1 else "from " + " and ".join(models)
    return f"{head}{', ' if head and prob else ''}{prob} ({who})"


def effect_line(what: str, name: str, with_it: float, without: float) -> tuple[dict[str, Any], str | None]:
    """How much one input moves the first target (log1p scale in, count ratio out)."""
    ratio = math.exp(with_it - without) if is_count(name) else None
    entry = {"input": what, "target": short_name(name), "with": _show(with_it, name), "without": _show(without, name),
             "ratio": ratio}  # fmt: skip
    if ratio is None or 1 / MOVE_FACTOR <= ratio <= MOVE_FACTOR:
        return entry, None
    how = f"×{ratio:.1f}" if ratio > 1 else f"÷{1 / ratio:.1f}"
    line = (
        f"the {what} moves predicted {short_name(name)} {how}: {_show(without, name)} without it, "
        f"{_show(with_it, name)} with it"
    )
    return entry, line


def ratio_summary(diff: np.ndarray, level: float) -> dict[str, float]:
    """Ratio A/B of a count from paired log-scale sample differences: the mean and the central interval."""
    a = (1 - level) / 2
    lo, hi = np.quantile(diff, [a, 1 - a])
    return {"value": float(math.exp(float(np.mean(diff)))), "lower": float(math.exp(lo)),
            "upper": float(math.exp(hi)), "level": level}  # fmt: skip
