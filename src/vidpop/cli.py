"""The ``vidpop`` command line: a thin shell over the library.

Each module in :mod:`vidpop.commands` contributes one command group (``NAME`` + ``app``) or, with
``NAME = None``, top-level commands registered on the root app via ``register(root)``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from vidpop.errors import VidpopError

app = typer.Typer(
    name="vidpop",
    help="Predict how popular a video will be, explain why, and recommend videos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount_commands() -> None:
    import vidpop.commands as pkg

    for mod_info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{pkg.__name__}.{mod_info.name}")
        if getattr(mod, "NAME", None):
            app.add_typer(mod.app, name=mod.NAME, help=(mod.__doc__ or "").strip().splitlines()[0])
        elif hasattr(mod, "register"):
            mod.register(app)


_mount_commands()


def main() -> None:
    """Entry point: user errors print one line and exit 2, never a traceback; so does any unexpected
    exception (with a hint how to see its traceback), and the environment's usual failures (a read-only
    folder, a path that is a file, a full disk) say which path and what to do."""
    import errno
    import os

    try:
        app()
    except VidpopError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("error: interrupted", fg=typer.colors.RED, err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("VIDPOP_DEBUG", "").strip() not in ("", "0"):
            raise
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        hints = {
            errno.ENOSPC: f"the disk is full{where}: free some space or point the output elsewhere",
            errno.EROFS: f"read-only file system{where}: write the output to a writable folder",
            errno.EACCES: f"permission denied{where}: write the output to a folder you own",
            errno.ENOTDIR: f"a path that should be a folder is a file{where}: remove the file or choose another path",
            errno.EEXIST: f"a path that should be a folder is a file{where}: remove the file or choose another path",
        }
        errno_ = exc.errno if isinstance(exc, OSError) else None
        msg = hints.get(errno_) if errno_ is not None else None
        if msg is None:
            text = " ".join(str(exc).split())[:300]
            msg = f"unexpected {type(exc).__name__}: {text}" if text else f"unexpected {type(exc).__name__}"
        typer.secho(f"error: {msg}; run with VIDPOP_DEBUG=1 for the traceback", fg=typer.colors.RED, err=True)
        sys.exit(2 if errno_ is not None else 1)


if __name__ == "__main__":
    main()
