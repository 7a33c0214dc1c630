"""The REST API and the web page, in one FastAPI app over a :class:`~vidpop.serve.predictors.ModelBundle`.

The models load once, when the app is created; every request reuses them. Uploads stream into a
per-request folder that is always removed; explanation images are copied out of it into a small,
pruned artifact store so the page can fetch them by URL afterwards. Model calls run in the threadpool
(one at a time: the models keep per-call state such as their feature-store path), so ``/health``
answers while a prediction runs.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from vidpop.errors import MissingModelError, UnknownItemError, VidpopError
from vidpop.serve.api_uploads import read_form
from vidpop.serve.inputs import NewVideo
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

    def __post_init__(self) -> None:
        if self.work_dir is None:
            self.work_dir = Path(tempfile.gettempdir()) / f"vidpop-serve-{os.getpid()}"
        self.work_dir = Path(self.work_dir)
        if self.max_upload_mb <= 0:
            raise VidpopError("max_upload_mb must be positive")
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


class RecommendRequest(BaseModel):
    """A cold-start or anonymous query: watched ids (oldest first) and/or some text; or a known user."""

    user: str | None = Field(None, description="a user id the recommender knows")
    history: list[str] = Field(default_factory=list, description="watched video ids, oldest first")
    text: str | None = Field(None, description="free text about the user's interests (cold start)")
    k: int | None = Field(None, ge=1, le=100, description="number of videos (default from the settings)")


def _status_for(exc: VidpopError) -> int:
    """409: the bundle lacks a model for this; 404: an unknown id; 400: anything else about the input."""
    if isinstance(exc, MissingModelError):
        return 409
    if isinstance(exc, UnknownItemError):
        return 404
    return 400


class _State:
    """The app's long-lived parts: the bundle (swapped whole on reload) and the lock around model calls."""

    def __init__(self, models_dir: Path, settings: ServeSettings) -> None:
        self.models_dir = models_dir
        self.settings = settings
        self.bundle = ModelBundle(models_dir)
        self.lock = threading.Lock()

    def run(self, fn: Callable[[ModelBundle], T]) -> T:
        with self.lock:
            return fn(self.bundle)


def _new_video(fields: dict[str, str], files: dict[str, Path]) -> NewVideo:
    raw = fields.get("author_followers", "").strip()
    followers: float | None = None
    if raw:
        try:
            followers = float(raw)
        except ValueError:
            raise HTTPException(422, f"author_followers must be a number, got '{raw[:40]}'") from None
    return NewVideo(
        video=files.get("video"), cover=files.get("cover"), title=fields.get("title", ""), author_followers=followers
    )


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

    app = FastAPI(
        title="vidpop",
        version="0.1.0",
        description="Predict a new video's popularity (with 95% intervals), explain it (Grad-CAM frames, title "
        "words) and recommend videos to users.",
    )
    app.state.vidpop = state

    @app.exception_handler(VidpopError)
    async def _vidpop_error(request: Request, exc: VidpopError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_for(exc))

    async def _with_upload(request: Request, work: Callable[[ModelBundle, NewVideo, Path], dict[str, Any]]) -> Any:
        folder = Path(tempfile.mkdtemp(prefix="req-", dir=settings.uploads_dir))
        try:
            form = await read_form(request, folder, settings.max_upload_bytes)
            video = _new_video(form.fields, form.files)
            return await run_in_threadpool(state.run, lambda bundle: work(bundle, video, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.post("/predict", tags=["predict"], openapi_extra=_UPLOAD_SCHEMA)
    async def predict(request: Request) -> Any:
        """Predicted views/likes/comments with 95% intervals, popularity class and P(popular) of a new video."""
        return await _with_upload(request, lambda bundle, video, folder: bundle.predict(video, folder / "work"))

    @app.post("/explain", tags=["predict"], openapi_extra=_UPLOAD_SCHEMA)
    async def explain(request: Request) -> Any:
        """Grad-CAM overlays per frame (weighted by attention α) and title word importances β, with image URLs."""

        def work(bundle: ModelBundle, video: NewVideo, folder: Path) -> dict[str, Any]:
            out = folder / "explanation"
            data = bundle.explain(video, out)
            return _with_urls(data, _publish(out, settings.artifacts_dir, settings.keep_artifacts))

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
        return state.run(lambda bundle: bundle.recommend(user=user, k=k or settings.k))

    @app.post("/recommend", tags=["recommend"])
    def recommend(body: RecommendRequest) -> Any:
        """Top-k videos for a watch history (ids, oldest first) and/or text (cold start)."""
        return state.run(
            lambda bundle: bundle.recommend(
                user=body.user, history=body.history, text=body.text, k=body.k or settings.k
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
        return {"status": "ok", "models": len(state.bundle.models)}

    @app.post("/admin/reload", tags=["service"])
    def reload(authorization: str | None = Header(None)) -> dict[str, Any]:
        """Reload the models from disk; needs ``Authorization: Bearer <token>`` (VIDPOP_API_TOKEN)."""
        if not settings.token:
            raise HTTPException(403, "reload disabled: no API token configured (set VIDPOP_API_TOKEN)")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), settings.token):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        fresh = ModelBundle(state.models_dir)  # loaded outside the lock: requests keep the old bundle meanwhile
        with state.lock:
            state.bundle = fresh
        return {"status": "reloaded", "models": len(fresh.models)}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def serve(
    models_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, settings: ServeSettings | None = None
) -> None:
    """Run the app with uvicorn (what ``vidpop serve`` calls)."""
    import uvicorn

    uvicorn.run(create_app(models_dir, settings), host=host, port=port, log_level="info")


__all__ = ["RecommendRequest", "ServeSettings", "create_app", "serve"]
