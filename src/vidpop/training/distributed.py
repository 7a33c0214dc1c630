"""Data-parallel training on existing engines: torch.distributed + DistributedDataParallel.

``fit_module`` checks :func:`world` and, inside a process group (started by ``torchrun`` or
:func:`spawn_local`), wraps the model in DDP and gives each rank an equal shard of every global
batch, so N ranks with global batch B follow the same trajectory as one process with batch B.
gloo on CPU, nccl when GPUs exist. Only rank 0 should write checkpoints (:func:`is_main_process`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """(rank, world_size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return world()[0] == 0


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_*).

    Returns False (and does nothing) when the environment describes no multi-process run."""
    if dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    dist.init_process_group(backend=backend or default_backend())
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
    from torch.nn.parallel import DistributedDataParallel

    # find_unused_parameters: multimodal models skip a branch when a modality is masked out.
    return DistributedDataParallel(LossModule(module, loss_fn), find_unused_parameters=True)


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
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / size
