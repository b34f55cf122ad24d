"""The command line's arguments: expressions that start with a minus sign, the names
--inputs and --wrt accept, and the CLI glue kept out of the library modules."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import symgrad
from symgrad.cli import main
from symgrad.errors import SymgradError

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


# --- an expression that starts with a minus sign --------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["derive", "-x**2"],
        ["derive", "-x**2", "--at", "x=2"],
        ["derive", "--at", "x=2", "-x**2"],
        ["derive", "--at=x=2", "-x**2", "--format", "text"],
        ["derive", "--steps", "-x**2"],
        ["derive", "-x**2", "--wrt", "x", "--conv", "jax"],  # an abbreviated option
        ["derive", "--", "-x**2"],
    ],
)
def test_derive_a_negated_expression(argv: list[str]) -> None:
    out = ok(*argv)
    assert "-x**2" in out[0] or "-x**2" in "\n".join(out), out
    assert any("-2*x" in line or "-4.0" in line for line in out), out
    if "x=2" in " ".join(argv):
        assert "  df/dx = -4.0" in out


def test_a_minus_with_a_space_and_a_minus_number() -> None:
    assert ok("derive", "- x")[1] == "df/dx = -1"
    assert ok("derive", "-sin(x)")[1] == "df/dx = -cos(x)"
    assert ok("derive", "-3")[0] == "f() = -3"
    assert ok("derive", "-x", "--inputs", "x")[0] == "f(x) = -x"


def test_generate_and_check_a_negated_expression(tmp_path: Path) -> None:
    path = tmp_path / "f.py"
    assert ok("generate", "-x", "-o", str(path)) == [f"wrote {path}"]
    spec = importlib.util.spec_from_file_location("f", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.EXPRESSION == "-x"
    assert float(module.value_and_grad(2.0)[1][0]) == -1.0
    # the command the module records to make it again runs as written
    assert "symgrad generate -x -o" in path.read_text(encoding="utf-8")
    assert ok("generate", "-o", str(path), "-x**3") == [f"wrote {path}"]
    assert ok("check", "-x", "--points", "3")[-1] == "agreement: all checks pass"


def test_the_recorded_command_makes_the_module_again(tmp_path, monkeypatch) -> None:
    import shlex

    monkeypatch.chdir(tmp_path)  # a short path: the docstring keeps it on one line
    path = Path("f.py")
    for argv in (["-x", "-o", str(path)], ["-o", str(path), "--", "--x"]):
        assert ok("generate", *argv) == [f"wrote {path}"]
        source = path.read_text(encoding="utf-8")
        command = next(
            line.strip()
            for line in source.splitlines()[1:]
            if "symgrad generate" in line
        )
        path.unlink()
        assert ok(*shlex.split(command)[1:]) == [f"wrote {path}"]
        assert path.read_text(encoding="utf-8") == source


def test_plot_a_negated_expression_over_a_negative_range(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    for argv in (
        ["plot", "-x", "--range", "-3,3", "-o", str(tmp_path / "a.png")],
        ["plot", "--range", "-3,-1", "-abs(x)", "-o", str(tmp_path / "b.png")],
        ["plot", "-x*y", "--wrt", "x", "--at", "y=-1", "--range=-2,2", "-o"],
    ):
        if argv[-1] == "-o":
            argv.append(str(tmp_path / "c.png"))
        assert ok(*argv) == [f"wrote {argv[argv.index('-o') + 1]}"]
    err = refused("plot", "x", "--range", "3,-3", "-o", str(tmp_path / "d.png"))
    assert "need finite LO < HI" in err


def test_help_and_unknown_options_are_unchanged() -> None:
    status, out, _ = run("derive", "-h")
    assert status == 0 and "usage: symgrad derive" in out
    status, out, _ = run("derive", "-x", "--help")
    assert status == 0 and "usage: symgrad derive" in out
    for argv in (
        ["derive", "--frobnicate", "x"],
        ["derive", "x", "--frobnicate"],
        ["derive", "--frobnicate"],
        ["derive"],
        ["derive", "-x", "y"],  # two expressions
        ["generate", "-x"],  # -o is required
        ["plot", "-x", "--range"],  # --range needs its value
    ):
        status, _, err = run(*argv)
        assert status == 2, argv
        assert err.startswith("usage: ") or err.startswith("symgrad"), err


# --- the names --inputs and --wrt accept ----------------------------------------------
@pytest.mark.parametrize(
    ("inputs", "what"),
    [
        ("x,e", "'e' is a constant"),
        ("pi,x", "'pi' is a constant"),
        ("x,inf", "'inf' is a constant"),
        ("x,sin", "'sin' is a function"),
        ("x,max", "'max' is a function"),
        ("x,sqrt", "'sqrt' is a function"),
    ],
)
def test_inputs_must_not_be_constants_or_functions(inputs: str, what: str) -> None:
    err = refused("derive", "x", "--inputs", inputs)
    assert what in err and "--inputs" in err, err
    with pytest.raises(SymgradError, match=what):
        symgrad.derive("x", inputs=inputs.split(","))


def test_wrt_must_not_name_an_input_twice() -> None:
    err = refused("derive", "x*y", "--wrt", "x,y,x", "--at", "x=1,y=2")
    assert "--wrt lists 'x' twice" in err
    with pytest.raises(SymgradError, match="lists 'y' twice"):
        symgrad.derive("x*y", wrt=["y", "y"])
    assert ok("derive", "x*y", "--wrt", "y,x")[1:] == ["df/dy = x", "df/dx = y"]


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


def test_the_cli_sets_no_private_attributes() -> None:
    """No private attribute of argparse (or of anything) is reached into."""
    for name in ("cli.py", "plot.py", "generate.py"):
        tree = ast.parse((ROOT / "symgrad" / name).read_text(encoding="utf-8"))
        private = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        }
        assert not private, (name, private)


def test_a_closed_pipe_ends_quietly_and_leaves_stderr_open() -> None:
    """`symgrad functions | head -1`: status 0, no noise; and a program that called
    `main` can still write to its standard error afterwards."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before symgrad writes
    try:
        script = (
            "import sys; from symgrad.cli import main; status = main(['functions']); "
            "print('stderr is open', status, file=sys.stderr)"
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(write)
    assert result.returncode == 0
    assert result.stderr == "stderr is open 0\n"
