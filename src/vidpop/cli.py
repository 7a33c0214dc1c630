"""The ``vidpop`` command line: a thin shell over the library.

Each module in :mod:`vidpop.commands` contributes one command group (``NAME`` + ``app``) or, with
``NAME = None``, top-level commands registered on the root app via ``register(root)``.

Groups are mounted lazily: :data:`GROUPS` names each group's module and one-line help, so
``vidpop --help`` (and an error exit) imports no group module and none of the heavy stack (torch,
lightgbm, transformers, ray, pandas); a group's module is imported only when that group is run.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click
import typer
from typer.core import TyperGroup

from vidpop.errors import VidpopError

#: group name -> (module, one-line help). The help is the first line of the module's docstring;
#: tests/test_cli_lazy.py checks that this table matches the modules of :mod:`vidpop.commands`.
GROUPS: dict[str, tuple[str, str]] = {
    "attention": (
        "vidpop.commands.attention",
        "The explainable attention model: its results table, the explainer model, and clip explanations.",
    ),
    "data": ("vidpop.commands.data", "Import datasets into vidpop's schema and inspect them."),
    "features": (
        "vidpop.commands.features",
        "Extract and inspect features (title, cover, frame and audio embeddings) of an imported dataset.",
    ),
    "fusion": (
        "vidpop.commands.fusion",
        "Cover + title late fusion: train (optionally GPipe over 2 ranks), weight sweep, backbone and "
        "title-only tables.",
    ),
    "models": ("vidpop.commands.models", "List the registered models."),
    "poe": (
        "vidpop.commands.poe",
        "The variational product-of-experts regressor: evaluate, train, predict, and run real clips end to end.",
    ),
    "rec": (
        "vidpop.commands.rec",
        "Recommend videos: protocol tables, leave-one-out, training and top-k for a (new) user.",
    ),
    "relation": (
        "vidpop.commands.relation",
        "Relation network + multi-task regressor: horizon ablation, each title's competitors, tuning and training.",
    ),
}
#: modules that add top-level commands with ``register(root)``; they import only light modules at
#: module level (their commands import the stack inside the function bodies)
TOP_LEVEL = (
    "vidpop.commands.demo",
    "vidpop.commands.leaderboard",
    "vidpop.commands.product",
    "vidpop.commands.report",
)


class LazyGroup(TyperGroup):
    """The root group: lists :data:`GROUPS` from the table and imports a group's module only when
    that group is resolved for running (``vidpop NAME ...``, including ``vidpop NAME --help``)."""

    def _load(self, name: str) -> click.Command:
        if name not in self.commands:
            module, help_text = GROUPS[name]
            # get_group, not get_command: a one-command app (models) must stay a group
            cmd = typer.main.get_group(importlib.import_module(module).app)
            cmd.name, cmd.help, cmd.short_help = name, help_text, None
            self.commands[name] = cmd
        return self.commands[name]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in GROUPS:
            return self.commands.get(cmd_name)
        # for listing only: a stand-in with the table's help (resolve_command loads the real group)
        return click.Group(name=cmd_name, help=GROUPS[cmd_name][1])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args and args[0] in GROUPS:
            self._load(args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="vidpop",
    help="Predict how popular a video will be, explain why, and recommend videos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)


def _mount_commands() -> None:
    for module in TOP_LEVEL:
        importlib.import_module(module).register(app)


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
