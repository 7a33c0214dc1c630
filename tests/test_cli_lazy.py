"""The CLI starts without the heavy stack (issue 15 §1): ``vidpop --help`` and an error exit import no
torch/lightgbm/transformers/ray/pandas; every group is still listed and its own ``--help`` works."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

from typer.testing import CliRunner

import vidpop.commands
from vidpop.cli import GROUPS, TOP_LEVEL, app

HEAVY = ["torch", "lightgbm", "transformers", "sentence_transformers", "ray", "pandas", "onnxruntime", "sklearn"]

PROBE = """
import json, sys
import vidpop.cli
{run}
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


def _heavy_after(run: str) -> list[str]:
    code = PROBE.format(run=run, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _main(*argv: str) -> str:
    # run main() as the console script would, then report what got imported
    return f"sys.argv = ['vidpop', *{list(argv)!r}]\ntry:\n    vidpop.cli.main()\nexcept SystemExit:\n    pass\n"


def test_import_and_help_and_error_exit_load_no_heavy_module() -> None:
    assert _heavy_after("") == []
    assert _heavy_after(_main("--help")) == []
    assert _heavy_after(_main("no-such-command")) == []
    assert _heavy_after(_main("train", "--bogus-option")) == []


def test_groups_table_matches_the_command_modules() -> None:
    named, top = {}, []
    for info in pkgutil.iter_modules(vidpop.commands.__path__):
        mod = importlib.import_module(f"vidpop.commands.{info.name}")
        if getattr(mod, "NAME", None):
            named[mod.NAME] = (mod.__name__, (mod.__doc__ or "").strip().splitlines()[0])
        else:
            assert hasattr(mod, "register"), mod.__name__
            top.append(mod.__name__)
    assert named == GROUPS
    assert sorted(top) == sorted(TOP_LEVEL)


def test_root_help_lists_every_group_and_each_group_help_works() -> None:
    runner = CliRunner()
    root = runner.invoke(app, ["--help"])
    assert root.exit_code == 0, root.output
    for name in [*GROUPS, "train", "predict", "demo", "report"]:
        assert name in root.output
    for name, (module, _) in GROUPS.items():
        res = runner.invoke(app, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        sub = importlib.import_module(module).app
        for cmd in (c for c in sub.registered_commands if not c.hidden):  # every visible one is listed
            shown = cmd.name or cmd.callback.__name__.replace("_", "-")
            assert shown in res.output, (name, shown)
    assert runner.invoke(app, ["no-such-group"]).exit_code == 2
    listed = runner.invoke(app, ["models", "list"])  # a lazily mounted one-command group still runs it
    assert listed.exit_code == 0 and "variational_poe" in listed.output, listed.output
