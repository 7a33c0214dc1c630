"""Validation-only evaluation and timing of ``interest_rnn`` on MicroLens leave-one-out.

The leave-one-out split of :func:`vidpop.training.rec_protocol.loo_split` fits on all but the last two
items of every user; the second-to-last (the *validation* item) is never fitted. This script ranks the
validation item from the training items only (full ranking, seen excluded), so hyper-parameters are
chosen without looking at the test item. ``--test`` additionally evaluates the test item with the
protocol's own queries (only for the final, already chosen configuration).

    PYTHONPATH=src python -m benchmarks.tune_interest_rnn --set hidden=256 --set train.epochs=6 [--users 15000]

``--users N`` keeps a seeded sample of N users (a cheaper tuning budget); per-epoch CPU and wall seconds
are printed, so the same command also measures training speed.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.adapters import get_adapter
from vidpop.data.schema import VideoDataset
from vidpop.features.item_features import attach_item_features
from vidpop.models import build_model
from vidpop.models.recommender import UserQuery
from vidpop.training.rec_protocol import ProtocolConfig, RecSplit, evaluate, loo_split, needed_item_features


def validation_split(split: RecSplit) -> RecSplit:
    """Queries = the fitted items of each evaluated user; truth = that user's validation item (a miss
    when it is outside the vocabulary, as in the test evaluation)."""
    row = {u: i for i, u in enumerate(np.asarray(split.train.user_ids, dtype=str))}
    queries, truth, oov = [], [], []
    for q, u in zip(split.queries, split.test_user_ids, strict=True):
        i = row.get(str(u))
        if i is None or not len(split.train.sequences[i]):
            continue
        seq, tim = split.train.sequences[i], split.train.times[i]
        in_vocab = len(q.history) == len(seq) + 1  # history = fitted items + the validation item if known
        queries.append(UserQuery(history=seq, times=tim))
        truth.append(np.asarray(q.history[-1:] if in_vocab else [], np.int64))
        oov.append(0 if in_vocab else 1)
    return RecSplit(split.train, queries, truth, np.asarray(oov, np.int64), split.test_user_ids, split.truth_rows, {})


def parse_sets(sets: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in sets:
        key, value = item.split("=", 1)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parsed
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[], help="config override key=value (train.x for TrainConfig)")
    ap.add_argument("--users", type=int, default=None, help="seeded sample of users (tuning budget)")
    ap.add_argument("--test", action="store_true", help="also evaluate the test item (final configuration only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-users", type=int, default=None, help="evaluate a seeded sample of N users (all fitted)")
    ap.add_argument("--save", default=None, help="save the fitted model to this folder")
    args = ap.parse_args()
    import dataclasses

    import torch

    torch.set_num_threads(args.threads)
    ds = get_adapter("microlens").load()
    if args.users:
        users = pd.unique(ds.interactions["user_id"])
        keep = set(np.random.default_rng(0).choice(users, min(args.users, len(users)), replace=False))
        inter = ds.interactions[ds.interactions["user_id"].isin(keep)].reset_index(drop=True)
        ds = VideoDataset(ds.name, videos=ds.videos, interactions=inter, meta=ds.meta)
    cfg = ProtocolConfig(progress=False, max_test_users=args.eval_users)
    split = loo_split(ds, cfg)
    sets = parse_sets(args.set)
    train_over = sets.pop("train", {})
    model = build_model("interest_rnn", **sets)
    model.config.train = dataclasses.replace(model.config.train, **train_over)
    attach_item_features(split.train, ds, needed_item_features(model), progress=False)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.fit(split.train)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    prep = {k: round(v, 1) for k, v in model.timings_.items() if "per_epoch" not in k}
    epochs = model.epochs_run_
    print(f"config: {sets} train={train_over}; users={split.train.n_users} items={split.train.n_items}")
    print(f"preparation seconds: {prep}")
    print(
        f"fit: {epochs} epochs, wall {wall:.1f} s, CPU {cpu:.1f} s; per epoch wall {model.seconds_per_epoch_:.1f} s, "
        f"CPU {model.timings_['cpu_seconds_per_epoch']:.1f} s"
    )
    print("history:", [{k: round(v, 4) for k, v in e.items()} for e in model.history_["epochs"]])
    if args.save:
        model.save(args.save)
    # generation (greedy as in the paper, or top-k of one softmax) is chosen on the validation item too
    vals = {}
    for greedy in (True, False):
        model.config.greedy = greedy
        vals[greedy] = evaluate(model, validation_split(split), cfg)
        print(f"VALIDATION greedy={greedy} HR@10={vals[greedy]['HR@10']:.4f} NDCG@10={vals[greedy]['NDCG@10']:.4f}")
    if args.test:
        model.config.greedy = max(vals, key=lambda g: vals[g]["HR@10"])
        test = evaluate(model, split, cfg)
        print(f"TEST greedy={model.config.greedy} HR@10={test['HR@10']:.4f} NDCG@10={test['NDCG@10']:.4f}")


if __name__ == "__main__":
    main()
