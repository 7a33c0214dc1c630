"""Registry of named models (timm-style): ``build_model("relation_mtl", hidden=128)``.

Each model module decorates its estimator class with :func:`register_model`; the class holds
``Config`` (a dataclass of its hyper-parameters) and a one-line ``description``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from vidpop.errors import VidpopError

if TYPE_CHECKING:
    from vidpop.models.base import VidpopModel

_MODELS: dict[str, type[VidpopModel]] = {}


def register_model(name: str):
    """Class decorator: register an estimator under ``name`` (sets ``cls.model_name``)."""

    def deco(cls: type[VidpopModel]) -> type[VidpopModel]:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model '{name}' registered twice")
        cls.model_name = name
        _MODELS[name] = cls
        return cls

    return deco


def _import_all() -> None:
    import vidpop.models as pkg

    for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
        if mod.name.rsplit(".", 1)[-1] not in {"registry", "base"}:
            importlib.import_module(mod.name)


def model_names() -> list[str]:
    _import_all()
    return sorted(_MODELS)


def get_model_class(name: str) -> type[VidpopModel]:
    _import_all()
    if name not in _MODELS:
        raise VidpopError(f"unknown model '{name}'; known: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def build_model(name: str, config: dict[str, Any] | None = None, **overrides: Any) -> VidpopModel:
    """Instantiate a registered model: ``config`` and keyword overrides merged strictly onto the model's
    own default config, field by field at every depth (unknown keys and wrong types raise VidpopError)."""
    from vidpop.models.config import merge_config

    cls = get_model_class(name)
    params = {**(config or {}), **overrides}
    try:
        return cls(merge_config(cls.Config(), params, strict=True))
    except VidpopError as exc:
        raise VidpopError(f"model '{name}': {exc}") from None


def describe_models() -> list[dict[str, str]]:
    """Name, kind and description of each registered model (for ``vidpop models list``)."""
    rows = []
    for name in model_names():
        cls = _MODELS[name]
        rows.append({"name": name, "task": cls.task, "description": cls.description})
    return rows
