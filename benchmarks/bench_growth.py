"""(c) Growth: time and peak RSS of import, extraction and one training epoch at 1k, 10k and all rows.

Rows are real MicroLens videos (19,738; their comment interactions come along). Per size N:

* import: the first N videos (and their interactions) written as the user's own CSV files, streamed
  by the ``generic`` adapter into a VideoDataset folder (Parquet), 50,000 rows of a table at a time;
* extraction: MiniLM title embeddings of the N titles through ``extract_kind`` (engine ``auto``),
  one atomic store part per 256 titles — values stream to disk, they are never held all at once;
* one training epoch: the demo's MLP (title embedding + category -> log views, likes, comments);
  the fastest of three one-epoch fits (sub-second timings are at the mercy of the machine's load).

"Linear" is judged by the cost per row at the largest size divided by the cost per row at 10k
(<= 1.5 allowed for noise on a shared machine; fixed costs make small sizes *more* expensive per row).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Table, measure, report, verdict
from vidpop.data.adapters import get_adapter
from vidpop.data.labels import log_targets
from vidpop.data.preprocessing import MultiHotEncoder
from vidpop.data.schema import VideoDataset
from vidpop.data.streaming import stream_import
from vidpop.features.extract import dataset_features, extract_kind
from vidpop.features.store import FeatureStore
from vidpop.models import build_model

SIZES = (1_000, 10_000, None)  # None = all rows
TARGETS = ["views", "likes", "comments"]
EPOCH_REPEATS = 3
IMPORT_CHUNK = 50_000


def _write_csv_source(ds: VideoDataset, n: int, folder: Path) -> None:
    folder.mkdir(parents=True)
    videos = ds.videos.head(n)
    keep = set(videos["video_id"].astype(str))
    videos.to_csv(folder / "videos.csv", index=False)
    inter = ds.interactions[ds.interactions["video_id"].astype(str).isin(keep)]
    inter.to_csv(folder / "interactions.csv", index=False)


def _epoch(ds: VideoDataset, store: FeatureStore) -> tuple[Any, int]:
    title, present = dataset_features(ds, "title_minilm", store=store, progress=False)
    y = log_targets(ds.videos, TARGETS)
    ok = present & np.isfinite(y).all(axis=1)
    cats = MultiHotEncoder().fit(ds.videos["category"][ok])
    X = np.hstack([title, cats.transform(ds.videos["category"])])[ok]
    best = None
    for _ in range(EPOCH_REPEATS):  # an epoch is short: keep the fastest of a few, as timeit does, against noise
        model = build_model("mlp", hidden=(256, 128), train={"epochs": 1, "batch_size": 256, "progress": False})
        with measure() as m:
            model.fit(X, y[ok])
        best = m if best is None or m.seconds < best.seconds else best
    return best, int(ok.sum())


def _mb(m: Any) -> str:
    return f"{m.peak_rss_mb:,.0f} (+{m.peak_rss_mb - m.start_rss_mb:,.0f})"


def run() -> dict[str, Any]:
    full = get_adapter("microlens").load()
    n_all = len(full.videos)
    tables = Table("Growth on real MicroLens rows (seconds | peak RSS MB of the process (+ growth within the stage))",
                   ["rows", "interactions", "import s", "import MB", "extract s", "extract MB", "parts",
                    "epoch s", "epoch MB"])  # fmt: skip
    per_row: dict[str, dict[int, float]] = {"import": {}, "extract": {}, "epoch": {}}
    out: dict[str, Any] = {"sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            n = n_all if size is None else min(size, n_all)
            src = Path(tmp) / f"microlens_{n}"  # the folder name becomes the dataset name
            _write_csv_source(full, n, src)
            with measure() as m_imp:  # streamed: IMPORT_CHUNK rows of a table at a time
                stream_import(src, Path(tmp) / f"ds{n}", chunk_rows=IMPORT_CHUNK, progress=False)
            ds = VideoDataset.load(Path(tmp) / f"ds{n}")
            store = FeatureStore(Path(tmp) / f"store{n}")
            with measure() as m_ext:
                rep = extract_kind(ds, "title", store=store, progress=False)
            parts = len(list(store.root.glob("*/part-*.npz")))
            m_ep, n_train = _epoch(ds, store)
            tables.add(n, len(ds.interactions), m_imp.seconds, _mb(m_imp), m_ext.seconds, _mb(m_ext), parts,
                       m_ep.seconds, _mb(m_ep))  # fmt: skip
            for key, m in (("import", m_imp), ("extract", m_ext), ("epoch", m_ep)):
                per_row[key][n] = m.seconds / n
            out["sizes"].append({
                "rows": n, "interactions": len(ds.interactions), "train_rows": n_train,
                "import": m_imp.as_dict(), "extract": m_ext.as_dict(), "extract_report": rep.as_dict(),
                "epoch": m_ep.as_dict(), "parts": parts,
            })  # fmt: skip
    lin = Table("Cost per row: largest size / 10k (<= 1.5 = no worse than linear)",
                ["stage", "us/row at 10k", "us/row at all", "ratio", "target"])  # fmt: skip
    out["linear"] = {}
    big = max(per_row["import"])
    for key, d in per_row.items():
        ratio = d[big] / d[10_000] if 10_000 in d else float("nan")
        lin.add(key, 1e6 * d.get(10_000, float("nan")), 1e6 * d[big], ratio, verdict(ratio <= 1.5))
        out["linear"][key] = round(ratio, 3)
    report("growth", [tables, lin], out)
    return out


if __name__ == "__main__":
    run()
