"""Model calls behind a prediction, read-only on the loaded models: what a model can do (its declared
capabilities), the count model's inputs and seeded samples, the attention model's P(popular) and word weights."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset


def capabilities(model: Any) -> frozenset[str]:
    """What a model declares it can do (``capabilities`` on its class: predict, intervals, explain, recommend,
    from_text); models that declare nothing are classified by what they implement."""
    declared = getattr(type(model), "capabilities", None)
    if declared is not None:
        return frozenset(str(c).replace(" ", "_") for c in declared)
    from vidpop.models.attention_explain import AttentionExplainModel
    from vidpop.models.recommender import Recommender

    if isinstance(model, Recommender):
        return frozenset({"recommend", "from_text"} if getattr(model, "uses_text", False) else {"recommend"})
    if isinstance(model, AttentionExplainModel):
        return frozenset({"predict", "explain"})
    if hasattr(model, "predict_interval"):
        return frozenset({"predict", "intervals"})
    if hasattr(model, "predict_proba"):
        return frozenset({"predict"})
    return frozenset()


def per_call_view(model: Any, **config: Any) -> Any:
    """A shallow copy of ``model`` whose config carries per-call settings (feature-store path, progress): the
    network and fitted state are shared, the loaded model itself is never changed."""
    view = copy.copy(model)
    known = {f.name for f in dataclasses.fields(model.config)}
    view.config = dataclasses.replace(model.config, **{k: v for k, v in config.items() if k in known})
    return view


def count_inputs(model: Any, recipe: dict[str, Any], ds: VideoDataset, work: Path) -> Any:
    """The PoE inputs of a one-row dataset; media without a trained expert are not decoded at all."""
    from vidpop.models.poe_inputs import build_poe_inputs

    trained = set(model.trained_modalities_)
    if "visual" not in trained and "acoustic" not in trained:
        ds = VideoDataset(ds.name, ds.videos.assign(video_path=None, cover_path=None), ds.authors)
    X = build_poe_inputs(ds, text_views=False, progress=False, store=work / "features")
    return align_social(X, ds, recipe.get("social_names", []))


def count_prediction(model: Any, X: Any, level: float) -> dict[str, np.ndarray]:
    """Mean, interval bounds (targets,) and the seeded predictive samples (S, targets) of the first row."""
    r = model.predict_interval(X, level)
    samples = model.sample(X)[:, 0, :]  # the same seeded draws predict_interval used
    return {"mean": r["mean"][0], "lower": r["lower"][0], "upper": r["upper"][0], "samples": samples,
            "calibrated": bool(r.get("calibrated", False))}  # fmt: skip


def align_social(X: Any, ds: Any, names: list[str]) -> Any:
    """The social input in the trained column order: given values where the new video has them, NaN (= the
    training mean after standardising) for the rest; absent when the new video has no social value."""
    from vidpop.models.poe_inputs import PoEInputs, social_features

    values, masks = dict(X.values), dict(X.masks)
    values.pop("social", None)
    masks.pop("social", None)
    if names:
        got, mask, got_names = social_features(ds)
        row = np.full((1, len(names)), np.nan, np.float32)
        for j, n in enumerate(got_names):
            if n in names:
                row[0, names.index(n)] = got[0, j]
        if mask.any() and np.isfinite(row).any():
            values["social"], masks["social"] = row, np.ones(1, bool)
    return PoEInputs(values, masks, None, n=len(X))


def attention_inputs(model: Any, ds: Any, work: Path) -> Any:
    """The attention model's inputs: the clip's frames (else the cover as one frame) and the title."""
    from vidpop.features.extract import dataset_features
    from vidpop.models.attention_explain import AttentionInputs

    cfg = model.config
    frames = mask = None
    if cfg.uses_frames:
        store = work / "features"
        if ds.videos["video_path"].notna().any():
            f, present = dataset_features(
                ds, "frames_effnet", store=store, progress=False, n_frames=cfg.n_frames, first_seconds=cfg.seconds
            )
            if present.any():
                frames, mask = f, np.abs(f).sum(-1) > 0
        if frames is None and ds.videos["cover_path"].notna().any():
            c, present = dataset_features(ds, "cover_effnet", store=store, progress=False)
            if present.any():
                frames, mask = c[:, None, :], np.ones((1, 1), bool)
        if frames is None:  # no image at all: one masked frame of the trained width
            frames, mask = np.zeros((1, 1, int(model.feat_dim_)), np.float32), np.zeros((1, 1), bool)
    title = ds.videos["title"].iloc[0]  # pd.NA for a cover-only video (`NA or ""` raised TypeError: a 500)
    titles = [title if isinstance(title, str) else ""] if cfg.uses_headline else None
    return AttentionInputs(titles=titles, frames=frames, frame_mask=mask)


def attention_p_popular(model: Any, ds: Any, work: Path) -> float:
    return float(model.predict_proba(attention_inputs(model, ds, work))[0, 1])


def title_words(model: Any, title: str) -> list[dict[str, Any]]:
    """Word attention β of the attention model over a title (read from the title alone, no frames)."""
    from vidpop.data.preprocessing import tokenize
    from vidpop.models.attention_explain import AttentionInputs

    if not model.config.uses_headline:
        return []
    words = tokenize(title)[: model.config.max_words]
    if not words:
        return []
    frames = mask = None
    if model.config.uses_frames:
        frames, mask = np.zeros((1, 1, int(model.feat_dim_)), np.float32), np.zeros((1, 1), bool)
    beta = model.attention(AttentionInputs(titles=[title], frames=frames, frame_mask=mask))["beta"][0]
    vocab = model.vocab_
    return [{"word": w, "beta": round(float(b), 4), "in_vocab": w in vocab}
            for w, b in zip(words, beta[: len(words)], strict=True)]  # fmt: skip
