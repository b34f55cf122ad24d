"""Generated modules are safe whatever the user typed: strings that reach the source
(path, expression, names) stay literals, and no input name collides with the
module's own names."""

from __future__ import annotations

import ast
import importlib.util
import sys
import warnings

import numpy as np
import pytest

import symgrad
from symgrad.cli import main
from symgrad.errors import SymgradError

# The module's top level, statement by statement, as the template lays it out.
EXPECTED_TOP_LEVEL = [
    ("Expr", "docstring"),
    ("Import", "numpy"),
    ("Assign", "INPUTS"),
    ("Assign", "WRT"),
    ("Assign", "EXPRESSION"),
    ("Assign", "CONVENTION"),
    ("FunctionDef", "forward"),
    ("FunctionDef", "value_and_grad"),
    ("FunctionDef", "backward"),
    ("FunctionDef", "jvp"),
]

HOSTILE_FOLDERS = [
    'a"""b',
    "a'''b",
    'q"\\',
    "back\\slash",
    'x""";import os;os.system("echo pwned")#',
    "new\nline",
    "tab\there",
    "\\N{BULLET}",
    "ünïcödé",
]


def _top_level(source: str) -> list[tuple[str, str]]:
    tree = ast.parse(source)
    shape = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            shape.append(("Expr", "docstring"))
        elif isinstance(node, ast.Import):
            if node.names[0].name == "math":
                continue  # only where a helper needs it
            shape.append(("Import", node.names[0].name))
        elif isinstance(node, ast.Assign):
            shape.append(("Assign", node.targets[0].id))  # type: ignore[attr-defined]
        elif isinstance(node, ast.FunctionDef):
            if node.name.startswith("_"):
                continue  # the runtime helpers the module carries
            shape.append(("FunctionDef", node.name))
        else:
            shape.append((type(node).__name__, ""))
    return shape


@pytest.mark.parametrize("folder", HOSTILE_FOLDERS)
def test_hostile_paths_stay_in_the_docstring(folder: str, tmp_path, capsys) -> None:
    path = tmp_path / folder / "m.py"
    assert main(["generate", "cos(x**2) + y", "-o", str(path)]) == 0
    source = path.read_text(encoding="utf-8")
    assert _top_level(source) == EXPECTED_TOP_LEVEL
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert "Regenerate with" in docstring and "m.py" in docstring
    spec = importlib.util.spec_from_file_location("hostile_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing runs nothing but the definitions
    assert module.INPUTS == ("x", "y")


@pytest.mark.parametrize(
    "text",
    [
        'x + "1"',
        "x + __import__('os').system('true')",
        "x.__class__",
        "[x for x in y]",
        "x if y else z",
        "lambda: x",
    ],
)
def test_hostile_expressions_never_reach_a_module(text: str, tmp_path) -> None:
    with pytest.raises(SymgradError):
        symgrad.derive(text)
    assert main(["generate", text, "-o", str(tmp_path / "m.py")]) == 2
    assert not (tmp_path / "m.py").exists()


# Names a module defines inside its functions, and names that used to be its locals.
LOCAL_LOOKING = ["keep", "value", "g", "shape1", "shape2", "v1", "g1", "t1", "dtype"]


@pytest.mark.parametrize("name", LOCAL_LOOKING)
def test_input_names_never_collide_with_generated_names(name: str) -> None:
    text = f"{name} * sin(y) + max({name}) + where({name} > 0, y, 1)"
    derivation = symgrad.derive(text)
    source = derivation.module_source()
    assert _top_level(source) == EXPECTED_TOP_LEVEL
    namespace: dict[str, object] = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    values = {name: np.array([0.5, -1.0, 2.0]), "y": np.array([1.0, 2.0, 3.0])}
    args = [values[n] for n in derivation.inputs]
    value, grads = namespace["value_and_grad"](*args)  # type: ignore[operator]
    want_value, want = derivation.evaluate(values)
    np.testing.assert_array_equal(value, want_value)
    for n, grad in zip(derivation.inputs, grads, strict=True):
        np.testing.assert_array_equal(grad, want[n])


@pytest.mark.parametrize("name", ["np", "math", "forward", "INPUTS", "grad_output"])
def test_names_the_module_defines_are_refused_as_inputs(name: str) -> None:
    with pytest.raises(SymgradError, match="name of the generated module") as info:
        symgrad.derive(f"{name} + 1")
    assert info.value.column == 0


@pytest.mark.parametrize(
    "text, values",
    [
        ("mean(x)", {"x": np.array([])}),
        ("x * 1e300 * 1e300", {"x": np.array([1.0], dtype=np.float32)}),
        ("exp(x)", {"x": np.array([1000.0], dtype=np.float32)}),
        ("log(x) + 1/x", {"x": np.array([0.0, -1.0])}),
        ("x / x + sum(x) / size_x", {"x": np.array([]), "size_x": np.array(0.0)}),
    ],
)
def test_no_runtime_warning_escapes_a_module(text: str, values) -> None:
    derivation = symgrad.derive(text)
    namespace: dict[str, object] = {}
    exec(compile(derivation.module_source(), "<generated>", "exec"), namespace)
    args = [values[n] for n in derivation.inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        namespace["value_and_grad"](*args)  # type: ignore[operator]
        namespace["value_and_grad"](*args, grad_output=2.0)  # type: ignore[operator]
        derivation.evaluate(dict(values))


def test_importing_a_module_needs_only_numpy(tmp_path) -> None:
    path = tmp_path / "only_numpy.py"
    assert (
        main(["generate", "erf(x) + clip(x, 0, 1) + digamma(y)", "-o", str(path)]) == 0
    )
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def modules(nodes) -> set[str]:
        names = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names.add(node.module)
        return names

    # at import: NumPy and math only
    assert modules(tree.body) <= {"numpy", "math"}
    # inside functions: the standard library's os and thread pool, which `threads=`
    # loads when it is asked for, and nothing else
    local = modules(ast.walk(tree)) - modules(tree.body)
    assert local <= {"os", "concurrent.futures"}
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in local)
