"""Where recipes and their evaluators register: one definition per model name (a second one is an error)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vidpop.errors import VidpopError
from vidpop.training.ddp_entry import TrainJob

Recipe = Callable[[str, str, dict[str, Any]], TrainJob]
#: ``evaluator(model, recipe) -> {"metrics": {part: {name: value}}, "split": ..., "notes": [...]}``
Evaluator = Callable[[Any, dict[str, Any]], dict[str, Any]]

_RECIPES: dict[str, Recipe] = {}
_EVALUATORS: dict[str, Evaluator] = {}
#: (base class, condition on the class, recipe, evaluator): every registered model of that kind (e.g. all
#: recommenders), first match wins
_BY_CLASS: list[tuple[type, Callable[[type], bool] | None, Recipe, Evaluator]] = []


def _register(table: dict[str, Any], kind: str, models: tuple[str, ...], fn: Any) -> None:
    for m in models:
        if m in table and table[m] is not fn:
            raise ValueError(f"{kind} for '{m}' defined twice ({table[m].__module__} and {fn.__module__})")
        table[m] = fn


def register_recipe(*models: str) -> Callable[[Recipe], Recipe]:
    """Decorator: ``recipe(model_name, data, config) -> TrainJob`` for ``models`` (``"*"`` = fallback)."""

    def deco(fn: Recipe) -> Recipe:
        _register(_RECIPES, "recipe", models, fn)
        return fn

    return deco


def register_evaluator(*models: str) -> Callable[[Evaluator], Evaluator]:
    def deco(fn: Evaluator) -> Evaluator:
        _register(_EVALUATORS, "evaluator", models, fn)
        return fn

    return deco


def register_for_class(
    base: type, recipe: Recipe, evaluator: Evaluator, when: Callable[[type], bool] | None = None
) -> None:
    """One recipe and evaluator for every model whose class derives from ``base`` (and passes ``when``, e.g.
    what it consumes); looked up on use, so registering does not import every model module."""
    _BY_CLASS.append((base, when, recipe, evaluator))


def _by_class(model: str) -> tuple[Recipe, Evaluator] | None:
    from vidpop.models.registry import get_model_class

    cls = get_model_class(model)
    for base, when, recipe, evaluator in _BY_CLASS:
        if issubclass(cls, base) and (when is None or when(cls)):
            return recipe, evaluator
    return None


def recipe_for(model: str) -> Recipe:
    if model in _RECIPES:
        return _RECIPES[model]
    found = _by_class(model)
    return found[0] if found else _RECIPES["*"]


def evaluator_for(model: str) -> Evaluator:
    if model in _EVALUATORS:
        return _EVALUATORS[model]
    found = _by_class(model)
    if found is None:
        raise VidpopError(f"no evaluator for '{model}' (models trained on an .npz have no test split to rebuild)")
    return found[1]
