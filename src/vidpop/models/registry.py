"""Registry of named models (timm-style): ``build_model("relation_mtl", hidden=128)``.

Each model module decorates its estimator class with :func:`register_model`; the class holds
``Config`` (a dataclass of its hyper-parameters) and a one-line ``description``.
"""

from __future__ import annotations

import importlib
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


#: model name -> the module that registers it. Discovery reads this table instead of importing every
#: model module (about 10 s of imports): a module is imported only when its model is asked for.
#: tests/test_registry_lazy.py checks that it matches what the modules register.
MODULES: dict[str, str] = {
    "attention_explain": "vidpop.models.attention_explain",
    "cover_title_fusion": "vidpop.models.cover_title_fusion",
    "gbdt_retrieval": "vidpop.models.gbdt_retrieval",
    "interest_rnn": "vidpop.models.interest_rnn.model",
    "lightgbm": "vidpop.models.lightgbm_baseline",
    "lightgbm_classifier": "vidpop.models.lightgbm_baseline",
    "mlp": "vidpop.models.mlp",
    "rec_cb": "vidpop.models.rec_baselines.cold_start",
    "rec_fpmc": "vidpop.models.rec_baselines.fpmc",
    "rec_itemknn": "vidpop.models.rec_baselines.itemknn",
    "rec_lfm": "vidpop.models.rec_baselines.lfm",
    "rec_mknn": "vidpop.models.rec_baselines.cold_start",
    "rec_pop": "vidpop.models.rec_baselines.simple",
    "rec_random": "vidpop.models.rec_baselines.simple",
    "rec_sasrec": "vidpop.models.rec_baselines.sasrec",
    "rec_sca": "vidpop.models.rec_baselines.cold_start",
    "relation_mtl": "vidpop.models.relation_mtl",
    "stacked": "vidpop.models.stacked",
    "static_dnn": "vidpop.models.interest_rnn.static",
    "variational_poe": "vidpop.models.variational_poe",
}


def _import_all() -> None:
    """Import every model module of :data:`MODULES` (for listings that need each class)."""
    for module in sorted(set(MODULES.values())):
        importlib.import_module(module)


def model_names() -> list[str]:
    """Names of the registered models (from :data:`MODULES`, without importing them), plus any model
    registered at run time by code outside this package."""
    return sorted({*MODULES, *_MODELS})


def get_model_class(name: str) -> type[VidpopModel]:
    if name not in _MODELS and name in MODULES:
        importlib.import_module(MODULES[name])
    if name not in _MODELS:
        raise VidpopError(f"unknown model '{name}'; known: {', '.join(model_names())}")
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
        cls = get_model_class(name)
        rows.append({"name": name, "task": cls.task, "description": cls.description})
    return rows
