"""The one evaluation protocol of every vidpop recommender (RecBole-like, leak-free by construction).

NOTES FOR MODEL AUTHORS (read this if you write a :class:`~vidpop.models.recommender.Recommender`)
------------------------------------------------------------------------------------------------
* ``fit(split.train)`` gets a :class:`RecData` built ONLY from the *training view*: all interactions of
  the training users plus (single-network modes) the input period of each test user, as extra users.
  In cold-start mode the test users contribute nothing to it. ``item_ids`` (the candidate set) are the
  videos seen in that view (``min_item_users`` distinct users); ``user_texts`` are the training users'
  text streams (titles + categories of the videos they watched, time order).
* Item side features: give your model an attribute ``item_feature_kinds`` (class attribute or a property
  reading your config), a tuple such as ``("title_minilm",)``. Before ``fit`` the protocol fills
  ``RecData.item_features[kind]`` / ``item_feature_present[kind]`` aligned to item indices via
  :func:`vidpop.features.item_features.attach_item_features` (features helper's ``dataset_features``, cached).
* Implement ``full_sort_scores(queries) -> (n_queries, n_items)`` (the old name ``score`` still works
  as an alias; ``score(queries, relevant)`` is now the estimator's number, HR@10).
* Leave-one-out: set ``uses_validation = True`` and ``fit(data, validation=RecValidation, protocol=cfg)``
  receives the validation items (training histories -> second-to-last item) for early stopping.
* Evaluation calls ``model.recommend(queries, k=max(k, rank_k), exclude_seen=cfg.exclude_seen)`` on
  batches of ``batch_size`` test users. Override ``recommend`` for greedy generation; with
  ``exclude_seen`` never return an item of ``q.history``.
* Queries: single-network ``UserQuery(history=input item indices, times=their times, text=input text
  stream)``; cold start ``UserQuery(history=<empty int64 array>, times=None, text=input text stream)``:
  no video id of a cold-start user ever reaches a model (a test asserts it). With ``exclude_seen`` the
  protocol itself drops their input-period videos from the list ``recommend`` returns (it asks for
  ``k + len(input)`` items), so models need not (and cannot) mask them.
* Ablation table of ``vidpop rec tables``: expose in ``vidpop.models.interest_rnn`` a dict
  ``ABLATIONS: dict[str, tuple[str, dict]]`` mapping the row label ("RNN", "RNN-Sem", "RNN-noRel",
  "full", "Static-DNN") to ``(registered model name, config overrides)``; optionally
  ``COLD_START: tuple[str, dict]`` for the cold-start row and ``SINGLE: tuple[str, dict]`` for the
  single-network row (default: ``ABLATIONS["full"]``).

The protocol
------------
* **Filter**: users with >= ``min_user_interactions`` interactions (whole log: it chooses who is
  studied), videos seen by >= ``min_item_users`` users *in the training view only*.
* **User split**: 80/20 by user (seeded). Each test user's history is cut at a fraction of *that
  user's own span* (time span where timestamps exist, else positions): **long** = first 9/12 is input,
  **short** = first 3/12; the rest is ground truth (>= 1 input and >= 1 ground-truth item each).
* **Ground truth** = the ground-truth period's videos (minus already-seen input videos when
  ``exclude_seen``). A ground-truth video outside the vocabulary stays relevant and counts as a miss.
* **Cold start**: the test users' input period reaches the models only as text; the protocol (not the
  model) removes those input videos from each ranked list, as a platform would not re-recommend them.
* **Metrics**: P@k, R@k (k = 5), HR@10 and NDCG@10 from :mod:`vidpop.training.metrics`, averaged
  over test users; seen items are excluded from candidates by default. ``F@k`` is the paper's Top-k
  F-score, the harmonic mean of the *averaged* precision and recall, ``2 P̄ R̄ / (P̄ + R̄)`` (its
  Table 1: FPMC long P 0.0216, R 0.0357 -> F 0.0269). ``F1@k (per-user mean)`` is the mean of each
  user's own F1, a different (smaller) number, kept as a second column.
* **Leave-one-out** (:func:`loo_split`): per user the last item is the test, the one before it the
  validation item (not used for fitting; ``RecSplit.validation`` asks it from the training items, for
  early stopping and tuning), the rest training. Full ranking over the **whole catalogue** (every
  video of the dataset, also those nobody watched in training), seen items excluded, HR@10 / NDCG@10.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vidpop.data.recdata import RecData, UserQuery
from vidpop.data.schema import VideoDataset
from vidpop.data.sequences import (
    build_item_vocabulary,
    build_rec_data,
    corpus_texts,
    filter_users,
    ordered_interactions,
)
from vidpop.data.splits import user_split
from vidpop.errors import VidpopError
from vidpop.features.item_features import attach_item_features
from vidpop.training import metrics


class RankingModel(Protocol):
    """What the protocol asks of a model: :class:`vidpop.models.recommender.Recommender` is one. Named
    here by its shape, so that the engine does not import ``models/`` (layers import only downward)."""

    model_name: str

    def fit(self, X: RecData, *args: Any, **kwargs: Any) -> Any: ...

    def recommend(self, queries: list[UserQuery], k: int = 10, exclude_seen: bool = True) -> np.ndarray: ...


#: input fraction of each user's own span per mode
INPUT_FRACS: dict[str, float] = {"long": 9 / 12, "short": 3 / 12}


@dataclass
class ProtocolConfig:
    """Everything that defines an evaluation run (all of it is reported with the numbers)."""

    mode: str = "long"  # long | short (user split); ignored by loo_split
    cold_start: bool = False
    test_frac: float = 0.2
    min_user_interactions: int = 5
    min_item_users: int = 1
    exclude_seen: bool = True
    k: int = 5
    rank_k: int = 10
    seed: int = 0
    max_test_users: int | None = None  # evaluate a seeded sample of test users (training is unchanged)
    #: user split: share of the *training* users held out as validation users, cut like test users (their
    #: input period joins the training view, their ground truth never does); 0 = no validation set
    val_frac: float = 0.0
    #: leave-one-out candidates: "catalogue" (every video of the dataset) or "train" (seen in training)
    loo_candidates: str = "catalogue"
    batch_size: int = 512
    progress: bool = True

    @property
    def input_frac(self) -> float:
        if self.mode not in INPUT_FRACS:
            raise VidpopError(f"unknown mode '{self.mode}' (choose {', '.join(INPUT_FRACS)})")
        return INPUT_FRACS[self.mode]


@dataclass
class RecValidation:
    """Held-out items asked from training histories (leave-one-out's validation item): what early
    stopping and tuning may look at; the test items never appear here."""

    queries: list[UserQuery]
    truth: list[np.ndarray]
    #: user split: relevant videos outside the vocabulary per user (misses) and, in cold start, the
    #: input-period items the protocol removes from each ranked list (as for the test users)
    truth_oov: np.ndarray | None = None
    exclude: list[np.ndarray] | None = None
    user_ids: np.ndarray | None = None

    def subset(self, n: int | None, seed: int = 0) -> RecValidation:
        """A seeded sample of ``n`` users (all when ``n`` is None or larger)."""
        if n is None or n >= len(self.queries):
            return self
        pick = np.sort(np.random.default_rng(seed).choice(len(self.queries), n, replace=False))
        return RecValidation(
            [self.queries[i] for i in pick],
            [self.truth[i] for i in pick],
            None if self.truth_oov is None else self.truth_oov[pick],
            None if self.exclude is None else [self.exclude[i] for i in pick],
            None if self.user_ids is None else self.user_ids[pick],
        )


@dataclass
class RecSplit:
    """What a model is fitted on and what it is asked, plus the answers (kept away from the model)."""

    train: RecData
    queries: list[UserQuery]
    truth: list[np.ndarray]  # relevant item indices per query (inside the vocabulary)
    truth_oov: np.ndarray  # relevant videos per query that are outside the vocabulary (always misses)
    test_user_ids: np.ndarray
    truth_rows: pd.DataFrame  # (user_id, video_id) of every ground-truth interaction, for audits
    info: dict[str, Any] = field(default_factory=dict)
    #: cold start: input-period item indices the *protocol* removes from each ranked list (the model
    #: never sees them; a platform would not re-recommend what the user already watched)
    exclude: list[np.ndarray] | None = None
    #: leave-one-out only: the validation item of every user, asked from the training part
    validation: RecValidation | None = None


def _sample_users(users: np.ndarray, max_users: int | None, seed: int) -> np.ndarray:
    if max_users is None or len(users) <= max_users:
        return users
    rng = np.random.default_rng(seed + 1)
    return np.sort(rng.choice(users, max_users, replace=False))


def _queries(
    inputs: pd.DataFrame,
    truths: pd.DataFrame,
    users: np.ndarray,
    item_ids: np.ndarray,
    texts: dict[str, str],
    cold_start: bool,
    exclude_seen: bool,
) -> tuple[list[UserQuery], list[np.ndarray], np.ndarray, np.ndarray, list[np.ndarray]]:
    """Per test user: the query (history/text from the input period), the ground truth and the items
    the protocol itself removes from the ranking (cold start only). Vectorised: one sort per frame,
    then array slices per user (50,000 users in seconds)."""
    index, uidx = pd.Index(item_ids), pd.Index(users)
    in_u = uidx.get_indexer(inputs["user_id"])
    in_order = np.flatnonzero(in_u >= 0)
    in_order = in_order[np.argsort(in_u[in_order], kind="stable")]  # keeps time order inside a user
    in_vid = inputs["video_id"].to_numpy(dtype=object)[in_order]
    in_t = inputs["t"].to_numpy(dtype="float64")[in_order]
    in_code = index.get_indexer(in_vid).astype(np.int64)
    in_bounds = np.searchsorted(in_u[in_order], np.arange(len(users) + 1))
    tru = truths[["user_id", "video_id"]].drop_duplicates()  # first occurrence order, like pd.unique
    if exclude_seen:
        seen_pairs = inputs[["user_id", "video_id"]].drop_duplicates()
        tru = tru.merge(seen_pairs, how="left", on=["user_id", "video_id"], indicator=True)
        tru = tru[tru["_merge"] == "left_only"]
    tr_u = uidx.get_indexer(tru["user_id"])
    tr_order = np.flatnonzero(tr_u >= 0)
    tr_order = tr_order[np.argsort(tr_u[tr_order], kind="stable")]
    tr_code = index.get_indexer(tru["video_id"].to_numpy(dtype=object)[tr_order]).astype(np.int64)
    tr_bounds = np.searchsorted(tr_u[tr_order], np.arange(len(users) + 1))
    queries, truth, oov, kept, exclude = [], [], [], [], []
    for i, u in enumerate(users):
        codes = tr_code[tr_bounds[i] : tr_bounds[i + 1]]
        if not len(codes):
            continue  # no ground truth, or nothing new to predict for this user
        lo, hi = in_bounds[i], in_bounds[i + 1]
        hc, known = in_code[lo:hi], in_code[lo:hi] >= 0
        seen = hc[known]
        text = " . ".join(texts.get(v, "") for v in in_vid[lo:hi])
        if cold_start:
            q = UserQuery(history=np.zeros(0, np.int64), times=None, text=text)
        else:
            q = UserQuery(history=seen, times=in_t[lo:hi][known], text=text)
        exclude.append(seen if cold_start and exclude_seen else np.zeros(0, np.int64))
        queries.append(q)
        truth.append(codes[codes >= 0])
        oov.append(int((codes < 0).sum()))
        kept.append(u)
    return queries, truth, np.asarray(oov, np.int64), np.asarray(kept, dtype=str), exclude


def _prepare(ds: VideoDataset, cfg: ProtocolConfig) -> tuple[pd.DataFrame, str]:
    df, unit = ordered_interactions(ds.interactions)
    df = df[df["video_id"].isin(set(ds.videos["video_id"].astype(str)))]
    return filter_users(df, cfg.min_user_interactions), unit


def make_user_split(ds: VideoDataset, cfg: ProtocolConfig) -> RecSplit:
    """The long/short user split (cold start with ``cfg.cold_start``); see the module docstring."""
    df, unit = _prepare(ds, cfg)
    us = user_split(df.rename(columns={"t": "position"}), cfg.test_frac, cfg.input_frac, cfg.seed)
    train_inter = us.train_interactions.rename(columns={"position": "t"})
    test_input = us.test_input.rename(columns={"position": "t"})
    test_truth = us.test_truth.rename(columns={"position": "t"})
    test_set = set(us.test_users)
    val_input = val_truth = None
    val_users = np.zeros(0, dtype=str)
    if cfg.val_frac > 0:  # validation users: a seeded share of the training users, cut like test users
        own = train_inter[~train_inter["user_id"].astype(str).isin(test_set)].rename(columns={"t": "position"})
        vs = user_split(own, cfg.val_frac, cfg.input_frac, cfg.seed + 7)
        val_users, val_input, val_truth = vs.test_users, vs.test_input, vs.test_truth
        val_input, val_truth = (f.rename(columns={"position": "t"}) for f in (val_input, val_truth))
        keep_in = pd.concat([vs.train_interactions, test_input.rename(columns={"t": "position"})], ignore_index=True)
        train_inter = keep_in.rename(columns={"position": "t"})
    if cfg.cold_start:  # test (and validation) users' ids never reach fitting: only training users
        train_inter = train_inter[~train_inter["user_id"].astype(str).isin(test_set | set(val_users.tolist()))]
    train_inter = train_inter.sort_values(["user_id", "t"], kind="stable").reset_index(drop=True)
    item_ids = build_item_vocabulary(train_inter, ds.videos, cfg.min_item_users)
    train = build_rec_data(train_inter, ds.videos, item_ids, unit)
    eval_users = _sample_users(np.asarray(us.test_users, dtype=str), cfg.max_test_users, cfg.seed)
    texts = corpus_texts(ds.videos)
    queries, truth, oov, kept, exclude = _queries(
        test_input, test_truth, eval_users, item_ids, texts, cfg.cold_start, cfg.exclude_seen
    )
    validation = None
    if val_input is not None and val_truth is not None:
        v_q, v_t, v_oov, v_kept, v_exc = _queries(
            val_input, val_truth, val_users, item_ids, texts, cfg.cold_start, cfg.exclude_seen
        )
        validation = RecValidation(v_q, v_t, v_oov, v_exc if cfg.cold_start else None, v_kept)
    info = {
        "protocol": "user_split",
        "mode": "cold" if cfg.cold_start else cfg.mode,
        "input_frac": cfg.input_frac,
        "cut": "fraction of each user's own span (positions)"
        if unit == "step"
        else "fraction of each user's own time span (days)",
        "time_unit": unit,
        "users": int(df["user_id"].nunique()),
        "interactions": len(df),
        "train_users": len(us.train_users) - len(val_users),
        "test_users": len(us.test_users),
        **({"validation_users": len(validation.queries), "val_frac": cfg.val_frac} if validation else {}),
        "evaluated_users": len(kept),
        "items": len(item_ids),
        "truth_oov_share": float(oov.sum() / max(sum(len(t) for t in truth) + oov.sum(), 1)),
        "min_user_interactions": cfg.min_user_interactions,
        "min_item_users": cfg.min_item_users,
        "seed": cfg.seed,
    }
    truth_rows = test_truth[["user_id", "video_id"]].reset_index(drop=True)
    return RecSplit(train, queries, truth, oov, kept, truth_rows, info, exclude if cfg.cold_start else None, validation)


def loo_split(ds: VideoDataset, cfg: ProtocolConfig) -> RecSplit:
    """Leave-one-out by time: last item = test, previous = validation (held out), rest = training."""
    df, unit = _prepare(ds, cfg)
    rank_from_end = df.groupby("user_id").cumcount(ascending=False)
    df = df[df.groupby("user_id")["video_id"].transform("size") >= 3]
    rank_from_end = rank_from_end.loc[df.index]
    train_inter = df[rank_from_end >= 2].reset_index(drop=True)
    history = df[rank_from_end >= 1].reset_index(drop=True)  # train + validation item: known at test time
    test = df[rank_from_end == 0].reset_index(drop=True)
    if cfg.loo_candidates == "catalogue":  # every video can be recommended, watched in training or not
        item_ids = np.asarray(pd.unique(ds.videos["video_id"].astype(str)), dtype=str)
    elif cfg.loo_candidates == "train":
        item_ids = build_item_vocabulary(train_inter, ds.videos, cfg.min_item_users)
    else:
        raise VidpopError(f"unknown loo_candidates '{cfg.loo_candidates}' (catalogue, train)")
    train = build_rec_data(train_inter, ds.videos, item_ids, unit)
    users = _sample_users(np.asarray(pd.unique(test["user_id"]), dtype=str), cfg.max_test_users, cfg.seed)
    texts = corpus_texts(ds.videos)
    queries, truth, oov, kept, _ = _queries(history, test, users, item_ids, texts, False, cfg.exclude_seen)
    valid = df[rank_from_end == 1].reset_index(drop=True)
    v_queries, v_truth, v_oov, _, _ = _queries(train_inter, valid, users, item_ids, texts, False, cfg.exclude_seen)
    # an out-of-vocabulary validation item cannot be scored: drop those users from validation only
    keep_v = [i for i, o in enumerate(v_oov) if o == 0]
    validation = RecValidation([v_queries[i] for i in keep_v], [v_truth[i] for i in keep_v])
    info = {
        "protocol": "leave_one_out",
        "candidates": "whole catalogue" if cfg.loo_candidates == "catalogue" else "items seen in training",
        "time_unit": unit,
        "users": int(df["user_id"].nunique()),
        "interactions": len(df),
        "evaluated_users": len(kept),
        "validation_users": len(validation.queries),
        "items": len(item_ids),
        "truth_oov_share": float(oov.mean()) if len(oov) else 0.0,
        "min_user_interactions": cfg.min_user_interactions,
        "seed": cfg.seed,
    }
    return RecSplit(train, queries, truth, oov, kept, test[["user_id", "video_id"]], info, validation=validation)


def evaluate(model: RankingModel, split: RecSplit, cfg: ProtocolConfig) -> dict[str, float]:
    """P@k, R@k, F@k (paper), F1@k (per-user mean), HR@rank_k, NDCG@rank_k over the split's test users."""
    if not split.queries:
        raise VidpopError("no test user has a ground truth to predict")
    return evaluate_queries(model, split.queries, split.truth, cfg, split.truth_oov, split.exclude)


def evaluate_validation(model: RankingModel, validation: RecValidation, cfg: ProtocolConfig) -> dict[str, float]:
    """The same metrics on held-out validation items (early stopping, tuning); never the test items."""
    return evaluate_queries(
        model,
        validation.queries,
        validation.truth,
        dataclasses.replace(cfg, progress=False),
        validation.truth_oov,
        validation.exclude,
    )


def f_score(precision: float, recall: float) -> float:
    """The paper's Top-k F-score from *averaged* precision and recall: ``2 P R / (P + R)``."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def evaluate_queries(
    model: RankingModel,
    queries: list[UserQuery],
    truth: list[np.ndarray],
    cfg: ProtocolConfig,
    truth_oov: np.ndarray | None = None,
    exclude: list[np.ndarray] | None = None,
) -> dict[str, float]:
    """The metrics of :func:`metric_names` averaged over ``queries`` (batched ``recommend`` calls)."""
    if not queries:
        raise VidpopError("no query to evaluate")
    k, rk = cfg.k, cfg.rank_k
    depth = max(k, rk)
    per_user = {name: 0.0 for name in (f"P@{k}", f"R@{k}", f"F1@{k}", f"HR@{rk}", f"NDCG@{rk}")}
    n = len(queries)
    bar = tqdm(total=n, desc=f"eval {model.model_name or type(model).__name__}", unit="user", disable=not cfg.progress)
    for start in range(0, n, cfg.batch_size):
        batch = queries[start : start + cfg.batch_size]
        drop = exclude[start : start + cfg.batch_size] if exclude else None
        extra = max((len(d) for d in drop), default=0) if drop else 0
        recs = np.asarray(model.recommend(batch, k=depth + extra, exclude_seen=cfg.exclude_seen))
        for j, ranked in enumerate(recs.tolist()):
            i = start + j
            if extra:
                gone = set(drop[j].tolist())
                ranked = [x for x in ranked if x not in gone]
            ranked = ranked[:depth]
            # out-of-vocabulary relevant videos get ids no ranking can contain: they count as misses
            n_oov = int(truth_oov[i]) if truth_oov is not None else 0
            rel = set(truth[i].tolist()) | {-(m + 1) for m in range(n_oov)}
            per_user[f"P@{k}"] += metrics.precision_at_k(ranked, rel, k)
            per_user[f"R@{k}"] += metrics.recall_at_k(ranked, rel, k)
            per_user[f"F1@{k}"] += metrics.f1_at_k(ranked, rel, k)
            per_user[f"HR@{rk}"] += metrics.hit_rate_at_k(ranked, rel, rk)
            per_user[f"NDCG@{rk}"] += metrics.ndcg_at_k(ranked, rel, rk)
        bar.update(len(batch))
    bar.close()
    mean = {name: v / n for name, v in per_user.items()}
    return {
        f"P@{k}": mean[f"P@{k}"],
        f"R@{k}": mean[f"R@{k}"],
        f"F@{k}": f_score(mean[f"P@{k}"], mean[f"R@{k}"]),
        per_user_f1_name(k): mean[f"F1@{k}"],
        f"HR@{rk}": mean[f"HR@{rk}"],
        f"NDCG@{rk}": mean[f"NDCG@{rk}"],
    }


def per_user_f1_name(k: int) -> str:
    return f"F1@{k} (per-user mean)"


def metric_names(cfg: ProtocolConfig) -> list[str]:
    """Standard names: P@5, R@5, F@5 (the paper's), F1@5 (per-user mean), HR@10, NDCG@10."""
    return [f"P@{cfg.k}", f"R@{cfg.k}", f"F@{cfg.k}", per_user_f1_name(cfg.k), f"HR@{cfg.rank_k}", f"NDCG@{cfg.rank_k}"]


def needed_item_features(model: RankingModel) -> tuple[str, ...]:
    """Item feature kinds a model asks for (``item_feature_kinds`` attribute, see the notes above)."""
    kinds = getattr(model, "item_feature_kinds", ())
    return tuple(kinds() if callable(kinds) else kinds or ())


@dataclass
class RunResult:
    metrics: dict[str, float]
    fit_seconds: float
    eval_seconds: float
    info: dict[str, Any]


def fit_and_evaluate(
    model: RankingModel, split: RecSplit, cfg: ProtocolConfig, ds: VideoDataset | None = None
) -> RunResult:
    """Attach the item features the model asks for, fit on ``split.train``, evaluate on the queries."""
    fit_seconds = fit_on_split(model, split, cfg, ds)
    t1 = time.perf_counter()
    result = evaluate(model, split, cfg)
    t2 = time.perf_counter()
    info = dict(split.info)
    epochs = getattr(model, "epochs_run_", None)
    if epochs:
        info["epochs"] = epochs
        # models that time their own epochs (without validation passes) report that figure
        info["seconds_per_epoch"] = getattr(model, "seconds_per_epoch_", None) or fit_seconds / epochs
    return RunResult(result, fit_seconds, t2 - t1, info)


def fit_on_split(model: RankingModel, split: RecSplit, cfg: ProtocolConfig, ds: VideoDataset | None = None) -> float:
    """Attach the item features the model asks for and fit it on ``split.train`` (with the validation items
    when it takes them); the seconds the fit took."""
    kinds = needed_item_features(model)
    if kinds:
        if ds is None:
            raise VidpopError(f"{model.model_name} needs item features {kinds}: pass the dataset")
        attach_item_features(split.train, ds, kinds, progress=cfg.progress)
    t0 = time.perf_counter()
    if getattr(model, "uses_validation", False) and split.validation is not None:
        model.fit(split.train, validation=split.validation, protocol=cfg)
    else:
        model.fit(split.train)
    return time.perf_counter() - t0
