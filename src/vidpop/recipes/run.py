"""``vidpop train`` in one process or as a torchrun rank: the model's recipe builds the job, the engine
(:func:`vidpop.training.ddp_entry.run_job`) fits and saves it. ``python -m vidpop.recipes`` is the torchrun
entry point::

    torchrun --nproc-per-node 2 -m vidpop.recipes mlp --data features.npz --out runs/mlp
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidpop.errors import VidpopError
from vidpop.models.registry import get_model_class
from vidpop.recipes.registry import recipe_for
from vidpop.training.ddp_entry import parse_overrides, run_job, torchrun_command


def train(model: str, data: str, out: str | Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train in this process's group (or alone); rank 0 saves the model folder to ``out``. Returns the report."""
    get_model_class(model)  # unknown model names fail here with the list of known ones
    return run_job(lambda: recipe_for(model)(model, data, dict(config or {})), model, out)


def launch_command(
    model: str, data: str, out: str | Path, nproc: int, overrides: Sequence[str] = (), port: int | None = None
) -> list[str]:
    """The ``torchrun`` command line (as ``python -m torch.distributed.run``) for ``nproc`` local ranks."""
    args = [model, "--data", str(data), "--out", str(out)]
    for o in overrides:
        args += ["--set", o]
    return torchrun_command("vidpop.recipes", args, nproc, port)


def launch(model: str, data: str, out: str | Path, nproc: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """What ``vidpop train ... --nproc N`` does: train here (N = 1) or under torchrun; rank 0's report."""
    if nproc < 1:
        raise VidpopError("--nproc must be >= 1")
    config = parse_overrides(overrides)
    if nproc == 1:
        return train(model, data, out, config)
    get_model_class(model)
    rc = subprocess.call(launch_command(model, data, out, nproc, overrides))
    if rc != 0:
        raise VidpopError(f"distributed training failed (torchrun exit code {rc}); see the rank logs above")
    return json.loads((Path(out) / "train_report.json").read_text())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vidpop.recipes", description="Train one registered model (one torchrun rank).")
    p.add_argument("model", help="a registered model name (vidpop models list)")
    p.add_argument("--data", required=True, help="what the model's recipe reads (.npz, dataset name, ...)")
    p.add_argument("--out", required=True, help="model folder written by rank 0")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    a = p.parse_args(argv)
    try:
        report = train(a.model, a.data, a.out, parse_overrides(a.overrides))
    except VidpopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report["rank"] == 0:  # the group is gone by now: use the rank recorded inside it
        last = report["epochs"][-1] if report["epochs"] else {}
        print(f"{a.model}: {report['world_size']} rank(s), {len(report['epochs'])} epochs in {report['seconds']} s, "
              f"last {json.dumps({k: round(v, 5) for k, v in last.items()})} -> {a.out}")  # fmt: skip
    return 0
