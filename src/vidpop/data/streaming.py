"""Streamed import of the user's own files (the ``generic`` adapter) with bounded memory.

Why: ``vidpop data import generic`` reads each table whole, which is fine for a channel export but not
for a platform dump with hundreds of millions of interactions. Here every table is read ``chunk_rows``
rows at a time, mapped and checked exactly like :class:`~vidpop.data.adapters.generic.GenericAdapter`
does, and appended to its Parquet file as one row group per chunk; only the chunk and the set of video
ids (to keep ``video_id`` unique across chunks) are held in memory. The output is the same folder
(four Parquet tables + manifest) that :meth:`VideoDataset.load` reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from vidpop.data.adapters.generic import (
    EXTENSIONS,
    ID_COLUMNS,
    GenericAdapter,
    check_text_file,
    combine_notes,
    parse_mapping,
    reading,
)
from vidpop.data.schema import ENGAGEMENT_COLUMNS, empty_table, normalise_table, write_manifest
from vidpop.errors import DataNotFoundError, SchemaError, VidpopError


def iter_table(path: Path, sep: str | None, str_columns: tuple[str, ...], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of one table file, ``chunk_rows`` rows each (id columns read as text)."""
    suffix = path.suffix.lower()
    dtype = dict.fromkeys(str_columns, str)
    if suffix not in EXTENSIONS:
        raise VidpopError(f"generic: cannot read {path.name}; use one of {', '.join(EXTENSIONS)}")
    if suffix != ".parquet":
        check_text_file(path)
    with reading(path):  # a broken file fails in any chunk: one line, not a traceback
        if suffix == ".parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        elif suffix == ".jsonl":
            yield from pd.read_json(path, lines=True, dtype=dtype, chunksize=chunk_rows)
        else:
            delim = sep or ("\t" if suffix == ".tsv" else ",")
            yield from pd.read_csv(path, sep=delim, dtype=dtype, chunksize=chunk_rows, encoding="utf-8")


def _stable_types(df: pd.DataFrame) -> pd.DataFrame:
    """Give extra columns a type that does not depend on the chunk: text stays text even when a chunk holds
    only empty cells, and integers become floats (a later chunk may have a missing value)."""
    out = df.copy()
    for c in out.columns:
        s = out[c]
        if pd.api.types.is_bool_dtype(s):
            out[c] = s.astype("boolean")
        elif pd.api.types.is_integer_dtype(s) and not isinstance(s.dtype, pd.Int64Dtype):
            out[c] = s.astype("float64")
        elif s.dtype == object:
            out[c] = s.astype("string")
    return out


class _TableWriter:
    """Appends chunks of one table to ``<table>.parquet``; the first chunk fixes the schema."""

    def __init__(self, path: Path, table: str) -> None:
        self.path, self.table = path, table
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        arrow = pa.Table.from_pandas(df, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, arrow.schema)
        else:
            if arrow.schema.names != self.writer.schema.names:
                raise SchemaError(f"generic: {self.table} columns changed between chunks")
            try:
                arrow = arrow.cast(self.writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"generic: a column of {self.table} changes type between chunks ({exc}); give it one type"
                ) from exc
        self.writer.write_table(arrow)
        self.rows += len(df)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:  # no rows at all: an empty table with the required columns
            empty_table(self.table).to_parquet(self.path, index=False)


def _import_table(
    adapter: GenericAdapter, table: str, f: Path | None, cols: dict[str, str], dst: Path, chunk_rows: int,
    state: dict[str, Any], progress: bool,
) -> int:  # fmt: skip
    """Stream one table file into ``dst/<table>.parquet`` (atomically); returns its row count."""
    opts = adapter.options
    tz, unit = str(opts.get("timezone", "UTC")), str(opts.get("time_unit", "s"))
    tmp = dst / f".{table}.parquet.tmp"
    writer = _TableWriter(tmp, table)
    try:
        if f is not None:
            str_cols = tuple(cols.get(c, c) for c in ID_COLUMNS)
            bar = tqdm(desc=f"import {table}", unit="row", disable=not progress)
            for chunk in iter_table(f, opts.get("sep"), str_cols, chunk_rows):
                df = adapter._map(table, chunk, cols, f)
                state["notes"].extend(adapter._prepare(table, df, f.parent, tz, unit))
                df = _stable_types(normalise_table(table, df))
                if table == "videos":
                    ids = df["video_id"].astype(str)
                    dup = ids[ids.isin(state["ids"])].head(3).tolist()
                    if dup:
                        raise SchemaError(f"videos.video_id must be unique; duplicates such as {dup}")
                    state["ids"].update(ids)
                    state["engagement"].update(c for c in ENGAGEMENT_COLUMNS if c in df and df[c].notna().any())
                writer.write(df)
                bar.update(len(df))
            bar.close()
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)  # a refused import leaves no part-written table behind
        raise
    writer.close()
    tmp.replace(dst / f"{table}.parquet")
    return writer.rows


def stream_import(
    path: str | Path, out: str | Path, options: dict[str, Any] | None = None, chunk_rows: int = 100_000,
    progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Import a file or folder with the generic adapter's options, ``chunk_rows`` rows at a time; returns the
    manifest written to ``out``."""
    if chunk_rows < 1:
        raise VidpopError("chunk_rows must be >= 1")
    src, dst = Path(path), Path(out)
    if not src.exists():
        raise DataNotFoundError(f"generic: no data at {src}")
    adapter = GenericAdapter(**(options or {}))
    opts = adapter.options
    mapping = parse_mapping(opts)
    files = adapter.table_files(src)
    dst.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    state: dict[str, Any] = {"notes": [], "engagement": set(), "ids": set()}
    for table, f in files.items():
        counts[table] = _import_table(adapter, table, f, mapping[table], dst, chunk_rows, state, progress)
    name = str(opts.get("name") or (src.name if src.is_dir() else src.stem))
    notes: list[str] = combine_notes(state["notes"])  # one note per kind, not one per chunk
    notes.insert(0, f"imported from {', '.join(str(f.name) for f in files.values() if f)} with the generic adapter")
    notes.append(f"streamed in chunks of {chunk_rows} rows")
    meta = {"notes": notes, "mapping": mapping, "adapter": "generic", "source": str(src)}
    engagement_columns = [c for c in ENGAGEMENT_COLUMNS if c in state["engagement"]]
    return write_manifest(dst, name, counts, engagement_columns, meta)
