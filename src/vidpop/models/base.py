"""Estimator base class: scikit-learn-style ``fit`` / ``predict`` / ``score`` plus save/load of a
trained model as one directory (``config.json`` + ``state.pt``).

Conventions (as in scikit-learn): constructor takes a typed ``Config`` dataclass; attributes learned
by ``fit`` end in ``_``. A torch model keeps its network in ``module_`` and rebuilds it from config
and fitted attributes in :meth:`_build_module`, so the default :meth:`get_state` / :meth:`set_state`
persist everything without per-model code.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import vidpop
from vidpop.errors import VidpopError
from vidpop.training import metrics


@dataclasses.dataclass
class ModelConfig:
    """Base for model configs (subclasses add fields)."""


class VidpopModel(ABC):
    model_name: ClassVar[str] = ""
    #: "regression" | "classification" | "ordinal" | "recommendation"
    task: ClassVar[str] = "regression"
    description: ClassVar[str] = ""
    Config: ClassVar[type] = ModelConfig

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.Config()
        #: extractor name -> version of every feature this model was trained on
        self.feature_versions: dict[str, str] = {}

    # ------------------------------------------------------------ estimator API
    @abstractmethod
    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> VidpopModel: ...

    @abstractmethod
    def predict(self, X: Any) -> Any: ...

    def score(self, X: Any, y: Any) -> float:
        """R² for regression, accuracy for classification, ordinal accuracy for ordinal tasks."""
        pred = np.asarray(self.predict(X))
        y = np.asarray(y)
        if self.task == "regression":
            return metrics.r2(y.ravel(), pred.reshape(y.shape).ravel())
        if self.task == "ordinal":
            return metrics.ordinal_accuracy(y, pred)
        if self.task == "classification":
            return metrics.accuracy(y, pred)
        raise NotImplementedError(f"score() is not defined for task '{self.task}'")

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise VidpopError(f"{self.model_name or type(self).__name__} is not fitted; call fit() first")

    # ------------------------------------------------------------ torch helpers
    def _build_module(self) -> nn.Module | None:
        """Rebuild the network from ``config`` and fitted attributes (torch models override)."""
        return None

    # ------------------------------------------------------------ persistence
    def get_state(self) -> dict[str, Any]:
        """Fitted attributes (``*_``) with ``module_`` stored as its state dict."""
        state: dict[str, Any] = {}
        for k, v in vars(self).items():
            if not k.endswith("_") or k.startswith("_"):
                continue
            state[k] = {"__state_dict__": v.state_dict()} if isinstance(v, nn.Module) else v
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        modules = {}
        for k, v in state.items():
            if isinstance(v, dict) and "__state_dict__" in v:
                modules[k] = v["__state_dict__"]
            else:
                setattr(self, k, v)
        for k, sd in modules.items():
            if k != "module_":
                raise VidpopError(f"cannot rebuild module attribute '{k}'; override set_state")
            module = self._build_module()
            if module is None:
                raise VidpopError(f"{type(self).__name__} stores a module but does not implement _build_module")
            module.load_state_dict(sd)
            module.eval()
            self.module_ = module

    def save(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` (model name, hyper-parameters, feature versions) and ``state.pt``."""
        self._check_fitted()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": self.model_name,
            "task": self.task,
            "vidpop_version": vidpop.__version__,
            "config": dataclasses.asdict(self.config),
            "feature_versions": self.feature_versions,
        }
        tmp = out / ".state.pt.tmp"
        torch.save(self.get_state(), tmp)
        tmp.replace(out / "state.pt")
        (out / "config.json").write_text(json.dumps(meta, indent=2, default=str))
        return out

    @classmethod
    def load(cls, in_dir: str | Path) -> VidpopModel:
        """Load any saved vidpop model (dispatches on the saved model name)."""
        from vidpop.models.registry import get_model_class

        src = Path(in_dir)
        cfg_path = src / "config.json"
        if not cfg_path.exists():
            raise VidpopError(f"{src} is not a saved vidpop model (no config.json)")
        meta = json.loads(cfg_path.read_text())
        model_cls = get_model_class(meta["model"])
        config = _config_from_dict(model_cls.Config, meta["config"])
        model = model_cls(config)
        model.feature_versions = meta.get("feature_versions", {})
        # Our own file: it holds numpy arrays and fitted transformers, so full unpickling is needed.
        state = torch.load(src / "state.pt", map_location="cpu", weights_only=False)
        model.set_state(state)
        return model


def _config_from_dict(config_cls: type, values: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(config_cls):
        if f.name not in values:
            continue
        v = values[f.name]
        if dataclasses.is_dataclass(f.type) and isinstance(v, dict):
            v = _nested_config(f.type, v)
        elif isinstance(f.type, str) and isinstance(v, dict):
            # postponed annotations: resolve nested dataclass configs by the default's type
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
            if dataclasses.is_dataclass(default):
                v = _nested_config(type(default), v)
        elif isinstance(v, list) and isinstance(f.default, tuple):
            v = tuple(v)
        kwargs[f.name] = v
    return config_cls(**kwargs)


def _nested_config(config_cls: type, values: dict[str, Any]) -> Any:
    """A nested config (e.g. ``train``) from saved values; options this version does not know (a model saved
    by another vidpop version) are dropped with a warning instead of failing the load."""
    import warnings

    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        warnings.warn(f"ignoring unknown {config_cls.__name__} option(s) {unknown}", stacklevel=3)
    return config_cls(**{k: v for k, v in values.items() if k in known})


def load_model(in_dir: str | Path) -> VidpopModel:
    """Load a model directory written by :meth:`VidpopModel.save`."""
    return VidpopModel.load(in_dir)
