"""``python -m benchmarks.run_all`` (``make bench``): every benchmark, each in its own process (so peak
RSS figures do not leak between them), then one summary of the targets, all measured in this run.

``--only extraction,faiss`` runs a subset. Results: ``benchmarks/results/<name>.json`` and
``summary.json``; each benchmark also prints its own tables.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import RESULTS, Table, machine, verdict

#: name -> module; order: the cheap, self-contained ones first
BENCHMARKS = {
    "engines": "benchmarks.bench_engines",
    "extraction": "benchmarks.bench_extraction",
    "faiss": "benchmarks.bench_faiss",
    "growth": "benchmarks.bench_growth",
    "training_speed": "benchmarks.bench_training_speed",
}


def _load(name: str) -> dict[str, Any] | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def summary(ran: dict[str, dict[str, Any]]) -> Table:
    """Targets of issue 8, each a ratio measured in the same run."""
    t = Table("Targets (ratios from this run)", ["benchmark", "target", "value", "verdict"])
    ex = _load("extraction") if "extraction" in ran else None
    if ex:
        for mode, r in ex["targets"]["full_within_1.5x_of_limit"].items():
            t.add("extraction", f"full within 1.5x of limit ({mode})", f"{r:.2f}x", verdict(r <= 1.5))
        for mode, r in ex["targets"]["speedup_vs_naive"].items():
            t.add("extraction", f">= 3x faster than naive ({mode})", f"{r:.1f}x", verdict(r >= 3))
    en = _load("engines") if "engines" in ran else None
    if en:
        d = en["max_abs_diff"]
        t.add(
            "engines",
            "onnx == torch within 1e-4",
            f"image {d['image']:.1e}, text {d['text']:.1e}",
            verdict(max(d.values()) <= 1e-4),
        )
        pick = en["auto_choice"]
        t.add("engines", "auto picks the faster", f"image {pick['image']}, text {pick['text']}", "see engines table")
    fa = _load("faiss") if "faiss" in ran else None
    if fa:
        for r in fa["ivf"]:
            t.add(
                "faiss (synthetic 1M)",
                f"IVF nprobe={r['nprobe']}: recall@10 >= 0.95",
                f"{r['recall_at_10']:.3f}",
                verdict(r["recall_at_10"] >= 0.95),
            )
            value = f"{r['ms_single']:.2f} ms ({r['speedup_vs_exact_single']:.0f}x faster than exact)"
            t.add("faiss (synthetic 1M)", f"IVF nprobe={r['nprobe']}: < 5 ms/user", value, verdict(r["ms_single"] < 5))
    gr = _load("growth") if "growth" in ran else None
    if gr:
        for stage, r in gr["linear"].items():
            t.add("growth", f"{stage}: cost/row all vs 10k <= 1.5", f"{r:.2f}", verdict(r <= 1.5))
    ts = _load("training_speed") if "training_speed" in ran else None
    if ts:
        for name, r in ts["models"].items():
            if "error" in r:
                t.add("training_speed", f"{name} {r.get('unit', '')}, all users", r["error"][:60], "failed")
                continue
            value = f"{r['seconds_per_epoch']:.1f} s ({r['cpu_seconds']:.0f} CPU s, {r['peak_rss_mb']:.0f} MB)"
            t.add("training_speed", f"{name} {r['unit']}, all users", value, "reported")
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    a = p.parse_args(argv)
    names = [n.strip() for n in a.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}; known: {', '.join(BENCHMARKS)}")
    print(f"machine: {machine()}", flush=True)
    t0 = time.perf_counter()
    ran: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t, c = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        rc = subprocess.call([sys.executable, "-m", BENCHMARKS[name]])
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (c1.ru_utime + c1.ru_stime) - (c.ru_utime + c.ru_stime)
        ran[name] = {"exit_code": rc, "seconds": round(time.perf_counter() - t, 1), "cpu_seconds": round(cpu, 1)}
        print(f"--- {name}: exit {rc}, {ran[name]['seconds']} s wall, {ran[name]['cpu_seconds']} s CPU", flush=True)
    total = time.perf_counter() - t0
    table = summary({k: v for k, v in ran.items() if v["exit_code"] == 0})
    print(table.render())
    cpu = sum(v["cpu_seconds"] for v in ran.values())
    load = machine()["load_average_1m"]
    budget = Table("Whole run", ["benchmarks", "wall s", "CPU s (all threads)", "load avg now", "wall < 15 min"])
    budget.add(", ".join(names), total, cpu, load, verdict(total < 900))
    print(budget.render(), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(
        json.dumps(
            {"machine": machine(), "ran": ran, "total_seconds": round(total, 1), "targets": table.as_dict()}, indent=2
        )
    )
    return 0 if all(v["exit_code"] == 0 for v in ran.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
