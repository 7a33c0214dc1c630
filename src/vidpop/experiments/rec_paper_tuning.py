"""Tuning of the paper-protocol tables (``vidpop rec tables --val-frac F --tune-budget N``) on the
*validation users* of the user split (a seeded share of the training users, cut like the test users;
see :func:`vidpop.training.rec_protocol.make_user_split`), the same budget for each model.

Every model gets ``budget`` trials: its protocol defaults first, then its own trial list
(:data:`PAPER_TRIALS` for the interest RNN: the relevance-loss weight including 0; the baselines draw
from their leave-one-out spaces in :mod:`vidpop.experiments.rec_tuning`). A trial fits on
``split.train`` (no ground truth of a validation or test user is in it), the torch models early-stop
on the validation users' NDCG@10 inside it, and it is scored by the validation users' F@5 (the
paper's metric). Only the chosen trial is evaluated on the test users. Fitted trials are kept, so a
later table row with the same configuration (the ablation's "full" or "RNN-noRel") reuses them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.experiments.rec_tuning import trial_overrides
from vidpop.recipes.rec import Row, build_row_model
from vidpop.training.rec_protocol import ProtocolConfig, RecSplit, evaluate, evaluate_validation, fit_on_split

#: protocol defaults of the paper tables: 4,054 training users in batches of 256 are 16 Adam steps an
#: epoch (the leave-one-out defaults see ~195); batches of 64 give the RNN four times the steps
PROTOCOL_OVERRIDES: dict[str, dict[str, Any]] = {"interest_rnn": {"train.batch_size": 64}}
#: the interest RNN's trials after its defaults (the paper's relevance weight 0.2): a smaller weight, none
PAPER_TRIALS: dict[str, list[dict[str, Any]]] = {
    "interest_rnn": [{"use_relevance": False}, {"lambda_rel": 0.05}, {"train.lr": 1e-3}],
}
#: keys that define an ablation row: a row that sets one keeps its own value, whatever was chosen
SWITCHES = ("use_semantic", "use_interest", "use_relevance")


def paper_trials(model: str, budget: int, seed: int = 0) -> list[dict[str, Any]]:
    """The ``budget`` trials of ``model``: defaults, then its own list or seeded draws of its space."""
    if budget < 1:
        raise VidpopError("the tuning budget is at least 1 trial (the defaults)")
    if model in PAPER_TRIALS:
        return [{}, *PAPER_TRIALS[model]][:budget]
    return trial_overrides(model, budget, seed)


def _key(model: Any, split: RecSplit) -> str:
    """The fitted configuration (not the overrides' spelling) and the split."""
    return json.dumps([model.model_name, dataclasses.asdict(model.config), split.info], sort_keys=True, default=str)


def with_protocol(row: Row, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A row's overrides under the paper protocol: protocol defaults, the row's own, then ``extra``."""
    return {**PROTOCOL_OVERRIDES.get(row.model or "", {}), **row.overrides, **(extra or {})}


class PaperTuner:
    """Tunes rows on the validation users and evaluates them on the test users; keeps fitted trials."""

    def __init__(self, cfg: ProtocolConfig, ds: VideoDataset, budget: int, epochs: int | None, log: Any = print):
        self.cfg, self.ds, self.budget, self.epochs, self.log = cfg, ds, budget, epochs, log
        self.fitted: dict[str, tuple[Any, dict[str, Any]]] = {}  # key -> (model, its trial record)
        self.chosen: dict[str, dict[str, Any]] = {}  # registered model -> chosen trial overrides

    def fit_trial(self, row: Row, overrides: dict[str, Any], split: RecSplit) -> tuple[Any, dict[str, Any]]:
        assert row.model is not None and split.validation is not None
        model = build_row_model(Row(row.label, row.model, overrides), self.epochs, progress=self.cfg.progress)
        key = _key(model, split)
        if key not in self.fitted:
            fit_s = fit_on_split(model, split, self.cfg, self.ds)
            m = evaluate_validation(model, split.validation, self.cfg)
            rec: dict[str, Any] = {"overrides": overrides, "fit_seconds": fit_s}
            rec.update({f"val_{k}": v for k, v in m.items() if "per-user" not in k})
            for attr in ("epochs_run_", "best_epoch_", "seconds_per_epoch_"):
                if getattr(model, attr, None) is not None:
                    rec[attr.rstrip("_")] = getattr(model, attr)
            self.log(
                f"  trial {overrides or 'defaults'}: F@5={m['F@5']:.4f} NDCG@10={m['NDCG@10']:.4f} ({fit_s:.0f} s)"
            )
            self.fitted[key] = (model, rec)
        return self.fitted[key]

    def _result(self, row: Row, model: Any, rec: dict[str, Any], split: RecSplit) -> dict[str, Any]:
        t0 = time.perf_counter()
        m = evaluate(model, split, self.cfg)
        spe = getattr(model, "seconds_per_epoch_", None)
        ep = getattr(model, "epochs_run_", None)
        return {
            "label": row.label,
            "model": row.model,
            "status": "ok",
            "metrics": m,
            "fit_seconds": rec["fit_seconds"],
            "eval_seconds": time.perf_counter() - t0,
            "epochs": ep,
            "best_epoch": getattr(model, "best_epoch_", None),
            "seconds_per_epoch": spe if spe is not None else (rec["fit_seconds"] / ep if ep else None),
            "validation": {k: v for k, v in rec.items() if k.startswith("val_")},
        }

    def tune_rows(self, rows: list[Row], split: RecSplit) -> list[dict[str, Any]]:
        """Each row: its trials on validation (best F@5, then NDCG@10), the chosen one on test once."""
        out = []
        for row in rows:
            if row.model is None:
                out.append({"label": row.label, "model": None, "status": row.note or "not available"})
                continue
            self.log(f"  {row.label}: tuning on {len(split.validation.queries) if split.validation else 0} users")
            t0 = time.perf_counter()
            try:
                trials = [self.fit_trial(row, with_protocol(row, o), split) for o in self._trials(row.model)]
                best = max(range(len(trials)), key=lambda i: (trials[i][1]["val_F@5"], trials[i][1]["val_NDCG@10"]))
                res = self._result(row, *trials[best], split)
            except Exception as exc:  # report the failure in the table, keep the other rows
                out.append({"label": row.label, "model": row.model, "status": f"failed: {exc}"[:160]})
                continue
            self.chosen[row.model] = self._trials(row.model)[best]
            res.update(chosen=self.chosen[row.model], trials=[t[1] for t in trials])
            res["tuning_seconds"] = time.perf_counter() - t0
            self.log(
                f"  {row.label:22s} test F@5={res['metrics']['F@5']:.4f} chosen {self.chosen[row.model] or 'defaults'}"
            )
            out.append(res)
        return out

    def load_chosen(self, tables: dict[str, Any]) -> None:
        """Take the configurations chosen by an earlier run (its ``tables.json``), so later tables
        (short, cold, ablation) run with them without tuning the long table again."""
        for rows in tables.values():
            for res in rows if isinstance(rows, list) else []:
                if res.get("model") and isinstance(res.get("chosen"), dict) and "trials" in res:
                    self.chosen[res["model"]] = res["chosen"]
        if not self.chosen:
            raise VidpopError("no tuned rows (with 'chosen' and 'trials') in the given tables.json")

    def _trials(self, model: str) -> list[dict[str, Any]]:
        return paper_trials(model, self.budget, self.cfg.seed)

    def chosen_for(self, row: Row) -> dict[str, Any]:
        """The chosen configuration of ``row.model`` as it applies to ``row``: a switch the row sets
        itself (an ablation row) is the row's; a relevance weight only where relevance stays on."""
        tuned = self.chosen.get(row.model or "", {})
        chosen = {k: v for k, v in tuned.items() if not (k in SWITCHES and k in row.overrides)}
        if row.overrides.get("use_relevance") is True and tuned.get("use_relevance") is False:
            chosen.pop("lambda_rel", None)
        return chosen

    def run_chosen(self, rows: list[Row], split: RecSplit) -> list[dict[str, Any]]:
        """Rows with the configuration chosen earlier for their model (an RNN row keeps its ablation
        switches; its relevance weight is the chosen one only where relevance is on); a configuration
        already fitted on this split is reused, otherwise fitted now (early stopping on validation)."""
        out = []
        for row in rows:
            if row.model is None:
                out.append({"label": row.label, "model": None, "status": row.note or "not available"})
                continue
            chosen = self.chosen_for(row)
            overrides = with_protocol(row, chosen)
            try:
                model, rec = self.fit_trial(row, overrides, split)
                res = self._result(row, model, rec, split)
            except Exception as exc:
                out.append({"label": row.label, "model": row.model, "status": f"failed: {exc}"[:160]})
                continue
            res["chosen"] = chosen
            self.log(f"  {row.label:22s} test F@5={res['metrics']['F@5']:.4f}")
            out.append(res)
        return out
