"""The ``prepare_inputs(dataset, rows)`` of the popularity models that read a VideoDataset themselves
(issue 16 §3): what serving, ``vidpop predict`` and the recipes hand to ``predict``. Each function reads
the model's fitted state only; features go through the feature store ``store`` (None = the default one).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.poe_inputs import PoEInputs, build_poe_inputs, social_features


def poe_inputs_for(model: Any, ds: VideoDataset, store: Any = None, social_names: list[str] | None = None) -> PoEInputs:
    """The PoE's experts' inputs for the rows of ``ds``. Modalities the model has no expert for are not
    decoded; the social columns follow ``social_names`` (the recipe's training order, ``recipe.json``), a
    column the video lacks is NaN (the training mean after standardising), and without names the social
    block is kept only when it has the trained width."""
    trained = set(model.trained_modalities_)
    if "visual" not in trained and "acoustic" not in trained:  # no expert would read them: skip decoding
        ds = dataclasses.replace(ds, videos=ds.videos.assign(video_path=None, cover_path=None))
    X = build_poe_inputs(ds, text_views=False, progress=False, store=store)
    values, masks = dict(X.values), dict(X.masks)
    values.pop("social", None)
    masks.pop("social", None)
    if "social" in trained:
        got, mask, got_names = social_features(ds)
        names = list(social_names) if social_names is not None else got_names
        row = np.full((len(ds.videos), len(names)), np.nan, np.float32)
        for j, n in enumerate(got_names):
            if n in names:
                row[:, names.index(n)] = got[:, j]
        present = mask & np.isfinite(row).any(axis=1) if len(names) else np.zeros(len(row), bool)
        if present.any() and len(names) == model.in_dims_.get("social", len(names)):
            values["social"], masks["social"] = row, present
    return PoEInputs(values, masks, None, n=len(X))


def attention_inputs_for(model: Any, ds: VideoDataset, store: Any = None) -> Any:
    """Frames of each clip (else its cover as one frame, else no frame) and the title, as the attention
    model was trained on them; a row without any frame gets an all-masked frame of the trained width."""
    from vidpop.features.extract import dataset_features
    from vidpop.models.attention_explain import AttentionInputs

    cfg, v, n = model.config, ds.videos, len(ds.videos)
    frames = mask = None

    def fitting(values: np.ndarray, what: str) -> np.ndarray:
        if values.shape[-1] != model.feat_dim_:
            raise VidpopError(
                f"{what} features have {values.shape[-1]} dims, the model was trained on {model.feat_dim_}"
            )
        return values

    if cfg.uses_frames:
        n_frames = cfg.n_frames
        frames = np.zeros((n, n_frames, model.feat_dim_), np.float32)
        mask = np.zeros((n, n_frames), bool)
        if "cover_path" in v and v["cover_path"].notna().any():
            c, present = dataset_features(ds, "cover_effnet", store=store, progress=False)
            frames[present, 0], mask[present, 0] = fitting(c, "cover")[present], True
        if "video_path" in v and v["video_path"].notna().any():  # decoded frames win over the cover
            kw = {"n_frames": n_frames, "first_seconds": cfg.seconds}
            f, present = dataset_features(ds, "frames_effnet", store=store, progress=False, **kw)
            f = fitting(f, "frame")[:, :n_frames]
            frames[present], mask[present] = 0.0, False
            frames[present, : f.shape[1]] = f[present]
            mask[present, : f.shape[1]] = np.abs(f[present]).sum(-1) > 0
    titles = None
    if cfg.uses_headline:  # pd.NA for a cover-only video: an empty title, not a TypeError
        titles = [t if isinstance(t, str) else "" for t in v["title"].tolist()] if "title" in v else [""] * n
    return AttentionInputs(titles=titles, frames=frames, frame_mask=mask)
