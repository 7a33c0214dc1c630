"""Train a registered model with DistributedDataParallel, one process per rank::

    torchrun --nproc-per-node 2 -m vidpop.training.ddp_entry mlp --data features.npz --out runs/mlp
    torchrun --nnodes 2 --node-rank 0 --master-addr head --master-port 29500 --nproc-per-node 8 \\
        -m vidpop.training.ddp_entry relation_mtl --data bilibili_bangumi_series --out runs/rel

Nothing here is a training loop: every model trains through its own ``fit``, which calls the shared
:func:`~vidpop.training.loop.fit_module`; inside a process group that wraps the network in DDP and
gives each rank an equal shard of every global batch (gloo on CPU, nccl on GPUs). So N ranks with
``train.batch_size = B`` follow the single-process trajectory with batch B — exactly for models
without dropout/batch norm (a test checks), statistically otherwise (each rank draws its own dropout
masks and batch-norm statistics over its shard). Only rank 0 writes the checkpoint (the usual model
folder, loadable in a single process by :func:`vidpop.models.base.load_model`) and
``train_report.json`` (loss per epoch, world size, batch sizes, seconds).

Data per model come from a *recipe* (``--data`` is interpreted by it). Built in: any model whose
``fit(X, y, X_val, y_val)`` takes matrices, from an ``.npz`` (``X``, ``y``, optional ``X_val``,
``y_val``); ``relation_mtl`` from a staged dataset name (the relation experiment's first horizon).
More recipes register with :func:`register_recipe` (e.g. from ``vidpop.experiments.recipes``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidpop.errors import VidpopError
from vidpop.models.registry import build_model, get_model_class
from vidpop.training import distributed
from vidpop.training.loop import seed_everything


def dist_barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


@dataclass
class TrainJob:
    """A model ready to ``fit(*args, **kwargs)`` and a one-line description of its data."""

    model: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    #: what the recipe was given (data, seed, limit, split ...), saved as ``recipe.json`` so that
    #: ``vidpop evaluate`` can rebuild the same test split
    recipe: dict[str, Any] = field(default_factory=dict)
    #: extra files a model needs at serving time (e.g. a recommender's item list), written by rank 0
    after_save: Callable[[Any, Path], None] | None = None


Recipe = Callable[[str, str, dict[str, Any]], TrainJob]
_RECIPES: dict[str, Recipe] = {}


def register_recipe(model: str) -> Callable[[Recipe], Recipe]:
    """Decorator: ``recipe(model_name, data, config) -> TrainJob`` for ``model`` (``"*"`` = fallback)."""

    def deco(fn: Recipe) -> Recipe:
        _RECIPES[model] = fn
        return fn

    return deco


def _nested(config: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["hidden=[64,32]", "train.epochs=3", "dropout=0"]`` -> nested config dict (JSON values, else str)."""
    config: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise VidpopError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        _nested(config, key.strip(), value)
    return config


@register_recipe("*")
def matrix_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Models trained on a feature matrix: ``--data file.npz`` with ``X``, ``y`` (+ ``X_val``, ``y_val``)."""
    path = Path(data)
    if path.suffix != ".npz" or not path.is_file():
        raise VidpopError(
            f"model {model!r} has no data recipe for {data!r}; give an .npz with X and y (and optionally "
            f"X_val, y_val), or register one with vidpop.training.ddp_entry.register_recipe"
        )
    with np.load(path) as z:
        if "X" not in z or "y" not in z:
            raise VidpopError(f"{path.name} must hold arrays 'X' and 'y' (has {sorted(z.files)})")
        arrays = {k: z[k] for k in z.files}
    val = (arrays["X_val"], arrays["y_val"]) if "X_val" in arrays and "y_val" in arrays else (None, None)
    desc = f"{path.name}: {len(arrays['X'])} training rows x {arrays['X'].shape[1]} features"
    return TrainJob(build_model(model, config), (arrays["X"], arrays["y"], *val), data=desc)


@register_recipe("relation_mtl")
def relation_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """``relation_mtl`` on a staged dataset (e.g. ``bilibili_bangumi_series``): the relation
    experiment's preset features and temporal split at its first horizon."""
    import dataclasses

    from vidpop.experiments.relation import load_dated, prepare, setup_for, title_embeddings
    from vidpop.models.base import _config_from_dict
    from vidpop.models.relation_mtl import RelationMTLConfig

    setup = setup_for(data)
    cfg = _config_from_dict(RelationMTLConfig, {**dataclasses.asdict(setup.model), **config})
    ds = load_dated(data)
    emb = title_embeddings(ds, setup.features.title if setup.features else "none", progress=False)
    prep = prepare(ds, setup, setup.horizons[0], emb)
    s = prep.split
    m = build_model(model, dataclasses.asdict(cfg))
    desc = f"{data}: horizon {setup.horizons[0]} d, {len(s.train)} train / {len(s.val)} val titles"
    return TrainJob(m, (prep.inputs(s.train), prep.y[s.train], prep.inputs(s.val), prep.y[s.val]), data=desc)


def _recipe_for(model: str) -> Recipe:
    get_model_class(model)  # unknown model names fail here with the list of known ones
    if importlib.util.find_spec("vidpop.experiments.recipes") is not None:
        importlib.import_module("vidpop.experiments.recipes")  # its recipes register themselves on import
    return _RECIPES.get(model, _RECIPES["*"])


def train(model: str, data: str, out: str | Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train in this process's group (or alone); rank 0 saves to ``out``. Returns the report."""
    joined = distributed.init_from_env()
    world_size = distributed.world()[1]
    if joined and not os.environ.get("OMP_NUM_THREADS"):
        # torchrun sets OMP_NUM_THREADS=1 unless told otherwise; keep the cores shared fairly
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    try:
        job = _recipe_for(model)(model, data, dict(config or {}))
        cfg = getattr(job.model.config, "train", None)
        if world_size > 1 and cfg is None:
            raise VidpopError(f"{model} does not train by gradient steps; run it with --nproc 1")
        if world_size > 1 and cfg.batch_size % world_size:
            raise VidpopError(f"train.batch_size {cfg.batch_size} must divide evenly over {world_size} ranks")
        # same initial weights in a fresh torchrun rank and in a long-lived process
        seed_everything(cfg.seed if cfg is not None else 0)
        t0 = time.perf_counter()
        job.model.fit(*job.args, **job.kwargs)
        seconds = time.perf_counter() - t0
        history = getattr(job.model, "history_", {}) or {}
        report = {
            "model": model,
            "rank": distributed.world()[0],
            "data": job.data,
            "world_size": world_size,
            "global_batch": cfg.batch_size if cfg is not None else None,
            "per_rank_batch": cfg.batch_size // world_size if cfg is not None else None,
            "backend": distributed.default_backend() if world_size > 1 else "none",
            "seconds": round(seconds, 3),
            "epochs": history.get("epochs", []),
        }
        if distributed.is_main_process():  # checkpoints from rank 0 only
            path = Path(out)
            job.model.save(path)
            (path / "train_report.json").write_text(json.dumps(report, indent=2, default=float))
            (path / "recipe.json").write_text(json.dumps({"model": model, **job.recipe}, indent=2, default=str))
            if job.after_save is not None:
                job.after_save(job.model, path)
        if joined:
            dist_barrier()  # every rank leaves together: no gloo teardown while rank 0 still writes
        return report
    finally:
        if joined:
            distributed.cleanup()


def launch_command(
    model: str, data: str, out: str | Path, nproc: int, overrides: Sequence[str] = (), port: int | None = None
) -> list[str]:
    """The ``torchrun`` command line (as ``python -m torch.distributed.run``) for ``nproc`` local ranks."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
    cmd += ["--master-addr", "127.0.0.1", "--master-port", str(port or distributed.free_port())]
    cmd += ["-m", "vidpop.training.ddp_entry", model, "--data", str(data), "--out", str(out)]
    for o in overrides:
        cmd += ["--set", o]
    return cmd


def launch(model: str, data: str, out: str | Path, nproc: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run :func:`launch_command` (what ``vidpop train ... --nproc N`` does) and return rank 0's report."""
    if nproc < 1:
        raise VidpopError("--nproc must be >= 1")
    if nproc == 1:
        return train(model, data, out, parse_overrides(overrides))
    rc = subprocess.call(launch_command(model, data, out, nproc, overrides))
    if rc != 0:
        raise VidpopError(f"distributed training failed (torchrun exit code {rc}); see the rank logs above")
    return json.loads((Path(out) / "train_report.json").read_text())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vidpop.training.ddp_entry", description=__doc__.split("\n\n")[0])
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


if __name__ == "__main__":
    # run the imported module's main: recipes register into *its* registry, not into __main__'s copy
    from vidpop.training.ddp_entry import main as _main

    raise SystemExit(_main())
