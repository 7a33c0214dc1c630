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
    from_text; see :mod:`vidpop.models.base`). Serving dispatches on this alone, never on ``hasattr``."""
    return frozenset(getattr(type(model), "capabilities", frozenset()))


def per_call_view(model: Any, **config: Any) -> Any:
    """A shallow copy of ``model`` whose config carries per-call settings (feature-store path, progress): the
    network and fitted state are shared, the loaded model itself is never changed."""
    view = copy.copy(model)
    known = {f.name for f in dataclasses.fields(model.config)}
    view.config = dataclasses.replace(model.config, **{k: v for k, v in config.items() if k in known})
    return view


def count_inputs(model: Any, recipe: dict[str, Any], ds: VideoDataset, work: Path) -> Any:
    """The count model's inputs for a one-row dataset, by the model's own ``prepare_inputs`` (the PoE: media
    without a trained expert are not decoded, the social columns follow the recipe's training order)."""
    if "social_names" in recipe:
        return model.prepare_inputs(ds, store=work / "features", social_names=recipe.get("social_names"))
    return model.prepare_inputs(ds, store=work / "features")


def joint_samples(model: Any) -> bool:
    """Whether a count model's seeded samples of two videos are a joint predictive distribution (the PoE's
    are: the same seeded draws), so that their paired difference has a meaningful interval. A conformal
    model's draws are its validation residuals, the same for every video: it declares ``joint_samples``
    False and is not used for the what-if between two titles when another count model is there."""
    return bool(getattr(type(model), "joint_samples", True))


def best_on_validation(recipe: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a model that ``vidpop train best`` chose on validation (None for any other model)."""
    rec = recipe.get("best_on_validation")
    return rec if isinstance(rec, dict) else None


def count_prediction(model: Any, X: Any, level: float) -> dict[str, np.ndarray]:
    """Mean, interval bounds (targets,) and the seeded predictive samples (S, targets) of the first row."""
    r = model.predict_interval(X, level)
    samples = model.sample(X)[:, 0, :]  # the same seeded draws predict_interval used
    return {"mean": r["mean"][0], "lower": r["lower"][0], "upper": r["upper"][0], "samples": samples,
            "calibrated": bool(r.get("calibrated", False))}  # fmt: skip


def attention_p_popular(model: Any, ds: Any, work: Path) -> float:
    return float(model.predict_proba(model.prepare_inputs(ds, store=work / "features"))[0, 1])


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
