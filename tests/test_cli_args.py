"""The command line's arguments: expressions that start with a minus sign, the names
--inputs and --wrt accept, and the CLI glue kept out of the library modules."""

from __future__ import annotations

import ast
from pathlib import Path

from symgrad.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str, str]:
    """`symgrad ARGV` in this process: (status, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse: --help, usage errors
            status = exc.code if isinstance(exc.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def ok(*argv: str) -> list[str]:
    status, out, err = run(*argv)
    assert status == 0, err
    return out.splitlines()


def refused(*argv: str) -> str:
    status, out, err = run(*argv)
    assert status == 2, (out, err)
    assert err.startswith("symgrad") and "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


# --- the CLI glue lives in cli.py -----------------------------------------------------
def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_plot_does_not_import_the_cli_and_the_cli_imports_plot_lazily() -> None:
    plot = _imports(ROOT / "symgrad" / "plot.py")
    assert not {"argparse", "symgrad.cli"} & plot, plot
    cli = _imports(ROOT / "symgrad" / "cli.py", top_level_only=True)
    assert not {"symgrad.plot", "symgrad"} & cli and "symgrad.plot" not in str(cli)
