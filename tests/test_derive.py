"""The Python API: derive(), Derivation, readable formulas and notes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import sympy as sp

import symgrad
from symgrad import registry
from symgrad.catalog import catalog_rows
from symgrad.printing import to_text

FORBIDDEN = re.compile(
    r"\b(Derivative|re|im|Heaviside|DiracDelta|Subs|safe_recip|unbroadcast|prod_grad)"
    r"\(|\b_[vg]\d"
)


@pytest.mark.parametrize("row", catalog_rows(), ids=lambda r: r["name"])
def test_catalog_derivatives_are_readable(row) -> None:
    for text in row["derivative"].values():
        assert not FORBIDDEN.search(text), (row["name"], text)


SEEDS = [
    "cos(x**2)",
    "erf(x)",
    "abs(x)",
    "exp(x)",
    "x**2 + y**2",
    "max(x)",
    "clip(x, 1.5, 5.5)",
    "x < y",
    "sin(cos(norm(x)**2 + 1))",
    "mean((x + 2)*(x + 2)*2)",
]


@pytest.mark.parametrize("text", SEEDS)
def test_seed_formulas_are_readable_and_reparse(text: str) -> None:
    derivation = symgrad.derive(text)
    for d in derivation.derivatives.values():
        shown = to_text(d)
        assert not FORBIDDEN.search(shown), shown
        again = (
            symgrad.derive(shown, inputs=derivation.inputs) if d.free_symbols else None
        )
        if again is not None:  # the formula a reader sees is valid symgrad input
            assert again.expression == d


def test_derivation_api() -> None:
    d = symgrad.derive("x**2 * y", wrt=["y"])
    assert d.inputs == ("x", "y") and list(d.derivatives) == ["y"]
    assert d.derivatives["y"] == sp.Symbol("x", real=True) ** 2
    assert d.latex().splitlines()[1] == r"\frac{\partial f}{\partial y} = x^{2}"
    assert d._repr_latex_().startswith(r"$\begin{aligned}")
    data = json.loads(d.to_json())
    assert data["derivatives"]["y"]["text"] == "x**2"
    value, grads = d.evaluate({"x": np.array([1.0, 2.0]), "y": 3.0})
    np.testing.assert_array_equal(value, [3.0, 12.0])
    assert float(grads["y"]) == 5.0


def test_notes_name_the_kink_conventions() -> None:
    assert any("abs'(0) is taken as 0" in n for n in symgrad.derive("abs(x)").notes)
    assert any("ties" in n for n in symgrad.derive("max(x)").notes)
    assert any("bound" in n or "lo" in n for n in symgrad.derive("clip(x, 0, 1)").notes)
    assert symgrad.derive("cos(x**2)").notes == []
    jax = symgrad.derive("abs(x)", convention="jax")
    assert any("JAX" in n for n in jax.notes)


def test_bad_api_input_raises_symgrad_error() -> None:
    with pytest.raises(symgrad.SymgradError):
        symgrad.derive("x", wrt=["y"])
    with pytest.raises(symgrad.SymgradError):
        symgrad.derive("x", convention="tf")
    with pytest.raises(symgrad.SymgradError):
        symgrad.derive("x * y", inputs=["x"])
    with pytest.raises(symgrad.SymgradError):
        symgrad.derive("x").evaluate({"y": 1.0})


def test_every_language_function_derives() -> None:
    for name in registry.function_names():
        rules = registry.rules_named(name)
        arity = rules[0].arity[0]
        args = (
            ", ".join(["x", "0.5", "2.5"][:arity])
            if name in ("clip", "clamp")
            else (", ".join(["x"] + ["y"] * (arity - 1)))
        )
        derivation = symgrad.derive(f"{name}({args})")
        assert derivation.derivatives


@pytest.mark.parametrize(
    "text, value",
    [
        ("x*log(-1)", np.nan),
        ("x + sqrt(-2)", np.nan),
        ("x/0", np.inf),
        ("log(0)*x", -np.inf),
        ("acosh(0.5)*x", np.nan),
        ("x*atan2(0, 0)", 0.0),
        ("x*cos(inf)", np.nan),
    ],
)
def test_constants_take_pytorchs_values(text: str, value: float) -> None:
    """Where SymPy would make a constant complex or undirected: PyTorch's value."""
    got, _ = symgrad.derive(text).evaluate({"x": np.array(1.0)})
    np.testing.assert_array_equal(got, value)


def test_a_nan_kept_as_written_prints(cli) -> None:
    """nan/nan is kept unevaluated for display; SymPy's own printers compare its
    nan coefficient with 0 and raise (found by the fuzzer)."""
    text = "((0/0) / cbrt(y)) / ((0/0) / cbrt(y))"
    for fmt in ("text", "latex", "json"):
        result = cli("derive", text, "--format", fmt, "--at", "y=[0,2]")
        assert result.returncode == 0 and "Traceback" not in result.stderr, fmt
    assert "f = [nan, nan]" in cli("derive", text, "--at", "y=[0,2]").stdout
