"""Estimator base class: scikit-learn-style ``fit`` / ``predict`` / ``score`` plus save/load of a
trained model as one directory (``config.json`` + ``state.pt``).

Conventions (as in scikit-learn): constructor takes a typed ``Config`` dataclass; attributes learned
by ``fit`` end in ``_``. A torch model keeps its network in ``module_`` and rebuilds it from config
and fitted attributes in :meth:`_build_module`, so the default :meth:`get_state` / :meth:`set_state`
persist everything without per-model code.

Configs derive from :class:`~vidpop.models.config.ModelConfig`; overrides merge onto the model's own
defaults (:func:`~vidpop.models.config.merge_config`).

Every model declares what it can be asked (``capabilities``, a subset of :data:`CAPABILITIES`) and what
it consumes (``consumes``, one of :data:`INPUT_KINDS`); a model that assembles its own input from a
:class:`~vidpop.data.schema.VideoDataset` implements :meth:`VidpopModel.prepare_inputs`. Callers such
as serving dispatch on these declarations, not on ``hasattr`` / ``isinstance`` (issue 16 §3).
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

import vidpop
from vidpop.errors import VidpopError
from vidpop.models.config import ModelConfig, merge_config, persisted_config_dict
from vidpop.models.folder import FOLDER_FORMAT, check_folder, read_folder_json, staged_folder
from vidpop.training import metrics

if TYPE_CHECKING:
    from vidpop.data.schema import VideoDataset

#: what a model can be asked:
#: ``predict`` — ``predict(X)``, a popularity value or class per row (``predict_proba(X)`` too for
#: classification and ordinal tasks); ``intervals`` — ``predict_interval(X, ...)`` -> ``{"mean", "lower",
#: "upper"}``; ``explain`` — ``attention(X)`` and Grad-CAM through :mod:`vidpop.explain`; ``recommend`` —
#: ``recommend(queries, k)`` over the fitted catalogue; ``from_text`` — it answers from text alone (a video
#: with only a title, or a cold-start user given only text).
CAPABILITIES: frozenset[str] = frozenset({"predict", "intervals", "explain", "recommend", "from_text"})
#: what ``predict`` / ``recommend`` consume: ``dataset`` — ``prepare_inputs(dataset, rows)`` builds it from a
#: VideoDataset; ``matrix`` — a feature matrix (or arrays) the caller's recipe assembled; ``queries`` —
#: a list of :class:`~vidpop.data.recdata.UserQuery`.
INPUT_KINDS: tuple[str, ...] = ("dataset", "matrix", "queries")


def dataset_rows(dataset: VideoDataset, rows: Any = None) -> VideoDataset:
    """The rows ``rows`` (positions in ``dataset.videos``, in that order; None = all) as a dataset."""
    if rows is None:
        return dataset
    videos = dataset.videos.iloc[np.asarray(rows, dtype=np.int64)].reset_index(drop=True)
    return dataclasses.replace(dataset, videos=videos)


class VidpopModel(ABC):
    model_name: ClassVar[str] = ""
    #: "regression" | "classification" | "ordinal" | "recommendation"
    task: ClassVar[str] = "regression"
    description: ClassVar[str] = ""
    Config: ClassVar[type] = ModelConfig
    #: what this model can be asked (see :data:`CAPABILITIES`)
    capabilities: ClassVar[frozenset[str]] = frozenset({"predict"})
    #: what ``predict`` consumes (see :data:`INPUT_KINDS`); ``dataset`` models implement ``prepare_inputs``
    consumes: ClassVar[str] = "matrix"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.capabilities) - CAPABILITIES
        if unknown:  # a typo here would silently hide the model from serving
            raise TypeError(f"{cls.__name__}: unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
        if cls.consumes not in INPUT_KINDS:
            raise TypeError(f"{cls.__name__}: consumes must be one of {INPUT_KINDS}, got '{cls.consumes}'")

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

    def can(self, capability: str) -> bool:
        """Whether this model declares ``capability`` (one of :data:`CAPABILITIES`)."""
        if capability not in CAPABILITIES:
            raise VidpopError(f"unknown capability '{capability}'; known: {', '.join(sorted(CAPABILITIES))}")
        return capability in self.capabilities

    def prepare_inputs(self, dataset: VideoDataset, rows: Any = None, *, store: Any = None) -> Any:
        """What ``predict`` takes, built from ``rows`` of ``dataset`` (positions in ``dataset.videos``,
        None = all), with features read from / written to ``store`` (None = the default feature store).
        Reads the model's fitted state and never changes it, so one loaded model serves concurrent calls.
        Only models with ``consumes == "dataset"`` implement it."""
        raise VidpopError(
            f"{self.model_name or type(self).__name__} consumes {self.consumes}, not a VideoDataset: "
            "its recipe builds the input"
        )

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

    #: files every folder of this model needs besides ``config.json`` (recommenders add their side tables)
    required_files: ClassVar[tuple[str, ...]] = ("state.pt",)

    def save(self, out_dir: str | Path, extra_json: dict[str, Any] | None = None) -> Path:
        """Write the model folder atomically: ``config.json`` (model name, effective hyper-parameters,
        feature versions), ``state.pt``, whatever :meth:`write_files` adds, and ``extra_json`` (file name ->
        JSON document, e.g. the trainer's ``recipe.json``), then ``complete.json`` last (see
        :mod:`vidpop.models.folder`)."""
        self._check_fitted()
        out = Path(out_dir)
        with staged_folder(out) as tmp:
            meta = {
                "model": self.model_name,
                "task": self.task,
                "vidpop_version": vidpop.__version__,
                "format": FOLDER_FORMAT,
                "config": persisted_config_dict(self.config),
                "feature_versions": self.feature_versions,
            }
            torch.save(self.get_state(), tmp / "state.pt")
            self.write_files(tmp)
            for name, doc in (extra_json or {}).items():
                (tmp / name).write_text(json.dumps(doc, indent=2, default=_json_default))
            (tmp / "config.json").write_text(json.dumps(meta, indent=2, default=str))
        return out

    def write_files(self, out: Path) -> None:  # noqa: B027 - optional hook
        """Extra files loading or serving needs (written into the staging folder); models override."""

    def read_files(self, src: Path) -> None:  # noqa: B027 - optional hook
        """Read back what :meth:`write_files` wrote; models override."""

    @classmethod
    def load(cls, in_dir: str | Path) -> VidpopModel:
        """Load any saved vidpop model (dispatches on the saved model name). A folder that is incomplete
        or damaged is refused with one line (:class:`VidpopError`) naming the file."""
        from vidpop.models.registry import get_model_class

        src = Path(in_dir)
        cfg_path = src / "config.json"
        if not cfg_path.exists():
            raise VidpopError(f"{src} is not a saved vidpop model (no config.json)")
        meta = read_folder_json(src, "config.json", ["model", "config"])
        name, values = meta["model"], meta["config"]
        model_cls = get_model_class(name)
        # folders of this format always carry the marker; older ones load when every needed file exists
        check_folder(src, model_cls.required_files, needs_marker=meta.get("format", 1) >= FOLDER_FORMAT)
        model = model_cls(merge_config(model_cls.Config(), values, strict=False))
        model.feature_versions = meta.get("feature_versions", {})
        try:
            # Our own file: it holds numpy arrays and fitted transformers, so full unpickling is needed.
            state = torch.load(src / "state.pt", map_location="cpu", weights_only=False)
        except Exception as exc:
            raise VidpopError(f"model folder {src} is damaged: state.pt cannot be read ({exc}) — retrain it") from exc
        model.set_state(state)
        model.read_files(src)
        return model


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _config_from_dict(config_cls: type, values: dict[str, Any]) -> Any:
    """Compatibility shim: ``values`` merged leniently onto ``config_cls()`` (see :func:`merge_config`)."""
    return merge_config(config_cls(), values, strict=False)


def load_model(in_dir: str | Path) -> VidpopModel:
    """Load a model directory written by :meth:`VidpopModel.save`."""
    return VidpopModel.load(in_dir)
