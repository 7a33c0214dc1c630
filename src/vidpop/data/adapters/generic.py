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
exist become missing (and are counted in ``meta["notes"]``), never a placeholder. A path that resolves
outside that folder (``../../etc/passwd``, an absolute path elsewhere) is left missing too, unless
``allow_external_media`` is set (``--allow-external-media``).

Validation: counts (views, likes, ..., followers) must be finite numbers >= 0; any other value ("abc",
"1e400", -5) is kept as missing and counted in a note, or, with ``strict`` (``--strict``), the import
is refused. A file that is not UTF-8 text, a binary file or an empty file is refused with one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter
from vidpop.data.schema import AUTHOR_COLUMNS, ENGAGEMENT_COLUMNS, TABLES, VideoDataset
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
SETTINGS = ("name", "sep", "tags_sep", "timezone", "time_unit", "strict", "allow_external_media")
#: Columns holding ids: read as strings so that "007" stays "007".
ID_COLUMNS = ("video_id", "author_id", "user_id")
#: Count columns per table: finite and >= 0, else missing (or refused under ``strict``).
COUNT_COLUMNS = {
    "videos": (*ENGAGEMENT_COLUMNS, "duration"),
    "authors": tuple(c for c, kind in AUTHOR_COLUMNS.items() if kind == "float"),
}


def flag(options: dict[str, Any], key: str) -> bool:
    """A boolean option given as ``key=1`` / ``true`` / ``yes`` (or a real bool from the Python API)."""
    v = options.get(key, False)
    return v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")


def check_text_file(path: Path) -> None:
    """Refuse, with one line, a text table that is empty or binary (a NUL byte in its first 8 KB)."""
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if not head.strip():
        raise VidpopError(f"generic: {path.name} is empty; it needs a header row and at least one row")
    if b"\0" in head:
        raise VidpopError(f"generic: {path.name} looks like a binary file, not a {path.suffix.lstrip('.')} table")


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn the readers' exceptions about a broken file into one line that says what to do."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise VidpopError(
            f"generic: {path.name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "re-save it as UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise VidpopError(f"generic: {path.name} is empty; it needs a header row and at least one row") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        what = " ".join(str(exc).split())[:160]
        raise VidpopError(f"generic: cannot read {path.name} as {path.suffix.lstrip('.')}: {what}") from None
    except Exception as exc:  # pyarrow's ArrowInvalid for a damaged Parquet file, among others
        if isinstance(exc, VidpopError):
            raise
        raise VidpopError(f"generic: {path.name} is damaged or not a {path.suffix.lstrip('.')} file "
                          f"({type(exc).__name__})") from None  # fmt: skip


_COUNTED = re.compile(r"^(?P<head>[\w.]+: )(?P<n>\d+) (?P<rest>.*)$")
_EXAMPLES = re.compile(r" \(e\.g\. .*?\)(?=:|$)")


def combine_notes(notes: list[str]) -> list[str]:
    """Notes of several chunks as one per kind: "views: 2 value(s) ..." + "views: 1 value(s) ..." -> 3
    (with the first chunk's examples)."""
    out: list[str] = []
    where: dict[tuple[str, str], int] = {}
    total: dict[int, tuple[int, str, str]] = {}
    for note in notes:
        m = _COUNTED.match(note)
        if not m:
            out.append(note)
            continue
        key = (m["head"], _EXAMPLES.sub("", m["rest"]))
        if key not in where:
            where[key] = len(out)
            total[len(out)] = (0, m["head"], m["rest"])
            out.append(note)
        n, head, rest = total[where[key]]
        total[where[key]] = (n + int(m["n"]), head, rest)
    for i, (n, head, rest) in total.items():
        out[i] = f"{head}{n} {rest}"
    return out


def check_counts(table: str, df: pd.DataFrame, strict: bool) -> list[str]:
    """Counts as finite floats >= 0 in place; other values become missing and are counted in a note, or
    refused under ``strict``."""
    notes: list[str] = []
    for col in COUNT_COLUMNS.get(table, ()):
        if col not in df:
            continue
        raw = df[col]
        with np.errstate(over="ignore", invalid="ignore"):
            num = pd.to_numeric(raw, errors="coerce").astype("float64")
            bad = (raw.notna() & ~np.isfinite(num)) | (num < 0)
        n = int(bad.sum())
        if n:
            examples = ", ".join(repr(str(v))[:24] for v in raw[bad].head(3))
            msg = f"{table}.{col}: {n} value(s) are not finite counts >= 0 (e.g. {examples})"
            if strict:
                raise SchemaError(f"generic: {msg}; fix them or import without --strict (they become missing)")
            notes.append(msg + ": kept as missing")
        df[col] = num.where(~bad)
    return notes


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
    if suffix not in EXTENSIONS:
        raise VidpopError(f"generic: cannot read {path.name}; use one of {', '.join(EXTENSIONS)}")
    if suffix != ".parquet":
        check_text_file(path)
    with reading(path):
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".jsonl":
            df = pd.read_json(path, lines=True, dtype=dict.fromkeys(str_columns, str))
        else:
            delim = sep or ("\t" if suffix == ".tsv" else ",")
            df = pd.read_csv(path, sep=delim, dtype=dict.fromkeys(str_columns, str), encoding="utf-8")
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


def _resolve_media(df: pd.DataFrame, col: str, url_col: str, base: Path, external: bool = False) -> tuple[int, int]:
    """Resolve relative paths in ``df[col]`` against ``base``; return how many files are missing and how many
    lie outside ``base`` (both left missing; outside ones are kept when ``external``)."""
    if col not in df:
        return 0, 0
    root = base.resolve()
    vals = df[col].astype("string")
    is_url = vals.str.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://").fillna(False).astype(bool)
    if is_url.any():
        df[url_col] = vals.where(is_url)
    resolved: list[str | None] = []
    n_missing = n_outside = 0
    for v, url in zip(vals, is_url, strict=True):
        if url or v is pd.NA or not str(v).strip():
            resolved.append(None)
            continue
        p = Path(str(v).strip())
        p = (p if p.is_absolute() else base / p).resolve()  # symlinks and ".." resolved before the check
        if not external and not p.is_relative_to(root):
            resolved.append(None)
            n_outside += 1
        elif p.is_file():
            resolved.append(str(p))
        else:
            resolved.append(None)
            n_missing += 1
    df[col] = resolved
    return n_missing, n_outside


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
        notes: list[str] = check_counts(table, df, flag(self.options, "strict"))
        for col in ("published_at", "timestamp"):
            if col in df:
                raw = df[col]
                df[col] = parse_times(raw, tz, unit)
                bad = int((df[col].isna() & raw.notna()).sum())
                if bad:
                    notes.append(f"{table}.{col}: {bad} value(s) could not be parsed as dates (left missing)")
        if table == "videos":
            external = flag(self.options, "allow_external_media")
            for col, url_col in (("cover_path", "cover_url"), ("video_path", "video_url")):
                n, outside = _resolve_media(df, col, url_col, base, external)
                if n:
                    notes.append(f"{col}: {n} file(s) not found under {base} (left missing)")
                if outside and flag(self.options, "strict"):
                    raise SchemaError(f"generic: {col}: {outside} path(s) lie outside {base}; move the files "
                                      "into the data folder or pass --allow-external-media")  # fmt: skip
                if outside:
                    notes.append(f"{col}: {outside} path(s) outside {base} (left missing; "
                                 "--allow-external-media keeps them)")  # fmt: skip
            sep = self.options.get("tags_sep")
            if sep and "tags" in df:
                df["tags"] = (
                    df["tags"]
                    .astype("string")
                    .str.split(str(sep))
                    .map(lambda xs: "|".join(x.strip() for x in xs if x.strip()) if isinstance(xs, list) else None)
                )
        return notes
