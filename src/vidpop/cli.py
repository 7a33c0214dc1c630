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
    """Entry point: user errors print one line and exit 2, never a traceback."""
    try:
        app()
    except VidpopError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
