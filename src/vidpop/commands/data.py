"""Import datasets into vidpop's schema and inspect them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vidpop.config import parse_key_values
from vidpop.data.adapters import adapter_names, get_adapter
from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError

NAME = "data"
app = typer.Typer(no_args_is_help=True)


@app.command("import")
def import_(
    adapter: str = typer.Argument(..., help="Adapter name (see `vidpop data adapters`)."),
    src: Path | None = typer.Argument(None, help="Source folder/file (default: the staged copy under $VIDPOP_DATA)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the Parquet tables + manifest."),
    option: list[str] = typer.Option([], "--option", help="Adapter option key=value (repeatable)."),
    chunk_rows: int | None = typer.Option(
        None, help="generic adapter: stream each table this many rows at a time (bounded memory)."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="generic adapter: refuse bad counts and outside media paths (default: left missing)."
    ),
    allow_external_media: bool = typer.Option(
        False, "--allow-external-media", help="generic adapter: keep media paths that lie outside the data folder."
    ),
) -> None:
    """Read a source with an adapter and write it in vidpop's schema."""
    options = parse_options(option)
    if strict or allow_external_media:
        if adapter != "generic":
            raise VidpopError("--strict and --allow-external-media apply to the generic adapter")
        options.update(strict=strict, allow_external_media=allow_external_media)
    if chunk_rows is not None:
        if adapter != "generic" or src is None:
            raise VidpopError("--chunk-rows streams the generic adapter's files: give `generic PATH`")
        from vidpop.data.streaming import stream_import

        manifest = stream_import(src, out, options, chunk_rows)
        typer.echo(f"imported {adapter} -> {out} (streamed, {chunk_rows} rows per chunk)")
        typer.echo(f"rows: {manifest['row_counts']}; engagement columns: {manifest['engagement_columns']}")
        for note in manifest["meta"]["notes"]:
            typer.echo(f"  note: {note}")
        return
    ds = get_adapter(adapter, **options).load(src)
    ds.save(out)
    typer.echo(f"imported {adapter} -> {out}")
    _print_info(ds)


@app.command("info")
def info(path: Path = typer.Argument(..., help="A folder written by `vidpop data import`.")) -> None:
    """Row counts, engagement columns, join checks and notes of an imported dataset."""
    _print_info(VideoDataset.load(path))


@app.command("adapters")
def adapters() -> None:
    """List the dataset adapters."""
    for name in adapter_names():
        a = get_adapter(name)
        typer.echo(f"{name:34s} {a.description}")


@app.command("download")
def download(
    adapter: str = typer.Argument(..., help="Adapter name."),
    dest: Path = typer.Option(..., "--dest", help="Folder to download into."),
    option: list[str] = typer.Option([], "--option", help="Adapter option key=value (repeatable)."),
) -> None:
    """Download a dataset from its official source (needs the network)."""
    path = get_adapter(adapter, **parse_options(option)).download(dest)
    typer.echo(f"downloaded {adapter} -> {path}")


def parse_options(option: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (text values); a malformed entry is a user error, not a traceback."""
    return parse_key_values(option, "--option", json_values=False)


def _print_info(ds: VideoDataset) -> None:
    counts = ds.row_counts()
    typer.echo(f"dataset: {ds.name}")
    for table, n in counts.items():
        typer.echo(f"  {table:13s} {n:>9,d} rows")
    typer.echo(f"  engagement:   {', '.join(ds.engagement_columns) or 'none'}")
    if "published_at" in ds.videos and ds.videos["published_at"].notna().any():
        t = ds.videos["published_at"].dropna()
        typer.echo(f"  published:    {t.min():%Y-%m-%d} .. {t.max():%Y-%m-%d}")
    for col in ("cover_path", "video_path"):
        if col in ds.videos:
            typer.echo(f"  {col:13s} {int(ds.videos[col].notna().sum()):>9,d} videos have one")
    bad = {k: v for k, v in ds.check_joins().items() if v}
    typer.echo(f"  joins:        {'ok' if not bad else json.dumps(bad)}")
    for note in ds.meta.get("notes", []):
        typer.echo(f"  note: {note}")
