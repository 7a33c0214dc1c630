"""Franchise history and title markers for the wide features of the relation model (issue 13).

A Bilibili season is often the next season, the film, the dub or the spin-off of an earlier one
("路人女主的养成方法" 2015 → "♭" 2017 → "Fine" 2020; "鬼灭之刃" → "鬼灭之刃 无限列车篇"). How the earlier
seasons did is the strongest prior of a new one, and the studio / cast statistics only see it
indirectly. Two blocks:

* :func:`franchise_stats`: per row, the titles most similar to its own (cosine of character
  2–3-gram TF-IDF vectors, fitted on the training titles) among the history titles whose label was
  known *strictly before the row's prediction date* — the same as-of rule as
  :func:`vidpop.models.relation_features.asof_target_stats`, so a row never sees itself, a later
  title or a same-day dub. Features: the best similarity, the log target of the most similar known
  title, the similarity-weighted mean log target of the ``k`` most similar, the number of known
  titles above ``threshold`` similarity, the largest log target among those, and log1p of the days
  since the most similar one was released;
* :func:`title_markers`: flags read from the title itself (dub, film, season number, OVA, special,
  concert, spin-off, ...), known as soon as the title is announced.

Measured on the validation part (7-day horizon): see :data:`vidpop.models.relation_features.DATASET_PRESETS`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: (feature name, regex on the title): what kind of release the title announces
MARKERS: tuple[tuple[str, str], ...] = (
    ("dub", r"中配|粤配|中文配音|国语|中文版|普通话|配音版"),
    ("film", r"剧场版|电影|劇場版|[Mm]ovie|THE MOVIE"),
    (
        "sequel",
        r"第[二三四五六七八九十2-9]+[季期部章]|[Ⅱ-Ⅹ]|\b(?:II|III|IV|V|VI|2nd|3rd|[2-9]th)\b|续篇|续集|新篇|[^\d][2-9]$",
    ),
    ("ova", r"OVA|OAD|特典|未播出"),
    ("special", r"特别篇|特別篇|SP\b|总集篇|番外|特辑|特別編"),
    ("event", r"音乐会|演唱会|LIVE|Live|广播|Radio|radio|交响"),
    ("spinoff", r"外传|外傳|前传|衍生|小剧场|迷你|mini|Mini|ぷち|プチ"),
    ("arc", r"篇$|篇\s|之章|编$"),
)


def _season_number(title: str) -> float:
    m = re.search(r"第([二三四五六七八九十\d]+)[季期部]", title)
    if not m:
        return 1.0
    s = m.group(1)
    digits = {"二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
    return float(s) if s.isdigit() else float(digits.get(s[-1], 2))


def title_markers(titles: pd.Series) -> np.ndarray:
    """(n, len(MARKERS) + 1) 0/1 flags of :data:`MARKERS` plus log of the season number."""
    t = titles.fillna("").astype(str)
    flags = [t.str.contains(rx, regex=True).to_numpy(np.float64) for _, rx in MARKERS]
    return np.stack([*flags, np.log([_season_number(x) for x in t])], axis=1)


MARKER_NAMES: tuple[str, ...] = (*(f"title_is_{n}" for n, _ in MARKERS), "title_season_log")
FRANCHISE_NAMES: tuple[str, ...] = (
    "fr_max_sim",
    "fr_top1_target",
    "fr_wmean_target",
    "fr_n_similar",
    "fr_max_target_similar",
    "fr_top1_days_log",
)


def franchise_stats(
    query_vec: np.ndarray,
    query_ns: np.ndarray,
    release_ns: np.ndarray,
    hist_vec: np.ndarray,
    hist_known_ns: np.ndarray,
    hist_release_ns: np.ndarray,
    hist_target: np.ndarray,
    k: int = 5,
    threshold: float = 0.5,
) -> np.ndarray:
    """(m, 6) franchise features (:data:`FRANCHISE_NAMES`) of the query rows.

    ``query_vec`` / ``hist_vec``: L2-normalised title vectors (dense or scipy sparse); ``query_ns``:
    each query's prediction date; ``hist_known_ns``: when each history label became known. Only
    history rows with ``hist_known_ns < query_ns`` count. A row with no known history gets
    similarity 0, the mean target of everything known by then (0 if nothing) and 0 days.
    """
    sim = query_vec @ hist_vec.T
    sim = np.asarray(sim.todense() if hasattr(sim, "todense") else sim, np.float32)
    known = hist_known_ns[None, :] < query_ns[:, None]
    sim = np.where(known, np.clip(sim, 0.0, 1.0), -1.0).astype(np.float32)
    y = np.asarray(hist_target, np.float64)
    n_known = known.sum(axis=1)
    g = np.where(n_known > 0, (known * y[None, :]).sum(axis=1) / np.maximum(n_known, 1), 0.0)
    k = max(1, min(k, sim.shape[1]))
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if sim.shape[1] else np.zeros((len(sim), 0), np.int64)
    top_sim = np.take_along_axis(sim, top, axis=1).astype(np.float64)
    order = np.argsort(-top_sim, axis=1, kind="stable")
    top, top_sim = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sim, order, axis=1)
    valid = top_sim > 0
    w = np.where(valid, top_sim, 0.0)
    top_y = y[top]
    best = top_sim[:, 0]
    has = valid[:, 0]
    wmean = np.where(w.sum(axis=1) > 0, (w * top_y).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12), g)
    similar = sim >= threshold
    n_sim = similar.sum(axis=1)
    max_sim_y = np.where(n_sim > 0, np.where(similar, y[None, :], -np.inf).max(axis=1), g)
    days = (release_ns - hist_release_ns[top[:, 0]]) / 86_400e9
    return np.stack(
        [
            np.where(has, best, 0.0),
            np.where(has, top_y[:, 0], g),
            wmean,
            np.log1p(n_sim),
            max_sim_y,
            np.where(has, np.log1p(np.clip(days, 0, None)), 0.0),
        ],
        axis=1,
    )
