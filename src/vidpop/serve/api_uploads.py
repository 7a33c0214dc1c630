"""Streaming multipart uploads for the REST API.

Starlette's form parser spools every file to the system temp dir before the endpoint runs, with no size
limit. Here the request body is parsed chunk by chunk as it arrives: file parts go straight to a
per-request folder (keeping the original suffix, so the feature extractors see ``.mp4`` / ``.jpg``),
and the request is refused with 413 as soon as the body passes the cap, without reading the rest.
The caller owns the folder and removes it (``try/finally``) whatever happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

#: file fields the API accepts; any other file part is refused (it would only waste disk)
FILE_FIELDS = ("video", "cover")
#: a text field larger than this is not a title
MAX_FIELD_BYTES = 64 * 1024
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class UploadTooLarge(HTTPException):
    """The body passed the configured cap (answered with 413 before the rest is read)."""

    def __init__(self, cap_bytes: int) -> None:
        super().__init__(413, f"upload too large: the limit is {cap_bytes / 2**20:g} MB")


@dataclass
class ParsedForm:
    """Text fields and the paths of the uploaded files (only the parts that carried data)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def safe_suffix(filename: str) -> str:
    """The original file suffix, lower-cased, when it looks like one (never a path component)."""
    suffix = Path(filename.replace("\\", "/")).suffix.lower()
    return suffix if _SUFFIX.match(suffix) else ""


def safe_name(filename: str, default: str) -> str:
    """The uploaded file's own name (shown back in the answers), reduced to harmless characters; its suffix
    (lower-cased) is always kept, since it decides how the file is read."""
    suffix = safe_suffix(filename)
    stem = Path(filename.replace("\\", "/")).name[: -len(suffix) or None]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:80] or default
    return stem + suffix


class _Collector:
    """python-multipart callbacks that write file parts into ``folder`` and keep text parts in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.form = ParsedForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._named = False
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._disposition, self._name, self._file, self._path, self._size = b"", "", None, None, 0
        self._named = False
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise HTTPException(400, 'a multipart part has no "name" in its Content-Disposition')
        self._name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            if self._name not in FILE_FIELDS:
                raise HTTPException(422, f"unexpected file field '{self._name}' (use {' or '.join(FILE_FIELDS)})")
            if self._name in self.form.files:
                raise HTTPException(422, f"more than one '{self._name}' file")
            filename = options[b"filename"].decode("utf-8", "replace")
            self._named = bool(filename.strip())
            (self.folder / self._name).mkdir(exist_ok=True)
            self._path = self.folder / self._name / safe_name(filename, self._name)
            self._file = open(self._path, "wb")  # noqa: SIM115 - closed in on_part_end / close()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            self._size += end - start
            return
        if len(self._data) + end - start > MAX_FIELD_BYTES:
            raise HTTPException(413, f"form field '{self._name}' is larger than {MAX_FIELD_BYTES // 1024} KB")
        self._data.extend(data[start:end])

    def on_part_end(self) -> None:
        if self._file is not None and self._path is not None:
            self._file.close()
            self._file = None
            # a browser sends an empty, unnamed part for a file input left empty; an empty file the user
            # named is kept, so it gets the CLI's answer ("video file is empty")
            if self._size or self._named:
                self.form.files[self._name] = self._path
            else:
                self._path.unlink(missing_ok=True)
        elif self._name:
            self.form.fields[self._name] = self._data.decode("utf-8", "replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def _read_urlencoded(request: Request) -> ParsedForm:
    """A form without files (e.g. a title only), as browsers and clients send it."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FIELD_BYTES:
            raise HTTPException(413, f"form larger than {MAX_FIELD_BYTES // 1024} KB without any file")
    return ParsedForm(fields=dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))


async def read_form(request: Request, folder: Path, max_bytes: int) -> ParsedForm:
    """Parse a ``multipart/form-data`` body into ``folder``, refusing it (413) once it passes ``max_bytes``
    (a file-less ``application/x-www-form-urlencoded`` form is accepted too)."""
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UploadTooLarge(max_bytes)  # refused before a byte of the body is read
    if kind == b"application/x-www-form-urlencoded":
        return await _read_urlencoded(request)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(415, "send the inputs as multipart/form-data (fields video, cover, title)")
    collector = _Collector(folder)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise UploadTooLarge(max_bytes)  # stop reading: the rest of the body is never consumed
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise HTTPException(400, f"invalid multipart data: {exc}") from exc
    finally:
        collector.close()
    return collector.form
