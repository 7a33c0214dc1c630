"""The training loop's intra-op threads: one for a small model (its products are too small to split, and
on a shared 2-core machine two threads made a 2-layer PoE 15x slower), torch's own count for a large
one, an explicit ``num_threads`` always, and the caller's setting restored afterwards. SYNTHETIC data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vidpop.training.loop import SMALL_MODULE_PARAMS, TrainConfig, fit_module, intra_op_threads


def _threads_seen_while_fitting(module: nn.Module, cfg: TrainConfig) -> int:
    seen: list[int] = []
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(32, 4)).astype(np.float32), "y": rng.normal(size=(32, 1)).astype(np.float32)}

    def loss(m: nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        seen.append(torch.get_num_threads())
        return ((m(b["x"]) - b["y"]) ** 2).mean(), {}

    fit_module(module, loss, data, None, cfg)
    return seen[0]


@pytest.fixture
def two_threads() -> object:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_small_model_trains_on_one_thread_and_restores_the_callers(two_threads: object) -> None:
    cfg = TrainConfig(epochs=1, batch_size=16, progress=False)
    assert _threads_seen_while_fitting(nn.Linear(4, 1), cfg) == 1
    assert torch.get_num_threads() == 2  # restored


def test_explicit_threads_win_and_large_models_keep_torchs_count(two_threads: object) -> None:
    cfg = TrainConfig(epochs=1, batch_size=16, progress=False, num_threads=2)
    assert _threads_seen_while_fitting(nn.Linear(4, 1), cfg) == 2
    big = nn.Sequential(nn.Linear(4, 1100), nn.Linear(1100, 1000), nn.Linear(1000, 1))
    assert sum(p.numel() for p in big.parameters()) > SMALL_MODULE_PARAMS
    assert intra_op_threads(big, TrainConfig()) == 2
    # embedding tables are lookups, not products: they do not make a model "large"
    emb = nn.Sequential(nn.Embedding(100_000, 32), nn.Linear(32, 1))
    assert intra_op_threads(emb, TrainConfig()) == 1
