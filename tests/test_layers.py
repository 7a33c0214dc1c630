"""The package layers import only downward: data -> features -> training (engine) -> models -> explain ->
recipes -> experiments -> serve -> commands -> cli. Every import counts, at module level or inside a
function. The few upward imports that remain are listed by name, so a new one fails this test and a
fixed one must be taken off the list."""

from __future__ import annotations

import ast
from pathlib import Path

import vidpop

ORDER = (
    "errors", "config", "atomic",
    "data", "features", "training", "models", "explain", "recipes", "experiments", "serve", "commands", "cli",
)  # fmt: skip

#: upward imports still to remove (the recipes still borrow dataset preparation from experiments, and the
#: recommender protocol in training/ names the Recommender base class of models/)
KNOWN_UPWARD = {
    ("vidpop.recipes.fusion", "vidpop.experiments.fusion"),
    ("vidpop.recipes.poe", "vidpop.experiments"),
    ("vidpop.recipes.relation", "vidpop.experiments.relation"),
    ("vidpop.training.rec_protocol", "vidpop.models.recommender"),
    ("vidpop.training.rec_tables", "vidpop.models.recommender"),
    ("vidpop.training.rec_tables", "vidpop.models.registry"),
    ("vidpop.training.rec_tuning", "vidpop.models.recommender"),
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "vidpop" and len(parts) > 1 and parts[1] in ORDER else None


def upward_imports(src: Path) -> set[tuple[str, str]]:
    """(importing module, imported module) for every import of a higher layer under ``src`` (the
    ``vidpop`` package folder)."""
    found = set()
    for path in sorted(src.rglob("*.py")):
        module = ".".join(path.relative_to(src.parent).with_suffix("").parts).removesuffix(".__init__")
        mine = _layer(module)
        if mine is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            else:
                continue
            for target in targets:
                theirs = _layer(target)
                if theirs and ORDER.index(theirs) > ORDER.index(mine):
                    found.add((module, target))
    return found


def test_packages_import_only_downward() -> None:
    found = upward_imports(Path(vidpop.__file__).parent)
    assert not found - KNOWN_UPWARD, f"new upward imports: {sorted(found - KNOWN_UPWARD)}"
    assert not KNOWN_UPWARD - found, f"fixed, take them off KNOWN_UPWARD: {sorted(KNOWN_UPWARD - found)}"


def test_the_walker_sees_imports_inside_functions(tmp_path: Path) -> None:
    pkg = tmp_path / "vidpop"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "leaky.py").write_text("def f():\n    from vidpop.models.base import VidpopModel\n")
    (pkg / "models").mkdir()
    (pkg / "models" / "fine.py").write_text("import vidpop.data.leaky\n")
    assert upward_imports(pkg) == {("vidpop.data.leaky", "vidpop.models.base")}
