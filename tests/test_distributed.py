"""DDP on 2 local CPU ranks (gloo) follows the single-process trajectory with the same global batch."""

from pathlib import Path

import numpy as np
import pytest
import torch

from vidpop.errors import VidpopError
from vidpop.training import distributed
from vidpop.training.loop import TrainConfig, fit_module, predict_batched


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


# ------------------------------------------------------------------ device and backend (issue 16 §5)
@pytest.fixture
def fresh_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "_DEVICE", None)


def test_device_is_chosen_once_and_named_devices_are_checked(fresh_device: None) -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert distributed.select_device("auto").type == want
    assert distributed.select_device("auto") is distributed.select_device("auto")  # chosen once
    with pytest.raises(VidpopError, match="unknown device"):
        distributed.select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(VidpopError, match="CUDA is not available"):
            distributed.select_device("cuda")


def test_auto_device_on_a_gpu_box_is_this_ranks_gpu_and_backend_follows(
    fresh_device: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU decision, run on the CPU: CUDA reported present, 2 GPUs, local rank 1."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    chosen: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "1")
    dev = distributed.select_device("auto")
    assert dev == torch.device("cuda", 1) and chosen == [dev]
    assert distributed.backend_for(dev) == "nccl" and distributed.backend_for(torch.device("cpu")) == "gloo"
    with pytest.raises(VidpopError, match="already trains on cuda:1"):
        distributed.select_device("cpu")


def test_nccl_only_with_cuda_tensors(fresh_device: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA box training on the CPU joins the group with gloo (the old code picked nccl for CPU
    tensors), and a nccl group refuses a CPU module."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    backends: list[str] = []
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend: backends.append(backend))
    assert distributed.init_from_env(device="cpu")
    assert backends == ["gloo"]
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "get_backend", lambda: "nccl")
    with pytest.raises(RuntimeError, match="nccl, which needs CUDA tensors"):
        distributed.check_backend(torch.device("cpu"))


def test_fit_module_trains_on_the_chosen_device_and_hands_back_a_cpu_module(fresh_device: None) -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # the GPU path: same code, guarded
    for device in devices:
        distributed._DEVICE = None
        net = _net()
        seen: list[str] = []

        def record(m: torch.nn.Module, epoch: int, seen: list[str] = seen) -> dict[str, float]:
            seen.append(_param_device(m))
            return {}

        cfg = TrainConfig(epochs=2, batch_size=16, progress=False, device=device)
        fit_module(net, _loss, _data(), _data(), cfg, epoch_callback=record)
        assert seen == [device, device]
        assert _param_device(net) == "cpu"
        pred = predict_batched(net, lambda m, b: m(b["x"]), _data())
        assert pred.shape == (64, 1)


def _param_device(m: torch.nn.Module) -> str:
    return next(m.parameters()).device.type
