"""The seed documents' numbers, exactly (and the one seed that is wrong, corrected)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import symgrad


def grads_at(text: str, **values):
    derivation = symgrad.derive(text)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    value, grads = derivation.evaluate(arrays)
    return value, grads


def test_seed000_erf_gradient_at_1() -> None:
    derivation = symgrad.derive("erf(x)")
    assert str(derivation) == "f(x) = erf(x)\ndf/dx = 2*exp(-x**2)/sqrt(pi)"
    value, grads = grads_at("erf(x)", x=1.0)
    assert float(grads["x"]) == 0.4151074974205947
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    torch.erf(x).backward()
    assert float(grads["x"]) == x.grad.item()
    assert float(value) == torch.erf(torch.tensor(1.0, dtype=torch.float64)).item()


def test_seed000_abs_gradient_is_sign_with_0_at_0() -> None:
    _, grads = grads_at("abs(x)", x=[-1, 0, 1])
    np.testing.assert_array_equal(grads["x"], [-1.0, 0.0, 1.0])
    assert str(symgrad.derive("abs(x)").derivatives["x"]) == "sign(x)"


def test_seed001_lt_has_no_gradient_and_derivative_zero(cli) -> None:
    # The seed claims torch.lt's "gradient" is [1, 0, 0]. PyTorch gives the comparison's
    # output no gradient at all, and mathematically it is piecewise constant: 0.
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    z = torch.lt(x, torch.tensor([2.0, 2.0, 2.0]))
    assert not z.requires_grad
    with pytest.raises(RuntimeError):
        z.sum().backward()
    value, grads = grads_at("x < y", x=[1, 2, 3], y=[2, 2, 2])
    np.testing.assert_array_equal(np.asarray(value, dtype=float), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(grads["x"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grads["y"], [0.0, 0.0, 0.0])
    result = cli("derive", "x < y", "--format", "json")
    data = json.loads(result.stdout)
    assert data["derivatives"]["x"]["text"] == "0"
    assert any("piecewise constant" in note for note in data["notes"])
    text = cli("derive", "x < y").stdout
    assert "df/dx = 0" in text and "note:" in text and "no gradient" in text


def test_seed001_and_003_exp() -> None:
    value, grads = grads_at("exp(x)", x=[-1, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(
        np.round(value, 4), [0.3679, 1.0, 2.7183, 7.3891, 20.0855, 54.5982]
    )
    _, grads = grads_at("exp(x)", x=[1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.round(grads["x"], 4), [2.7183, 7.3891, 20.0855])
    np.testing.assert_array_equal(grads["x"], np.exp([1.0, 2.0, 3.0]))


def test_seed002_sum_of_squares() -> None:
    _, grads = grads_at("x**2 + y**2", x=[1, 1, 1], y=[2, 2, 2])
    np.testing.assert_array_equal(grads["x"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(grads["y"], [4.0, 4.0, 4.0])
    assert [str(d) for d in symgrad.derive("x^2 + y^2").derivatives.values()] == [
        "2*x",
        "2*y",
    ]


def test_seed002_max_ties_share_evenly() -> None:
    value, grads = grads_at("max(x)", x=[1, 2, 3, 4, 4, 0])
    assert float(value) == 4.0
    np.testing.assert_array_equal(grads["x"], [0, 0, 0, 0.5, 0.5, 0])


def test_seed002_clip() -> None:
    _, grads = grads_at("clip(x, 1.5, 5.5)", x=[1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(grads["x"], [0, 1, 1, 1, 1, 0, 0])
    # At the bounds themselves the derivative is 1, as PyTorch.
    _, grads = grads_at("clip(x, 1.5, 5.5)", x=[1.5, 5.5])
    np.testing.assert_array_equal(grads["x"], [1.0, 1.0])


def test_seed004_cos_x_squared_at_half(cli) -> None:
    value, grads = grads_at("cos(x**2)", x=0.5)
    assert float(value) == 0.9689124217106447
    assert float(grads["x"]) == -0.24740395925452294
    out = cli("derive", "cos(x**2)", "--at", "x=0.5").stdout
    assert "df/dx = -2*x*sin(x**2)" in out
    assert "f = 0.9689124217106447" in out
    assert "df/dx = -0.24740395925452294" in out


def test_seed004_sin_cos_norm() -> None:
    derivation = symgrad.derive("sin(cos(norm(x)**2 + 1))")
    assert str(derivation.derivatives["x"]) == (
        "-2*x*sin(norm(x)**2 + 1)*cos(cos(norm(x)**2 + 1))"
    )
    x = np.array([0.3, -0.7, 1.1])
    value, grads = derivation.evaluate({"x": x})
    t = torch.tensor(x, requires_grad=True)
    out = torch.sin(torch.cos(torch.norm(t) ** 2 + 1))
    out.backward()
    assert float(value) == pytest.approx(out.item(), rel=1e-15)
    np.testing.assert_allclose(grads["x"], t.grad.numpy(), rtol=1e-14)


def test_seed004_mean_of_square() -> None:
    x = np.array([0.3, -1.2, 2.5])
    value, grads = grads_at("mean((x + 2)*(x + 2)*2)", x=x)
    t = torch.tensor(x, requires_grad=True)
    out = ((t + 2) * (t + 2) * 2).mean()
    out.backward()
    assert float(value) == pytest.approx(out.item(), rel=1e-15)
    np.testing.assert_allclose(grads["x"], t.grad.numpy(), rtol=1e-15)
    assert str(symgrad.derive("mean((x + 2)*(x + 2)*2)").derivatives["x"]) == (
        "4*(x + 2)/size(x)"
    )
