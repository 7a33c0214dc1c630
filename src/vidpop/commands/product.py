"""The product commands: ``vidpop train | evaluate | predict | explain | recommend | serve``.

Thin: training goes through the recipes (:mod:`vidpop.recipes`, one process or torchrun),
everything else through :class:`vidpop.serve.predictors.ModelBundle` — the same code the REST API runs.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from vidpop.errors import VidpopError


@contextmanager
def _busy(message: str) -> Any:
    """A spinner on stderr for steps that take seconds (model loading, decoding, embedding)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        typer.echo(message + " ...", err=True)
        yield
        return
    with console.status(message):
        yield


def _read_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise VidpopError(f"config file not found: {path}")
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(path.read_text())
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise VidpopError(f"cannot parse {path.name}: {exc}") from exc


def _train_overrides(
    model: str, limit: int | None, seed: int | None, epochs: int | None, split: str | None = None
) -> list[str]:
    """CLI conveniences as ``key=value`` overrides: recipe options, and epochs where the model has them."""
    import dataclasses

    from vidpop.models.registry import get_model_class

    fields = {f.name for f in dataclasses.fields(get_model_class(model).Config)}
    out = []
    if limit is not None:
        out.append(f"recipe.limit={limit}")
    if seed is not None:
        out.append(f"recipe.seed={seed}")
    if split is not None:
        out.append(f"recipe.split={split}")
    if epochs is not None:
        out.append(f"train.epochs={epochs}" if "train" in fields else f"recipe.epochs={epochs}")
    return out


def _checkpointing(model: str, out: Path, resume: Path | None) -> tuple[Path | None, list[str]]:
    """Overrides that make the training loop checkpoint into ``OUT.ckpt`` (or resume from ``resume``)."""
    import dataclasses

    from vidpop.models.registry import get_model_class
    from vidpop.training.loop import reset_fit_calls

    has_loop = "train" in {f.name for f in dataclasses.fields(get_model_class(model).Config)}
    if resume is not None and not has_loop:
        raise VidpopError(f"{model} has no epoch loop to resume; train it again without --resume")
    if resume is not None and not any(resume.glob("fit-*.pt")):
        raise VidpopError(f"no checkpoint in {resume}; give the OUT.ckpt folder of an interrupted `vidpop train`")
    if not has_loop:
        return None, []
    ckpt = (resume or out.with_name(out.name + ".ckpt")).resolve()
    reset_fit_calls(ckpt)
    return ckpt, [f"train.checkpoint_dir={json.dumps(str(ckpt))}", f"train.resume={json.dumps(resume is not None)}"]


def _flatten(config: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in config.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}={json.dumps(v)}")
    return out


def train(
    model: str = typer.Argument(
        ...,
        help="A registered model (vidpop models list), e.g. variational_poe; or `best`: the best popularity "
        "model on validation (the leaderboard's LightGBM candidates, retrieval off/on, default/tuned).",
    ),
    data: str = typer.Option("microlens", "--data", help="Dataset: adapter name or `vidpop data import` folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write."),
    config: Path | None = typer.Option(None, "--config", help="JSON or TOML of hyper-parameters."),
    set_: list[str] = typer.Option([], "--set", help="Override key=value (JSON value), e.g. train.epochs=20."),
    limit: int | None = typer.Option(None, help="Train on a seeded sample of this many videos."),
    seed: int | None = typer.Option(None),
    epochs: int | None = typer.Option(None),
    split: str | None = typer.Option(
        None, "--split", help="random | time (latest 20% test, 10% before it val) | user (by uploader)."
    ),
    nproc: int = typer.Option(1, help="Ranks for DistributedDataParallel (torchrun, gloo on CPU)."),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue an interrupted run from its checkpoint folder (OUT.ckpt, saved each epoch)."
    ),
    trials: int = typer.Option(20, "--trials", min=0, help="`vidpop train best`: Optuna trials per tuned LightGBM."),
) -> None:
    """Train a model on a dataset's training split and write a model folder (reload it with evaluate)."""
    from vidpop.recipes import launch

    if model == "best":
        from vidpop.experiments.winner import format_selection, train_best

        if config is not None or set_ or epochs is not None or nproc != 1 or resume is not None:
            raise VidpopError("vidpop train best takes --data, --out, --split, --seed, --limit and --trials only")
        sel = train_best(data, out, split, trials, seed or 0, limit=limit)
        typer.echo(format_selection(sel))
        typer.echo(f"-> {out}; next: vidpop evaluate {out}")
        return

    ckpt, ckpt_overrides = _checkpointing(model, out, resume)
    overrides = _flatten(_read_config(config)) + _train_overrides(model, limit, seed, epochs, split) + list(set_)
    report = launch(model, data, out, nproc, overrides + ckpt_overrides)
    if ckpt is not None:  # trained to the end: nothing is left to resume
        import shutil

        shutil.rmtree(ckpt, ignore_errors=True)
    typer.echo(f"trained {model} on {report['data']}")
    typer.echo(
        f"{len(report['epochs'])} epoch(s) in {report['seconds']:.1f} s on {report['world_size']} rank(s) -> {out}"
    )
    typer.echo(f"next: vidpop evaluate {out}")


def evaluate(
    model_dir: Path = typer.Argument(..., help="A folder written by `vidpop train`."),
    data: str | None = typer.Option(None, "--data", help="Score on another dataset with the same recipe."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Standard metrics of a trained model on its test split (rebuilt from the recipe it was trained with):
    regression MAPE, MAE, R2, Spearman (+ coverage95, width95); classification accuracy, Spearman; ordinal
    accuracy, ordinal_accuracy; recommenders P@5, R@5, F@5, HR@10, NDCG@10."""
    from vidpop.recipes import evaluate_model_dir

    with _busy(f"evaluating {model_dir}"):
        res = evaluate_model_dir(model_dir, data)
    if as_json:
        typer.echo(json.dumps(res, indent=1, default=float))
        return
    typer.echo(f"{res['model']} ({res['task']}) on {res['data']} (split: {res.get('split')})")
    for title, table in (("", res["metrics"]), ("baseline (train mean)", res.get("baseline (train mean)") or {})):
        if title and table:
            typer.echo(f"{title}:")
        for part, row in table.items():
            cells = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()]
            typer.echo(f"  {part:28s} " + "  ".join(cells))


def _bundle(model_dir: Path) -> Any:
    from vidpop.serve.predictors import ModelBundle

    with _busy(f"loading models from {model_dir}"):
        return ModelBundle(model_dir)


def _new_video(video: Path | None, cover: Path | None, title: str, followers: float | None, **more: Any) -> Any:
    from vidpop.serve.inputs import NewVideo

    return NewVideo(video=video, cover=cover, title=title, author_followers=followers, **more).check()


def _fmt_count(x: float) -> str:
    return f"{round(x):,}"  # counts arrive rounded to whole numbers (serve.answer.round_count)


def _print_prediction(res: dict[str, Any]) -> None:
    """The answer as a reader wants it: the verdict first, then the numbers, their context and limits."""
    if res.get("verdict"):
        typer.echo(f"verdict: {res['verdict']}")
    by = res.get("served_by")
    if by:
        best = by.get("best_on_validation")
        why = (
            f"; best on validation: {best['candidate']}, retrieval {'on' if best.get('retrieval') else 'off'}, "
            f"val MAE {best['val']['MAE']:.3f}"
            if best
            else ""
        )
        typer.echo(f"model: {by['model']} ({by['kind']}{why})")
    for t in res["targets"]:
        fmt = _fmt_count if t["scale"] == "count" else (lambda x: f"{x:.3f}")
        typer.echo(
            f"{t['name']:>10s}: {fmt(t['value'])}   {int(t['level'] * 100)}% interval "
            f"[{fmt(t['lower'])}, {fmt(t['upper'])}]   ({t['model']})"
        )
    pc, pp = res["popularity_class"], res["p_popular"]
    if pc:
        typer.echo(
            f"popularity class: {pc['label'] + 1}/{pc['n_classes']} ({pc['name']}; {pc['model']}: {pc['method']})"
        )
    if pp:
        typer.echo(f"P(popular): {pp['value']:.2f} ({pp['model']}: {pp.get('definition', '')})")
    if res.get("context"):
        typer.echo(f"context: {res['context']}")
    for line in res.get("effects", []):
        typer.echo(f"input effect: {line}")
    for o in res.get("second_opinions", []):
        what = f"P(popular) {o['value']:.2f}" if o["kind"] == "p_popular" else f"class {o['label'] + 1} ({o['name']})"
        agree = {True: "agrees", False: "disagrees"}.get(o.get("agrees"), "")
        typer.echo(f"second opinion: {o['model']} {what} {agree} ({o.get('definition') or o.get('method')})")
    wi = res.get("what_if")
    if wi:
        typer.echo(f"what-if: {wi['summary']}")
        if wi.get("note"):
            typer.echo(f"  ({wi['note']})")
        for p in wi["predictions"]:
            typer.echo(f"  “{p['title']}”: {p['name']} {_fmt_count(p['value'])} [{_fmt_count(p['lower'])}, "
                       f"{_fmt_count(p['upper'])}]")  # fmt: skip
        if wi["words"]:
            shown = ", ".join(f"{w['word']} (title {w['title']}) {w['beta']:.2f}" for w in wi["words"][:8])
            typer.echo(f"  words that differ, by attention β ({wi['word_model']}): {shown}")
    for n in res["notes"]:
        typer.echo(f"note: {n}")


def predict(
    model_dir: Path = typer.Argument(..., help="A model folder, or a folder of model folders."),
    video: Path | None = typer.Option(None, "--video", help="The new clip (mp4, ...)."),
    cover: Path | None = typer.Option(None, "--cover", help="Its cover image."),
    title: list[str] = typer.Option([], "--title", help="The title; give it twice to compare two titles."),
    author_followers: float | None = typer.Option(None, "--author-followers"),
    tags: str = typer.Option("", "--tags", help="Hashtags, e.g. '#cat #funny' (models trained with tags read them)."),
    duration: float | None = typer.Option(None, "--duration", help="The clip's duration in seconds."),
    posted_at: str | None = typer.Option(None, "--posted-at", help="Planned posting time, ISO 8601."),
    as_json: bool = typer.Option(False, "--json", help="Print the prediction as JSON."),
) -> None:
    """Predicted views / likes / ... with 95% intervals, the popularity class and P(popular) for a new video;
    with two --title options, what the second title changes (ratio with its interval, the words that differ)."""
    if len(title) > 2:
        raise VidpopError("give --title once, or twice to compare two titles")
    more = {"tags": tags, "duration": duration, "posted_at": posted_at}
    new = _new_video(video, cover, title[0] if title else "", author_followers, **more)
    compare = title[1] if len(title) == 2 else None
    if compare is not None and not compare.strip():
        raise VidpopError("the second --title is empty")
    bundle = _bundle(model_dir)
    with tempfile.TemporaryDirectory(prefix="vidpop-predict-") as work, _busy("decoding, embedding, predicting"):
        res = bundle.predict(new, work, compare_title=compare)
    if as_json:
        typer.echo(json.dumps(res, indent=1))
        return
    _print_prediction(res)


def explain(
    model_dir: Path = typer.Argument(..., help="A folder holding an attention_explain model."),
    video: Path | None = typer.Option(None, "--video"),
    cover: Path | None = typer.Option(None, "--cover", help="Explain a cover image (one frame) instead."),
    title: str = typer.Option("", "--title"),
    out: Path = typer.Option(..., "--out", help="Folder for the heatmap PNGs and explanation.json."),
) -> None:
    """Grad-CAM heatmaps scaled by frame attention, and per-word importances, written as PNG + JSON."""
    new = _new_video(video, cover, title, None)
    bundle = _bundle(model_dir)
    with _busy("explaining"):
        data = bundle.explain(new, out)
    typer.echo(f"P(popular) = {data['p_popular']:.3f} ({data['model_dir']})")
    typer.echo(f"wrote {out / 'explanation.png'} (frame strip, heatmaps, word shading) and {out / 'explanation.json'}")
    pngs = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    typer.echo(f"{len(pngs)} PNG files in {out}: {', '.join(pngs[:6])}{' ...' if len(pngs) > 6 else ''}")
    if data["words"]:
        best = sorted(data["words"], key=lambda w: -w["beta"])[:5]
        typer.echo("word importance: " + ", ".join(f"{w['word']} {w['beta']:.2f}" for w in best))


def recommend(
    model_dir: Path = typer.Argument(..., help="A recommender folder (or a folder of model folders)."),
    user: str | None = typer.Option(None, "--user", help="A user id the model knows."),
    history: str | None = typer.Option(None, "--history", help="Watched video ids, oldest first: id1,id2,..."),
    text: str | None = typer.Option(None, "--text", help="What a new user likes (cold start)."),
    k: int = typer.Option(10, "-k", "--k"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Top-k videos with titles for a known user, a watch history, or a text (cold start)."""
    given = sum(x is not None for x in (user, history, text))
    if given != 1:
        raise VidpopError("give one of --user, --history id1,id2,... or --text '...'")
    bundle = _bundle(model_dir)
    res = bundle.recommend(user=user, history=(history or "").split(",") if history else None, text=text, k=k)
    if as_json:
        typer.echo(json.dumps(res, indent=1))
        return
    typer.echo(f"top {k} from {res['model']}:")
    for it in res["items"]:
        why = f"   ({it['because']})" if it.get("because") else ""
        typer.echo(f"{it['rank']:3d}  {it['video_id']:>8s}  {it['title']}{why}")
    for n in res["notes"]:
        typer.echo(f"note: {n}", err=True)


def serve(
    models: Path = typer.Option(..., "--models", help="A folder of model folders (or one model folder)."),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    token: str | None = typer.Option(None, envvar="VIDPOP_API_TOKEN", help="Token for write endpoints (reload)."),
    max_upload_mb: int = typer.Option(200, help="Upload size cap per request (all files together), MB."),
    workers: int = typer.Option(1, min=1, help="Server processes; one per core answers that many requests at once."),
    access_log: bool = typer.Option(True, help="Log every request (costs ~0.7 ms of CPU per request)."),
) -> None:
    """Serve the REST API (schema at /openapi.json) and the web page at http://HOST:PORT/."""
    from vidpop.serve.app import ServeSettings
    from vidpop.serve.app import serve as run_server

    settings = ServeSettings(token=token, max_upload_mb=max_upload_mb)
    typer.echo(f"vidpop: http://{host}:{port}/ (API schema at /openapi.json), {workers} worker(s)", err=True)
    typer.echo("warming the models (one prediction and one explanation) before the first request ...", err=True)
    run_server(models, host=host, port=port, settings=settings, workers=workers, access_log=access_log)


def register(root: typer.Typer) -> None:
    for fn in (train, evaluate, predict, explain, recommend, serve):
        root.command(fn.__name__)(fn)
