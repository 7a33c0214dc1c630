"""The package layers import only downward: data -> features -> training (engine) -> models -> explain ->
recipes -> experiments -> serve -> commands -> cli. Every import counts, at module level or inside a
function, and none goes up (issue 16 §1). Nor do the sub-packages form a cycle (e.g. ``models.interest_rnn``
importing ``models.rec_baselines`` and back)."""

from __future__ import annotations

import ast
import functools
import graphlib
from pathlib import Path

import pytest

import vidpop

ORDER = (
    "errors", "config", "atomic",
    "data", "features", "training", "models", "explain", "recipes", "experiments", "serve", "commands", "cli",
)  # fmt: skip


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "vidpop" and len(parts) > 1 and parts[1] in ORDER else None


@functools.cache
def all_imports(src: Path) -> set[tuple[str, str]]:
    """(importing module, imported vidpop module) for every absolute import under ``src`` (the ``vidpop``
    package folder), those inside functions included."""
    found = set()
    for path in sorted(src.rglob("*.py")):
        module = ".".join(path.relative_to(src.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            else:
                continue
            found.update((module, t) for t in targets if t == "vidpop" or t.startswith("vidpop."))
    return found


def upward_imports(src: Path) -> set[tuple[str, str]]:
    """The imports of a higher layer."""
    found = set()
    for module, target in all_imports(src):
        mine, theirs = _layer(module), _layer(target)
        if mine and theirs and ORDER.index(theirs) > ORDER.index(mine):
            found.add((module, target))
    return found


def _package(src: Path, module: str, depth: int) -> str:
    """``vidpop.<layer>`` (depth 1), or the sub-package below it when there is one (depth 2); a module
    directly under ``vidpop`` (``errors``, ``cli``) is its own layer."""
    parts = module.split(".")
    if depth >= 2 and len(parts) > 3 and (src.parent / Path(*parts[:3])).is_dir():
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def package_graph(src: Path, depth: int = 1) -> dict[str, set[str]]:
    """Package -> the packages it imports, at the layer level (``depth`` 1) or with sub-packages such as
    ``vidpop.models.interest_rnn`` as their own nodes (2: cycles between siblings, and across layers)."""
    graph: dict[str, set[str]] = {}
    for module, target in all_imports(src):
        a, b = _package(src, module, depth), _package(src, target, depth)
        # a sub-package and its own layer (models.interest_rnn and models.registry) are one unit
        if a != b and not a.startswith(b + ".") and not b.startswith(a + "."):
            graph.setdefault(a, set()).add(b)
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


SRC = Path(vidpop.__file__).parent


def test_packages_import_only_downward() -> None:
    assert upward_imports(SRC) == set()


@pytest.mark.parametrize("depth", [1, 2])
def test_no_package_cycle(depth: int) -> None:
    assert cycle(package_graph(SRC, depth)) is None


def test_the_walker_sees_imports_inside_functions_and_cycles(tmp_path: Path) -> None:
    pkg = tmp_path / "vidpop"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "leaky.py").write_text("def f():\n    from vidpop.models.base import VidpopModel\n")
    (pkg / "models").mkdir()
    (pkg / "models" / "fine.py").write_text("import vidpop.data.leaky\n")
    assert upward_imports(pkg) == {("vidpop.data.leaky", "vidpop.models.base")}
    assert cycle(package_graph(pkg)) is not None  # data -> models -> data
    (pkg / "models" / "a").mkdir()
    (pkg / "models" / "b").mkdir()
    (pkg / "models" / "a" / "x.py").write_text("from vidpop.models.b.y import g\n")
    (pkg / "models" / "b" / "y.py").write_text("def g():\n    import vidpop.models.a.x\n")
    (pkg / "data" / "leaky.py").write_text("")
    all_imports.cache_clear()  # the files changed
    assert cycle(package_graph(pkg)) is None
    assert set(cycle(package_graph(pkg, 2)) or ()) == {"vidpop.models.a", "vidpop.models.b"}
    (pkg / "models" / "b" / "y.py").write_text("from vidpop.models.fine import f\n")  # parent <- child: fine
    all_imports.cache_clear()
    assert cycle(package_graph(pkg, 2)) is None
    all_imports.cache_clear()
