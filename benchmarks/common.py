"""Shared helpers of the benchmarks: timing with peak RSS, tables, JSON results.

Peak RSS per figure: Linux keeps a process's high-water mark (``VmHWM``); writing ``5`` to
``/proc/self/clear_refs`` resets it, so each :func:`measure` block reports the peak of that block
alone. Where the reset is not allowed, the figure is the process peak so far (flagged ``rss_reset``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _status_mb(field_name: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _vm_hwm_mb() -> float:
    return _status_mb("VmHWM")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Measurement:
    """Wall seconds and peak RSS (MB) of one measured block."""

    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    rss_reset: bool = False
    #: CPU seconds of this process and its threads: on a shared box, wall time / CPU time shows contention
    cpu_seconds: float = 0.0
    #: resident memory when the block started (models already loaded etc.): peak - start = the block's own growth
    start_rss_mb: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 4),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rss_reset": self.rss_reset,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "start_rss_mb": round(self.start_rss_mb, 1),
        }


@contextmanager
def measure() -> Iterator[Measurement]:
    """``with measure() as m: ...`` fills ``m.seconds`` and ``m.peak_rss_mb`` on exit."""
    m = Measurement(rss_reset=_reset_peak(), start_rss_mb=_status_mb("VmRSS"))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - t0
        m.cpu_seconds = time.process_time() - c0
        m.peak_rss_mb = _vm_hwm_mb()


def machine() -> dict[str, Any]:
    """What the numbers were measured on (these machines are shared: load average matters)."""
    import torch

    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
    }


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name with its family and model (``/proc/cpuinfo``): hosts that report the same name
    ("AMD EPYC") differ by generation, and seconds compare only within one (Zen 1 is family 23, Zen 5 26)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return platform.processor() or "unknown"
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", platform.processor() or "unknown")
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


@dataclass
class Table:
    """A printed table that is also kept as rows for the JSON file."""

    title: str
    columns: Sequence[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        self.rows.append(list(values))

    def render(self) -> str:
        def fmt(v: Any) -> str:
            if isinstance(v, float):
                return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
            return str(v)

        cells = [[fmt(v) for v in r] for r in self.rows]
        widths = [
            max(len(str(c)), *(len(r[i]) for r in cells)) if cells else len(str(c)) for i, c in enumerate(self.columns)
        ]
        line = "| " + " | ".join(str(c).ljust(w) for c, w in zip(self.columns, widths, strict=True)) + " |"
        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        body = ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in cells]
        return "\n".join([f"\n### {self.title}", line, sep, *body])

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns), "rows": self.rows}


def report(name: str, tables: Sequence[Table], extra: dict[str, Any]) -> Path:
    """Print the tables and write ``benchmarks/results/<name>.json`` (tables + extra + machine)."""
    for t in tables:
        print(t.render(), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), "tables": [t.as_dict() for t in tables], **extra}
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"-> {path.relative_to(RESULTS.parent.parent)}", flush=True)
    return path


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
