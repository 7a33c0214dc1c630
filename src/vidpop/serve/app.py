"""The REST API and the web page, in one FastAPI app over a :class:`~vidpop.serve.predictors.ModelBundle`.

The models load once, when the app is created; every request reuses them. Uploads stream into a
per-request folder that is always removed; explanation images are copied out of it into a small,
pruned artifact store so the page can fetch them by URL afterwards. ``/analyze`` serves a prediction and
its explanation from one upload (what the page sends). The models are warmed at start-up by one prediction
and explanation, so the first user does not wait for lazy loading. Model calls run in the threadpool without
a global lock: inference is read-only (per-call settings go to a copy of a model's config), and Grad-CAM,
which hooks the shared network, holds that model's own lock. The default work folder
(``/tmp/vidpop-serve-<pid>``) is removed at shutdown.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StringConstraints

from vidpop.errors import MissingModelError, UnknownItemError, VidpopError
from vidpop.serve.api_uploads import read_form
from vidpop.serve.inputs import MAX_TITLE_CHARS, NewVideo
from vidpop.serve.limits import JsonBodyLimit, install_error_handlers
from vidpop.serve.predictors import ModelBundle

STATIC_DIR = Path(__file__).parent / "static"
_ARTIFACT_ID = re.compile(r"^[0-9a-f]{16}$")
T = TypeVar("T")


def _env_token() -> str | None:
    return os.environ.get("VIDPOP_API_TOKEN") or None


@dataclass
class ServeSettings:
    """What an operator configures; the defaults suit one creator on a laptop."""

    #: bearer token for write endpoints (``/admin/reload``); None disables them
    token: str | None = field(default_factory=_env_token)
    #: cap on one request's body (all uploaded files together), in MB
    max_upload_mb: float = 200.0
    #: where request folders (``uploads/``) and explanation images (``artifacts/``) live; None = system temp
    work_dir: Path | None = None
    #: default number of recommendations
    k: int = 10
    #: explanation artifact folders kept (oldest pruned first)
    keep_artifacts: int = 50
    #: cap on a JSON body (``/recommend``), in KB; larger bodies get 413 before they are read whole
    max_json_kb: float = 1024.0
    #: cap on the ids of one watch history
    max_history: int = 1000
    #: cap on a title's length, in characters
    max_title_chars: int = MAX_TITLE_CHARS
    #: run one prediction and explanation at start-up, so the first user's answer is not slow
    warm: bool = True
    #: True when the work folder is the default temp folder: it is then removed at shutdown
    owns_work_dir: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.work_dir is None:
            self.work_dir = Path(tempfile.gettempdir()) / f"vidpop-serve-{os.getpid()}"
            self.owns_work_dir = True
        self.work_dir = Path(self.work_dir)
        if self.max_upload_mb <= 0 or self.max_json_kb <= 0:
            raise VidpopError("max_upload_mb and max_json_kb must be positive")
        if self.max_history < 1 or self.max_title_chars < 1:
            raise VidpopError("max_history and max_title_chars must be at least 1")
        if not 1 <= self.k <= 100:
            raise VidpopError("k must be between 1 and 100")

    @property
    def uploads_dir(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "uploads"

    @property
    def artifacts_dir(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "artifacts"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


#: an id longer than this is not an id
MAX_ID_CHARS = 256
_Id = Annotated[str, StringConstraints(max_length=MAX_ID_CHARS)]


class RecommendRequest(BaseModel):
    """A cold-start or anonymous query: watched ids (oldest first) and/or some text; or a known user."""

    user: _Id | None = Field(None, description="a user id the recommender knows")
    history: list[_Id] = Field(default_factory=list, description="watched video ids, oldest first")
    text: str | None = Field(None, max_length=5000, description="free text about the user's interests (cold start)")
    k: int | None = Field(None, ge=1, le=100, description="number of videos (default from the settings)")


def _status_for(exc: VidpopError) -> int:
    """409: the bundle lacks a model for this; 404: an unknown id; 400: anything else about the input."""
    if isinstance(exc, MissingModelError):
        return 409
    if isinstance(exc, UnknownItemError):
        return 404
    return 400


class _State:
    """The app's long-lived parts: the bundle, swapped whole on reload (a request keeps the bundle it began
    with; the swap is one reference assignment, so no lock is needed)."""

    def __init__(self, models_dir: Path, settings: ServeSettings) -> None:
        self.models_dir = models_dir
        self.settings = settings
        self.bundle = ModelBundle(models_dir)
        #: CPU seconds of the start-up warm-up per part (empty until it ran)
        self.warm_seconds: dict[str, float] = {}

    def warm(self) -> None:
        assert self.settings.work_dir is not None
        folder = Path(tempfile.mkdtemp(prefix="warm-", dir=self.settings.work_dir))
        try:
            self.warm_seconds = self.bundle.warm(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def run(self, fn: Callable[[ModelBundle], T]) -> T:
        return fn(self.bundle)


def _new_video(fields: dict[str, str], files: dict[str, Path], max_title: int) -> NewVideo:
    raw = fields.get("author_followers", "").strip()
    followers: float | None = None
    if raw:
        try:
            followers = float(raw)
        except ValueError:
            raise HTTPException(422, f"author_followers must be a number, got '{raw[:40]}'") from None
    duration: float | None = None
    if fields.get("duration", "").strip():
        try:
            duration = float(fields["duration"])
        except ValueError:
            raise HTTPException(422, f"duration must be a number of seconds, got '{fields['duration'][:40]}'") from None
    video = NewVideo(
        video=files.get("video"),
        cover=files.get("cover"),
        title=fields.get("title", ""),
        author_followers=followers,
        tags=fields.get("tags", ""),
        duration=duration,
        posted_at=fields.get("posted_at", "").strip() or None,
    )
    return video.check(max_title)  # every file decoded here, before any model sees it


def _publish(src: Path, artifacts: Path, keep: int) -> str:
    """Copy an explanation's files into a fresh artifact folder; prune the oldest beyond ``keep``."""
    artifacts.mkdir(parents=True, exist_ok=True)
    aid = secrets.token_hex(8)
    dest = artifacts / aid
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("features"))
    now = time.time_ns()  # copytree copies the source's times; the store's order is the publishing order
    os.utime(dest, ns=(now, now))
    folders = sorted((p for p in artifacts.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime_ns)
    for old in folders[: max(0, len(folders) - keep)]:
        if old.name != aid:
            shutil.rmtree(old, ignore_errors=True)
    return aid


def _with_urls(data: dict[str, Any], aid: str) -> dict[str, Any]:
    """Add ``*_url`` next to every relative file path of an explanation."""
    base = f"/artifacts/{aid}/"
    for frame in data.get("frames", []):
        if frame.get("overlay_png"):
            frame["overlay_url"] = base + str(frame["overlay_png"])
    data["urls"] = {key.removesuffix("_png"): base + str(rel) for key, rel in (data.get("files") or {}).items()}
    data["artifact_id"] = aid
    return data


_UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "video": {"type": "string", "format": "binary", "description": "a clip (.mp4, .mov, ...)"},
                        "cover": {"type": "string", "format": "binary", "description": "a cover image (.jpg, ...)"},
                        "title": {"type": "string", "description": "the planned title"},
                        "author_followers": {"type": "number", "description": "the author's follower count"},
                        "tags": {"type": "string", "description": "hashtags, e.g. '#cat #funny'"},
                        "duration": {"type": "number", "description": "the clip's duration in seconds"},
                        "posted_at": {"type": "string", "description": "planned posting time (ISO 8601)"},
                        "compare_title": {"type": "string", "description": "a second title to compare (what-if)"},
                    },
                }
            }
        },
    }
}


def create_app(models_dir: str | Path, settings: ServeSettings | None = None) -> FastAPI:
    """The API + web page over the models saved under ``models_dir`` (loaded here, once)."""
    settings = settings or ServeSettings()
    state = _State(Path(models_dir), settings)
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warm:  # before the first request is accepted
            await run_in_threadpool(state.warm)
        try:
            yield
        finally:  # nothing of a request outlives the server in a folder the server made itself
            if settings.owns_work_dir and settings.work_dir is not None:
                shutil.rmtree(settings.work_dir, ignore_errors=True)

    app = FastAPI(
        lifespan=lifespan,
        title="vidpop",
        version="0.1.0",
        description="Predict a new video's popularity (with 95% intervals), explain it (Grad-CAM frames, title "
        "words) and recommend videos to users.",
    )
    app.state.vidpop = state
    app.add_middleware(JsonBodyLimit, max_bytes=int(settings.max_json_kb * 1024))
    install_error_handlers(app)

    @app.exception_handler(VidpopError)
    async def _vidpop_error(request: Request, exc: VidpopError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_for(exc))

    Work = Callable[[ModelBundle, NewVideo, Path, dict[str, str]], dict[str, Any]]

    async def _with_upload(request: Request, work: Work) -> Any:
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="req-", dir=settings.uploads_dir))
        try:
            form = await read_form(request, folder, settings.max_upload_bytes)
            video = await run_in_threadpool(_new_video, form.fields, form.files, settings.max_title_chars)
            return await run_in_threadpool(state.run, lambda bundle: work(bundle, video, folder, form.fields))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _predict(bundle: ModelBundle, video: NewVideo, folder: Path, fields: dict[str, str]) -> dict[str, Any]:
        compare = fields.get("compare_title", "")
        if len(compare) > settings.max_title_chars:
            raise VidpopError(
                f"the compared title has {len(compare)} characters; the limit is {settings.max_title_chars}"
            )
        return bundle.predict(video, folder / "work", compare_title=compare or None)

    def _explain(bundle: ModelBundle, video: NewVideo, folder: Path, fields: dict[str, str]) -> dict[str, Any]:
        out = folder / "explanation"
        data = bundle.explain(video, out)
        return _with_urls(data, _publish(out, settings.artifacts_dir, settings.keep_artifacts))

    @app.post("/predict", tags=["predict"], openapi_extra=_UPLOAD_SCHEMA)
    async def predict(request: Request) -> Any:
        """Predicted views/likes/comments with 95% intervals, popularity class and P(popular) of a new video;
        with ``compare_title``, the what-if of that title against the video's own (``what_if``)."""
        return await _with_upload(request, _predict)

    @app.post("/explain", tags=["predict"], openapi_extra=_UPLOAD_SCHEMA)
    async def explain(request: Request) -> Any:
        """Grad-CAM overlays per frame (weighted by attention α) and title word importances β, with image URLs."""
        return await _with_upload(request, _explain)

    @app.post("/analyze", tags=["predict"], openapi_extra=_UPLOAD_SCHEMA)
    async def analyze(request: Request) -> Any:
        """Prediction and explanation from one upload (what the page sends): ``{"prediction", "explanation"}``;
        ``explanation`` is null, with the reason in ``explanation_note``, when there is nothing to explain."""

        def work(bundle: ModelBundle, video: NewVideo, folder: Path, fields: dict[str, str]) -> dict[str, Any]:
            out: dict[str, Any] = {"prediction": _predict(bundle, video, folder, fields), "explanation": None,
                                   "explanation_note": None}  # fmt: skip
            if video.video is None and video.cover is None:
                out["explanation_note"] = "no clip or cover: only the title was predicted (explain needs an image)"
            elif not bundle.has_role("explain"):
                out["explanation_note"] = "the bundle has no explanation model (train attention_explain)"
            else:
                out["explanation"] = _explain(bundle, video, folder, fields)
            return out

        return await _with_upload(request, work)

    @app.get("/artifacts/{artifact_id}/{file_path:path}", tags=["predict"])
    def artifact(artifact_id: str, file_path: str) -> FileResponse:
        """An image of an earlier explanation (kept for the last few explanations only)."""
        if not _ARTIFACT_ID.match(artifact_id):
            raise HTTPException(404, "no such artifact")
        base = (settings.artifacts_dir / artifact_id).resolve()
        target = (base / file_path).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            raise HTTPException(404, "no such artifact")
        return FileResponse(target)

    @app.get("/recommend/{user}", tags=["recommend"])
    def recommend_user(user: str, k: int | None = Query(None, ge=1, le=100)) -> Any:
        """Top-k videos for a user the recommender knows (from the user's watch history)."""
        # a JSONResponse skips FastAPI's generic encoder (the answer is plain JSON types already)
        return JSONResponse(state.run(lambda bundle: bundle.recommend(user=user, k=k or settings.k)))

    @app.post("/recommend", tags=["recommend"])
    def recommend(body: RecommendRequest) -> Any:
        """Top-k videos for a watch history (ids, oldest first) and/or text (cold start)."""
        if len(body.history) > settings.max_history:
            raise HTTPException(
                422, f"the history has {len(body.history)} ids; the limit is {settings.max_history} (send the latest)"
            )
        return JSONResponse(
            state.run(
                lambda bundle: bundle.recommend(
                    user=body.user, history=body.history, text=body.text, k=body.k or settings.k
                )
            )
        )

    @app.get("/covers/{video_id}", tags=["recommend"])
    def cover(video_id: str) -> FileResponse:
        """The cover image of a recommendable video (404 when the data has none)."""
        path = state.bundle.cover_path(video_id)
        if path is None:
            raise HTTPException(404, f"no cover for video '{video_id}'")
        return FileResponse(path)

    @app.get("/models", tags=["service"])
    def models() -> dict[str, Any]:
        """The loaded models, their roles (predict / explain / recommend) and training data."""
        return {"models": state.bundle.describe(), "upload_limit_mb": settings.max_upload_mb, "k": settings.k}

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness: answers even while a model call runs."""
        return {"status": "ok", "models": len(state.bundle.models), "warm_cpu_seconds": state.warm_seconds}

    @app.post("/admin/reload", tags=["service"])
    def reload(authorization: str | None = Header(None)) -> dict[str, Any]:
        """Reload the models from disk; needs ``Authorization: Bearer <token>`` (VIDPOP_API_TOKEN)."""
        if not settings.token:
            raise HTTPException(403, "reload disabled: no API token configured (set VIDPOP_API_TOKEN)")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), settings.token):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        try:  # requests keep the old bundle meanwhile, and after a refusal
            fresh = ModelBundle(state.models_dir)
        except Exception as exc:
            why = str(exc) if isinstance(exc, VidpopError) else f"{type(exc).__name__}: {str(exc)[:200]}"
            detail = f"the models on disk were not loaded ({why}); the old ones stay in service"
            raise HTTPException(409, detail) from exc
        state.bundle = fresh
        return {"status": "reloaded", "models": len(fresh.models)}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


#: environment of a worker process: ``serve(workers=N)`` passes the settings this way to each worker
_ENV_MODELS, _ENV_SETTINGS = "VIDPOP_SERVE_MODELS", "VIDPOP_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory): models and settings come from the environment
    that :func:`serve` set, so every worker loads the same models and shares one work folder."""
    models = os.environ.get(_ENV_MODELS)
    if not models:
        raise VidpopError(f"{_ENV_MODELS} is not set: start workers with vidpop serve --workers N")
    raw = json.loads(os.environ.get(_ENV_SETTINGS, "{}"))
    work_dir = Path(raw.pop("work_dir")) if raw.get("work_dir") else None
    return create_app(models, ServeSettings(**raw, work_dir=work_dir))


def serve(
    models_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    workers: int = 1,
    access_log: bool = True,
) -> None:
    """Run the app with uvicorn (what ``vidpop serve`` calls).

    ``workers > 1`` starts that many processes on one port, each with its own copy of the models: the
    GIL lets one process use about one core, so on N cores N workers answer N requests at once. They
    share one work folder, so an explanation image made by one worker is served by any other.
    """
    import uvicorn

    settings = settings or ServeSettings()
    if workers < 1:
        raise VidpopError("--workers must be at least 1")
    log_level = "info"
    if workers == 1:
        uvicorn.run(create_app(models_dir, settings), host=host, port=port, log_level=log_level, access_log=access_log)
        return
    # every constructor field, so a setting added later reaches the workers too (``warm`` once did not)
    shared = {f.name: getattr(settings, f.name) for f in fields(settings) if f.init}
    shared["work_dir"] = str(settings.work_dir)
    os.environ[_ENV_MODELS] = str(Path(models_dir).resolve())
    os.environ[_ENV_SETTINGS] = json.dumps(shared)
    try:
        uvicorn.run("vidpop.serve.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=access_log)  # fmt: skip
    finally:  # the workers never own the shared folder; the parent removes it when they are gone
        if settings.owns_work_dir and settings.work_dir is not None:
            shutil.rmtree(settings.work_dir, ignore_errors=True)


__all__ = ["RecommendRequest", "ServeSettings", "app_from_environment", "create_app", "serve"]
