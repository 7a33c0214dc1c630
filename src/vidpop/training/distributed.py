"""Data-parallel training on existing engines: torch.distributed + DistributedDataParallel.

``fit_module`` checks :func:`world` and, inside a process group (started by ``torchrun`` or
:func:`spawn_local`), wraps the model in DDP and gives each rank an equal shard of every global
batch, so N ranks with global batch B follow the same trajectory as one process with batch B.

The device is chosen once per process (:func:`select_device`) and the backend follows it: nccl
only with CUDA tensors (this rank's GPU), gloo on the CPU. Only rank 0 writes checkpoints
(:func:`is_main_process`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from vidpop.errors import VidpopError


def world() -> tuple[int, int]:
    """(rank, world_size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return world()[0] == 0


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK; the rank without it)."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))


#: the device this process chose (set by the first select_device(); every later call must agree)
_DEVICE: torch.device | None = None


def select_device(requested: str = "auto") -> torch.device:
    """The one device of this process: ``auto`` = this rank's GPU when CUDA is available, else the CPU;
    ``cpu``, ``cuda`` or ``cuda:N`` explicitly. Chosen once: a later, different request is an error."""
    global _DEVICE
    req = (requested or "auto").lower()
    if req == "auto":
        req = "cuda" if torch.cuda.is_available() else "cpu"
    if req == "cpu":
        dev = torch.device("cpu")
    elif req == "cuda" or req.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise VidpopError(f"device {requested!r} asked for, but CUDA is not available; use device='cpu'")
        dev = torch.device(req) if ":" in req else torch.device("cuda", local_rank() % torch.cuda.device_count())
    else:
        raise VidpopError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N")
    if _DEVICE is not None and dev != _DEVICE and requested != "auto":
        raise VidpopError(f"this process already trains on {_DEVICE}; cannot switch to {dev}")
    if _DEVICE is None or requested != "auto":
        _DEVICE = dev
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
    return _DEVICE


def backend_for(device: torch.device) -> str:
    """nccl needs CUDA tensors; everything else runs on gloo."""
    return "nccl" if device.type == "cuda" else "gloo"


def default_backend() -> str:
    """The backend of this process's device (:func:`select_device`)."""
    return backend_for(select_device("auto"))


def check_backend(device: torch.device) -> None:
    """Refuse a process group whose backend cannot carry tensors on ``device`` (nccl with CPU tensors)."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl" and device.type != "cuda":
        raise RuntimeError(f"the process group uses nccl, which needs CUDA tensors, but training runs on {device}")


def init_from_env(backend: str | None = None, device: str = "auto") -> bool:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_*), with
    the backend of this rank's device (:func:`select_device`) unless ``backend`` is given.

    Returns False (and does nothing) when the environment describes no multi-process run."""
    if dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    dist.init_process_group(backend=backend or backend_for(select_device(device)))
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_entry(rank: int, world_size: int, port: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update(
        {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(world_size)}
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
        # no rank tears gloo down while a peer may still be talking to it (seen as SIGABRT,
        # "terminate called without an active exception", in a rank that exited first)
        dist.barrier()
    finally:
        cleanup()


def spawn_local(fn: Callable[..., Any], world_size: int, *args: Any) -> None:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` local CPU processes joined by gloo on
    127.0.0.1 (tests and single-box runs; use ``torchrun`` for multi-node)."""
    import torch.multiprocessing as mp

    mp.spawn(_spawn_entry, args=(world_size, free_port(), fn, args), nprocs=world_size, join=True)


class LossModule(nn.Module):
    """Wraps ``(module, loss_fn)`` so that DDP sees the whole loss computation as one ``forward``.

    A model's loss function may call any of its sub-modules or methods; DDP's reducer hooks the
    wrapper's parameters (the model's own), so gradients are all-reduced whatever the path."""

    def __init__(self, module: nn.Module, loss_fn: Callable[[nn.Module, dict[str, torch.Tensor]], Any]) -> None:
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        return self.loss_fn(self.module, batch)


def wrap_ddp(module: nn.Module, loss_fn: Callable[..., Any]) -> nn.Module:
    """DDP over ``module`` (already on its device: DDP replicates on the device its parameters are on)."""
    from torch.nn.parallel import DistributedDataParallel

    device = next(module.parameters()).device
    check_backend(device)
    ids = [device.index] if device.type == "cuda" else None
    # find_unused_parameters: multimodal models skip a branch when a modality is masked out.
    return DistributedDataParallel(LossModule(module, loss_fn), device_ids=ids, find_unused_parameters=True)


def shard(batch: dict[str, torch.Tensor], rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """This rank's contiguous, equal-as-possible share of a global batch."""
    n = len(next(iter(batch.values())))
    per = -(-n // world_size)
    sl = slice(rank * per, min((rank + 1) * per, n))
    return {k: v[sl] for k, v in batch.items()}


def all_reduce_mean(value: float) -> float:
    _, size = world()
    if size == 1:
        return value
    # nccl reduces CUDA tensors only: the scalar goes through this process's device
    dev = _DEVICE if _DEVICE is not None and dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([value], dtype=torch.float64, device=dev)
    dist.all_reduce(t)
    return float(t.item()) / size
