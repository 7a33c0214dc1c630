"""One prediction for a new video from every popularity model of a bundle, reconciled into one answer.

The headline count model — the one ``vidpop train best`` chose on validation when the bundle has it, else the
first count model (variational PoE) — gives the first count, the class and P(popular) together, so the headline
never mixes models; another count model adds only the targets the headline one lacks (the PoE's likes and
comments beside the winner's views), each entry named. The attention and fusion models are second opinions,
named, with their own definitions.
Every call is read-only on the loaded models (per-call settings go to a shallow copy's config).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidpop.data.labels import CLASS_NAMES
from vidpop.errors import MissingModelError, VidpopError
from vidpop.serve import answer
from vidpop.serve.inputs import NewVideo
from vidpop.serve.popularity import (
    attention_p_popular,
    best_on_validation,
    count_inputs,
    count_prediction,
    joint_samples,
    per_call_view,
    title_words,
)

if TYPE_CHECKING:
    from vidpop.serve.predictors import LoadedModel

ALL_EXPERTS = ("visual", "acoustic", "textual", "social")
#: what a conformal model's P(popular) counts (its ``sample``: the prediction plus each validation residual)
CONFORMAL_DRAWS = "the conformal predictive draws (the prediction plus each signed validation residual)"


def _limits(lm: LoadedModel) -> list[str]:
    """What a reader must know about a model: the data it saw, why it serves, and which experts never trained."""
    out = []
    rec = lm.recipe
    seen = ", ".join(lm.trained_on) or str(rec.get("data") or "unknown data")
    n = f"{lm.context.n_train:,} training videos of " if lm.context is not None else ""
    out.append(f"{lm.name}: trained on {n}{seen}")
    best = best_on_validation(rec)
    if best is not None:
        v = best.get("val", {})
        out.append(
            f"{lm.name} ({lm.kind}) is the best candidate on validation (vidpop train best): {best['candidate']}, "
            f"retrieval {'on' if best.get('retrieval') else 'off'}, val MAE {v.get('MAE', float('nan')):.3f}, "
            f"Spearman {v.get('Spearman', float('nan')):.3f}; interval: {best.get('interval', 'split conformal')}"
        )
    trained = list(getattr(lm.model, "trained_modalities_", []) or [])
    if trained:
        missing = [m for m in ALL_EXPERTS if m not in trained]
        if missing:
            out.append(
                f"{lm.name}: untrained experts: {', '.join(missing)} (the data had none); the inputs they would "
                "read do not change its numbers"
            )
    return out


def _ablations(video: NewVideo, lm: LoadedModel) -> list[tuple[str, NewVideo]]:
    """The video without each given input that one of the model's trained experts reads."""
    trained = set(getattr(lm.model, "trained_modalities_", []) or [])
    out = []
    if video.video is not None and trained & {"visual", "acoustic"}:
        out.append(("clip", dataclasses.replace(video, video=None)))
    if video.cover is not None and "visual" in trained:
        out.append(("cover", dataclasses.replace(video, cover=None)))
    if video.author_followers is not None and "social" in trained and lm.recipe.get("social_names"):
        out.append(("follower count", dataclasses.replace(video, author_followers=None)))
    return out


def _counts(lm: LoadedModel, video: NewVideo, work: Path, level: float, out: dict[str, Any]) -> None:
    """The headline count model: its targets, context line, class and P(popular), all named after it."""
    model, ctx = lm.model, lm.context
    trained = set(getattr(model, "trained_modalities_", []) or [])
    given = {"visual": video.video is not None or video.cover is not None, "acoustic": video.video is not None}
    unused = [m for m, has in given.items() if has and trained and m not in trained]
    if unused:  # no expert would read them: they are not decoded at all
        out["notes"].append(f"{lm.name}: inputs without a trained expert (not used): {', '.join(unused)}")
    X = count_inputs(model, lm.recipe, video.dataset(), work)
    r = count_prediction(model, X, level)
    names = list(model.target_names_)
    mean, lower, upper, _, ratio_note = answer.bound_ratios(names, r["mean"], r["lower"], r["upper"], ctx)
    if ratio_note:
        out["notes"].append(f"{lm.name}: {ratio_note}")
    scale = lm.recipe.get("target_scale", "model scale")
    out["targets"] += answer.target_entries(names, mean, lower, upper, level, lm.name, scale)
    if any(answer.is_count(n) for n in names):
        out["notes"].append(f"counts are rounded to whole numbers with at most {answer.SIG_DIGITS} significant digits")
    out["headline"] = {"model": lm.name, "kind": lm.kind, "target": names[0], "mean": float(mean[0]),
                       "lower": float(lower[0]), "upper": float(upper[0]), "context": ctx}  # fmt: skip
    line, ctx_notes = answer.context_line(ctx, names[0], float(mean[0]), video.author_followers, lm.name)
    out["context"] = line
    out["notes"] += ctx_notes
    draws = "the predictive samples" if joint_samples(model) else CONFORMAL_DRAWS
    cls, pp = answer.verdict(lm.name, lm.recipe.get("class_edges") or [], ctx, float(mean[0]), r["samples"][:, 0],
                             names[0], draws)  # fmt: skip
    out["popularity_class"], out["p_popular"] = cls, pp
    if trained:
        out["experts"] = {"model": lm.name, **model.expert_report(X)[0]["precision_share"]}
        _input_effects(lm, video, work, level, names[0], float(r["mean"][0]), out)


def _input_effects(
    lm: LoadedModel, video: NewVideo, work: Path, level: float, name: str, with_all: float, out: dict[str, Any]
) -> None:
    for what, without in _ablations(video, lm):
        w = count_prediction(lm.model, count_inputs(lm.model, lm.recipe, without.dataset(), work), level)
        entry, moved = answer.effect_line(what, name, with_all, float(w["mean"][0]))
        out["input_effects"].append({**entry, "model": lm.name})
        if moved:
            out["effects"].append(f"{moved} ({lm.name})")


def _more_counts(lm: LoadedModel, video: NewVideo, work: Path, level: float, out: dict[str, Any]) -> bool:
    """A second count model (the PoE beside the best model on validation): only the targets the headline model
    does not give (likes, comments), kept within the training ratios to the HEADLINE model's first count, so
    every number shown agrees with the served one; its experts and input effects, named. False if it adds none."""
    model, head = lm.model, out["headline"]
    names = list(model.target_names_)
    have = {t["name"] for t in out["targets"]}
    new = [j for j, n in enumerate(names) if answer.short_name(n) not in have and n not in have]
    if not new or answer.short_name(names[0]) != answer.short_name(head["target"]):
        return False
    X = count_inputs(model, lm.recipe, video.dataset(), work)
    r = model.predict_interval(X, level)
    mean, lower, upper = (np.asarray(r[k][0], np.float64).copy() for k in ("mean", "lower", "upper"))
    own = float(mean[0])
    mean[0], lower[0], upper[0] = head["mean"], head["lower"], head["upper"]
    mean, lower, upper, _, ratio_note = answer.bound_ratios(names, mean, lower, upper, lm.context)
    scale = lm.recipe.get("target_scale", "model scale")
    entries = answer.target_entries(names, mean, lower, upper, level, lm.name, scale)
    out["targets"] += [entries[j] for j in new]
    shown = ", ".join(answer.short_name(names[j]) for j in new)
    first = answer.short_name(names[0])
    out["notes"].append(
        f"{shown} from {lm.name} ({lm.kind}); {first} from {head['model']} ({head['kind']}), the best on validation "
        f"({lm.name}'s own {first} estimate: {answer.fmt_count(math.expm1(own)) if answer.is_count(names[0]) else own})"
    )
    if ratio_note:
        out["notes"].append(f"{lm.name}: {ratio_note} (around the {first} of {head['model']})")
    if getattr(model, "trained_modalities_", None):
        out["experts"] = {"model": lm.name, **model.expert_report(X)[0]["precision_share"]}
        _input_effects(lm, video, work, level, names[0], own, out)
    return True


def _fusion_class(lm: LoadedModel, video: NewVideo, work: Path) -> dict[str, Any]:
    view = per_call_view(lm.model, feature_store=str(work / "features"), progress=False)
    proba = np.asarray(view.predict_proba(video.dataset()))[0]
    k = int(proba.argmax())
    names = CLASS_NAMES if len(proba) == len(CLASS_NAMES) else tuple(str(i + 1) for i in range(len(proba)))
    return {
        "label": k,
        "name": names[k],
        "n_classes": len(proba),
        "probabilities": [round(float(p), 4) for p in proba],
        "model": lm.name,
        "method": "ordinal classes of the weighted, normalised engagement score (cover + title fusion)",
    }


#: two P(popular) disagree when they fall on opposite sides of one half AND differ by at least this much
DISAGREE_BY = 0.15


def _attention_definition(lm: LoadedModel) -> str:
    data = [str(d) for d in (lm.recipe.get("data"), lm.recipe.get("covers")) if d]
    seen = " and ".join(data) or "its own training data"
    return f"above the median of {seen} (another notion of popular), from frames and title words"


def _reconcile(out: dict[str, Any], opinions: list[dict[str, Any]]) -> None:
    """One headline: the count model's class and P(popular) when it gave them; else the fusion class with
    its own P(class >= 4); else the attention model's P(popular). The rest are named second opinions."""
    cls, pp = out["popularity_class"], out["p_popular"]
    fusion = next((o for o in opinions if o["kind"] == "class"), None)
    attn = next((o for o in opinions if o["kind"] == "p_popular"), None)
    if cls is None and pp is None and fusion is not None:
        cls = {k: v for k, v in fusion.items() if k != "kind"}
        pr = cls.get("probabilities") or []
        pp = {"value": float(sum(pr[3:])), "model": cls["model"], "definition": "P(class 4 or 5 of 5)"}
        opinions = [o for o in opinions if o is not fusion]
    if pp is None and attn is not None:
        pp = {"value": attn["value"], "model": attn["model"], "definition": attn["definition"]}
        opinions = [o for o in opinions if o is not attn]
    for o in opinions:
        if o["kind"] == "p_popular" and pp is not None:
            apart = (o["value"] > 0.5) != (pp["value"] > 0.5) and abs(o["value"] - pp["value"]) >= DISAGREE_BY
            o["agrees"] = not apart
        elif o["kind"] == "class" and cls is not None:
            o["agrees"] = abs(o["label"] - cls["label"]) <= 1
    out["popularity_class"], out["p_popular"], out["second_opinions"] = cls, pp, opinions
    out["verdict"] = answer.verdict_text(cls, pp)


def predict_video(models: list[LoadedModel], video: NewVideo, work: Path, level: float) -> dict[str, Any]:
    """Every popularity model's prediction for one new video, as one reconciled answer."""
    out: dict[str, Any] = {
        "inputs": video.describe(),
        "verdict": None,
        "targets": [],
        "popularity_class": None,
        "p_popular": None,
        "context": None,
        "effects": [],
        "input_effects": [],
        "second_opinions": [],
        "experts": None,
        "notes": [],
        "models": [],
    }
    if not models:
        raise MissingModelError("the bundle has no popularity model (train variational_poe / cover_title_fusion)")
    opinions: list[dict[str, Any]] = []
    counted = False
    # the model `vidpop train best` chose on validation gives the headline; the other count models add only
    # the targets it lacks
    models = sorted(models, key=lambda m: best_on_validation(m.recipe) is None)
    for lm in models:
        caps = lm.capabilities
        try:
            if "intervals" in caps and not counted:
                _counts(lm, video, work, level, out)
                counted = True
            elif "intervals" in caps:
                if not _more_counts(lm, video, work, level, out):
                    continue
            elif "explain" in caps:
                value = attention_p_popular(lm.model, video.dataset(), work)
                opinions.append({"kind": "p_popular", "value": value, "model": lm.name,
                                 "definition": _attention_definition(lm)})  # fmt: skip
            elif "predict" in caps and hasattr(lm.model, "predict_proba"):
                opinions.append({"kind": "class", **_fusion_class(lm, video, work)})
            else:
                continue
            out["models"].append(lm.name)
            out["notes"] += _limits(lm)
        except VidpopError as exc:
            out["notes"].append(f"{lm.name}: {exc}")
    _reconcile(out, opinions)
    head = out.pop("headline", None)
    out["served_by"] = None if head is None else {"model": head["model"], "kind": head["kind"],
                                                   "best_on_validation": _best(models, head["model"])}  # fmt: skip
    return out


def _best(models: list[LoadedModel], name: str) -> dict[str, Any] | None:
    return next((best_on_validation(m.recipe) for m in models if m.name == name), None)


def compare_titles(
    models: list[LoadedModel], video: NewVideo, titles: list[str], work: Path, level: float
) -> dict[str, Any]:
    """What-if on the title: both titles with every other input equal, the ratio of their first count from
    paired samples (the same seeded draws for both), and the words that differ with their attention β."""
    titles = [t.strip() for t in titles]
    if len(titles) != 2 or not all(titles):
        raise VidpopError("compare exactly two non-empty titles")
    counts = [m for m in models if "intervals" in m.capabilities]
    if not counts:
        raise MissingModelError("comparing titles needs a count model (train variational_poe)")
    # paired samples of the two titles need a joint predictive distribution (the PoE's seeded draws)
    lm = next((m for m in counts if joint_samples(m.model)), counts[0])
    names = list(lm.model.target_names_)
    preds, draws = [], []
    for t in titles:
        v = dataclasses.replace(video, title=t)
        r = count_prediction(lm.model, count_inputs(lm.model, lm.recipe, v.dataset(), work), level)
        entry = answer.target_entries(names[:1], r["mean"], r["lower"], r["upper"], level, lm.name, "")[0]
        preds.append({"title": t, **entry})
        draws.append(r["samples"][:, 0])
    ratio = answer.ratio_summary(draws[0] - draws[1], level)
    out: dict[str, Any] = {
        "titles": titles,
        "target": answer.short_name(names[0]),
        "model": lm.name,
        "predictions": preds,
        "ratio": ratio,
        "method": "ratio first / second from paired predictive samples (the same seeded draws for both titles)",
        "words": [],
        "word_model": None,
    }
    explainers = [m for m in models if "explain" in m.capabilities]
    if explainers:
        ex = explainers[0]
        sets = [title_words(ex.model, t) for t in titles]
        vocab = [{w["word"] for w in s} for s in sets]
        drivers = [{**w, "title": i + 1} for i, s in enumerate(sets) for w in s if w["word"] not in vocab[1 - i]]
        out["words"] = sorted(drivers, key=lambda w: -w["beta"])
        out["word_model"] = ex.name
        out["title_words"] = sets
    t = out["target"]
    if ratio["lower"] <= 1.0 <= ratio["upper"]:
        out["reading"] = "no clear difference: the interval includes ×1"
    else:
        out["reading"] = f"title {1 if ratio['value'] > 1 else 2} is predicted to get more {t}"
    out["summary"] = (
        f"“{titles[0]}” vs “{titles[1]}”: {t} ×{ratio['value']:.2f} "
        f"({int(level * 100)}% interval ×{ratio['lower']:.2f}–×{ratio['upper']:.2f}; {lm.name}): {out['reading']}"
    )
    return out
