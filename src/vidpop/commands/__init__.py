"""CLI command groups. Each module defines ``app`` (a typer.Typer) and ``NAME`` (its sub-command);
``vidpop.cli`` mounts every module found here."""
