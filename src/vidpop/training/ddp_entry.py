"""Run one training job in this process, or as one rank of a DistributedDataParallel group.

Engine level: it knows nothing about datasets. A *recipe* (:mod:`vidpop.recipes`) turns ``--data`` into a
:class:`TrainJob`; :func:`run_job` fits it and writes the model folder. The torchrun entry point is
``python -m vidpop.recipes`` (``vidpop train ... --nproc N`` launches it)::

    torchrun --nproc-per-node 2 -m vidpop.recipes mlp --data features.npz --out runs/mlp

Nothing here is a training loop: every model trains through its own ``fit``, which calls the shared
:func:`~vidpop.training.loop.fit_module`; inside a process group that wraps the network in DDP and
gives each rank an equal shard of every global batch (gloo on CPU, nccl on GPUs). So N ranks with
``train.batch_size = B`` follow the single-process trajectory with batch B — exactly for models
without dropout/batch norm (a test checks), statistically otherwise. Only rank 0 writes the model
folder (loadable in a single process by :func:`vidpop.models.base.load_model`), including
``train_report.json`` (loss per epoch, world size, batch sizes, seconds) and ``recipe.json``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidpop.config import parse_key_values
from vidpop.errors import VidpopError
from vidpop.training import distributed
from vidpop.training.loop import seed_everything


def dist_barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


@dataclass
class TrainJob:
    """A model ready to ``fit(*args, **kwargs)`` and a one-line description of its data."""

    model: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    #: what the recipe was given (data, seed, limit, split ...), saved as ``recipe.json`` so that
    #: ``vidpop evaluate`` can rebuild the same test split and serving knows the model's inputs
    recipe: dict[str, Any] = field(default_factory=dict)


def _nested(config: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise VidpopError(f"--set {key}: '{p}' is a value, not a table of options")
    node[leaf] = value


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["hidden=[64,32]", "train.epochs=3", "dropout=0"]`` -> nested config dict (JSON values, else str)."""
    config: dict[str, Any] = {}
    for key, value in parse_key_values(pairs, "--set").items():
        _nested(config, key, value)
    return config


def run_job(build: Callable[[], TrainJob], model: str, out: str | Path) -> dict[str, Any]:
    """Join the torchrun group if there is one, build the job (the recipe), fit it, and let rank 0 save
    the model folder to ``out`` atomically. Returns the training report."""
    joined = distributed.init_from_env()
    world_size = distributed.world()[1]
    if joined and not os.environ.get("OMP_NUM_THREADS"):
        # torchrun sets OMP_NUM_THREADS=1 unless told otherwise; keep the cores shared fairly
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    try:
        job = build()
        cfg = getattr(job.model.config, "train", None)
        if world_size > 1 and cfg is None:
            raise VidpopError(f"{model} does not train by gradient steps; run it with --nproc 1")
        if world_size > 1 and cfg.batch_size % world_size:
            raise VidpopError(f"train.batch_size {cfg.batch_size} must divide evenly over {world_size} ranks")
        # same initial weights in a fresh torchrun rank and in a long-lived process
        seed_everything(cfg.seed if cfg is not None else 0)
        t0 = time.perf_counter()
        job.model.fit(*job.args, **job.kwargs)
        seconds = time.perf_counter() - t0
        history = getattr(job.model, "history_", {}) or {}
        report = {
            "model": model,
            "rank": distributed.world()[0],
            "data": job.data,
            "world_size": world_size,
            "global_batch": cfg.batch_size if cfg is not None else None,
            "per_rank_batch": cfg.batch_size // world_size if cfg is not None else None,
            "backend": distributed.default_backend() if world_size > 1 else "none",
            "seconds": round(seconds, 3),
            "epochs": history.get("epochs", []) if isinstance(history, dict) else [],
        }
        if distributed.is_main_process():  # checkpoints from rank 0 only
            extra = {"train_report.json": report, "recipe.json": {"model": model, **job.recipe}}
            job.model.save(Path(out), extra_json=extra)
        if joined:
            dist_barrier()  # every rank leaves together: no gloo teardown while rank 0 still writes
        return report
    finally:
        if joined:
            distributed.cleanup()


def torchrun_command(module: str, args: Sequence[str], nproc: int, port: int | None = None) -> list[str]:
    """``python -m torch.distributed.run`` for ``nproc`` local ranks running ``python -m module args``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
    cmd += ["--master-addr", "127.0.0.1", "--master-port", str(port or distributed.free_port())]
    return [*cmd, "-m", module, *args]
