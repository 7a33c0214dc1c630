"""Atomic file writes shared by the feature store, training checkpoints and anything else that must
never leave half a file behind: write a temporary sibling, fsync, rename; remove the temporary on any
failure (a full disk, Ctrl-C), so a reader sees the old file or the new one, never a torn one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(final: Path, write: Callable[[IO[bytes]], Any], tmp: Path | None = None) -> None:
    """Call ``write(fh)`` on a temporary sibling of ``final`` (default ``.NAME.tmp-PID``), then move it
    into place."""
    tmp = tmp if tmp is not None else final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
