"""Tensors for the sequential torch baselines (FPMC, SASRec): left-padded history windows with
item index ``i`` stored as ``i + 1`` so that 0 is padding, and the training-loop settings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidpop.models.recommender import UserQuery
from vidpop.training.loop import TrainConfig


def left_pad(histories: Sequence[np.ndarray], width: int) -> np.ndarray:
    """(n, width) int64: the last ``width`` items of each history, shifted by +1, left-padded with 0."""
    out = np.zeros((len(histories), width), np.int64)
    for r, h in enumerate(histories):
        h = np.asarray(h, np.int64)[-width:]
        if len(h):
            out[r, width - len(h) :] = h + 1
    return out


def next_item_samples(sequences: Sequence[np.ndarray], window: int) -> dict[str, np.ndarray]:
    """One sample per (user, position t >= 1): the ``window`` items before t, the item at t-1 and the
    target at t (all shifted by +1)."""
    hist, target = [], []
    for s in sequences:
        s = np.asarray(s, np.int64)
        for t in range(1, len(s)):
            hist.append(s[max(0, t - window) : t])
            target.append(s[t] + 1)
    h = left_pad(hist, window)
    return {"hist": h, "last": h[:, -1].copy(), "target": np.asarray(target, np.int64)}


def query_windows(queries: Sequence[UserQuery], window: int) -> np.ndarray:
    return left_pad([q.history for q in queries], window)


def train_config(
    epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int, progress: bool
) -> TrainConfig:
    """Fixed number of epochs (patience 0: the protocol keeps ground truth away, so there is no
    validation signal to stop on)."""
    return TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        optimizer="adam",
        patience=0,
        seed=seed,
        progress=progress,
    )
