"""The models behind the product. A *bundle* is a folder of saved models (or one model folder); it answers
the three questions the CLI, the REST API and the web page ask, through one code path:

* :meth:`ModelBundle.predict` — a brand-new video -> predicted counts with 95 % intervals (variational
  PoE), the popularity class (cover + title fusion's 5 ordinal classes, else the regressor's training
  quintiles) and P(popular) (attention model);
* :meth:`ModelBundle.explain` — Grad-CAM heatmaps scaled by frame attention, and word importances;
* :meth:`ModelBundle.recommend` — top-k for a known user, a watch history, or text (cold start).

Each answer is a JSON-ready dict and says which model gave each part, and what could not be answered.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset
from vidpop.errors import MissingModelError, VidpopError
from vidpop.serve.inputs import NewVideo
from vidpop.serve.recommending import ServedRecommender

CLASS_NAMES: tuple[str, ...] = ("very low", "low", "medium", "high", "very high")
#: a query's history is echoed back with at most this many ids (its length is always given)
ECHO_IDS = 20


@dataclass
class LoadedModel:
    """One saved model folder, loaded once."""

    name: str
    path: Path
    model: Any
    recipe: dict[str, Any] = field(default_factory=dict)
    trained_on: list[str] = field(default_factory=list)
    #: a recommender's tables and index, read once at load
    served: ServedRecommender | None = None
    #: held around calls that change per-call state in the model (feature-store path, Grad-CAM hooks);
    #: read-only inference (recommend, the PoE and attention predictions) runs without it
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def kind(self) -> str:
        return str(getattr(self.model, "model_name", type(self.model).__name__))

    @property
    def roles(self) -> list[str]:
        from vidpop.models.attention_explain import AttentionExplainModel
        from vidpop.models.recommender import Recommender

        if isinstance(self.model, Recommender):
            return ["recommend"]
        if isinstance(self.model, AttentionExplainModel):
            return ["predict", "explain"]
        if hasattr(self.model, "predict_interval") or hasattr(self.model, "predict_proba"):
            return ["predict"]
        return []

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.kind,
            "task": getattr(self.model, "task", ""),
            "description": getattr(self.model, "description", ""),
            "roles": self.roles,
            "trained_on": self.trained_on or ([str(self.recipe["data"])] if "data" in self.recipe else []),
        }


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def load_one(path: Path) -> LoadedModel:
    from vidpop.models.base import load_model

    recipe = _read_json(path / "recipe.json")
    info = _read_json(path / "training_data.json")
    trained_on = recipe.get("trained_on") or info.get("trained_on") or info.get("dataset") or []
    trained_on = [trained_on] if isinstance(trained_on, str) else list(trained_on)
    from vidpop.models.recommender import Recommender

    lm = LoadedModel(path.name, path, load_model(path), recipe, [str(t) for t in trained_on])
    if isinstance(lm.model, Recommender):
        lm.served = ServedRecommender(lm.name, path, lm.model)
        lm.served.warm()
    return lm


class ModelBundle:
    """Every model found in a folder (a model folder itself, or its sub-folders), loaded at construction."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.models: list[LoadedModel] = []
        self.reload()

    def reload(self) -> None:
        if not self.root.is_dir():
            raise VidpopError(f"model folder not found: {self.root}")
        dirs = (
            [self.root]
            if (self.root / "config.json").exists()
            else sorted(p for p in self.root.iterdir() if (p / "config.json").exists())
        )
        if not dirs:
            raise VidpopError(f"no saved vidpop models in {self.root} (train one with `vidpop train`)")
        self.models = [load_one(d) for d in dirs]

    def describe(self) -> list[dict[str, Any]]:
        return [m.describe() for m in self.models]

    def _with_role(self, role: str) -> list[LoadedModel]:
        return [m for m in self.models if role in m.roles]

    # ------------------------------------------------------------------ predict
    def predict(self, video: NewVideo, work_dir: str | Path, level: float = 0.95) -> dict[str, Any]:
        """Predictions of every popularity model in the bundle for one new video."""
        from vidpop.models.attention_explain import AttentionExplainModel

        video.check()
        work = Path(work_dir)
        ds = video.dataset()
        out: dict[str, Any] = {
            "inputs": video.describe(),
            "targets": [],
            "popularity_class": None,
            "p_popular": None,
            "experts": None,
            "notes": [],
            "models": [],
        }
        models = self._with_role("predict")
        if not models:
            raise MissingModelError("the bundle has no popularity model (train variational_poe / cover_title_fusion)")
        for lm in models:
            try:
                if hasattr(lm.model, "predict_interval"):
                    self._predict_counts(lm, ds, work, level, out)
                elif isinstance(lm.model, AttentionExplainModel):
                    out["p_popular"] = {"value": _p_popular(lm.model, ds, work), "model": lm.name}
                elif hasattr(lm.model, "predict_proba"):
                    self._predict_class(lm, ds, work, out)
                out["models"].append(lm.name)
            except VidpopError as exc:
                out["notes"].append(f"{lm.name}: {exc}")
        return out

    def _predict_counts(self, lm: LoadedModel, ds: Any, work: Path, level: float, out: dict[str, Any]) -> None:
        from vidpop.models.poe_inputs import build_poe_inputs

        model = lm.model
        trained = set(model.trained_modalities_)
        given = {"visual": ds.videos[["video_path", "cover_path"]].notna().any(axis=None),
                 "acoustic": ds.videos["video_path"].notna().any()}  # fmt: skip
        unused = [m for m, has in given.items() if has and m not in trained]
        if unused:  # no expert would read them: skip decoding and embedding
            out["notes"].append(f"{lm.name}: inputs without a trained expert (not used): {', '.join(unused)}")
        if "visual" not in trained and "acoustic" not in trained:
            ds = VideoDataset(ds.name, ds.videos.assign(video_path=None, cover_path=None), ds.authors)
        X = build_poe_inputs(ds, text_views=False, progress=False, store=work / "features")
        X = _align_social(X, ds, lm.recipe.get("social_names", []))
        r = model.predict_interval(X, level)
        for j, name in enumerate(model.target_names_):
            mean, lo, hi = float(r["mean"][0, j]), float(r["lower"][0, j]), float(r["upper"][0, j])
            entry: dict[str, Any] = {"name": name, "model": lm.name, "level": level}
            if name.split(":")[-1].startswith("log1p_"):
                entry.update(
                    name=name.split(":")[-1][len("log1p_") :],
                    scale="count",
                    value=float(np.expm1(mean)),
                    lower=float(np.expm1(lo)),
                    upper=float(np.expm1(hi)),
                    log1p={"mean": mean, "lower": lo, "upper": hi},
                )
            else:
                entry.update(scale=lm.recipe.get("target_scale", "model scale"), value=mean, lower=lo, upper=hi)
            out["targets"].append(entry)
        edges = lm.recipe.get("class_edges") or []
        if edges and out["popularity_class"] is None:
            k = int(np.searchsorted(np.asarray(edges), r["mean"][0, 0]))
            out["popularity_class"] = {
                "label": k,
                "name": CLASS_NAMES[k],
                "n_classes": len(edges) + 1,
                "model": lm.name,
                "method": f"quintile of the training videos' {model.target_names_[0]} the prediction falls in",
            }
        out["experts"] = {"model": lm.name, **model.expert_report(X)[0]["precision_share"]}

    def _predict_class(self, lm: LoadedModel, ds: Any, work: Path, out: dict[str, Any]) -> None:
        model = lm.model
        if hasattr(model.config, "progress"):
            model.config.progress = False
        with lm.lock:  # the store path is per call but lives in the shared config
            if hasattr(model.config, "feature_store"):
                model.config.feature_store = str(work / "features")
            proba = np.asarray(model.predict_proba(ds))[0]
        k = int(proba.argmax())
        names = CLASS_NAMES if len(proba) == len(CLASS_NAMES) else tuple(str(i) for i in range(len(proba)))
        out["popularity_class"] = {
            "label": k,
            "name": names[k],
            "n_classes": len(proba),
            "probabilities": [round(float(p), 4) for p in proba],
            "model": lm.name,
            "method": "ordinal classes of the weighted, normalised engagement score (cover + title fusion)",
        }

    # ------------------------------------------------------------------ explain
    def explain(self, video: NewVideo, out_dir: str | Path) -> dict[str, Any]:
        """Heatmaps and word importances of the bundle's attention model; files go to ``out_dir``."""
        from vidpop.explain.video import explain_video

        video.check()
        models = self._with_role("explain")
        if not models:
            raise MissingModelError("the bundle has no explanation model (train attention_explain)")
        lm = models[0]
        source = video.video or video.cover
        if source is None:
            raise VidpopError("explain needs a video or a cover image")
        note = ("model trained on: " + " + ".join(lm.trained_on)) if lm.trained_on else ""
        with lm.lock:  # Grad-CAM hooks the shared network
            data = explain_video(lm.model, source, video.title, out_dir, note=note)
        data["model_dir"] = lm.name
        return data

    # ------------------------------------------------------------------ recommend
    def recommend(
        self, user: str | None = None, history: list[str] | None = None, text: str | None = None, k: int = 10
    ) -> dict[str, Any]:
        """Top-k for a known user id, a list of watched ids (oldest first), or text (cold start)."""
        from vidpop.models.recommender import UserQuery

        if k < 1 or k > 100:
            raise VidpopError("k must be between 1 and 100")
        recs = self._with_role("recommend")
        if not recs:
            raise MissingModelError("the bundle has no recommender (train interest_rnn or a rec_* baseline)")
        text = (text or "").strip() or None
        ids = [h.strip() for h in (history or []) if h.strip()]
        notes: list[str] = []
        # a watch history goes to a sequence/collaborative model; text alone to a text (cold-start) model
        by_history = [m for m in recs if not getattr(m.model, "uses_text", False)]
        lm = (by_history or recs)[0]
        served = lm.served
        assert served is not None
        hist: np.ndarray | None = None
        if user is not None:
            hist = served.history_of(user)
            ids = served.video_ids[hist].tolist()
        if not ids and not text:
            raise VidpopError("give a user id, a history of video ids, or some text")
        if not ids:  # cold start: a model that reads text
            texty = [m for m in recs if getattr(m.model, "uses_text", False) or m.kind == "interest_rnn"]
            if not texty:
                raise MissingModelError("no model in the bundle serves text-only (cold-start) users")
            lm = texty[0]
            served = lm.served
            assert served is not None
            hist = None  # indices of another model's vocabulary
        if hist is None:
            codes = np.fromiter((served.codes.get(i, -1) for i in ids), np.int64, len(ids))
            unknown = [i for i, c in zip(ids, codes, strict=True) if c < 0]
            if unknown:
                shown = ", ".join(u[:40] for u in unknown[:5])
                notes.append(f"ignored {len(unknown)} id(s) outside the model's vocabulary: {shown}")
            hist = np.asarray(codes[codes >= 0], np.int64)
        if ids and not len(hist) and not text:
            raise VidpopError("none of the given video ids is known to the model")
        if getattr(lm.model, "uses_text", False):
            texts = served.texts if served.texts is not None else served.titles
            fallback = " . ".join(texts[hist]) if texts is not None else ""
            query = UserQuery(history=np.zeros(0, np.int64), text=text or fallback)
        else:
            query = UserQuery(history=hist, times=np.arange(len(hist), dtype="float64"), text=text)
        # text models do not see the history, but still never re-recommend what the user watched
        top, scores = served.top(query, k, exclude=hist)
        return {
            "model": lm.name,
            "query": {
                "user": user,
                "history": ids[-ECHO_IDS:],  # bounded echo: the most recent ids
                "history_length": len(ids),
                "text": text[:200] if text else text,
            },
            "items": [
                {
                    "rank": r,
                    "video_id": str(served.video_ids[j]),
                    "title": str(served.titles[j]) if served.titles is not None else "",
                    "score": float(sc),
                    "has_cover": str(served.video_ids[j]) in served.covers,
                }
                for r, (j, sc) in enumerate(zip(top, scores, strict=True), 1)
            ],
            "notes": notes,
        }

    def cover_path(self, video_id: str) -> Path | None:
        """The cover file of a recommendable video, when the data has one."""
        for lm in self._with_role("recommend"):
            hit = lm.served.covers.get(str(video_id)) if lm.served is not None else None
            if hit and Path(hit).is_file():
                return Path(hit)
        return None


def _align_social(X: Any, ds: Any, names: list[str]) -> Any:
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


def _p_popular(model: Any, ds: Any, work: Path) -> float:
    """P(popular) of the attention model from the clip's frames (else the cover as one frame) and title."""
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
        if frames is None:
            frames, mask = np.zeros((1, 1, 1280), np.float32), np.zeros((1, 1), bool)
    title = ds.videos["title"].iloc[0]  # pd.NA for a cover-only video (`NA or ""` raised TypeError: a 500)
    titles = [title if isinstance(title, str) else ""] if cfg.uses_headline else None
    return float(model.predict_proba(AttentionInputs(titles=titles, frames=frames, frame_mask=mask))[0, 1])
