"""Model folders that are either complete or absent (issue 14, "model folders are atomic").

:func:`staged_folder` lets a save write every file into a hidden sibling (``.NAME.tmp-PID-XXXX``); on
success it writes ``complete.json`` (every file with its size) last, fsyncs the files and the folder,
and renames the sibling into place. A crash at any point leaves the old folder (or none) at the target
path, never a half-written one. :func:`check_folder` is what loading runs first: one line naming the
missing or truncated file instead of a traceback from deep inside pandas or torch.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vidpop.errors import VidpopError

MARKER = "complete.json"
#: ``format`` recorded in config.json by folders that always carry the marker
FOLDER_FORMAT = 2


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_siblings(out: Path) -> None:
    """Staging folders of earlier saves to ``out`` whose process died (kill -9, power loss)."""
    for p in out.parent.glob(f".{out.name}.*-*-*"):
        try:
            pid = int(p.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on normal exit it replaces ``out`` atomically (see module doc)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(out)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.parent / f".{out.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        yield tmp
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        for p in files:
            _fsync(p)
        # config.json is checked by parsing it (users may edit it by hand); every other file by its size
        sizes = {str(p.relative_to(tmp)): None if p.name == "config.json" else p.stat().st_size for p in files}
        marker = tmp / MARKER
        marker.write_text(json.dumps({"files": sizes}, indent=1))
        _fsync(marker)
        _fsync(tmp)
        old = out.parent / f".{out.name}.old-{tag}"
        if out.exists():
            out.rename(old)  # a crash right here leaves no folder at ``out``: loading says "not a model"
        tmp.rename(out)
        _fsync(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_folder_json(path: Path, name: str, keys: Iterable[str] = ()) -> Any:
    """The JSON file ``name`` of the model folder ``path``, with ``keys`` required at its top; a file that is
    not JSON or lacks a key is refused with one line naming it (the folder is damaged: retrain it)."""
    try:
        data = json.loads((path / name).read_text())
        missing = [k for k in keys if k not in data]
        if missing:
            raise KeyError(", ".join(missing))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise VidpopError(f"model folder {path} is damaged: {name} is unreadable ({exc}) — retrain it") from exc
    return data


def check_folder(path: Path, required: Iterable[str], needs_marker: bool) -> None:
    """Refuse (one line) a folder whose marker lists a missing or truncated file, or that lacks
    ``required`` files. ``needs_marker``: the folder was written by a version that always writes it."""
    marker = path / MARKER
    missing: list[str] = []
    if marker.exists():
        sizes = read_folder_json(path, MARKER, ["files"])["files"]
        for name, size in sizes.items():
            f = path / name
            if not f.is_file():
                missing.append(name)
            elif size is not None and f.stat().st_size != size:
                raise VidpopError(
                    f"model folder {path} is damaged: {name} has {f.stat().st_size} bytes, {size} were written "
                    "— retrain it"
                )
    elif needs_marker:
        missing.append(MARKER)
    missing += [r for r in required if r not in missing and not (path / r).is_file()]
    if missing:
        raise VidpopError(f"model folder {path} is incomplete: missing {', '.join(missing)} — retrain it")
