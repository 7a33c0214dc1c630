"""Wide feature vector x of a title for the relation network + multi-task regressor (and the LightGBM
baseline, which must see exactly the same inputs).

It lives beside the model rather than in ``vidpop.features`` because it is a *fitted* transform of
table columns (vocabularies, SVD and scaling fitted on the training rows of one split; target
statistics read as of each row's prediction date), not a per-video extractor cached across splits.

Blocks (each optional, names in ``feature_names_``):

* multi-hot of "|"-joined columns (genre tags, cast, staff, studio, ...) via the core
  :class:`~vidpop.data.preprocessing.MultiHotEncoder`, vocabulary from train rows with ``min_count``;
* target statistics *as of the prediction date* (``author_column``: the first "|"-label, e.g. the
  studio; ``stats_columns``: every label, e.g. cast and staff): number of earlier labelled works and the
  smoothed mean log target of those works (mean and max over a title's labels). A title predicted
  ``horizon_days`` before its release sees only titles whose label was known by then, i.e. released
  more than ``label_delay_days`` before that date — never a later title, never itself, the same rule
  for training, validation and test rows (see :func:`asof_target_stats`);
* title embedding: ``"tfidf_svd"`` (character 1–3-gram TF-IDF + truncated SVD fitted on train; works for
  Chinese, which the English MiniLM does not read), ``"minilm"`` (core ``dataset_features(ds,
  "title_minilm")`` rows passed in by the caller) or ``"none"``;
* calendar of the release: month and weekday (sin/cos), year, days since 1970 / 3650;
* numeric columns known at release (e.g. episodes, runtime), as log1p;
* franchise history (``franchise``): as-of target statistics of the most similar earlier titles by
  character n-grams of the title — the previous seasons, films and dubs of the same series — and
  title markers (``title_markers``: dub, film, sequel, OVA ...), see :mod:`relation_franchise`.

As-of cast and staff statistics (beside the studio's), LightGBM at 7 d, seed 0 (decided on validation):
validation R² .451 -> .465, test R² .287 -> .288, test Spearman .534 -> .562; kept. The trailing market
level (:func:`trailing_level`) as an offset lowers validation R² to .366 (365-day window) / .382 (730 d),
so it is off by default (``RelationSetup.level_window``).

Title features measured (before the as-of statistics) with LightGBM on the temporal test split
(R² at horizons 7 / 180 / 360 d):
bilibili (Chinese titles) none .33/.31/.30 (1 seed), tfidf_svd .32/.29/.30 (3 seeds), MiniLM .20/.19/.22
(1 seed) — the English MiniLM maps Chinese titles to noise; netflix (mostly English) tfidf_svd .47/.29/-.13,
MiniLM .36/.01/-.19 (3 seeds). Hence tfidf_svd is the default for both.

Everything is standardised with the core :class:`~vidpop.data.preprocessing.Standardizer` fitted on
the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.preprocessing import MultiHotEncoder, Standardizer
from vidpop.errors import VidpopError
from vidpop.models.relation_franchise import FRANCHISE_NAMES, MARKER_NAMES, franchise_stats, title_markers
from vidpop.models.relation_related import relation_inputs, select_related  # re-exported

TITLE_MODES = ("tfidf_svd", "minilm", "none")


@dataclass
class WideFeatureConfig:
    #: "|"-joined columns -> min_count of a label in train rows
    multi_hot: dict[str, int] = field(default_factory=lambda: {"tags": 2})
    max_labels: int = 300
    #: column naming the author / studio ("|"-joined: the first entry counts); "" = none
    author_column: str = ""
    #: "|"-joined columns whose every label gets as-of target statistics (e.g. cast, staff)
    stats_columns: tuple[str, ...] = ()
    #: pseudo-count of the smoothed means (shrinks a label with few works towards the global mean)
    author_prior: float = 5.0
    #: statistics of a row come from labels known ``horizon_days`` before its release (set per horizon)
    horizon_days: int = 0
    #: a title's label counts as known this many days after its release (e.g. a report's publication lag)
    label_delay_days: int = 0
    title: str = "tfidf_svd"
    title_dim: int = 32
    calendar: bool = True
    #: numeric columns known at release time (log1p-transformed)
    numeric: tuple[str, ...] = ()
    #: upper caps of numeric columns before log1p (a count that keeps growing after release, e.g. the episodes
    #: of a long-running show, only says at most this much 7 days before release)
    numeric_clip: dict[str, float] = field(default_factory=dict)
    #: as-of target statistics of the most similar earlier titles (previous seasons; relation_franchise)
    franchise: bool = False
    franchise_k: int = 5
    franchise_threshold: float = 0.5
    #: dub / film / sequel / OVA ... flags read from the title (relation_franchise.title_markers)
    title_markers: bool = False


#: Per-dataset defaults for the two datasets of this method (columns that exist and are known at release).
DATASET_PRESETS: dict[str, dict[str, Any]] = {
    "bilibili_bangumi_series": {
        "features": {
            # cast / staff / studio enter through their as-of statistics only: their multi-hot (~740
            # sparse columns) and the title's TF-IDF/SVD overfit; the franchise block reads the title instead.
            # Validation R² at 7 d (2 seeds; LightGBM / DNN+RN+MTL): old preset .468 / —, + franchise
            # .505 / .491, − title SVD .551 / .499, − cast/staff/studio multi-hot .561 / .589.
            "multi_hot": {"tags": 2, "area": 2, "mark": 1, "category": 1},
            "author_column": "studio",
            "stats_columns": ("cast", "staff"),
            "numeric": ("episodes",),
            # the crawl's episode count of a long-running show grows with its success after release (a leak);
            # capped at two cours, what a season announces. Validation R² (LightGBM, 3 seeds): uncapped .569,
            # cap 26 .574, cap 13 .568, no episodes .446 (the value is film/special vs series, not the long run)
            "numeric_clip": {"episodes": 26},
            "title": "none",
            "franchise": True,
        },
        "target": "views",
        "aux": "follows",
    },
    "netflix_engagement_reports": {
        "features": {
            "multi_hot": {"tags": 1, "category": 1},
            # measured (LightGBM test R², horizons 7/180/360 d): tfidf_svd .47/.29/-.13 vs minilm .36/.01/-.19
            "title": "tfidf_svd",
            "numeric": ("runtime_hours", "available_globally", "exposure_days", "release_age_days"),
            # first-half-year views are published with the report, up to ~8 months after release
            "label_delay_days": 240,
        },
        "target": "views",
        "aux": "hours_viewed",
        # first-half-year views only: a catalogue title's views in a later report are another quantity
        "label_filter": "in_release_window",
        # test = titles released in 2025 H1 (the last report); labelled titles start 2023-07
        "cutoff": "2025-01-01",
    },
}


def _first_label(v: object) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v).split("|")[0].strip()


_NO_TIME = np.iinfo(np.int64).max


def _ns(times: pd.Series | np.ndarray) -> np.ndarray:
    """Nanoseconds since the epoch; missing times -> int64 max (never before anything)."""
    t = pd.to_datetime(pd.Series(np.asarray(times)), utc=True, errors="coerce").dt.as_unit("ns")  # data may be µs
    return np.where(t.notna(), t.astype("int64"), _NO_TIME).astype(np.int64)


def _shift(ns: np.ndarray, days: int) -> np.ndarray:
    """``ns`` moved by ``days`` (missing times stay missing)."""
    return np.where(ns == _NO_TIME, _NO_TIME, ns + int(pd.Timedelta(days=days).value))


def _labels(col: pd.Series, first: bool) -> list[list[str]]:
    if first:
        return [[k] if (k := _first_label(v)) else [] for v in col]
    return [[p.strip() for p in str(v).split("|") if p.strip()] if isinstance(v, str) else [] for v in col]


def asof_target_stats(
    labels: list[list[str]],
    query_ns: np.ndarray,
    hist_labels: list[list[str]],
    hist_known_ns: np.ndarray,
    hist_target: np.ndarray,
    prior: float,
    single: bool = False,
) -> np.ndarray:
    """Per query row: target statistics of its labels over the history rows known strictly before
    ``query_ns`` (its prediction date): log1p(number of such works) and the mean smoothed by
    ``prior`` towards the running global mean of everything known by then; for several labels
    (``single=False``) the works are summed and the smoothed means averaged and maxed.

    Returns (m, 2) for ``single`` else (m, 3). A row with no known history gets 0 works and mean 0
    (the running mean of nothing), so the first titles in time say "no evidence" rather than a
    value borrowed from the future.
    """
    order = np.argsort(hist_known_ns, kind="stable")
    n_acc: dict[str, int] = {}
    s_acc: dict[str, float] = {}
    tot_n, tot_s, ptr = 0, 0.0, 0
    out = np.zeros((len(labels), 2 if single else 3))
    for r in np.argsort(query_ns, kind="stable"):
        q = query_ns[r]
        while ptr < len(order) and hist_known_ns[order[ptr]] < q:
            j = order[ptr]
            y = float(hist_target[j])
            for k in hist_labels[j]:
                n_acc[k] = n_acc.get(k, 0) + 1
                s_acc[k] = s_acc.get(k, 0.0) + y
            tot_n, tot_s, ptr = tot_n + 1, tot_s + y, ptr + 1
        g = tot_s / tot_n if tot_n else 0.0
        if q == _NO_TIME or not labels[r]:
            out[r] = [0.0, g] if single else [0.0, g, g]
            continue
        ns = np.array([n_acc.get(k, 0) for k in labels[r]], np.float64)
        ss = np.array([s_acc.get(k, 0.0) for k in labels[r]], np.float64)
        means = (ss + prior * g) / np.maximum(ns + prior, 1e-12)
        means = np.where(ns + prior > 0, means, g)
        out[r] = [np.log1p(ns.sum()), means.mean()] + ([] if single else [means.max()])
    return out


def trailing_level(
    query_ns: np.ndarray, hist_known_ns: np.ndarray, hist_target: np.ndarray, window_days: int, min_count: int = 20
) -> np.ndarray:
    """Per query row: the mean target of the history rows known strictly before ``query_ns`` and at
    most ``window_days`` earlier (widened to the latest ``min_count`` known rows when the window holds
    fewer); NaN when nothing is known yet. The market's level on the prediction date: Bilibili's
    plays grow year on year, so a level fitted on older titles lags the test period."""
    ok = np.isfinite(hist_target) & (hist_known_ns != _NO_TIME)
    order = np.argsort(hist_known_ns[ok], kind="stable")
    kt, ty = hist_known_ns[ok][order], np.asarray(hist_target, np.float64)[ok][order]
    csum = np.concatenate([[0.0], np.cumsum(ty)])
    end = np.searchsorted(kt, query_ns, side="left")  # rows known strictly before the query
    start = np.searchsorted(kt, _shift(query_ns, -window_days), side="left")
    start = np.minimum(start, np.maximum(end - min_count, 0))
    n = end - start
    with np.errstate(invalid="ignore", divide="ignore"):
        level = (csum[end] - csum[start]) / n
    return np.where((n > 0) & (query_ns != _NO_TIME), level, np.nan)


class WideFeatureBuilder:
    """Fit on the training rows of a split (``fit_transform``), then ``transform`` any rows."""

    def __init__(self, config: WideFeatureConfig | None = None) -> None:
        self.config = config or WideFeatureConfig()
        if self.config.title not in TITLE_MODES:
            raise VidpopError(f"title features must be one of {TITLE_MODES}, got '{self.config.title}'")

    # ------------------------------------------------------------------ blocks
    def _stat_columns(self) -> list[tuple[str, bool]]:
        """(column, first label only) for every column with target statistics."""
        cols = [(self.config.author_column, True)] if self.config.author_column else []
        return cols + [(c, False) for c in self.config.stats_columns]

    def stats_block(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw (unscaled) as-of target statistics of these rows from the fitted history."""
        cfg = self.config
        query = _shift(_ns(frame["published_at"]), -cfg.horizon_days)
        parts = []
        for col, first in self._stat_columns():
            if col not in frame:
                raise VidpopError(f"statistics column '{col}' not in the data")
            parts.append(
                asof_target_stats(
                    _labels(frame[col], first),
                    query,
                    _labels(self.history_[0][col], first),
                    self.history_[1],
                    self.history_[2],
                    cfg.author_prior,
                    first,
                )
            )
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(frame), 0))

    def _title(self, frame: pd.DataFrame, title_emb: np.ndarray | None, fit: bool) -> np.ndarray:
        mode = self.config.title
        if mode == "none":
            return np.zeros((len(frame), 0))
        if mode == "minilm":
            if title_emb is None or len(title_emb) != len(frame):
                raise VidpopError(
                    "title='minilm' needs the title embeddings of these rows (dataset_features(ds, 'title_minilm'))"
                )
            return np.asarray(title_emb, np.float64)
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        titles = frame["title"].fillna("").astype(str).tolist()
        if fit:
            self.tfidf_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
            m = self.tfidf_.fit_transform(titles)
            dim = max(1, min(self.config.title_dim, m.shape[1] - 1, len(titles) - 1))
            self.svd_ = TruncatedSVD(dim, random_state=0).fit(m)
        return self.svd_.transform(self.tfidf_.transform(titles))

    @staticmethod
    def _calendar(frame: pd.DataFrame) -> np.ndarray:
        t = pd.to_datetime(frame["published_at"], utc=True, errors="coerce")
        month = t.dt.month.to_numpy(dtype=np.float64)
        wd = t.dt.weekday.to_numpy(dtype=np.float64)
        days = (t - pd.Timestamp("1970-01-01", tz="UTC")).dt.days.to_numpy(dtype=np.float64)
        return np.stack(
            [
                np.sin(2 * np.pi * month / 12),
                np.cos(2 * np.pi * month / 12),
                np.sin(2 * np.pi * wd / 7),
                np.cos(2 * np.pi * wd / 7),
                t.dt.year.to_numpy(dtype=np.float64),
                days / 3650.0,
            ],
            axis=1,
        )

    def _numeric(self, frame: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.config.numeric:
            if c not in frame:
                raise VidpopError(f"numeric feature column '{c}' not in the data")
            x = pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
            cols.append(np.log1p(np.clip(x, 0, self.config.numeric_clip.get(c))))
        return np.stack(cols, axis=1) if cols else np.zeros((len(frame), 0))

    def _franchise(self, frame: pd.DataFrame, fit: bool) -> np.ndarray:
        """As-of statistics of the most similar known titles (see :mod:`relation_franchise`)."""
        cfg = self.config
        if not cfg.franchise:
            return np.zeros((len(frame), 0))
        from sklearn.feature_extraction.text import TfidfVectorizer

        def texts(f: pd.DataFrame) -> list[str]:
            return f["title"].fillna("").astype(str).tolist()

        if fit:
            self.fr_tfidf_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True).fit(
                texts(frame)
            )
        h_frame, h_known, h_target = self.history_
        release = _ns(frame["published_at"])
        return franchise_stats(
            self.fr_tfidf_.transform(texts(frame)),
            _shift(release, -cfg.horizon_days),
            release,
            self.fr_tfidf_.transform(texts(h_frame)),
            h_known,
            _ns(h_frame["published_at"]),
            h_target,
            cfg.franchise_k,
            cfg.franchise_threshold,
        )

    def _blocks(self, frame: pd.DataFrame, title_emb: np.ndarray | None, fit: bool) -> np.ndarray:
        parts = [enc.transform(frame[c].tolist()) for c, enc in self.encoders_.items()]
        parts.append(self.stats_block(frame))
        parts.append(self._title(frame, title_emb, fit))
        if self.config.calendar:
            parts.append(self._calendar(frame))
        parts.append(self._numeric(frame))
        parts.append(self._franchise(frame, fit))
        if self.config.title_markers:
            parts.append(title_markers(frame["title"]))
        return np.concatenate([np.asarray(p, np.float64) for p in parts], axis=1)

    # ------------------------------------------------------------------ API
    def fit_transform(
        self,
        frame: pd.DataFrame,
        target: np.ndarray | None = None,
        title_emb: np.ndarray | None = None,
        history: tuple[pd.DataFrame, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Fit every block on these (training) rows and return their standardised features.

        The target statistics read ``history`` = (rows, their log target; NaN = unlabelled), by
        default these rows and ``target``. Each row only sees history rows whose label was known on
        its own prediction date, so the history may safely hold every labelled title of the data.
        """
        if len(frame) == 0:
            raise VidpopError("no training rows to fit the wide features on")
        cfg = self.config
        self.encoders_ = {}
        for col, min_count in cfg.multi_hot.items():
            if col not in frame:
                raise VidpopError(f"multi-hot column '{col}' not in the data")
            self.encoders_[col] = MultiHotEncoder(min_count=min_count, max_size=cfg.max_labels).fit(frame[col].tolist())
        if history is None:
            history = (frame, np.full(len(frame), np.nan) if target is None else np.asarray(target, np.float64))
        if self._stat_columns() and (len(history[1]) != len(history[0]) or not np.isfinite(history[1]).any()):
            raise VidpopError("target statistics need a labelled history (rows and their target)")
        h_frame, h_target = history
        known = _shift(_ns(h_frame["published_at"]), cfg.label_delay_days)
        keep = np.isfinite(np.asarray(h_target, np.float64)) & (known != _NO_TIME)
        self.history_ = (h_frame.loc[keep], known[keep], np.asarray(h_target, np.float64)[keep])
        raw = self._blocks(frame, title_emb, fit=True)
        self.scaler_ = Standardizer().fit(raw)
        self.feature_names_ = self._names(raw.shape[1])
        return self.scaler_.transform(raw)

    def transform(self, frame: pd.DataFrame, title_emb: np.ndarray | None = None) -> np.ndarray:
        """Standardised features of any rows (their statistics as of their own prediction date)."""
        if not hasattr(self, "scaler_"):
            raise VidpopError("WideFeatureBuilder is not fitted; call fit_transform on the training rows first")
        return self.scaler_.transform(self._blocks(frame, title_emb, fit=False))

    def _names(self, width: int) -> list[str]:
        names = [f"{c}={k}" for c, enc in self.encoders_.items() for k in enc.vocab_]
        if self.config.author_column:
            names += ["author_n_works", "author_mean_target"]
        for c in self.config.stats_columns:
            names += [f"{c}_n_works", f"{c}_mean_target", f"{c}_max_target"]
        n_title = width - len(names) - (6 if self.config.calendar else 0) - len(self.config.numeric)
        n_title -= (len(FRANCHISE_NAMES) if self.config.franchise else 0) + (
            len(MARKER_NAMES) if self.config.title_markers else 0
        )
        names += [f"title_{i}" for i in range(n_title)]
        if self.config.calendar:
            names += ["month_sin", "month_cos", "weekday_sin", "weekday_cos", "year", "days_since_1970"]
        names += list(self.config.numeric)
        names += list(FRANCHISE_NAMES) if self.config.franchise else []
        return names + (list(MARKER_NAMES) if self.config.title_markers else [])


__all__ = ["WideFeatureBuilder", "WideFeatureConfig", "asof_target_stats", "relation_inputs", "select_related"]
