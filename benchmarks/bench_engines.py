"""(b) Inference engines: torch vs ONNX Runtime (exported once, cached) for the image CNN and MiniLM,
on real covers and real MicroLens titles; which engine the extractors pick and their agreement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_extraction import real_inputs
from benchmarks.common import Table, measure, report, verdict
from vidpop.config import dataset_dir
from vidpop.features import onnx_engine
from vidpop.features.image import load_backbone
from vidpop.features.text import load_text_encoder

N_IMAGES = 16
N_TITLES = 256


def _time(fn: Any, n: int, repeats: int = 2) -> tuple[float, float]:
    """(ms per item, peak RSS MB): best of ``repeats`` after a warm-up (the least disturbed run)."""
    fn()  # warm-up
    best, rss = float("inf"), 0.0
    for _ in range(repeats):
        with measure() as m:
            fn()
        best, rss = min(best, m.seconds), max(rss, m.peak_rss_mb)
    return 1000 * best / n, rss


def run() -> dict[str, Any]:
    _, covers = real_inputs()
    bb = load_backbone()
    x = bb.preprocess([str(c) for c in (covers * 2)[:N_IMAGES]]).numpy()
    torch_img = onnx_engine.TorchImageEngine(bb)
    with measure() as m_export:
        onnx_img = onnx_engine.OnnxImageEngine(bb)
    table = Table("Inference engines (same inputs, same run)",
                  ["model", "input", "batch", "torch ms/item", "onnx ms/item", "speed-up", "max |diff|",
                   "<= 1e-4", "peak RSS MB"])  # fmt: skip
    out: dict[str, Any] = {"image_export": m_export.as_dict(), "onnx_files": {}}
    diff_img = float(np.abs(onnx_img(x) - torch_img(x)).max())
    for batch in (1, 32):
        n = 4 if batch == 1 else len(x)  # batch 1 on a few images: torch is slow at it
        xb = x[:n]

        def run_batches(engine: Any, xb: np.ndarray = xb, batch: int = batch) -> None:
            for s in range(0, len(xb), batch):
                engine(xb[s : s + batch])

        t_ms, rss_t = _time(lambda f=run_batches: f(torch_img), n)
        o_ms, rss_o = _time(lambda f=run_batches: f(onnx_img), n)
        table.add("EfficientNet-Lite0", f"{n} real covers", batch, t_ms, o_ms, t_ms / o_ms, diff_img,
                  verdict(diff_img <= 1e-4), max(rss_t, rss_o))  # fmt: skip
        out[f"image_b{batch}"] = {"torch_ms": t_ms, "onnx_ms": o_ms, "speedup": t_ms / o_ms}

    titles = pd.read_csv(dataset_dir("microlens") / "MicroLens-50k_titles.csv")["title"].dropna().astype(str)
    titles = titles.head(N_TITLES).tolist()
    base = load_text_encoder("title_minilm")
    with measure() as m_export_t:
        onnx_txt = onnx_engine.OnnxTextEncoder(base)
    diff_txt = float(np.abs(onnx_txt.encode(titles) - base.encode(titles)).max())
    t_ms, rss_t = _time(lambda: base.encode(titles, batch_size=64), len(titles))
    o_ms, rss_o = _time(lambda: onnx_txt.encode(titles, batch_size=64), len(titles))
    table.add("MiniLM-L6 (title_minilm)", f"{len(titles)} real MicroLens titles", 64, t_ms, o_ms, t_ms / o_ms, diff_txt,
              verdict(diff_txt <= 1e-4), max(rss_t, rss_o))  # fmt: skip
    out["text_b64"] = {"torch_ms": t_ms, "onnx_ms": o_ms, "speedup": t_ms / o_ms}
    out["max_abs_diff"] = {"image": diff_img, "text": diff_txt}
    out["text_export"] = m_export_t.as_dict()
    out["onnx_files"] = {"image": str(onnx_img.path), "text": str(onnx_txt.path)}

    choices = Table("What the extractors pick by default (engine='auto', probe batch timing)",
                    ["extractor", "chosen", "probe timings"])  # fmt: skip
    _, ci = onnx_engine.pick_image_engine(bb)
    _, ct = onnx_engine.pick_text_engine("title_minilm")
    choices.add("frames_effnet / covers (image CNN)", ci.chosen, ci.describe())
    choices.add("title_minilm (text encoder)", ct.chosen, ct.describe())
    out["auto_choice"] = {"image": ci.chosen, "text": ct.chosen}
    report("engines", [table, choices], out)
    return out


if __name__ == "__main__":
    run()
