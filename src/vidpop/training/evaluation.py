"""One evaluator per task kind, with the standard metric names used everywhere (CLI, JSON, tables, report).

=================  ==============================================================================
task kind          metrics (names exactly as returned)
=================  ==============================================================================
regression         per target: ``MAPE``, ``MAE``, ``R2``, ``Spearman`` (+ ``coverage95``, ``width95``
                   when the model gives 95% intervals) and ``n_test``
classification     ``accuracy``, ``Spearman`` (of the score against the label, when a score is given)
ordinal            ``accuracy``, ``ordinal_accuracy`` (exact class 1, adjacent class 0.5)
recommendation     ``P@5``, ``R@5``, ``F@5`` (2·P̄·R̄/(P̄+R̄), the recommendation paper's definition),
                   ``HR@10``, ``NDCG@10``; other columns of the protocol (e.g. the per-user mean F1) follow
=================  ==============================================================================

:data:`METRICS` is the registry (task kind -> name -> function of ``(y_true, y_pred)``); a new metric is
one :func:`register_metric` call. ``MAPE`` is mean |y − ŷ| / |y| on the scale the model predicts (see
:func:`vidpop.training.metrics.mape`). Rows whose target is missing (NaN) are left out per target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vidpop.errors import VidpopError
from vidpop.training import metrics

MetricFn = Callable[[np.ndarray, np.ndarray], float]

METRICS: dict[str, dict[str, MetricFn]] = {
    "regression": {"MAPE": metrics.mape, "MAE": metrics.mae, "R2": metrics.r2, "Spearman": metrics.spearman},
    "classification": {"accuracy": metrics.accuracy},
    "ordinal": {"accuracy": metrics.accuracy, "ordinal_accuracy": metrics.ordinal_accuracy},
}
#: the recommendation names, in order (computed by :func:`vidpop.training.rec_protocol.evaluate`)
RECOMMENDATION_METRICS: tuple[str, ...] = ("P@5", "R@5", "F@5", "HR@10", "NDCG@10")
TASKS: tuple[str, ...] = ("regression", "classification", "ordinal", "recommendation")


def register_metric(task: str, name: str) -> Callable[[MetricFn], MetricFn]:
    """Decorator: add ``fn(y_true, y_pred) -> float`` to the standard set of ``task``."""

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.setdefault(task, {})[name] = fn
        return fn

    return deco


def _columns(a: Any, n: int) -> np.ndarray:
    return np.asarray(a, dtype="float64").reshape(n, -1)


def regression(
    y_true: Any,
    y_pred: Any,
    target_names: Sequence[str] | None = None,
    lower: Any | None = None,
    upper: Any | None = None,
) -> dict[str, dict[str, float]]:
    """Per target (columns of ``y_true``): the standard regression set, plus ``coverage95`` and
    ``width95`` of the intervals ``[lower, upper]`` when given. Targets without a labelled row are left out."""
    n = len(np.asarray(y_true))
    y, p = _columns(y_true, n), _columns(y_pred, n)
    if y.shape != p.shape:
        raise ValueError(f"shape mismatch: {y.shape} vs {p.shape}")
    names = list(target_names) if target_names is not None else [f"target {j}" for j in range(y.shape[1])]
    lo = _columns(lower, n) if lower is not None else None
    hi = _columns(upper, n) if upper is not None else None
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        ok = np.isfinite(y[:, j])
        if not ok.any():
            continue
        row = {k: fn(y[ok, j], p[ok, j]) for k, fn in METRICS["regression"].items()}
        if lo is not None and hi is not None:
            row["coverage95"] = metrics.interval_coverage(y[ok, j], lo[ok, j], hi[ok, j])
            row["width95"] = metrics.interval_width(lo[ok, j], hi[ok, j])
        row["n_test"] = int(ok.sum())
        out[name] = row
    return out


def classification(
    y_true: Any, y_pred: Any, score: Any | None = None, score_target: Any | None = None
) -> dict[str, float]:
    """``accuracy`` of the predicted class; ``Spearman`` of ``score`` (e.g. P(popular)) against
    ``score_target`` (the continuous popularity the classes were cut from), else against the label."""
    y, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    row = {k: fn(y, p) for k, fn in METRICS["classification"].items()}
    if score is not None:
        target = y if score_target is None else np.asarray(score_target, dtype="float64").ravel()
        row["Spearman"] = metrics.spearman(target, np.asarray(score, dtype="float64").ravel())
    row["n_test"] = len(y)
    return row


def ordinal(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``accuracy`` and ``ordinal_accuracy`` of ordered classes."""
    y, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    return {**{k: fn(y, p) for k, fn in METRICS["ordinal"].items()}, "n_test": len(y)}


def standard_recommendation_names(values: dict[str, float]) -> dict[str, float]:
    """The protocol's averages under the standard names: ``F@5`` = 2·P̄·R̄/(P̄+R̄) from the averaged
    precision and recall (unless the protocol already gives it); its per-user mean F1 is kept as
    ``F1@5 (per-user mean)``; any other column follows unchanged."""
    out = {k: values[k] for k in ("P@5", "R@5") if k in values}
    if "F@5" in values:
        out["F@5"] = values["F@5"]
    elif "P@5" in values and "R@5" in values:
        p, r = values["P@5"], values["R@5"]
        out["F@5"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    for k in ("HR@10", "NDCG@10"):
        if k in values:
            out[k] = values[k]
    for k, v in values.items():
        if k == "F1@5":
            out["F1@5 (per-user mean)"] = v
        elif k not in out:
            out[k] = v
    return out


def recommendation(model: Any, split: Any, cfg: Any) -> dict[str, float]:
    """The shared recommender protocol (:func:`vidpop.training.rec_protocol.evaluate`) on ``split``'s test
    users, under the standard names."""
    from vidpop.training.rec_protocol import evaluate as protocol_evaluate

    values = protocol_evaluate(model, split, cfg)
    return {**standard_recommendation_names(values), "n_test": len(split.queries)}


def evaluate(task: str, *args: Any, **kwargs: Any) -> Any:
    """Dispatch on the task kind: ``evaluate("regression", y, pred, names, lower, upper)`` etc."""
    fns: dict[str, Callable[..., Any]] = {
        "regression": regression,
        "classification": classification,
        "ordinal": ordinal,
        "recommendation": recommendation,
    }
    if task not in fns:
        raise VidpopError(f"unknown task kind '{task}'; known: {', '.join(TASKS)}")
    return fns[task](*args, **kwargs)


def evaluate_model(
    model: Any, dataset: Any, rows: Any, y_true: Any, target_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """``evaluate(model, dataset, split)`` for a model that reads a VideoDataset itself (``consumes ==
    "dataset"``): its input for ``rows`` of ``dataset`` from ``model.prepare_inputs``, then the standard set
    of ``model.task`` against ``y_true`` (an array aligned to ``rows``, or the name of a column of
    ``dataset.videos``). Regression adds the 95% interval metrics when the model declares ``intervals``;
    classification adds the ``Spearman`` of P(class 1) when it has ``predict_proba``."""
    rows = np.asarray(rows, dtype=np.int64)
    y = dataset.videos[y_true].to_numpy("float64")[rows] if isinstance(y_true, str) else np.asarray(y_true)
    if len(y) != len(rows):
        raise VidpopError(f"{len(rows)} rows but {len(y)} targets")
    names = target_names or ([y_true] if isinstance(y_true, str) else None)
    X = model.prepare_inputs(dataset, rows)
    task = model.task
    if task == "regression":
        if "intervals" in model.capabilities:
            r = model.predict_interval(X)
            return regression(y, r["mean"], names, r["lower"], r["upper"])
        return regression(y, model.predict(X), names)
    if task == "classification":
        proba = model.predict_proba(X)[:, 1] if callable(getattr(model, "predict_proba", None)) else None
        return classification(y, model.predict(X), proba)
    if task == "ordinal":
        return ordinal(y, model.predict(X))
    raise VidpopError(f"evaluate_model covers the popularity tasks; a {task} model goes through recommendation()")
