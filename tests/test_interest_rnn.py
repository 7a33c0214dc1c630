"""Tests of the dynamic interest RNN (``interest_rnn``) and ``static_dnn``.

Most tests use a SYNTHETIC structured fixture (labelled as such): 4 topical clusters of videos with
cluster-specific title words and text vectors; each user watches one cluster in a fixed cyclic order,
so the next video is predictable and a working model must learn it. The last test runs on a tiny
slice of the real MicroLens-50k files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vidpop.models import build_model, load_model
from vidpop.models.interest_rnn import InterestRNN, ablation_variants
from vidpop.models.interest_rnn.network import interest_distance, masked_rows, packed_gru_by_length, take_rows
from vidpop.models.interest_rnn.relevance import jaccard_neighbours, triplet_hinge
from vidpop.models.interest_rnn.semantic import contrastive_hinge, sample_negatives
from vidpop.models.interest_rnn.topics import causal_decay_weights, decay_weights, decayed_mean, prefix_decayed_means
from vidpop.models.recommender import RecData, UserQuery
from vidpop.training.loop import TrainConfig

WORDS = [
    ["football", "goal", "match", "league"],
    ["recipe", "cooking", "spicy", "noodles"],
    ["anime", "cartoon", "manga", "villain"],
    ["makeup", "beauty", "lipstick", "skincare"],
]
N_CLUSTERS, PER_CLUSTER = 4, 12


def synthetic_recdata(n_users: int = 160, seed: int = 0, n_visual: int = 8) -> RecData:
    """SYNTHETIC: users follow their cluster's items in cyclic order from a random start."""
    rng = np.random.default_rng(seed)
    n_items = N_CLUSTERS * PER_CLUSTER
    cluster = np.repeat(np.arange(N_CLUSTERS), PER_CLUSTER)
    titles = [" ".join(rng.choice(WORDS[c], 3)) + f" clip{i}" for i, c in enumerate(cluster)]
    text = np.eye(N_CLUSTERS)[cluster] + 0.3 * rng.normal(size=(n_items, N_CLUSTERS))
    text = np.hstack([text, 0.3 * rng.normal(size=(n_items, 12))]).astype(np.float32)
    visual = np.zeros((n_items, 10), np.float32)
    present = np.zeros(n_items, bool)
    present[rng.choice(n_items, n_visual, replace=False)] = True
    visual[present] = rng.normal(size=(n_visual, 10))
    seqs, times = [], []
    for _ in range(n_users):
        c, start, length = rng.integers(N_CLUSTERS), rng.integers(PER_CLUSTER), rng.integers(5, 10)
        seqs.append(c * PER_CLUSTER + (start + np.arange(length)) % PER_CLUSTER)
        times.append(np.arange(length, dtype=np.float64))
    items = pd.DataFrame(
        {"video_id": [str(i) for i in range(n_items)], "title": titles, "category": [f"cat{c}" for c in cluster]}
    )
    return RecData(
        item_ids=items["video_id"].to_numpy(),
        user_ids=np.array([f"u{i}" for i in range(n_users)]),
        sequences=seqs,
        times=times,
        items=items,
        item_features={"title_minilm": text, "cover_effnet": visual},
        item_feature_present={"title_minilm": np.ones(n_items, bool), "cover_effnet": present},
    )


def small_model(epochs: int = 30, **overrides) -> InterestRNN:
    cfg = dict(
        d_e=16,
        d_interest=16,
        hidden=16,
        n_topics=4,
        lda_max_iter=5,
        cold_fraction=1.0,  # 160 SYNTHETIC users: every one of them trains the text-only step too
        dropout=0.0,  # a 16-wide model on 160 SYNTHETIC users needs no regularising
        train=TrainConfig(epochs=epochs, batch_size=32, lr=1e-2, optimizer="adam", patience=0, progress=False),
    )
    cfg.update(overrides)
    return build_model("interest_rnn", **cfg)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def data() -> RecData:
    return synthetic_recdata()


@pytest.fixture(scope="module")
def fitted(data: RecData) -> InterestRNN:
    torch.set_num_threads(1)
    return small_model().fit(data)


# ---------------------------------------------------------------- loss terms against hand computations
def test_time_decay_weights_by_hand() -> None:
    w = decay_weights(np.array([0.0, 1.0, 3.0]), 3.0, 0.1)
    assert np.allclose(w, [math.exp(-0.3), math.exp(-0.2), 1.0])
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = (w[:, None] * v).sum(0) / w.sum()
    assert np.allclose(decayed_mean(v, np.array([0.0, 1.0, 3.0]), 0.1), expected)
    # prefix-wise torch version: row t is the decayed mean of the first t+1 rows seen from time t_t
    vals = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 9.0]]])
    times = torch.tensor([[0.0, 1.0, 3.0, 0.0]])
    got = prefix_decayed_means(vals, times, torch.tensor([3]), 0.1).numpy()[0]
    for t in range(3):
        assert np.allclose(got[t], decayed_mean(v[: t + 1], np.array([0.0, 1.0, 3.0])[: t + 1], 0.1), atol=1e-6)
    assert np.allclose(got[3], 0.0)  # padding: no interest, and it never leaks into real steps
    w = causal_decay_weights(times, torch.tensor([3]), 0.1)[0]
    assert torch.all(w.triu(1) == 0)  # nothing after step t weighs in the interest at step t


def test_row_gathers_equal_indexing_in_value_and_gradient() -> None:
    """The index_select gathers of the training step are advanced indexing, value for value and
    gradient for gradient (repeated indices accumulate; the mask keeps row-major order)."""
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(30, 4, generator=gen, requires_grad=True)
    index = torch.randint(0, 30, (5, 7), generator=gen)  # 35 draws of 30 rows: some repeat
    x = torch.randn(5, 7, 4, generator=gen, requires_grad=True)
    mask = torch.rand(5, 7, generator=gen) < 0.5
    pairs = ((take_rows, table, index, lambda t, i: t[i]), (masked_rows, x, mask, lambda t, m: t[m]))
    for ours, src, idx, reference in pairs:
        got, want = ours(src, idx), reference(src, idx)
        assert torch.equal(got, want)
        w = torch.randn(got.shape, generator=gen)
        (g_got,) = torch.autograd.grad((got * w).sum(), src)
        (g_want,) = torch.autograd.grad((want * w).sum(), src)
        assert torch.allclose(g_got, g_want, atol=1e-6)


def test_contrastive_hinge_by_hand() -> None:
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[math.cos(0.5), math.sin(0.5)], [0.0, 1.0]])
    neg = torch.tensor([1, 0])
    # pair 0: pos = cos .5, t0.v1 = 0, t1.v0 = sin .5 ; pair 1: pos = 1, t1.v0 = sin .5, t0.v1 = 0
    m = 0.3
    c, s = math.cos(0.5), math.sin(0.5)
    expected = (max(0, m - c + 0) + max(0, m - c + s) + max(0, m - 1 + s) + max(0, m - 1 + 0)) / 2
    got = contrastive_hinge(t, v, t[neg], v[neg], m)
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_triplet_hinge_and_distance_by_hand() -> None:
    a, p, n = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 3.0]])
    assert float(triplet_hinge(a, p, n, 0.5)) == pytest.approx(max(0.0, 0.5 - 1 / math.sqrt(2) + 0.0), abs=1e-6)
    assert float(triplet_hinge(a, a, n, 0.5)) == pytest.approx(0.0, abs=1e-6)
    # unit-normalised squared distance: (1,0) vs (0,1) -> 2 ; (3,0) vs (1,0) -> 0
    got = interest_distance(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert float(got) == pytest.approx(1.0, abs=1e-6)


def test_negatives_and_jaccard_neighbours() -> None:
    neg = sample_negatives(7, np.random.default_rng(0))
    assert (neg != np.arange(7)).all() and neg.min() >= 0 and neg.max() < 7
    seqs = [np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([5, 6]), np.array([0, 1, 2, 3])]
    nb = jaccard_neighbours(seqs, 7, top_k=2)
    # user 0: J(0,3) = 3/4 > J(0,1) = 2/4 ; user 2 overlaps nobody
    assert nb[0].tolist() == [3, 1] and nb[2].tolist() == []


# ---------------------------------------------------------------- the estimator
def test_shapes_and_scores(fitted: InterestRNN, data: RecData) -> None:
    q = [UserQuery(history=np.array([0, 1, 2])), UserQuery(history=np.array([], np.int64), text="spicy noodles recipe")]
    s = fitted.full_sort_scores(q)
    assert s.shape == (2, data.n_items) and np.isfinite(s).all()
    assert np.allclose(np.exp(s).sum(1), 1.0, atol=1e-4)  # log-probabilities of the next video


def test_training_decreases_loss_and_learns_structure(fitted: InterestRNN, data: RecData) -> None:
    losses = [e["train_loss"] for e in fitted.history_["epochs"]]
    assert losses[-1] < 0.7 * losses[0]
    # SYNTHETIC order: after items 3,4,5 of cluster 1 comes item 6 of cluster 1
    base = 1 * PER_CLUSTER
    top = fitted.recommend([UserQuery(history=np.array([base + 3, base + 4, base + 5]))], k=3)[0]
    assert top[0] == base + 6
    assert all(base <= i < base + PER_CLUSTER for i in top)


@pytest.mark.parametrize("greedy", [True, False])
def test_generation_never_repeats_and_excludes_seen(fitted: InterestRNN, data: RecData, greedy: bool) -> None:
    hist = data.sequences[0][:4]
    fitted.config.greedy = greedy  # the paper's greedy generation, and top-k of one softmax (the default)
    try:
        recs = fitted.recommend([UserQuery(history=hist)], k=20)[0]
        with_seen = fitted.recommend([UserQuery(history=hist)], k=20, exclude_seen=False)[0]
    finally:
        fitted.config.greedy = False
    assert len(set(recs.tolist())) == 20
    assert not set(recs.tolist()) & set(hist.tolist())
    assert len(set(with_seen.tolist())) == 20


def test_cold_start_from_text_only(fitted: InterestRNN) -> None:
    """A brand-new user with only words: topics -> interest token -> generated videos of that cluster."""
    hits = []
    for c, words in enumerate(WORDS):
        recs = fitted.recommend([UserQuery(history=np.array([], np.int64), text=" ".join(words * 3))], k=5)[0]
        hits.append(np.mean(recs // PER_CLUSTER == c))
    assert np.mean(hits) > 0.5  # chance is 0.25


def test_save_load_identical_scores(fitted: InterestRNN, tmp_path: Path) -> None:
    q = [UserQuery(history=np.array([5, 6, 7])), UserQuery(history=np.array([], np.int64), text="anime villain")]
    fitted.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert np.allclose(again.full_sort_scores(q), fitted.full_sort_scores(q), atol=1e-6)
    assert np.array_equal(again.recommend(q, k=5), fitted.recommend(q, k=5))


def test_ablation_variants_build_and_fit(data: RecData) -> None:
    variants = ablation_variants()
    assert {"RNN", "RNN-Sem", "RNN-noRel", "Static-DNN"} <= set(variants)
    train = TrainConfig(epochs=2, batch_size=64, lr=1e-2, optimizer="adam", patience=0, progress=False)
    for name, (model_name, overrides) in variants.items():
        extra = (
            dict(train=train)
            if model_name == "static_dnn"
            else dict(d_e=8, d_interest=8, hidden=8, n_topics=3, lda_max_iter=2, train=train)
        )
        model = build_model(model_name, **{**overrides, **extra}).fit(data)
        recs = model.recommend([UserQuery(history=np.array([0, 1]))], k=4)
        assert recs.shape == (1, 4) and not {0, 1} & set(recs[0].tolist()), name


def test_missing_text_feature_is_a_clear_error(data: RecData) -> None:
    from vidpop.errors import VidpopError

    with pytest.raises(VidpopError, match="no item feature 'nope'"):
        small_model(epochs=1, text_feature="nope").fit(data)


def test_real_microlens_slice_with_lsa_text(tmp_path: Path) -> None:
    """REAL data: 300 MicroLens-50k users through the microlens adapter and the RecData builder;
    item text = TF-IDF+SVD of the real titles/tags (no MiniLM needed in the unit tests)."""
    from vidpop.data.adapters import get_adapter
    from vidpop.data.schema import VideoDataset
    from vidpop.data.sequences import dataset_to_rec_data
    from vidpop.errors import DataNotFoundError

    try:
        ds = get_adapter("microlens").load()
    except DataNotFoundError:
        pytest.skip("MicroLens data not available")
    users = pd.unique(ds.interactions["user_id"])[:300]
    inter = ds.interactions[ds.interactions["user_id"].isin(set(users))]
    data = dataset_to_rec_data(VideoDataset("microlens_slice", videos=ds.videos, interactions=inter))
    assert data.n_users == 300 and data.time_unit == "step"
    model = small_model(epochs=3, text_feature="lsa", lsa_dim=32).fit(data)
    assert any("no visual feature" in n for n in model.notes_)
    assert model.topic_model_ is not None and len(model.topic_model_.top_words()) == 4
    hist = data.sequences[0][:3]
    recs = model.recommend([UserQuery(history=hist)], k=10)
    assert recs.shape == (1, 10) and not set(hist.tolist()) & set(recs[0].tolist())
    cold = model.recommend([UserQuery(history=np.zeros(0, np.int64), text=data.user_texts[0])], k=10)
    assert len(set(cold[0].tolist())) == 10


# ---------------------------------------------------------------- issue 12 §5: no future in the input
def _padded(model: InterestRNN, seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from vidpop.models.interest_rnn.batching import pad_sequences

    arrays = pad_sequences(seqs, [np.arange(len(x), dtype=np.float64) for x in seqs], 50, model.dims_.n_items)
    return tuple(torch.from_numpy(a) for a in arrays)  # type: ignore[return-value]


def test_input_at_step_t_ignores_later_items(fitted: InterestRNN) -> None:
    """Changing the videos after step t changes no GRU input (video or interest) and no output up to t.
    The old code fed an interest token built from the whole sequence at step 0, so every step's input
    moved with the future."""
    m, t = fitted.module_, 2
    a = np.array([12, 13, 14, 15, 16, 17])
    b = np.array([12, 13, 14, 40, 41, 2, 3])  # same first t+1 videos, another future (and length)
    seq, tim, lens = _padded(fitted, [a, b])
    with torch.no_grad():
        emb = m.item_interest(m.item_semantic())
        x = m.history_inputs(seq, tim, lens, emb)
        out, _ = m.histories(seq, tim, lens, emb)
    assert torch.allclose(x[0, : t + 1], x[1, : t + 1])
    assert torch.allclose(out[0, : t + 1], out[1, : t + 1], atol=1e-6)
    assert not torch.allclose(x[0, t + 1], x[1, t + 1])  # the inputs do differ once the videos differ


def test_training_states_equal_prediction_states(fitted: InterestRNN, data: RecData) -> None:
    """The state that predicts v_{t+1} in training is the state a query with history v_1..v_t gets."""
    m = fitted.module_
    s = data.sequences[3]
    seq, tim, lens = _padded(fitted, [s])
    with torch.no_grad():
        out, _ = m.histories(seq, tim, lens, m.item_interest(m.item_semantic()))
        for t in range(len(s) - 1):
            q = UserQuery(history=s[: t + 1], times=np.arange(t + 1, dtype=np.float64))
            h, _, _, _ = fitted._start_states([q])
            assert torch.allclose(out[0, t], h[0], atol=1e-5), t


def test_cold_start_interest_is_built_like_the_training_interest(fitted: InterestRNN, data: RecData) -> None:
    """Eq. (2) on a text stream (one behaviour per " . "-separated video text) gives the interest that
    training computes from the same videos' topics: the cold path reads what training fed it."""
    from vidpop.models.interest_rnn.batching import item_documents

    m, s = fitted.module_, data.sequences[5]
    docs = item_documents(data.items)
    sums, totals = fitted._text_interests([" . ".join(docs[i] for i in s)])
    seq, tim, lens = _padded(fitted, [s])
    with torch.no_grad():
        train_u = m.prefix_interests(seq, tim, lens)[0, len(s) - 1]
    assert np.allclose(sums[0] / totals[0], train_u.numpy(), atol=1e-5)


def test_length_bucketed_gru_equals_one_packed_pass() -> None:
    """SYNTHETIC tensors: the bucketed GRU gives the same outputs, last states and gradients as one
    packed pass over the whole batch (and zeros past each user's length)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    gru = torch.nn.GRU(6, 5, batch_first=True)
    lens = torch.tensor([1, 5, 2, 9, 3, 1, 4, 12, 7])
    x = torch.randn(9, 12, 6, requires_grad=True)
    out, last = packed_gru_by_length(gru, x, lens)
    ref, ref_last = gru(pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False))
    ref, _ = pad_packed_sequence(ref, batch_first=True, total_length=12)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(last, ref_last[0])
    assert float(out[0, 1:].abs().sum()) == 0.0
    params = [x, *gru.parameters()]
    g = torch.autograd.grad((out**2).sum() + last.sum(), params)
    g_ref = torch.autograd.grad((ref**2).sum() + ref_last.sum(), params)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_gru_input_dropout_draws_on_the_real_steps_only() -> None:
    """SYNTHETIC tensors: the input dropout sees each user's real steps (sum of lengths x width), never
    the padding, and its effect reaches the outputs like dropout on the padded batch would."""
    torch.manual_seed(0)
    gru = torch.nn.GRU(6, 5, batch_first=True)
    lens = torch.tensor([1, 5, 2, 9, 3, 1, 4, 12, 7])
    x = torch.randn(9, 12, 6)
    seen: list[int] = []

    class Counting(torch.nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            seen.append(t.numel())
            return torch.zeros_like(t)  # drop everything: the outputs must equal a GRU fed zeros

    out, last = packed_gru_by_length(gru, x, lens, input_dropout=Counting())
    assert sum(seen) == int(lens.sum()) * 6
    ref, ref_last = packed_gru_by_length(gru, torch.zeros_like(x), lens)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(last, ref_last)


def test_a_users_states_do_not_depend_on_who_shares_the_pass(fitted: InterestRNN, data: RecData) -> None:
    """The relevance partners ride in the batch's GRU pass (SYNTHETIC fixture): a user's outputs and
    last state are the same alone, padded to a longer partner's width, or beside any other users."""
    m = fitted.module_
    m.eval()
    batch = [np.asarray(data.sequences[i][:k]) for i, k in ((0, 3), (1, 5), (2, 2))]
    partners = [np.asarray(data.sequences[i]) for i in (3, 4, 5, 6)]
    with torch.no_grad():
        emb = m.item_interest(m.item_semantic())
        seq, tim, lens = _padded(fitted, batch)
        width = int(lens.max())
        alone_out, alone_last = m.histories(seq[:, :width], tim[:, :width], lens, emb)
        seq, tim, lens = _padded(fitted, batch + partners)
        joint_out, joint_last = m.histories(seq, tim, lens, emb)
        _, partners_last = m.histories(*_padded(fitted, partners), emb)
    assert seq.shape[1] > width  # the partners are longer: the batch is padded further
    torch.testing.assert_close(joint_out[:3, :width], alone_out)
    torch.testing.assert_close(joint_last[:3], alone_last)
    torch.testing.assert_close(joint_last[3:], partners_last)


def test_gru_input_depends_on_the_item_id_embedding(fitted: InterestRNN) -> None:
    """The input side carries the learnt item vector ``e_v`` too (tied with the output side): changing
    one item's ``e_v`` changes the state after a history containing it (and only with ``id_input``)."""
    m = fitted.module_
    m.eval()
    seq, tim, lens = _padded(fitted, [np.array([1, 2, 3])])
    with torch.no_grad():
        emb = m.item_interest(m.item_semantic())
        _, before = m.histories(seq, tim, lens, emb)
        saved = m.item_id.weight[2].clone()
        m.item_id.weight[2] += 1.0
        _, after = m.histories(seq, tim, lens, emb)
        m.id_input = False
        _, content_only = m.histories(seq, tim, lens, emb)
        m.item_id.weight[2] -= 1.0
        _, content_only_back = m.histories(seq, tim, lens, emb)
        m.id_input = True
        m.item_id.weight[2] = saved
    assert not torch.allclose(before, after)
    assert torch.allclose(content_only, content_only_back)


def test_sampled_loss_with_every_item_as_negative_is_the_full_softmax(fitted: InterestRNN) -> None:
    m = fitted.module_
    m.eval()
    torch.manual_seed(0)
    h = torch.randn(7, fitted.config.hidden)
    nxt = torch.randint(0, fitted.dims_.n_items, (7,))
    with torch.no_grad():
        targets = m.item_targets(m.item_interest(m.item_semantic()))
        full = m.next_item_loss(h, targets, nxt)
        sampled = m.next_item_loss(h, targets, nxt, torch.arange(fitted.dims_.n_items))
        fewer = m.next_item_loss(h, targets, nxt, torch.arange(10))
    assert float(sampled) == pytest.approx(float(full), rel=1e-5)
    assert float(fewer) < float(full)  # fewer competitors, smaller loss


def test_batch_item_table_equals_the_full_one_on_its_items(fitted: InterestRNN) -> None:
    m = fitted.module_
    items = torch.tensor([0, 3, 5, 17, 40])
    with torch.no_grad():
        full = m.item_interest(m.item_semantic())
        part = m.batch_item_interest(items)
    assert torch.allclose(part[items], full[items], atol=1e-6)
    assert float(part[[1, 2, 4]].abs().sum()) == 0.0


def test_sampled_negatives_train_and_learn(data: RecData) -> None:
    model = small_model(n_negatives=16).fit(data)
    losses = [e["train_loss"] for e in model.history_["epochs"]]
    assert losses[-1] < losses[0]
    q = [UserQuery(history=s[:-1], times=None) for s in data.sequences[:40]]
    hits = np.mean([s[-1] in r for s, r in zip(data.sequences[:40], model.recommend(q, k=5), strict=True)])
    assert hits > 0.5  # SYNTHETIC cyclic clusters: the next video is predictable


def test_early_stopping_reads_the_validation_item(data: RecData) -> None:
    """With the protocol's validation items every user trains, and each epoch is scored by HR/NDCG@10
    of those items (the kept epoch is the best validation NDCG); without them the old held-out-user
    loss is monitored."""
    from vidpop.training.rec_protocol import RecValidation

    assert InterestRNN.uses_validation
    val = RecValidation(
        [UserQuery(history=s[:-1], times=None) for s in data.sequences[:50]],
        [np.array([s[-1]]) for s in data.sequences[:50]],
    )
    tc = TrainConfig(epochs=6, batch_size=32, lr=1e-2, optimizer="adam", patience=2, progress=False)
    model = small_model(val_fraction=0.5, train=tc).fit(data, validation=val)
    epochs = model.history_["epochs"]
    assert all("val_NDCG@10" in e and "val_HR@10" in e for e in epochs)
    best = int(np.argmax([e["val_NDCG@10"] for e in epochs]))
    assert model.best_epoch_ == best
    assert all(e["val_loss"] == pytest.approx(1.0 - e["val_NDCG@10"]) for e in epochs)
    # no users were held out: the monitored loss is not the held-out users' loss
    assert "val_rec" not in epochs[0]
    old = small_model(epochs=2, val_fraction=0.5).fit(data)
    assert "val_rec" in old.history_["epochs"][0] and "val_NDCG@10" not in old.history_["epochs"][0]


@pytest.mark.parametrize(("n_negatives", "threads_in_training"), [(0, 2), (8, 1)])
def test_the_full_softmax_trains_on_all_threads(
    monkeypatch: pytest.MonkeyPatch, data: RecData, n_negatives: int, threads_in_training: int
) -> None:
    """SYNTHETIC fixture. The full softmax multiplies the whole item table every step (an epoch on all
    MicroLens users: 157 s on 2 threads against 215 s on one), so it trains on torch's threads; the
    sampled loss of a module this small keeps the loop's one thread."""
    from vidpop.models.interest_rnn.network import InterestRNNNet

    seen: list[int] = []
    real = InterestRNNNet.next_item_loss

    def recording(self: InterestRNNNet, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(InterestRNNNet, "next_item_loss", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        small_model(epochs=1, n_negatives=n_negatives).fit(data)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {threads_in_training}


def test_seconds_per_epoch_leave_out_the_validation_loss_pass(data: RecData, monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNTHETIC data, a fake clock: each validation-loss pass of the held-out users "takes" 100 s, a
    training step 1 s. An epoch's seconds count the steps only (they counted the validation pass, which
    ran before the model's own epoch callback stopped its clock)."""
    import time as time_module

    from vidpop.training import loop

    now = [0.0]
    monkeypatch.setattr(time_module, "perf_counter", lambda: now[0])
    real_eval, real_step = loop.evaluate_loss, torch.optim.Adam.step

    def slow_eval(*args, **kwargs):
        now[0] += 100.0
        return real_eval(*args, **kwargs)

    def counted_step(self, *args, **kwargs):
        now[0] += 1.0
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(loop, "evaluate_loss", slow_eval)
    monkeypatch.setattr(torch.optim.Adam, "step", counted_step)
    model = small_model(epochs=2, val_fraction=0.2).fit(data)  # no validation items: 20 % of users held out
    steps = -(-round(len(data.sequences) * 0.8) // 32)
    assert model.seconds_per_epoch_ == pytest.approx(steps)
    assert [r["train_seconds"] for r in model.history_["epochs"]] == pytest.approx([steps, steps])


def test_joined_text_feature_puts_parts_side_by_side(data: RecData) -> None:
    """``"title_minilm+lsa"``: the SYNTHETIC precomputed rows beside the TF-IDF+SVD rows, each part with
    unit row norm (so the 16-wide vector and the LSA part weigh alike); a single part is unchanged; the
    protocol is asked for the precomputed part only; an empty part is a clear error."""
    from vidpop.errors import VidpopError
    from vidpop.models.interest_rnn.batching import TextFeatures, precomputed_text_features

    joined, _ = TextFeatures("title_minilm+lsa", lsa_dim=4).fit_transform(data)
    alone, _ = TextFeatures("title_minilm").fit_transform(data)
    lsa, _ = TextFeatures("lsa", lsa_dim=4).fit_transform(data)
    width = alone.shape[1]
    assert joined.shape == (data.n_items, width + lsa.shape[1])
    np.testing.assert_allclose(joined[:, :width], alone / np.linalg.norm(alone, axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(joined[:, width:], lsa, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alone, data.item_features["title_minilm"])
    assert precomputed_text_features("title_minilm+lsa") == ("title_minilm",)
    assert small_model(text_feature="title_minilm+lsa").item_feature_kinds[0] == "title_minilm"
    with pytest.raises(VidpopError, match="empty part"):
        TextFeatures("title_minilm+", lsa_dim=4)
    model = small_model(epochs=2, text_feature="title_minilm+lsa", lsa_dim=4).fit(data)
    assert model.module_.text.shape[1] == width + lsa.shape[1]
