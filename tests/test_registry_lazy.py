"""The registry imports a model's module only when that model is asked for (issue 16 §5), and its
static name -> module table matches what the model modules register."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import vidpop.models as pkg
from vidpop.models import registry


def test_name_table_matches_registered_models() -> None:
    for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
        importlib.import_module(mod.name)
    assert set(registry._MODELS) == set(registry.MODULES)
    for name, cls in registry._MODELS.items():
        assert cls.__module__ == registry.MODULES[name], name
        assert cls.model_name == name


def test_asking_for_one_model_imports_only_its_module() -> None:
    code = (
        "import json, sys\n"
        "from vidpop.models import registry\n"
        "names = registry.model_names()\n"
        "before = sorted(m for m in set(registry.MODULES.values()) if m in sys.modules)\n"
        "registry.get_model_class('mlp')\n"
        "after = sorted(m for m in set(registry.MODULES.values()) if m in sys.modules)\n"
        "print(json.dumps([names, before, after, 'lightgbm' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    names, before, after, lgbm = json.loads(out.stdout.strip().splitlines()[-1])
    assert names == sorted(registry.MODULES)
    assert before == []
    assert after == ["vidpop.models.mlp"]
    assert not lgbm


def test_unknown_model_lists_the_known_ones() -> None:
    import pytest

    from vidpop.errors import VidpopError

    with pytest.raises(VidpopError, match=r"unknown model 'nope'.*mlp"):
        registry.get_model_class("nope")
