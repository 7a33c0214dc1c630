"""The chunked full-softmax cross-entropy and SASRec's sampled loss, on SYNTHETIC tensors (labelled):
the chunked loss must equal torch's cross-entropy in value and in every gradient, and the sampled
loss must ignore a negative that is the slot's own target."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidpop.models.rec_baselines.sasrec import SASRecNet, pack_sequences, sampled_ce_loss, sasrec_loss
from vidpop.models.rec_baselines.torch_common import full_softmax_ce, unit_rows


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_chunked_full_softmax_equals_torch_cross_entropy(bias: bool, chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(61, 8, generator=g, requires_grad=True)
    w = (torch.randn(40, 8, generator=g) * 2).requires_grad_()
    b = torch.randn(40, generator=g, requires_grad=True) if bias else None
    t = torch.randint(0, 40, (61,), generator=g)
    ref = F.cross_entropy(h @ w.T + (b if b is not None else 0), t)
    got = full_softmax_ce(h, w, t, b, chunk=chunk)
    assert float(got) == pytest.approx(float(ref), rel=1e-5)
    params = [h, w] + ([b] if b is not None else [])
    g_ref = torch.autograd.grad(2.5 * ref, params)  # the upstream gradient is applied too
    g_got = torch.autograd.grad(2.5 * got, params)
    for a, c in zip(g_ref, g_got, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-6)


def test_full_softmax_flows_into_a_computed_weight() -> None:
    """The item table may be computed (interest RNN: projected text + free vectors): gradients reach its inputs."""
    g = torch.Generator().manual_seed(1)
    base = torch.randn(30, 4, generator=g, requires_grad=True)
    h, t = torch.randn(9, 4, generator=g), torch.randint(0, 30, (9,), generator=g)
    (grad_ref,) = torch.autograd.grad(F.cross_entropy(h @ (2 * base).T, t), [base])
    (grad_got,) = torch.autograd.grad(full_softmax_ce(h, 2 * base, t, chunk=4), [base])
    torch.testing.assert_close(grad_ref, grad_got, rtol=1e-4, atol=1e-6)


def test_unit_rows_equals_normalize_in_value_and_gradient() -> None:
    """The hand-written backward of the row normalisation (the interest RNN's item table) is exact,
    also on a row of zeros (clamped norm) and under a non-trivial upstream gradient."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(17, 6, generator=g, dtype=torch.float64)
    x[3] = 0.0
    x.requires_grad_()
    up = torch.randn(17, 6, generator=g, dtype=torch.float64)
    (ref,) = torch.autograd.grad((F.normalize(x, dim=-1) * up).sum(), [x])
    (got,) = torch.autograd.grad((unit_rows(x) * up).sum(), [x])
    torch.testing.assert_close(unit_rows(x), F.normalize(x, dim=-1))
    torch.testing.assert_close(got, ref)
    assert torch.autograd.gradcheck(unit_rows, (torch.randn(5, 4, dtype=torch.float64, requires_grad=True),))


def _net_and_batch(n_items: int = 12) -> tuple[SASRecNet, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = SASRecNet(n_items=n_items, dim=8, max_len=5, layers=1, heads=2, dropout=0.0, n_negatives=4).eval()
    packed = pack_sequences([torch.arange(5).numpy(), torch.arange(6, 10).numpy()], width=5)
    return net, {k: torch.from_numpy(v) for k, v in packed.items()}


def test_sampled_loss_masks_a_negative_equal_to_the_target() -> None:
    net, batch = _net_and_batch()
    keep = batch["target"] > 0
    target = batch["target"][keep]
    h = net.encode(batch["seq"], batch["seg"], batch["pos"])[keep]
    neg = torch.tensor([int(target[0]), 11, 12])  # the first slot's own target drawn as a negative
    loss, _ = sampled_ce_loss(net, batch, 3, neg=neg)
    by_hand = []
    for i in range(len(target)):
        cands = [int(target[i])] + [int(n) for n in neg if int(n) != int(target[i])]
        logits = h[i] @ net.items.weight[cands].T
        by_hand.append(-torch.log_softmax(logits, 0)[0])
    assert float(loss) == pytest.approx(float(torch.stack(by_hand).mean()), rel=1e-5)


def test_sasrec_loss_is_full_when_negatives_cover_the_catalogue() -> None:
    net, batch = _net_and_batch()
    net.n_negatives = 0  # 0 = the full softmax
    full, _ = sasrec_loss(net, batch)
    keep = batch["target"] > 0
    h = net.encode(batch["seq"], batch["seg"], batch["pos"])[keep]
    ref = F.cross_entropy(h @ net.items.weight[1:].T, batch["target"][keep] - 1)
    assert float(full) == pytest.approx(float(ref), rel=1e-5)


def test_sasrec_defaults_train_with_the_full_softmax_over_a_large_catalogue() -> None:
    """Validation chose the full loss over the sampled one (the issue: sample only where validation shows
    the same HR@10), so a default SASRec over 2,000 items (more than the 1,024 negatives it used to
    draw) scores every item in its loss."""
    from vidpop.models import build_model

    c = build_model("rec_sasrec").config
    torch.manual_seed(0)
    net = SASRecNet(n_items=2000, dim=8, max_len=5, layers=1, heads=2, dropout=0.0, n_negatives=c.n_negatives)
    packed = pack_sequences([torch.arange(5).numpy(), torch.arange(1500, 1504).numpy()], width=5)
    batch = {k: torch.from_numpy(v) for k, v in packed.items()}
    keep = batch["target"] > 0
    h = net.eval().encode(batch["seq"], batch["seg"], batch["pos"])[keep]
    ref = F.cross_entropy(h @ net.items.weight[1:].T, batch["target"][keep] - 1)
    torch.manual_seed(1)
    loss, _ = sasrec_loss(net, batch)
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)


def test_numpy_blas_follows_torchs_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's BLAS used every core inside the chunked softmax whatever torch was told (4x the CPU of one
    thread on a loaded 2-core box); it now runs with torch's count. SYNTHETIC tensors."""
    from threadpoolctl import threadpool_info

    from vidpop.models.rec_baselines import torch_common

    seen: list[int] = []
    real_mm = torch_common._mm

    def recording_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return real_mm(a, b)

    monkeypatch.setattr(torch_common, "_mm", recording_mm)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        h = torch.randn(8, 4, requires_grad=True)
        torch_common.full_softmax_ce(h, torch.randn(30, 4), torch.randint(0, 30, (8,)), chunk=4)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_products_stay_in_torch_when_torch_runs_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """At more than one thread numpy's BLAS pool and torch's OpenMP pool fought for the 2 cores (a SASRec
    epoch 145 s against 70 s in torch); the products then stay in torch, and on one thread go through
    numpy. Both give torch's cross-entropy. SYNTHETIC tensors."""
    from vidpop.models.rec_baselines import torch_common

    calls: list[int] = []
    real_from_numpy = torch.from_numpy

    def counting_from_numpy(a: object) -> torch.Tensor:
        calls.append(torch.get_num_threads())
        return real_from_numpy(a)  # type: ignore[arg-type]

    monkeypatch.setattr(torch_common.torch, "from_numpy", counting_from_numpy)
    g = torch.Generator().manual_seed(3)
    h, w, t = torch.randn(20, 6, generator=g), torch.randn(50, 6, generator=g), torch.randint(0, 50, (20,), generator=g)
    ref = F.cross_entropy(h @ w.T, t)
    before = torch.get_num_threads()
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            calls.clear()
            got = torch_common.full_softmax_ce(h, w, t, chunk=8)
            assert float(got) == pytest.approx(float(ref), rel=1e-5)
            assert (len(calls) > 0) == (threads == 1), (threads, calls)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("n_negatives", "threads_in_training"), [(0, 2), (8, 1)])
def test_a_full_catalogue_softmax_trains_on_all_threads(
    monkeypatch: pytest.MonkeyPatch, n_negatives: int, threads_in_training: int
) -> None:
    """The loop gives a module with few dense weights one thread, but a full softmax multiplies the whole
    item table every step (SASRec epoch 58.6 s on 2 threads against 91.7 s on one): SASRec's full loss
    trains on torch's threads, its sampled loss keeps one. SYNTHETIC sequences."""
    import numpy as np
    import pandas as pd

    from vidpop.models import build_model
    from vidpop.models.rec_baselines.sasrec import SASRecRecommender
    from vidpop.models.recommender import RecData
    from vidpop.training.loop import TrainConfig

    seen: list[int] = []

    def recording_loss(module: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        seen.append(torch.get_num_threads())
        return sasrec_loss(module, batch)

    monkeypatch.setattr(SASRecRecommender, "loss", staticmethod(recording_loss))
    seqs = [np.arange(i, i + 6) % 40 for i in range(30)]
    data = RecData(
        np.array([str(i) for i in range(40)]), np.array([f"u{i}" for i in range(30)]), seqs, seqs, pd.DataFrame()
    )
    train = TrainConfig(epochs=1, batch_size=8, patience=0, progress=False)
    model = build_model("rec_sasrec", dim=8, max_len=6, layers=1, n_negatives=n_negatives, train=train)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model.fit(data)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {threads_in_training}
    assert after == 2  # the caller's setting comes back
