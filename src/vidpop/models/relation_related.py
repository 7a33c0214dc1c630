"""The related objects (competitors) of the relation network: the ``n`` titles released closest
before each title, and the model inputs built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError


def select_related(
    times: pd.Series | np.ndarray,
    query: np.ndarray,
    pool: np.ndarray,
    n: int = 3,
    categories: pd.Series | np.ndarray | None = None,
) -> np.ndarray:
    """For each row in ``query``, the ``n`` rows of ``pool`` released closest in time *strictly
    before* it (optionally only rows of the same category), as positions into ``times``; -1 pads
    when fewer exist.

    The paper's competitors are "TV series with the closest releasing dates"; here they are the ``n``
    closest *earlier* releases, chosen by the same rule for training and test rows (``pool`` is
    normally every dated title). A candidate is taken only if its release time is earlier than the
    query's, so neither a later title nor the title itself can be a competitor. Rows without a time
    get no competitors. Ties in time are broken by position (stable).
    """
    t = pd.to_datetime(pd.Series(np.asarray(times)), utc=True, errors="coerce")
    ns = np.where(t.notna(), t.astype("int64"), np.iinfo(np.int64).max).astype(np.int64)
    known = t.notna().to_numpy()
    query, pool = np.asarray(query, np.int64), np.asarray(pool, np.int64)
    pool = pool[known[pool]]
    cats = (
        np.zeros(len(ns), dtype=np.int64)
        if categories is None
        else pd.factorize(pd.Series(np.asarray(categories)).astype(str))[0]
    )
    out = np.full((len(query), n), -1, dtype=np.int64)
    for c in np.unique(cats[query]):
        p = pool[cats[pool] == c]
        p = p[np.argsort(ns[p], kind="stable")]
        p_t = ns[p]
        rows = np.flatnonzero(cats[query] == c)
        for r in rows:
            q = query[r]
            if not known[q]:
                continue
            end = int(np.searchsorted(p_t, ns[q], side="left"))  # pool items strictly earlier
            picked = p[max(0, end - n) : end][::-1]  # closest first
            out[r, : len(picked)] = picked
    return out


def relation_inputs(features: np.ndarray, related: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Model inputs for ``rows``: own features ``x`` (m, d), the competitors' features ``rel``
    (m, n, d; zeros where padded) and ``rel_mask`` (m, n; 1 = a real competitor)."""
    rows = np.asarray(rows, np.int64)
    if len(related) != len(rows):
        raise VidpopError("related must have one row per selected row")
    feats = np.asarray(features, np.float32)
    mask = related >= 0
    rel = feats[np.where(mask, related, 0)] * mask[..., None]
    return {"x": feats[rows], "rel": rel.astype(np.float32), "rel_mask": mask.astype(np.float32)}
