"""Pipeline-parallel (GPipe) training with ``torch.distributed.pipelining``.

A model that exposes ``stages()`` — sequential sub-modules whose outputs are the next stage's inputs
(e.g. :class:`~vidpop.models.fusion_net.FusionNet`: visual branch | text branch + fusion head) — is
split over the ranks of a process group, one stage per rank. Each global batch is cut into
``n_microbatches`` micro-batches that flow through the stages under :class:`ScheduleGPipe` (all
forwards, then all backwards); gradients are averaged over micro-batches (``scale_grads``), so one
step equals one single-process step on the whole batch with a mean loss.

Start it with ``torchrun --nproc-per-node 2 ...`` (gloo on CPU; see ``vidpop fusion train
--pipeline 2``) or, in tests, :func:`vidpop.training.distributed.spawn_local`. Plain single-process
training (:func:`~vidpop.training.loop.fit_module`) stays the default everywhere.

Why a separate epoch loop: the schedule owns forward *and* backward (``schedule.step``), so the
shared loop's ``loss.backward()`` cannot drive it. This loop reuses that module's batching,
seeding and optimiser factory, and adds only what pipelining needs: full micro-batches of fixed
shape (the stages exchange fixed-size buffers), a gradient-norm clip computed over all stages, and
gathering the trained stages back on rank 0. There is no validation-based early stopping: rank 0
evaluates the merged model afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from vidpop.errors import VidpopError
from vidpop.training import distributed
from vidpop.training.loop import (
    ArrayDict,
    Batch,
    TrainConfig,
    iterate_batches,
    make_optimizer,
    seed_everything,
    to_tensors,
)

#: ``loss_fn(stage_output, target) -> scalar`` evaluated on the last stage, per micro-batch
PipeLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PipelineRunner:
    """This rank's stage of a pipeline and its GPipe schedule."""

    def __init__(self, stages: Sequence[nn.Module], loss_fn: PipeLoss, n_microbatches: int) -> None:
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        self.rank, self.world_size = distributed.world()
        if self.world_size != len(stages):
            raise VidpopError(
                f"{len(stages)} pipeline stages need {len(stages)} ranks, this group has {self.world_size}"
            )
        if n_microbatches < 1:
            raise VidpopError("n_microbatches must be >= 1")
        self.module = stages[self.rank]
        self.n_microbatches = n_microbatches
        stage = PipelineStage(self.module, self.rank, self.world_size, torch.device("cpu"))
        self.schedule = ScheduleGPipe(stage, n_microbatches=n_microbatches, loss_fn=loss_fn)

    @property
    def is_first(self) -> bool:
        return self.rank == 0

    @property
    def is_last(self) -> bool:
        return self.rank == self.world_size - 1

    def step(self, inputs: Sequence[torch.Tensor], target: torch.Tensor) -> float:
        """Forward + backward of one batch through the pipeline (gradients land in each rank's stage).

        Every rank passes the same batch; the first stage uses ``inputs``, the last ``target``.
        Returns the batch's mean loss on every rank."""
        losses: list[torch.Tensor] = []
        if self.is_first and self.is_last:
            self.schedule.step(*inputs, target=target, losses=losses)
        elif self.is_first:
            self.schedule.step(*inputs)
        elif self.is_last:
            self.schedule.step(target=target, losses=losses)
        else:
            self.schedule.step()
        value = torch.tensor([float(torch.stack(losses).detach().mean()) if losses else 0.0], dtype=torch.float64)
        dist.broadcast(value, src=self.world_size - 1)
        return float(value.item())


def clip_grad_norm_global(params: Sequence[nn.Parameter], max_norm: float) -> float:
    """Clip by the gradient norm over *all* stages (each rank holds part of the parameters), so the
    clip matches single-process ``clip_grad_norm_`` on the whole model."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.tensor([sum(float(g.detach().pow(2).sum()) for g in grads)], dtype=torch.float64)
    dist.all_reduce(sq)
    norm = math.sqrt(float(sq.item()))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / (norm + 1e-6))
    return norm


def gather_state(stages: Sequence[nn.Module]) -> None:
    """Copy every rank's trained stage into ``stages`` on rank 0 (other ranks keep only their own)."""
    rank, world_size = distributed.world()
    states: list[dict[str, torch.Tensor] | None] = [None] * world_size if rank == 0 else []
    dist.gather_object(stages[rank].state_dict(), states if rank == 0 else None, dst=0)
    if rank == 0:
        for i, sd in enumerate(states):
            if i != 0 and sd is not None:
                stages[i].load_state_dict(sd)


def train_pipeline(
    stages: Sequence[nn.Module],
    loss_fn: PipeLoss,
    train: ArrayDict,
    input_keys: Sequence[str],
    target_key: str,
    cfg: TrainConfig,
    n_microbatches: int = 4,
    epoch_callback: Callable[[int], dict[str, float]] | None = None,
) -> dict[str, object]:
    """Train ``stages`` (one per rank) with GPipe for ``cfg.epochs`` epochs; return the history.

    Every rank draws the same seeded batches; incomplete last batches are skipped (micro-batches
    must keep one shape). After every epoch the stages are gathered on rank 0, where
    ``epoch_callback(epoch)`` may score the whole model (e.g. train/val accuracy). After training,
    rank 0 holds all stages' weights."""
    if cfg.batch_size % n_microbatches:
        raise VidpopError(f"batch size {cfg.batch_size} must be divisible by n_microbatches={n_microbatches}")
    seed_everything(cfg.seed)
    runner = PipelineRunner(stages, loss_fn, n_microbatches)
    params = [p for p in runner.module.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    data: Batch = to_tensors(train)
    epochs: list[dict[str, float]] = []
    bar = tqdm(range(cfg.epochs), desc="GPipe", unit="epoch", disable=not cfg.progress or runner.rank > 0)
    for epoch in bar:
        runner.module.train()
        total, n_batches = 0.0, 0
        for batch in iterate_batches(data, cfg.batch_size, shuffle=True, generator=gen):
            if len(batch[target_key]) < cfg.batch_size:
                continue
            opt.zero_grad(set_to_none=True)
            loss = runner.step([batch[k] for k in input_keys], batch[target_key])
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at epoch {epoch}; lower the learning rate")
            if cfg.grad_clip:
                clip_grad_norm_global(params, cfg.grad_clip)
            opt.step()
            total += loss
            n_batches += 1
        if not n_batches:
            raise VidpopError(f"no full batch of {cfg.batch_size} rows to train on")
        row: dict[str, float] = {"epoch": epoch, "train_loss": total / n_batches}
        if epoch_callback is not None:
            gather_state(stages)
            if runner.rank == 0:
                row.update(epoch_callback(epoch))
        epochs.append(row)
        bar.set_postfix(train_loss=round(total / n_batches, 4))
    bar.close()
    gather_state(stages)
    for s in stages:
        s.eval()
    return {
        "epochs": epochs,
        "best_epoch": len(epochs) - 1,
        "stopped_early": False,
        "pipeline": {"stages": len(stages), "n_microbatches": n_microbatches, "schedule": "GPipe"},
    }
