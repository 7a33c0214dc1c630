"""Bring your own data: one table file, or a folder of them, mapped onto vidpop's schema by options.

Why: every model in vidpop reads a :class:`~vidpop.data.schema.VideoDataset`; users with their own
export (a CSV from a channel dashboard, a crawl in Parquet) should not have to write an adapter.

Input (``vidpop data import generic PATH --out DIR [--option key=value ...]``):

* a single file — ``.csv``, ``.tsv``, ``.parquet`` or ``.jsonl`` — read as the ``videos`` table, or
* a folder holding ``videos.<ext>`` and, optionally, ``authors.<ext>``, ``interactions.<ext>`` and
  ``user_texts.<ext>`` (same extensions).

Column mapping: ``--option <vidpop column>=<your column>``. Keys without a table prefix map ``videos``
columns; ``authors.``, ``interactions.`` and ``user_texts.`` prefixes map the other tables
(``--option interactions.user_id=uid``). Short aliases: ``id`` (video_id), ``author`` (author_id),
``user`` (user_id), ``published`` (published_at), ``cover`` (cover_path), ``video`` (video_path),
``time`` (timestamp). Columns already named like vidpop's need no option; other columns are kept as
extra columns. Required: ``video_id`` and ``title`` (videos), ``author_id`` (authors),
``user_id`` + ``video_id`` (interactions), ``user_id`` + ``text`` (user_texts); a missing one is an
error that lists what is missing and which columns the file has.

Other options: ``name`` (dataset name; default the file or folder name), ``sep`` (CSV separator),
``tags_sep`` (separator of your tags column, turned into vidpop's "|"), ``timezone`` (zone of naive
datetimes, default UTC), ``time_unit`` (``s`` or ``ms`` for numeric epoch times, default ``s``).

Paths: relative ``cover_path`` / ``video_path`` values are resolved against the folder of the file that
holds them; values that are URLs move to ``cover_url`` / ``video_url``; paths of files that do not
exist become missing (and are counted in ``meta["notes"]``), never a placeholder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter
from vidpop.data.schema import TABLES, VideoDataset
from vidpop.errors import DataNotFoundError, SchemaError, VidpopError

EXTENSIONS = (".csv", ".tsv", ".parquet", ".jsonl")
ALIASES = {
    "id": "video_id",
    "author": "author_id",
    "user": "user_id",
    "published": "published_at",
    "cover": "cover_path",
    "video": "video_path",
    "time": "timestamp",
}
#: Options that are settings, not column mappings.
SETTINGS = ("name", "sep", "tags_sep", "timezone", "time_unit")
#: Columns holding ids: read as strings so that "007" stays "007".
ID_COLUMNS = ("video_id", "author_id", "user_id")


def parse_mapping(options: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``{"views": "n_views", "interactions.user": "uid"}`` -> ``{table: {vidpop column: source column}}``."""
    out: dict[str, dict[str, str]] = {t: {} for t in TABLES}
    for key, value in options.items():
        if key in SETTINGS:
            continue
        table, _, col = key.rpartition(".")
        table = table or "videos"
        if table not in TABLES:
            raise VidpopError(f"generic: option '{key}': unknown table '{table}' (tables: {', '.join(TABLES)})")
        out[table][ALIASES.get(col, col)] = str(value)
    return out


def read_table(path: Path, sep: str | None = None, str_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one table file by extension; ``str_columns`` (if present) are read as text."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix == ".jsonl":
        df = pd.read_json(path, lines=True, dtype=dict.fromkeys(str_columns, str))
    elif suffix in (".csv", ".tsv"):
        delim = sep or ("\t" if suffix == ".tsv" else ",")
        df = pd.read_csv(path, sep=delim, dtype=dict.fromkeys(str_columns, str))
    else:
        raise VidpopError(f"generic: cannot read {path.name}; use one of {', '.join(EXTENSIONS)}")
    for c in str_columns:
        if c in df:
            df[c] = df[c].astype("string")
    return df


def _find(folder: Path, stem: str) -> Path | None:
    hits = [folder / f"{stem}{ext}" for ext in EXTENSIONS if (folder / f"{stem}{ext}").exists()]
    if len(hits) > 1:
        raise VidpopError(f"generic: {folder} has several '{stem}' tables: {[h.name for h in hits]}; keep one")
    return hits[0] if hits else None


def _one_time(v: Any, timezone: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError):
        return pd.NaT
    if ts is pd.NaT:
        return pd.NaT
    return (ts.tz_localize(timezone) if ts.tzinfo is None else ts).tz_convert("UTC")


def parse_times(s: pd.Series, timezone: str = "UTC", unit: str = "s") -> pd.Series:
    """Datetimes in UTC from strings, datetimes or epoch numbers; naive values are in ``timezone``."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return pd.to_datetime(s, unit=unit, errors="coerce", utc=True)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    try:
        t = pd.to_datetime(s, errors="coerce", format="mixed")
    except ValueError:  # naive and offset-aware values mixed: one value at a time
        return pd.Series([_one_time(v, timezone) for v in s], index=s.index, dtype="datetime64[ns, UTC]")
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        return t.dt.tz_convert("UTC")
    if t.dtype == object:  # several offsets
        return pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
    return t.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


def _resolve_media(df: pd.DataFrame, col: str, url_col: str, base: Path) -> int:
    """Resolve relative paths in ``df[col]`` against ``base``; return how many files are missing."""
    if col not in df:
        return 0
    vals = df[col].astype("string")
    is_url = vals.str.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://").fillna(False).astype(bool)
    if is_url.any():
        df[url_col] = vals.where(is_url)
    resolved: list[str | None] = []
    n_missing = 0
    for v, url in zip(vals, is_url, strict=True):
        if url or v is pd.NA or not str(v).strip():
            resolved.append(None)
            continue
        p = Path(str(v).strip()).expanduser()
        p = p if p.is_absolute() else base / p
        if p.exists():
            resolved.append(str(p.resolve()))
        else:
            resolved.append(None)
            n_missing += 1
    df[col] = resolved
    return n_missing


@register_adapter
class GenericAdapter(Adapter):
    """Your own CSV/Parquet/JSONL file or folder; see the module docstring for the options."""

    name = "generic"
    description = "your own CSV/TSV/Parquet/JSONL (file or folder), columns mapped with --option col=yourcol"

    def default_source(self) -> Path:
        raise VidpopError("generic: pass your file or folder, e.g. `vidpop data import generic my.csv --out DIR`")

    def load(self, src: str | Path | None = None) -> VideoDataset:
        if src is None:
            self.default_source()
        return super().load(src)

    def table_files(self, path: Path) -> dict[str, Path | None]:
        """The file of each table (a single file is the videos table); checks the options map only those."""
        if path.is_dir():
            files = {t: _find(path, t) for t in TABLES}
            if files["videos"] is None:
                raise DataNotFoundError(f"generic: {path} has no videos table (videos{'|'.join(EXTENSIONS)})")
        else:
            files = {t: None for t in TABLES} | {"videos": path}
        for table, cols in parse_mapping(self.options).items():
            if cols and files[table] is None:
                raise VidpopError(f"generic: options map columns of '{table}' but {path} has no {table} table")
        return files

    def read(self, path: Path) -> VideoDataset:
        mapping = parse_mapping(self.options)
        files = self.table_files(path)
        tz = str(self.options.get("timezone", "UTC"))
        unit = str(self.options.get("time_unit", "s"))
        tables: dict[str, pd.DataFrame] = {}
        notes: list[str] = []
        for table, f in files.items():
            if f is None:
                continue
            cols = mapping[table]
            str_cols = tuple(cols.get(c, c) for c in ID_COLUMNS)
            df = read_table(f, self.options.get("sep"), str_cols)
            tables[table] = self._map(table, df, cols, f)
            notes.extend(self._prepare(table, tables[table], f.parent, tz, unit))
        name = str(self.options.get("name") or (path.name if path.is_dir() else path.stem))
        notes.insert(0, f"imported from {', '.join(str(f.name) for f in files.values() if f)} with the generic adapter")
        return VideoDataset(name, meta={"notes": notes, "mapping": mapping}, **tables)

    @staticmethod
    def _map(table: str, df: pd.DataFrame, cols: dict[str, str], f: Path) -> pd.DataFrame:
        absent = {k: v for k, v in cols.items() if v not in df.columns}
        required = TABLES[table][1]
        renamed = df.rename(columns={v: k for k, v in cols.items() if k not in absent})
        missing = [c for c in required if c not in renamed.columns]
        if absent or missing:
            parts = []
            if absent:
                parts.append("mapped column(s) not in the file: " + ", ".join(f"{k}={v}" for k, v in absent.items()))
            if missing:
                parts.append(f"missing required column(s) {missing}")
            hint = " ".join(f"--option {'' if table == 'videos' else table + '.'}{c}=YOURCOLUMN" for c in missing)
            raise SchemaError(
                f"generic: {f.name} ({table}): {'; '.join(parts)}. Columns in the file: {list(df.columns)}."
                + (f" Map them with {hint}" if hint else "")
            )
        return renamed

    def _prepare(self, table: str, df: pd.DataFrame, base: Path, tz: str, unit: str) -> list[str]:
        """Parse times, resolve media paths and normalise tags in place; return notes."""
        notes: list[str] = []
        for col in ("published_at", "timestamp"):
            if col in df:
                raw = df[col]
                df[col] = parse_times(raw, tz, unit)
                bad = int((df[col].isna() & raw.notna()).sum())
                if bad:
                    notes.append(f"{table}.{col}: {bad} value(s) could not be parsed as dates (left missing)")
        if table == "videos":
            for col, url_col in (("cover_path", "cover_url"), ("video_path", "video_url")):
                n = _resolve_media(df, col, url_col, base)
                if n:
                    notes.append(f"{col}: {n} file(s) not found under {base} (left missing)")
            sep = self.options.get("tags_sep")
            if sep and "tags" in df:
                df["tags"] = (
                    df["tags"]
                    .astype("string")
                    .str.split(str(sep))
                    .map(lambda xs: "|".join(x.strip() for x in xs if x.strip()) if isinstance(xs, list) else None)
                )
        return notes
