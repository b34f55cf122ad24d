"""`symgrad derive --order 2`: each second partial once per pair, as text, LaTeX,
JSON (parsable by sympy.sympify) and Markdown; `--at` gives the Hessian of sum(f).
The formulas are checked against mpmath's second derivatives of the expression as
written, and the numbers against PyTorch's double backward (the same string)."""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
import sympy as sp

import symgrad
from symgrad.oracles import mpmath_hessian, torch_hessian

SMOOTH = [
    "cos(x**2)",
    "x**2*y + sin(x*y)",
    "exp(x)*log(y)/y",
    "erf(x*y) + x**3",
    "tanh(x*y)*exp(-x)",
    "atanh(x/3)*y**2",
]


@pytest.mark.parametrize("text", SMOOTH)
def test_formulas_are_mpmaths_second_derivatives(text: str) -> None:
    d = symgrad.derive(text, order=2)
    names = d.inputs
    symbols = [sp.Symbol(n, real=True) for n in names]
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = [float(v) for v in rng.uniform(0.3, 1.2, size=len(names))]
        exact = mpmath_hessian(text, names, point)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if j < i:
                    assert b not in d.second_derivatives[a]  # once per pair
                    continue
                formula = d.second_derivatives[a][b]
                # the JSON text form, read back by SymPy
                text_form = json.loads(d.to_json())["second_derivatives"][a][b]["text"]
                parsed = sp.sympify(
                    text_form,
                    locals={n: s for n, s in zip(names, symbols, strict=True)},
                )
                for shown in (formula, parsed):
                    value = shown.subs(dict(zip(symbols, point, strict=True)))
                    assert abs(float(value) - exact[i][j]) <= 1e-9 * max(
                        1, abs(exact[i][j])
                    )
    assert d.hessian.shape == (len(names), len(names))
    assert d.hessian == d.hessian.T


def test_cos_x2_second_derivative(cli) -> None:
    result = cli("derive", "cos(x**2)", "--order", "2", "--at", "x=0.5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].startswith("d2f/dx2 = ")
    formula = sp.sympify(
        lines[2].split(" = ", 1)[1], locals={"x": sp.Symbol("x", real=True)}
    )
    x = sp.Symbol("x", real=True)
    assert sp.simplify(formula - (-2 * sp.sin(x**2) - 4 * x**2 * sp.cos(x**2))) == 0
    value = float([line for line in lines if "d2f/dx2 =" in line][-1].split("=")[1])
    assert value == pytest.approx(
        float(mpmath.diff(lambda t: mpmath.cos(t**2), 0.5, 2)), rel=1e-14
    )


def test_pairs_labels_latex_and_json(cli) -> None:
    result = cli("derive", "x**2*y + sin(x*y)", "--order", "2")
    labels = [line.split(" = ")[0] for line in result.stdout.splitlines()]
    assert labels[3:] == ["d2f/dx2", "d2f/dxdy", "d2f/dy2"]
    latex = cli("derive", "x**2*y", "--order", "2", "--format", "latex").stdout
    assert r"\frac{\partial^2 f}{\partial x \partial y} = 2 x" in latex
    assert r"\frac{\partial^2 f}{\partial x^{2}} = 2 y" in latex
    data = json.loads(
        cli("derive", "x**2*y", "--order", "2", "--format", "json").stdout
    )
    assert set(data["second_derivatives"]) == {"x", "y"}
    assert set(data["second_derivatives"]["x"]) == {"x", "y"}
    assert set(data["second_derivatives"]["y"]) == {"y"}
    assert data["second_derivatives"]["x"]["y"]["latex"] == "2 x"


def test_at_gives_the_hessian_of_sum_for_arrays(cli) -> None:
    result = cli(
        "derive",
        "x**2*y + sin(x*y)",
        "--order",
        "2",
        "--at",
        "x=[1,2],y=0.5",
        "--format",
        "json",
    )
    data = json.loads(result.stdout)["at"]["second_derivatives"]
    want = torch_hessian(
        "x**2*y + sin(x*y)", ("x", "y"), {"x": np.array([1.0, 2.0]), "y": np.array(0.5)}
    )
    np.testing.assert_allclose(data["x"]["x"], want[0][0], rtol=1e-13)
    np.testing.assert_allclose(data["x"]["y"], want[0][1], rtol=1e-13)
    np.testing.assert_allclose(data["y"]["y"], want[1][1], rtol=1e-13)
    assert np.shape(data["x"]["x"]) == (2, 2) and np.shape(data["x"]["y"]) == (2,)


def test_kinks_and_limits_at_second_order(cli) -> None:
    data = json.loads(
        cli(
            "derive",
            "max(x, y)**2",
            "--order",
            "2",
            "--at",
            "x=2,y=2",
            "--format",
            "json",
        ).stdout
    )
    assert data["at"]["second_derivatives"] == {
        "x": {"x": 0.5, "y": 0.5},
        "y": {"y": 0.5},
    }
    result = cli("derive", "norm(x)**2", "--order", "2", "--at", "x=[0,0]")
    assert "[[2.0, 0.0], [0.0, 2.0]]" in result.stdout
    assert "the Hessian of norm(x)**2 there is 2I" in result.stdout


def test_too_large_a_hessian_points_to_hvp(cli) -> None:
    values = "[" + ",".join(["0.5"] * 1001) + "]"
    result = cli("derive", "sum(x**2)", "--order", "2", "--at", f"x={values}")
    assert result.returncode == 2
    assert "use hvp" in result.stderr and "Traceback" not in result.stderr


def test_python_api() -> None:
    d = symgrad.derive("x*y**3", order=2)
    x, y = sp.symbols("x y", real=True)
    assert sp.simplify(
        d.hessian - sp.Matrix([[0, 3 * y**2], [3 * y**2, 6 * x * y]])
    ) == sp.zeros(2)
    from symgrad.errors import SymgradError

    with pytest.raises(SymgradError, match="order=2"):
        _ = symgrad.derive("x").hessian
