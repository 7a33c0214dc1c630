"""``vidpop ARGS`` in this process through the real entry point (``main()``: errors become one line and
exit 2), for tests that check what a user sees."""

from __future__ import annotations

import contextlib
import io
import sys

from vidpop.cli import main


def run_cli(*args: object, stderr_on_success: bool = True) -> tuple[int, str]:
    """(exit code, stdout + stderr). Progress bars go to stderr; ``stderr_on_success=False`` keeps only
    stdout (what users pipe) when the command succeeds."""
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["vidpop", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    if code or stderr_on_success:
        return code, out.getvalue() + "\n" + err.getvalue()
    return code, out.getvalue()
