"""The models behind the product. A *bundle* is a folder of saved models (or one model folder); it answers
the three questions the CLI, the REST API and the web page ask, through one code path:

* :meth:`ModelBundle.predict` — a brand-new video -> one reconciled answer (:mod:`vidpop.serve.predicting`):
  counts with 95 % intervals, the class and P(popular) from the same count model, a context line, the inputs
  that moved the estimate, second opinions and the limits; with a second title, the what-if between them;
* :meth:`ModelBundle.explain` — Grad-CAM heatmaps scaled by frame attention, and word importances;
* :meth:`ModelBundle.recommend` — top-k for a known user, a watch history, or text (cold start), each with
  the reason it was recommended.

Serving dispatches on each model's declared capabilities and never changes a loaded model.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.errors import MissingModelError, VidpopError
from vidpop.serve.context import TrainingContext, load_context
from vidpop.serve.inputs import NewVideo
from vidpop.serve.popularity import capabilities
from vidpop.serve.predicting import compare_titles, predict_video
from vidpop.serve.recommending import ServedRecommender

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
    #: a count model's training labels (percentiles, ratio bounds, similar authors), read once at load
    context: TrainingContext | None = None
    #: held around Grad-CAM, which hooks the shared network; every other call is read-only on the model
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def kind(self) -> str:
        return str(getattr(self.model, "model_name", type(self.model).__name__))

    @property
    def capabilities(self) -> frozenset[str]:
        return capabilities(self.model)

    @property
    def roles(self) -> list[str]:
        return [r for r in ("predict", "explain", "recommend") if r in self.capabilities]

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
    lm = LoadedModel(path.name, path, load_model(path), recipe, [str(t) for t in trained_on])
    if "recommend" in lm.capabilities:
        lm.served = ServedRecommender(lm.name, path, lm.model)
        lm.served.warm()
    if "intervals" in lm.capabilities:
        lm.context = load_context(recipe)
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

    def has_role(self, role: str) -> bool:
        return bool(self._with_role(role))

    def _with_role(self, role: str) -> list[LoadedModel]:
        return [m for m in self.models if role in m.roles]

    # ------------------------------------------------------------------ predict
    def predict(
        self, video: NewVideo, work_dir: str | Path, level: float = 0.95, compare_title: str | None = None
    ) -> dict[str, Any]:
        """One reconciled answer from the bundle's popularity models for one new video; with
        ``compare_title``, also the what-if of that title against the video's own (``what_if``)."""
        video.check()
        out = predict_video(self._with_role("predict"), video, Path(work_dir), level)
        if compare_title is not None and compare_title.strip():
            wi = self.compare_titles(video, [video.title, compare_title], work_dir, level)
            by = out.get("served_by")
            if by and by["model"] != wi["model"]:
                wi["note"] = (
                    f"the what-if is {wi['model']}'s: it needs paired predictive samples, which {by['model']} "
                    f"({by['kind']}) does not give, so its {wi['target']} differ from the headline's"
                )
            out["what_if"] = wi
        return out

    def compare_titles(
        self, video: NewVideo, titles: list[str], work_dir: str | Path, level: float = 0.95
    ) -> dict[str, Any]:
        """Two titles, every other input equal: each prediction, their ratio with its interval, the words."""
        return compare_titles(self.models, video, titles, Path(work_dir), level)

    def warm(self, work_dir: str | Path) -> dict[str, float]:
        """One prediction (and explanation) on a blank cover and a title at start-up, so that the encoders,
        image network and lazy imports are loaded before the first user waits for them. CPU seconds per part."""
        import time

        from PIL import Image

        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        blank = work / "warm-up.png"  # only ever fed to the models, never part of an answer
        Image.new("RGB", (224, 224), (128, 128, 128)).save(blank)
        video = NewVideo(cover=blank, title="warm up")
        took: dict[str, float] = {}
        for role, call in (("predict", lambda: self.predict(video, work / "predict")),
                           ("explain", lambda: self.explain(video, work / "explain"))):  # fmt: skip
            if not self._with_role(role):
                continue
            t0 = time.process_time()
            call()
            took[role] = round(time.process_time() - t0, 2)
        return took

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
        filled = [name for name, v in (("a user id", user), ("a watch history", ids), ("a text", text)) if v]
        if len(filled) > 1:  # the user id used to win silently
            raise VidpopError(f"give one of a user id, a watch history or a text, not {' and '.join(filled)}")
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
        reasons = _because(lm, served, hist, top, text, user is not None)
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
                    "because": why,
                }
                for r, (j, sc, why) in enumerate(zip(top, scores, reasons, strict=True), 1)
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


#: a "because you watched" line looks at this many of the most recent watched videos
BECAUSE_RECENT = 10


def _because(
    lm: LoadedModel, served: ServedRecommender, hist: np.ndarray, top: list[int], text: str | None, from_user: bool
) -> list[str | None]:
    """One line per recommended video saying what led to it: the watched video whose one-video history scores
    it highest (when the model's scores depend on the history), the text, or the model's overall ranking."""
    from vidpop.models.recommender import UserQuery

    if text:
        return [f"matches your text “{text[:60]}”"] * len(top)
    if getattr(lm.model, "uses_text", False):
        what = "the titles you watched" if from_user or len(hist) else "your text"
        return [f"matches {what}"] * len(top)
    recent = list(dict.fromkeys(int(h) for h in hist[::-1]))[:BECAUSE_RECENT]
    if not recent or not top:
        return [None] * len(top)
    queries = [UserQuery(history=np.asarray([h], np.int64), times=np.zeros(1)) for h in recent]
    try:
        scores = np.asarray(lm.model.full_sort_scores(queries), np.float64)[:, top]  # (recent, k)
    except Exception:  # a model that cannot score one-video histories: no reason rather than a wrong one
        return [None] * len(top)
    spread = scores.max(0) - scores.min(0)
    tol = 1e-9 * max(1.0, float(np.abs(scores).max()))
    titles = served.titles
    out: list[str | None] = []
    for col in range(len(top)):
        if spread[col] <= tol:  # the same whatever was watched: a popularity-style ranking
            out.append("popular with many viewers" if "pop" in lm.kind else None)
            continue
        h = recent[int(scores[:, col].argmax())]
        name = str(titles[h]) if titles is not None and str(titles[h]) else f"video {served.video_ids[h]}"
        out.append(f"because you watched “{name[:80]}”")
    return out
