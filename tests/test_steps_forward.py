"""`derive --steps --mode forward`: the tangent (dual number) of every step, read off
the program, valued by the evaluator, and equal to PyTorch's forward mode."""

from __future__ import annotations

import json

import numpy as np
import pytest

import symgrad
from symgrad.oracles import torch_jvp
from symgrad.steps import trace

SEEDS = [
    ("cos(x**2)", {"x": 0.5}),
    ("x**2 + y**2", {"x": 1.5, "y": -2.0}),
    ("sin(cos(norm(x)**2 + 1))", {"x": [0.3, -0.7, 1.1]}),
    ("mean((x + 2)*(x + 2)*2)", {"x": [1.0, 2.0, 3.0]}),
    ("clip(x, 1.5, 5.5)", {"x": [1.0, 1.5, 3.0, 5.5, 7.0]}),
    ("max(x)", {"x": [1.0, 4.0, 4.0, 0.0]}),
    ("where(x > 0, sqrt(x), 0)", {"x": [-1.0, 4.0]}),
    ("sum(100*(x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2)", {"x": [1.0, 2.0, 0.5]}),
]


@pytest.mark.parametrize("text, at", SEEDS)
def test_tangent_of_f_is_pytorchs_jvp(text: str, at) -> None:
    d = symgrad.derive(text)
    values = {n: np.asarray(v, dtype=float) for n, v in at.items()}
    for name in d.wrt:
        tangents = {n: (1.0 if n == name else 0.0) for n in d.wrt}
        steps = trace(d, at=values, mode="forward", tangents=tangents)
        assert [s.phase for s in steps.backward] == ["tangent"] * len(steps.backward)
        (f_dot,) = [s for s in steps.results if s.name == "ḟ"]
        directions = {n: np.full(np.shape(values[n]), tangents[n]) for n in d.wrt}
        _, want = torch_jvp(text, d.inputs, values, directions)
        np.testing.assert_allclose(f_dot.value, want, rtol=1e-13, atol=1e-15)
        # the last tangent step is the output's, and equals the module's jvp
        _, jvp = d.function.jvp(
            [values[n] for n in d.inputs], [directions[n] for n in d.wrt]
        )
        np.testing.assert_array_equal(f_dot.value, jvp)


def test_each_step_is_the_derivative_of_its_forward_step() -> None:
    """v̇k by central differences of vk along the tangent, step by step."""
    d = symgrad.derive("x*exp(y) + sin(x*y)**2")
    at = {"x": 0.7, "y": -0.4}
    h = 1e-7
    steps = trace(d, at=at, mode="forward", tangents={"x": 1.0, "y": 2.0})
    up = trace(d, at={"x": 0.7 + h, "y": -0.4 + 2 * h})
    down = trace(d, at={"x": 0.7 - h, "y": -0.4 - 2 * h})
    forward = {s.name: s for s in steps.forward}
    for step in steps.backward:
        name = step.name.replace("\u0307", "")
        i = [s.name for s in steps.forward].index(name)
        slope = (up.forward[i].value - down.forward[i].value) / (2 * h)
        assert step.value == pytest.approx(slope, rel=1e-6, abs=1e-8), step
        assert name in forward


def test_formats(cli) -> None:
    result = cli("derive", "cos(x**2)", "--steps", "--mode", "forward", "--at", "x=0.5")
    assert result.returncode == 0, result.stderr
    assert "tangent trace" in result.stdout
    assert "v\u03071 = 2*x\u0307*x " in result.stdout  # v̇1, ẋ: combining dots
    latex = cli(
        "derive", "cos(x**2)", "--steps", "--mode", "forward", "--format", "latex"
    )
    assert r"\dot{v}_{1} &= 2 \cdot \dot{x} \cdot x" in latex.stdout
    assert latex.stdout.isascii()
    md = cli(
        "derive", "cos(x**2)", "--steps", "--mode", "forward", "--format", "markdown"
    )
    assert md.stdout.startswith("Forward-mode derivative")
    data = json.loads(
        cli(
            "derive",
            "x*y",
            "--steps",
            "--mode",
            "forward",
            "--format",
            "json",
            "--at",
            "x=2,y=3",
            "--tangent",
            "y=1",
        ).stdout
    )
    tangent = [s for s in data["steps"] if s.get("phase") == "tangent"]
    assert tangent[-1]["value"] == 2.0 and tangent[-1]["alias"] == "ḟ"


def test_bad_options(cli) -> None:
    assert cli("derive", "cos(x**2)", "--mode", "forward").returncode == 2
    result = cli(
        "derive", "cos(x**2)", "--steps", "--mode", "forward", "--tangent", "z=1"
    )
    assert result.returncode == 2 and "z" in result.stderr
