"""CPU seconds of one ``interest_rnn`` training batch at MicroLens-50k shapes, and the epoch they imply.

Shapes are real: the 50,000 users' leave-one-out training lengths (from ``MicroLens-50k_pairs.tsv``),
the 19,738-item catalogue, 384-d title vectors, 20 topics, the default config (full softmax, cold-start
step, L_int, L_rel). Item ids, vectors and relevance partners are random: the cost of a batch depends
on shapes, not on which videos they are. CPU seconds on one thread are quoted because wall time on a
shared machine measures the neighbours (and OpenMP threads spin while they wait).

    VIDPOP_DATA=/work/shared/data PYTHONPATH=src python -m benchmarks.bench_interest_rnn_batch
    (VIDPOP_BENCH_THREADS=2 for the two-core figure; wall time then depends on the machine's load)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from vidpop.models.interest_rnn.model import InterestRNNConfig
from vidpop.models.interest_rnn.network import InterestRNNNet, NetDims
from vidpop.models.interest_rnn.objective import InterestObjective

N_ITEMS, D_TEXT, N_TOPICS = 19_738, 384, 20


def main(n_batches: int = 4) -> None:
    threads = int(os.environ.get("VIDPOP_BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    pairs = Path(os.environ.get("VIDPOP_DATA", "data")) / "microlens" / "MicroLens-50k_pairs.tsv"
    lengths = np.array([len(line.split("\t")[1].split()) for line in pairs.read_text().splitlines()])
    train_len = np.clip(lengths - 2, 1, 50)  # leave-one-out: the last two items are held out
    cfg, users = InterestRNNConfig(), len(train_len)
    torch.manual_seed(0)
    seq = torch.randint(0, N_ITEMS, (users, 50))
    tim = torch.arange(50, dtype=torch.float32).expand(users, 50).contiguous()
    dims = NetDims(N_ITEMS, D_TEXT, 0, 0, N_TOPICS)
    net = InterestRNNNet(dims, cfg.d_e, cfg.d_interest, cfg.hidden, True, True, cfg.decay, cfg.dropout)
    net.item_topics.copy_(torch.rand(N_ITEMS, N_TOPICS))
    obj = InterestObjective(cfg, seq, tim, torch.from_numpy(train_len), 0, None, np.random.default_rng(0), users)
    everyone = torch.ones(users, dtype=torch.bool)
    obj.triplets = (torch.randint(0, users, (users,)), torch.randint(0, users, (users,)), everyone)
    opt = torch.optim.Adam(net.parameters(), cfg.train.lr)
    order, bs = torch.randperm(users), cfg.train.batch_size
    seconds, walls = [], []
    for i in range(n_batches):
        clock, wall = time.process_time(), time.perf_counter()
        opt.zero_grad()
        loss, _ = obj(net, {"user": order[i * bs : (i + 1) * bs]})
        loss.backward()
        opt.step()
        seconds.append(time.process_time() - clock)
        walls.append(time.perf_counter() - wall)
    per_batch = float(np.mean(seconds[1:]))  # the first batch pays one-off allocations
    per_epoch = int(np.ceil(users * (1 - cfg.val_fraction) / bs))
    print(f"{users} users, mean training length {train_len.mean():.2f}, {per_epoch} batches of {bs} per epoch")
    shown = [round(s, 2) for s in seconds]
    print(f"CPU s per batch ({threads} thread(s)): {shown} -> one epoch ~{per_batch * per_epoch:.0f} CPU s")
    wall_batch = float(np.mean(walls[1:]))
    print(f"wall s per batch: {[round(w, 2) for w in walls]} -> one epoch ~{wall_batch * per_epoch:.0f} s wall")


if __name__ == "__main__":
    main()
