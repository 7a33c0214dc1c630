"""List the registered models."""

from __future__ import annotations

import typer

from vidpop.models.registry import describe_models

NAME = "models"
app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """Name, task and description of every registered model."""
    for row in describe_models():
        typer.echo(f"{row['name']:22s} {row['task']:15s} {row['description']}")
