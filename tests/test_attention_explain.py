"""Explainable attention model: attention maths, Grad-CAM against hand computation, the end-to-end
gradient path, save/load, the YouTube adapter, and one real explanation (MicroLens clip).

Unit tests use tiny synthetic inputs (labelled as such); the end-to-end ones use real data slices.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from vidpop.errors import VidpopError
from vidpop.explain.gradcam import cam_from_gradients, grad_cam, normalise_maps, scale_by_attention
from vidpop.models import build_model, load_model
from vidpop.models.attention_explain import AdditiveAttention, AttentionInputs, masked_softmax

FAST = {"epochs": 3, "progress": False, "batch_size": 32}


# ------------------------------------------------------------------------------------------ attention
def test_attention_weights_sum_to_one_and_masked_positions_get_zero() -> None:
    torch.manual_seed(0)
    att = AdditiveAttention(8, 4)
    nn.init.normal_(att.score.weight)  # not the zero init, so the weights are not trivially uniform
    x = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 1, 0, 1]], dtype=torch.bool)
    pooled, alpha = att(x, mask)
    assert pooled.shape == (3, 8) and alpha.shape == (3, 5)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
    assert (alpha[~mask] == 0).all()
    assert alpha[0].std() > 0  # real attention, not uniform
    # the pooled vector is the α-weighted sum of the unmasked items only
    torch.testing.assert_close(pooled[1], alpha[1, 0] * x[1, 0] + alpha[1, 1] * x[1, 1])


def test_masked_softmax_of_a_fully_masked_row_is_zero_not_nan() -> None:
    w = masked_softmax(torch.randn(2, 3), torch.tensor([[0, 0, 0], [1, 0, 1]], dtype=torch.bool))
    assert torch.isfinite(w).all()
    assert w[0].sum() == 0
    assert float(w[1].sum()) == pytest.approx(1.0)


def test_untrained_attention_is_mean_pooling() -> None:
    att = AdditiveAttention(4, 3)  # W_a starts at zero
    _, alpha = att(torch.randn(1, 4, 4), torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(alpha, torch.full((1, 4), 0.25))


# ------------------------------------------------------------------------------------------ Grad-CAM
class ToyCNN(nn.Module):
    """Synthetic backbone: one 2×2 conv with fixed weights, 2 channels, no bias (hand-computable)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[0.0, 1.0], [0.0, 0.0]]]]))
        for p in self.parameters():
            p.requires_grad_(False)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_grad_cam_on_toy_cnn_matches_hand_computation() -> None:
    img = torch.tensor([[[[1.0, 2.0, 0.0], [0.0, 3.0, 1.0], [2.0, 0.0, 4.0]]]])  # (1, 1, 3, 3)
    # By hand: channel 0 = x[i,j] + x[i+1,j+1]; channel 1 = x[i,j+1]
    A0 = np.array([[1 + 3, 2 + 1], [0 + 0, 3 + 4]], float)
    A1 = np.array([[2, 0], [3, 1]], float)
    fmap = ToyCNN().feature_map(img).requires_grad_(True)
    np.testing.assert_allclose(fmap[0, 0].detach().numpy(), A0)
    np.testing.assert_allclose(fmap[0, 1].detach().numpy(), A1)
    # score = w · spatial mean(A) => ∂s/∂A_f = w_f / 4 everywhere => γ = w / 4
    w = torch.tensor([1.0, -2.0])
    score = (fmap.mean(dim=(2, 3))[0] * w).sum()
    maps, grads = grad_cam(fmap, score)
    gamma = np.array([1.0, -2.0]) / 4
    expected = np.maximum(gamma[0] * A0 + gamma[1] * A1, 0)  # [[0, 0.75], [0, 1.25]]
    expected = expected / expected.max()
    np.testing.assert_allclose(maps[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(grads[0, 1].numpy(), np.full((2, 2), -0.5))


def test_gradcam_helpers_normalise_and_scale_by_attention() -> None:
    cams = torch.tensor([[[0.0, 2.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], [[3.0, 3.0], [0.0, 6.0]]])
    normed = normalise_maps(cams)
    assert float(normed[0].max()) == 1.0 and float(normed[2, 1, 1]) == 1.0
    assert (normed[1] == 0).all()  # an empty map stays empty, no division by zero
    scaled = scale_by_attention(normed, torch.tensor([0.2, 0.3, 0.5]))
    torch.testing.assert_close(scaled[0], normed[0] * 0.4)
    torch.testing.assert_close(scaled[2], normed[2])
    with pytest.raises(VidpopError):
        cam_from_gradients(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 2, 2))


def test_grad_cam_refuses_a_detached_feature_map() -> None:
    with pytest.raises(VidpopError, match="graph"):
        grad_cam(torch.zeros(1, 2, 2, 2), torch.tensor(0.0))


# ------------------------------------------------------------------------------------------ model (synthetic frames)
class ToyBackbone(nn.Module):
    """Synthetic 4-channel conv backbone standing in for the image CNN in fast unit tests."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, kernel_size=3, stride=2)
        for p in self.parameters():
            p.requires_grad_(False)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def _toy_frames(n: int, n_frames: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Synthetic clips: label 1 iff the red channel is bright in one of the frames."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.rand(n, n_frames, 3, 12, 12, generator=g)
    y = (torch.arange(n) % 2).numpy()
    for i in np.flatnonzero(y):
        imgs[i, i % n_frames, 0] += 2.0
    with torch.no_grad():
        pooled = ToyBackbone().feature_map(imgs.flatten(0, 1)).mean(dim=(2, 3)).view(n, n_frames, -1)
    return imgs, pooled.numpy(), y


def test_frames_model_end_to_end_gradients_and_shapes_and_save_load(tmp_path) -> None:
    imgs, pooled, y = _toy_frames(64, 5)
    m = build_model("attention_explain", modalities="frames", frame_dim=16, attn_dim=8, hidden=8, train=FAST)
    X = AttentionInputs(frames=pooled)
    m.fit(X, y)
    proba = m.predict_proba(X)
    assert proba.shape == (64, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    alpha = m.attention(X)["alpha"]
    assert alpha.shape == (64, 5)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-5)
    # raw frames -> backbone conv map -> pooled -> model: same prediction as the cached path, and
    # the popular-class score has non-zero gradients on the conv map
    out = m.forward_from_frames(imgs[3], None, backbone=ToyBackbone())
    torch.testing.assert_close(torch.softmax(out["logits"], 1)[0], torch.from_numpy(proba[3]), atol=1e-5, rtol=1e-4)
    maps, grads = grad_cam(out["feature_map"], out["logits"][0, 1], out["alpha"][0])
    assert grads.abs().sum() > 0
    assert maps.shape == (5, 5, 5) and float(maps.max()) <= 1.0 + 1e-6 and float(maps.min()) >= 0.0
    m.save(tmp_path / "m")
    m2 = load_model(tmp_path / "m")
    np.testing.assert_allclose(m2.predict_proba(X), proba, atol=1e-6)


def test_model_checks_its_inputs() -> None:
    with pytest.raises(VidpopError, match="modalities"):
        build_model("attention_explain", modalities="audio")
    m = build_model("attention_explain", modalities="frames", train=FAST)
    with pytest.raises(VidpopError, match="both classes"):
        m.fit(AttentionInputs(frames=np.zeros((4, 2, 3))), np.zeros(4))
    with pytest.raises(VidpopError, match="shape"):
        AttentionInputs(frames=np.zeros((4, 3)))
    m.fit(AttentionInputs(frames=np.random.default_rng(0).normal(size=(8, 2, 3))), np.arange(8) % 2)
    with pytest.raises(VidpopError, match="uses frames"):
        m.predict(AttentionInputs(titles=["a"] * 8))


# ------------------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def youtube():
    from vidpop.data.adapters import get_adapter

    return get_adapter("youtube_views_subscribers_2025").load()


def test_youtube_adapter_matches_source_md(youtube) -> None:
    from vidpop.data.adapters import get_adapter

    adapter = get_adapter("youtube_views_subscribers_2025")
    assert youtube.row_counts()["videos"] == adapter.expected_rows["videos"] == 6062  # SOURCE.md: 6,062 rows
    assert youtube.row_counts()["authors"] == adapter.expected_rows["authors"]
    assert youtube.check_joins() == {"interactions_unknown_video": 0, "videos_unknown_author": 0}
    table = youtube.videos_with_authors()
    assert (table["author_followers"] == 0).sum() == 1  # SOURCE.md: 1 row has subscribers = 0
    # SOURCE.md: the median of views / subscribers is about 6.9
    from vidpop.data.labels import MedianSplitLabeler

    lab = MedianSplitLabeler("views", "author_followers").fit(table)
    assert 6.5 < lab.threshold_ < 7.3


def test_headline_model_on_real_titles_saves_and_reloads(youtube, tmp_path) -> None:
    from vidpop.explain.attention_bench import headline_task

    task = headline_task(youtube.subset(n=400))
    y = task.labeler.fit_transform(task.table)
    m = build_model("attention_explain", modalities="headline", lstm_hidden=8, attn_dim=8, hidden=8, train=FAST)
    m.fit(task.inputs.take(np.arange(300)), y[:300])
    test = task.inputs.take(np.arange(300, 400))
    beta = m.attention(test)["beta"]
    tokens = m.encode_titles(test.titles)
    assert beta.shape == tokens.shape == (100, m.config.max_words)
    np.testing.assert_allclose(beta.sum(axis=1), 1.0, rtol=1e-5)
    assert (beta[tokens == 0] == 0).all()  # padding words get no attention
    m.save(tmp_path / "h")
    m2 = load_model(tmp_path / "h")
    np.testing.assert_allclose(m2.predict_proba(test), m.predict_proba(test), atol=1e-6)
    np.testing.assert_allclose(m2.attention(test)["beta"], beta, atol=1e-6)
    # a headline-only model explains a clip by its words alone (no frames are decoded)
    from vidpop.explain.video import explain_video

    data = explain_video(m2, tmp_path / "not_needed.mp4", test.titles[0], tmp_path / "ex")
    assert data["frames"] == [] and data["top_frame"] is None
    assert sum(w["beta"] for w in data["words"]) == pytest.approx(1.0, abs=1e-3)
    assert (tmp_path / "ex" / "explanation.png").exists()


def test_fit_is_reproducible_for_a_seed() -> None:
    _, pooled, y = _toy_frames(32, 3)
    X = AttentionInputs(frames=pooled)
    models = [build_model("attention_explain", modalities="frames", frame_dim=8, hidden=8, train=FAST) for _ in "ab"]
    probas = [m.fit(X, y).predict_proba(X) for m in models]
    np.testing.assert_array_equal(probas[0], probas[1])


def test_explanation_written_for_a_real_microlens_clip(youtube, tmp_path) -> None:
    """Real clip + real title through the real EfficientNet; the model's frame branch is trained on
    synthetic 1280-d features (labelled synthetic) so that the test stays fast."""
    from vidpop.config import dataset_dir
    from vidpop.explain.video import explain_video

    clip = dataset_dir("microlens") / "videos" / "10034.mp4"
    titles = youtube.videos["title"].head(120).tolist()
    rng = np.random.default_rng(0)
    X = AttentionInputs(titles=titles, frames=rng.random((120, 2, 1280)).astype(np.float32))
    m = build_model("attention_explain", n_frames=3, seconds=2.0, lstm_hidden=8, hidden=8, train=FAST)
    m.fit(X, np.arange(120) % 2)
    data = explain_video(m, clip, "demon water water is also super handsome OK # water prince", tmp_path)
    assert len(data["frames"]) == 3
    times = [f["timestamp"] for f in data["frames"]]
    assert times == sorted(times) and times[0] >= 0 and times[-1] < 2.0
    assert sum(f["alpha"] for f in data["frames"]) == pytest.approx(1.0, abs=1e-4)
    assert data["grad_norm"] > 0  # the popular-class score's gradients reached the conv map
    heat = np.array(data["frames"][0]["heatmap"])
    assert heat.shape == (7, 7) and heat.min() >= 0 and heat.max() <= 1
    assert [w["word"] for w in data["words"]][:3] == ["demon", "water", "water"]
    # the end-to-end path (raw frames -> conv map -> pooled -> model) predicts what the cached path predicts
    from vidpop.explain.video import read_clip
    from vidpop.features.image import embed_images

    frames, _ = read_clip(clip, 3, 2.0)
    cached = AttentionInputs(titles=[data["title"]], frames=embed_images(frames, runtime="torch")[None])
    assert m.predict_proba(cached)[0, 1] == pytest.approx(data["p_popular"], abs=1e-4)
    saved = json.loads((tmp_path / "explanation.json").read_text())
    assert saved["p_popular"] == data["p_popular"]
    for rel in [data["files"]["explanation_png"], data["files"]["top_frame_png"], data["frames"][2]["overlay_png"]]:
        with open(tmp_path / rel, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_table_says_no_labelled_videos_instead_of_numbers(youtube) -> None:
    from vidpop.errors import NoLabelledDataError
    from vidpop.explain.attention_bench import attention_table, format_table, video_task

    with pytest.raises(NoLabelledDataError, match="no labelled videos"):
        video_task(youtube, n_frames=4, seconds=6.0)  # headlines only, no video files
    rows = attention_table(None, None, None, seeds=[0])
    assert [r["row"] for r in rows][:2] == ["frames, mean pooling", "frames, attention"]
    assert all("accuracy" not in r for r in rows)
    assert rows[0]["note"] == "no labelled videos"
    text = format_table(rows, [0])
    assert text.count("no labelled videos") == 2 and "no headline data" in text


def _write_clip(path, colour: tuple[int, int, int], n: int = 12) -> None:
    """A synthetic 64x48 clip, 10 fps, of a flat colour with a moving white square."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            img = np.zeros((48, 64, 3), np.uint8) + np.array(colour, np.uint8)
            img[10:20, 4 * i : 4 * i + 10] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_frame_rows_run_on_a_labelled_video_collection(tmp_path, monkeypatch) -> None:
    """Synthetic labelled clips (labelled as such) exercise the frame rows of the table end to end:
    frame features through the feature store, grouped split, training, accuracy and Spearman."""
    import pandas as pd

    from vidpop.data.schema import VideoDataset
    from vidpop.explain.attention_bench import evaluate_row, video_task
    from vidpop.training.loop import TrainConfig

    monkeypatch.setenv("VIDPOP_CACHE", str(tmp_path / "cache"))
    rows = []
    for i in range(12):
        path = tmp_path / f"clip{i}.mp4"
        _write_clip(path, (200, 30, 30) if i % 2 else (30, 30, 200))
        views = 100 + 50 * (i % 2) + i
        rows.append({"video_id": f"v{i}", "title": f"clip number {i}", "video_path": str(path), "views": views})
    ds = VideoDataset("synthetic_clips", pd.DataFrame(rows))
    task = video_task(ds, n_frames=3, seconds=1.0, progress=False)
    assert task.inputs.frames.shape == (12, 3, 1280)
    # the known answer: colour decides the label (red clips have the higher views), so held-out clips are
    # all classified right, where a constant guess gets only one class of them right
    res = evaluate_row(task, {"modalities": "frames"}, [0], TrainConfig(epochs=40, progress=False)).as_dict()
    assert res["n_test"] == 2 and res["accuracy"] == 1.0, res
    assert res["note"] == "3 frames over the first 1 s"


# ------------------------------------------------------------------------------------------ α: learned or not
def _one_frame_carries_the_label(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC clips of 6 frames of 16-d noise. Only frame 2 carries the label (feature 0 = ±1.5); the
    other frames have large noise in that feature, so mean pooling blurs it, and frame 2 looks different
    (feature 1 shifted), so an attention can find it."""
    rng = np.random.default_rng(seed)
    frames = rng.normal(0, 1, (n, 6, 16)).astype(np.float32)
    frames[:, :, 0] *= 3.0
    y = np.arange(n) % 2
    frames[:, 2, 0] = np.where(y == 1, 1.5, -1.5) + rng.normal(0, 0.3, n)
    frames[:, 2, 1] += 3.0
    return frames, y


def test_frame_attention_learns_the_frame_that_carries_the_label() -> None:
    """SYNTHETIC multi-frame task: when labelled clips exist, α concentrates on the informative frame."""
    from vidpop.models.attention_explain import ALPHA_UNIFORM

    frames, y = _one_frame_carries_the_label(300)
    train = {"epochs": 30, "progress": False, "batch_size": 32, "lr": 1e-2, "patience": 30}
    m = build_model("attention_explain", modalities="frames", frame_dim=16, attn_dim=8, hidden=8, train=train)
    m.fit(AttentionInputs(frames=frames[:200]), y[:200])
    test = AttentionInputs(frames=frames[200:])
    alpha = m.attention(test)["alpha"]
    assert alpha[:, 2].mean() > 0.5, alpha.mean(axis=0)  # uniform would be 1/6 (measured: 0.87)
    assert (alpha.argmax(axis=1) == 2).mean() > 0.8
    assert (m.predict(test) == y[200:]).mean() > 0.8
    status = m.frame_attention_status(alpha[0])
    assert m.frame_attention_trained_ and status["learned"] and status["note"] is None
    assert m.frame_attention_status(np.ones(6) / 6)["note"] == ALPHA_UNIFORM


def test_alpha_of_a_model_trained_on_one_frame_covers_is_marked_not_learned(tmp_path) -> None:
    """SYNTHETIC: the shipped explainer's case (one-frame covers): α never gets a gradient, stays uniform, and
    the JSON, the PNG caption and the CLI-facing status say so; the top frame is the Grad-CAM one."""
    from vidpop.explain.gradcam import ClipExplanation
    from vidpop.explain.render import render_explanation
    from vidpop.models.attention_explain import ALPHA_NOT_LEARNED

    frames, y = _one_frame_carries_the_label(64)
    m = build_model("attention_explain", modalities="frames", frame_dim=16, attn_dim=8, hidden=8, train=FAST)
    m.fit(AttentionInputs(frames=frames[:, 2:3]), y)  # one frame per row
    assert m.frame_attention_trained_ is False
    alpha = m.attention(AttentionInputs(frames=frames[:4]))["alpha"]
    np.testing.assert_allclose(alpha, 1 / 6, atol=1e-6)  # uniform on multi-frame input
    status = m.frame_attention_status(alpha[0])
    assert status == {"learned": False, "uniform": True, "note": ALPHA_NOT_LEARNED}
    m.save(tmp_path / "m")
    assert load_model(tmp_path / "m").frame_attention_status(alpha[0])["note"] == ALPHA_NOT_LEARNED
    del m.frame_attention_trained_  # a model saved before this was recorded: uniform α counts as untrained
    assert m.frame_attention_status(alpha[0])["note"] == ALPHA_NOT_LEARNED

    evidence = np.array([0.1, 0.2, 0.9, 0.3, 0.0, 0.1])
    heat = np.zeros((6, 3, 3))
    expl = ClipExplanation(0.5, alpha[0], heat, heat, 1.0, evidence, [], [], None)
    imgs = [np.zeros((8, 8, 3), np.uint8)] * 6
    data = render_explanation(imgs, [0.1 * i for i in range(6)], expl, "", tmp_path / "e", frame_attention=status)
    assert data["frame_attention"]["note"] == ALPHA_NOT_LEARNED and data["top_frame"] == 2
    saved = json.loads((tmp_path / "e" / "explanation.json").read_text())
    assert saved["frame_attention"]["note"] == ALPHA_NOT_LEARNED
