"""`symgrad derive` and `symgrad functions` as a user runs them."""

from __future__ import annotations

import json

import pytest
import sympy as sp

from symgrad import registry


def test_help_and_version(cli) -> None:
    result = cli("--help")
    assert result.returncode == 0 and "examples:" in result.stdout
    assert "symgrad derive" in cli("derive", "--help").stdout
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("symgrad 0.")


def test_derive_text_latex_json(cli) -> None:
    text = cli("derive", "cos(x**2)")
    assert text.returncode == 0
    assert text.stdout.splitlines()[:2] == [
        "f(x) = cos(x**2)",
        "df/dx = -2*x*sin(x**2)",
    ]
    latex = cli("derive", "cos(x**2)", "--format", "latex").stdout
    assert r"f(x) = \cos{\left(x^{2} \right)}" in latex
    assert r"\frac{\partial f}{\partial x} = - 2 x \sin{\left(x^{2} \right)}" in latex
    data = json.loads(cli("derive", "cos(x**2)", "--format", "json").stdout)
    assert data["inputs"] == ["x"]
    assert sp.sympify(data["derivatives"]["x"]["text"]) == sp.sympify("-2*x*sin(x**2)")


def test_json_text_parses_with_sympify_for_every_function(cli) -> None:
    for text in [
        "max(x)",
        "clip(x, 1.5, 5.5)",
        "x < y",
        "sum(x)*prod(x)",
        "round(x)",
        "norm(x, inf)",
        "where(x > 0, x, 0)",
        "mean(x)",
        "min(x, y)",
        "digamma(x)",
        "softplus(x)",
        "not x",
        "x > 0 and y > 0",
    ]:
        data = json.loads(cli("derive", text, "--format", "json").stdout)
        for entry in data["derivatives"].values():
            sp.sympify(entry["text"])  # must not raise


def test_wrt_inputs_and_stdin(cli) -> None:
    out = cli("derive", "x**2 + y**2", "--wrt", "y").stdout.splitlines()
    assert out == ["f(x, y) = x**2 + y**2", "df/dy = 2*y"]
    out = cli("derive", "x*y", "--inputs", "y,x").stdout.splitlines()
    assert out[0] == "f(y, x) = x*y" and out[1] == "df/dy = x"
    out = cli("derive", "-", stdin="clip(x, 1.5, 5.5)\n").stdout
    assert "df/dx = (x >= 1.5)*(x <= 5.5)" in out


def test_at_vectors_and_matrices(cli) -> None:
    out = cli("derive", "sin(cos(norm(x)**2 + 1))", "--at", "x=[0.3,-0.7,1.1]").stdout
    assert "at x = [0.3, -0.7, 1.1]:" in out
    assert "df/dx = [" in out
    out = cli("derive", "x*y", "--at", "x=[[1,2],[3,4]],y=2").stdout
    assert "df/dx = [[2.0, 2.0], [2.0, 2.0]]" in out
    assert "df/dy = 10.0" in out
    data = json.loads(
        cli("derive", "abs(x)", "--at", "x=[-1,0,1]", "--format", "json").stdout
    )
    assert data["at"]["gradient"]["x"] == [-1.0, 0.0, 1.0]


def test_bad_at_values_are_errors(cli) -> None:
    for at in [
        "x=",
        "x=[1,2",
        "x=abc",
        "x=__import__('os')",
        "y=1",
        "x=[[1],[2,3]]",
        "x=[1,2],y=[1,2,3]",
    ]:
        result = cli("derive", "x*y" if at.startswith("x=[1,2],y") else "x", "--at", at)
        assert result.returncode == 2, at
        assert result.stderr.startswith("symgrad: error:"), at
        assert "Traceback" not in result.stderr


def test_convention_jax(cli) -> None:
    out = cli("derive", "abs(x)", "--at", "x=0", "--convention", "jax").stdout
    assert "df/dx = 1.0" in out
    out = cli("derive", "abs(x)", "--at", "x=0").stdout
    assert "df/dx = 0.0" in out


def test_functions_lists_the_whole_registry(cli) -> None:
    out = cli("functions").stdout
    for rule in registry.RULES:
        if rule.names:
            assert rule.signature in out, rule.signature
    assert "abs'(0) is taken as 0" in out
    data = json.loads(cli("functions", "--format", "json").stdout)
    assert {row["name"] for row in data} >= {
        "abs",
        "clip",
        "amax",
        "maximum",
        "norm",
        "erf",
    }


def test_no_command_and_unknown_command(cli) -> None:
    assert cli().returncode == 2
    result = cli("frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_derive_steps_with_numbers(cli) -> None:
    out = cli("derive", "cos(x**2)", "--steps", "--at", "x=0.5").stdout
    assert "v1    = x**2" in out and "0.25" in out
    assert "0.9689124217106447" in out
    assert "-0.24740395925452294" in out
    for fmt in ("latex", "markdown", "json"):
        result = cli("derive", "abs(x)", "--steps", "--format", fmt)
        assert result.returncode == 0, result.stderr
    data = json.loads(cli("derive", "abs(x)", "--steps", "--format", "json").stdout)
    assert any("abs'(0)" in (step.get("note") or "") for step in data["steps"])


def test_steps_json_carries_the_expression_inputs_and_point_as_derive(cli) -> None:
    """`--steps --format json` says what was derived, and at which point, in the keys
    and the form of `derive --format json`; its value and gradient are PyTorch's."""
    torch = pytest.importorskip("torch")
    words = ["derive", "abs(x)*y", "--at", "x=[-1,0,2], y=3", "--format", "json"]
    derived = json.loads(cli(*words).stdout)
    steps = json.loads(cli(*words, "--steps").stdout)
    for key in ("expression", "input", "inputs", "convention", "at"):
        assert steps[key] == derived[key], key
    assert steps["wrt"] == ["x", "y"] and steps["at"]["inputs"]["y"] == 3.0
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    value = torch.abs(x) * y
    value.sum().backward()
    assert steps["at"]["value"] == value.tolist()
    assert steps["at"]["gradient"] == {"x": x.grad.tolist(), "y": y.grad.item()}
    last = steps["steps"][-1]  # the result: df/dy at the point
    assert last["name"] == "df/dy" and last["value"] == y.grad.item()
    bare = json.loads(cli("derive", "x*y", "--steps", "--format", "json").stdout)
    assert "at" not in bare and bare["inputs"] == ["x", "y"]


def test_derive_markdown(cli) -> None:
    out = cli("derive", "abs(x)", "--format", "markdown").stdout
    assert "$$" in out and r"\operatorname{sign}" in out
