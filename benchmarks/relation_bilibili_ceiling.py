"""Why the Bilibili relation task tops out where it does (issue 13): measurements beside the ablation.

* backtests: the same features and tuned LightGBM at earlier cutoffs (test windows of two years that
  end before the real test part starts, so the real test titles are never read here);
* learning curve: validation R² of the tuned LightGBM trained on the latest 25 / 50 / 75 / 100 % of the
  training titles (7-day horizon);
* crawl drift: for seasons in both crawls (Feb 2021 and Oct 2022) and released before the training end,
  R² of log views 2022 from log views 2021 — how much a season's own count moves in 20 months;
* ``--competitors``: validation R² of DNN+RN+MTL with the closest earlier vs random earlier competitors;
* ``--diagnose-test`` (only after the final numbers are in): where the test error of the final models
  comes from (mean bias, titles younger than one year at the crawl, R² by age).

Run: ``PYTHONPATH=src python -m benchmarks.relation_bilibili_ceiling [--competitors | --diagnose-test]``
(writes ``benchmarks/results/relation_bilibili/ceiling.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS
from vidpop.data.adapters import get_adapter
from vidpop.experiments import relation as exp
from vidpop.models.config import merge_config
from vidpop.models.lightgbm_baseline import LightGBMRegressor
from vidpop.training import metrics

OUT = RESULTS / "relation_bilibili"
DATA = "bilibili_bangumi_series"


def _setup() -> exp.RelationSetup:
    setup = exp.setup_for(DATA, horizons=(7,))
    params = json.loads((OUT / "tuning_lightgbm.json").read_text())["best_params"]
    return dataclasses.replace(setup, lightgbm=merge_config(setup.lightgbm, params))


def _lgb(setup: exp.RelationSetup, prep: exp.Prepared, train: np.ndarray, seed: int = 0) -> LightGBMRegressor:
    s = prep.split
    m = LightGBMRegressor(dataclasses.replace(setup.lightgbm, seed=seed))
    return m.fit(prep.features[train], prep.y[train, 0], prep.features[s.val], prep.y[s.val, 0])


def backtests(ds: Any, setup: exp.RelationSetup, real_cutoff: pd.Timestamp) -> list[dict[str, Any]]:
    out = []
    t = ds.videos["published_at"]
    for cutoff in ("2014-08-01", "2016-08-01", "2018-08-01"):
        c = pd.Timestamp(cutoff, tz="UTC")
        end = min(c + pd.DateOffset(years=2), real_cutoff - pd.Timedelta(days=7))
        prep = exp.prepare(ds, dataclasses.replace(setup, cutoff=cutoff), 7)
        test = prep.split.test[(t.iloc[prep.split.test] < end).to_numpy()]
        fits = [_lgb(setup, prep, prep.split.train, k) for k in range(3)]
        r2 = [metrics.r2(prep.y[test, 0], m.predict(prep.features[test])) for m in fits]
        row = {"cutoff": cutoff, "test_end": f"{end:%Y-%m-%d}", "n_train": len(prep.split.train)}
        out.append({**row, "n_test": len(test), "r2_mean": float(np.mean(r2)), "r2": r2})
        print("backtest", out[-1], flush=True)
    return out


def learning_curve(prep: exp.Prepared, setup: exp.RelationSetup) -> list[dict[str, Any]]:
    s, out = prep.split, []
    for frac in (0.25, 0.5, 0.75, 1.0):
        rows = s.train[-max(20, round(len(s.train) * frac)) :]  # the latest titles (s.train is sorted by position=time)
        r2 = [metrics.r2(prep.y[s.val, 0], _lgb(setup, prep, rows, k).predict(prep.features[s.val])) for k in range(3)]
        out.append({"fraction": frac, "n_train": len(rows), "val_r2_mean": float(np.mean(r2)), "val_r2": r2})
        print("learning curve", out[-1], flush=True)
    return out


def crawl_drift(ds: Any, train_end: pd.Timestamp) -> dict[str, Any]:
    old = get_adapter(DATA, crawl="2021").load().videos[["video_id", "views"]]
    v = ds.videos[["video_id", "views", "published_at"]].merge(old, on="video_id", suffixes=("", "_2021"))
    v = v[(v["published_at"] < train_end) & (v["views_2021"] > 0) & (v["views"] > 0)]
    a, b = np.log1p(v["views_2021"].to_numpy(float)), np.log1p(v["views"].to_numpy(float))
    slope, icpt = np.polyfit(a, b, 1)
    growth = b - a
    return {"n": len(v), "r2_linear_2021_to_2022": metrics.r2(b, slope * a + icpt), "slope": float(slope),
            "median_log_growth": float(np.median(growth)), "std_log_growth": float(growth.std())}  # fmt: skip


def diagnose_test(ds: Any) -> dict[str, Any]:
    """Test-part diagnostics of the final ablation's models (read after the choice; changes nothing)."""
    result = json.loads((OUT / "ablation.json").read_text())
    setup = exp.setup_for(DATA, horizons=(7,))
    setup = dataclasses.replace(
        setup,
        lightgbm=merge_config(setup.lightgbm, json.loads((OUT / "tuning_lightgbm.json").read_text())["best_params"]),
    )
    prep = exp.prepare(ds, setup, 7)
    s = prep.split
    pred = np.mean([_lgb(setup, prep, s.train, k).predict(prep.features[s.test]) for k in range(3)], axis=0)
    y = prep.y[s.test, 0]
    crawl = ds.videos["published_at"].max()
    age = (crawl - ds.videos["published_at"].iloc[s.test]).dt.days.to_numpy()
    bias = float((pred - y).mean())
    out: dict[str, Any] = {
        "model": "LightGBM (tuned), 3-seed mean",
        "r2": metrics.r2(y, pred),
        "r2_bias_removed": metrics.r2(y, pred - bias),
        "mean_bias_log": bias,
        "val_mean_bias_log": float(
            np.mean([(_lgb(setup, prep, s.train, 0).predict(prep.features[s.val]) - prep.y[s.val, 0]).mean()])
        ),
        "by_age_days": {},
        "ablation_r2_7d": {k: v["r2"] for k, v in result["horizons"]["7"]["rows"].items()},
    }
    for lo, hi in ((0, 365), (365, 730), (730, 10_000)):
        k = (age >= lo) & (age < hi)
        out["by_age_days"][f"{lo}-{hi}"] = {"n": int(k.sum()), "r2": metrics.r2(y[k], pred[k]),
                                            "bias": float((pred[k] - y[k]).mean())}  # fmt: skip
    print("test diagnosis", out, flush=True)
    return out


def competitor_control(ds: Any) -> dict[str, Any]:
    """Validation R² of the tuned DNN+RN+MTL (3 seeds) with the paper's competitors (the 3 closest earlier
    releases) and with 3 random earlier titles instead: does the relation network read the competition?"""
    from vidpop.experiments import relation_tuning as tuning

    setup = exp.setup_for(DATA, horizons=(7,))
    params = json.loads((OUT / "tuning_relation_mtl.json").read_text())["best_params"]
    setup = dataclasses.replace(setup, model=tuning.apply_params(setup.model, params))
    prep = exp.prepare(ds, setup, 7)
    order = np.argsort(pd.to_datetime(ds.videos["published_at"], utc=True).to_numpy(), kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    rng = np.random.default_rng(0)
    random_rel = np.full_like(prep.related, -1)
    for i in range(len(random_rel)):
        if rank[i]:
            random_rel[i] = order[rng.integers(0, rank[i], size=random_rel.shape[1])]
    out = {}
    for name, rel in (("closest_earlier", prep.related), ("random_earlier", random_rel)):
        p = dataclasses.replace(prep, related=rel)
        r2 = [exp.run_variant(p, "DNN+RN+MTL", setup, seed=k)[0]["val_r2"] for k in range(3)]
        out[name] = {"val_r2_mean": float(np.mean(r2)), "val_r2": r2}
        print("competitors", name, out[name], flush=True)
    return out


def main() -> None:
    cpu0 = time.process_time()
    ds = exp.load_dated(DATA)
    setup = _setup()
    prep = exp.prepare(ds, setup, 7)
    real_cutoff = pd.Timestamp(prep.split.info["cutoff"])
    path = OUT / "ceiling.json"
    res: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if "--diagnose-test" in sys.argv:
        res["test_diagnosis"] = diagnose_test(ds)
    elif "--competitors" in sys.argv:
        res["competitor_control"] = competitor_control(ds)
    else:
        res["crawl_drift"] = crawl_drift(ds, pd.Timestamp(prep.split.info["train_end"]))
        print("crawl drift", res["crawl_drift"], flush=True)
        res["learning_curve"] = learning_curve(prep, setup)
        res["backtests"] = backtests(ds, setup, real_cutoff)
    res["cpu_seconds_last_run"] = time.process_time() - cpu0
    res["loadavg_1_5_15_last_run"] = list(os.getloadavg())
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
