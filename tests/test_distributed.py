"""DDP on 2 local CPU ranks (gloo) follows the single-process trajectory with the same global batch."""

from pathlib import Path

import numpy as np
import torch

from vidpop.training import distributed
from vidpop.training.loop import TrainConfig, fit_module


def _data() -> dict[str, np.ndarray]:
    """Synthetic regression data (labelled as such): 64 rows, 6 features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    return {"x": x, "y": (x @ rng.normal(size=(6, 1))).astype(np.float32)}


def _net() -> torch.nn.Module:
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def _loss(m: torch.nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    return torch.nn.functional.mse_loss(m(b["x"]), b["y"]), {}


CFG = TrainConfig(epochs=3, batch_size=16, lr=0.05, optimizer="sgd", patience=0, grad_clip=None, progress=False)


def _train_rank(rank: int, world_size: int, out: str) -> None:
    net = _net()
    sizes: list[int] = []

    def loss(m: torch.nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        sizes.append(len(b["x"]))
        return _loss(m, b)

    hist = fit_module(net, loss, _data(), None, CFG)
    if distributed.is_main_process():  # checkpoints come from rank 0 only
        torch.save({"state": net.state_dict(), "losses": [e["train_loss"] for e in hist.epochs], "sizes": sizes}, out)


def test_ddp_two_ranks_matches_single_process(tmp_path: Path) -> None:
    out = tmp_path / "rank0.pt"
    distributed.spawn_local(_train_rank, 2, str(out))
    ddp = torch.load(out)
    assert set(ddp["sizes"]) == {CFG.batch_size // 2}  # each rank trains on half of each global batch

    net = _net()
    hist = fit_module(net, _loss, _data(), None, CFG)
    single_losses = [e["train_loss"] for e in hist.epochs]

    np.testing.assert_allclose(ddp["losses"], single_losses, rtol=1e-4, atol=1e-5)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(ddp["state"][k], v, rtol=1e-4, atol=1e-5)
    # the checkpoint written by rank 0 loads into a plain single-process model
    plain = _net()
    plain.load_state_dict(ddp["state"])
    assert not distributed.world()[1] > 1


def test_shard_splits_a_global_batch_evenly() -> None:
    b = {"x": torch.arange(10)}
    parts = [distributed.shard(b, r, 2)["x"].tolist() for r in range(2)]
    assert parts == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
