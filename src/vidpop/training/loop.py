"""The one training loop: seeded, mini-batched, early stopping on validation loss, progress bar.

Models supply an ``nn.Module`` and a ``loss_fn(module, batch) -> (loss, logs)``; data are dicts of
equally long arrays (one key per input modality or target). Nothing model-specific lives here.

The device is chosen once (``TrainConfig.device``, see :func:`vidpop.training.distributed.select_device`);
the module and every batch follow it during training, and the trained module is handed back on the
CPU so that any model's inference code runs unchanged (:func:`predict_batched` follows the module).
With ``checkpoint_dir`` set, every ``checkpoint_every`` epochs the whole training state (weights,
optimizer, best epoch, RNG states) is written atomically, and ``resume=True`` continues from it.
"""

from __future__ import annotations

import copy
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vidpop.atomic import atomic_write
from vidpop.training import distributed

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]
ArrayDict = Mapping[str, np.ndarray | torch.Tensor]


@dataclass
class TrainConfig:
    """Optimisation hyper-parameters shared by every torch model."""

    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"  # adamw | adam | sgd
    momentum: float = 0.9  # sgd only
    patience: int = 5  # epochs without val improvement before stopping; 0 = never stop early
    grad_clip: float | None = 5.0
    seed: int = 0
    progress: bool = True
    #: torch intra-op threads while training; None = 1 for a small model (:data:`SMALL_MODULE_PARAMS`), else torch's
    num_threads: int | None = None
    device: str = "auto"  # auto (this rank's GPU if CUDA is available, else CPU) | cpu | cuda | cuda:N
    #: folder for resumable checkpoints (None = none); ``vidpop train`` sets it beside --out
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1  # epochs between checkpoints
    resume: bool = False  # continue from the checkpoint in checkpoint_dir, if there is one


@dataclass
class History:
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "stopped_early": self.stopped_early}


def epoch_seconds(history: History) -> tuple[float | None, float | None]:
    """Mean wall and CPU seconds of an epoch's training (the loop's ``train_seconds`` and
    ``train_cpu_seconds``), or ``(None, None)`` when no epoch ran."""
    rows = [r for r in history.epochs if "train_seconds" in r]
    if not rows:
        return None, None
    return float(np.mean([r["train_seconds"] for r in rows])), float(np.mean([r["train_cpu_seconds"] for r in rows]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensors(data: ArrayDict) -> Batch:
    out: Batch = {}
    for k, v in data.items():
        t = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
        if t.dtype == torch.float64:
            t = t.float()
        out[k] = t
    return out


def _length(data: Batch) -> int:
    lengths = {len(v) for v in data.values()}
    if len(lengths) != 1:
        raise ValueError(f"all arrays must have the same length, got {sorted(lengths)}")
    return lengths.pop()


def iterate_batches(data: Batch, batch_size: int, shuffle: bool, generator: torch.Generator | None = None):
    n = _length(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield {k: v[idx] for k, v in data.items()}


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}' (adamw, adam, sgd)")


@torch.no_grad()
def evaluate_loss(
    module: nn.Module, loss_fn: LossFn, data: Batch, batch_size: int, device: torch.device | None = None
) -> dict[str, float]:
    module.eval()
    n = _length(data)
    totals: dict[str, float] = {}
    for batch in iterate_batches(data, batch_size, shuffle=False):
        loss, logs = loss_fn(module, _to(batch, device) if device is not None else batch)
        w = len(next(iter(batch.values()))) / n
        totals["loss"] = totals.get("loss", 0.0) + float(loss) * w
        for k, v in logs.items():
            totals[k] = totals.get(k, 0.0) + float(v) * w
    return totals


#: checkpoint_dir -> fit_module calls so far in this process: the k-th call of a run owns fit-<k>.pt,
#: so a model that trains several modules (stages, ensembles) resumes each in order
_FIT_CALLS: dict[str, int] = {}


def reset_fit_calls(checkpoint_dir: str | Path) -> None:
    """Start a new run in ``checkpoint_dir``: its next fit_module call is the run's first again."""
    _FIT_CALLS.pop(str(Path(checkpoint_dir).resolve()), None)


def _checkpoint_path(cfg: TrainConfig) -> Path | None:
    if not cfg.checkpoint_dir:
        return None
    key = str(Path(cfg.checkpoint_dir).resolve())
    _FIT_CALLS[key] = _FIT_CALLS.get(key, 0) + 1
    return Path(key) / f"fit-{_FIT_CALLS[key]}.pt"


def _fingerprint(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary sibling + fsync + rename: a kill leaves the old checkpoint or
    the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path, module: nn.Module) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists and was written for a module of this shape."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != _fingerprint(module):
        from vidpop.errors import VidpopError

        raise VidpopError(f"checkpoint {path} belongs to a different model; remove it or train without --resume")
    return state


def _to(batch: Batch, device: torch.device) -> Batch:
    return batch if device.type == "cpu" else {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def fit_module(
    module: nn.Module,
    loss_fn: LossFn,
    train: ArrayDict,
    val: ArrayDict | None = None,
    cfg: TrainConfig | None = None,
    epoch_callback: Callable[[nn.Module, int], dict[str, float]] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
) -> History:
    """Train ``module`` in place; on return it holds the weights of the best validation epoch (on the CPU).

    ``epoch_callback(module, epoch)`` may return extra metrics (e.g. accuracy) to log per epoch.
    ``on_epoch_start(epoch)`` lets a model change something per epoch (e.g. resample negatives).
    Every epoch's row carries ``train_seconds`` and ``train_cpu_seconds``: ``on_epoch_start`` and the
    training steps, without the validation loss and ``epoch_callback`` that follow.
    Seeds are set here for batching; a model seeds before it builds ``module`` (:func:`seed_everything`).
    """
    cfg = cfg or TrainConfig()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(intra_op_threads(module, cfg))
    try:
        return _fit(module, loss_fn, train, val, cfg, epoch_callback, on_epoch_start)
    finally:  # the caller's setting comes back: a small model's choice must not slow what runs next
        torch.set_num_threads(threads_before)


#: below this many dense (non-embedding) parameters a model trains fastest on one intra-op thread: its
#: matrix products are too small to split, and the threads' hand-offs cost more than they save (a
#: 2-layer PoE: 100 steps took 0.7 CPU s on one thread, 8.5 CPU s and 15x the wall time on two, on a
#: loaded 2-core machine)
SMALL_MODULE_PARAMS = 1_000_000


def intra_op_threads(module: nn.Module, cfg: TrainConfig) -> int:
    """``cfg.num_threads`` when set; else 1 for a small module and torch's current count otherwise."""
    if cfg.num_threads:
        return cfg.num_threads
    dense = sum(
        p.numel()
        for m in module.modules()
        if not isinstance(m, nn.Embedding | nn.EmbeddingBag)
        for p in m.parameters(recurse=False)
        if p.requires_grad
    )
    return 1 if dense < SMALL_MODULE_PARAMS else torch.get_num_threads()


def _fit(
    module: nn.Module,
    loss_fn: LossFn,
    train: ArrayDict,
    val: ArrayDict | None,
    cfg: TrainConfig,
    epoch_callback: Callable[[nn.Module, int], dict[str, float]] | None,
    on_epoch_start: Callable[[int], None] | None,
) -> History:
    seed_everything(cfg.seed)
    device = distributed.select_device(cfg.device)
    module.to(device)
    train_t = to_tensors(train)  # data stay on the CPU; each batch moves to the device
    val_t = to_tensors(val) if val is not None and _length(to_tensors(val)) > 0 else None
    opt = make_optimizer([p for p in module.parameters() if p.requires_grad], cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    rank, world_size = distributed.world()
    # Inside a process group every rank draws the same global batches and trains on its shard.
    step_fn = distributed.wrap_ddp(module, loss_fn) if world_size > 1 else (lambda b: loss_fn(module, b))
    history = History()
    best = float("inf")
    best_state = copy.deepcopy(module.state_dict())
    bad_epochs = 0
    start = 0
    ckpt_path = _checkpoint_path(cfg)
    ckpt = load_checkpoint(ckpt_path, module) if ckpt_path is not None and cfg.resume else None
    if ckpt is not None:
        module.load_state_dict(ckpt["module"])
        opt.load_state_dict(ckpt["optimizer"])
        best, best_state, bad_epochs = ckpt["best"], ckpt["best_state"], ckpt["bad_epochs"]
        history = History(**ckpt["history"])
        gen.set_state(ckpt["rng"]["generator"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])
        start = len(history.epochs) if not ckpt["finished"] else cfg.epochs
        if rank == 0:
            done = "finished" if ckpt["finished"] else f"{start} epoch(s) done"
            tqdm.write(f"resuming {type(module).__name__} from {ckpt_path} ({done})", file=sys.stderr)
    bar = tqdm(range(start, cfg.epochs), desc=type(module).__name__, unit="epoch", disable=not cfg.progress or rank > 0)
    for epoch in bar:
        clock = (time.perf_counter(), time.process_time())
        if on_epoch_start:
            on_epoch_start(epoch)
        module.train()
        n_seen, running = 0, 0.0
        for global_batch in iterate_batches(train_t, cfg.batch_size, shuffle=True, generator=gen):
            batch = distributed.shard(global_batch, rank, world_size) if world_size > 1 else global_batch
            if not len(next(iter(batch.values()))):
                continue
            batch = _to(batch, device)
            opt.zero_grad(set_to_none=True)
            loss, _ = step_fn(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch}; lower the learning rate")
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            opt.step()
            bs = len(next(iter(batch.values())))
            running += float(loss.detach()) * bs
            n_seen += bs
        row: dict[str, float] = {
            "epoch": epoch,
            "train_loss": distributed.all_reduce_mean(running / max(n_seen, 1)),
            # the epoch's own work (its resampling and training steps), not the validation that follows
            "train_seconds": time.perf_counter() - clock[0],
            "train_cpu_seconds": time.process_time() - clock[1],
        }
        if val_t is not None:
            val_logs = evaluate_loss(module, loss_fn, val_t, cfg.batch_size, device)
            row.update({f"val_{k}": v for k, v in val_logs.items()})
        if epoch_callback:
            row.update(epoch_callback(module, epoch))
        history.epochs.append(row)
        monitored = row.get("val_loss", row["train_loss"])
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
        stop = False
        if monitored < best - 1e-6:
            best, bad_epochs, history.best_epoch = monitored, 0, epoch
            best_state = copy.deepcopy(module.state_dict())
        else:
            bad_epochs += 1
            if cfg.patience and bad_epochs >= cfg.patience:
                history.stopped_early = stop = True
        last = stop or epoch == cfg.epochs - 1
        if ckpt_path is not None and rank == 0 and (last or (epoch + 1) % max(cfg.checkpoint_every, 1) == 0):
            save_checkpoint(
                ckpt_path,
                {
                    "fingerprint": _fingerprint(module),
                    "module": module.state_dict(),
                    "optimizer": opt.state_dict(),
                    "best": best,
                    "best_state": best_state,
                    "bad_epochs": bad_epochs,
                    "history": history.as_dict(),
                    "finished": last,
                    "rng": {
                        "generator": gen.get_state(),
                        "torch": torch.get_rng_state(),
                        "numpy": np.random.get_state(),
                        "python": random.getstate(),
                    },
                },
            )
        if stop:
            break
    bar.close()
    module.load_state_dict(best_state)
    module.to("cpu")
    module.eval()
    return history


@torch.no_grad()
def predict_batched(
    module: nn.Module, fn: Callable[[nn.Module, Batch], torch.Tensor], data: ArrayDict, batch_size: int = 256
) -> np.ndarray:
    """Apply ``fn(module, batch)`` over ``data`` in batches and concatenate the outputs."""
    module.eval()
    data_t = to_tensors(data)
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")  # batches follow the module
    batches = iterate_batches(data_t, batch_size, shuffle=False)
    outs = [fn(module, _to(b, device)).detach().cpu().numpy() for b in batches]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
