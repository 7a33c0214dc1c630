"""(d) Training speed on MicroLens: seconds per epoch of every recommender on ALL users.

The data are the leave-one-out training view of ``vidpop rec loo`` (all 50,000 users, the whole
catalogue; the text models' topic/TF-IDF fits on the same users). Each model trains one epoch (one
ALS sweep for LFM; the whole fit for models without epochs) in its own forked process, so that
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is that model's peak RSS and ``process_time`` its CPU
seconds. Torch models time their own epoch (without the validation pass); torch uses
``VIDPOP_BENCH_THREADS`` threads (default 2). Restrict the models with ``VIDPOP_BENCH_MODELS=a,b``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import resource
import time
from typing import Any

from benchmarks.common import Table, report
from vidpop.data.adapters import get_adapter
from vidpop.features.item_features import attach_item_features
from vidpop.models import build_model
from vidpop.training.rec_protocol import ProtocolConfig, RecSplit, loo_split, needed_item_features

THREADS = int(os.environ.get("VIDPOP_BENCH_THREADS", "2"))
#: (registered model, what one "epoch" is)
MODELS: list[tuple[str, str]] = [
    ("rec_random", "whole fit"),
    ("rec_pop", "whole fit"),
    ("rec_itemknn", "whole fit"),
    ("rec_lfm", "one ALS sweep"),
    ("rec_fpmc", "one epoch"),
    ("rec_sasrec", "one epoch"),
    ("interest_rnn", "one epoch"),
    ("rec_mknn", "whole fit"),
    ("rec_cb", "whole fit"),
    ("rec_sca", "whole fit"),
]
_SPLIT: dict[str, RecSplit] = {}  # filled before forking: the children share it copy-on-write


def _one_epoch(name: str) -> Any:
    model = build_model(name)
    cfg = model.config
    # val_fraction 0: the interest RNN would hold out 2 % of the users for early stopping, which one
    # epoch does not use, and the figure is an epoch over all users
    for attr, value in (("iterations", 1), ("progress", False), ("val_fraction", 0.0)):
        if hasattr(cfg, attr):
            setattr(cfg, attr, value)
    if dataclasses.is_dataclass(getattr(cfg, "train", None)):
        cfg.train = dataclasses.replace(cfg.train, epochs=1, progress=False, patience=0, num_threads=THREADS)
    return model


def _child(name: str, queue: Any) -> None:
    import torch

    torch.set_num_threads(THREADS)
    split = _SPLIT["loo"]
    try:
        model = _one_epoch(name)
        kinds = needed_item_features(model)
        if kinds:
            attach_item_features(split.train, _SPLIT["ds"], kinds, progress=False)  # type: ignore[arg-type]
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(split.train)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        own = getattr(model, "seconds_per_epoch_", None)
        queue.put(
            {
                "seconds_per_epoch": float(own) if own else wall,
                "fit_seconds": wall,
                "cpu_seconds": cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    except Exception as exc:  # one failing model must not hide the others
        queue.put({"error": f"{type(exc).__name__}: {exc}"[:200]})


def run() -> dict[str, Any]:
    ds = get_adapter("microlens").load()
    split = loo_split(ds, ProtocolConfig(progress=False))
    _SPLIT.update(loo=split, ds=ds)  # type: ignore[dict-item]
    wanted = [m for m in os.environ.get("VIDPOP_BENCH_MODELS", "").split(",") if m]
    models = [(n, w) for n, w in MODELS if not wanted or n in wanted]
    n_inter = sum(len(s) for s in split.train.sequences)
    title = (
        f"Training speed on MicroLens, all {split.train.n_users:,} users ({n_inter:,} training interactions, "
        f"{split.train.n_items:,} items), torch threads {THREADS}, load {os.getloadavg()[0]:.1f}"
    )
    table = Table(title, ["model", "unit", "s/epoch", "CPU s", "peak RSS MB", "note"])
    out: dict[str, Any] = {"users": split.train.n_users, "interactions": n_inter, "threads": THREADS, "models": {}}
    ctx = mp.get_context("fork")
    for name, unit in models:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, queue))
        proc.start()
        res = queue.get()
        proc.join()
        if "error" in res:
            table.add(name, unit, None, None, None, res["error"])
        else:
            table.add(name, unit, res["seconds_per_epoch"], res["cpu_seconds"], res["peak_rss_mb"], "")
        out["models"][name] = {"unit": unit, "has_epochs": unit != "whole fit", **res}
        print(f"{name}: {res}", flush=True)
    report("training_speed", [table], out)
    return out


if __name__ == "__main__":
    run()
