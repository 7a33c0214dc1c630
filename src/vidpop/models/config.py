"""Typed model configs: :class:`ModelConfig` and the one way to apply overrides to them.

An override (``--set``, ``--config``, ``--epochs``, a saved ``config.json``) is *merged onto the model's
own default instance*, field by field and at every depth: ``{"train": {"seed": 0}}`` changes the seed
and keeps every other value of the model's tuned ``TrainConfig`` (its epochs, batch size, optimiser).
Rebuilding a nested config from its class defaults instead silently trained other settings (issue 12 §1).

Two modes:

* ``strict=True`` (building a model from user input): an unknown key or a value of the wrong type raises
  :class:`~vidpop.errors.VidpopError` naming the key and the valid keys (the CLI exits 2).
* ``strict=False`` (loading a saved model, perhaps written by another vidpop version): the offending key
  is dropped with a warning and the default is kept.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
import warnings
from collections.abc import Mapping
from typing import Any, TypeVar

from vidpop.errors import VidpopError

C = TypeVar("C")


@dataclasses.dataclass
class ModelConfig:
    """Base of every model config: a dataclass of hyper-parameters, nested configs allowed."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (nested configs as dicts, tuples as lists)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any], strict: bool = True) -> C:
        """The class's default instance with ``values`` merged on (see :func:`merge_config`)."""
        return merge_config(cls(), values, strict=strict)

    def merged(self: C, values: Mapping[str, Any], strict: bool = True) -> C:
        """A copy of this config with ``values`` merged on, field by field at every depth."""
        return merge_config(self, values, strict=strict)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Any config dataclass as plain JSON-ready values."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


#: options that describe one training run (where it checkpoints, whether it resumes), not the model:
#: a saved model records them at their defaults so its folder does not point at a deleted checkpoint
RUN_ONLY_OPTIONS: dict[str, Any] = {"checkpoint_dir": None, "resume": False}


def persisted_config_dict(config: Any) -> dict[str, Any]:
    """:func:`config_to_dict` with the run-only options of every nested config reset to their defaults."""

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out[k] = strip(v)
            elif k in RUN_ONLY_OPTIONS and isinstance(d.get("checkpoint_every"), int):
                out[k] = RUN_ONLY_OPTIONS[k]
            else:
                out[k] = v
        return out

    return strip(config_to_dict(config))


def merge_config(base: C, values: Mapping[str, Any] | None, strict: bool = True, _path: str = "") -> C:
    """``base`` (a config dataclass instance) with ``values`` merged on, recursively.

    Nested configs present in ``values`` as mappings are merged onto ``base``'s own nested instance, so
    every key not given keeps ``base``'s value. Values are checked against the field annotations
    (``int``, ``float``, ``bool``, ``str``, ``Literal``, ``X | None``, ``tuple[...]``, ``list[...]``, nested
    dataclasses); JSON lists become tuples where the field is a tuple.
    """
    if not values:
        return base
    if not isinstance(values, Mapping):
        _problem(strict, f"option '{_path.rstrip('.') or 'config'}' expects a table of options, got {values!r}")
        return base
    fields = {f.name: f for f in dataclasses.fields(base) if f.init}  # type: ignore[arg-type]
    hints = _hints(type(base))
    changes: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{_path}{key}"
        if key not in fields:
            where = f" of '{_path.rstrip('.')}'" if _path else ""
            _problem(strict, f"unknown option '{full}'; valid keys{where}: {', '.join(sorted(fields))}")
            continue
        current = getattr(base, key)
        hint = hints.get(key)
        try:
            if dataclasses.is_dataclass(current) and not isinstance(current, type):
                if isinstance(value, Mapping):
                    changes[key] = merge_config(current, value, strict, f"{full}.")
                elif isinstance(value, type(current)):
                    changes[key] = value
                else:
                    raise TypeError(f"a table of options ({', '.join(f.name for f in dataclasses.fields(current))})")
            else:
                changes[key] = _coerce(value, hint if hint is not None else _type_of(current))
        except TypeError as exc:
            _problem(strict, f"option '{full}' expects {exc}, got {value!r}")
    return dataclasses.replace(base, **changes) if changes else base  # type: ignore[type-var]


def _problem(strict: bool, message: str) -> None:
    if strict:
        raise VidpopError(message)
    warnings.warn(f"{message} (ignored: the default is kept)", stacklevel=4)


def _hints(cls: type) -> dict[str, Any]:
    """Resolved field annotations; a field whose annotation cannot be resolved is left out (unchecked)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:
        module = vars(sys.modules.get(cls.__module__, types.ModuleType("x")))
        out = {}
        for f in dataclasses.fields(cls):
            try:
                out[f.name] = eval(f.type, module) if isinstance(f.type, str) else f.type
            except Exception:
                continue
        return out


def _type_of(default: Any) -> Any:
    return None if default is None else type(default)


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as the annotated type, or ``TypeError(<what was expected>)``."""
    if hint is None or hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except TypeError:
                continue
        raise TypeError(" or ".join(_name(a) for a in args))
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeError("one of " + ", ".join(repr(a) for a in args))
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, list | tuple):
            raise TypeError(_name(hint))
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise TypeError(_name(hint))
            items = [_coerce(v, a) for v, a in zip(value, args, strict=True)]
        else:
            items = [_coerce(v, args[0]) for v in value] if args else list(value)
        return tuple(items) if (origin or hint) is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise TypeError("a table")
        return dict(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return merge_config(hint(), value, strict=True)
        raise TypeError(_name(hint))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError("an integer")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise TypeError("a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError("a string")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise TypeError(_name(hint))
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
