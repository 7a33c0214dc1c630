"""GPipe on 2 local CPU ranks (gloo): one optimiser step of the 2-stage cover + title fusion network
gives the same loss, gradients and updated weights as the single-process network on the same batch.

Inputs are synthetic (labelled as such): random pooled "cover" and "title" features, with some covers
masked as missing, so the pipeline also carries the mask between stages."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vidpop.models.fusion_net import FusionNet, TextBranch, VisualBranch
from vidpop.training import distributed
from vidpop.training.loop import TrainConfig
from vidpop.training.pipeline_parallel import PipelineRunner, train_pipeline

IMG_DIM, TXT_DIM, HIDDEN, N_CLASSES, BATCH, MICRO = 12, 8, 16, 5, 8, 4
LR = 0.05


def _net() -> FusionNet:
    torch.manual_seed(3)
    visual = VisualBranch(IMG_DIM, HIDDEN, dropout=0.0)
    text = TextBranch("embedding", HIDDEN, dropout=0.0, text_dim=TXT_DIM)
    return FusionNet(visual, text, N_CLASSES, fusion_weight=0.75)


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    img_mask = torch.ones(BATCH)
    img_mask[[1, 6]] = 0.0  # two videos without a cover
    return {
        "img": torch.randn(BATCH, IMG_DIM, generator=g),
        "img_mask": img_mask,
        "txt": torch.randn(BATCH, TXT_DIM, generator=g),
        "txt_mask": torch.ones(BATCH),
        "y": torch.randint(0, N_CLASSES, (BATCH,), generator=g),
    }


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, y)


def _pipeline_rank(rank: int, world_size: int, out: str) -> None:
    net = _net()
    stages = net.stages()
    runner = PipelineRunner(stages, _loss, n_microbatches=MICRO)
    b = _batch()
    opt = torch.optim.SGD(runner.module.parameters(), lr=LR)
    opt.zero_grad()
    loss = runner.step([b["img"], b["img_mask"], b["txt"], b["txt_mask"]], b["y"])
    grads = {k: p.grad.clone() for k, p in runner.module.named_parameters() if p.grad is not None}
    opt.step()
    torch.save({"loss": loss, "grads": grads, "state": runner.module.state_dict()}, f"{out}.rank{rank}")


def test_gpipe_two_stages_matches_single_process(tmp_path: Path) -> None:
    out = str(tmp_path / "pipe")
    distributed.spawn_local(_pipeline_rank, 2, out)
    ranks = [torch.load(f"{out}.rank{r}") for r in range(2)]

    net = _net()
    b = _batch()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    opt.zero_grad()
    loss = _loss(net(b["img"], b["img_mask"], b["txt"], b["txt_mask"]), b["y"])
    loss.backward()
    opt.step()

    assert ranks[0]["loss"] == ranks[1]["loss"]  # broadcast from the last stage
    torch.testing.assert_close(ranks[0]["loss"], loss.item(), rtol=1e-5, atol=1e-6)
    for r, stage in enumerate(net.stages()):
        piped = ranks[r]["grads"]
        single = {k: p.grad for k, p in stage.named_parameters()}
        assert set(piped) == set(single) and piped  # every parameter of the stage got a gradient
        for k, g in single.items():
            torch.testing.assert_close(piped[k], g, rtol=1e-5, atol=1e-6)
        for k, v in stage.state_dict().items():
            torch.testing.assert_close(ranks[r]["state"][k], v, rtol=1e-5, atol=1e-6)


def _train_rank(rank: int, world_size: int, out: str) -> None:
    net = _net()
    b = _batch()
    data = {k: torch.cat([v, v]) for k, v in b.items()}  # two full batches
    cfg = TrainConfig(epochs=2, batch_size=BATCH, lr=1e-2, progress=False, grad_clip=1.0)
    hist = train_pipeline(net.stages(), _loss, data, ["img", "img_mask", "txt", "txt_mask"], "y", cfg, MICRO)
    if rank == 0:  # rank 0 gathered both stages: the whole network is trained
        torch.save({"state": net.state_dict(), "hist": hist}, out)


def test_train_pipeline_gathers_all_stages_on_rank0(tmp_path: Path) -> None:
    out = str(tmp_path / "trained.pt")
    distributed.spawn_local(_train_rank, 2, out)
    saved = torch.load(out, weights_only=False)
    fresh = _net().state_dict()
    assert len(saved["hist"]["epochs"]) == 2
    # both stages moved away from the shared initialisation (rank 1's weights came back to rank 0)
    for prefix in ("stage0.", "stage1."):
        changed = [k for k in fresh if k.startswith(prefix) and not torch.equal(fresh[k], saved["state"][k])]
        assert changed, prefix
