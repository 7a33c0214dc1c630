"""Limits and error answers of the REST API: a cap on JSON bodies, and error bodies that never carry a
traceback or echo the whole input back.

Why (issue 14): a 40 MB JSON body to ``/recommend`` was read whole and echoed back in the 422 answer, and
an unexpected exception answered a bare "Internal Server Error" (or, under a debugging server, a
traceback). Here a JSON body is read up to its cap and refused with 413 beyond it, validation errors
name the field and the problem without the input, and any other exception is one JSON line (507 for a
full disk, 503 for a work folder the server cannot write, else 500) with the traceback in the log only.
"""

from __future__ import annotations

import errno
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("vidpop.serve")

#: bodies these content types carry are capped by the upload parser (``api_uploads``), not here
_FORM_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded")


class JsonBodyLimit:
    """ASGI middleware: a non-form body is buffered up to ``max_bytes`` and refused with 413 past it,
    before the rest is read (a declared Content-Length above the cap is refused without reading)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if headers.get(b"content-type", b"").split(b";")[0].strip().lower() in _FORM_TYPES:
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: the app sees the disconnect
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        detail = f"request body too large: the limit for JSON bodies is {self.max_bytes / 1024:g} KB"
        payload = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close")]})  # fmt: skip
        await send({"type": "http.response.body", "body": payload})


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, without the offending input (which may be megabytes long)."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:200], "type": e.get("type", "")}
            for e in exc.errors()[:10]]  # fmt: skip


def install_error_handlers(app: FastAPI) -> None:
    """Validation errors without echoes; any unexpected exception as one JSON line, never a traceback."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_errors(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        status, detail = 500, f"internal error ({type(exc).__name__}); the server log has the details"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            status, detail = 507, "the server's disk is full; try again once space is freed"
        elif isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            status, detail = 503, "the server cannot write its work folder (read-only or no permission)"
        return JSONResponse({"detail": detail}, status_code=status)
