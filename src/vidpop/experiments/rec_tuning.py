"""Tuning of the recommenders on the leave-one-out *validation* item, the same budget for each.

Every model gets ``budget`` trials: its defaults first, then configurations drawn (seeded, without
repeats) from its search space in :data:`SEARCH_SPACES`. A trial fits on ``split.train`` (the test
and validation items are not in it) and is scored by NDCG@10 on a seeded sample of validation users;
the best trial's fitted model is the one evaluated on the test items, once. The torch models also
early-stop on the validation item inside each trial (their ``fit(validation=...)``).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.recommender import Recommender
from vidpop.recipes.rec import Row, build_row_model
from vidpop.training.rec_protocol import (
    ProtocolConfig,
    RecSplit,
    evaluate,
    evaluate_validation,
    fit_on_split,
)

#: search space per registered model (dotted keys set nested configs, e.g. ``train.lr``)
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "rec_itemknn": {
        "neighbours": [20, 50, 100, 200, 500],
        "shrink": [0.0, 10.0, 50.0, 100.0],
        "recency": [1.0, 0.8, 0.6, 0.4],
    },
    "rec_lfm": {
        "factors": [32, 64, 128],
        "reg": [0.01, 0.1, 1.0, 10.0],
        "alpha": [5.0, 10.0, 20.0, 40.0],
        "iterations": [10, 15],
    },
    "rec_fpmc": {
        "dim": [32, 64, 128],
        "window": [5, 10, 20],
        "train.lr": [1e-3, 3e-3, 1e-2],
        "train.weight_decay": [0.0, 1e-6, 1e-5],
    },
    "rec_sasrec": {
        "n_negatives": [1024, 0],  # sampled softmax, or 0 = the full one
        "dropout": [0.2, 0.3, 0.5],
        "train.lr": [5e-4, 1e-3, 2e-3],
        "dim": [64],
        "layers": [2],
    },
    # the softmax's width (d_interest, most of an epoch) stays at 64 so that every trial costs about the
    # defaults' ~95 CPU s per epoch (at most 15 epochs, patience 3, in every trial); lr 1e-3 is left out
    # (at 3e-3 validation NDCG@10 still rose at epoch 8); relevance loss on or off (the paper tables chose off)
    "interest_rnn": {
        "train.lr": [3e-3, 5e-3],
        "hidden": [128, 256],
        "dropout": [0.1, 0.2, 0.3],
        "decay": [0.05, 0.1, 0.2],
        "use_relevance": [True, False],
    },
}


def trial_overrides(model: str, budget: int, seed: int = 0) -> list[dict[str, Any]]:
    """The ``budget`` configurations tried for ``model``: defaults, then seeded random draws of its space
    (fewer when the space is smaller; a model without a space has its defaults only). A draw that is
    the defaults again is passed over for the next one: it would spend a trial of the budget on a
    configuration already tried (other draws stay the ones the same seed always gave)."""
    if budget < 1:
        raise VidpopError("the tuning budget is at least 1 trial (the defaults)")
    space = SEARCH_SPACES.get(model)
    if not space:
        return [{}]
    keys = sorted(space)
    grid = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(space[k] for k in keys))]
    defaults = build_row_model(Row(model, model, {})).config

    def differs(overrides: dict[str, Any]) -> bool:  # built as a trial is, so dotted keys resolve the same way
        return build_row_model(Row(model, model, overrides)).config != defaults

    fresh = (grid[i] for i in np.random.default_rng(seed).permutation(len(grid)) if differs(grid[i]))
    return [{}, *itertools.islice(fresh, budget - 1)]


@dataclass
class TuneResult:
    model: Recommender
    overrides: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    fit_seconds: float = 0.0  # of the chosen trial
    seconds: float = 0.0  # of all trials


def tune(
    row: Row,
    split: RecSplit,
    cfg: ProtocolConfig,
    ds: VideoDataset | None,
    budget: int,
    val_users: int | None = 10000,
    log: Any = print,
) -> TuneResult:
    """Fit every trial of ``row`` on ``split.train``; keep the one with the best validation NDCG@10."""
    if split.validation is None or not split.validation.queries:
        raise VidpopError("tuning needs a validation item per user: use the leave-one-out split")
    assert row.model is not None
    validation = split.validation.subset(val_users, cfg.seed)
    t_all = time.perf_counter()
    best: TuneResult | None = None
    best_score = -1.0
    trials = []
    for overrides in trial_overrides(row.model, budget, cfg.seed):
        model = build_row_model(Row(row.label, row.model, {**row.overrides, **overrides}), progress=cfg.progress)
        fit_s = fit_on_split(model, split, cfg, ds)
        m = evaluate_validation(model, validation, cfg)
        trial = {"overrides": overrides, "val_NDCG@10": m["NDCG@10"], "val_HR@10": m["HR@10"], "fit_seconds": fit_s}
        for attr in ("epochs_run_", "best_epoch_", "seconds_per_epoch_"):
            if getattr(model, attr, None) is not None:
                trial[attr.rstrip("_")] = getattr(model, attr)
        trials.append(trial)
        name = f"{overrides or 'defaults'}" + (f" on {row.overrides}" if row.overrides else "")
        log(f"    trial {name}: val HR@10={m['HR@10']:.4f} NDCG@10={m['NDCG@10']:.4f} ({fit_s:.0f} s)")
        if m["NDCG@10"] > best_score:
            best_score = m["NDCG@10"]
            best = TuneResult(model, overrides, fit_seconds=fit_s)
    assert best is not None
    best.trials, best.seconds = trials, time.perf_counter() - t_all
    return best


def _per_epoch(tr: TuneResult) -> float | None:
    own = getattr(tr.model, "seconds_per_epoch_", None)  # torch models time their epochs without validation
    epochs = getattr(tr.model, "epochs_run_", None)
    return own if own is not None else (tr.fit_seconds / epochs if epochs else None)


def tune_and_test(
    rows: list[Row],
    split: RecSplit,
    cfg: ProtocolConfig,
    ds: VideoDataset | None,
    budget: int,
    val_users: int | None = 10000,
    log: Any = print,
) -> list[dict[str, Any]]:
    """For every row: tune on validation, then evaluate the chosen model on the test items once."""
    out = []
    for row in rows:
        res: dict[str, Any] = {"label": row.label, "model": row.model}
        if row.model is None:
            res["status"] = row.note or "not available"
            out.append(res)
            continue
        log(f"  {row.label}: {len(trial_overrides(row.model, budget, cfg.seed))} trial(s)")
        try:
            tr = tune(row, split, cfg, ds, budget, val_users, log)
            t0 = time.perf_counter()
            m = evaluate(tr.model, split, cfg)
        except Exception as exc:  # report the failure in the table, keep the other rows
            res["status"] = f"failed: {type(exc).__name__}: {exc}"[:160]
        else:
            res.update(
                status="ok",
                metrics=m,
                fit_seconds=tr.fit_seconds,
                eval_seconds=time.perf_counter() - t0,
                tuning_seconds=tr.seconds,
                chosen=tr.overrides,
                trials=tr.trials,
                epochs=getattr(tr.model, "epochs_run_", None),
                seconds_per_epoch=_per_epoch(tr),
            )
            chosen = tr.overrides or "defaults"
            log(f"  {row.label:22s} HR@10={m['HR@10']:.4f} NDCG@10={m['NDCG@10']:.4f} chosen {chosen}")
        out.append(res)
    return out
